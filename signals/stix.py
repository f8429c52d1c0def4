"""Signals as STIX 2.1 objects, for the TAXII server and the one-off bundle export.

Each signal becomes one ``indicator``; around it sit the objects its references need: the
official TLP 2.0 ``marking-definition``s, an ``identity`` per named owner (one shared anonymous
identity for owners that share without attribution), Beacon's own ``identity`` and the
``extension-definition`` that declares Beacon's signal properties and custom patterns.

Identifiers are deterministic (UUIDv5 in Beacon's namespace), so the same signal has the same
STIX id in every collection, page and export. Peppered identifier values never appear: their
indicators say what kind of identifier was shared, and members match their own digests through
``POST /api/v1/match``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.dateparse import parse_datetime

from accounts.models import Member
from signals import types
from signals.models import Signal

SPEC_VERSION = "2.1"
STIX_MEDIA_TYPE = "application/stix+json;version=2.1"

# Beacon's STIX namespace: every deterministic id below is UUIDv5(NAMESPACE, name).
NAMESPACE = uuid.UUID("6f1d3c1e-5b0a-4c8e-9d57-1b2f0c7a9e41")
# The moment Beacon's static objects (markings, extension, identities of the exchange) were
# first published; their ``created`` and ``date_added``.
PUBLISHED = datetime(2026, 1, 1, tzinfo=UTC)
TLP_PUBLISHED = datetime(2022, 10, 1, tzinfo=UTC)
# A revoked version must differ from every live version a consumer may hold (same id and same
# ``modified`` must mean the same content), so it is stamped just after the signal's last change.
REVOKED_OFFSET = timedelta(milliseconds=1)


def stix_id(kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(NAMESPACE, name)}"


EXCHANGE_IDENTITY_ID = stix_id("identity", "exchange")
ANONYMOUS_IDENTITY_ID = stix_id("identity", "anonymous-member")
EXTENSION_ID = stix_id("extension-definition", "beacon-signal-v1")

# The TLP 2.0 marking definitions published by OASIS (cti-stix-common-objects), with the
# extension that carries their level.
TLP_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_MARKINGS = {
    "clear": ("TLP:CLEAR", "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"),
    "green": ("TLP:GREEN", "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"),
    "amber": ("TLP:AMBER", "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"),
    "amber+strict": (
        "TLP:AMBER+STRICT",
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    ),
    "red": ("TLP:RED", "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"),
}

# Types whose values STIX's own cyber-observable vocabulary can express.
_FILE_HASHES = {
    "sha256": "'SHA-256'",
    "sha1": "'SHA-1'",
    "md5": "MD5",
    "video_md5": "MD5",
    "pdq": "PDQ",
}

EXTENSION_SCHEMA = (
    "Beacon signal properties (property-extension on indicator objects): signal_id (the "
    "signal's id in the Beacon REST API; send feedback to /api/v1/signals/{signal_id}/feedback), "
    "signal_type (email, phone, username, account_id, keyword, md5, sha1, sha256, pdq, url, ...), "
    "indicator_id, category (a code of the Beacon taxonomy, e.g. csea.grooming), severity "
    "(low, medium, high, critical), tags, owner (the sharing member's slug, or 'anonymous'), "
    "bundle_id (signals of one media bundle share it), quality (PDQ quality 0-100), lang "
    "(BCP-47 language of a keyword) and match_rule (how Beacon matches the value). "
    "Patterns: file hashes use file:hashes with the STIX hash names, and PDQ perceptual hashes "
    "use the custom hash name file:hashes.PDQ (64 hex characters; matched by Hamming distance, "
    "not equality). Keywords use the custom object path x-beacon-keyword:value (normalised "
    "with NFKC, casefold and collapsed whitespace). Hashed account identifiers are never "
    "published: their pattern names only the identifier kind and Beacon's indicator id "
    "(x-beacon-identifier:kind and x-beacon-identifier:indicator_id); match your own SHA-256 "
    "digests through POST /api/v1/match."
)


# -- timestamps -----------------------------------------------------------------------------
def timestamp(value: datetime) -> str:
    """A STIX/TAXII timestamp: UTC, ``Z``, microsecond precision (so that versions written
    within one millisecond of each other stay distinct)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: str) -> datetime | None:
    """Parse an RFC 3339 timestamp with a time zone; ``None`` if it is not one."""
    parsed = parse_datetime(value.strip()) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


