"""Logging a staff user in for admin tests: with a confirmed TOTP device, as the admin requires."""

from __future__ import annotations

import time

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User


def device_for(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test", confirmed=True)


def code_at(device: TOTPDevice, t: float) -> str:
    from django_otp.oath import TOTP

    gen = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    gen.time = t
    return f"{gen.token():06d}"


def fresh_code(device: TOTPDevice) -> str:
    """A code the device has not accepted yet (TOTP refuses a code used twice): the current
    step's, or the next step's, which the default tolerance of one step accepts. A wrong code
    just before makes the device wait a second (django-otp throttling); tests do not wait."""
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    device.refresh_from_db()
    now = time.time()
    step = int((now - device.t0) // device.step)
    t = now if step > device.last_t else now + device.step
    return code_at(device, t)


def login_verified(client: Client, user: User) -> None:
    """Sign in and mark the session as verified by the user's device (what the login form does
    after a good code); the login form itself is tested in test_admin_security.py."""
    device = device_for(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
