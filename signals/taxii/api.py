"""TAXII 2.1 endpoints (read-only) and the STIX bundle export.

TAXII speaks its own media type (``application/taxii+json;version=2.1``) in both directions and
answers errors as TAXII error messages, not problem+json; otherwise these views are ordinary
``ExchangeApi`` views: same tokens, scopes, purposes, throttles and audit of every request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Purpose, Scope
from exchange import policy
from exchange.api import ExchangeApi, ProblemError, decode_cursor, encode_cursor, validation_error
from exchange.audit import AuditAction
from exchange.jsonio import FastJSONRenderer
from exchange.problems import TAXII_CONTENT_TYPE, taxii_error_body
from signals import stix
from signals.taxii import services
from signals.taxii.authentication import TaxiiAuthentication, presented_token_label

logger = logging.getLogger(__name__)

TAXII_MEDIA_TYPE = TAXII_CONTENT_TYPE
TAXII_VERSION = "2.1"
API_ROOT = "beacon"
_NEXT_SALT = "taxii.next"


class TaxiiError(exceptions.APIException):
    """A TAXII error with an explicit status."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail=detail)
        self.status_code = status_code


def error_body(status: int, description: str, request: Any) -> dict[str, Any]:
    return taxii_error_body(
        status=status,
        description=description,
        request_id=getattr(request, "request_id", "") or "",
    )


def taxii_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every error under /taxii2/ as a TAXII error message with the TAXII media type."""
    request = context.get("request")
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = TaxiiError(404, "No such resource.")
    if isinstance(exc, ProblemError):
        status, detail = exc.status_code, str(exc.detail)
        if exc.errors:
            detail = "; ".join(str(e.get("detail")) for e in exc.errors)
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        status = 401
        detail = (
            str(exc.detail)
            if isinstance(exc, exceptions.AuthenticationFailed)
            else "Send an API token: 'Authorization: Bearer bcn_…', or as the Basic password."
        )
        headers["WWW-Authenticate"] = TaxiiAuthentication().authenticate_header(request)
    elif isinstance(exc, exceptions.Throttled):
        status, detail = 429, "Rate limit exceeded."
        headers["Retry-After"] = str(max(int(getattr(exc, "wait", None) or 1), 1))
    elif isinstance(exc, exceptions.APIException):
        status, detail = exc.status_code, str(exc.detail)
    elif isinstance(exc, DatabaseError):
        logger.warning("database unavailable: %s", type(exc).__name__)
        status, detail = 503, "The database is unavailable; retry shortly."
        headers["Retry-After"] = "5"
    else:
        logger.exception("unhandled error in TAXII request %s", getattr(request, "request_id", ""))
        status, detail = 500, "An unexpected error occurred; it has been logged."
    return Response(
        error_body(status, detail, request),
        status=status,
        headers=headers,
        content_type=TAXII_MEDIA_TYPE,
    )


class TaxiiRenderer(FastJSONRenderer):
    media_type = TAXII_MEDIA_TYPE
    format = "taxii"
    charset = None


def _media_ranges(header: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            name, _, value = piece.partition("=")
            params[name.strip().lower()] = value.strip().strip('"')
        out.append((pieces[0].lower(), params))
    return out


def accepts_taxii(header: str) -> bool:
    """Whether an Accept header admits TAXII 2.1. A client that names no media type accepts
    anything; otherwise it must name ``application/taxii+json`` (version 2.1 or unversioned,
    which means the latest) or a wildcard covering it, with a non-zero quality."""
    if not header.strip():
        return True
    for media, params in _media_ranges(header):
        try:
            if float(params.get("q", "1")) <= 0:
                continue
        except ValueError:
            continue
        if media in ("*/*", "application/*"):
            return True
        if media == "application/taxii+json" and params.get("version", TAXII_VERSION) == (
            TAXII_VERSION
        ):
            return True
    return False


def content_type_is_taxii(header: str) -> bool:
    ranges = _media_ranges(header)
    return bool(ranges) and all(
        media == "application/taxii+json" and params.get("version", TAXII_VERSION) == TAXII_VERSION
        for media, params in ranges[:1]
    )


class TaxiiNegotiation(BaseContentNegotiation):
    """TAXII's own negotiation: 406 unless the client accepts TAXII 2.1."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        if not accepts_taxii(request.META.get("HTTP_ACCEPT", "")):
            raise exceptions.NotAcceptable(
                f"This server answers only {TAXII_MEDIA_TYPE}; send it in the Accept header."
            )
        return next(iter(renderers)), TAXII_MEDIA_TYPE

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> Any:
        return None


