"""vPDQ video hashes, video_md5, and media bundles through the API."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from client.hashing import hash_file, vpdq_text
from signals.models import Signal
from signals.types import TypeValueError
from signals.types.vpdq import VpdqType, parse_frames
from tests.conftest import assert_problem
from tests.media import make_video, reencode
from tests.signals.conftest import item

pytestmark = pytest.mark.django_db


def match(client, items, purpose="detection"):
    response = client.post("/api/v1/match", {"purpose": purpose, "items": items}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def random_frames(seed: int, n: int, quality: int = 90) -> list[tuple[int, int, str, float]]:
    rng = np.random.default_rng(seed)
    return [
        (i, quality, rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex(), float(i))
        for i in range(n)
    ]


def flip(hex_: str, bits: int) -> str:
    return f"{int(hex_, 16) ^ ((1 << bits) - 1):064x}"


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("videos")
    original = make_video(tmp / "original.mp4", 1)
    return {
        "original": original,
        "copy": reencode(original, tmp / "copy.mp4", size=(224, 168)),
        "other": make_video(tmp / "other.mp4", 2),
    }


# -- formats ----------------------------------------------------------------------------------


def test_the_vpdq_text_format_json_and_threatexchange_json_parse_alike():
    frames = random_frames(1, 3)
    text = vpdq_text(frames)
    swapped = "".join(f"{n},{h},{q},{ts}\n" for n, q, h, ts in frames)
    objects = [{"frame": n, "hash": h, "quality": q, "timestamp": ts} for n, q, h, ts in frames]
    compact = json.dumps([f"{h},{q},{ts:.3f}" for _, q, h, ts in frames])
    canon = VpdqType().canonical({"value": text})
    for value in (
        swapped,
        objects,
        json.dumps(objects),
        compact,
        text.upper().replace("\n", "\r\n"),
    ):
        assert VpdqType().canonical({"value": value}) == canon
    assert canon.extra["frames_text"] == text
    assert canon.value == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "value",
    [
        "",
        [],
        "0,90,abc,0.0",
        "0,101," + "a" * 64 + ",0.0",
        "0,90," + "a" * 64,
        "x,90," + "a" * 64 + ",0",
        "0,90," + "a" * 64 + ",0\n0,90," + "b" * 64 + ",1",
        [{"frame": 0, "hash": "a" * 64, "quality": 50, "timestamp": -1}],
        42,
    ],
)
def test_malformed_frames_are_refused(value):
    with pytest.raises(TypeValueError):
        parse_frames(value)


def test_bad_vpdq_items_answer_422_with_the_field(upload, api_for, member_a):
    body = assert_problem(upload(member_a, [item("vpdq", "0,90,zz,0")]), 422)
    assert body["errors"][0]["field"] == "value"
    body = assert_problem(
        api_for(member_a).post(
            "/api/v1/match",
            {
                "purpose": "detection",
                "items": [
                    {
                        "type": "vpdq",
                        "value": vpdq_text(random_frames(1, 2)),
                        "query_match_percent": 101,
                    },
                    {"type": "md5", "value": "0" * 32, "index_match_percent": 5},
                ],
            },
            format="json",
        ),
        422,
    )
    assert {(e["index"], e["field"]) for e in body["errors"]} == {
        (0, "query_match_percent"),
        (1, "index_match_percent"),
    }


# -- the vPDQ rule ----------------------------------------------------------------------------


def test_a_reencoded_video_matches_by_vpdq_and_not_by_md5(
    upload, api_for, member_a, member_b, videos
):
    original, copy, other = (hash_file(videos[k]) for k in ("original", "copy", "other"))
    assert original.vpdq and copy.vpdq and other.vpdq
    assert original.md5 != copy.md5
    upload(
        member_a,
        [
            item("vpdq", vpdq_text(original.vpdq)),
            item("video_md5", original.md5),
        ],
    )
    results = match(
        api_for(member_b),
        [
            {"type": "vpdq", "value": vpdq_text(copy.vpdq)},
            {"type": "video_md5", "value": copy.md5},
            {"type": "vpdq", "value": vpdq_text(other.vpdq)},
        ],
    )
    (hit,) = results[0]["matches"]
    assert hit["query_match_percent"] >= 80 and hit["index_match_percent"] > 0
    assert hit["signals"][0]["type"] == "vpdq"
    assert results[1]["matches"] == [] and results[2]["matches"] == []


def test_percentages_follow_the_rule_and_thresholds_are_per_query(
    upload, api_for, member_a, member_b
):
    stored = random_frames(10, 10)
    upload(member_a, [item("vpdq", vpdq_text(stored))])
    # Query: 4 frames near stored ones (within 31 bits, one at exactly 31), 1 unrelated, and a
    # duplicate and a low-quality frame, which the rule ignores.
    near = [(0, 90, flip(stored[0][2], 31), 0.0), (1, 90, flip(stored[1][2], 5), 1.0)]
    near += [(2, 90, stored[2][2], 2.0), (3, 90, stored[3][2], 3.0)]
    query = near + [
        (4, 90, random_frames(99, 1)[0][2], 4.0),
        (5, 90, stored[2][2], 5.0),
        (6, 10, stored[9][2], 6.0),
    ]
    client = api_for(member_b)
    text = vpdq_text(query)
    # 4 of 5 unique query frames match: 80%, which meets the default threshold (>=).
    (hit,) = match(client, [{"type": "vpdq", "value": text}])[0]["matches"]
    assert (hit["query_match_percent"], hit["index_match_percent"]) == (80.0, 40.0)
    assert (
        match(client, [{"type": "vpdq", "value": text, "query_match_percent": 81}])[0]["matches"]
        == []
    )
    assert (
        match(
            client,
            [{"type": "vpdq", "value": text, "query_match_percent": 50, "index_match_percent": 41}],
        )[0]["matches"]
        == []
    )
    (hit,) = match(
        client,
        [{"type": "vpdq", "value": text, "query_match_percent": 50, "max_distance": 30}],
    )[0]["matches"]
    assert (hit["query_match_percent"], hit["index_match_percent"]) == (60.0, 30.0)


def test_stored_frames_below_the_quality_floor_are_ignored(upload, api_for, member_a, member_b):
    good = random_frames(20, 4)
    low = [(n + 4, 20, h, ts + 4) for n, _, h, ts in random_frames(21, 4)]
    upload(member_a, [item("vpdq", vpdq_text(good + low))])
    (hit,) = match(api_for(member_b), [{"type": "vpdq", "value": vpdq_text(good)}])[0]["matches"]
    assert (hit["query_match_percent"], hit["index_match_percent"]) == (100.0, 100.0)
    assert match(api_for(member_b), [{"type": "vpdq", "value": vpdq_text(low)}])[0]["matches"] == []


def test_the_feed_carries_vpdq_frames(upload, api_for, member_a, member_b):
    frames = random_frames(30, 3)
    upload(member_a, [item("vpdq", vpdq_text(frames))])
    events = api_for(member_b).get("/api/v1/feed?purpose=detection").json()["events"]
    (signal,) = [e["signal"] for e in events if e["signal"]["type"] == "vpdq"]
    assert signal["frames"] == vpdq_text(frames)


# -- bundles ----------------------------------------------------------------------------------


def bundle(frames, md5="ab" * 16, pdq="cd" * 32, **extra):
    return {
        "hashes": {"video_md5": md5, "vpdq": vpdq_text(frames), "pdq": pdq},
        "category": "csea.csam",
        **extra,
    }


def test_a_bundle_becomes_one_signal_per_hash_and_any_finds_the_others(
    upload, api_for, member_a, member_b
):
    frames = random_frames(40, 5)
    response = upload(member_a, [bundle(frames, quality=80), item("sha256")])
    assert response.status_code == 201, response.content
    created = response.json()["signals"]
    assert [s["type"] for s in created] == ["video_md5", "vpdq", "pdq", "sha256"]
    assert len({s["bundle_id"] for s in created[:3]}) == 1 and "bundle_id" not in created[3]
    assert Signal.objects.get(pk=created[2]["id"]).quality == 80
    results = match(api_for(member_b), [{"type": "video_md5", "value": "ab" * 16}])
    (hit,) = results[0]["matches"]
    assert hit["signals"][0]["bundle_id"] == created[0]["bundle_id"]
    siblings = {s["type"]: s for s in hit["bundle"]}
    assert siblings["pdq"]["value"] == "cd" * 32
    assert siblings["vpdq"]["value"] == vpdq_text(frames)
    (hit,) = match(api_for(member_b), [{"type": "pdq", "value": "cd" * 32}])[0]["matches"]
    assert {s["type"] for s in hit["bundle"]} == {"video_md5", "vpdq"}


def test_bundle_siblings_share_audience_and_are_shown_only_when_visible(
    upload, api_for, member_a, member_b
):
    created = upload(member_a, [bundle(random_frames(50, 3))]).json()["signals"]
    by_type = {s["type"]: s["id"] for s in created}
    response = api_for(member_a).patch(
        f"/api/v1/signals/{by_type['vpdq']}", {"confidence": 95, "tlp": "green"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["frames"].count("\n") == 3
    assert {s.pk: (s.tlp, s.confidence) for s in Signal.objects.all()} == {
        by_type["vpdq"]: ("green", 95),
        by_type["pdq"]: ("green", 50),
        by_type["video_md5"]: ("green", 50),
    }
    # A sibling whose audience no longer includes the caller (changed outside the bundle
    # rules, e.g. in the database) is not shown.
    Signal.objects.filter(pk=by_type["pdq"]).update(
        audience="members:acme", audience_kind="members", audience_members=",acme,"
    )
    (hit,) = match(api_for(member_b), [{"type": "video_md5", "value": "ab" * 16}])[0]["matches"]
    assert {s["type"] for s in hit["bundle"]} == {"vpdq"}
    (own,) = match(api_for(member_a), [{"type": "video_md5", "value": "ab" * 16}])[0]["matches"]
    assert {s["type"] for s in own["bundle"]} == {"vpdq", "pdq"}
    response = api_for(member_a).patch(
        f"/api/v1/signals/{by_type['vpdq']}", {"audience": "all"}, format="json"
    )
    assert response.status_code == 200, response.content
    (hit,) = match(api_for(member_b), [{"type": "video_md5", "value": "ab" * 16}])[0]["matches"]
    assert {s["type"] for s in hit["bundle"]} == {"vpdq", "pdq"}


def test_retracting_one_hash_retracts_the_bundle(upload, api_for, member_a, member_b):
    created = upload(member_a, [bundle(random_frames(60, 3))]).json()["signals"]
    response = api_for(member_a).delete(
        f"/api/v1/signals/{created[1]['id']}", {"reason": "wrong video"}, format="json"
    )
    assert response.status_code in (200, 204), response.content
    assert set(
        Signal.objects.filter(pk__in=[s["id"] for s in created]).values_list("status", flat=True)
    ) == {"retracted"}
    results = match(
        api_for(member_b),
        [{"type": "video_md5", "value": "ab" * 16}, {"type": "pdq", "value": "cd" * 32}],
    )
    assert [r["matches"] for r in results] == [[], []]


def test_single_hash_reupload_keeps_its_bundle(upload, member_a):
    created = upload(member_a, [bundle(random_frames(70, 2))]).json()["signals"]
    upload(member_a, [item("video_md5", "ab" * 16, confidence=90)])
    signal = Signal.objects.get(pk=created[0]["id"])
    assert signal.confidence == 90 and str(signal.bundle_id) == created[0]["bundle_id"]


def test_malformed_bundles_are_refused(upload, member_a):
    body = assert_problem(upload(member_a, [{"hashes": {}, "category": "csea.csam"}]), 422)
    assert body["errors"][0]["field"] == "hashes"
    body = assert_problem(
        upload(member_a, [{"hashes": {"md5": "zz"}, "category": "csea.csam"}]), 422
    )
    assert body["errors"][0]["field"] == "hashes.md5"


def test_md5_and_video_md5_match_each_other(upload, api_for, member_a, member_b):
    upload(member_a, [item("video_md5", "12" * 16), item("md5", "34" * 16)])
    results = match(
        api_for(member_b),
        [{"type": "md5", "value": "12" * 16}, {"type": "video_md5", "value": "34" * 16}],
    )
    assert [[s["type"] for m in r["matches"] for s in m["signals"]] for r in results] == [
        ["video_md5"],
        ["md5"],
    ]


def test_the_frame_index_follows_new_and_retracted_videos(upload, api_for, member_a, member_b):
    from signals.matching import live

    first, second = random_frames(80, 4), random_frames(81, 6)
    created = upload(member_a, [item("vpdq", vpdq_text(first))]).json()["signals"]
    client = api_for(member_b)
    query = [{"type": "vpdq", "value": vpdq_text(f)} for f in (first, second)]
    assert [len(r["matches"]) for r in match(client, query)] == [1, 0]
    upload(member_a, [item("vpdq", vpdq_text(second))])
    assert [len(r["matches"]) for r in match(client, query)] == [1, 1]
    assert live.vpdq().stats()["hashes"] == 10
    api_for(member_a).delete(f"/api/v1/signals/{created[0]['id']}", {"reason": "x"}, format="json")
    assert [len(r["matches"]) for r in match(client, query)] == [0, 1]
    assert live.vpdq().stats()["hashes"] == 6
