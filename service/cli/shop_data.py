"""Reads a shop's own review history: CSV or JSON Lines with named columns (docs/import.md).

One row is one event: a star rating, a like/dislike/clear, a share or a comment (its
text, scored by the server, or a score) on a product by a user at a time. Each row
becomes a FeedbackEvent (the message SubmitBatch carries) or a BadRow naming its line
and the columns at fault. An event id comes from the ``event_id`` column, else from the
row's content and the source name (:func:`derived_event_id`), so that a re-import is
DUPLICATE and two sources never collide.

A file is read twice: once to check it is text in one of the formats and to count its
rows (for the progress line's ETA), then row by row. Whatever makes the whole file
unreadable is an :class:`UnreadableInput` before any row is sent.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import hashlib
import io
import json
import math
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from google.protobuf.timestamp_pb2 import Timestamp

from reviewrank.service.domain.values import SENTIMENT_SCALE
from reviewrank.v1 import feedback_pb2

CSV, JSONL = "csv", "jsonl"
FORMATS = (CSV, JSONL)
COLUMNS = (
    "event_id", "kind", "product_id", "user_id", "stars", "value", "occurred_at", "category",
    "channel", "text", "score", "language", "poll_id", "shown", "verified_purchase",
)  # fmt: skip
# What a verified_purchase cell may say (JSON Lines may also give true or false); empty:
# not verified.
_FLAGS = {"true": True, "1": True, "false": False, "0": False, "": False}
# A poll vote's products shown, in a CSV cell (JSON Lines may also give an array).
SHOWN_SEPARATOR = "|"
REQUIRED = ("product_id", "user_id", "occurred_at")
DEFAULT_SOURCE = "import"
MAX_SOURCE = 64
_SUFFIXES = {".csv": CSV, ".jsonl": JSONL, ".ndjson": JSONL, ".json": JSONL}
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1 << 20
_LIKE_VALUES: dict[str, int] = {
    "1": feedback_pb2.LIKE,
    "+1": feedback_pb2.LIKE,
    "like": feedback_pb2.LIKE,
    "-1": feedback_pb2.DISLIKE,
    "dislike": feedback_pb2.DISLIKE,
    "0": feedback_pb2.CLEAR,
    "clear": feedback_pb2.CLEAR,
}
_VALUE_NUMBERS: dict[int, int] = {
    feedback_pb2.LIKE: 1,
    feedback_pb2.DISLIKE: -1,
    feedback_pb2.CLEAR: 0,
}
_INT32 = 2**31
_EPOCH_SECONDS_LIMIT = 100_000_000_000  # year 5138: larger numbers are milliseconds


@dataclass(frozen=True)
class Layout:
    """What a file's CSV header must name: every ``required`` column, and one at least
    of ``one_of``; columns not in ``columns`` are ignored (and reported)."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    one_of: tuple[str, ...] = ()
    guide: str = "docs/import.md"
    prefixes: tuple[str, ...] = ()  # columns named so are read too (e.g. display.title)

    def reads(self, column: str) -> bool:
        return column in self.columns or (bool(self.prefixes) and column.startswith(self.prefixes))


EVENTS = Layout(COLUMNS, REQUIRED, ("stars", "value", "kind"))


class UnreadableInput(ValueError):
    """The file cannot be imported at all (the one-line message says why)."""


@dataclass(frozen=True, slots=True)
class Row:
    """A row that became an event (the server may still refuse it)."""

    line: int
    event: feedback_pb2.FeedbackEvent
    raw: Any  # the row as read: CSV cells, a JSON object, or a line of text


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    problems: tuple[tuple[str, str], ...]  # (column, what is wrong); column "" is the row
    raw: Any


def check_source(source: str) -> str:
    if not source or len(source) > MAX_SOURCE or not source.isprintable() or ":" in source:
        raise UnreadableInput(
            f"--source must be 1-{MAX_SOURCE} printable characters without ':' (got {source!r})"
        )
    return source


