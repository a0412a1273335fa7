"""Writes the ghz configs in bench/ghz/ (``python -m service.tools.ghz_configs``).

One config per scenario, in two variants: ``reflection/`` (ghz asks the server for the
descriptors) and ``protoset/`` (ghz reads proto/reviewrank.protoset; run ghz from the
repository root). Candidate lists are drawn from the demo catalogue; write calls use
ghz's template functions so that every call has a new event id.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from reviewrank.service.cli.dataset import read_reviews

ROOT = Path(__file__).resolve().parents[2]
GHZ_DIR = ROOT / "bench" / "ghz"
HOST = "127.0.0.1:50052"  # `make bench-server`: a scratch copy of the demo database


def scenarios(product_ids: list[str]) -> dict[str, dict[str, Any]]:
    rng = random.Random(7)

    def candidates(n: int) -> list[dict[str, Any]]:
        chosen = rng.sample(product_ids, n)
        return [{"product_id": p, "relevance": round(rng.random() * 10, 3)} for p in chosen]

    ranking, feedback = "reviewrank.v1.RankingService", "reviewrank.v1.FeedbackService"
    configs: dict[str, dict[str, Any]] = {}
    for n in (10, 100, 1000):
        configs[f"rank-{n}"] = {
            "call": f"{ranking}/Rank",
            "data": {"candidates": candidates(n)},
        }
    configs["top-dresses"] = {
        "call": f"{ranking}/Top",
        "data": {"category": "Dresses", "limit": 20},
    }
    configs["product-stats-100"] = {
        "call": f"{ranking}/GetProductStats",
        "data": {"product_ids": rng.sample(product_ids, 100)},
    }
    configs["submit-rating"] = {
        "call": f"{feedback}/SubmitRating",
        "data": {
            "event_id": "ghz-{{newUUID}}",
            "product_id": rng.choice(product_ids),
            "user_id": "ghz-user-{{.RequestNumber}}",
            "stars": 4,
        },
    }
    configs["submit-like"] = {
        "call": f"{feedback}/SubmitLike",
        "data": {
            "event_id": "ghz-{{newUUID}}",
            "product_id": rng.choice(product_ids),
            "user_id": "ghz-user-{{.RequestNumber}}",
            "value": "LIKE",
        },
    }
    batch_uuid = "{{newUUID}}"
    configs["submit-batch-100"] = {
        "call": f"{feedback}/SubmitBatch",
        "concurrency": 4,
        "data": {
            "events": [
                {
                    "rating": {
                        "event_id": f"ghz-{batch_uuid}-{k}",
                        "product_id": rng.choice(product_ids),
                        "user_id": f"ghz-{batch_uuid}-{k}",
                        "stars": rng.randint(1, 5),
                    }
                }
                for k in range(100)
            ]
        },
    }
    configs["submit-share"] = {
        "call": f"{feedback}/SubmitShare",
        "data": {
            "event_id": "ghz-{{newUUID}}",
            "product_id": rng.choice(product_ids),
            "user_id": "ghz-user-{{.RequestNumber}}",
            "channel": "instagram",
        },
    }
    for config in configs.values():
        config.setdefault("concurrency", 50)
        config.update(host=HOST, insecure=True, total=20000, timeout="20s", connections=1)
    return configs


def write(directory: Path = GHZ_DIR) -> list[Path]:
    ids = sorted({r.product_id for r in read_reviews()}, key=int)
    written = []
    for name, config in scenarios(ids).items():
        for variant in ("reflection", "protoset"):
            body = dict(config)
            if variant == "protoset":
                body["protoset"] = "proto/reviewrank.protoset"
            path = directory / variant / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(body, indent=2) + "\n")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path.relative_to(ROOT))
