"""Keyword occurrence in free text: one Aho–Corasick pass, whatever the number of keywords.

Each process keeps an automaton of every live keyword indicator and rebuilds it when the
keyword signals change (checked at most every ``BEACON_INDEX_REFRESH_SECONDS``), so a keyword
shared in any process is found in every process within seconds.
"""

from __future__ import annotations

import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import ahocorasick
from django.conf import settings
from django.db.models import Count, Max

from exchange import policy
from signals.models import Indicator, Signal


@dataclass(frozen=True)
class Occurrence:
    keyword: str
    indicator_id: int
    start: int
    end: int


def normalise_with_offsets(text: str) -> tuple[str, list[int]]:
    """The keyword normalisation (NFKC, casefold, whitespace collapsed) applied to ``text``,
    with, for each output character, the index of the input character it came from."""
    out: list[str] = []
    offsets: list[int] = []
    pending_space = -1
    for i, ch in enumerate(text):
        if ch.isspace():
            if out and pending_space < 0:
                pending_space = i
            continue
        if pending_space >= 0:
            out.append(" ")
            offsets.append(pending_space)
            pending_space = -1
        for piece in unicodedata.normalize("NFKC", ch).casefold():
            if piece.isspace():
                continue
            out.append(piece)
            offsets.append(i)
    return "".join(out), offsets


class _KeywordIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._automaton: Any = None
        self._version: tuple[Any, ...] = ()
        self._checked = 0.0

    def _current_version(self) -> tuple[Any, ...]:
        agg = Signal.objects.filter(indicator__type="keyword").aggregate(
            seq=Max("seq"), n=Count("pk")
        )
        return (agg["seq"], agg["n"])

    def automaton(self) -> Any:
        now = time.monotonic()
        if (
            self._automaton is not None
            and now - self._checked < settings.BEACON_INDEX_REFRESH_SECONDS
        ):
            return self._automaton
        with self._lock:
            version = self._current_version()
            self._checked = time.monotonic()
            if self._automaton is None or version != self._version:
                automaton = ahocorasick.Automaton()
                live = Signal.objects.filter(
                    policy.live_q(), indicator__type="keyword"
                ).values_list("indicator_id", flat=True)
                for ind_id, value in Indicator.objects.filter(pk__in=live).values_list(
                    "pk", "value"
                ):
                    automaton.add_word(value, (ind_id, value))
                if len(automaton):
                    automaton.make_automaton()
                self._automaton, self._version = automaton, version
        return self._automaton

    def reset(self) -> None:
        with self._lock:
            self._automaton, self._version, self._checked = None, (), 0.0


_index = _KeywordIndex()


def _boundary(text: str, i: int) -> bool:
    return i < 0 or i >= len(text) or not text[i].isalnum()


def find(text: str) -> list[Occurrence]:
    """Every live keyword occurring in ``text`` as whole words, with spans ``[start, end)``
    in the original text."""
    automaton = _index.automaton()
    if not len(automaton):
        return []
    normalised, offsets = normalise_with_offsets(text)
    found = []
    for end_pos, (ind_id, value) in automaton.iter(normalised):
        start_pos = end_pos - len(value) + 1
        if not (_boundary(normalised, start_pos - 1) and _boundary(normalised, end_pos + 1)):
            continue
        found.append(
            Occurrence(
                keyword=value,
                indicator_id=ind_id,
                start=offsets[start_pos],
                end=offsets[end_pos] + 1,
            )
        )
    found.sort(key=lambda o: (o.start, o.end, o.indicator_id))
    return found


def reset() -> None:
    """Forget the automaton (tests, and after bulk imports in the same process)."""
    _index.reset()