def derived_event_id(source: str, kind: str, product: str, user: str, vote: int, us: int) -> str:
    """``SOURCE:`` and 32 hex digits of a SHA-256 of the event's content: its kind, product,
    user, vote and time in microseconds (the same whichever way the time was written)."""
    content = "\x1f".join((kind, product, user, str(vote), str(us)))
    return f"{source}:{hashlib.sha256(content.encode()).hexdigest()[:32]}"


# -- opening ---------------------------------------------------------------------------------


class ShopFile:
    """A file of rows: plain, gzip-compressed, or the one CSV/JSONL file of a zip."""

    def __init__(self, path: Path, form: str | None = None, layout: Layout = EVENTS) -> None:
        self.path = path
        self.layout = layout
        self.name = str(path)
        try:
            with open(path, "rb") as raw:
                magic = raw.read(4)
        except OSError as exc:
            raise UnreadableInput(f"cannot read {path}: {exc.strerror or exc}") from exc
        self.member: str | None = None
        inner = path.name
        if magic.startswith(_ZIP_MAGIC):
            self.member = self._zip_member()
            inner = self.member
        elif path.suffix.lower() == ".zip":
            raise UnreadableInput(f"{self.name}: not a zip file")
        elif path.suffix.lower() == ".gz" and not magic.startswith(_GZIP_MAGIC):
            raise UnreadableInput(f"{self.name}: not a gzip file")
        elif magic.startswith(_GZIP_MAGIC):
            inner = inner.removesuffix(".gz")
        self.gzip = magic.startswith(_GZIP_MAGIC) or inner.endswith(".gz")
        inner = inner.removesuffix(".gz")
        self.format = form or _SUFFIXES.get(Path(inner).suffix.lower()) or self._sniff()
        self.columns: list[str] = []
        self.ignored: list[str] = []
        self.rows = self._scan()

    def _zip_member(self) -> str:
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/")]
        except (zipfile.BadZipFile, OSError) as exc:
            raise UnreadableInput(f"{self.name}: damaged zip file ({exc})") from exc
        found = [
            n
            for n in names
            if Path(n.removesuffix(".gz")).suffix.lower() in _SUFFIXES
            and not n.startswith("__MACOSX/")
        ]
        if len(found) != 1:
            raise UnreadableInput(
                f"{self.name}: a zip must hold one .csv or .jsonl file, not {len(found)} "
                f"(it holds {', '.join(names[:5]) or 'nothing'})"
            )
        return found[0]

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The file's bytes, decompressed."""
        with contextlib.ExitStack() as stack:
            stream: IO[bytes]
            if self.member is not None:
                archive = stack.enter_context(zipfile.ZipFile(self.path))
                stream = stack.enter_context(archive.open(self.member))
            else:
                stream = stack.enter_context(open(self.path, "rb"))
            if self.gzip:
                stream = cast(IO[bytes], stack.enter_context(gzip.GzipFile(fileobj=stream)))
            yield stream

    def _sniff(self) -> str:
        try:
            with self.open() as stream:
                start = stream.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise UnreadableInput(f"{self.name}: cannot read it ({exc})") from exc
        return JSONL if start.startswith(b"{") else CSV

    def _scan(self) -> int:
        """Checks the whole file is UTF-8 text without NUL bytes; returns its rows (lines,
        less the header's for CSV). For CSV, checks the header too."""
        lines, last = 0, b""
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            with self.open() as stream:
                while chunk := stream.read(_CHUNK):
                    nul = chunk.find(b"\x00")
                    if nul >= 0:
                        at = lines + chunk.count(b"\n", 0, nul) + 1
                        raise UnreadableInput(
                            f"{self.name}: binary data at line {at}, not CSV or JSON Lines text"
                        )
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        at = lines + chunk.count(b"\n", 0, max(exc.start, 0)) + 1
                        raise UnreadableInput(
                            f"{self.name}: not UTF-8 text at line {at}: expected CSV or JSON "
                            "Lines (save it as UTF-8)"
                        ) from exc
                    lines += chunk.count(b"\n")
                    last = chunk[-1:]
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise UnreadableInput(f"{self.name}: not UTF-8 text at its end") from exc
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise UnreadableInput(f"{self.name}: cannot read it ({exc})") from exc
        if not last:
            raise UnreadableInput(f"{self.name} is empty")
        if last != b"\n":
            lines += 1
        if self.format == CSV:
            self.columns = self._header()
            lines -= 1
        return max(lines, 0)

    def _header(self) -> list[str]:
        with self.open() as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            try:
                header = next(csv.reader(text), [])
            except csv.Error as exc:
                raise UnreadableInput(f"{self.name}: line 1: not a CSV header ({exc})") from exc
        columns = [c.strip().lower() for c in header]
        twice = sorted({c for c in columns if c and columns.count(c) > 1})
        if twice:
            raise UnreadableInput(f"{self.name}: line 1: the header names {', '.join(twice)} twice")
        layout = self.layout
        missing = [c for c in layout.required if c not in columns]
        if layout.one_of and not (set(layout.one_of) & set(columns)):
            missing.append(" or ".join(layout.one_of[:2]))
        if missing:
            hint = (
                " (this is the demo data set's layout, not the import format)"
                if "clothing id" in columns
                else ""
            )
            raise UnreadableInput(
                f"{self.name}: line 1: the header has no column {', '.join(missing)}{hint}; "
                f"it has {', '.join(columns) or 'nothing'} (see {layout.guide})"
            )
        self.ignored = [c for c in columns if not layout.reads(c)]
        return columns

    # -- reading -----------------------------------------------------------------------------

    def records(self) -> Iterator[tuple[int, dict[str, Any] | None, Any, str]]:
        """(line, record or None, raw row, why not a record) for every non-blank row."""
        if self.format == CSV:
            yield from self._csv_records()
        else:
            yield from self._jsonl_records()

    def _csv_records(self) -> Iterator[tuple[int, dict[str, Any] | None, Any, str]]:
        width = len(self.columns)
        with self.open() as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            reader = csv.reader(text)
            next(reader, None)
            line = reader.line_num + 1
            try:
                for cells in reader:
                    start, line = line, reader.line_num + 1
                    if not any(cell.strip() for cell in cells):
                        continue
                    if len(cells) != width:
                        why = f"has {len(cells)} fields, the header {width}"
                        yield start, None, cells, why
                        continue
                    yield start, dict(zip(self.columns, cells, strict=True)), cells, ""
            except csv.Error as exc:
                raise UnreadableInput(f"{self.name}: line {line}: {exc}") from exc

    def _jsonl_records(self) -> Iterator[tuple[int, dict[str, Any] | None, Any, str]]:
        with self.open() as stream:
            for number, data in enumerate(stream, start=1):
                text = data.decode("utf-8").strip()
                if number == 1:
                    text = text.removeprefix("\ufeff")
                if not text:
                    continue
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    yield number, None, text, f"not JSON ({exc})"
                    continue
                if not isinstance(value, dict):
                    yield number, None, text, "not a JSON object"
                    continue
                yield number, {str(k).strip().lower(): v for k, v in value.items()}, value, ""

    def rows_of(self, source: str) -> Iterator[Row | BadRow]:
        for line, record, raw, why in self.records():
            if record is None:
                yield BadRow(line, (("", why),), raw)
                continue
            event = feedback_event(record, source)
            if isinstance(event, feedback_pb2.FeedbackEvent):
                yield Row(line, event, raw)
            else:
                yield BadRow(line, tuple(event), raw)