class TaxiiApi(ExchangeApi):
    """Base of the TAXII endpoints: TAXII media type, TAXII errors, bearer or Basic tokens, the
    ``signals:read`` scope and the ``detection`` purpose. Documented in
    docs/integrations/taxii.md rather than in the OpenAPI schema."""

    authentication_classes = [TaxiiAuthentication]
    renderer_classes = [TaxiiRenderer]
    parser_classes: list[Any] = []
    content_negotiation_class = TaxiiNegotiation
    required_scope = Scope.SIGNALS_READ
    audit_action = AuditAction.TAXII_READ
    schema = None

    def get_exception_handler(self) -> Any:
        return taxii_exception_handler

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        if force:
            return (TaxiiRenderer(), TAXII_MEDIA_TYPE)
        return super().perform_content_negotiation(request, force)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Content-Type describes a body; requests without one (every GET) carry none to judge.
        content_type = request.META.get("CONTENT_TYPE", "")
        has_body = (request.META.get("CONTENT_LENGTH") or "0") != "0" or (
            "HTTP_TRANSFER_ENCODING" in request.META
        )
        if has_body and not content_type_is_taxii(content_type):
            raise TaxiiError(
                415, f"Send bodies as {TAXII_MEDIA_TYPE}, not {content_type.split(';')[0]}."
            )
        if not self.token.allows_purpose(Purpose.DETECTION):
            raise exceptions.PermissionDenied(
                "TAXII reads are for detection; this token may not be used for it."
            )

    def unrecorded_action(self, *, ok: bool) -> tuple[AuditAction, str]:
        return (AuditAction.TAXII_READ, Purpose.DETECTION) if ok else (AuditAction.API_REFUSED, "")

    def presented_label(self, request: Any) -> str:
        return presented_token_label(request)

    # -- helpers ---------------------------------------------------------------------------
    def root_url(self) -> str:
        return self.request.build_absolute_uri(f"/taxii2/{API_ROOT}/")

    def base_url(self) -> str:
        return self.request.build_absolute_uri("/").rstrip("/")

    def collection(self, collection_id: str) -> services.Collection:
        try:
            return services.taxii_collection(member=self.member, collection_id=collection_id)
        except services.NotFound:
            raise TaxiiError(404, "No such collection.") from None

    def object_query(self, collection: services.Collection, *, paged: bool = True) -> Any:
        params = self.request.query_params
        added_after = None
        if params.get("added_after"):
            added_after = stix.parse_timestamp(params["added_after"])
            if added_after is None:
                raise TaxiiError(400, "added_after must be an RFC 3339 timestamp in UTC.")
        versions = frozenset(_split(params.get("match[version]"))) or frozenset({"last"})
        for value in versions - services.VERSION_KEYWORDS:
            if stix.parse_timestamp(value) is None:
                raise TaxiiError(
                    400, "match[version] takes 'first', 'last', 'all' or STIX timestamps."
                )
        ids = frozenset(_split(params.get("match[id]"))) or None
        types = frozenset(_split(params.get("match[type]"))) or None
        spec_versions = frozenset(_split(params.get("match[spec_version]"))) or None
        maximum = settings.BEACON_TAXII_PAGE_SIZE
        limit = maximum
        if params.get("limit") not in (None, ""):
            try:
                limit = int(params["limit"])
            except ValueError:
                raise TaxiiError(400, "limit must be a positive integer.") from None
            if limit < 1:
                raise TaxiiError(400, "limit must be a positive integer.")
            # The server may answer fewer than asked; it never answers more than its page.
            limit = min(limit, maximum)
        after = self.decode_next(collection) if paged and params.get("next") else None
        return services.ObjectQuery(
            added_after=added_after,
            ids=ids,
            types=types,
            versions=versions,
            spec_versions=spec_versions,
            limit=limit,
            after=after,
        )

    def decode_next(self, collection: services.Collection) -> services.SortKey:
        try:
            state = decode_cursor(self.request.query_params["next"], salt=_NEXT_SALT)
            at = parse_datetime(str(state["k"][0]))
            rank, n = int(state["k"][1]), int(state["k"][2])
        except (ProblemError, KeyError, IndexError, TypeError, ValueError):
            raise TaxiiError(400, "The next value is invalid or has been altered.") from None
        if at is None or state.get("m") != self.member.pk or state.get("c") != collection.id:
            raise TaxiiError(400, "The next value is invalid or has been altered.")
        return (at, rank, n)

    def encode_next(self, collection: services.Collection, key: services.SortKey) -> str:
        return encode_cursor(
            {"m": self.member.pk, "c": collection.id, "k": [key[0].isoformat(), key[1], key[2]]},
            salt=_NEXT_SALT,
        )

    def paged(
        self,
        collection: services.Collection,
        page: services.ObjectsPage,
        list_name: str,
        items: list[Any] | None = None,
    ) -> Response:
        items = page.items if items is None else items
        body: dict[str, Any] = {"more": page.more}
        if page.more and page.next_key is not None:
            body["next"] = self.encode_next(collection, page.next_key)
        if items:
            body[list_name] = items
        headers = {}
        if page.date_added:
            headers["X-TAXII-Date-Added-First"] = stix.timestamp(page.date_added[0])
            headers["X-TAXII-Date-Added-Last"] = stix.timestamp(page.date_added[-1])
        return Response(body, headers=headers)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _read_only() -> TaxiiError:
    return TaxiiError(403, "This TAXII server is read-only: its collections have can_write false.")


