"""The published normalisation rules: shared vectors plus properties that hold for any input."""

from __future__ import annotations

import hashlib
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.normalize import (
    IDENTIFIER_TYPES,
    NormalizationError,
    identifier_digest,
    normalize_account_id,
    normalize_email,
    normalize_keyword,
    normalize_phone,
    normalize_url,
    normalize_username,
    sha256_hex,
)

VECTORS_PATH = Path(__file__).resolve().parent.parent / "data" / "normalization_vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text("utf-8"))["vectors"]

NORMALISERS = {
    "email": lambda raw, args: normalize_email(raw),
    "phone": lambda raw, args: normalize_phone(raw, **args),
    "username": lambda raw, args: normalize_username(raw, **args),
    "account_id": lambda raw, args: normalize_account_id(raw, **args),
    "keyword": lambda raw, args: normalize_keyword(raw),
    "url": lambda raw, args: normalize_url(raw),
}
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)


def _vector_id(vector: dict[str, Any]) -> str:
    return f"{vector['rule']}:{vector['input']!r}"


def _digest_args(vector: dict[str, Any]) -> dict[str, str]:
    args = vector["args"]
    if "default_region" in args:
        return {"region": args["default_region"]}
    return dict(args)


def test_the_vectors_cover_every_rule_with_valid_and_invalid_input() -> None:
    for rule in NORMALISERS:
        kinds = {bool(v.get("error")) for v in VECTORS if v["rule"] == rule}
        assert kinds == {False, True}, rule


def test_the_spec_gmail_example_hashes_to_the_published_digest() -> None:
    expected = "92ee26057ed9dea2535d6c8b141d48373932476599196e00352254896db5888f"
    assert identifier_digest("email", "Jane.Saoirse@gmail.com") == expected
    assert identifier_digest("email", "JaneSaoirse+Work@gmail.com") == expected


@pytest.mark.parametrize("vector", [v for v in VECTORS if not v.get("error")], ids=_vector_id)
def test_it_normalises_each_vector(vector: dict[str, Any]) -> None:
    normalised = NORMALISERS[vector["rule"]](vector["input"], vector["args"])
    assert normalised == vector["normalised"]
    assert sha256_hex(normalised) == vector["sha256"]
    assert hashlib.sha256(vector["normalised"].encode("utf-8")).hexdigest() == vector["sha256"]
    if vector["rule"] in IDENTIFIER_TYPES:
        digest = identifier_digest(vector["rule"], vector["input"], **_digest_args(vector))
        assert digest == vector["sha256"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.get("error")], ids=_vector_id)
def test_it_rejects_each_invalid_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(NormalizationError):
        NORMALISERS[vector["rule"]](vector["input"], vector["args"])
    if vector["rule"] in IDENTIFIER_TYPES:
        with pytest.raises(NormalizationError):
            identifier_digest(vector["rule"], vector["input"], **_digest_args(vector))


def test_normalization_error_is_a_value_error() -> None:
    assert issubclass(NormalizationError, ValueError)


def test_identifier_digest_needs_region_and_platform_and_a_known_type() -> None:
    with pytest.raises(NormalizationError):
        identifier_digest("phone", "+14155552671")
    with pytest.raises(NormalizationError):
        identifier_digest("username", "jane")
    with pytest.raises(NormalizationError):
        identifier_digest("account_id", "123")
    with pytest.raises(NormalizationError):
        identifier_digest("md5", "jane")


# --- properties -------------------------------------------------------------------------------

LOCAL_CHARS = string.ascii_letters + string.digits + "._-"
local_parts = st.text(LOCAL_CHARS, min_size=1, max_size=20).filter(lambda s: s.strip("."))
domains = st.lists(
    st.text(string.ascii_letters + string.digits, min_size=1, max_size=10), min_size=1, max_size=3
).map(lambda labels: ".".join([*labels, "com"]))
emails = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
gmail_domains = st.sampled_from(["gmail.com", "googlemail.com", "GMail.com"])


def _random_case(text: str, flips: list[bool]) -> str:
    return "".join(
        (c.swapcase() if flip else c) for c, flip in zip(text, flips + [False] * len(text))
    )


@PROPERTY_SETTINGS
@given(st.text(max_size=60))
def test_keyword_normalisation_is_idempotent(text: str) -> None:
    try:
        once = normalize_keyword(text)
    except NormalizationError:
        return
    assert normalize_keyword(once) == once
    assert once == once.strip() and "  " not in once


@PROPERTY_SETTINGS
@given(st.text(max_size=30), st.text(string.ascii_letters, min_size=1, max_size=10))
def test_username_normalisation_is_idempotent(name: str, platform: str) -> None:
    try:
        once = normalize_username(name, platform=platform)
    except NormalizationError:
        return
    prefix, _, rest = once.partition(":")
    assert normalize_username(rest, platform=prefix) == once


