"""Request templates for the load driver (JSON, protobuf JSON mapping), drawn from a
catalogue's product ids and categories."""

from __future__ import annotations

import json
import random
from pathlib import Path


def rank_templates(
    ids: list[str], size: int, count: int = 64, seed: int = 1, columns: bool = False
) -> list[str]:
    """Rank requests of ``size`` random candidates; ``columns``: sent as candidate_ids and
    candidate_relevances (the same candidates as without)."""
    rng = random.Random(seed)
    templates = []
    for _ in range(count):
        chosen = rng.sample(ids, min(size, len(ids)))
        relevances = [round(rng.random() * 10, 3) for _ in chosen]
        if columns:
            request: dict[str, object] = {
                "candidateIds": chosen,
                "candidateRelevances": relevances,
            }
        else:
            request = {
                "candidates": [
                    {"productId": p, "relevance": r}
                    for p, r in zip(chosen, relevances, strict=True)
                ]
            }
        templates.append(json.dumps(request))
    return templates


def top_templates(database: Path, limit: int = 20) -> list[str]:
    """Top of each category of the database, ``limit`` products a page."""
    return [json.dumps({"category": c, "limit": limit}) for c in categories(database)]


def rating_templates(ids: list[str], count: int = 64) -> list[str]:
    rng = random.Random(2)
    return [
        json.dumps({
            "eventId": "b-{{uuid}}", "productId": rng.choice(ids), "userId": "bench-{{n}}",
            "stars": rng.randint(1, 5),
        })
        for _ in range(count)
    ]  # fmt: skip


def like_templates(ids: list[str], count: int = 64) -> list[str]:
    rng = random.Random(3)
    return [
        json.dumps({
            "eventId": "l-{{uuid}}", "productId": rng.choice(ids), "userId": "bench-{{n}}",
            "value": rng.choice(["LIKE", "DISLIKE"]),
        })
        for _ in range(count)
    ]  # fmt: skip


def share_templates(ids: list[str], count: int = 64) -> list[str]:
    rng = random.Random(5)
    return [
        json.dumps({
            "eventId": "s-{{uuid}}", "productId": rng.choice(ids), "userId": "bench-{{n}}",
            "channel": rng.choice(["web", "app", "instagram"]),
        })
        for _ in range(count)
    ]  # fmt: skip


def batch_templates(
    ids: list[str],
    size: int,
    count: int = 8,
    kind: str = "rating",
    texts: list[str] | None = None,
) -> list[str]:
    """Batches of ``size`` new events each: ratings, shares, comments or poll votes
    (``kind``); a comment has one of ``texts`` (drawn in turn), else a score; a poll vote
    is in a poll of its own (a new vote) showing 2 to 4 products."""
    rng = random.Random(4)
    templates = []
    for _ in range(count):
        events = []
        for k in range(size):
            event: dict[str, object] = {
                "eventId": f"b-{{{{uuid}}}}-{k}", "productId": rng.choice(ids),
                "userId": f"bench-{{{{uuid}}}}-{k}",
            }  # fmt: skip
            if kind == "share":
                event["channel"] = "web"
            elif kind == "pollVote":
                shown = rng.sample(ids, rng.randint(2, 4))
                del event["productId"]
                event.update(pollId=f"poll-{{{{uuid}}}}-{k}", shown=shown, chosen=shown[0])
            elif kind == "comment" and texts:
                # (braces out: the load driver's templates use them)
                event["text"] = rng.choice(texts).replace("{", "(").replace("}", ")")
            elif kind == "comment":
                event["score"] = round(rng.uniform(-1, 1), 4)
            else:
                event["stars"] = rng.randint(1, 5)
            events.append({kind: event})
        templates.append(json.dumps({"events": events}))
    return templates


def product_ids(database: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(database) as conn:
        return [r[0] for r in conn.execute("SELECT product_id FROM products ORDER BY idx")]


def categories(database: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT category, count(*) FROM products WHERE category != '' "
            "GROUP BY category ORDER BY 2 DESC"
        )
        return [r[0] for r in rows]
