"""The Beacon SDK: a typed HTTP client for the exchange's REST API v1.

>>> from client.sdk import BeaconClient
>>> with BeaconClient.from_env() as beacon:      # BEACON_URL, BEACON_TOKEN or a profile
...     beacon.me()["member"]

Configuration comes from arguments, then the environment (``BEACON_URL``, ``BEACON_TOKEN``,
``BEACON_PROFILE``), then a profile file (``~/.config/beacon/config.toml`` or
``BEACON_CONFIG``). Requests answered 429 or 503 (and connection failures) are retried with
exponential backoff, honouring ``Retry-After``. Uploads carry an ``Idempotency-Key`` derived
from the chunk's content, so sending the same chunk again — after a crash, a timeout or in a
resumed run — returns the first answer instead of writing twice. Errors are raised as
:class:`ApiError` subclasses carrying the server's ``detail`` and ``request_id``.

This module never imports Django or the exchange's apps: members install it on its own.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import time
import tomllib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import httpx

__all__ = [
    "DEFAULT_PROFILE_PATH",
    "MAX_BATCH_ITEMS",
    "ApiError",
    "BadRequest",
    "BeaconClient",
    "BeaconConfig",
    "BeaconError",
    "ConfigError",
    "Conflict",
    "FeedPage",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "ServiceUnavailable",
    "TransportError",
    "Unauthenticated",
    "UploadResult",
    "ValidationFailed",
    "chunk_idempotency_key",
    "parse_retry_after",
    "save_profile",
]

MAX_BATCH_ITEMS = 10_000
DEFAULT_PROFILE_PATH = Path("~/.config/beacon/config.toml")
USER_AGENT = "beacon-client/0.1"


# -- errors ---------------------------------------------------------------------------------


class BeaconError(Exception):
    """Base of every error the SDK raises."""


class ConfigError(BeaconError):
    """The client is missing its URL or token, or the profile file is unusable."""


class TransportError(BeaconError):
    """The exchange could not be reached (after retries)."""


class ApiError(BeaconError):
    """An RFC 9457 problem+json answer from the exchange.

    ``detail`` is the server's explanation, ``request_id`` the id to quote when reporting it,
    ``errors`` the per-item validation errors (``index``, ``field``, ``detail``).
    """

    status: int
    problem: dict[str, Any]

    def __init__(self, status: int, problem: Mapping[str, Any], *, request_id: str = "") -> None:
        self.status = status
        self.problem = dict(problem)
        self.type = str(problem.get("type") or "about:blank")
        self.title = str(problem.get("title") or f"HTTP {status}")
        self.detail = str(problem.get("detail") or self.title)
        self.request_id = str(problem.get("request_id") or request_id)
        raw_errors = problem.get("errors") or []
        self.errors: list[dict[str, Any]] = [e for e in raw_errors if isinstance(e, dict)]
        suffix = f" (request {self.request_id})" if self.request_id else ""
        super().__init__(f"{status} {self.title}: {self.detail}{suffix}")

    @property
    def slug(self) -> str:
        """The last part of the problem type, e.g. ``validation-error``."""
        return self.type.rsplit(":", 1)[-1].rsplit("/", 1)[-1]


class BadRequest(ApiError):
    """400: a malformed body, cursor or parameter."""


class Unauthenticated(ApiError):
    """401: no token, or a token that is unknown, revoked or expired."""


class Forbidden(ApiError):
    """403: the token lacks the scope or the purpose."""


class NotFound(ApiError):
    """404: the object does not exist or is not visible to this member."""


class Conflict(ApiError):
    """409: e.g. an upload with the same idempotency key is still in flight."""


class PayloadTooLarge(ApiError):
    """413: too many items or too large a body."""


class ValidationFailed(ApiError):
    """422: invalid fields; ``errors`` lists every bad item by index."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` says how long to wait (seconds)."""

    retry_after: float | None = None


class ServiceUnavailable(ApiError):
    """503: the exchange (or its database) is temporarily unavailable."""

    retry_after: float | None = None


class ServerError(ApiError):
    """Any other 5xx."""


