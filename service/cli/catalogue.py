"""``reviewrank catalogue FILE``: the shop's catalogue to a server (AdminService.UpsertProducts).

    reviewrank catalogue FILE [--format csv|jsonl] [--dry-run] [--server HOST:PORT]

A file of products, CSV or JSON Lines (docs/import.md): ``product_id``, optional
``category``, ``active`` (true/false, yes/no, 1/0; listed when missing) and
``more_categories`` (other categories: joined by ``|`` in CSV, a list in JSON). Every row
is checked first; bad rows are listed on stderr by line and column, and nothing is
sent unless every row is good. Then the rows go in batches of BATCH products, each one
transaction: a failure part-way leaves the batches before it applied, and sending the
file again is harmless (unchanged products count as such). Exit status: 0 when every row was applied
(or, with --dry-run, is valid), 1 when any row was refused or the server failed, 2
when the file cannot be read at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewrank.service.cli.common import count, settings_from
from reviewrank.service.cli.importer import Progress
from reviewrank.service.cli.shop_data import FORMATS, Layout, ShopFile, UnreadableInput

LAYOUT = Layout(
    ("product_id", "category", "active", "more_categories"), ("product_id",), guide="docs/import.md"
)
MORE_SEPARATOR = "|"  # between the other categories in a CSV cell (JSON Lines: a list)
BATCH = 1000  # products per UpsertProducts call
SHOWN = 20  # refused rows listed on stderr
_ACTIVE = {"": True, "1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class Entry:
    line: int
    product_id: str
    category: str
    active: bool
    more_categories: tuple[str, ...] = ()


def _more(value: Any, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    """A row's other categories: a list (JSON), or text split at MORE_SEPARATOR."""
    if value is None or value == "":
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value)
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(MORE_SEPARATOR))
    problems.append(("more_categories", "must be a list of names, or names joined by '|'"))
    return ()


def _entry(line: int, record: dict[str, Any], longest: int) -> Entry | list[tuple[str, str]]:
    """One row as a catalogue entry, or its problems as (column, what is wrong)."""
    from reviewrank.service.api.validation import identifier_problem, more_categories_problems

    problems: list[tuple[str, str]] = []
    values: dict[str, str] = {}
    more = _more(record.get("more_categories"), problems)
    for column in LAYOUT.columns[:3]:
        value = record.get(column)
        if value is None:
            values[column] = ""
        elif isinstance(value, bool) and column == "active":
            values[column] = "true" if value else "false"
        elif isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
            values[column] = str(value).strip()
        else:
            problems.append((column, f"must be text (got {type(value).__name__})"))
            values[column] = ""
    for column, required in (("product_id", True), ("category", False)):
        problem = identifier_problem(values[column], longest, required)
        if problem is not None and not any(c == column for c, _ in problems):
            problems.append((column, problem))
    active = _ACTIVE.get(values["active"].lower())
    if active is None:
        problems.append(("active", f"must be true or false (got {values['active']!r})"))
    for j, problem in more_categories_problems(values["category"], more, longest):
        problems.append(("more_categories" if j is None else f"more_categories[{j}]", problem))
    if problems:
        return problems
    return Entry(line, values["product_id"], values["category"], bool(active), more)


def read_entries(
    shop: ShopFile, longest: int
) -> tuple[list[Entry], list[tuple[int, list[tuple[str, str]]]]]:
    """Every row as an entry, or as (line, problems); a product named twice is refused
    at its second row."""
    entries: list[Entry] = []
    bad: list[tuple[int, list[tuple[str, str]]]] = []
    first: dict[str, int] = {}
    for line, record, _raw, why in shop.records():
        if record is None:
            bad.append((line, [("", why)]))
            continue
        entry = _entry(line, record, longest)
        if isinstance(entry, list):
            bad.append((line, entry))
            continue
        earlier = first.setdefault(entry.product_id, line)
        if earlier != line:
            bad.append((line, [("product_id", f"repeats line {earlier}")]))
            continue
        entries.append(entry)
    return entries, bad