# -- static objects -------------------------------------------------------------------------
def exchange_identity() -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": EXCHANGE_IDENTITY_ID,
        "created": timestamp(PUBLISHED),
        "modified": timestamp(PUBLISHED),
        "name": "Beacon exchange",
        "description": "The Beacon signal-sharing exchange, which publishes these objects.",
        "identity_class": "organization",
    }


def anonymous_identity() -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": ANONYMOUS_IDENTITY_ID,
        "created": timestamp(PUBLISHED),
        "modified": timestamp(PUBLISHED),
        "name": "Anonymous Beacon member",
        "description": "A member of the exchange that shares without attribution.",
        "identity_class": "organization",
    }


def extension_definition() -> dict[str, Any]:
    return {
        "type": "extension-definition",
        "spec_version": SPEC_VERSION,
        "id": EXTENSION_ID,
        "created_by_ref": EXCHANGE_IDENTITY_ID,
        "created": timestamp(PUBLISHED),
        "modified": timestamp(PUBLISHED),
        "name": "Beacon signal",
        "description": "Signal properties of the Beacon exchange and its custom patterns.",
        "schema": EXTENSION_SCHEMA,
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }


def marking_definition(level: str) -> dict[str, Any]:
    name, marking_id = TLP_MARKINGS[level]
    return {
        "type": "marking-definition",
        "spec_version": SPEC_VERSION,
        "id": marking_id,
        "created": "2022-10-01T00:00:00.000Z",
        "name": name,
        "extensions": {
            TLP_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level}
        },
    }


@dataclass(frozen=True)
class StaticObject:
    """An object every collection holds, with the version and date it was added."""

    body: dict[str, Any]
    version: datetime
    order: int


def static_objects() -> list[StaticObject]:
    """Beacon's identity, its extension definition and the five TLP 2.0 markings."""
    out = [
        StaticObject(exchange_identity(), PUBLISHED, 0),
        StaticObject(extension_definition(), PUBLISHED, 1),
    ]
    for order, level in enumerate(TLP_MARKINGS, start=2):
        out.append(StaticObject(marking_definition(level), TLP_PUBLISHED, order))
    return out


# -- owners ---------------------------------------------------------------------------------
def member_identity_id(slug: str) -> str:
    return stix_id("identity", f"member:{slug}")


def shows_owner(signal: Signal, viewer_id: Any) -> bool:
    """Whether ``viewer`` may learn who shared ``signal`` (same rule as the REST API)."""
    return signal.owner_id == viewer_id or signal.owner.attribution != "anonymous"


def owner_identity(signal: Signal, viewer_id: Any) -> dict[str, Any]:
    if not shows_owner(signal, viewer_id):
        return anonymous_identity()
    return member_identity(signal.owner)


def member_identity(owner: Member) -> dict[str, Any]:
    """A named member as the creator of the indicators it shares."""
    return {
        "type": "identity",
        "spec_version": SPEC_VERSION,
        "id": member_identity_id(owner.slug),
        "created": timestamp(owner.created_at),
        "modified": timestamp(owner.created_at),
        "name": owner.name,
        "identity_class": "organization",
        "external_references": [{"source_name": "beacon", "external_id": owner.slug}],
    }


def owner_identity_id(signal: Signal, viewer_id: Any) -> str:
    if not shows_owner(signal, viewer_id):
        return ANONYMOUS_IDENTITY_ID
    return member_identity_id(signal.owner.slug)


# -- indicators -----------------------------------------------------------------------------
def indicator_id(signal_pk: int) -> str:
    return stix_id("indicator", f"signal:{signal_pk}")


