"""The guard that keeps webhooks from reaching the exchange's own network.

A webhook URL must be ``https`` and every address its host resolves to must be a public
unicast address: no private, loopback, link-local, multicast, reserved, unspecified, shared
(CGNAT) or documentation range, IPv4-mapped IPv6 included. The URL is checked when a
subscription is created and again at every send, and the sender connects only to an address
this guard approved (so a DNS answer that changes between check and connect cannot redirect
it). ``BEACON_ALLOW_PRIVATE_WEBHOOKS`` (on in DEBUG and tests) lets local ``http`` receivers
through for the embedded demo and the test suite.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(Exception):
    """The URL may not receive webhooks. ``str(exc)`` says why, for the member."""


def allow_private() -> bool:
    return bool(getattr(settings, "BEACON_ALLOW_PRIVATE_WEBHOOKS", False))


def address_problem(ip: IPAddress) -> str | None:
    """Why this address may not receive webhooks, or ``None`` if it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_problem(ip.ipv4_mapped)
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for label, hit in checks:
        if hit:
            return f"{label} address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


def check_url(url: str) -> tuple[str, int]:
    """Validate the URL's form: scheme, host, no credentials. Returns (host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"the URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"}:
        raise UnsafeUrl("webhook URLs must use https")
    if scheme == "http" and not allow_private():
        raise UnsafeUrl("webhook URLs must use https")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("the URL must not carry credentials")
    return parts.hostname, port or (443 if scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, or ``UnsafeUrl`` if it does not resolve."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        return [literal]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeUrl(f"the host {host!r} does not resolve") from exc
    out: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise UnsafeUrl(f"the host {host!r} does not resolve")
    return out


def safe_addresses(host: str, port: int) -> list[IPAddress]:
    """The addresses the sender may connect to for ``host``. Refuses the host if ANY of its
    addresses is unsafe: an attacker controls which one a client would pick."""
    addresses = resolve(host, port)
    if not allow_private():
        for ip in addresses:
            problem = address_problem(ip)
            if problem:
                raise UnsafeUrl(f"the host {host!r} resolves to a {problem}")
    return addresses


def check(url: str) -> None:
    """The full check, at creation and at send time."""
    host, port = check_url(url)
    safe_addresses(host, port)
