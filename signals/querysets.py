"""Row-set logic for signals. ``visible_to`` is the only way member-facing code reads signals."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, models
from django.db.models import Q
from django.db.models.expressions import RawSQL

from exchange import policy


class SignalQuerySet(models.QuerySet[Any]):
    def visible_to(self, member: Any, purpose: str, *, include_own: bool = True) -> SignalQuerySet:
        """Signals ``member`` may see for ``purpose``: its own (any status) and other members'
        live signals the policy lets it receive. Purpose rule 5 (research: aggregates only) is
        applied by the services that turn rows into answers."""
        return self.filter(_visible_q(member, include_own=include_own))

    def visible_or_given(
        self,
        member: Any,
        purpose: str,
        *,
        at: datetime | None = None,
        context: tuple[set[Any], set[Any]] | None = None,
    ) -> SignalQuerySet:
        """What ``visible_to`` answers, plus every signal the member was given before (whose
        revocation it must learn). ``context`` is ``receiving_context(member)`` when the caller
        has it already. Run it as the outer query: its disclosure test names the signal table,
        which Django renames inside a subquery."""
        return self.filter(_visible_q(member, at=at, context=context) | _given_q(member))

    def live(self, at: datetime | None = None) -> SignalQuerySet:
        return self.filter(policy.live_q(at))


def _visible_q(
    member: Any,
    *,
    include_own: bool = True,
    at: datetime | None = None,
    context: tuple[set[Any], set[Any]] | None = None,
) -> Q:
    group_ids, category_ids = context if context is not None else receiving_context(member)
    return policy.visible_q(
        member,
        group_ids=sorted(group_ids),
        category_ids=sorted(category_ids),
        include_own=include_own,
        at=at,
    )


def _given_q(member: Any) -> Q:
    """A disclosure of the row to ``member`` exists. PostgreSQL tests the cheap side of the OR
    first, so only rows the member may not see now cost an index probe; ``OFFSET 0`` keeps it
    from hashing every disclosure the member ever had instead (seconds per feed page for a
    member given a million signals)."""
    sql = _GIVEN_PG if connection.vendor == "postgresql" else _GIVEN
    return Q(RawSQL(sql, [member.pk], output_field=models.BooleanField()))  # noqa: S611 - fixed SQL


_GIVEN = (
    "EXISTS (SELECT 1 FROM signals_disclosure given"
    " WHERE given.member_id = %s AND given.signal_id = signals_signal.id)"
)
_GIVEN_PG = _GIVEN[:-1] + " OFFSET 0)"


def receiving_context(member: Any) -> tuple[set[Any], set[Any]]:
    """The ids of the groups ``member`` is in and of the categories it may receive."""
    from signals.models import Category

    categories = list(Category.objects.only("pk", "code", "required_attestations"))
    codes = policy.receivable_categories(member, categories)
    return set(member.sharing_groups.values_list("pk", flat=True)), {
        c.pk for c in categories if c.code in codes
    }


def ids_in(field: str, ids: Iterable[int]) -> Q:
    """``field`` is one of ``ids``. On PostgreSQL the ids travel as one array parameter rather
    than one bound placeholder each, which matters for the thousands a match or feed page has."""
    values = list(ids)
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__in": RawSQL("SELECT unnest(%s::bigint[])", [bigint_array(values)])})
    return Q(**{f"{field}__in": values})


def bigint_array(ids: Iterable[int]) -> str:
    """Ids as one PostgreSQL array literal, for ``%s::bigint[]``: psycopg adapts a list of ints
    item by item in Python, which costs more than the query it feeds."""
    return "{" + ",".join(map(str, ids)) + "}"
