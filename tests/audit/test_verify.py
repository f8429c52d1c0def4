"""verify_chain and manage.py audit_verify detect and locate every kind of tampering."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from exchange.audit.checkpoints import checkpoint_due
from exchange.audit.models import AuditCheckpoint, AuditEvent, ChainHead
from exchange.audit.verify import verify_chain
from tests.audit.tampering import change, delete, insert_after, make_events, move, swap

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(settings):
    settings.BEACON_AUDIT_CHECKPOINT_EVERY = 4
    for _ in range(3):
        make_events(4)
        checkpoint_due()
    return [e.seq for e in AuditEvent.objects.order_by("seq")]


def _bad(expected_seq: int, problem: str):
    result = verify_chain()
    assert not result.ok
    assert (result.first_bad_seq, result.problem) == (expected_seq, problem), result.summary()
    return result


def test_intact_chain_verifies(chain):
    result = verify_chain()
    assert result.ok, result.summary()
    assert result.count == len(chain)
    assert result.checkpoints == 3
    assert (result.first_seq, result.last_seq) == (chain[0], chain[-1])


def test_since_verifies_from_a_seq_or_a_time(chain):
    result = verify_chain(since=chain[5])
    assert result.ok and result.count == len(chain) - 5
    at = AuditEvent.objects.get(seq=chain[5]).at
    assert verify_chain(since=at).count == len(chain) - 5


def test_changed_row_is_located(chain):
    change(chain[4], actor_member="someone-else")
    _bad(chain[4], "changed")


def test_changed_hash_column_is_located(chain):
    change(chain[6], hash="f" * 64)
    _bad(chain[6], "changed")


def test_deleted_row_is_located(chain):
    delete(chain[4])
    result = _bad(chain[4], "missing")
    assert f"#{chain[4]}" in result.summary()


def test_deleted_tail_is_located(chain):
    delete(chain[-1])
    _bad(chain[-1], "missing")


def test_inserted_row_is_located(chain):
    insert_after(chain[4])
    _bad(chain[4] + 1, "inserted")


def test_row_appended_behind_the_head_is_located(chain):
    insert_after(chain[-1])  # correctly hashed, but the chain head never saw it
    _bad(chain[-1] + 1, "inserted")


def test_renumbered_row_is_located(chain):
    move(chain[-1], chain[-1] + 5)
    _bad(chain[-1], "changed")


def test_swapped_rows_are_located(chain):
    swap(chain[3], chain[7])
    _bad(chain[3], "reordered")


def test_adjacent_swap_is_located(chain):
    swap(chain[5], chain[6])
    _bad(chain[5], "reordered")


def test_bad_checkpoint_signature_is_located(chain):
    checkpoint = AuditCheckpoint.objects.order_by("seq")[1]
    AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(signature="A" * 88)
    _bad(checkpoint.seq, "bad signature")


def test_rewritten_chain_is_caught_by_its_checkpoint(chain):
    """An attacker who rehashes every later event (and the head) still fails the signature."""
    from client.auditchain import event_hash
    from exchange.audit.models import format_at

    rows = list(AuditEvent.objects.order_by("seq").filter(seq__gte=chain[2]))
    prev = AuditEvent.objects.get(seq=chain[1]).hash
    for row in rows:
        body = row.chained_body()
        if row.seq == chain[2]:
            body["actor"] = "system:rewritten"
            change(row.seq, actor="system:rewritten")
        body["at"] = format_at(row.at)
        new = event_hash(prev, body)
        change(row.seq, prev_hash=prev, hash=new)
        prev = new
    ChainHead.objects.filter(pk=1).update(hash=prev)
    result = verify_chain()
    assert not result.ok and result.problem == "changed"
    assert result.first_bad_seq == AuditCheckpoint.objects.order_by("seq")[0].seq


def test_command_passes_and_fails_naming_the_seq(chain, capsys):
    call_command("audit_verify")
    assert "OK" in capsys.readouterr().out
    change(chain[4], result_count=99)
    with pytest.raises(CommandError) as failure:
        call_command("audit_verify", since=str(chain[1]))
    assert failure.value.returncode == 1
    assert f"#{chain[4]}" in str(failure.value) and "changed" in str(failure.value)
    # Verification is audited too.
    assert AuditEvent.objects.filter(action="audit.verify").count() == 2
