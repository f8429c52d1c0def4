from __future__ import annotations

from django.urls import path

from signals.api import (
    CategoryListApi,
    FeedApi,
    MatchApi,
    MatchTextApi,
    SignalCollectionApi,
    SignalDetailApi,
    SignalFeedbackApi,
    SignalTypeListApi,
)
from signals.taxii.api import SignalExportApi

urlpatterns = [
    path("signal-types", SignalTypeListApi.as_view(), name="signal-types"),
    path("categories", CategoryListApi.as_view(), name="categories"),
    path("signals", SignalCollectionApi.as_view(), name="signals"),
    path("signals/export", SignalExportApi.as_view(), name="signal-export"),
    path("signals/<int:signal_id>", SignalDetailApi.as_view(), name="signal-detail"),
    path("signals/<int:signal_id>/feedback", SignalFeedbackApi.as_view(), name="signal-feedback"),
    path("match", MatchApi.as_view(), name="match"),
    path("match/text", MatchTextApi.as_view(), name="match-text"),
    path("feed", FeedApi.as_view(), name="feed"),
]
