"""``reviewrank admin``: the weights at runtime, from the command line.

    reviewrank admin get [--toml]
    reviewrank admin reload [--file WEIGHTS.toml] [--expect-version N] [--actor] [--reason]
    reviewrank admin history [--limit N] [--page-token T] [--content]
    reviewrank admin rollback VERSION [--expect-version N] [--actor] [--reason]
    reviewrank admin preview [--file WEIGHTS.toml] --sample ID,ID=REL,… [--category C] [--top-k]
    reviewrank admin bursts|decide|decisions   (service/cli/bursts.py)

They send the admin token (--token, else REVIEWRANK_ADMIN_TOKEN or _FILE).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reviewrank.service.cli import bursts
from reviewrank.service.cli.common import admin_call, count, when
from reviewrank.service.cli.tables import render
from reviewrank.v1 import admin_pb2, ranking_pb2


def _print_weights(weights: Any) -> None:
    origin = f"rollback of version {weights.rollback_of}" if weights.rollback_of else weights.source
    print(
        f"weights version {weights.version}: {origin}, applied {when(weights.loaded_at)} "
        f"({weights.trigger})"
    )
    if weights.actor or weights.reason:
        print(f"by {weights.actor or '-'}: {weights.reason or '-'}")
    print(f"sha256 {weights.content_sha256}")
    split = ", ".join(f"{t.profile} {t.share:.0%}" for t in weights.traffic)
    salt = f' (salt "{weights.traffic_salt}")' if weights.traffic_salt else ""
    print(
        f"default profile {weights.default_profile}; traffic split: "
        + (split + salt if split else "none")
    )
    rows = []
    for p in weights.profiles:
        mean = "auto" if p.prior_mean_from_catalogue else f"{p.prior_mean:g}"
        strength = "auto" if p.prior_strength_auto else f"{p.prior_strength:g}"
        rows.append(
            (
                p.name,
                ", ".join(f"{k} {v:.2f}" for k, v in sorted(p.weights.items())),
                f"C={mean} m={strength}" + (" per category" if p.prior_per_category else ""),
                f"{p.confidence:g}",
                f"{p.half_life_days:g}" if p.half_life_days else "-",
                f"{p.limits.max_candidates} / {p.limits.top_default_limit} / "
                f"{p.limits.top_max_limit}",
                _shares(p) if p.weights.get("shares") else "-",
                _sentiment(p) if p.weights.get("sentiment") else "-",
                "on" if p.integrity else "off",
            )
        )
    headers = (
        "profile", "weights", "prior", "confidence", "half-life (days)", "limits *", "shares",
        "sentiment", "defences",
    )  # fmt: skip
    print(render(headers, rows))
    print("* max candidates / Top default page / Top max page")


def _sentiment(p: admin_pb2.WeightsProfile) -> str:
    """A profile weighing sentiment: its prior."""
    if p.sentiment_prior_auto:
        return "prior auto"
    return f"prior C={p.sentiment_prior_mean:g} m={p.sentiment_prior_strength:g}"


def _shares(p: admin_pb2.WeightsProfile) -> str:
    """How a profile weighing shares measures them: half-life, prior, channel weights."""
    prior = (
        "prior auto"
        if p.shares_prior_auto
        else f"Gamma({p.shares_prior_shape:g}, {p.shares_prior_rate_days:g} d)"
    )
    channels = " ".join(f"{name} {w:g}" for name, w in sorted(p.channels.items()))
    return f"{p.shares_half_life_days:g} d, {prior}" + (f", {channels}" if channels else "")


def cmd_get(args: argparse.Namespace) -> int:
    response = admin_call(args, "GetWeights", admin_pb2.GetWeightsRequest())
    if isinstance(response, int):
        return response
    if args.toml:
        print(response.source_toml, end="")
    else:
        _print_weights(response)
    return 0


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    if not text.strip():
        raise ValueError(f"{path} is empty")
    return text


def cmd_reload(args: argparse.Namespace) -> int:
    request = admin_pb2.ReloadWeightsRequest(
        toml=_read(args.file),
        expected_version=args.expect_version,
        actor=args.actor,
        reason=args.reason,
    )
    response = admin_call(args, "ReloadWeights", request)
    if isinstance(response, int):
        return response
    print(f"version {response.weights.version} in force (replaced {response.previous_version})")
    _print_weights(response.weights)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    request = admin_pb2.RollbackWeightsRequest(
        version=args.version,
        expected_version=args.expect_version,
        actor=args.actor,
        reason=args.reason,
    )
    response = admin_call(args, "RollbackWeights", request)
    if isinstance(response, int):
        return response
    print(
        f"version {response.weights.version} in force: the content of version {args.version} "
        f"(replaced {response.previous_version})"
    )
    _print_weights(response.weights)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    request = admin_pb2.ListWeightHistoryRequest(
        page_size=args.limit, page_token=args.page_token, include_content=args.content
    )
    response = admin_call(args, "ListWeightHistory", request)
    if isinstance(response, int):
        return response
    rows = [
        (
            ("* " if v.version == response.current_version else "  ") + str(v.version),
            when(v.applied_at),
            v.trigger,
            f"rollback of {v.rollback_of}" if v.rollback_of else v.source,
            v.actor,
            v.reason,
            v.content_sha256[:12],
            ", ".join(v.profiles),
        )
        for v in response.versions
    ]
    headers = ("version", "applied", "trigger", "source", "actor", "reason", "sha256", "profiles")
    print(render(headers, rows))
    print(f"* in force: version {response.current_version}")
    if args.content:
        for v in response.versions:
            print(f"\n# version {v.version}\n{v.content}", end="")
    if response.next_page_token:
        print(f"next page: --page-token {response.next_page_token}")
    return 0


def _sample(text: str) -> list[Any]:
    """ID,ID=RELEVANCE,… → candidates (without relevance: the order given, as `rank` does)."""
    items = [item for item in text.split(",") if item]
    candidates = []
    for i, item in enumerate(items):
        product_id, _, relevance = item.partition("=")
        try:
            score = float(relevance) if relevance else float(len(items) - i)
        except ValueError:
            raise ValueError(f"bad relevance in {item!r} (use ID or ID=RELEVANCE)") from None
        candidates.append(ranking_pb2.Candidate(product_id=product_id, relevance=score))
    return candidates


def cmd_preview(args: argparse.Namespace) -> int:
    categories = list(args.category or [])
    if args.catalogue:
        categories.append("")
    request = admin_pb2.PreviewWeightsRequest(
        toml=_read(args.file),
        profile=args.profile,
        samples=[admin_pb2.CandidateList(candidates=_sample(s)) for s in args.sample or []],
        categories=categories,
        top_k=args.top_k,
    )
    response = admin_call(args, "PreviewWeights", request)
    if isinstance(response, int):
        return response
    print(
        f"profile {response.current_profile} of version {response.current_version} (now) "
        f"against {response.candidate_profile} of the candidate weights (then); nothing applied"
    )
    for change in response.changes:
        print(
            f"\n{change.sample}: {change.overlap:.0%} of the top {len(change.current_top)} stay; "
            f"in: {', '.join(change.moved_in) or '-'}; out: {', '.join(change.moved_out) or '-'}"
        )
        rows = [
            (
                s.product_id,
                s.current_rank,
                s.candidate_rank,
                _movement(s.shift),
                s.current_score,
                s.candidate_score,
            )
            for s in change.shifts
        ]
        print(render(("product", "rank now", "then", "moves", "score now", "then"), rows))
    return 0


def register(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    admin = commands.add_parser(
        "admin", help="weights at runtime, bursts of votes (needs the admin token)"
    )
    sub = admin.add_subparsers(dest="admin_command", required=True)

    def notes(p: argparse.ArgumentParser) -> None:
        p.add_argument("--expect-version", type=count, default=0, help="only if N is in force")
        p.add_argument("--actor", default="", help="who (kept in the history)")
        p.add_argument("--reason", default="", help="why (kept in the history)")

    get = sub.add_parser("get", help="the weights in force")
    get.add_argument("--toml", action="store_true", help="print their TOML only")
    client_options(get)
    get.set_defaults(handler=cmd_get)

    reload = sub.add_parser("reload", help="validate and apply weights (the server's file)")
    reload.add_argument(
        "--file", type=Path, help="send this local TOML file instead of reloading the server's"
    )
    notes(reload)
    client_options(reload)
    reload.set_defaults(handler=cmd_reload)

    history = sub.add_parser("history", help="the versions applied, newest first")
    history.add_argument("--limit", type=count, default=20, help="versions per page (20)")
    history.add_argument("--page-token", default="", help="the next page, from a previous page")
    history.add_argument("--content", action="store_true", help="print each version's TOML")
    client_options(history)
    history.set_defaults(handler=cmd_history)

    rollback = sub.add_parser("rollback", help="re-apply an earlier version as a new one")
    rollback.add_argument("version", type=count, help="the version to re-apply")
    notes(rollback)
    client_options(rollback)
    rollback.set_defaults(handler=cmd_rollback)

    preview = sub.add_parser("preview", help="how top-k results would change; applies nothing")
    preview.add_argument(
        "--file", type=Path, help="candidate TOML (default: the server's weights file now)"
    )
    preview.add_argument("--profile", default="", help="profile compared (default: defaults)")
    preview.add_argument(
        "--sample", action="append", help="candidates ID,ID=RELEVANCE,… (repeatable)"
    )
    preview.add_argument("--category", action="append", help="a category's Top (repeatable)")
    preview.add_argument("--catalogue", action="store_true", help="the whole catalogue's Top")
    preview.add_argument(
        "--top-k", type=int, default=10, help="how many of each ranking to compare (default 10)"
    )
    client_options(preview)
    preview.set_defaults(handler=cmd_preview)
    bursts.register(sub, client_options)


def _movement(shift: int) -> str:
    """A change of rank in words: ``shift`` is the new rank less the old (positive: falls)."""
    if shift > 0:
        return f"down {shift}"
    if shift < 0:
        return f"up {-shift}"
    return "="
