"""Profile sets and catalogue seeding for the weights-at-runtime tests."""

from __future__ import annotations

import random

from reviewrank.v1 import admin_pb2, feedback_pb2, ranking_pb2
from tests.conftest import Client
from tests.helpers import batch, like, rating

# Two profile sets that score every product differently: weights, prior and confidence
# all differ, so a response computed with a mix of the two matches neither.
WEIGHTS_A = """
default_profile = "main"

[profiles.main]
confidence = 0.95
weights = { bayesian_average = 0.7, wilson = 0.3 }
prior = { mean = 3.0, strength = 5 }
"""

WEIGHTS_B = """
default_profile = "main"

[profiles.main]
confidence = 0.8
weights = { bayesian_average = 0.2, wilson = 0.5, relevance = 0.3 }
prior = { mean = 4.0, strength = 20 }
"""

PRODUCTS = [f"p{i:02d}" for i in range(30)]


def seed(client: Client, products: list[str] = PRODUCTS, seed: int = 7) -> None:
    """Gives every product a few ratings and likes (fixed times, so results are stable)."""
    rng = random.Random(seed)
    events: list[object] = []
    for product in products:
        for user in range(rng.randint(1, 8)):
            events.append(rating(product, f"u{user}", rng.randint(1, 5), category="cat-x"))
        for user in range(rng.randint(0, 8)):
            value = feedback_pb2.LIKE if rng.random() < 0.7 else feedback_pb2.DISLIKE
            events.append(like(product, f"u{user}", value))
    for start in range(0, len(events), 500):
        client.feedback.SubmitBatch(batch(*events[start : start + 500]))


def rank_request(products: list[str] = PRODUCTS, **fields: object) -> ranking_pb2.RankRequest:
    """All products as candidates, with distinct relevance (so relevance weights matter)."""
    candidates = [
        ranking_pb2.Candidate(product_id=p, relevance=float(len(products) - i))
        for i, p in enumerate(products)
    ]
    return ranking_pb2.RankRequest(candidates=candidates, **fields)  # type: ignore[arg-type]


def scored(response: ranking_pb2.RankResponse) -> list[tuple[str, float]]:
    return [(r.product_id, r.score) for r in response.results]


def reload(client: Client, toml: str = "", **fields: object) -> admin_pb2.ReloadWeightsResponse:
    return client.admin.ReloadWeights(admin_pb2.ReloadWeightsRequest(toml=toml, **fields))  # type: ignore[arg-type]


def version(client: Client) -> int:
    return int(client.admin.GetWeights(admin_pb2.GetWeightsRequest()).version)
