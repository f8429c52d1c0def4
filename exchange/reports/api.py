"""``GET /api/v1/reports/transparency``: the transparency report's figures as JSON."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Scope
from exchange.api import ExchangeApi, validation_error
from exchange.reports.period import PERIOD_HELP, current_quarter, parse_period
from exchange.reports.services import transparency_report


class TransparencyReportApi(ExchangeApi):
    required_scope = Scope.AUDIT_READ

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "period", str, description=f"{PERIOD_HELP}; the current quarter if omitted"
            )
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("period") or current_quarter()
        try:
            period = parse_period(raw)
        except ValueError as exc:
            raise validation_error(
                [{"index": None, "field": "period", "detail": str(exc)}]
            ) from exc
        return Response(transparency_report(period=period, actor=self.actor))
