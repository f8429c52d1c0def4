from __future__ import annotations

import pytest

from signals.models import Indicator
from tests.signals.conftest import digest, item

pytestmark = pytest.mark.django_db

V1 = "v1:first-pepper-0123456789abcdef"
V2 = "v2:second-pepper-0123456789abcdef"


def _match(client, value):
    response = client.post(
        "/api/v1/match",
        {"purpose": "detection", "items": [{"type": "email", "value": value}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["results"][0]["matches"]


def test_a_signal_uploaded_under_v1_still_matches_after_v2_becomes_the_write_key(
    settings, upload, api_for, member_a, member_b
):
    value = digest("target@example.com")
    settings.BEACON_IDENTIFIER_PEPPERS = V1
    upload(member_a, [item("email", value, "csea.sextortion")])
    assert Indicator.objects.get(type="email").key_version == 1

    settings.BEACON_IDENTIFIER_PEPPERS = f"{V1},{V2}"
    matches = _match(api_for(member_b), value)
    assert len(matches) == 1 and matches[0]["signals"][0]["owner"] == "acme"

    # Re-uploading under v2 finds the v1 indicator instead of duplicating it.
    upload(member_b, [item("email", value, "csea.sextortion")])
    assert Indicator.objects.filter(type="email").count() == 1
    # A new identifier is written under the newest version.
    upload(member_b, [item("email", digest("new@example.com"), "csea.sextortion")])
    assert set(Indicator.objects.filter(type="email").values_list("key_version", flat=True)) == {
        1,
        2,
    }


def test_retiring_a_pepper_stops_matching_values_stored_under_it(
    settings, upload, api_for, member_a, member_b
):
    value = digest("target@example.com")
    settings.BEACON_IDENTIFIER_PEPPERS = V1
    upload(member_a, [item("email", value, "csea.sextortion")])
    settings.BEACON_IDENTIFIER_PEPPERS = V2
    assert _match(api_for(member_b), value) == []


def test_the_stored_value_depends_on_the_pepper(settings, upload, member_a):
    value = digest("target@example.com")
    settings.BEACON_IDENTIFIER_PEPPERS = V1
    upload(member_a, [item("email", value, "csea.sextortion")])
    stored_v1 = Indicator.objects.get().value
    from signals import peppers

    assert stored_v1 == peppers.pepper(value, 1)
    settings.BEACON_IDENTIFIER_PEPPERS = V2
    assert peppers.pepper(value, 2) != stored_v1


def test_malformed_pepper_settings_fail_loudly(settings):
    from django.core.exceptions import ImproperlyConfigured

    from signals import peppers

    settings.BEACON_IDENTIFIER_PEPPERS = "short"
    with pytest.raises(ImproperlyConfigured):
        peppers.peppers()