_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def _error_for(response: httpx.Response) -> ApiError:
    request_id = response.headers.get("X-Request-ID", "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text[:500] or response.reason_phrase}
    cls = _ERRORS_BY_STATUS.get(response.status_code)
    if cls is None:
        cls = ServerError if response.status_code >= 500 else ApiError
    error = cls(response.status_code, body, request_id=request_id)
    if isinstance(error, (RateLimited, ServiceUnavailable)):
        error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return error


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# -- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class BeaconConfig:
    """Where the exchange is and how to authenticate; see :meth:`resolve`."""

    url: str
    token: str
    timeout: float = 60.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    verify: bool | str = True

    ENV_URL: ClassVar[str] = "BEACON_URL"
    ENV_TOKEN: ClassVar[str] = "BEACON_TOKEN"
    ENV_PROFILE: ClassVar[str] = "BEACON_PROFILE"
    ENV_CONFIG: ClassVar[str] = "BEACON_CONFIG"

    @property
    def api_base(self) -> str:
        """The ``/api/v1/`` base URL (``url`` may be the site root or already the API base)."""
        base = self.url.rstrip("/")
        if not base.endswith("/api/v1"):
            base = f"{base}/api/v1"
        return base + "/"

    @classmethod
    def profile_path(cls, env: Mapping[str, str] | None = None) -> Path:
        env = os.environ if env is None else env
        return Path(env.get(cls.ENV_CONFIG) or DEFAULT_PROFILE_PATH).expanduser()

    @classmethod
    def load_profile(cls, name: str, path: Path) -> dict[str, Any]:
        """The ``[profiles.<name>]`` table of a TOML profile file (empty if absent)."""
        if not path.is_file():
            return {}
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read profile file {path}: {exc}") from exc
        profile = data.get("profiles", {}).get(name, {})
        if not isinstance(profile, dict):
            raise ConfigError(f"profile {name!r} in {path} is not a table")
        return profile

    @classmethod
    def resolve(
        cls,
        *,
        url: str | None = None,
        token: str | None = None,
        profile: str | None = None,
        profile_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> BeaconConfig:
        """Arguments win over the environment, which wins over the profile file."""
        env = os.environ if env is None else env
        name = profile or env.get(cls.ENV_PROFILE) or "default"
        path = profile_path or cls.profile_path(env)
        stored = cls.load_profile(name, path)
        if profile and not stored:
            raise ConfigError(f"no profile {profile!r} in {path}")
        resolved_url = url or env.get(cls.ENV_URL) or stored.get("url")
        resolved_token = token or env.get(cls.ENV_TOKEN) or stored.get("token")
        if not resolved_url:
            raise ConfigError(
                f"no exchange URL: pass --url, set {cls.ENV_URL}, or add a profile to {path}"
            )
        if not resolved_token:
            raise ConfigError(
                f"no API token: pass --token, set {cls.ENV_TOKEN}, or add a profile to {path}"
            )
        for key in ("timeout", "max_retries", "verify"):
            if key in stored and key not in options:
                options[key] = stored[key]
        return cls(url=str(resolved_url), token=str(resolved_token), **options)


def save_profile(*, name: str, url: str, token: str, path: Path | None = None) -> Path:
    """Write (or replace) a profile in the TOML profile file, readable by the owner only."""
    target = (path or BeaconConfig.profile_path()).expanduser()
    profiles: dict[str, dict[str, Any]] = {}
    if target.is_file():
        profiles = dict(tomllib.loads(target.read_text("utf-8")).get("profiles", {}))
    profiles[name] = {"url": url, "token": token}
    lines = []
    for profile_name, values in sorted(profiles.items()):
        lines.append(f"[profiles.{json.dumps(profile_name)}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    os.chmod(target, 0o600)
    return target


# -- results --------------------------------------------------------------------------------


@dataclass
class UploadResult:
    """The answer to one upload request (``POST /signals``)."""

    created: int
    updated: int
    signals: list[dict[str, Any]]
    idempotency_key: str = ""
    request_id: str = ""
    # True when the exchange answered from its record of an earlier identical request.
    replayed: bool = False

    @classmethod
    def from_body(
        cls,
        body: Mapping[str, Any],
        *,
        key: str = "",
        request_id: str = "",
        replayed: bool = False,
    ) -> UploadResult:
        return cls(
            created=int(body.get("created", 0)),
            updated=int(body.get("updated", 0)),
            signals=list(body.get("signals", [])),
            idempotency_key=key,
            request_id=request_id,
            replayed=replayed,
        )


@dataclass
class FeedPage:
    """One page of ``GET /feed``: events in ``seq`` order and the cursor to continue from."""

    events: list[dict[str, Any]]
    next_cursor: str | None
    more: bool = False
    cursor: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def chunk_idempotency_key(items: Sequence[Mapping[str, Any]], *, namespace: str = "") -> str:
    """A deterministic ``Idempotency-Key`` for an upload chunk: the SHA-256 of its content.

    The same items in the same order always give the same key, so a resumed or repeated run
    re-sends the same key and the exchange answers from its record instead of writing again.
    """
    digest = hashlib.sha256()
    digest.update(namespace.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(
        json.dumps(list(items), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
    )
    return f"bcn-chunk-{digest.hexdigest()[:48]}"


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# -- the client -----------------------------------------------------------------------------

_RETRY_STATUSES = frozenset({429, 502, 503, 504})


class BeaconClient:
    """A client for one exchange and one token. Use as a context manager, or call ``close``."""

    def __init__(
        self,
        config: BeaconConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[int, float, str], None] | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._on_retry = on_retry
        self._http = httpx.Client(
            base_url=config.api_base,
            headers={
                "Authorization": f"Bearer {config.token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
            },
            timeout=config.timeout,
            verify=config.verify,
            transport=transport,
        )

    @classmethod
    def from_env(cls, **kwargs: Any) -> BeaconClient:
        """Build from arguments / environment / profile (see :meth:`BeaconConfig.resolve`)."""
        client_kwargs = {
            k: kwargs.pop(k) for k in ("transport", "sleep", "on_retry") if k in kwargs
        }
        return cls(BeaconConfig.resolve(**kwargs), **client_kwargs)

    def __enter__(self) -> BeaconClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport with retries ------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.config.backoff_max)
        delay = self.config.backoff_base * (2**attempt)
        # Full jitter: many clients throttled together must not retry in lockstep.
        return min(self.config.backoff_max, random.uniform(delay / 2, delay))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry_conflict: bool = False,
        retry_timeouts: bool = False,
    ) -> httpx.Response:
        """Send a request, retrying 429/502/503/504 and connection failures; raise on errors.

        ``retry_conflict`` also retries 409 (an idempotent upload still in flight elsewhere) and
        ``retry_timeouts`` retries timeouts — both only safe for requests that carry an
        ``Idempotency-Key``. Every attempt sends the same ``X-Request-ID``, so the server's logs
        tie retries together.
        """
        send_headers = {"X-Request-ID": uuid.uuid4().hex}
        send_headers.update(headers or {})
        clean_params = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                response = self._http.request(
                    method,
                    path.lstrip("/"),
                    params=clean_params,
                    json=json_body,
                    content=content,
                    headers=send_headers,
                )
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                if attempt >= self.config.max_retries:
                    raise TransportError(
                        f"cannot reach {self.config.api_base}: {exc} "
                        f"(request {send_headers['X-Request-ID']})"
                    ) from exc
                self._wait(attempt, None, f"connection failed: {exc}")
                attempt += 1
                continue
            except httpx.TimeoutException as exc:
                if retry_timeouts and attempt < self.config.max_retries:
                    self._wait(attempt, None, f"timed out after {self.config.timeout} s")
                    attempt += 1
                    continue
                raise TransportError(
                    f"{method} {path} timed out after {self.config.timeout} s "
                    f"(request {send_headers['X-Request-ID']})"
                ) from exc
            if response.status_code < 400:
                return response
            retryable = response.status_code in _RETRY_STATUSES or (
                retry_conflict and response.status_code == 409
            )
            if not retryable or attempt >= self.config.max_retries:
                raise _error_for(response)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            self._wait(attempt, retry_after, f"HTTP {response.status_code}")
            attempt += 1

    def _wait(self, attempt: int, retry_after: float | None, reason: str) -> None:
        delay = self._backoff(attempt, retry_after)
        if self._on_retry is not None:
            self._on_retry(attempt + 1, delay, reason)
        self._sleep(delay)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return {}
        return response.json()

    # -- discovery ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /health`` — answers even when the exchange is degraded (503 is returned, not raised)."""
        response = self._http.get("health")
        try:
            body = response.json()
        except ValueError:
            body = {"status": f"HTTP {response.status_code}"}
        return dict(body) if isinstance(body, dict) else {"status": str(body)}

    def me(self) -> dict[str, Any]:
        return dict(self._json("GET", "me"))

    def signal_types(self) -> Any:
        return self._json("GET", "signal-types")

    def categories(self) -> Any:
        return self._json("GET", "categories")

    # -- signals ----------------------------------------------------------------------------
    def upload(
        self, items: Sequence[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> UploadResult:
        """Upsert up to 10,000 items in one all-or-nothing request.

        Without an explicit key, the key is derived from the items (see
        :func:`chunk_idempotency_key`), so retrying the same items never writes twice.
        """
        if len(items) > MAX_BATCH_ITEMS:
            raise ValueError(f"at most {MAX_BATCH_ITEMS} items per request; use upload_many")
        key = idempotency_key or chunk_idempotency_key(items)
        response = self.request(
            "POST",
            "signals",
            json_body={"items": list(items)},
            headers={"Idempotency-Key": key},
            retry_conflict=True,
            retry_timeouts=True,
        )
        return UploadResult.from_body(
            response.json(),
            key=key,
            request_id=response.headers.get("X-Request-ID", ""),
            replayed=response.headers.get("Idempotent-Replayed", "").lower() == "true",
        )

    def upload_many(
        self, items: Iterable[dict[str, Any]], *, chunk_size: int = MAX_BATCH_ITEMS
    ) -> Iterator[UploadResult]:
        """Upload any number of items in chunks, yielding one result per chunk."""
        if not 1 <= chunk_size <= MAX_BATCH_ITEMS:
            raise ValueError(f"chunk_size must be between 1 and {MAX_BATCH_ITEMS}")
        for chunk in _chunks(items, chunk_size):
            yield self.upload(chunk)

    def get_signal(self, signal_id: int | str) -> dict[str, Any]:
        return dict(self._json("GET", f"signals/{signal_id}"))

    def update_signal(self, signal_id: int | str, **changes: Any) -> dict[str, Any]:
        return dict(self._json("PATCH", f"signals/{signal_id}", json_body=changes))

    def retract(self, signal_id: int | str, *, reason: str) -> dict[str, Any]:
        """Retract one of the member's own signals; a tombstone reaches every past recipient."""
        return dict(self._json("DELETE", f"signals/{signal_id}", json_body={"reason": reason}))

    def iter_signals(
        self,
        *,
        type: str | None = None,  # noqa: A002 - the API's own parameter name
        category: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Every signal the member owns, following ``next_cursor`` until it is null."""
        return self.paginate(
            "signals",
            params={"type": type, "category": category, "status": status, "limit": limit},
        )

    def paginate(
        self, path: str, *, params: Mapping[str, Any] | None = None, key: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Iterate the items of any cursor-paginated list endpoint."""
        query = dict(params or {})
        while True:
            body = self._json("GET", path, params=query)
            items = body.get(key) if key else _list_field(body)
            yield from items or []
            cursor = body.get("next_cursor")
            if not cursor or not items:
                return
            query["cursor"] = cursor

    # -- matching ---------------------------------------------------------------------------
    def match(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        purpose: str = "detection",
        chunk_size: int = MAX_BATCH_ITEMS,
    ) -> list[dict[str, Any]]:
        """Match any number of ``{"type", "value", "max_distance"?}`` items.

        Requests are split into chunks of at most 10,000; every result's ``index`` refers to
        the position in ``items``. Only items with matches appear in the answer.
        """
        results: list[dict[str, Any]] = []
        for offset in range(0, len(items), chunk_size):
            chunk = [dict(item) for item in items[offset : offset + chunk_size]]
            body = self._json("POST", "match", json_body={"purpose": purpose, "items": chunk})
            for result in body.get("results", []):
                result = dict(result)
                result["index"] = int(result.get("index", 0)) + offset
                results.append(result)
        return results

    def match_text(
        self, text: str, *, purpose: str = "detection", lang: str | None = None
    ) -> dict[str, Any]:
        """The shared keywords that occur in ``text``, with character spans and their signals."""
        body: dict[str, Any] = {"purpose": purpose, "text": text}
        if lang:
            body["lang"] = lang
        return dict(self._json("POST", "match/text", json_body=body))

    # -- feed -------------------------------------------------------------------------------
    def feed(
        self, *, purpose: str = "detection", cursor: str | None = None, limit: int = 1000
    ) -> FeedPage:
        """One page of the feed after ``cursor`` (from the start without one)."""
        body = self._json(
            "GET", "feed", params={"purpose": purpose, "cursor": cursor, "limit": limit}
        )
        return FeedPage(
            events=list(body.get("events", [])),
            next_cursor=body.get("next_cursor"),
            # Older servers without "more": a full page means there may be more.
            more=bool(body.get("more", len(body.get("events", [])) >= limit)),
            cursor=cursor,
            raw=dict(body),
        )

    def iter_feed(
        self, *, purpose: str = "detection", cursor: str | None = None, limit: int = 1000
    ) -> Iterator[FeedPage]:
        """Pages until the feed is caught up (the exchange says there is no ``more``).

        A page may be empty and still not the last (changes the member may not see advance the
        cursor too). Each page's ``next_cursor`` is where to resume; store it after applying
        the page.
        """
        while True:
            page = self.feed(purpose=purpose, cursor=cursor, limit=limit)
            yield page
            if not page.more or not page.next_cursor or page.next_cursor == cursor:
                return
            cursor = page.next_cursor

    # -- feedback ---------------------------------------------------------------------------
    def feedback(
        self,
        signal_id: int | str,
        *,
        reaction: str,
        note: str | None = None,
        action_taken: Sequence[str] | None = None,
        purpose: str | None = None,
    ) -> dict[str, Any]:
        """Say what the member did with a signal it received (``seen``, ``actioned``, ...).

        ``action_taken`` (with ``actioned``) lists codes such as ``account_terminated``; never
        put personal data in ``note``: the owner receives it as written.
        """
        body: dict[str, Any] = {"reaction": reaction}
        if note:
            body["note"] = note
        if action_taken:
            body["action_taken"] = list(action_taken)
        if purpose:
            body["purpose"] = purpose
        return dict(self._json("POST", f"signals/{signal_id}/feedback", json_body=body))

    # -- subscriptions ----------------------------------------------------------------------
    def create_subscription(
        self,
        *,
        url: str,
        types: Sequence[str] | None = None,
        categories: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Create a webhook subscription; the answer's ``secret`` (``whsec_…``) is shown once."""
        body: dict[str, Any] = {"url": url}
        for name, value in (("types", types), ("categories", categories), ("events", events)):
            if value:
                body[name] = list(value)
        if description:
            body["description"] = description
        return dict(self._json("POST", "subscriptions", json_body=body))

    def get_subscription(self, subscription_id: int | str) -> dict[str, Any]:
        return dict(self._json("GET", f"subscriptions/{subscription_id}"))

    def resume_subscription(self, subscription_id: int | str) -> dict[str, Any]:
        """Send to a disabled (410) or failing endpoint again."""
        return dict(self._json("POST", f"subscriptions/{subscription_id}/resume"))

    def subscriptions(self) -> Iterator[dict[str, Any]]:
        return self.paginate("subscriptions")

    def delete_subscription(self, subscription_id: int | str) -> None:
        self.request("DELETE", f"subscriptions/{subscription_id}")

    def test_subscription(self, subscription_id: int | str) -> dict[str, Any]:
        return dict(self._json("POST", f"subscriptions/{subscription_id}/test"))

    def rotate_subscription_secret(self, subscription_id: int | str) -> dict[str, Any]:
        return dict(self._json("POST", f"subscriptions/{subscription_id}/rotate-secret"))

    def deliveries(self, subscription_id: int | str) -> Iterator[dict[str, Any]]:
        return self.paginate(f"subscriptions/{subscription_id}/deliveries")

    def redeliver(self, delivery_id: int | str) -> dict[str, Any]:
        return dict(self._json("POST", f"deliveries/{delivery_id}/redeliver"))

    # -- audit ------------------------------------------------------------------------------
    def audit_export(
        self,
        out: IO[bytes],
        *,
        since: str | None = None,
        until: str | None = None,
        member: str | None = None,
        action: str | None = None,
        format: str = "jsonl",  # noqa: A002 - the API's own parameter name
    ) -> int:
        """Stream ``GET /audit/events`` into ``out`` without holding it in memory; bytes written."""
        params = {
            "since": since,
            "until": until,
            "member": member,
            "action": action,
            "format": format,
        }
        clean = {k: v for k, v in params.items() if v is not None}
        attempt = 0
        while True:
            with self._http.stream(
                "GET", "audit/events", params=clean, headers={"X-Request-ID": uuid.uuid4().hex}
            ) as response:
                if response.status_code in _RETRY_STATUSES and attempt < self.config.max_retries:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    self._wait(attempt, retry_after, f"HTTP {response.status_code}")
                    attempt += 1
                    continue
                if response.status_code >= 400:
                    response.read()
                    raise _error_for(response)
                written = 0
                for block in response.iter_bytes():
                    out.write(block)
                    written += len(block)
                return written

    def audit_checkpoints(self, *, since_seq: int | None = None) -> Iterator[dict[str, Any]]:
        """The signed checkpoints ``(seq, hash, signature, key_id)``, oldest first."""
        return self.paginate(
            "audit/checkpoints", params={"since_seq": since_seq}, key="checkpoints"
        )

    def audit_public_key(self) -> Any:
        response = self.request("GET", "audit/public-key")
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.text

    def transparency_report(self, *, period: str) -> dict[str, Any]:
        return dict(self._json("GET", "reports/transparency", params={"period": period}))


def _list_field(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    for name in ("results", "items", "signals", "subscriptions", "deliveries", "events"):
        value = body.get(name)
        if isinstance(value, list):
            return value
    for value in body.values():
        if isinstance(value, list):
            return value
    return []
