"""URLs used only by tests: API views that run slow or revealing SQL, or meet bad values."""

from __future__ import annotations

from django.db import DataError, connection
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.api import ExchangeApi
from exchange.urls import urlpatterns as real_urlpatterns


class SleepApi(ExchangeApi):
    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(3)")
        return Response({"slept": True})


class ShowTimeoutApi(ExchangeApi):
    def get(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            (value,) = cursor.fetchone()
        return Response({"statement_timeout": value})


class BadValueApi(ExchangeApi):
    def get(self, request: Request) -> Response:
        raise DataError("integer out of range")


urlpatterns = [
    path("api/v1/test/bad-value", BadValueApi.as_view()),
    path("api/v1/test/sleep", SleepApi.as_view()),
    path("api/v1/test/timeout", ShowTimeoutApi.as_view()),
    path("", include(real_urlpatterns)),
]
