"""The API's JSON renderer and parser write and read the same documents as DRF's own."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from django.utils.translation import gettext_lazy
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from exchange.jsonio import FastJSONParser, FastJSONRenderer, loads

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.just(dt.UTC))
    | st.datetimes()
    | st.dates()
    | st.uuids()
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_renders_what_drf_renders(data: object) -> None:
    wrapped = [data]
    assert json.loads(FastJSONRenderer().render(wrapped)) == json.loads(
        JSONRenderer().render(wrapped)
    )


def test_no_data_is_an_empty_body() -> None:
    assert FastJSONRenderer().render(None) == JSONRenderer().render(None) == b""


def test_datetimes_use_z_and_keep_microseconds() -> None:
    at = dt.datetime(2026, 12, 7, 17, 0, 0, 5, tzinfo=dt.UTC)
    body = FastJSONRenderer().render({"at": at, "whole": at.replace(microsecond=0)})
    assert body == b'{"at":"2026-12-07T17:00:00.000005Z","whole":"2026-12-07T17:00:00Z"}'


def test_values_orjson_does_not_know_and_big_integers_still_render() -> None:
    key = uuid.uuid4()
    body = FastJSONRenderer().render(
        {"lazy": gettext_lazy("Not found."), "id": key, "big": 2**70, "set": {1}}
    )
    assert json.loads(body) == {"lazy": "Not found.", "id": str(key), "big": 2**70, "set": [1]}


def test_indent_requested_by_the_client_is_honoured() -> None:
    body = FastJSONRenderer().render({"a": 1}, "application/json; indent=2", {})
    assert body == b'{\n  "a": 1\n}'


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        scalars.filter(lambda v: not isinstance(v, (dt.date, uuid.UUID))),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c, max_size=4),
        max_leaves=20,
    )
)
def test_parses_what_drf_parses(data: object) -> None:
    raw = json.dumps(data).encode()
    assert FastJSONParser().parse(io.BytesIO(raw)) == JSONParser().parse(io.BytesIO(raw))


@pytest.mark.parametrize("raw", [b"{", b'{"a": NaN}', b'{"a": Infinity}', b"\xff"])
def test_malformed_json_is_the_same_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError) as ours:
        FastJSONParser().parse(io.BytesIO(raw))
    with pytest.raises(ParseError) as theirs:
        JSONParser().parse(io.BytesIO(raw))
    assert str(ours.value.detail) == str(theirs.value.detail)


def test_integers_beyond_64_bits_are_read_exactly() -> None:
    assert FastJSONParser().parse(io.BytesIO(b'{"n": 123456789012345678901234567890}')) == {
        "n": 123456789012345678901234567890
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"12345678901234567890",
        b'{"n": -12345678901234567890}',
        b"[1,\n 12345678901234567890]",
        b'{"items": [{"value": "ab123456789012345678901234567890cd", "n": 2.5}]}',
    ],
)
def test_long_numbers_anywhere_are_read_exactly(raw: bytes) -> None:
    assert loads(raw) == json.loads(raw)