# -- one row ---------------------------------------------------------------------------------


def _text(record: dict[str, Any], column: str, problems: list[tuple[str, str]]) -> str:
    value = record.get(column)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.append((column, f"must be text (got {json.dumps(value)})"))
        return ""
    return str(value).strip()


def _shown(value: Any, problems: list[tuple[str, str]]) -> list[str]:
    """A poll vote's products shown: an array of ids, or ids joined by SHOWN_SEPARATOR
    (how many, and which, are the server's rules)."""
    if value is None or value == "":
        return []
    if isinstance(value, list) and all(_is_id(item) for item in value):
        return [str(item).strip() for item in value]
    if isinstance(value, str):
        return [item.strip() for item in value.split(SHOWN_SEPARATOR)]
    problems.append(("shown", f"must be ids joined by | or an array of ids (got {value!r:.80})"))
    return []


def _verified(value: Any, kind: str, problems: list[tuple[str, str]]) -> bool:
    """A rating's or like's verified_purchase: true or false, 1 or 0 (empty: false)."""
    if value is None:
        return False
    flag: bool | None = None
    if type(value) is bool:
        flag = value
    elif type(value) in (str, int):
        flag = _FLAGS.get(str(value).strip().lower())
    if flag is None:
        problems.append(
            ("verified_purchase", f"must be true or false, 1 or 0 (got {json.dumps(value)})")
        )
        return False
    if flag and kind not in {"rating", "like"}:
        problems.append(("verified_purchase", "only a rating or a like is a verified purchase"))
        return False
    return flag


