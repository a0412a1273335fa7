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
from functools import partial
from pathlib import Path
from typing import Any

from reviewrank.service.cli.common import settings_from
from reviewrank.service.cli.importer import Progress
from reviewrank.service.cli.shop_data import FORMATS, Layout, ShopFile, UnreadableInput

DISPLAY = "display"  # a JSON object's key; in CSV, one column per field: display.NAME
LAYOUT = Layout(
    ("product_id", "category", "active", "inactive", "more_categories", DISPLAY),
    ("product_id",),
    guide="docs/import.md",
    prefixes=(DISPLAY + ".",),
)
MORE_SEPARATOR = "|"  # between the other categories in a CSV cell (JSON Lines: a list)
BATCH = 1000  # products per UpsertProducts call
MAX_BATCH = 10_000  # the server's max_catalogue_products by default
MAX_CALL_BYTES = 2 << 20  # ids and names in one call
# Statuses of a call refused before anything was written (by name: grpc loads lazily).
REFUSALS = frozenset(
    {"INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION",
     "RESOURCE_EXHAUSTED"}
)  # fmt: skip
SHOWN = 20  # refused rows listed on stderr
_FLAGS = {"": True, "1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class Entry:
    """A row: None where it says nothing (the product keeps what it has)."""

    line: int
    product_id: str
    category: str | None
    active: bool | None
    more_categories: tuple[str, ...] = ()
    display: dict[str, str] | None = None


def _display(record: dict[str, Any], problems: list[tuple[str, str]]) -> dict[str, str] | None:
    """A row's display fields: a JSON object under "display", or display.NAME columns
    (an empty cell: no such field); None if the row has neither."""
    from reviewrank.service.api.validation import display_problems

    value = record.get(DISPLAY)
    if DISPLAY in record and value is None:  # null, as an empty cell: no fields
        value = {}
    if DISPLAY in record and not isinstance(value, dict):
        problems.append((DISPLAY, "must be an object of names and texts"))
        return None
    columns = [key for key in record if key.startswith(DISPLAY + ".")]
    if value is None and not columns:
        return None
    fields = {str(k): v for k, v in (value or {}).items() if v not in (None, "")}
    for key in columns:
        if record[key] not in (None, ""):
            fields[key[len(DISPLAY) + 1 :]] = record[key]
    wrong = sorted(name for name, v in fields.items() if not isinstance(v, str))
    if wrong:
        problems.append((DISPLAY, f"values must be text ({', '.join(wrong)})"))
        return None
    for name, problem in display_problems(fields):
        problems.append((DISPLAY if name is None else f"{DISPLAY}.{name}", problem))
    return fields


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


def _text(record: dict[str, Any], column: str, problems: list[tuple[str, str]]) -> str | None:
    """A column's value as text, None if the row does not have it."""
    if column not in record:
        return None
    value = record[column]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value).strip()
    problems.append((column, f"must be text (got {type(value).__name__})"))
    return None


def _listed(record: dict[str, Any], problems: list[tuple[str, str]]) -> bool | None:
    """From `active`, or `inactive` (the RPC's name), if the row has either."""
    found: list[bool] = []
    for column, means_listed in (("active", True), ("inactive", False)):
        text = _text(record, column, problems)
        if text is None or (text == "" and column == "inactive"):
            continue
        flag = _FLAGS.get(text.lower())
        if flag is None:
            problems.append((column, f"must be true or false (got {text!r})"))
            continue
        found.append(flag if means_listed else not flag)
    if len(set(found)) > 1:
        problems.append(("inactive", "says the opposite of active"))
    return found[0] if found else None


def _entry(line: int, record: dict[str, Any], longest: int) -> Entry | list[tuple[str, str]]:
    """One row as a catalogue entry, or its problems as (column, what is wrong)."""
    from reviewrank.service.api.validation import identifier_problem, more_categories_problems

    problems: list[tuple[str, str]] = []
    product_id = _text(record, "product_id", problems) or ""
    category = _text(record, "category", problems)
    for column, value, required in (
        ("product_id", product_id, True),
        ("category", category, False),
    ):
        problem = identifier_problem(value or "", longest, required)
        if problem is not None and not any(c == column for c, _ in problems):
            problems.append((column, problem))
    listed = _listed(record, problems)
    display = _display(record, problems)
    more = _more(record.get("more_categories"), problems)
    for j, problem in more_categories_problems(category or "", more, longest):
        problems.append(("more_categories" if j is None else f"more_categories[{j}]", problem))
    if problems:
        return problems
    return Entry(line, product_id, category, listed, more, display)


def read_entries(
    shop: ShopFile, longest: int
) -> tuple[list[Entry], list[tuple[int, list[tuple[str, str]]]], set[str]]:
    """Every row as an entry, or as (line, problems); a product named twice is refused
    at its second row. Also the keys of JSON objects this command does not read."""
    entries: list[Entry] = []
    bad: list[tuple[int, list[tuple[str, str]]]] = []
    first: dict[str, int] = {}
    unknown: set[str] = set()
    for line, record, _raw, why in shop.records():
        if record is None:
            bad.append((line, [("", why)]))
            continue
        unknown.update(key for key in record if not LAYOUT.reads(key))
        entry = _entry(line, record, longest)
        if isinstance(entry, list):
            bad.append((line, entry))
            continue
        earlier = first.setdefault(entry.product_id, line)
        if earlier != line:
            bad.append((line, [("product_id", f"repeats line {earlier}")]))
            continue
        entries.append(entry)
    return entries, bad, unknown