def _literal(value: str) -> str:
    """A STIX pattern string literal: quotes and backslashes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pattern_for(signal: Signal) -> str:
    """The STIX pattern of a signal's indicator. Peppered identifiers name only their kind and
    Beacon's indicator id: the stored value is a keyed HMAC that must never leave the exchange."""
    type_name = signal.indicator.type
    type_ = types.get(type_name)
    if type_ is None or type_.peppered:
        return (
            f"[x-beacon-identifier:kind = {_literal(type_name)} AND "
            f"x-beacon-identifier:indicator_id = {int(signal.indicator_id)}]"
        )
    value = signal.indicator.value
    if type_name in _FILE_HASHES:
        return f"[file:hashes.{_FILE_HASHES[type_name]} = {_literal(value)}]"
    if type_name == "url":
        return f"[url:value = {_literal(value)}]"
    if type_name == "keyword":
        return f"[x-beacon-keyword:value = {_literal(value)}]"
    return f"[x-beacon-signal:type = {_literal(type_name)} AND x-beacon-signal:value = {_literal(value)}]"


def live_version(signal: Signal) -> datetime:
    return signal.updated_at


def revoked_version(signal: Signal) -> datetime:
    return signal.updated_at + REVOKED_OFFSET


def _common(signal: Signal, viewer_id: Any, *, base_url: str) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": SPEC_VERSION,
        "id": indicator_id(signal.pk),
        "created_by_ref": owner_identity_id(signal, viewer_id),
        "created": timestamp(signal.created_at),
        "pattern": pattern_for(signal),
        "pattern_type": "stix",
        "pattern_version": SPEC_VERSION,
        "valid_from": timestamp(signal.created_at),
        "object_marking_refs": [TLP_MARKINGS.get(signal.tlp, TLP_MARKINGS["amber"])[1]],
        "external_references": [
            {
                "source_name": "beacon",
                "external_id": str(signal.pk),
                "url": f"{base_url.rstrip('/')}/api/v1/signals/{signal.pk}",
            }
        ],
    }


def indicator(signal: Signal, *, viewer_id: Any, base_url: str = "") -> dict[str, Any]:
    """A live signal as ``viewer`` may see it."""
    type_ = types.get(signal.indicator.type)
    category = signal.category.code
    body = _common(signal, viewer_id, base_url=base_url)
    properties: dict[str, Any] = {
        "extension_type": "property-extension",
        "signal_id": signal.pk,
        "signal_type": signal.indicator.type,
        "indicator_id": signal.indicator_id,
        "category": category,
        "severity": signal.severity,
        "owner": signal.owner.slug if shows_owner(signal, viewer_id) else "anonymous",
    }
    if type_ is not None:
        properties["match_rule"] = type_.matched_by
    if signal.tags:
        properties["tags"] = list(signal.tags)
    if signal.bundle_id:
        properties["bundle_id"] = str(signal.bundle_id)
    if signal.quality is not None:
        properties["quality"] = signal.quality
    if signal.lang:
        properties["lang"] = signal.lang
    body.update(
        modified=timestamp(live_version(signal)),
        name=f"{category} {signal.indicator.type} signal",
        description=signal.category.name,
        indicator_types=["malicious-activity"],
        labels=[category, *[t for t in signal.tags if t != category]],
        confidence=signal.confidence,
        extensions={EXTENSION_ID: properties},
    )
    if signal.expires_at is not None and signal.expires_at > signal.created_at:
        body["valid_until"] = timestamp(signal.expires_at)
    return body


def revoked_indicator(signal: Signal, *, viewer_id: Any, base_url: str = "") -> dict[str, Any]:
    """A signal that was retracted, expired or left the viewer's view. It repeats only what
    the viewer was already given (the pattern), never the current category or tags."""
    body = _common(signal, viewer_id, base_url=base_url)
    body.update(
        modified=timestamp(revoked_version(signal)),
        revoked=True,
        extensions={
            EXTENSION_ID: {
                "extension_type": "property-extension",
                "signal_id": signal.pk,
                "signal_type": signal.indicator.type,
                "indicator_id": signal.indicator_id,
            }
        },
    )
    return body
