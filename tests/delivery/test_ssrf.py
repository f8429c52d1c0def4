"""The SSRF guard blocks every class of non-public address, at creation, at send time and at
connect time."""

from __future__ import annotations

import ipaddress

import httpcore
import pytest

from exchange.delivery import sender, ssrf
from exchange.delivery.models import Delivery, DeliveryStatus
from tests.delivery.conftest import run_pipeline, submit, subscribe

BAD = {
    "loopback": ["127.0.0.1", "127.8.9.10", "::1"],
    "private": ["10.0.0.1", "172.16.5.4", "192.168.1.1", "fd00::1"],
    "link-local": ["169.254.169.254", "fe80::1"],
    "multicast": ["224.0.0.1", "239.255.255.250", "ff02::1"],
    "reserved": ["240.0.0.1"],
    "unspecified": ["0.0.0.0", "::"],  # noqa: S104 - a test value
    "non-public": ["100.64.0.1"],
}


@pytest.mark.parametrize(
    ("label", "address"), [(label, a) for label, addrs in BAD.items() for a in addrs]
)
def test_each_bad_address_class_is_refused(label, address, settings):
    settings.BEACON_ALLOW_PRIVATE_WEBHOOKS = False
    problem = ssrf.address_problem(ipaddress.ip_address(address))
    assert problem is not None, address
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.check(f"https://{host}/hook")


def test_ipv4_mapped_ipv6_is_unwrapped(settings):
    settings.BEACON_ALLOW_PRIVATE_WEBHOOKS = False
    assert "loopback" in ssrf.address_problem(ipaddress.ip_address("::ffff:127.0.0.1"))
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.check("https://[::ffff:10.0.0.1]/hook")


def test_public_addresses_pass():
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"):
        assert ssrf.address_problem(ipaddress.ip_address(address)) is None


def test_host_names_are_checked_after_resolution(settings):
    settings.BEACON_ALLOW_PRIVATE_WEBHOOKS = False
    with pytest.raises(ssrf.UnsafeUrl, match="loopback"):
        ssrf.check("https://localhost/hook")
    with pytest.raises(ssrf.UnsafeUrl, match="does not resolve"):
        ssrf.check("https://no-such-host.invalid/hook")


def test_http_credentials_and_other_schemes_are_refused(settings):
    settings.BEACON_ALLOW_PRIVATE_WEBHOOKS = False
    for url in ("http://93.184.216.34/", "ftp://93.184.216.34/", "https://u:p@93.184.216.34/"):
        with pytest.raises(ssrf.UnsafeUrl):
            ssrf.check(url)


def test_the_connection_itself_refuses_unsafe_addresses(settings, receiver):
    settings.BEACON_ALLOW_PRIVATE_WEBHOOKS = False
    with pytest.raises(httpcore.ConnectError, match="SSRF"):
        sender._GuardedBackend().connect_tcp("127.0.0.1", receiver.port)
    assert receiver.received == []


@pytest.mark.django_db
def test_the_guard_runs_again_at_send_time(settings, receiver, member_a, member_b):
    subscribe(member_b, receiver.url)  # allowed when created (tests allow local receivers)
    submit(member_a, "ssrf-at-send")
    settings.BEACON_ALLOW_PRIVATE_WEBHOOKS = False
    sender.reset_pool()
    run_pipeline()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert "SSRF guard" in delivery.last_error
    assert receiver.received == []
