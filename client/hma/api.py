"""Beacon as a ``threatexchange`` SignalExchangeAPI, so Hasher-Matcher-Actioner can fetch it.

- Records are keyed by Beacon signal id; ``upsert`` feed events become records and ``delete``
  tombstones become ``None`` (the library's delete), so retractions reach HMA's banks.
- The checkpoint is the feed cursor (plus the last ``seq`` and when it was fetched).
- Beacon types map onto the library's signal types by name (``pdq`` → ``pdq``, ``md5`` and
  ``video_md5`` → ``video_md5``, ``sha256`` → ``video_sha256``, ``url`` → ``url``,
  ``keyword`` → ``raw_text``, ``vpdq`` → ``vpdq``), when the host has that type installed;
  vPDQ frames are converted to the library's JSON list of ``"hash,quality,timestamp"``.
  Peppered identifier signals (email, phone, username, account id) carry no value in the feed
  — the exchange never discloses them — so they are skipped: match identifiers with
  ``beacon match`` or ``POST /match``.
- ``report_opinion`` becomes Beacon feedback on every visible signal for that value:
  positive → ``actioned``, negative → ``false_positive``, investigation seed → ``seen``.
"""

# No ``from __future__ import annotations`` here: the library's CLI and HMA's storage read the
# config and checkpoint dataclasses' field types at run time, and need real types, not strings.

import json
import logging
import os
import time
import typing as t
from dataclasses import dataclass, field
from datetime import datetime

from threatexchange.exchanges import auth, signal_exchange_api
from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.signal_type.signal_base import SignalType

from client.sdk import BeaconClient, BeaconConfig, ConfigError

logger = logging.getLogger(__name__)

API_NAME = "beacon"

# Beacon type → the threatexchange SignalType name that holds the same value format.
TYPE_MAPPING: dict[str, str] = {
    "pdq": "pdq",
    "md5": "video_md5",
    "video_md5": "video_md5",
    "sha256": "video_sha256",
    "url": "url",
    "keyword": "raw_text",
    "vpdq": "vpdq",
    "tmk_pdqf": "tmk_pdqf",
}

# What a reported opinion becomes in Beacon's feedback vocabulary.
OPINION_REACTIONS: dict[state.SignalOpinionCategory, str] = {
    state.SignalOpinionCategory.POSITIVE_CLASS: "actioned",
    state.SignalOpinionCategory.NEGATIVE_CLASS: "false_positive",
    state.SignalOpinionCategory.INVESTIGATION_SEED: "seen",
}

_NEGATIVE_REACTIONS = {"false_positive", "disputed"}


@dataclass
class BeaconCheckpoint(state.FetchCheckpointBase):
    """The feed cursor to resume from, the last ``seq`` applied and when."""

    cursor: str
    last_seq: int = 0
    last_fetch_time: int = 0
    progress_ts: int | None = None

    def get_progress_timestamp(self) -> int | None:
        return self.progress_ts


@dataclass
class BeaconCollabConfig(CollaborationConfigWithDefaults):
    """A Beacon collaboration: which purpose to read with, and optional filters."""

    api: str = field(init=False, default=API_NAME)
    purpose: str = field(
        default="detection",
        metadata={"help": "why signals are read: detection or investigation"},
    )
    only_types: t.Set[str] = field(  # noqa: UP006 - the library's CLI needs typing generics
        default_factory=set,
        metadata={"help": "only keep these Beacon signal types (default: all)"},
    )
    only_categories: t.Set[str] = field(  # noqa: UP006
        default_factory=set,
        metadata={"help": "only keep these categories, e.g. csea.csam (default: all)"},
    )
    page_size: int = field(default=1000, metadata={"help": "feed events per request"})


@dataclass
class BeaconCredentials(auth.CredentialHelper):
    """The exchange URL and an API token (``signals:read``, plus ``feedback:write`` to report).

    From ``TX_BEACON_CREDENTIALS`` (``<token>,<url>``), ``~/.tx_beacon_credentials``, or
    ``BEACON_TOKEN`` and ``BEACON_URL`` (and the beacon client's profile file).
    """

    ENV_VARIABLE: t.ClassVar[str] = "TX_BEACON_CREDENTIALS"
    FILE_NAME: t.ClassVar[str] = "~/.tx_beacon_credentials"

    token: str = field(metadata={"help": "Beacon API token (bcn_…)"})
    url: str = field(default="", metadata={"help": "the exchange's URL"})

    @classmethod
    def _from_str(cls, s: str) -> "BeaconCredentials":
        token, _, url = s.strip().partition(",")
        return cls(token=token.strip(), url=url.strip() or os.environ.get("BEACON_URL", ""))

    @classmethod
    def _from_env(cls) -> "BeaconCredentials | None":
        found = super()._from_env()
        if found is not None:
            return found
        try:
            config = BeaconConfig.resolve()
        except ConfigError:
            return None
        return cls(token=config.token, url=config.url)

    def _are_valid(self) -> bool:
        return self.token.startswith("bcn_") and bool(self.url)