def _is_id(value: Any) -> bool:
    """Whether a JSON value may stand for an id (text, or a number, as _text reads)."""
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _score(text: str, problems: list[tuple[str, str]]) -> float | None:
    """A comment's sentiment score: a finite number (its range is the server's rule)."""
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        problems.append(("score", f"must be a number from -1 to 1 (got {text!r})"))
        return None
    return number


def _whole(text: str, column: str, problems: list[tuple[str, str]]) -> int | None:
    try:
        number = float(text)
    except ValueError:
        problems.append((column, f"must be a whole number (got {text!r})"))
        return None
    if not number.is_integer():
        problems.append((column, f"must be a whole number (got {text!r})"))
        return None
    return int(number)


def _stars(text: str, problems: list[tuple[str, str]]) -> int:
    stars = _whole(text, "stars", problems)
    if stars is None:
        return 0
    if not -_INT32 <= stars < _INT32:  # (else the server's own rule decides)
        problems.append(("stars", f"must be between 1 and 5 (got {stars})"))
        return 0
    return stars


def _value(text: str, problems: list[tuple[str, str]]) -> int:
    value = _LIKE_VALUES.get(text.lower())
    if value is None:
        problems.append(("value", f"must be 1 (like), -1 (dislike) or 0 (clear) (got {text!r})"))
        return feedback_pb2.CLEAR
    return value


