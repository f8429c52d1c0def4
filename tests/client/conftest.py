"""Fixtures for client tests: SDK clients and the CLI, pointed at a live test server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from accounts.models import Member
from client.cli import app
from client.sdk import BeaconClient, BeaconConfig


@pytest.fixture
def beacon_for(
    live_server: Any, issue_token: Callable[..., str]
) -> Iterator[Callable[..., BeaconClient]]:
    """An SDK client for a member against the live server: ``beacon_for(member_a)``."""
    made: list[BeaconClient] = []

    def _make(member: Member, **kwargs: Any) -> BeaconClient:
        client = BeaconClient(
            BeaconConfig(
                url=live_server.url, token=issue_token(member, **kwargs), backoff_base=0.01
            )
        )
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


@pytest.fixture
def cli_for(live_server: Any, issue_token: Callable[..., str]) -> Callable[..., Any]:
    """Run the ``beacon`` CLI as a member: ``cli_for(member_a)("upload", "x.csv", ...)``."""

    def _make(member: Member, **kwargs: Any) -> Callable[..., Any]:
        token = issue_token(member, **kwargs)

        def run(*args: str, input: str | None = None) -> Any:
            runner = CliRunner()
            return runner.invoke(
                app, ["--url", live_server.url, "--token", token, *args], input=input
            )

        return run

    return _make
