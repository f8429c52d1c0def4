"""Standard Webhooks 1.0 signatures and the storage of signing secrets.

A secret is ``whsec_<base64 of 32 random bytes>``; a signature is
``v1,<base64 HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>``. The exchange has
to sign with the secret, so it cannot keep only a hash of it: secrets are stored encrypted with
AES-256-GCM under ``BEACON_WEBHOOK_SECRET_KEY`` (or a key derived from ``SECRET_KEY`` when that
is unset), so a copy of the database alone does not let anyone forge webhooks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

SECRET_PREFIX = "whsec_"
_CIPHER_VERSION = "v1"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key_bytes(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def _encryption_key() -> bytes:
    configured = getattr(settings, "BEACON_WEBHOOK_SECRET_KEY", "") or ""
    material = configured or f"beacon-webhook-secrets:{settings.SECRET_KEY}"
    return hashlib.sha256(material.encode()).digest()


def encrypt_secret(secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_encryption_key()).encrypt(nonce, secret.encode(), b"beacon-webhook-secret")
    return f"{_CIPHER_VERSION}:" + base64.b64encode(nonce + sealed).decode()


def decrypt_secret(stored: str) -> str:
    version, _, data = stored.partition(":")
    if version != _CIPHER_VERSION:
        raise ValueError("unknown secret encryption version")
    raw = base64.b64decode(data)
    return AESGCM(_encryption_key()).decrypt(raw[:12], raw[12:], b"beacon-webhook-secret").decode()


def sign(*, secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` for this message id and timestamp."""
    to_sign = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(*, secrets_: list[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers; several secrets (a rotation) give several
    space-separated signatures, and a receiver accepts the message if any one verifies."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret=s, webhook_id=webhook_id, timestamp=timestamp, body=body) for s in secrets_
        ),
    }
