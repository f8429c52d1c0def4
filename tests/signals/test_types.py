from __future__ import annotations

import json
from pathlib import Path

import pytest

from signals import types
from signals.types.base import TypeValueError
from tests.signals.conftest import digest

VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "normalization_vectors.json").read_text()
)["vectors"]

HEX64 = "a" * 64
ACCEPT = [
    ("email", {"value": digest("jane@example.com")}),
    ("phone", {"value": digest("+447700900123")}),
    ("username", {"value": digest("instagram:jane")}),
    ("account_id", {"value": digest("tiktok:12345")}),
    ("md5", {"value": "0" * 32}),
    ("sha1", {"value": "f" * 40}),
    ("sha256", {"value": HEX64}),
    ("pdq", {"value": HEX64, "quality": 100}),
    ("pdq", {"value": HEX64}),
    ("keyword", {"value": "send me a pic first", "lang": "en"}),
    ("keyword", {"value": "manda foto", "lang": "pt-BR"}),
    ("url", {"value": "https://example.com/path?q=1"}),
]
REJECT = [
    ("email", {"value": "jane@example.com"}, "value"),
    ("email", {"value": HEX64.upper()}, "value"),
    ("email", {"value": "a" * 63}, "value"),
    ("phone", {"value": "+447700900123"}, "value"),
    ("username", {"value": ""}, "value"),
    ("account_id", {"value": 12345}, "value"),
    ("md5", {"value": "0" * 31}, "value"),
    ("md5", {"value": "g" * 32}, "value"),
    ("sha1", {"value": "f" * 41}, "value"),
    ("sha256", {"value": "xyz"}, "value"),
    ("pdq", {"value": HEX64, "quality": 101}, "quality"),
    ("pdq", {"value": HEX64, "quality": "high"}, "quality"),
    ("pdq", {"value": "a" * 62}, "value"),
    ("keyword", {"value": "   "}, "value"),
    ("keyword", {"value": "x" * 501}, "value"),
    ("keyword", {"value": "hello", "lang": "english language"}, "lang"),
    ("url", {"value": "ftp://example.com/"}, "value"),
    ("url", {"value": "not a url"}, "value"),
]


def test_the_registry_has_every_v1_type():
    assert {
        "email",
        "phone",
        "username",
        "account_id",
        "keyword",
        "md5",
        "sha1",
        "sha256",
        "pdq",
        "url",
    } <= set(types.REGISTRY)


@pytest.mark.parametrize(("type_name", "item"), ACCEPT)
def test_each_type_accepts_well_formed_values(type_name, item):
    canonical = types.get(type_name).canonical(item)
    assert canonical.value


@pytest.mark.parametrize(("type_name", "item", "field"), REJECT)
def test_each_type_rejects_malformed_values_naming_the_field(type_name, item, field):
    with pytest.raises(TypeValueError) as excinfo:
        types.get(type_name).canonical(item)
    assert excinfo.value.field == field
    assert excinfo.value.detail


def test_identifier_errors_say_what_is_expected():
    with pytest.raises(TypeValueError, match="SHA-256 of the normalised email"):
        types.get("email").canonical({"value": "jane@example.com"})


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["rule"] in {"keyword", "url"} and not v.get("error")],
    ids=lambda v: v["input"][:30],
)
def test_server_canonicalises_keywords_and_urls_like_the_shared_vectors(vector):
    canonical = types.get(vector["rule"]).canonical(
        {"value": vector["input"], **vector.get("args", {})}
    )
    assert canonical.value == vector["normalised"]


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["rule"] in {"keyword", "url"} and v.get("error")],
    ids=lambda v: repr(v["input"])[:30],
)
def test_server_rejects_the_vectors_marked_invalid(vector):
    with pytest.raises(TypeValueError):
        types.get(vector["rule"]).canonical({"value": vector["input"], **vector.get("args", {})})


def test_signal_types_endpoint_lists_formats(api_for, member_a):
    body = api_for(member_a).get("/api/v1/signal-types").json()
    by_name = {t["name"]: t for t in body["types"]}
    assert "64 lowercase hex" in by_name["pdq"]["value_format"]
    assert by_name["email"]["stored_as"].startswith("HMAC-SHA256")
    assert by_name["pdq"]["match_kind"] == "hamming"


def test_categories_endpoint_lists_the_seeded_taxonomy(api_for, member_a):
    codes = {c["code"] for c in api_for(member_a).get("/api/v1/categories").json()["categories"]}
    assert {
        "csea.csam",
        "csea.grooming",
        "csea.sextortion",
        "tfgbv.ncii",
        "financial.sextortion_payment",
    } <= codes
