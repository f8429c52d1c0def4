"""URLs used only by tests: a view that crashes, to see the 500 answer."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.api import ExchangeApi
from exchange.urls import urlpatterns as real_urlpatterns


class BoomApi(ExchangeApi):
    def get(self, request: Request) -> Response:
        raise RuntimeError("secret internal detail")

    def post(self, request: Request) -> Response:
        return Response({"received": request.data})


urlpatterns = [path("api/v1/test/boom", BoomApi.as_view()), path("", include(real_urlpatterns))]