@dataclass
class BeaconSignalOpinion(state.SignalOpinion):
    """One member's signal on a value, as an opinion."""

    signal_id: int = 0
    owner: str = ""
    confidence: int = 0
    severity: str = ""


@dataclass
class BeaconSignalRecord:
    """What the feed said about one Beacon signal (the stored, API-format record)."""

    signal_id: int
    type: str
    value: str | None
    category: str
    tags: list[str]
    confidence: int
    severity: str
    tlp: str
    owner: str
    is_mine: bool
    status: str
    updated_at: str
    bundle_id: str | None = None
    feedback: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_signal(cls, signal: t.Mapping[str, t.Any], *, me: str = "") -> "BeaconSignalRecord":
        owner = str(signal.get("owner") or "")
        return cls(
            signal_id=int(signal["id"]),
            type=str(signal.get("type") or ""),
            value=_library_value(signal),
            category=str(signal.get("category") or ""),
            tags=list(signal.get("tags") or []),
            confidence=int(signal.get("confidence") or 0),
            severity=str(signal.get("severity") or ""),
            tlp=str(signal.get("tlp") or ""),
            owner=owner,
            is_mine=bool(me) and owner == me,
            status=str(signal.get("status") or ""),
            updated_at=str(signal.get("updated_at") or ""),
            bundle_id=signal.get("bundle_id"),
            feedback=dict(signal.get("feedback") or {}),
        )

    def as_opinion(self) -> BeaconSignalOpinion:
        negative = sum(self.feedback.get(r, 0) for r in _NEGATIVE_REACTIONS)
        positive = self.feedback.get("actioned", 0) + self.feedback.get("helpful", 0)
        category = (
            state.SignalOpinionCategory.NEGATIVE_CLASS
            if negative > positive
            else state.SignalOpinionCategory.POSITIVE_CLASS
        )
        return BeaconSignalOpinion(
            is_mine=self.is_mine,
            category=category,
            tags={self.category, *self.tags},
            signal_id=self.signal_id,
            owner=self.owner,
            confidence=self.confidence,
            severity=self.severity,
        )


@dataclass
class BeaconSignalMetadata(state.FetchedSignalMetadata):
    """Every visible Beacon signal on one value, as opinions (one per owning member)."""

    records: list[BeaconSignalRecord]

    def get_as_opinions(self) -> t.Sequence[BeaconSignalOpinion]:
        return [r.as_opinion() for r in self.records]


