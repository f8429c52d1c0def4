from __future__ import annotations

import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_is_valid_3_1(client):
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    spec = yaml.safe_load(response.content)
    assert spec["openapi"].startswith("3.1")
    validate(spec)
    assert "/api/v1/me" in spec["paths"]


def test_the_docs_page_is_served(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert b"schema" in response.content
