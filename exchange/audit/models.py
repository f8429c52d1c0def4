"""The append-only, hash-chained audit log."""

from __future__ import annotations

from typing import Any

from django.db import models

from client.auditchain import GENESIS_HASH


class AppendOnlyError(Exception):
    """The audit log is append-only: the application never updates or deletes an event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit events are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are never deleted")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise AppendOnlyError("audit events are never updated")

    def update_or_create(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("audit events are never updated")


class AuditEvent(models.Model):
    """One thing that happened. Written only by ``exchange.audit.record`` inside the
    transaction of the work it records; never updated or deleted by the application."""

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField(db_index=True)
    # Looked up by the (actor_member, seq) and (action, seq) indexes below.
    actor_member = models.CharField(max_length=64, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    purpose = models.CharField(max_length=32, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.CharField(max_length=64, blank=True)
    params_digest = models.CharField(max_length=64, blank=True)
    result_count = models.IntegerField(default=0)
    # {"<recipient member slug>": [signal ids]} for every signal this event disclosed. A feed
    # page discloses up to 10,000; PostgreSQL compresses the column with LZ4 (migration 0006).
    disclosed = models.JSONField(default=dict, blank=True)
    # Slugs of the members whose signals this event disclosed: their audit:read tokens see it.
    owners = models.JSONField(default=list, blank=True)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        indexes = [
            models.Index(fields=["actor_member", "seq"]),
            models.Index(fields=["action", "seq"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or not kwargs.get("force_insert"):
            raise AppendOnlyError("audit events are only ever inserted, by audit.record()")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit events are never deleted")

    def chained_body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": format_at(self.at),
            "actor_member": self.actor_member,
            "actor": self.actor,
            "action": self.action,
            "purpose": self.purpose,
            "request_id": self.request_id,
            "client_ip": self.client_ip,
            "params_digest": self.params_digest,
            "result_count": self.result_count,
            "disclosed": self.disclosed,
            "owners": self.owners,
            "target": self.target,
            "details": self.details,
        }


class ChainHead(models.Model):
    """The single row holding the newest ``(seq, hash)``. Locking it serialises writers, so
    the chain stays linear under concurrent transactions."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"head #{self.seq}"


def format_at(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditCheckpoint(models.Model):
    """A signed statement that the chain had ``hash`` at ``seq`` at time ``at``."""

    seq = models.BigIntegerField(unique=True)
    hash = models.CharField(max_length=64)
    at = models.DateTimeField()
    key_id = models.CharField(max_length=32)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "hash": self.hash,
            "at": format_at(self.at),
            "key_id": self.key_id,
            "signature": self.signature,
        }


class AuditArchive(models.Model):
    """Events up to ``last_seq`` were archived to a file and removed; the chain in the table
    continues from ``last_hash``."""

    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField(unique=True)
    last_hash = models.CharField(max_length=64)
    count = models.BigIntegerField()
    file_name = models.CharField(max_length=500)
    file_sha256 = models.CharField(max_length=64)
    at = models.DateTimeField()

    class Meta:
        ordering = ["last_seq"]

    def __str__(self) -> str:
        return f"archive #{self.first_seq}–#{self.last_seq}"
