"""The threatexchange extension: loaded by the library's own mechanisms, fetching a live exchange."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from threatexchange import interface_validation
from threatexchange.cli.main import inner_main
from threatexchange.exchanges import fetch_state
from threatexchange.exchanges.impl.static_sample import StaticSampleSignalExchangeAPI
from threatexchange.extensions.manifest import ThreatExchangeExtensionManifest
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.raw_text import RawTextSignal
from threatexchange.signal_type.url import URLSignal
from threatexchange.utils import dataclass_json

from accounts.models import Member
from client.hma import (
    BeaconCheckpoint,
    BeaconCollabConfig,
    BeaconCredentials,
    BeaconSignalExchangeAPI,
)
from client.normalize import identifier_digest

pytestmark = pytest.mark.django_db(transaction=True)

SIGNAL_TYPES = [PdqSignal, VideoMD5Signal, URLSignal, RawTextSignal]
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def md5_of(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - test data


def shared_items() -> list[dict[str, Any]]:
    common = {"category": "csea.csam", "audience": "group:pilot"}
    return [
        {"type": "pdq", "value": PDQ, "quality": 95, **common},
        {"type": "md5", "value": md5_of("video"), "tags": ["video"], **common},
        {"type": "url", "value": "https://Bad.Example/path", **common},
        {"type": "keyword", "value": "send me a pic first", "lang": "en",
         "category": "csea.grooming", "audience": "group:pilot"},
        {"type": "email", "value": identifier_digest("email", "x@example.com"), **common},
    ]  # fmt: skip


def test_the_extension_loads_through_the_librarys_manifest() -> None:
    manifest = ThreatExchangeExtensionManifest.load_from_module_name("client.hma")
    assert manifest.apis == (BeaconSignalExchangeAPI,)
    mapping = interface_validation.SignalExchangeAPIMapping(
        [*manifest.apis, StaticSampleSignalExchangeAPI]
    )
    assert mapping.api_by_name["beacon"] is BeaconSignalExchangeAPI


def test_collab_config_and_checkpoint_survive_hmas_serialisation() -> None:
    collab = BeaconCollabConfig(name="BEACON_PILOT", only_types={"pdq"}, purpose="investigation")
    again = dataclass_json.dataclass_loads(
        dataclass_json.dataclass_dumps(collab), BeaconCollabConfig
    )
    assert again == collab and again.api == "beacon"
    checkpoint = BeaconCheckpoint(cursor="abc:def", last_seq=7, last_fetch_time=1, progress_ts=5)
    assert (
        dataclass_json.dataclass_loads(dataclass_json.dataclass_dumps(checkpoint), BeaconCheckpoint)
        == checkpoint
    )


def test_fetch_iter_turns_the_feed_into_signals_and_retractions_into_deletes(
    live_server: Any,
    member_a: Member,
    member_b: Member,
    pilot: Any,
    beacon_for: Any,
    issue_token: Callable[..., str],
) -> None:
    owner = beacon_for(member_a)
    uploaded = owner.upload(shared_items()).signals
    collab = BeaconCollabConfig(name="BEACON_PILOT")
    api = BeaconSignalExchangeAPI.for_collab(
        collab, BeaconCredentials(token=issue_token(member_b), url=live_server.url)
    )

    state: dict[str, Any] = {}
    checkpoint = None
    for delta in api.fetch_iter(SIGNAL_TYPES, checkpoint):
        api.naive_fetch_merge(state, delta.updates)
        checkpoint = delta.checkpoint
    assert isinstance(checkpoint, BeaconCheckpoint) and checkpoint.cursor
    assert checkpoint.last_seq > 0 and checkpoint.get_progress_timestamp()
    # The email signal carries no value in the feed (peppered), so HMA cannot hold it.
    assert set(state) == {str(s["id"]) for s in uploaded[:4]}

    converted = api.naive_convert_to_signal_type(SIGNAL_TYPES, collab, state)
    assert set(converted[PdqSignal]) == {PDQ}
    assert set(converted[VideoMD5Signal]) == {md5_of("video")}
    assert set(converted[URLSignal]) == {"https://bad.example/path"}
    assert set(converted[RawTextSignal]) == {"send me a pic first"}
    (opinion,) = converted[PdqSignal][PDQ].get_as_opinions()
    assert opinion.category == fetch_state.SignalOpinionCategory.POSITIVE_CLASS
    assert "csea.csam" in opinion.tags and not opinion.is_mine and opinion.owner == "acme"

    owner.retract(uploaded[0]["id"], reason="false positive confirmed")
    deltas = list(api.fetch_iter(SIGNAL_TYPES, checkpoint))
    assert any(d.updates.get(str(uploaded[0]["id"]), "absent") is None for d in deltas)
    for delta in deltas:
        api.naive_fetch_merge(state, delta.updates)
    converted = api.naive_convert_to_signal_type(SIGNAL_TYPES, collab, state)
    assert PdqSignal not in converted and set(converted[VideoMD5Signal]) == {md5_of("video")}


def test_collab_filters_keep_only_the_chosen_types_and_categories(
    live_server: Any,
    member_a: Member,
    member_b: Member,
    pilot: Any,
    beacon_for: Any,
    issue_token: Callable[..., str],
) -> None:
    beacon_for(member_a).upload(shared_items())
    collab = BeaconCollabConfig(name="BEACON_PDQ", only_types={"pdq", "keyword"},
                                only_categories={"csea.csam"})  # fmt: skip
    api = BeaconSignalExchangeAPI.for_collab(
        collab, BeaconCredentials(token=issue_token(member_b), url=live_server.url)
    )
    state: dict[str, Any] = {}
    for delta in api.fetch_iter(SIGNAL_TYPES, None):
        api.naive_fetch_merge(state, delta.updates)
    assert [r.type for r in state.values()] == ["pdq"]


def test_the_threatexchange_cli_fetches_beacon_as_an_exchange(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    live_server: Any,
    member_a: Member,
    member_b: Member,
    pilot: Any,
    beacon_for: Any,
    issue_token: Callable[..., str],
) -> None:
    beacon_for(member_a).upload(shared_items())
    monkeypatch.setenv("TX_BEACON_CREDENTIALS", f"{issue_token(member_b)},{live_server.url}")
    state_dir = tmp_path / "tx"
    inner_main(["config", "extensions", "add", "client.hma"], state_dir=state_dir)
    inner_main(["config", "collab", "edit", "beacon", "BEACON_PILOT", "--create"],
               state_dir=state_dir)  # fmt: skip
    inner_main(["fetch"], state_dir=state_dir)
    capsys.readouterr()
    inner_main(["dataset", "--print-signals", "--only-collabs", "BEACON_PILOT"],
               state_dir=state_dir)  # fmt: skip
    printed = capsys.readouterr().out
    assert PDQ in printed and md5_of("video") in printed and "https://bad.example/path" in printed


def test_report_opinion_becomes_feedback_on_the_owners_signal(
    live_server: Any,
    member_a: Member,
    member_b: Member,
    pilot: Any,
    beacon_for: Any,
    issue_token: Callable[..., str],
) -> None:
    owner = beacon_for(member_a)
    owner.upload(shared_items()[:2])
    collab = BeaconCollabConfig(name="BEACON_PILOT")
    api = BeaconSignalExchangeAPI.for_collab(
        collab, BeaconCredentials(token=issue_token(member_b), url=live_server.url)
    )
    negative = fetch_state.SignalOpinion(
        False, fetch_state.SignalOpinionCategory.NEGATIVE_CLASS, set()
    )
    api.report_opinion(PdqSignal, PDQ, negative)
    api.report_seen(VideoMD5Signal, md5_of("video"))
    totals = {s["type"]: s["feedback"] for s in owner.iter_signals()}
    assert totals == {"pdq": {"false_positive": 1}, "md5": {"seen": 1}}


def test_vpdq_frames_become_the_librarys_vpdq_value() -> None:
    """threatexchange's vpdq type holds a JSON list of "hash,quality,timestamp" strings (its
    ``VpdqCompactFeature``); Beacon's feed carries the vpdq text format."""
    from client.hma.api import BeaconSignalRecord

    frames = "0,90," + "a" * 64 + ",0.000\n10,40," + "b" * 64 + ",1.000\n"
    record = BeaconSignalRecord.from_signal(
        {"id": 7, "type": "vpdq", "value": "f" * 64, "frames": frames, "owner": "acme"}
    )
    assert record.value is not None
    assert json.loads(record.value) == ["a" * 64 + ",90,0.000", "b" * 64 + ",40,1.000"]
    assert BeaconSignalRecord.from_signal({"id": 8, "type": "vpdq", "owner": "a"}).value is None
