"""A local webhook receiver for the embedded demo: verifies every signature and logs events.

``make up`` starts it on 127.0.0.1:8001; ``seed_demo`` subscribes demo-b to
``http://127.0.0.1:8001/webhooks/demo-b`` and keeps the secret in ``var/demo-credentials.json``.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from standardwebhooks import Webhook, WebhookVerificationError


def demo_secrets() -> dict[str, str]:
    """``{"/webhooks/<member>": "whsec_…"}`` from the demo credentials file."""
    path = Path(settings.VAR_DIR) / "demo-credentials.json"
    if not path.exists():
        return {}
    hooks = json.loads(path.read_text()).get("webhooks", {})
    return {str(h["path"]): str(h["secret"]) for h in hooks.values() if "secret" in h}


class Command(BaseCommand):
    help = "Run a local webhook receiver that verifies signatures and prints what arrives."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8001")

    def handle(self, *args: Any, **opts: Any) -> None:
        host, _, port = str(opts["addr"]).rpartition(":")
        out = self.stdout

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                secret = demo_secrets().get(self.path)
                status = 204
                try:
                    if secret is None:
                        raise WebhookVerificationError(f"no demo secret for {self.path}")
                    payload = Webhook(secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError as exc:
                    status = 400
                    out.write(f"[receiver] {self.path} REJECTED: {exc}")
                else:
                    webhook_id = self.headers.get("webhook-id")
                    if payload.get("type") == "ping":
                        out.write(f"[receiver] {self.path} ping {webhook_id} (signature ok)")
                    for event in payload.get("data", {}).get("events", []):
                        signal = event.get("signal", {})
                        out.write(
                            f"[receiver] {self.path} {webhook_id} seq={event.get('seq')} "
                            f"{event.get('op')} signal={signal.get('id')} "
                            f"{signal.get('type', '')} {signal.get('category', '')} (signature ok)"
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        out.write(f"Demo webhook receiver on http://{opts['addr']}/webhooks/<member>")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
