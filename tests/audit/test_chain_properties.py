"""Property: whatever single change is made to a chain — an edited field, a removed event, an
inserted event, two events swapped — the walker finds it, names it and says where."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from client.auditchain import GENESIS_HASH, ChainWalker, VerifyResult, event_hash


def _chain(n: int) -> list[dict]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        row = {
            "seq": seq,
            "at": f"2026-07-01T00:00:{seq % 60:02d}.000000Z",
            "actor_member": f"m{seq % 3}",
            "actor": f"token:bcn_{seq:08d}",
            "action": "signal.match",
            "purpose": "detection",
            "request_id": f"r{seq}",
            "client_ip": "192.0.2.1",
            "params_digest": "0" * 64,
            "result_count": seq % 5,
            "disclosed": {"m1": [seq, seq + 1]},
            "owners": ["m2"],
            "target": "",
            "details": {},
            "prev_hash": prev,
        }
        row["hash"] = prev = event_hash(prev, row)
        rows.append(row)
    return rows


def _walk(rows: list[dict]) -> VerifyResult:
    result = VerifyResult()
    hashes = {r["hash"] for r in rows}
    walker = ChainWalker(result, anchor=(0, GENESIS_HASH), known_hash=hashes.__contains__)
    for row in rows:
        if not walker.feed(row):
            break
    return result


@settings(max_examples=60, deadline=None)
@given(n=st.integers(4, 30), data=st.data())
def test_single_tampering_is_found_and_located(n, data):
    rows = _chain(n)
    assert _walk(rows).ok
    kind = data.draw(st.sampled_from(["change", "delete", "insert", "swap"]))
    tampered = copy.deepcopy(rows)
    if kind == "change":
        i = data.draw(st.integers(0, n - 1))
        field = data.draw(st.sampled_from(["actor_member", "action", "result_count", "disclosed"]))
        tampered[i][field] = (
            {"x": [1]} if field == "disclosed" else 99 if field == "result_count" else "forged"
        )
        expected = ("changed", rows[i]["seq"])
    elif kind == "delete":
        i = data.draw(st.integers(0, n - 2))  # the tail is the seal's and the head's to guard
        del tampered[i]
        expected = ("missing", rows[i]["seq"])
    elif kind == "insert":
        i = data.draw(st.integers(0, n - 2))
        forged = dict(
            rows[i], seq=rows[i]["seq"] + 1, actor="system:forger", prev_hash=rows[i]["hash"]
        )
        forged["hash"] = event_hash(forged["prev_hash"], forged)
        for row in tampered[i + 1 :]:
            row["seq"] += 1
        tampered.insert(i + 1, forged)
        expected = ("inserted", forged["seq"])
    else:
        i = data.draw(st.integers(0, n - 2))
        j = data.draw(st.integers(i + 1, n - 1))
        tampered[i], tampered[j] = tampered[j], tampered[i]
        expected = ("reordered", rows[j]["seq"])
    result = _walk(tampered)
    assert not result.ok
    assert (result.problem, result.first_bad_seq) == expected, (kind, result.summary())
