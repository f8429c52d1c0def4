from __future__ import annotations

from django.urls import path

from exchange.delivery.api import (
    DeliveryRedeliverApi,
    SubscriptionCollectionApi,
    SubscriptionDeliveryListApi,
    SubscriptionDetailApi,
    SubscriptionResumeApi,
    SubscriptionRotateSecretApi,
    SubscriptionTestApi,
)

urlpatterns = [
    path("subscriptions", SubscriptionCollectionApi.as_view(), name="subscriptions"),
    path(
        "subscriptions/<int:subscription_id>",
        SubscriptionDetailApi.as_view(),
        name="subscription-detail",
    ),
    path(
        "subscriptions/<int:subscription_id>/rotate-secret",
        SubscriptionRotateSecretApi.as_view(),
        name="subscription-rotate-secret",
    ),
    path(
        "subscriptions/<int:subscription_id>/resume",
        SubscriptionResumeApi.as_view(),
        name="subscription-resume",
    ),
    path(
        "subscriptions/<int:subscription_id>/test",
        SubscriptionTestApi.as_view(),
        name="subscription-test",
    ),
    path(
        "subscriptions/<int:subscription_id>/deliveries",
        SubscriptionDeliveryListApi.as_view(),
        name="subscription-deliveries",
    ),
    path(
        "deliveries/<int:delivery_id>/redeliver",
        DeliveryRedeliverApi.as_view(),
        name="delivery-redeliver",
    ),
]