class TaxiiDiscoveryApi(TaxiiApi):
    """Server discovery: the one API root."""

    def get(self, request: Request) -> Response:
        root = self.root_url()
        body = {
            "title": "Beacon",
            "description": "Signals of the Beacon exchange as STIX 2.1, read-only, under the "
            "same access policy and audit as the REST API.",
            "default": root,
            "api_roots": [root],
        }
        if settings.BEACON_TAXII_CONTACT:
            body["contact"] = settings.BEACON_TAXII_CONTACT
        return Response(body)


class TaxiiApiRootApi(TaxiiApi):
    def get(self, request: Request) -> Response:
        return Response(
            {
                "title": "Beacon signals",
                "description": "Collections of the signals you may see, per member view.",
                "versions": [TAXII_MEDIA_TYPE],
                "max_content_length": settings.BEACON_MAX_BODY_BYTES,
            }
        )


class TaxiiCollectionListApi(TaxiiApi):
    def get(self, request: Request) -> Response:
        return Response(
            {"collections": [c.resource() for c in services.taxii_collections(member=self.member)]}
        )


class TaxiiCollectionGetApi(TaxiiApi):
    def get(self, request: Request, collection_id: str) -> Response:
        return Response(self.collection(collection_id).resource())


class TaxiiObjectListApi(TaxiiApi):
    """Get Objects; Add Objects is refused (read-only)."""

    def get(self, request: Request, collection_id: str) -> Response:
        collection = self.collection(collection_id)
        page = services.taxii_objects(
            member=self.member,
            collection=collection,
            query=self.object_query(collection),
            actor=self.actor,
            base_url=self.base_url(),
        )
        return self.paged(collection, page, "objects")

    def post(self, request: Request, collection_id: str) -> Response:
        self.collection(collection_id)
        raise _read_only()


