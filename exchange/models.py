"""Exchange-wide rows: named counters."""

from __future__ import annotations

from django.db import models


class Counter(models.Model):
    """A named monotonic counter (e.g. the feed sequence). Allocating locks the row until the
    transaction commits, so numbers are handed out in commit order."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