def _report_bad(name: str, bad: list[tuple[int, list[tuple[str, str]]]]) -> None:
    for line, problems in bad[:SHOWN]:
        text = "; ".join(f"{c}: {what}" if c else what for c, what in problems)
        print(f"{name}: line {line}: {text}", file=sys.stderr)
    if len(bad) > SHOWN:
        print(f"{name}: … and {len(bad) - SHOWN} more refused rows", file=sys.stderr)


def _products(count: int) -> str:
    return f"{count:,} product{'' if count == 1 else 's'}"


def cmd_catalogue(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    settings = settings_from(args)
    try:
        shop = ShopFile(Path(args.file), args.format, LAYOUT)
        entries, bad, unknown = read_entries(shop, settings.max_id_length)
    except UnreadableInput as exc:
        print(f"reviewrank: {exc}", file=sys.stderr)
        return 2
    ignored = sorted(set(shop.ignored) | unknown)
    if ignored:
        print(f"{shop.name}: ignoring columns {', '.join(ignored)}", file=sys.stderr)
    if bad:
        _report_bad(shop.name, bad)
        print(
            f"{shop.name}: {len(bad)} of {len(entries) + len(bad)} rows refused: nothing sent",
            file=sys.stderr,
        )
        return 1
    if args.dry_run:
        print(f"checked {shop.name}: {_products(len(entries))}, all valid (dry run: nothing sent)")
        return 0
    progress = None if args.quiet else Progress(len(entries), unit="products", verb="sent")
    counts = _send(args, entries, progress)
    if progress is not None:
        progress.close(finished=not isinstance(counts, str))  # before what follows
    if isinstance(counts, str):
        print(counts, file=sys.stderr)
        return 1
    created, updated, unchanged, seq = counts
    print(
        f"catalogue {shop.name}: {_products(len(entries))} in "
        f"{time.perf_counter() - started:.2f} s: {created} created, {updated} updated, "
        f"{unchanged} unchanged" + (f" (seq {seq})" if seq else "")
    )
    return 0


def _batches(entries: list[Entry], most: int) -> Any:
    """The entries as calls' worth of products: at most ``most``, and at most MAX_CALL_BYTES
    of ids and names (under the server's 3 MiB message limit)."""
    part: list[Entry] = []
    size = 0
    for entry in entries:
        names = (
            entry.product_id,
            entry.category or "",
            *entry.more_categories,
            *(entry.display or {}).keys(),
            *(entry.display or {}).values(),
        )
        weight = sum(len(n.encode()) + 4 for n in names) + 8
        if part and (len(part) == most or size + weight > MAX_CALL_BYTES):
            yield part
            part, size = [], 0
        part.append(entry)
        size += weight
    if part:
        yield part


def _message(entry: Entry) -> Any:
    from reviewrank.v1 import admin_pb2

    product = admin_pb2.CatalogueProduct(
        product_id=entry.product_id, more_categories=entry.more_categories
    )
    if entry.category is not None:
        product.category = entry.category
    if entry.active is not None:
        product.inactive = not entry.active
    if entry.display is not None:
        product.display.SetInParent()  # present even when empty: {} clears the fields
        product.display.fields.update(entry.display)
    return product


def _send(
    args: argparse.Namespace, entries: list[Entry], progress: Progress | None
) -> tuple[int, int, int, int] | str:
    """Sends the entries in batches (a server that cannot take one now is asked again:
    common.retried); returns the counts created, updated, unchanged
    and the last seq, or why it stopped."""
    import grpc

    from reviewrank.service.cli.common import open_channel, retried
    from reviewrank.v1 import admin_pb2, admin_pb2_grpc

    created = updated = unchanged = seq = done = 0
    with open_channel(args, admin=True) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        for part in _batches(entries, args.batch):
            request = admin_pb2.UpsertProductsRequest(products=[_message(e) for e in part])
            try:
                response = retried(partial(stub.UpsertProducts, request, timeout=args.timeout))
            except grpc.RpcError as exc:
                unknown = (
                    ""
                    if exc.code().name in REFUSALS
                    else "; whether this call's products were applied is unknown: sending the"
                    " file again is harmless"
                )
                return (
                    f"reviewrank: {exc.code().name}: {exc.details()} (rows from line "
                    f"{part[0].line}; {_products(done)} applied before{unknown})"
                )
            created += response.created
            updated += response.updated
            unchanged += response.unchanged
            seq = max(seq, response.seq)
            done += len(part)
            if progress is not None:
                progress.update(done)
    return created, updated, unchanged, seq


def _batch_size(text: str) -> int:
    """--batch: 1 to MAX_BATCH, for argparse (which names the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_BATCH} (got {value})")
    return value


def register(commands: Any, client_options: Callable[[argparse.ArgumentParser], None]) -> None:
    catalogue = commands.add_parser(
        "catalogue",
        help="send the shop's catalogue: each product's category and listing (admin token)",
    )
    catalogue.add_argument(
        "file",
        help="CSV or JSON Lines: product_id, category, more_categories, active or inactive, "
        "display.NAME (see docs/import.md)",
    )
    catalogue.add_argument(
        "--format", choices=FORMATS, help="the file's format (default: from its name or content)"
    )
    catalogue.add_argument(
        "--dry-run", action="store_true", help="check every row and send nothing"
    )
    catalogue.add_argument(
        "--batch",
        type=_batch_size,
        default=BATCH,
        help=f"products per call, 1 to {MAX_BATCH} (default {BATCH})",
    )
    catalogue.add_argument("--quiet", action="store_true", help="no progress line")
    client_options(catalogue)
    catalogue.set_defaults(handler=cmd_catalogue)