def _report_bad(name: str, bad: list[tuple[int, list[tuple[str, str]]]]) -> None:
    for line, problems in bad[:SHOWN]:
        text = "; ".join(f"{c}: {what}" if c else what for c, what in problems)
        print(f"{name}: line {line}: {text}", file=sys.stderr)
    if len(bad) > SHOWN:
        print(f"{name}: … and {len(bad) - SHOWN} more refused rows", file=sys.stderr)


def cmd_catalogue(args: argparse.Namespace) -> int:
    if args.batch < 1:
        print("reviewrank: --batch must be at least 1", file=sys.stderr)
        return 2
    settings = settings_from(args)
    try:
        shop = ShopFile(Path(args.file), args.format, LAYOUT)
        entries, bad = read_entries(shop, settings.max_id_length)
    except UnreadableInput as exc:
        print(f"reviewrank: {exc}", file=sys.stderr)
        return 2
    if shop.ignored:
        print(f"{shop.name}: ignoring columns {', '.join(shop.ignored)}", file=sys.stderr)
    if bad:
        _report_bad(shop.name, bad)
        print(
            f"{shop.name}: {len(bad)} of {len(entries) + len(bad)} rows refused: nothing sent",
            file=sys.stderr,
        )
        return 1
    if args.dry_run:
        print(f"checked {shop.name}: {len(entries)} products, all valid (dry run: nothing sent)")
        return 0
    progress = None if args.quiet else Progress(len(entries), unit="products", verb="sent")
    started = time.perf_counter()
    try:
        counts = _send(args, entries, progress)
    finally:
        if progress is not None:
            progress.close()  # before anything is printed below it
    if isinstance(counts, str):
        print(counts, file=sys.stderr)
        return 1
    created, updated, unchanged, seq = counts
    print(
        f"catalogue {shop.name}: {len(entries)} products in {time.perf_counter() - started:.2f} s: "
        f"{created} created, {updated} updated, {unchanged} unchanged"
        + (f" (seq {seq})" if seq else "")
    )
    return 0


def _send(
    args: argparse.Namespace, entries: list[Entry], progress: Progress | None
) -> tuple[int, int, int, int] | str:
    """Sends the entries in batches; returns the counts created, updated, unchanged and
    the last seq, or why it stopped."""
    import grpc

    from reviewrank.service.cli.common import open_channel
    from reviewrank.v1 import admin_pb2, admin_pb2_grpc

    created = updated = unchanged = seq = 0
    with open_channel(args, admin=True) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        for start in range(0, len(entries), args.batch):
            part = entries[start : start + args.batch]
            request = admin_pb2.UpsertProductsRequest(
                products=[
                    admin_pb2.CatalogueProduct(
                        product_id=e.product_id,
                        category=e.category,
                        inactive=not e.active,
                        more_categories=e.more_categories,
                    )
                    for e in part
                ]
            )
            try:
                response = stub.UpsertProducts(request, timeout=args.timeout)
            except grpc.RpcError as exc:
                return (
                    f"reviewrank: {exc.code().name}: {exc.details()} (rows from line "
                    f"{part[0].line}; {start} products applied before)"
                )
            created += response.created
            updated += response.updated
            unchanged += response.unchanged
            seq = max(seq, response.seq)
            if progress is not None:
                progress.update(start + len(part))
    return created, updated, unchanged, seq


def register(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    catalogue = commands.add_parser(
        "catalogue",
        help="send the shop's catalogue: each product's category and listing (admin token)",
    )
    catalogue.add_argument(
        "file", help="CSV or JSON Lines: product_id, category, active (see docs/import.md)"
    )
    catalogue.add_argument(
        "--format", choices=FORMATS, help="the file's format (default: from its name or content)"
    )
    catalogue.add_argument(
        "--dry-run", action="store_true", help="check every row and send nothing"
    )
    catalogue.add_argument(
        "--batch", type=count, default=BATCH, help=f"products per call (default {BATCH})"
    )
    catalogue.add_argument("--quiet", action="store_true", help="no progress line")
    client_options(catalogue)
    catalogue.set_defaults(handler=cmd_catalogue)
