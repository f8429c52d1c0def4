"""Producing the transparency report: the figures, and an audit event saying who asked."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from exchange import audit
from exchange.audit import Actor, AuditAction
from exchange.reports.figures import transparency
from exchange.reports.period import Period


@transaction.atomic
def transparency_report(*, period: Period, actor: Actor) -> dict[str, Any]:
    figures = transparency(period)
    audit.record(
        actor=actor,
        action=AuditAction.REPORT_READ,
        target=f"report:transparency:{period.label}",
        params={"period": period.label},
        result_count=1,
        details={"period": period.label},
    )
    return figures