class BeaconSignalExchangeAPI(
    auth.SignalExchangeWithAuth[BeaconCollabConfig, BeaconCredentials],
    signal_exchange_api.SignalExchangeAPI[
        BeaconCollabConfig,
        BeaconCheckpoint,
        BeaconSignalMetadata,
        str,
        BeaconSignalRecord,
    ],
):
    """Fetches Beacon's feed for one collaboration and reports opinions as feedback."""

    def __init__(self, collab: BeaconCollabConfig, client: BeaconClient) -> None:
        super().__init__()
        self.collab = collab
        self.client = client
        self._me: str | None = None
        self._types: set[str] | None = None

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @staticmethod
    def get_config_cls() -> type[BeaconCollabConfig]:
        return BeaconCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[BeaconCheckpoint]:
        return BeaconCheckpoint

    @staticmethod
    def get_record_cls() -> type[BeaconSignalMetadata]:
        return BeaconSignalMetadata

    @staticmethod
    def get_credential_cls() -> type[BeaconCredentials]:
        return BeaconCredentials

    @classmethod
    def for_collab(
        cls,
        collab: BeaconCollabConfig,
        credentials: BeaconCredentials | None = None,
    ) -> "BeaconSignalExchangeAPI":
        credentials = credentials or BeaconCredentials.get(cls)
        return cls(collab, BeaconClient(BeaconConfig(url=credentials.url, token=credentials.token)))

    def _member_slug(self) -> str:
        if self._me is None:
            me = self.client.me()
            member = me.get("member")
            self._me = str(member.get("slug") if isinstance(member, dict) else member or "")
        return self._me

    def _server_types(self) -> set[str]:
        """The signal types this exchange knows (it may not offer every mapped type)."""
        if self._types is None:
            listed = self.client.signal_types()
            entries = listed.get("types", []) if isinstance(listed, dict) else listed
            self._types = {str(e.get("name")) for e in entries if isinstance(e, dict)}
        return self._types

    def _keep(self, record: BeaconSignalRecord) -> bool:
        if self.collab.only_types and record.type not in self.collab.only_types:
            return False
        if self.collab.only_categories and record.category not in self.collab.only_categories:
            return False
        return record.value is not None

    def fetch_iter(
        self,
        _supported_signal_types: t.Sequence[type[SignalType]],
        checkpoint: BeaconCheckpoint | None,
    ) -> t.Iterator[state.FetchDelta[str, BeaconSignalRecord, BeaconCheckpoint]]:
        """One delta per feed page until caught up; resumes from the checkpoint's cursor."""
        me = self._member_slug()
        cursor = checkpoint.cursor if checkpoint else None
        last_seq = checkpoint.last_seq if checkpoint else 0
        progress = checkpoint.progress_ts if checkpoint else None
        for page in self.client.iter_feed(
            purpose=self.collab.purpose, cursor=cursor, limit=self.collab.page_size
        ):
            updates: dict[str, BeaconSignalRecord | None] = {}
            for event in page.events:
                signal = event.get("signal") or {}
                key = str(signal.get("id"))
                last_seq = max(last_seq, int(event.get("seq") or 0))
                if event.get("op") == "delete":
                    updates[key] = None
                    continue
                record = BeaconSignalRecord.from_signal(signal, me=me)
                # A signal that no longer passes the filters is removed like a tombstone.
                updates[key] = record if self._keep(record) else None
                progress = _timestamp(record.updated_at) or progress
            yield state.FetchDelta(
                updates,
                BeaconCheckpoint(
                    cursor=page.next_cursor or cursor or "",
                    last_seq=last_seq,
                    last_fetch_time=int(time.time()),
                    progress_ts=progress,
                ),
            )
            cursor = page.next_cursor or cursor

    @classmethod
    def naive_convert_to_signal_type(
        cls,
        signal_types: t.Sequence[type[SignalType]],
        collab: BeaconCollabConfig,
        fetched: t.Mapping[str, BeaconSignalRecord],
    ) -> dict[type[SignalType], dict[str, BeaconSignalMetadata]]:
        by_name = {st.get_name(): st for st in signal_types}
        ret: dict[type[SignalType], dict[str, BeaconSignalMetadata]] = {}
        for record in fetched.values():
            if record is None or record.value is None:
                continue
            s_type = by_name.get(TYPE_MAPPING.get(record.type, ""))
            if s_type is None:
                continue
            try:
                value = s_type.validate_signal_str(record.value)
            except ValueError:
                logger.warning(
                    "skipping Beacon signal %s: invalid %s", record.signal_id, record.type
                )
                continue
            existing = ret.setdefault(s_type, {}).get(value)
            if existing is None:
                ret[s_type][value] = BeaconSignalMetadata([record])
            else:
                existing.records.append(record)
        return ret

    def report_opinion(
        self,
        s_type: type[SignalType],
        signal: str,
        opinion: state.SignalOpinion,
    ) -> None:
        """Record the opinion as feedback on every visible Beacon signal for this value."""
        offered = self._server_types()
        beacon_types = [
            b for b, tx in TYPE_MAPPING.items() if tx == s_type.get_name() and b in offered
        ]
        if not beacon_types:
            raise NotImplementedError(f"Beacon has no signal type for {s_type.get_name()}")
        reaction = OPINION_REACTIONS[opinion.category]
        me = self._member_slug()
        results = self.client.match(
            [{"type": b, "value": signal} for b in beacon_types], purpose=self.collab.purpose
        )
        # Feedback is what recipients tell owners: the member's own signals are skipped.
        signal_ids = {
            s["id"]
            for r in results
            for m in r.get("matches", [])
            for s in m.get("signals", [])
            if s.get("owner") != me
        }
        for signal_id in sorted(signal_ids):
            self.client.feedback(signal_id, reaction=reaction, purpose=self.collab.purpose)

    def report_seen(self, s_type: type[SignalType], signal: str) -> None:
        """Tell the owners the value was seen (HMA's planned ``report_seen``)."""
        self.report_opinion(
            s_type,
            signal,
            state.SignalOpinion(False, state.SignalOpinionCategory.INVESTIGATION_SEED, set()),
        )


def _library_value(signal: t.Mapping[str, t.Any]) -> str | None:
    """The signal's value in the library's format. vPDQ: Beacon sends the frames in the vpdq
    text format (``frame,quality,hash,timestamp`` lines); the library's ``vpdq`` signal type
    holds a JSON list of ``"hash,quality,timestamp"`` strings."""
    if signal.get("type") != "vpdq":
        return signal.get("value")
    text = signal.get("frames")
    if not isinstance(text, str):
        return None
    compact = []
    for line in text.splitlines():
        _frame, quality, pdq_hex, timestamp = line.split(",")
        compact.append(f"{pdq_hex},{quality},{float(timestamp):.3f}")
    return json.dumps(compact)


def _timestamp(value: str) -> int | None:
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
