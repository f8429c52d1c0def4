"""What every signal type provides: validation to a canonical value, storage, and matching."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from signals import peppers

HEX64 = re.compile(r"^[0-9a-f]{64}$")
LOWER_HEX = re.compile(r"[0-9a-f]+")


class TypeValueError(ValueError):
    """An item's value (or another field of it) does not fit its type."""

    def __init__(self, detail: str, field: str = "value") -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class Canonical:
    """A validated value: ``value`` is compared for equality; ``extra`` holds fields the type
    keeps beside it (PDQ quality, keyword language)."""

    value: str
    extra: dict[str, Any] = field(default_factory=dict)


class SignalType:
    """One kind of indicator. Subclasses live one per module in ``signals/types/`` and are
    registered with ``@register``."""

    name: ClassVar[str]
    value_format: ClassVar[str]
    stored_as: ClassVar[str]
    matched_by: ClassVar[str]
    #: "exact" (set lookup), "hamming" (PDQ index) or "keyword" (text occurrence too).
    match_kind: ClassVar[str] = "exact"
    #: Identifier types: the stored value is a peppered HMAC, never returned to members.
    peppered: ClassVar[bool] = False
    #: Other types holding the same values, matched too (``md5`` and ``video_md5``).
    aliases: ClassVar[tuple[str, ...]] = ()

    def canonical(self, item: dict[str, Any]) -> Canonical:
        raise NotImplementedError

    def stored_value(self, canonical: Canonical) -> tuple[str, int | None]:
        """What the exchange writes for a new indicator, and the pepper version used."""
        if self.peppered:
            version = peppers.write_version()
            return peppers.pepper(canonical.value, version), version
        return canonical.value, None

    def lookup_values(self, canonical: Canonical) -> list[str]:
        """Every stored form this value may have (one per active pepper version)."""
        if self.peppered:
            return peppers.peppered_forms(canonical.value)
        return [canonical.value]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value_format": self.value_format,
            "stored_as": self.stored_as,
            "matched_by": self.matched_by,
            "match_kind": self.match_kind,
        }


def text_value(item: dict[str, Any]) -> str:
    value = item.get("value")
    if not isinstance(value, str) or not value:
        raise TypeValueError("value must be a non-empty string")
    return value


class HexDigestType(SignalType):
    """A lowercase hex digest of fixed length."""

    length: ClassVar[int]

    def canonical(self, item: dict[str, Any]) -> Canonical:
        value = text_value(item)
        if len(value) != self.length or not LOWER_HEX.fullmatch(value):
            raise TypeValueError(f"expected {self.length} lowercase hex characters for {self.name}")
        return Canonical(value)


class IdentifierType(HexDigestType):
    """A hashed account identifier: members send the SHA-256 of the normalised identifier
    (rules in docs/normalization.md); the exchange stores only a peppered HMAC of it."""

    length = 64
    peppered = True
    stored_as = "HMAC-SHA256(pepper vK, digest) with the key version"
    matched_by = "equality under every active pepper version"

    def canonical(self, item: dict[str, Any]) -> Canonical:
        value = text_value(item)
        if not HEX64.match(value):
            raise TypeValueError(
                f"expected the SHA-256 of the normalised {self.name} as 64 lowercase hex characters; "
                "raw identifiers are never accepted (the beacon client hashes them locally)"
            )
        return Canonical(value)
