"""The ``reviewrank`` command: serve, import, and small clients for operators."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from reviewrank.service import __version__
from reviewrank.service.cli.common import (
    add_client_options,
    call,
    count,
    seconds,
    settings_from,
)


def cmd_serve(args: argparse.Namespace) -> int:
    from reviewrank.service.api.server import serve
    from reviewrank.service.domain.errors import AddressInUse, StorageUnavailable
    from reviewrank.service.ops.logs import capture_stderr, configure, print_fatal, renders_json

    settings = settings_from(args)
    configure(
        settings.log_format, settings.log_level, settings.worker_id, settings.tracing != "off"
    )
    if renders_json(settings.log_format):  # every line JSON, gRPC core's own too
        capture_stderr()
    scratch = None
    if args.scratch:
        import structlog

        from reviewrank.service.cli.scratch import scratch_settings

        original = settings.storage.display
        try:
            settings, scratch = scratch_settings(settings)
        except ValueError as exc:
            print_fatal(f"reviewrank: {exc}")
            return 2
        structlog.get_logger("reviewrank.cli").info(
            "serving a scratch copy, removed at exit", of=original, copy=str(settings.database)
        )
    try:
        return serve(settings)
    except (AddressInUse, StorageUnavailable) as exc:
        print_fatal(f"reviewrank: {exc}")
        return 1
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def cmd_import(args: argparse.Namespace) -> int:
    from reviewrank.service.cli.dataset import REVIEWS_ZIP

    if args.from_export is not None:
        from reviewrank.service.cli.transfer import cmd_import_export

        return cmd_import_export(args)
    if args.data is not None and args.data.resolve() != REVIEWS_ZIP.resolve():
        from reviewrank.service.cli.shop_import import cmd_import_file

        return cmd_import_file(args)
    if args.dry_run or args.rejects or args.format or args.source:
        print(
            "reviewrank: --dry-run, --rejects, --format and --source go with --data FILE",
            file=sys.stderr,
        )
        return 2
    from reviewrank.service.cli.demo_import import import_demo

    return import_demo(args)


def cmd_stats(args: argparse.Namespace) -> int:
    from reviewrank.service.cli.tables import render
    from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc

    response = call(
        args,
        ranking_pb2_grpc.RankingServiceStub,
        "GetProductStats",
        ranking_pb2.GetProductStatsRequest(product_ids=args.product_ids, profile=args.profile),
    )
    if isinstance(response, int):
        return response
    rows = [
        (
            s.product_id,
            " + ".join((s.category, *s.more_categories)),
            "not known" if not s.known else "no" if s.inactive else "yes",
            s.rating_count,
            " ".join(str(h) for h in s.stars_histogram),
            s.stars_mean,
            f"{s.prior_mean:.2f} / {s.prior_strength:.1f}",
            s.bayesian_average,
            s.likes,
            s.dislikes,
            s.wilson_lower_bound,
            s.shares,
            f"{s.share_rate:.4g}" if s.share_rate else "-",  # with a profile weighing shares
            s.comments,
            f"{s.sentiment_mean:+.3f}" if s.comments else "-",
            f"{s.polls_won}/{s.polls_shown}" if s.polls_shown else "-",
            f"{s.poll_strength:.3f}",
            _damped(s),
        )
        for s in response.stats
    ]
    headers = (
        "product",
        "category",
        "listed",
        "ratings",
        "1-5 stars",
        "mean",
        "prior C / m",
        "bayes",
        "likes",
        "dislikes",
        "wilson",
        "sharers",
        "shares/day",
        "comments",
        "sentiment",
        "polls won",
        "poll strength",
        "damped r/l/d",
    )
    print(render(headers, rows))
    if any(_damped(s) != "-" for s in response.stats):
        print("damped: what the manipulation defences leave out of the scores (mean, bayes,")
        print("wilson), in ratings/likes/dislikes; the counts above include them")
    sources = sorted({s.prior_source for s in response.stats if s.prior_source})
    prior = f", prior {', '.join(sources)}" if sources else ""
    print(f"weights version {response.weights_version}{prior}")
    return 0


def _damped(figures) -> str:  # type: ignore[no-untyped-def]
    """What the defences leave out (ProductStats or Explanation), or "-" for nothing."""
    parts = (figures.damped_ratings, figures.damped_likes, figures.damped_dislikes)
    return "/".join(f"{p:.3g}" for p in parts) if any(parts) else "-"


def _print_ranking(response, explain: bool) -> None:  # type: ignore[no-untyped-def]
    from reviewrank.service.cli.tables import render

    rows: list[tuple[object, ...]]
    headers: tuple[str, ...]
    if explain:
        rows = [
            (
                i + 1,
                r.product_id,
                r.score,
                r.explanation.rating_count,
                r.explanation.stars_mean,
                r.explanation.bayesian_average,
                r.explanation.likes,
                r.explanation.dislikes,
                r.explanation.wilson_lower_bound,
                _comments(r.explanation),
                _polls(r.explanation),
                " + ".join(
                    f"{c.component} {c.weight:.2f}x{c.normalized:.3f}"
                    for c in r.explanation.contributions
                ),
            )
            for i, r in enumerate(response.results)
        ]
        headers = (
            "#",
            "product",
            "score",
            "ratings",
            "mean",
            "bayes",
            "likes",
            "dislikes",
            "wilson",
            "comments",
            "polls won",
            "score =",
        )
        if any(_damped(r.explanation) != "-" for r in response.results):  # (else no column)
            rows = [(*row[:-1], _damped(r.explanation), row[-1])
                    for row, r in zip(rows, response.results, strict=True)]  # fmt: skip
            headers = (*headers[:-1], "damped r/l/d", headers[-1])
    else:
        rows = [(i + 1, r.product_id, r.score) for i, r in enumerate(response.results)]
        headers = ("#", "product", "score")
    print(render(headers, rows))
    print(f"profile {response.profile}, weights version {response.weights_version}")


def _comments(explanation) -> str:  # type: ignore[no-untyped-def]
    """Comments in force and their mean sentiment, "-" for none."""
    n = explanation.comments
    return f"{n} ({explanation.sentiment_mean:+.2f})" if n else "-"


def _polls(explanation) -> str:  # type: ignore[no-untyped-def]
    """Poll votes won of those shown, and the strength, "-" for none."""
    shown = explanation.polls_shown
    return f"{explanation.polls_won}/{shown} ({explanation.poll_strength:.2f})" if shown else "-"


def cmd_rank(args: argparse.Namespace) -> int:
    from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc

    candidates = []
    for i, item in enumerate(args.candidates):
        product_id, _, relevance = item.partition("=")
        try:
            score = float(relevance) if relevance else float(len(args.candidates) - i)
        except ValueError:
            print(
                f"reviewrank: bad relevance in {item!r} (use ID or ID=RELEVANCE)", file=sys.stderr
            )
            return 2
        candidates.append(ranking_pb2.Candidate(product_id=product_id, relevance=score))
    request = ranking_pb2.RankRequest(
        candidates=candidates,
        limit=args.limit,
        profile=args.profile,
        explain=args.explain,
        user_id=args.user,
    )
    # An explanation needs the admin token, found as the admin commands find it.
    response = call(args, ranking_pb2_grpc.RankingServiceStub, "Rank", request, args.explain)
    if isinstance(response, int):
        return response
    _print_ranking(response, args.explain)
    return 0


def cmd_top(args: argparse.Namespace) -> int:
    from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc

    request = ranking_pb2.TopRequest(
        category=args.category,
        limit=args.limit,
        page_token=args.page_token,
        profile=args.profile,
        explain=args.explain,
        user_id=args.user,
    )
    # An explanation needs the admin token, found as the admin commands find it.
    response = call(args, ranking_pb2_grpc.RankingServiceStub, "Top", request, args.explain)
    if isinstance(response, int):
        return response
    _print_ranking(response, args.explain)
    if response.next_page_token:
        print(f"next page: --page-token {response.next_page_token}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    request = health_pb2.HealthCheckRequest(service=args.service)
    response = call(args, health_pb2_grpc.HealthStub, "Check", request)
    if isinstance(response, int):
        return response
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


_PROFILE_HELP = "weights profile (default: the user's share of the traffic split, else default)"
_EXPLAIN_HELP = "show how each score is made (needs the admin token)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewrank",
        description="reviewrank: review-driven product ranking over gRPC. Serve it, import "
        "data, and call it (each command's --help says more).",
    )
    parser.add_argument("--version", action="version", version=f"reviewrank {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def storage_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(  # (text: a URL given here is taken as --database-url)
            "--database", help="SQLite file (default data/reviewrank.db), or a database URL"
        )
        p.add_argument(
            "--database-url",
            help="sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME (chosen over --database)",
        )
        p.add_argument("--weights", type=Path, help="weights TOML (default data/weights.toml)")
        p.add_argument(
            "--synchronous", choices=["FULL", "EXTRA", "NORMAL"], help="SQLite durability"
        )

    serve = commands.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--address", help="HOST:PORT to listen on (default 127.0.0.1:50051)")
    storage_options(serve)
    serve.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        help="auto (default): console on a terminal, JSON lines otherwise",
    )
    serve.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="default info"
    )
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port and database (default 1)"
    )
    serve.add_argument(
        "--metrics-address", help="HOST:PORT of the Prometheus metrics endpoint (default: off)"
    )
    serve.add_argument(
        "--log-sample-rate", type=float, help="share of successful RPCs logged (default 1)"
    )
    serve.add_argument(
        "--tracing", choices=["off", "otlp", "console"], help="OpenTelemetry spans (default off)"
    )
    serve.add_argument(
        "--scratch",
        action="store_true",
        help="serve a throwaway copy of the SQLite database (benchmarks, trials that write); "
        "the database named is left as it was",
    )
    serve.add_argument(
        "--open-erasure",
        action="store_true",
        default=None,
        help="let ForgetUser through without the admin token (anyone who reaches the port "
        "can erase users; logged as a warning)",
    )
    serve.set_defaults(handler=cmd_serve)

    imp = commands.add_parser(
        "import", help="import a shop's reviews (--data FILE), or else the demo data set"
    )
    imp.add_argument(
        "--data",
        type=Path,
        help="CSV or JSON Lines file of ratings and likes, plain, .gz or .zip "
        "(see docs/import.md; default: the demo data set)",
    )
    imp.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file")
    imp.add_argument(
        "--source",
        help="name for the event ids derived from rows without an event_id (default import); "
        "one per system the rows come from",
    )
    imp.add_argument(
        "--dry-run", action="store_true", help="check every row and report; write nothing"
    )
    imp.add_argument("--rejects", help="write the refused rows to this file, with the reason")
    storage_options(imp)
    imp.add_argument("--server", help="send SubmitBatch calls to this running server instead")
    imp.add_argument(
        "--timeout", type=seconds, default=60.0, help="seconds per call with --server (60)"
    )
    imp.add_argument("--token", help="bearer token to send with --server (see the clients')")
    imp.add_argument("--tls", action="store_true", help="TLS, trusting the system's roots")
    imp.add_argument("--ca-file", type=Path, help="TLS, trusting this PEM certificate")
    imp.add_argument(
        "--batch-size", type=_batch_size, default=1000, help="events per batch (1 to 1000)"
    )
    imp.add_argument("--if-empty", action="store_true", help="skip if the database has events")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument(
        "--from-export",
        metavar="FILE",
        help="import a `reviewrank export` file (- for stdin) instead, into an empty database",
    )
    imp.set_defaults(handler=cmd_import)

    stats = commands.add_parser("stats", help="print products' review statistics")
    stats.add_argument("product_ids", nargs="+", help="the products, by id")
    stats.add_argument("--profile", default="", help=_PROFILE_HELP)
    add_client_options(stats)
    stats.set_defaults(handler=cmd_stats)

    rank = commands.add_parser("rank", help="rank candidate products")
    rank.add_argument(
        "candidates", nargs="+", help="ID or ID=RELEVANCE (default relevance: the order given)"
    )
    rank.add_argument("--limit", type=count, default=0, help="at most this many results (0: all)")
    rank.add_argument("--profile", default="", help=_PROFILE_HELP)
    rank.add_argument("--explain", action="store_true", help=_EXPLAIN_HELP)
    rank.add_argument("--user", default="", help="user id (picks the traffic split's profile)")
    add_client_options(rank)
    rank.set_defaults(handler=cmd_rank)

    top = commands.add_parser("top", help="the best products overall or of a category")
    top.add_argument(
        "--category", default="", help="one category (case-sensitive; default: all products)"
    )
    top.add_argument(
        "--limit", type=count, default=0, help="results per page (0: the server's default, 20)"
    )
    top.add_argument(
        "--page-token", default="", help="the next page: the token printed under a page"
    )
    top.add_argument("--profile", default="", help=_PROFILE_HELP)
    top.add_argument("--explain", action="store_true", help=_EXPLAIN_HELP)
    top.add_argument("--user", default="", help="user id (picks the traffic split's profile)")
    add_client_options(top)
    top.set_defaults(handler=cmd_top)

    check = commands.add_parser("health", help="exit 0 if the server is SERVING")
    check.add_argument("--service", default="", help="service name (default: the whole server)")
    add_client_options(check)
    check.set_defaults(handler=cmd_health)

    from reviewrank.service.cli import admin, bench, catalogue, evaluate, forget, status, transfer

    status.register(commands, add_client_options)
    evaluate.register(commands)
    bench.register(commands)
    admin.register(commands, add_client_options)
    forget.register(commands, add_client_options)
    catalogue.register(commands, add_client_options)
    transfer.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except ValueError as exc:
        from reviewrank.service.ops.logs import print_fatal

        print_fatal(f"reviewrank: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. head, which stopped reading
        # Python would complain again flushing stdout at exit: point it at nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a shell reports a pipe's writer killed by SIGPIPE
    return result


def _batch_size(text: str) -> int:
    """--batch-size: 1 to 1000 events (SubmitBatch's limit), for argparse."""
    value = count(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000 (got {value})")
    return value


if __name__ == "__main__":
    sys.exit(main())
