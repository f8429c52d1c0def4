from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from exchange.metrics import metrics_view
from exchange.views import HealthApi, MeApi

api_v1 = [
    path("health", HealthApi.as_view(), name="health"),
    path("me", MeApi.as_view(), name="me"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularRedocView.as_view(url_name="schema"), name="docs"),
    path("", include("signals.urls")),
    path("", include("exchange.delivery.urls")),
    path("", include("exchange.audit_api")),
    path("", include("exchange.reports.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("taxii2/", include("signals.taxii.urls")),
]
