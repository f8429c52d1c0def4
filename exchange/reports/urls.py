from __future__ import annotations

from django.urls import path

from exchange.reports.api import TransparencyReportApi

urlpatterns = [
    path("reports/transparency", TransparencyReportApi.as_view(), name="report-transparency"),
]
