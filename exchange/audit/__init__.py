"""The audit log: ``record()`` is the only writer. Import the public names from here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exchange.audit.log import Actor, AuditAction, record

__all__ = ["Actor", "AuditAction", "record"]


def __getattr__(name: str) -> Any:
    # Lazy so that the app registry can import this package before models are ready.
    if name in __all__:
        from exchange.audit import log

        return getattr(log, name)
    raise AttributeError(name)
