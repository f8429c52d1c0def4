"""SDK behaviour that needs no exchange: configuration, idempotency keys, retries, errors.

Retries are exercised against a real HTTP server on 127.0.0.1 that answers from a script, so
the client's own transport, headers and timing logic are what is tested.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from client.sdk import (
    BeaconClient,
    BeaconConfig,
    ConfigError,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    TransportError,
    ValidationFailed,
    chunk_idempotency_key,
    parse_retry_after,
    save_profile,
)


class ScriptedServer:
    """Answers each request with the next (status, headers, body) of its script."""

    def __init__(self, script: list[tuple[int, dict[str, str], dict[str, Any]]]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": self.rfile.read(length),
                    }
                )
                status, headers, body = server.script.pop(0)
                headers = dict(headers)
                if "_delay" in headers:  # answer late, to make the client time out
                    time.sleep(float(headers.pop("_delay")))
                payload = json.dumps(body).encode()
                self.send_response(status)
                content_type = "application/problem+json" if status >= 400 else "application/json"
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client that timed out has closed the socket: expected here

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def _make(*script: tuple[int, dict[str, str], dict[str, Any]]) -> ScriptedServer:
        server = ScriptedServer(list(script))
        servers.append(server)
        return server

    yield _make
    for server in servers:
        server.close()


def problem(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:beacon:problem:{extra.pop('slug', 'x')}",
        "title": "t",
        "status": status,
        "detail": detail,
        "request_id": "req-123",
        **extra,
    }


def client_for(server: ScriptedServer, sleeps: list[float], **options: Any) -> BeaconClient:
    config = BeaconConfig(url=server.url, token="bcn_test", **options)
    return BeaconClient(config, sleep=sleeps.append)


# -- configuration ---------------------------------------------------------------------------


def test_arguments_win_over_environment_which_wins_over_the_profile(tmp_path: Path) -> None:
    profile = tmp_path / "config.toml"
    save_profile(name="default", url="https://profile.example", token="bcn_profile", path=profile)
    env = {"BEACON_CONFIG": str(profile)}
    assert BeaconConfig.resolve(env=env).token == "bcn_profile"
    env.update(BEACON_URL="https://env.example", BEACON_TOKEN="bcn_env")
    resolved = BeaconConfig.resolve(env=env)
    assert (resolved.url, resolved.token) == ("https://env.example", "bcn_env")
    resolved = BeaconConfig.resolve(url="https://arg.example", token="bcn_arg", env=env)
    assert (resolved.url, resolved.token) == ("https://arg.example", "bcn_arg")


def test_named_profiles_and_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    profile = tmp_path / "beacon" / "config.toml"
    save_profile(name="default", url="https://a.example", token="bcn_a", path=profile)
    save_profile(name="staging", url="https://b.example", token="bcn_b", path=profile)
    assert stat.S_IMODE(os.stat(profile).st_mode) == 0o600
    env = {"BEACON_CONFIG": str(profile), "BEACON_PROFILE": "staging"}
    assert BeaconConfig.resolve(env=env).url == "https://b.example"
    assert BeaconConfig.resolve(profile="default", env=env).token == "bcn_a"
    with pytest.raises(ConfigError, match="no profile 'prod'"):
        BeaconConfig.resolve(profile="prod", env=env)


def test_a_missing_url_or_token_is_a_config_error(tmp_path: Path) -> None:
    env = {"BEACON_CONFIG": str(tmp_path / "none.toml")}
    with pytest.raises(ConfigError, match="no exchange URL"):
        BeaconConfig.resolve(env=env)
    with pytest.raises(ConfigError, match="no API token"):
        BeaconConfig.resolve(url="https://x.example", env=env)


def test_the_api_base_accepts_the_site_root_or_the_api_path() -> None:
    for url in ("https://x.example", "https://x.example/", "https://x.example/api/v1/"):
        assert BeaconConfig(url=url, token="t").api_base == "https://x.example/api/v1/"


# -- idempotency keys -----------------------------------------------------------------------


def test_chunk_keys_depend_only_on_chunk_content() -> None:
    a = [{"type": "md5", "value": "a" * 32, "category": "csea.csam"}]
    same = [{"category": "csea.csam", "value": "a" * 32, "type": "md5"}]
    other = [{"type": "md5", "value": "b" * 32, "category": "csea.csam"}]
    assert chunk_idempotency_key(a) == chunk_idempotency_key(same)
    assert chunk_idempotency_key(a) != chunk_idempotency_key(other)
    assert chunk_idempotency_key(a + other) != chunk_idempotency_key(other + a)
    assert 1 <= len(chunk_idempotency_key(a)) <= 200


# -- retries --------------------------------------------------------------------------------


def test_it_retries_429_and_503_honouring_retry_after_with_the_same_key(scripted: Any) -> None:
    server = scripted(
        (429, {"Retry-After": "7"}, problem(429, "slow down", slug="rate-limited")),
        (503, {}, problem(503, "database restarting")),
        (201, {}, {"created": 1, "updated": 0, "signals": [{"id": 9}]}),
    )
    sleeps: list[float] = []
    with client_for(server, sleeps, backoff_base=0.5) as client:
        result = client.upload([{"type": "md5", "value": "c" * 32, "category": "csea.csam"}])
    assert result.created == 1 and result.signals == [{"id": 9}]
    assert sleeps[0] == 7.0  # Retry-After honoured exactly
    assert 0.25 <= sleeps[1] <= 1.0  # then exponential backoff with jitter
    keys = {r["headers"]["Idempotency-Key"] for r in server.requests}
    request_ids = {r["headers"]["X-Request-ID"] for r in server.requests}
    assert len(server.requests) == 3 and len(keys) == 1 and len(request_ids) == 1
    assert server.requests[0]["headers"]["Authorization"] == "Bearer bcn_test"


def test_retry_after_is_capped_by_backoff_max(scripted: Any) -> None:
    server = scripted(
        (503, {"Retry-After": "3600"}, problem(503, "maintenance")),
        (200, {}, {"member": {"slug": "acme"}}),
    )
    sleeps: list[float] = []
    with client_for(server, sleeps, backoff_max=30.0) as client:
        assert client.me()["member"]["slug"] == "acme"
    assert sleeps == [30.0]


def test_it_gives_up_with_a_typed_error_carrying_detail_and_request_id(scripted: Any) -> None:
    server = scripted(*[(429, {"Retry-After": "2"}, problem(429, "slow down"))] * 3)
    sleeps: list[float] = []
    with client_for(server, sleeps, max_retries=2) as client, pytest.raises(RateLimited) as info:
        client.me()
    assert info.value.retry_after == 2.0
    assert info.value.detail == "slow down" and info.value.request_id == "req-123"
    assert info.value.status == 429 and len(server.requests) == 3 and sleeps == [2.0, 2.0]


def test_a_503_that_persists_raises_service_unavailable(scripted: Any) -> None:
    server = scripted((503, {}, problem(503, "down")))
    with client_for(server, [], max_retries=0) as client, pytest.raises(ServiceUnavailable):
        client.me()


def test_problem_json_becomes_typed_exceptions(scripted: Any) -> None:
    errors = [{"index": 1, "field": "value", "detail": "expected 64 hex"}]
    server = scripted(
        (422, {}, problem(422, "1 item(s) are invalid", slug="validation-error", errors=errors)),
        (404, {}, problem(404, "No such signal.", slug="not-found")),
    )
    with client_for(server, []) as client:
        with pytest.raises(ValidationFailed) as invalid:
            client.upload([{"type": "email", "value": "x"}, {"type": "email", "value": "y"}])
        assert invalid.value.errors == errors and invalid.value.slug == "validation-error"
        assert "req-123" in str(invalid.value)
        with pytest.raises(NotFound) as missing:
            client.get_signal(42)
        assert missing.value.detail == "No such signal."
    assert len(server.requests) == 2  # client errors are never retried


def test_an_unreachable_exchange_is_a_transport_error_after_retries() -> None:
    sleeps: list[float] = []
    config = BeaconConfig(url="http://127.0.0.1:9", token="bcn_x", max_retries=2)
    with BeaconClient(config, sleep=sleeps.append) as client, pytest.raises(TransportError):
        client.me()
    assert len(sleeps) == 2


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(90.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_cursor_iteration_follows_next_cursor_until_null(scripted: Any) -> None:
    server = scripted(
        (200, {}, {"signals": [{"id": 1}, {"id": 2}], "next_cursor": "c1"}),
        (200, {}, {"signals": [{"id": 3}], "next_cursor": None}),
    )
    with client_for(server, []) as client:
        assert [s["id"] for s in client.iter_signals(type="md5", limit=2)] == [1, 2, 3]
    assert "cursor=c1" in server.requests[1]["path"] and "type=md5" in server.requests[0]["path"]


def test_feed_iteration_continues_past_empty_pages_while_there_is_more(scripted: Any) -> None:
    server = scripted(
        (200, {}, {"events": [], "next_cursor": "c1", "more": True}),
        (200, {}, {"events": [{"seq": 5, "op": "upsert"}], "next_cursor": "c2", "more": False}),
    )
    with client_for(server, []) as client:
        pages = list(client.iter_feed(purpose="detection"))
    assert [p.next_cursor for p in pages] == ["c1", "c2"] and pages[1].events[0]["seq"] == 5


def test_match_splits_large_requests_and_keeps_indexes(scripted: Any) -> None:
    server = scripted(
        (200, {}, {"results": [{"index": 1, "matches": [{"indicator_id": 7}]}]}),
        (200, {}, {"results": [{"index": 0, "matches": [{"indicator_id": 8}]}]}),
    )
    items = [{"type": "md5", "value": f"{i:032x}"} for i in range(3)]
    with client_for(server, []) as client:
        results = client.match(items, chunk_size=2)
    assert [(r["index"], r["matches"][0]["indicator_id"]) for r in results] == [(1, 7), (2, 8)]
    assert [len(json.loads(r["body"])["items"]) for r in server.requests] == [2, 1]


def test_uploads_retry_timeouts_with_the_same_key_but_reads_do_not(scripted: Any) -> None:
    answer = {"created": 1, "updated": 0, "signals": [{"id": 1}]}
    server = scripted((201, {"_delay": "1.0"}, answer), (201, {}, answer))
    sleeps: list[float] = []
    with client_for(server, sleeps, timeout=0.3) as client:
        result = client.upload([{"type": "md5", "value": "d" * 32, "category": "csea.csam"}])
    assert result.created == 1 and len(sleeps) == 1
    assert len({r["headers"]["Idempotency-Key"] for r in server.requests}) == 1

    slow = scripted((200, {"_delay": "1.0"}, {"member": {}}))
    with client_for(slow, [], timeout=0.3) as client, pytest.raises(TransportError):
        client.me()
