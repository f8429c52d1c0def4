"""Reading a member's whole view through TAXII and the STIX export, against the REST feed
replayed in the same run as the baseline (all three page or stream 1,000 signals at a time, with
the audit and disclosures each request writes).

    python -m benchmarks.bench_taxii --size small   # 10,000 signals
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from benchmarks.common import Server, parse_args, setup_django, write_results

PAGE = 1000


def main() -> None:
    args = parse_args(__doc__ or "", default_size=100_000)
    setup_django("beacon_bench_taxii")
    from django.conf import settings

    settings.BEACON_THROTTLE_RATE = "1000000/min"
    write_results("taxii", run(args.rows))


def run(size: int) -> dict[str, Any]:

    from accounts.models import Attestation
    from accounts.services import member_create, token_issue
    from exchange.audit import Actor
    from signals import services
    from signals.taxii.api import TAXII_MEDIA_TYPE
    from signals.taxii.services import ALL_COLLECTION_ID

    actor = Actor.system("benchmark")
    owner, reader = (
        member_create(
            slug=slug,
            name=slug,
            kind="platform",
            attestations=Attestation.values,
            activate=True,
            actor=actor,
        )
        for slug in ("owner", "reader")
    )
    for start in range(0, size, 5000):
        services.signal_submit(
            member=owner,
            items=[
                {
                    "type": "sha256",
                    "value": hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
                    "category": "csea.csam",
                }
                for i in range(start, min(size, start + 5000))
            ],
            actor=actor,
        )
    token = token_issue(
        member=reader, scopes=["signals:read"], purposes=["detection"], actor=actor
    ).plaintext
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client = Server()

    def feed() -> int:
        seen, params = 0, {"purpose": "detection", "limit": PAGE}
        while True:
            body = json.loads(client.get("/api/v1/feed", params, **auth).content)
            seen += sum(1 for e in body["events"] if e["op"] == "upsert")
            if not body["more"]:
                return seen
            params = {"purpose": "detection", "limit": PAGE, "cursor": body["next_cursor"]}

    def taxii() -> int:
        url = f"/taxii2/beacon/collections/{ALL_COLLECTION_ID}/objects/"
        seen, params = 0, {"limit": PAGE}
        while True:
            body = json.loads(client.get(url, params, HTTP_ACCEPT=TAXII_MEDIA_TYPE, **auth).content)
            seen += sum(1 for o in body.get("objects", []) if o["type"] == "indicator")
            if not body["more"]:
                return seen
            params = {"limit": PAGE, "next": body["next"]}

    def export() -> int:
        response = client.get("/api/v1/signals/export", {"format": "stix"}, **auth)
        bundle = json.loads(b"".join(response.streaming_content))
        return sum(1 for o in bundle["objects"] if o["type"] == "indicator")

    timings: dict[str, dict[str, float]] = {}
    for name, read in (("feed", feed), ("taxii", taxii), ("export", export)):
        started = time.perf_counter()
        count = read()
        seconds = time.perf_counter() - started
        assert count == size, (name, count, size)
        timings[name] = {"seconds": round(seconds, 3), "signals_per_s": round(size / seconds)}
    base = timings["feed"]["seconds"]
    return {
        "size": size,
        "page": PAGE,
        "results": timings,
        "ratio_to_feed": {
            name: round(base / t["seconds"], 3) for name, t in timings.items() if name != "feed"
        },
    }


if __name__ == "__main__":
    main()
