"""The ``reviewrank`` command: serve, import, and small clients for operators."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service import __version__
from service.app.settings import Settings, from_env


def _settings(args: argparse.Namespace) -> Settings:
    return from_env(
        address=getattr(args, "address", None),
        database=getattr(args, "database", None),
        database_url=getattr(args, "database_url", None),
        weights=getattr(args, "weights", None),
        log_format=getattr(args, "log_format", None),
        log_level=getattr(args, "log_level", None),
        synchronous=getattr(args, "synchronous", None),
        workers=getattr(args, "workers", None),
        metrics_address=getattr(args, "metrics_address", None),
        log_sample_rate=getattr(args, "log_sample_rate", None),
        tracing=getattr(args, "tracing", None),
        open_erasure=getattr(args, "open_erasure", None),
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from service.api.server import AddressInUse, serve
    from service.domain.errors import StorageUnavailable
    from service.ops.logs import capture_stderr, configure, print_fatal, renders_json

    settings = _settings(args)
    configure(
        settings.log_format, settings.log_level, settings.worker_id, settings.tracing != "off"
    )
    if renders_json(settings.log_format):  # every line JSON, gRPC core's own too
        capture_stderr()
    try:
        return serve(settings)
    except (AddressInUse, StorageUnavailable) as exc:
        print_fatal(f"reviewrank: {exc}")
        return 1


def cmd_import(args: argparse.Namespace) -> int:
    if args.from_export is not None:
        from service.cli.transfer import cmd_import_export

        return cmd_import_export(args)
    from service.api import convert
    from service.api.wire.batch_codec import EncodedBatch
    from service.cli.dataset import read_reviews
    from service.cli.importer import Progress, run_import
    from service.domain.values import Outcome
    from service.ops.logs import configure

    settings = _settings(args)
    configure(settings.log_format, "warning")
    reviews = list(read_reviews(args.data))
    progress = None if args.quiet else Progress(len(reviews))
    if args.server:
        from reviewrank.v1 import feedback_pb2_grpc

        from service.api.auth import client_channel, read_token

        # Sends the API token when one is configured (a server with one requires it).
        token = read_token(settings.api_token, settings.api_token_file, "api_token")
        channel = client_channel(args.server, token=token)
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        outcome_of = {1: Outcome.APPLIED, 2: Outcome.DUPLICATE, 3: Outcome.SUPERSEDED}

        def submit_remote(request):  # type: ignore[no-untyped-def]
            response = stub.SubmitBatch(request, timeout=60)
            return [outcome_of[r.outcome] for r in response.results]

        report = run_import(reviews, submit_remote, args.batch_size, progress)
        channel.close()
    else:
        from service.app.application import Application

        app = Application(settings)
        try:
            if args.if_empty and app.catalogue.seq > 0:
                print(
                    f"{settings.storage.display} already holds {app.catalogue.seq} events:"
                    " not importing"
                )
                return 0

            def submit_local(request):  # type: ignore[no-untyped-def]
                events = convert.batch_events(EncodedBatch.of(request), settings)
                return [r.outcome for r in app.submit(events, timeout=None)]

            report = run_import(reviews, submit_local, args.batch_size, progress)
        finally:
            app.close()
    print(
        f"imported {report.reviews} reviews as {report.events} events in {report.seconds:.2f} s "
        f"({report.events / max(report.seconds, 1e-9):,.0f} events/s): "
        f"{report.applied} applied, {report.duplicate} duplicate, {report.superseded} superseded"
    )
    return 0


def client_token(args: argparse.Namespace, settings: Settings, admin: bool = False) -> str:
    """The bearer token a client command sends ("" for none): --token, else the configured
    admin token (admin commands, erasure) or API token (the others); an admin command with
    neither falls back to the token file `make serve` creates, if there is one."""
    from service.api.auth import read_token
    from service.cli.token_file import DEFAULT_ADMIN_TOKEN_FILE

    token: str | None = getattr(args, "token", None)
    if token:
        return token
    name = "admin_token" if admin else "api_token"
    token = read_token(getattr(settings, name), getattr(settings, name + "_file"), name)
    if not token and admin and DEFAULT_ADMIN_TOKEN_FILE.is_file():
        token = read_token("", DEFAULT_ADMIN_TOKEN_FILE, name)
    return token


def _channel(args: argparse.Namespace, admin: bool = False):  # type: ignore[no-untyped-def]
    """A channel to --server (TLS with --ca-file or --tls), sending the bearer token
    (client_token)."""
    from service.api.auth import client_channel

    settings = _settings(args)
    return client_channel(
        args.server or settings.address,
        token=client_token(args, settings, admin),
        ca_file=getattr(args, "ca_file", None),
        tls=getattr(args, "tls", False),
    )


def _call(
    args: argparse.Namespace, stub_type: Any, method: str, request: Any, admin: bool = False
) -> Any:
    """Calls one method over a channel to --server (_channel); returns the response, or
    the exit code (an int: no response message is one) after printing the status."""
    with _channel(args, admin=admin) as channel:
        try:
            return getattr(stub_type(channel), method)(request, timeout=args.timeout)
        except Exception as exc:
            return _fail(exc)


def _fail(exc: Exception) -> int:
    import grpc

    if isinstance(exc, grpc.RpcError):
        print(f"reviewrank: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    raise exc


def cmd_stats(args: argparse.Namespace) -> int:
    from reviewrank.v1 import ranking_pb2, ranking_pb2_grpc

    from service.cli.tables import render

    response = _call(
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
            s.category,
            s.rating_count,
            " ".join(str(h) for h in s.stars_histogram),
            s.stars_mean,
            s.bayesian_average,
            s.likes,
            s.dislikes,
            s.wilson_lower_bound,
        )
        for s in response.stats
    ]
    headers = (
        "product",
        "category",
        "ratings",
        "1-5 stars",
        "mean",
        "bayes",
        "likes",
        "dislikes",
        "wilson",
    )
    print(render(headers, rows))
    print(f"weights version {response.weights_version}")
    return 0


def _print_ranking(response, explain: bool) -> None:  # type: ignore[no-untyped-def]
    from service.cli.tables import render

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
            "score =",
        )
    else:
        rows = [(i + 1, r.product_id, r.score) for i, r in enumerate(response.results)]
        headers = ("#", "product", "score")
    print(render(headers, rows))
    print(f"profile {response.profile}, weights version {response.weights_version}")


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
    response = _call(args, ranking_pb2_grpc.RankingServiceStub, "Rank", request, args.explain)
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
    response = _call(args, ranking_pb2_grpc.RankingServiceStub, "Top", request, args.explain)
    if isinstance(response, int):
        return response
    _print_ranking(response, args.explain)
    if response.next_page_token:
        print(f"next page: --page-token {response.next_page_token}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    request = health_pb2.HealthCheckRequest(service=args.service)
    response = _call(args, health_pb2_grpc.HealthStub, "Check", request)
    if isinstance(response, int):
        return response
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    print(status)
    return 0 if response.status == health_pb2.HealthCheckResponse.SERVING else 1


def _client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", help="HOST:PORT of the server (default: the configured address)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument(
        "--token",
        help="bearer token to send (default: REVIEWRANK_API_TOKEN[_FILE], or for admin "
        "commands and forget REVIEWRANK_ADMIN_TOKEN[_FILE], else data/admin-token if it "
        "exists; prefer those: flags show in `ps`)",
    )
    parser.add_argument("--tls", action="store_true", help="TLS, trusting the system's roots")
    parser.add_argument(
        "--ca-file", type=Path, help="TLS, trusting this PEM certificate (e.g. self-signed)"
    )


def build_parser() -> argparse.ArgumentParser:
    from service.cli.dataset import REVIEWS_ZIP

    parser = argparse.ArgumentParser(prog="reviewrank", description=__doc__)
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
    serve.add_argument("--log-format", choices=["auto", "json", "console"])
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
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
        "--open-erasure",
        action="store_true",
        default=None,
        help="let ForgetUser through without the admin token (anyone who reaches the port "
        "can erase users; logged as a warning)",
    )
    serve.set_defaults(handler=cmd_serve)

    imp = commands.add_parser("import", help="import the reviews data set")
    imp.add_argument("--data", type=Path, default=REVIEWS_ZIP, help="reviews CSV zip")
    storage_options(imp)
    imp.add_argument("--server", help="send SubmitBatch calls to this running server instead")
    imp.add_argument("--batch-size", type=int, default=1000, help="events per batch (max 1000)")
    imp.add_argument("--if-empty", action="store_true", help="skip if the database has events")
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.add_argument(
        "--from-export",
        metavar="FILE",
        help="import a `reviewrank export` file (- for stdin) instead, into an empty database",
    )
    imp.set_defaults(handler=cmd_import)

    stats = commands.add_parser("stats", help="print products' review statistics")
    stats.add_argument("product_ids", nargs="+")
    stats.add_argument("--profile", default="")
    _client_options(stats)
    stats.set_defaults(handler=cmd_stats)

    rank = commands.add_parser("rank", help="rank candidate products")
    rank.add_argument(
        "candidates", nargs="+", help="ID or ID=RELEVANCE (default relevance: the order given)"
    )
    rank.add_argument("--limit", type=_count, default=0, help="at most this many results (0: all)")
    rank.add_argument("--profile", default="")
    rank.add_argument("--explain", action="store_true")
    rank.add_argument("--user", default="", help="user id (picks the traffic split's profile)")
    _client_options(rank)
    rank.set_defaults(handler=cmd_rank)

    top = commands.add_parser("top", help="the best products overall or of a category")
    top.add_argument("--category", default="")
    top.add_argument("--limit", type=_count, default=10, help="results per page")
    top.add_argument("--page-token", default="")
    top.add_argument("--profile", default="")
    top.add_argument("--explain", action="store_true")
    top.add_argument("--user", default="", help="user id (picks the traffic split's profile)")
    _client_options(top)
    top.set_defaults(handler=cmd_top)

    check = commands.add_parser("health", help="exit 0 if the server is SERVING")
    check.add_argument("--service", default="", help="service name (default: the whole server)")
    _client_options(check)
    check.set_defaults(handler=cmd_health)

    from service.cli import admin, bench, evaluate, forget, status, transfer

    status.register(commands, _client_options)
    evaluate.register(commands)
    bench.register(commands)
    admin.register(commands, _client_options)
    forget.register(commands, _client_options)
    transfer.register(commands)
    return parser


def _count(text: str) -> int:
    """A whole number a uint32 field can carry, for argparse (which names the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and {2**32 - 1} (got {value})")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except ValueError as exc:
        from service.ops.logs import print_fatal

        print_fatal(f"reviewrank: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
