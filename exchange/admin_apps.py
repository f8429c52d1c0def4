"""The admin app config: installs ``exchange.adminsite.BeaconAdminSite`` as the default site,
so every ``@admin.register`` lands on the locked-down site."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class BeaconAdminConfig(AdminConfig):
    default_site = "exchange.adminsite.BeaconAdminSite"
