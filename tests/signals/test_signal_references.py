"""On PostgreSQL the references of signals are checked per statement by triggers (decision
0006): a signal never points at a missing indicator, member, category or group, indicators are
never deleted, and a referenced member, category or group cannot be deleted."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from signals import services
from signals.models import Category, Indicator, Signal
from tests.conftest import SYSTEM
from tests.signals.conftest import digest, item

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the triggers are installed on PostgreSQL only"
)
pytestmark = postgres_only


def _signal(member, value: str = "ref-1", category: str = "csea.csam") -> Signal:
    result = services.signal_submit(
        member=member, items=[item(value=digest(value), category=category)], actor=SYSTEM
    )
    return Signal.objects.get(pk=result.signals[0]["id"])


def _missing(model) -> int:
    return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def _refused(action) -> None:
    # COPY reaches psycopg directly, so its errors arrive unwrapped by Django.
    with pytest.raises((IntegrityError, psycopg.IntegrityError)), transaction.atomic():
        action()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["indicator_id", "owner_id", "category_id", "audience_group_id"])
def test_a_signal_pointing_at_a_missing_row_is_refused_on_insert_and_update(member_a, field):
    signal = _signal(member_a)
    model = Signal._meta.get_field(field.removesuffix("_id")).related_model
    bogus = _missing(model)

    def insert() -> None:
        copy = Signal.objects.get(pk=signal.pk)
        copy.pk = None
        copy.indicator = Indicator.objects.create(type="sha256", value=digest("ref-2"))
        setattr(copy, field, bogus)
        copy.save()

    _refused(insert)
    _refused(lambda: Signal.objects.filter(pk=signal.pk).update(**{field: bogus}))
    assert Signal.objects.count() == 1


@pytest.mark.django_db
def test_a_copy_of_signals_pointing_at_a_missing_indicator_is_refused(member_a):
    signal = _signal(member_a)
    bogus = _missing(Indicator)

    def copy_rows() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE ref_copy ON COMMIT DROP AS SELECT * FROM signals_signal "
                "WHERE id = %s",
                [signal.pk],
            )
            cursor.execute(
                "UPDATE ref_copy SET id = nextval(pg_get_serial_sequence('signals_signal', 'id')), "
                "indicator_id = %s",
                [bogus],
            )
            with cursor.copy("COPY (SELECT * FROM ref_copy) TO STDOUT") as out:
                rows = b"".join(out)
            with cursor.copy("COPY signals_signal FROM STDIN") as into:
                into.write(rows)

    _refused(copy_rows)
    assert Signal.objects.count() == 1


@pytest.mark.django_db
def test_indicators_are_never_deleted_or_rekeyed(member_a):
    signal = _signal(member_a)
    unused = Indicator.objects.create(type="sha256", value=digest("nobody shares this"))
    _refused(lambda: Indicator.objects.filter(pk=unused.pk).delete())
    _refused(lambda: Indicator.objects.filter(pk=signal.indicator_id).delete())
    _refused(lambda: Indicator.objects.filter(pk=unused.pk).update(id=_missing(Indicator)))
    assert Indicator.objects.filter(pk__in=[unused.pk, signal.indicator_id]).count() == 2


@pytest.mark.django_db
def test_a_referenced_member_category_or_group_cannot_be_deleted(member_a, pilot):
    signal = _signal(member_a)
    Signal.objects.filter(pk=signal.pk).update(audience_group=pilot)
    for model, pk in [
        ("accounts_member", member_a.pk),
        ("signals_category", signal.category_id),
        ("accounts_sharinggroup", pilot.pk),
    ]:

        def delete(model: str = model, pk: int = pk) -> None:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {model} WHERE id = %s", [pk])  # noqa: S608 - fixed names

        _refused(delete)
    unused = Category.objects.create(code="test.unused", name="Unused")
    unused.delete()
    assert not Category.objects.filter(code="test.unused").exists()


@pytest.mark.django_db
def test_truncating_indicators_alone_is_refused_while_signals_exist(member_a):
    _signal(member_a)

    def truncate() -> None:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE signals_indicator CASCADE")

    _refused(truncate)
    assert Indicator.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_category_waits_for_an_uncommitted_upload_that_uses_it(member_a):
    category = Category.objects.create(code="test.pending", name="Pending")
    settings = connection.settings_dict
    other = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"],
        password=settings["PASSWORD"],
        autocommit=True,
    )
    try:
        other.execute("SET lock_timeout = '300ms'")
        with transaction.atomic():
            _signal(member_a, category="test.pending")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM signals_category WHERE id = %s", [category.pk])
            transaction.set_rollback(True)
        other.execute("DELETE FROM signals_category WHERE id = %s", [category.pk])
    finally:
        other.close()
    assert not Category.objects.filter(pk=category.pk).exists()
