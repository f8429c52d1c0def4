"""The exchange's Ed25519 audit key: signs checkpoints and export seals.

The private key comes from ``BEACON_AUDIT_SIGNING_KEY`` (PEM, or ``BEACON_AUDIT_SIGNING_KEY_FILE``).
Under DEBUG or in tests a fixed development key is used instead; production refuses to start
signing without a configured key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from client.auditchain import key_id as _key_id
from client.auditchain import load_public_keys

_DEV_SEED = hashlib.sha256(b"beacon dev-only audit signing key, never for production").digest()


@functools.cache
def _private_key(pem: str) -> Ed25519PrivateKey:
    if not pem:
        return Ed25519PrivateKey.from_private_bytes(_DEV_SEED)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("BEACON_AUDIT_SIGNING_KEY must be an Ed25519 private key")
    return key


def private_key() -> Ed25519PrivateKey:
    pem = settings.BEACON_AUDIT_SIGNING_KEY
    if not pem and not (settings.DEBUG or settings.TESTING):
        raise ImproperlyConfigured(
            "BEACON_AUDIT_SIGNING_KEY (an Ed25519 private key, PEM) must be set"
        )
    return _private_key(pem)


def public_key_raw() -> bytes:
    return (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def public_key_pem() -> str:
    return (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_id() -> str:
    return _key_id(public_key_raw())


def sign(message: bytes) -> str:
    """The base64 Ed25519 signature of ``message``."""
    return base64.b64encode(private_key().sign(message)).decode()


_PEM_END = "-----END PUBLIC KEY-----"


def previous_public_keys() -> list[str]:
    """Earlier public keys (PEM) from ``BEACON_AUDIT_PREVIOUS_PUBLIC_KEYS``, after rotations."""
    bundle = settings.BEACON_AUDIT_PREVIOUS_PUBLIC_KEYS or ""
    return [
        part.strip() + "\n" + _PEM_END + "\n" for part in bundle.split(_PEM_END) if part.strip()
    ]


def verification_keys() -> dict[str, Any]:
    """``{key_id: public key}`` for the current key and every previous one."""
    keys = load_public_keys(pem.encode() for pem in previous_public_keys())
    keys[key_id()] = private_key().public_key()
    return keys