class TaxiiObjectGetApi(TaxiiApi):
    """Get an Object; Delete an Object is refused (read-only)."""

    def get(self, request: Request, collection_id: str, object_id: str) -> Response:
        collection = self.collection(collection_id)
        try:
            page = services.taxii_objects(
                member=self.member,
                collection=collection,
                query=self.object_query(collection),
                actor=self.actor,
                base_url=self.base_url(),
                object_id=object_id,
            )
        except services.NotFound:
            raise TaxiiError(404, "No such object in this collection.") from None
        return self.paged(collection, page, "objects")

    def delete(self, request: Request, collection_id: str, object_id: str) -> Response:
        self.collection(collection_id)
        raise _read_only()


class TaxiiVersionListApi(TaxiiApi):
    def get(self, request: Request, collection_id: str, object_id: str) -> Response:
        collection = self.collection(collection_id)
        try:
            page = services.taxii_versions(
                member=self.member,
                collection=collection,
                object_id=object_id,
                query=self.object_query(collection),
                actor=self.actor,
            )
        except services.NotFound:
            raise TaxiiError(404, "No such object in this collection.") from None
        return self.paged(
            collection, page, "versions", items=[item["version"] for item in page.items]
        )


class TaxiiManifestListApi(TaxiiApi):
    def get(self, request: Request, collection_id: str) -> Response:
        collection = self.collection(collection_id)
        page = services.taxii_manifest(
            member=self.member,
            collection=collection,
            query=self.object_query(collection),
            actor=self.actor,
        )
        return self.paged(collection, page, "objects")


class TaxiiStatusGetApi(TaxiiApi):
    """Status resources track writes; a read-only server has none."""

    def get(self, request: Request, status_id: str) -> Response:
        raise TaxiiError(404, "No such status resource: this server accepts no writes.")


class TaxiiNotFoundApi(TaxiiApi):
    """Any other path under /taxii2/: a TAXII 404, never an HTML page or problem+json."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise TaxiiError(404, f"No TAXII resource at {request.path}.")

    post = put = patch = delete = get


# -- the one-off STIX export ----------------------------------------------------------------
class _AnyFormatNegotiation(BaseContentNegotiation):
    """The export's ``format`` parameter names the export format, not a DRF renderer."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> Any:
        return None


class SignalExportApi(ExchangeApi):
    """``GET /api/v1/signals/export?format=stix``: a STIX 2.1 bundle of every live signal the
    caller may see, streamed. Audited as ``signal.export`` with every signal disclosed."""

    required_scope = Scope.SIGNALS_READ
    renderer_classes = [FastJSONRenderer]
    content_negotiation_class = _AnyFormatNegotiation

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=["stix"]),
            OpenApiParameter("purpose", str, enum=[Purpose.DETECTION, Purpose.INVESTIGATION]),
        ],
        responses={(200, stix.STIX_MEDIA_TYPE): OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        fmt = request.query_params.get("format") or "stix"
        if fmt != "stix":
            raise validation_error(
                [{"index": None, "field": "format", "detail": "the only export format is 'stix'"}]
            )
        purpose = self.require_purpose(request.query_params.get("purpose") or Purpose.DETECTION)
        if not policy.discloses_values(purpose):
            raise exceptions.PermissionDenied(
                "The research purpose returns aggregates only; an export discloses signals."
            )
        stream = services.signal_export_stix(
            member=self.member,
            purpose=purpose,
            actor=self.actor,
            base_url=request.build_absolute_uri("/").rstrip("/"),
        )
        response = StreamingHttpResponse(stream, content_type=stix.STIX_MEDIA_TYPE)
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="beacon-signals-{stamp}.json"'
        return response
