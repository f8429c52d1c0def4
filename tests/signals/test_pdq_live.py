"""POST /api/v1/match answers PDQ items from the per-process live index: exactly what a brute
force over the live stored hashes answers, filtered by the access policy like the exact types,
fresh across processes, with low-quality hashes flagged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.matching import live
from signals.models import Indicator, Signal, SignalStatus
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def match(client, items, purpose="detection"):
    response = client.post("/api/v1/match", {"purpose": purpose, "items": items}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def flip(h: bytes, positions: list[int]) -> bytes:
    bits = np.unpackbits(np.frombuffer(h, dtype=np.uint8))
    bits[positions] ^= 1
    return np.packbits(bits).tobytes()


def brute_force(query: bytes, radius: int) -> list[tuple[int, int]]:
    """(indicator id, distance) of every PDQ indicator with an active signal, by unpacking bits."""
    live_ids = set(
        Signal.objects.filter(status=SignalStatus.ACTIVE, indicator__type="pdq").values_list(
            "indicator_id", flat=True
        )
    )
    q = np.unpackbits(np.frombuffer(query, dtype=np.uint8))
    out = []
    for ind_id, value in Indicator.objects.filter(pk__in=live_ids).values_list("pk", "value"):
        d = int((np.unpackbits(np.frombuffer(bytes.fromhex(value), dtype=np.uint8)) != q).sum())
        if d <= radius:
            out.append((ind_id, d))
    return sorted(out, key=lambda p: (p[1], p[0]))


hashes = st.binary(min_size=32, max_size=32)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    base=hashes,
    others=st.lists(hashes, max_size=6),
    near=st.lists(st.lists(st.integers(0, 255), min_size=0, max_size=40, unique=True), max_size=6),
    retract=st.lists(st.integers(0, 20), max_size=3),
    radius=st.integers(0, 52),
)
def test_match_is_exactly_the_brute_force_over_live_hashes(
    upload, api_for, member_a, member_b, base, others, near, retract, radius
):
    # The index persists across examples, so later examples exercise incremental refreshes.
    stored = [base, *others, *(flip(base, positions) for positions in near)]
    response = upload(member_a, [item("pdq", h.hex()) for h in stored])
    assert response.status_code in (200, 201), response.content
    created = [s["id"] for s in response.json()["signals"]]
    owner = api_for(member_a)
    for k in retract:
        if k < len(created):
            owner.delete(f"/api/v1/signals/{created[k]}", {"reason": "test"}, format="json")
    query = flip(base, [3, 77, 200])
    (result,) = match(
        api_for(member_b), [{"type": "pdq", "value": query.hex(), "max_distance": radius}]
    )
    got = [(m["indicator_id"], m["distance"]) for m in result["matches"]]
    assert got == brute_force(query, radius)


def test_near_duplicates_match_at_every_distance_up_to_31(upload, api_for, member_a, member_b):
    rng = np.random.default_rng(14)
    base = rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    near = {d: flip(base, list(rng.choice(256, d, replace=False))) for d in range(32)}
    upload(member_a, [item("pdq", h.hex()) for h in near.values()])
    results = match(api_for(member_b), [{"type": "pdq", "value": base.hex()}])
    assert sorted(m["distance"] for m in results[0]["matches"]) == list(range(32))
    beyond = flip(base, list(range(0, 256, 8)))  # 32 bits from base
    assert (
        match(api_for(member_b), [{"type": "pdq", "value": beyond.hex(), "max_distance": 0}])[0][
            "matches"
        ]
        == []
    )


def test_retracted_and_expired_signals_stop_matching(upload, api_for, member_a, member_b):
    rng = np.random.default_rng(7)
    one, two = (rng.integers(0, 256, 32, dtype=np.uint8).tobytes() for _ in range(2))
    body = upload(member_a, [item("pdq", one.hex()), item("pdq", two.hex())]).json()
    client = api_for(member_b)
    query = [{"type": "pdq", "value": one.hex()}, {"type": "pdq", "value": two.hex()}]
    assert [len(r["matches"]) for r in match(client, query)] == [1, 1]
    first, second = (s["id"] for s in body["signals"])
    api_for(member_a).delete(f"/api/v1/signals/{first}", {"reason": "wrong"}, format="json")
    from exchange import sequences

    Signal.objects.filter(pk=second).update(
        status=SignalStatus.EXPIRED, seq=sequences.allocate(sequences.FEED)
    )
    assert [len(r["matches"]) for r in match(client, query)] == [0, 0]
    assert live.pdq().stats()["hashes"] == 0


@pytest.mark.parametrize("audience", ["all", "group:pilot", "members:acme", "members:acme,initech"])
def test_policy_filters_pdq_matches_exactly_as_exact_types(
    upload, api_for, member_a, member_b, outsider, suspended, pilot, audience
):
    pdq_value = "5a" * 32
    sha = digest(f"policy-{audience}")
    response = upload(
        member_a,
        [item("pdq", pdq_value, audience=audience), item("sha256", sha, audience=audience)],
    )
    assert response.status_code in (200, 201), response.content
    for member in (member_a, member_b, outsider):
        results = match(
            api_for(member),
            [{"type": "pdq", "value": "5b" + "5a" * 31}, {"type": "sha256", "value": sha}],
        )
        by_pdq = [s["owner"] for m in results[0]["matches"] for s in m["signals"]]
        by_sha = [s["owner"] for m in results[1]["matches"] for s in m["signals"]]
        assert by_pdq == by_sha, (member.slug, audience)


def test_low_quality_hashes_are_flagged_not_hidden(upload, api_for, member_a, member_b, settings):
    settings.BEACON_PDQ_QUALITY_FLOOR = 50
    upload(member_a, [item("pdq", "11" * 32, quality=30), item("pdq", "12" * 32, quality=90)])
    client = api_for(member_b)
    results = match(
        client,
        [
            {"type": "pdq", "value": "11" * 32, "quality": 20},
            {"type": "pdq", "value": "12" * 32, "quality": 70},
        ],
    )
    (low,) = results[0]["matches"]
    (good,) = results[1]["matches"]
    assert low["signals"][0]["quality"] == 30 and low["signals"][0]["low_quality"] is True
    assert good["signals"][0]["quality"] == 90 and good["signals"][0]["low_quality"] is False
    assert results[0]["low_quality"] is True and results[1]["low_quality"] is False


SUBMITTER = """
import sys, django
django.setup()
from accounts.models import Member
from exchange.audit import Actor
from signals import services
from signals.models import Signal
member = Member.objects.get(slug="acme")
actor = Actor.system("other-process")
if sys.argv[1].startswith("submit"):
    type_ = sys.argv[1].partition("-")[2] or "pdq"
    services.signal_submit(member=member, actor=actor, items=[
        {"type": type_, "value": sys.argv[2], "category": "csea.csam"}])
else:
    signal = Signal.objects.get(indicator__value=sys.argv[2])
    services.signal_retract(signal=signal, reason="other process", actor=actor)
"""


def _other_process(*args: str) -> None:
    from tests.delivery.stack import database_url

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "PYTEST_CURRENT_TEST"}
    }
    env.update({"DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "exchange.settings"})
    subprocess.run(
        [sys.executable, "-c", SUBMITTER, *args], cwd=ROOT, env=env, check=True, timeout=60
    )


def _poll(client, value: str, want: int) -> int:
    deadline = time.monotonic() + 5
    while True:
        found = len(match(client, [{"type": "pdq", "value": value}])[0]["matches"])
        if found == want or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_signal_from_another_process_matches_here_within_seconds(
    api_for, member_a, member_b, settings
):
    settings.BEACON_INDEX_REFRESH_SECONDS = 2
    client = api_for(member_b)
    value = "c3" * 32
    near = "c2" + "c3" * 31
    assert _poll(client, near, 0) == 0  # the index is built before the other process writes
    _other_process("submit", value)
    assert _poll(client, near, 1) == 1
    _other_process("retract", value)
    assert _poll(client, near, 0) == 0