@PROPERTY_SETTINGS
@given(st.text(max_size=30), st.text(string.ascii_letters, min_size=1, max_size=10))
def test_account_id_normalisation_is_idempotent(account: str, platform: str) -> None:
    try:
        once = normalize_account_id(account, platform=platform)
    except NormalizationError:
        return
    prefix, _, rest = once.partition(":")
    assert normalize_account_id(rest, platform=prefix) == once


@PROPERTY_SETTINGS
@given(st.one_of(emails, st.builds(lambda lp, d: f"{lp}@{d}", local_parts, gmail_domains)))
def test_email_normalisation_is_idempotent(email: str) -> None:
    try:
        once = normalize_email(email)
    except NormalizationError:
        return
    assert normalize_email(once) == once


@PROPERTY_SETTINGS
@given(emails, st.lists(st.booleans(), max_size=60))
def test_emails_are_case_insensitive(email: str, flips: list[bool]) -> None:
    assert normalize_email(_random_case(email, flips)) == normalize_email(email)
    assert identifier_digest("email", email.upper()) == identifier_digest("email", email.lower())


@PROPERTY_SETTINGS
@given(
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=15),
    st.lists(st.integers(min_value=0, max_value=15), max_size=5),
    st.text(LOCAL_CHARS, max_size=8),
    gmail_domains,
)
def test_gmail_addresses_ignore_dots_and_plus_suffixes(
    local: str, dots: list[int], suffix: str, domain: str
) -> None:
    dotted = local
    for position in sorted(dots, reverse=True):
        dotted = dotted[:position] + "." + dotted[position:]
    variant = f"{dotted}+{suffix}@{domain}"
    assert normalize_email(variant) == normalize_email(f"{local}@{domain}")


@PROPERTY_SETTINGS
@given(local_parts, st.text(string.ascii_lowercase, min_size=1, max_size=8), domains)
def test_plus_addressing_is_kept_on_other_domains(local: str, suffix: str, domain: str) -> None:
    assert normalize_email(f"{local}+{suffix}@{domain}").endswith(f"+{suffix}@{domain.lower()}")


phone_numbers = st.sampled_from(
    [
        ("+442079460958", "US"),
        ("020 7946 0958", "GB"),
        ("(415) 555-2671", "US"),
        ("030 123456", "DE"),
    ]
)


@PROPERTY_SETTINGS
@given(phone_numbers, st.sampled_from(["GB", "US", "DE", "FR", "JP"]))
def test_phone_normalisation_is_idempotent_whatever_the_region(
    number: tuple[str, str], other_region: str
) -> None:
    once = normalize_phone(number[0], default_region=number[1])
    # An E.164 number carries its country, so the default region no longer matters.
    assert normalize_phone(once, default_region=other_region) == once


hosts = st.lists(
    st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=10).filter(
        lambda s: not s.startswith("-") and not s.endswith("-")
    ),
    min_size=1,
    max_size=3,
).map(lambda labels: ".".join([*labels, "org"]))
unicode_hosts = st.sampled_from(["Bücher.example", "MÜNCHEN.de", "пример.рф", "例え.jp"])
urls = st.builds(
    lambda scheme, host, port, path, query, fragment: (
        f"{scheme}://{host}{port}{path}{query}{fragment}"
    ),
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    st.one_of(hosts, unicode_hosts),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    st.sampled_from(["", "/", "/a/b", "/A%2Fb", "/ünï"]),
    st.sampled_from(["", "?", "?q=1", "?Q=A&b"]),
    st.sampled_from(["", "#", "#frag"]),
)


@PROPERTY_SETTINGS
@given(urls)
def test_url_normalisation_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once
    assert "#" not in once


@PROPERTY_SETTINGS
@given(urls, st.lists(st.booleans(), max_size=40))
def test_url_scheme_and_host_are_case_insensitive(url: str, flips: list[bool]) -> None:
    scheme, rest = url.split("://", 1)
    host_end = min((rest.index(c) for c in ":/?#" if c in rest), default=len(rest))
    flipped = f"{_random_case(scheme, flips)}://{_random_case(rest[:host_end], flips[::-1])}"
    assert normalize_url(flipped + rest[host_end:]) == normalize_url(url)


def test_the_published_rules_list_every_vector() -> None:
    docs = (VECTORS_PATH.parent.parent.parent / "docs" / "normalization.md").read_text("utf-8")
    for vector in VECTORS:
        assert json.dumps(vector["input"], ensure_ascii=False).replace("|", "\\|") in docs
        if not vector.get("error"):
            assert vector["sha256"] in docs
