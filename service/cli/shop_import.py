"""``reviewrank import --data FILE``: a shop's own review history (docs/import.md).

    reviewrank import --data FILE [--format csv|jsonl] [--source NAME] [--dry-run]
                      [--rejects FILE] [--server HOST:PORT] [--quiet]

The rows go through what a SubmitBatch call goes through (locally, or to ``--server``);
``--dry-run`` applies the same checks and writes nothing. Refused rows are listed on
stderr by line and column, and written to ``--rejects`` in the input's format. Exit
status: 0 when every row was accepted, 1 when any was refused (or the server failed),
2 when the file cannot be read at all.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

from reviewrank.service.app.settings import Settings
from reviewrank.service.cli.common import settings_from
from reviewrank.service.cli.importer import (
    ImportStopped,
    Problems,
    Progress,
    RowReport,
    Submit,
    run_rows,
)
from reviewrank.service.cli.shop_data import (
    CSV,
    DEFAULT_SOURCE,
    ShopFile,
    UnreadableInput,
    check_source,
)
from reviewrank.service.domain.errors import InvalidArgument
from reviewrank.service.domain.values import Outcome
from reviewrank.v1 import feedback_pb2

SHOWN = 20  # refused rows listed on stderr (all of them go to --rejects)


def reason(problems: Problems) -> str:
    return "; ".join(f"{column}: {what}" if column else what for column, what in problems)


class Rejects:
    """The refused rows, as they were read, with their line and reason: CSV with two more
    columns (reject_line, reject_reason), or JSON Lines with two more keys (_line, _error)."""

    def __init__(self, path: str, shop: ShopFile) -> None:
        self.format = shop.format
        try:
            self.file: IO[str] = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise UnreadableInput(f"cannot write {path}: {exc.strerror or exc}") from exc
        self.csv = csv.writer(self.file)
        if self.format == CSV:
            self.csv.writerow([*shop.columns, "reject_line", "reject_reason"])

    def write(self, line: int, problems: Problems, raw: Any) -> None:
        if self.format == CSV:
            self.csv.writerow([*raw, line, reason(problems)])
            return
        record = dict(raw) if isinstance(raw, dict) else {"_text": raw}
        record.update(_line=line, _error=reason(problems))
        self.file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        self.file.close()


def _violations(exc: Any) -> list[tuple[str, str]]:
    """The field violations of an INVALID_ARGUMENT status (google.rpc.BadRequest)."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(exc)
    found: list[tuple[str, str]] = []
    for detail in status.details if status is not None else ():
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            found.extend((v.field, v.description) for v in request.field_violations)
    return found


def remote(args: argparse.Namespace, settings: Settings) -> tuple[Submit, Callable[[], None]]:
    """SubmitBatch calls to --server: a refusal of rows raised as InvalidArgument (as the
    server's own conversion raises it), a server that cannot take a batch now retried."""
    import grpc

    from reviewrank.service.cli.common import open_channel, retried
    from reviewrank.v1 import feedback_pb2_grpc

    channel = open_channel(args)
    stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
    outcome_of = {1: Outcome.APPLIED, 2: Outcome.DUPLICATE, 3: Outcome.SUPERSEDED}

    def submit(request: feedback_pb2.SubmitBatchRequest) -> Sequence[Outcome]:
        try:
            response = retried(lambda: stub.SubmitBatch(request, timeout=args.timeout))
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(_violations(exc), details) from None
            raise ImportStopped(f"{args.server}: {code.name}: {details}") from None
        return [outcome_of[r.outcome] for r in response.results]

    return submit, channel.close


def summary(name: str, report: RowReport, dry_run: bool) -> str:
    rate = f"{report.rows / max(report.seconds, 1e-9):,.0f} rows/s"
    if dry_run:
        return (
            f"checked {name}: {report.rows} rows in {report.seconds:.2f} s ({rate}): "
            f"{report.valid} valid, {report.refused} refused (dry run: nothing written)"
        )
    return (
        f"imported {name}: {report.rows} rows in {report.seconds:.2f} s ({rate}): "
        f"{report.applied} applied, {report.duplicate} duplicate, "
        f"{report.superseded} superseded, {report.refused} refused"
    )


def cmd_import_file(args: argparse.Namespace) -> int:
    from reviewrank.service.api import convert
    from reviewrank.service.api.validation import InputLimits
    from reviewrank.service.api.wire.batch_codec import EncodedBatch
    from reviewrank.service.ops.logs import configure

    settings = settings_from(args)
    configure(settings.log_format, "warning")
    rejects: Rejects | None = None
    closers: list[Callable[[], None]] = []
    shown: list[tuple[int, Problems]] = []
    report = RowReport()
    try:
        source = check_source(args.source or DEFAULT_SOURCE)
        shop = ShopFile(args.data, args.format)
        if shop.ignored:
            print(
                f"reviewrank: {shop.name}: ignoring columns {', '.join(shop.ignored)} "
                "(see docs/import.md)",
                file=sys.stderr,
            )
        if args.rejects:
            rejects = Rejects(args.rejects, shop)
            closers.append(rejects.close)

        def refused(line: int, problems: Problems, raw: Any) -> None:
            if len(shown) < SHOWN:
                shown.append((line, problems))
            if rejects is not None:
                rejects.write(line, problems, raw)

        limits = InputLimits.of(settings)
        submit: Submit
        if args.dry_run:

            def submit(request: feedback_pb2.SubmitBatchRequest) -> None:
                convert.batch_events(EncodedBatch.of(request), limits)

        elif args.server:
            submit, close = remote(args, settings)
            closers.append(close)
        else:
            from reviewrank.service.compose import build_application

            app = build_application(settings)
            closers.append(app.close)
            if args.if_empty and app.catalogue.seq > 0:
                print(
                    f"{settings.storage.display} already holds data (at sequence"
                    f" {app.catalogue.seq}):"
                    " not importing"
                )
                return 0

            def submit(request: feedback_pb2.SubmitBatchRequest) -> Sequence[Outcome]:
                events = convert.batch_events(EncodedBatch.of(request), limits)
                return [r.outcome for r in app.submit(events, timeout=None)]

        verb = "checked" if args.dry_run else "imported"
        progress = None if args.quiet else Progress(shop.rows, unit="rows", verb=verb)
        batch_size = max(1, min(args.batch_size, settings.max_batch_events))
        report = run_rows(shop.rows_of(source), submit, batch_size, refused, progress)
    except UnreadableInput as exc:
        done = f" (after {report.rows} rows)" if report.rows else ""
        print(f"reviewrank: {exc}{done}", file=sys.stderr)
        return 2
    except ImportStopped as exc:
        print(
            f"reviewrank: import stopped: {exc}; the rows committed before stay, and "
            "importing the file again resumes (they are DUPLICATE)",
            file=sys.stderr,
        )
        return 1
    finally:
        for close in reversed(closers):
            close()
    for line, problems in shown:
        for problem in problems:
            print(f"{shop.name}:{line}: {reason((problem,))}", file=sys.stderr)
    if report.refused > len(shown):
        more = f" (all in {args.rejects})" if args.rejects else " (--rejects FILE lists them all)"
        print(f"... {report.refused} rows refused in all{more}", file=sys.stderr)
    print(summary(shop.name, report, args.dry_run))
    return 1 if report.refused else 0
