"""The signal-type registry. Adding a type is one module here plus its tests."""

from __future__ import annotations

from signals.types.base import Canonical, SignalType, TypeValueError

REGISTRY: dict[str, SignalType] = {}


def register(cls: type[SignalType]) -> type[SignalType]:
    REGISTRY[cls.name] = cls()
    return cls


def get(name: object) -> SignalType | None:
    return REGISTRY.get(name) if isinstance(name, str) else None


from signals.types import (  # noqa: E402  (modules register themselves on import)
    account_id,
    email,
    keyword,
    md5,
    pdq,
    phone,
    sha1,
    sha256,
    url,
    username,
    video_md5,
    vpdq,
)

__all__ = ["REGISTRY", "Canonical", "SignalType", "TypeValueError", "get", "register"]
_ = (account_id, email, keyword, md5, pdq, phone, sha1, sha256, url, username, video_md5, vpdq)
