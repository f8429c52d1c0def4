"""Property: the canonical JSON behind every audit hash and digest is exactly the standard
encoder's text (sorted keys, compact, UTF-8), whichever encoder wrote it — so hashes written by
the exchange verify with a verifier that has only the standard library, and old ones still do."""

from __future__ import annotations

import json
from enum import StrEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client import auditchain
from client.auditchain import canonical_json


def _standard(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
_documents = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(_documents)
def test_canonical_json_is_the_standard_encoders_text(document):
    assert canonical_json(document) == _standard(document)


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "document",
    [
        {"b": 1, "a": [1, 2, {"z": '\x00\x1f\x7f\u2028é"\\'}]},
        {1: "integer keys", 20: "are written as text"},
        {"action": Colour.RED, Colour.RED: [Colour.RED]},
        [2**70, -(2**70)],
        {"disclosed": {"m": list(range(5000))}, "at": "2026-07-01T00:00:00.000000Z"},
        ("tuple", ["list", ("nested",)]),
    ],
)
def test_documents_the_exchange_hashes(document):
    assert canonical_json(document) == _standard(document)


def test_values_the_standard_encoder_refuses_are_refused(monkeypatch):
    with pytest.raises(TypeError):
        canonical_json({"when": object()})
    # Without orjson, the verifier falls back to the standard encoder alone.
    monkeypatch.setattr(auditchain, "orjson", None)
    assert canonical_json({"b": [1], "a": "é"}) == '{"a":"é","b":[1]}'


@settings(max_examples=200, deadline=None)
@given(_documents)
def test_holds_float_finds_any_float(document):
    def walk(value: object) -> bool:
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(walk(v) for v in value)
        return type(value) is float

    assert auditchain.holds_float(document) == walk(document)
