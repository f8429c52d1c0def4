"""Properties of the admin's rules: who gets in, and the value search's hashing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts import roles
from accounts.models import Role, User
from client.normalize import identifier_digest
from signals import peppers
from signals.services import indicator_lookup_values


@given(
    role=st.sampled_from(Role.values),
    is_staff=st.booleans(),
    is_superuser=st.booleans(),
    is_active=st.booleans(),
    has_member=st.booleans(),
)
def test_only_active_staff_administrators_and_auditors_get_in(
    role, is_staff, is_superuser, is_active, has_member
):
    user = User(
        username="u",
        role=role,
        is_staff=is_staff,
        is_superuser=is_superuser,
        is_active=is_active,
        member_id=1 if has_member else None,
    )
    admin = roles.is_exchange_admin(user)
    auditor = roles.is_auditor(user)
    assert not (admin and auditor)
    assert roles.has_admin_access(user) == (admin or auditor)
    if not (is_staff and is_active):
        assert not roles.has_admin_access(user)
    if role in (Role.MEMBER_ADMIN, Role.MEMBER_ANALYST) and (has_member or not is_superuser):
        # Member users never get in, even marked staff or superuser.
        assert not roles.has_admin_access(user)
    if auditor:
        assert role == Role.AUDITOR
    if role == Role.EXCHANGE_ADMIN and is_staff and is_active:
        assert admin


_local = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]", fullmatch=True)
_domain = st.sampled_from(["gmail.com", "googlemail.com", "example.org", "Mail.Example.COM"])


@settings(max_examples=60, deadline=None)
@given(local=_local, domain=_domain, spaces=st.sampled_from(["", " ", "  "]))
def test_a_pasted_raw_email_is_looked_up_as_the_client_would_hash_it(local, domain, spaces):
    raw = f"{spaces}{local}@{domain}{spaces}"
    try:
        digest = identifier_digest("email", raw)
    except ValueError:
        return  # the client rejects it too: nothing to compare
    _, from_raw = indicator_lookup_values(type_name="email", raw=raw)
    _, from_digest = indicator_lookup_values(type_name="email", raw=digest)
    assert from_raw == from_digest
    assert from_raw == [peppers.pepper(digest, v) for v in sorted(peppers.peppers())]
    assert all(raw.strip() not in value and digest not in value for value in from_raw)


@pytest.mark.parametrize(
    ("type_name", "raw", "kwargs"),
    [
        ("phone", "+44 20 7946 0958", {"region": "US"}),
        ("phone", "020 7946 0958", {"region": "GB"}),
        ("username", "@Jane_Doe", {"platform": "example"}),
    ],
)
def test_raw_phones_and_usernames_are_hashed_like_the_client(type_name, raw, kwargs):
    digest = identifier_digest(type_name, raw, **kwargs)
    _, values = indicator_lookup_values(type_name=type_name, raw=raw, **kwargs)
    assert values == [peppers.pepper(digest, v) for v in sorted(peppers.peppers())]
