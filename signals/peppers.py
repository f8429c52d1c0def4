"""Identifier peppers: the exchange stores ``HMAC-SHA256(pepper_vK, sha256_digest)`` only.

Peppers come from ``BEACON_IDENTIFIER_PEPPERS`` (``v1:<secret>,v2:<secret>``) or its ``_FILE``,
never from the database, so a stolen database alone cannot be enumerated by hashing candidate
identifiers. Every listed version is active for matching; the highest is used for writes.
"""

from __future__ import annotations

import hmac
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=8)
def _parse(raw: str) -> dict[int, bytes]:
    peppers: dict[int, bytes] = {}
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        version, sep, secret = part.partition(":")
        if not sep or not version.startswith("v") or not version[1:].isdigit() or len(secret) < 16:
            raise ImproperlyConfigured(
                "BEACON_IDENTIFIER_PEPPERS must look like 'v1:<secret of 16+ chars>,v2:…'"
            )
        peppers[int(version[1:])] = secret.encode()
    if not peppers:
        raise ImproperlyConfigured("BEACON_IDENTIFIER_PEPPERS is not set")
    return peppers


def peppers() -> dict[int, bytes]:
    return _parse(settings.BEACON_IDENTIFIER_PEPPERS)


@lru_cache(maxsize=8)
def _versions(raw: str) -> tuple[int, ...]:
    return tuple(sorted(_parse(raw)))


def versions() -> tuple[int, ...]:
    """Every active pepper version, oldest first."""
    return _versions(settings.BEACON_IDENTIFIER_PEPPERS)


def write_version() -> int:
    return versions()[-1]


def pepper(digest_hex: str, version: int) -> str:
    return hmac.digest(peppers()[version], bytes.fromhex(digest_hex), "sha256").hex()


def peppered_forms(digest_hex: str) -> list[str]:
    """The digest under every active pepper version, oldest first: each form it may be
    stored in."""
    keys, message = peppers(), bytes.fromhex(digest_hex)
    return [hmac.digest(keys[v], message, "sha256").hex() for v in versions()]
