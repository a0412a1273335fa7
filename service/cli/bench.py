"""``reviewrank bench``: the load driver from the command line, with ghz-like options."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reviewrank.service.cli.loadgen import LoadSpec, request_problem, run_load, write_json


def _duration(text: str) -> float:
    """ "10s", "500ms", "2m" or plain seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        help="load-test a server (ghz-like summary)",
        description="Calls one method at fixed concurrency or rate and prints a ghz-like summary.",
    )
    bench.add_argument("--call", required=True, help="e.g. reviewrank.v1.RankingService/Rank")
    source = bench.add_mutually_exclusive_group(required=True)
    source.add_argument("-d", "--data", help="request as JSON; {{n}} and {{uuid}} vary per call")
    source.add_argument(
        "--data-file", type=Path, help="JSON file: one request, or a list of requests used in turn"
    )
    bench.add_argument(
        "-c", "--concurrency", type=int, default=50, help="calls in flight at once (default 50)"
    )
    bench.add_argument("-n", "--total", type=int, help="number of requests (instead of a duration)")
    bench.add_argument(
        "-z", "--duration", type=_duration, default=None, help="e.g. 10s (default 10s)"
    )
    bench.add_argument(
        "--rps", type=float, help="open loop at this total rate (default: closed loop)"
    )
    bench.add_argument("--processes", type=int, default=1, help="client processes (default 1)")
    bench.add_argument(
        "--connections",
        type=_at_least_one,
        default=1,
        help="TCP connections per client process (default 1; with serve --workers N, use "
        "several, as the kernel spreads connections, not calls, over the workers)",
    )
    bench.add_argument("--cpus", help="pin the client processes to these CPUs, e.g. 1 or 0,1")
    bench.add_argument(
        "--warmup", type=_duration, default=0.0, help="unmeasured calls first, e.g. 2s"
    )
    bench.add_argument(
        "--timeout", type=_duration, default=20.0, help="deadline of each call (default 20s)"
    )
    bench.add_argument("--json", type=Path, help="also write the report as JSON")
    bench.add_argument(
        "--server",
        help="HOST:PORT of the server to load (default: a scratch server started for the "
        "run on a copy of the configured database, so that writes leave it as it was)",
    )
    bench.set_defaults(handler=run)


def _fail(message: str) -> int:
    print(f"reviewrank bench: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    templates: tuple[str, ...]
    if args.data is not None:
        templates = (args.data,)
    else:
        try:
            loaded = json.loads(args.data_file.read_text())
        except OSError as exc:
            return _fail(f"cannot read --data-file: {exc.strerror}: {args.data_file}")
        except ValueError as exc:
            return _fail(f"--data-file {args.data_file} is not JSON: {exc}")
        items = loaded if isinstance(loaded, list) else [loaded]
        templates = tuple(json.dumps(item) for item in items)
    problem = request_problem(args.call, templates)
    if problem is not None:
        return _fail(problem)
    if args.server:
        return _load(args, args.server, templates)
    from reviewrank.service.cli.scratch import scratch_server

    try:
        with scratch_server() as target:
            print(
                f"reviewrank bench: loading a scratch server on {target}, a copy of the"
                " configured database (pass --server HOST:PORT to load a running one)",
                file=sys.stderr,
            )
            return _load(args, target, templates)
    except RuntimeError as exc:
        return _fail(str(exc))


def _load(args: argparse.Namespace, target: str, templates: tuple[str, ...]) -> int:
    duration = args.duration if args.duration is not None else (None if args.total else 10.0)
    spec = LoadSpec(
        target=target,
        method=args.call,
        templates=templates,
        concurrency=args.concurrency,
        processes=args.processes,
        connections=args.connections,
        duration=duration,
        total=args.total,
        rps=args.rps,
        timeout=args.timeout,
        cpus=tuple(int(c) for c in args.cpus.split(",")) if args.cpus else None,
        warmup=args.warmup,
    )
    report = run_load(spec)
    print(report.summary())
    if args.json:
        write_json(report, str(args.json))
    return 0 if not report.errors else 1