def parse_time(text: str) -> int:
    """Microseconds since the epoch of ISO 8601 (UTC when no offset is given) or of epoch
    seconds. Raises ValueError saying why not."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"must be a time (got {text!r})")
        if abs(seconds) >= _EPOCH_SECONDS_LIMIT:
            raise ValueError(f"must be epoch seconds, not milliseconds (got {text})")
        return round(seconds * 1_000_000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"must be ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds (got {text!r})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def feedback_event(
    record: dict[str, Any], source: str
) -> feedback_pb2.FeedbackEvent | list[tuple[str, str]]:
    """The row's event, or its problems. Only the format's own rules are checked here
    (numbers, times, which kind); the rules of an event are the server's (convert.py)."""
    problems: list[tuple[str, str]] = []
    shown = _shown(record.get("shown"), problems)
    text = {
        column: _text(record, column, problems)
        for column in COLUMNS
        if column not in {"shown", "verified_purchase"}
    }
    for column in REQUIRED:
        if not text[column] and column not in {c for c, _ in problems}:
            problems.append((column, "is required"))
    kind = text["kind"].lower()
    if not kind:
        if text["stars"] and text["value"]:
            problems.append(("kind", "is required when a row has both stars and value"))
        elif not text["stars"] and not text["value"]:
            problems.append(("stars", "is required (or value, for a like)"))
        kind = "rating" if text["stars"] else "like"
    elif kind not in {"rating", "like", "share", "comment", "poll_vote"}:
        problems.append(
            ("kind", f"must be rating, like, share, comment or poll_vote (got {text['kind']!r})")
        )
    elif kind == "poll_vote" and not text["poll_id"]:
        problems.append(("poll_id", "is required for a poll vote"))
    elif kind == "poll_vote" and not shown and "shown" not in {c for c, _ in problems}:
        problems.append(("shown", "is required for a poll vote (the products, a|b|c)"))
    elif kind == "comment" and not text["text"] and not text["score"]:
        problems.append(("text", "is required for a comment (or score)"))
    elif kind == "comment" and text["text"] and text["score"]:
        problems.append(("score", "a comment has its text or its score, not both"))
    elif kind == "rating" and not text["stars"]:
        problems.append(("stars", "is required for a rating"))
    elif kind == "like" and not text["value"]:
        problems.append(("value", "is required for a like"))
    micros = 0
    if text["occurred_at"]:
        try:
            micros = parse_time(text["occurred_at"])
        except ValueError as exc:
            problems.append(("occurred_at", str(exc)))
    vote = 0
    if kind == "rating" and text["stars"]:
        vote = _stars(text["stars"], problems)
    elif kind == "like" and text["value"]:
        vote = _value(text["value"], problems)
    score = None
    if kind == "comment" and text["score"]:
        score = _score(text["score"], problems)
    verified = _verified(record.get("verified_purchase"), kind, problems)
    if problems:
        return problems
    seconds, micro = divmod(micros, 1_000_000)
    occurred = Timestamp(seconds=seconds, nanos=micro * 1000)
    product, user = text["product_id"], text["user_id"]
    if kind == "poll_vote":  # product_id: the product chosen
        # (the poll and the products shown in the product's place: a row that corrects
        # them is another event)
        key = "\n".join((text["poll_id"], product, *shown))
        event_id = text["event_id"] or derived_event_id(source, kind, key, user, len(shown), micros)
        vote = feedback_pb2.SubmitPollVoteRequest(
            event_id=event_id,
            poll_id=text["poll_id"],
            user_id=user,
            shown=shown,
            chosen=product,
            occurred_at=occurred,
            channel=text["channel"],
        )
        return feedback_pb2.FeedbackEvent(poll_vote=vote)
    if kind == "comment":
        # The vote of a derived id: the score kept; 0 for a text (nothing of it may be
        # kept: even a digest would confirm a guess).
        said = 0 if score is None else round(score * SENTIMENT_SCALE)
        event_id = text["event_id"] or derived_event_id(source, kind, product, user, said, micros)
        comment = feedback_pb2.SubmitCommentRequest(
            event_id=event_id,
            product_id=product,
            user_id=user,
            occurred_at=occurred,
            channel=text["channel"],
            language=text["language"],
        )
        if score is None:
            comment.text = text["text"]
        else:
            comment.score = score
        return feedback_pb2.FeedbackEvent(comment=comment)
    if kind == "share":
        event_id = text["event_id"] or derived_event_id(source, kind, product, user, 1, micros)
        share = feedback_pb2.SubmitShareRequest(
            event_id=event_id,
            product_id=product,
            user_id=user,
            occurred_at=occurred,
            channel=text["channel"],
        )
        return feedback_pb2.FeedbackEvent(share=share)
    if kind == "rating":
        event_id = text["event_id"] or derived_event_id(source, kind, product, user, vote, micros)
        rating = feedback_pb2.SubmitRatingRequest(
            event_id=event_id,
            product_id=product,
            user_id=user,
            stars=vote,
            occurred_at=occurred,
            category=text["category"],
            verified_purchase=verified,
        )
        return feedback_pb2.FeedbackEvent(rating=rating)
    number = _VALUE_NUMBERS[vote]
    event_id = text["event_id"] or derived_event_id(source, kind, product, user, number, micros)
    like = feedback_pb2.SubmitLikeRequest(
        event_id=event_id,
        product_id=product,
        user_id=user,
        value=feedback_pb2.LikeValue.ValueType(vote),
        occurred_at=occurred,
        verified_purchase=verified,
    )
    return feedback_pb2.FeedbackEvent(like=like)
