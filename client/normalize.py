"""Normalisation and hashing of signal values, shared by the exchange and the ``beacon`` client.

The rules are published in ``docs/normalization.md`` with test vectors in
``tests/data/normalization_vectors.json``; the server and the SDK run the same vectors, so a
value hashed by a member matches the same value hashed by any other member.

Identifiers (email, phone, username, account id) are normalised and SHA-256 hashed on the
member's side: raw identifiers never reach the exchange. This module is pure Python (no Django),
because members install the client on its own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

import idna
import phonenumbers

__all__ = [
    "IDENTIFIER_TYPES",
    "NormalizationError",
    "identifier_digest",
    "normalize_account_id",
    "normalize_email",
    "normalize_keyword",
    "normalize_phone",
    "normalize_url",
    "normalize_username",
    "sha256_hex",
]

IDENTIFIER_TYPES = ("email", "phone", "username", "account_id")

# Gmail ignores dots and "+suffix" in the local part; UID2 normalises both away so that every
# spelling of one mailbox hashes alike. googlemail.com is the same service under another name.
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_WHITESPACE = re.compile(r"\s+")


class NormalizationError(ValueError):
    """A value that cannot be normalised: it is rejected, never guessed at."""


def sha256_hex(text: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 bytes of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_email(raw: str) -> str:
    """Trim and lowercase; for gmail.com/googlemail.com drop dots and ``+suffix`` locally.

    Plus-addressing is kept on every other domain, where it may name a different mailbox.
    """
    email = raw.strip().lower()
    if email.count("@") != 1:
        raise NormalizationError("an email address has exactly one '@'")
    local, domain = email.split("@")
    if not local or not domain:
        raise NormalizationError("an email address needs a local part and a domain")
    if _WHITESPACE.search(email):
        raise NormalizationError("an email address has no whitespace inside")
    if domain in _GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            raise NormalizationError("the gmail local part is empty once dots and +suffix go")
    return f"{local}@{domain}"


def normalize_phone(raw: str, *, default_region: str) -> str:
    """E.164 (``+<country><number>``) via ``phonenumbers``.

    ``default_region`` (ISO 3166 alpha-2, e.g. ``GB``) is used only when the number has no
    ``+country`` prefix. Numbers that do not parse or are not valid numbers for their region are
    rejected rather than guessed.
    """
    region = default_region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise NormalizationError(f"unknown default region {default_region!r}")
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as exc:
        raise NormalizationError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise NormalizationError("not a valid phone number for its region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _fold(text: str) -> str:
    # NFKC before and after casefold: casefolding can produce sequences that NFKC changes again
    # (Unicode's NFKC_Casefold), and the result must be stable when normalised twice.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _platform(platform: str) -> str:
    name = _fold(platform).strip()
    if not name:
        raise NormalizationError("a platform name is required")
    if ":" in name or _WHITESPACE.search(name):
        raise NormalizationError("a platform name has no ':' or whitespace")
    return name


def normalize_username(raw: str, *, platform: str) -> str:
    """``platform:username`` with NFKC, casefold, surrounding whitespace and leading ``@`` removed."""
    name = _fold(raw).strip().lstrip("@").strip()
    if not name:
        raise NormalizationError("the username is empty")
    return f"{_platform(platform)}:{name}"


def normalize_account_id(raw: str, *, platform: str) -> str:
    """``platform:id``: the platform is normalised like usernames; the id is only trimmed.

    Platform account ids may be case-sensitive, so their case is kept.
    """
    account = unicodedata.normalize("NFKC", raw).strip()
    if not account:
        raise NormalizationError("the account id is empty")
    return f"{_platform(platform)}:{account}"


def normalize_keyword(text: str) -> str:
    """NFKC, casefold, runs of whitespace collapsed to one space, trimmed."""
    keyword = _WHITESPACE.sub(" ", _fold(text)).strip()
    if not keyword:
        raise NormalizationError("the keyword is empty")
    return keyword


def _host(hostname: str) -> str:
    if ":" in hostname:  # an IPv6 literal; urlsplit has already removed the brackets
        return f"[{hostname.lower()}]"
    host = hostname.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise NormalizationError("the URL has no host")
    if host.isascii():
        # Already ASCII (plain names, punycode, IPv4): lowercasing is the whole IDNA mapping,
        # and names the strict IDNA 2008 rules refuse (e.g. "_dmarc") stay matchable.
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise NormalizationError(f"the host is not a valid internationalised name: {exc}") from None


def normalize_url(url: str) -> str:
    """Lowercase scheme and host, IDNA (punycode) host, default port and fragment removed.

    Path and query are kept as sent (an empty path becomes ``/``); userinfo is kept. Only
    ``http`` and ``https`` URLs with a host are accepted.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise NormalizationError(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise NormalizationError("only http and https URLs are accepted")
    if not parts.hostname:
        raise NormalizationError("the URL has no host")
    netloc = _host(parts.hostname)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    if "@" in parts.netloc:
        netloc = f"{parts.netloc.rsplit('@', 1)[0]}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def identifier_digest(
    type_: str, raw: str, *, platform: str | None = None, region: str | None = None
) -> str:
    """SHA-256 hex of a normalised identifier: the value a member sends for that type.

    ``phone`` needs ``region`` (the default region for numbers without ``+country``);
    ``username`` and ``account_id`` need ``platform``.
    """
    if type_ == "email":
        normalised = normalize_email(raw)
    elif type_ == "phone":
        if not region:
            raise NormalizationError("phone numbers need a default region")
        normalised = normalize_phone(raw, default_region=region)
    elif type_ in ("username", "account_id"):
        if not platform:
            raise NormalizationError(f"{type_} needs a platform")
        if type_ == "username":
            normalised = normalize_username(raw, platform=platform)
        else:
            normalised = normalize_account_id(raw, platform=platform)
    else:
        raise NormalizationError(
            f"unknown identifier type {type_!r}; expected one of {', '.join(IDENTIFIER_TYPES)}"
        )
    return sha256_hex(normalised)
