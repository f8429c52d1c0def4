"""Fuzz the API against its own OpenAPI schema (schemathesis), with a valid token: no answer is
a server error, every status, content type and body conforms to the schema, and every error
is problem+json. Valid and invalid examples per operation are bounded so the run stays short.

Schemathesis's Python API drives Hypothesis directly (its pytest plugin's lazy fixture loader
does not run under this pytest), one operation at a time, collecting every failure."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 8}
PROBLEM_FIELDS = {"type", "title", "status", "detail", "request_id"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _header(headers, name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return ""


def _check(case, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        content_type = _header(response.headers, "content-type")
        assert content_type.startswith("application/problem+json"), (
            case.method,
            case.formatted_path,
            response.status_code,
            response.text[:300],
        )
        assert PROBLEM_FIELDS <= set(response.json()), response.text[:300]


def test_every_operation_conforms_to_the_schema(
    live_server, member_a, member_b, pilot, auditor, issue_token, settings
):
    # Throttles would answer most examples with 429: fuzz the endpoints, not the quota.
    settings.BEACON_THROTTLE_RATE = "100000/min"
    settings.BEACON_MATCH_THROTTLE_RATE = "100000/min"
    settings.BEACON_WRITE_THROTTLE_RATE = "100000/min"
    settings.BEACON_MATCH_ALERT_MIN_VALUES = 10**9
    token = issue_token(member_a)
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(
                max_examples=examples,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            def run(case):
                _check(case, token)

            try:
                run()
            except Unsatisfiable:
                continue  # no invalid request exists for this operation (no parameters)
            except BaseException as exc:  # schemathesis raises a BaseExceptionGroup
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                failures.append(f"{operation.method.upper()} {operation.path} [{mode}]: {exc}")
    assert not failures, "\n\n".join(failures)
