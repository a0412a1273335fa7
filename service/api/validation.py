"""Every rule a request's values must follow, written once, and the limits they use.

:class:`InputLimits` is built once from Settings (the server, each servicer) and holds
only the input limits. The rules are here and nowhere else:

- an identifier (event, product, user id, category) is 1 to ``max_id_length``
  printable characters, or empty where optional: :func:`identifier_problem` for one value,
  named in errors, and :func:`ids_ok` / :func:`id_length_ok` for a whole column at once
  (SubmitBatch's bulk readings in service/api/wire/batch_codec.py, Rank's candidates);
- an event's time (:func:`event_time`), stars (:data:`STARS`), a comment's text, score
  and language (``Violations.comment``), a profile name, a page token;
- each method's own checks of plain values (:func:`rank_candidates`, :func:`top_request`,
  :func:`stats_product_ids`).

service/api/convert.py reads the messages and calls these; a bulk path that finds a value
at fault declines, and convert.py reads the request again one field at a time to name
every field at fault, so the answer to bad input never depends on the path. Field paths
follow the request's shape (``events[3].rating.stars``, ``candidates[0].product_id``).
The exceptions are service/domain/errors.py's.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import numpy.typing as npt

from reviewrank.ranking.polls import MAX_SHOWN, MIN_SHOWN, BallotFault, ballot_faults
from reviewrank.service.app import analyzers
from reviewrank.service.app.settings import Settings
from reviewrank.service.domain.errors import InvalidArgument, too_many_items

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Characters, in a profile name and in a page token (which Top makes far shorter).
MAX_PROFILE_NAME = 64
MAX_PAGE_TOKEN = 1024
STARS = (1, 5)  # a rating's stars, lowest and highest
# Problems named for one request at the most (enough to show what is wrong).
MOST_NAMED = 100


@dataclass(frozen=True)
class InputLimits:
    """The input limits, from Settings: what a valid request holds at the most."""

    max_candidates: int
    max_stats_products: int
    max_batch_events: int
    max_id_length: int
    max_top_limit: int
    max_future_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> InputLimits:
        return cls(
            settings.max_candidates,
            settings.max_stats_products,
            settings.max_batch_events,
            settings.max_id_length,
            settings.max_top_limit,
            settings.max_future_seconds,
        )


# -- the identifier rule -------------------------------------------------------------------


# The longest channel name an event may carry ("web", "app", "store", "instagram"...).
MAX_CHANNEL_LENGTH = 64


def identifier_problem(value: str, longest: int, required: bool = True) -> str | None:
    """What is wrong with an identifier, or None."""
    if not value:
        return "is required" if required else None
    if len(value) > longest:
        return f"must be at most {longest} characters (got {len(value)})"
    if not value.isprintable():
        return "must not contain control or other non-printable characters"
    return None


@overload
def id_length_ok(length: int, longest: int, required: bool = True) -> bool: ...
@overload
def id_length_ok(
    length: IntArray, longest: int, required: bool = True
) -> npt.NDArray[np.bool_]: ...
def id_length_ok(
    length: int | IntArray, longest: int, required: bool = True
) -> bool | npt.NDArray[np.bool_]:
    """Whether identifiers of these lengths (one, or an array of them) are of a valid
    length: the rule's bounds, for a column whose lengths are measured in bulk (the
    caller checks printability, of all the column joined)."""
    return (length >= (1 if required else 0)) & (length <= longest)


def ids_ok(values: Sequence[str], longest: int, required: bool = True) -> bool:
    """Whether every value (at least one) follows the identifier rule, checked at once."""
    lengths = list(map(len, values))
    return (
        id_length_ok(min(lengths), longest, required)
        and id_length_ok(max(lengths), longest, required)
        and "".join(values).isprintable()
    )


# -- the shop's catalogue --------------------------------------------------------------------

MAX_MORE_CATEGORIES = 16


def more_categories_problems(
    category: str, more: Sequence[str], longest: int
) -> list[tuple[int | None, str]]:
    """What is wrong with a product's other categories, as (index or None for the list,
    problem): each an identifier, none twice nor the product's own category, at most
    MAX_MORE_CATEGORIES, and only beside a category of its own."""
    problems: list[tuple[int | None, str]] = []
    if not more:
        return problems
    if not category:
        problems.append((None, "needs a category first (the product's own)"))
    if len(more) > MAX_MORE_CATEGORIES:
        problems.append((None, f"must hold at most {MAX_MORE_CATEGORIES} (got {len(more)})"))
    seen = {category}
    for j, name in enumerate(more[:MAX_MORE_CATEGORIES]):
        problem = identifier_problem(name, longest)
        if problem is not None:
            problems.append((j, problem))
        elif name in seen:
            problems.append((j, f"repeats {name!r}"))
        seen.add(name)
    return problems


MAX_DISPLAY_FIELDS = 8
MAX_DISPLAY_NAME = 32
MAX_DISPLAY_VALUE = 512
# All of a product's display fields, in UTF-8 bytes: the largest Top page (1,000 products)
# and GetProductStats answer (1,000 ids) then stay under the 3 MiB message limit.
MAX_DISPLAY_BYTES = 1024
_DISPLAY_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
# Control characters and line or paragraph separators; other format characters (a soft
# hyphen, the joiner of an emoji sequence) and spaces (no-break) are a title's own.
_NOT_IN_DISPLAY = frozenset({"Cc", "Zl", "Zp", "Cs"})


def display_problems(fields: Mapping[str, str]) -> list[tuple[str | None, str]]:
    """What is wrong with a product's display fields, as (field name or None for all of
    them, problem): at most MAX_DISPLAY_FIELDS, names of 1 to MAX_DISPLAY_NAME characters
    a-z, 0-9 and _, values of at most MAX_DISPLAY_VALUE characters and no control
    characters, MAX_DISPLAY_BYTES in all."""
    problems: list[tuple[str | None, str]] = []
    if len(fields) > MAX_DISPLAY_FIELDS:
        problems.append(
            (None, f"must hold at most {MAX_DISPLAY_FIELDS} fields (got {len(fields)})")
        )
    size = sum(len(name.encode()) + len(value.encode()) for name, value in fields.items())
    if size > MAX_DISPLAY_BYTES:
        problems.append((None, f"must hold at most {MAX_DISPLAY_BYTES} bytes in all (got {size})"))
    for name, value in sorted(fields.items())[:MAX_DISPLAY_FIELDS]:
        if not 1 <= len(name) <= MAX_DISPLAY_NAME or not set(name) <= _DISPLAY_NAME:
            problems.append((name, f"names must be 1-{MAX_DISPLAY_NAME} characters a-z, 0-9 and _"))
        elif len(value) > MAX_DISPLAY_VALUE:
            problems.append(
                (name, f"must be at most {MAX_DISPLAY_VALUE} characters (got {len(value)})")
            )
        elif any(unicodedata.category(ch) in _NOT_IN_DISPLAY for ch in value):
            problems.append((name, "must not contain control characters or line breaks"))
    return problems


# -- poll votes ----------------------------------------------------------------------------

# The products the poll votes of one batch show, together (UTF-8 bytes of their ids): each
# vote may name 10 ids of max_id_length, but a full batch of such votes would not fit a
# request (service/api/request_budget.py). 100,000 bytes: 1,000 votes of 4 ids of 25.
MAX_BATCH_SHOWN_BYTES = 100_000

# -- comments ------------------------------------------------------------------------------

# The longest text a comment may carry (characters), and all the comments of one batch
# together (UTF-8 bytes, which also bounds the batch's size: service/api/request_budget.py).
MAX_COMMENT_TEXT = 5_000
MAX_BATCH_COMMENT_BYTES = 500_000
# And the words the analyzers read in a batch's texts (an emoji counts the words of its
# name: CommentAnalyzer.cost): VADER takes about 2.5 µs a word on the demo reviews (7,300
# of them a second on one core), 4.5 on emoji names, so a batch scores in 0.25-0.45 s at
# most (1,000 reviews of 55 words fit).
MAX_BATCH_SCORED_WORDS = 100_000
# And those of one comment: the most one scoring step holds the call's turn (a 5,000-word
# text of emoji names and "but" scores in about 40 ms), which the calls of other
# connections may wait behind.
MAX_COMMENT_WORDS = 5_000
MAX_LANGUAGE_TAG = 16
# A BCP 47 tag's shape: a primary language of letters, then subtags of letters or digits.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*", re.ASCII)
# Characters a comment's text may not hold: C0 and C1 controls but tab and line breaks.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
DEFAULT_LANGUAGE = "en"


def language_of(tag: str) -> str:
    """The primary language of a tag ("en-GB" -> "en"); DEFAULT_LANGUAGE for none."""
    return tag.split("-", 1)[0].lower() or DEFAULT_LANGUAGE


# -- collecting problems -------------------------------------------------------------------


class Violations:
    """A request's problems, as (field path, description) pairs: raised together, as one
    InvalidArgument."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.items.append((field, description))

    def identifier(self, value: str, field: str, required: bool = True) -> None:
        problem = identifier_problem(value, self.limits.max_id_length, required)
        if problem is not None:
            self.add(field, problem)

    def channel(self, value: str, field: str) -> None:
        """Where an event happened: optional, at most MAX_CHANNEL_LENGTH printable
        characters."""
        problem = identifier_problem(value, MAX_CHANNEL_LENGTH, required=False)
        if problem is not None:
            self.add(field, problem)

    def poll_vote(self, shown: Sequence[str], chosen: str, prefix: str) -> None:
        """A poll vote: MIN_SHOWN to MAX_SHOWN distinct product ids shown (each an
        identifier), the one chosen among them (ranking.polls.ballot_faults)."""
        faults = ballot_faults(shown, chosen)
        if BallotFault.SIZE in faults:
            self.add(
                prefix + "shown",
                f"must hold {MIN_SHOWN} to {MAX_SHOWN} product ids (got {len(shown)})",
            )
            if len(shown) > MAX_SHOWN:
                return  # (not naming each of a flood of ids)
        for i, product in enumerate(shown):
            self.identifier(product, f"{prefix}shown[{i}]")
        if BallotFault.TWICE in faults:
            self.add(prefix + "shown", "must not name a product twice")
        self.identifier(chosen, prefix + "chosen")
        if chosen and shown and BallotFault.NOT_SHOWN in faults:
            self.add(prefix + "chosen", "must be one of the products shown")

    def comment(self, text: str | None, score: float | None, language: str, prefix: str) -> None:
        """A comment holds exactly one of ``text`` (1 to MAX_COMMENT_TEXT characters, in a
        language an analyzer is offered for) and ``score`` (finite, in [−1, 1]); its
        language, optional, is a tag of at most MAX_LANGUAGE_TAG letters, digits and '-'."""
        if text is None and score is None:
            self.add(prefix + "text", "set the comment's text or its score")
        elif text is not None:
            if not text or text.isspace():
                self.add(prefix + "text", "must hold something besides spaces")
            elif len(text) > MAX_COMMENT_TEXT:
                self.add(
                    prefix + "text",
                    f"must be at most {MAX_COMMENT_TEXT} characters (got {len(text)})",
                )
            elif not text.isprintable() and _CONTROL.search(text):
                self.add(
                    prefix + "text",
                    "must not contain control characters (tabs and line breaks are fine)",
                )
        elif score is not None and not (math.isfinite(score) and -1.0 <= score <= 1.0):
            self.add(prefix + "score", f"must be a number from -1 to 1 (got {score})")
        if language and (len(language) > MAX_LANGUAGE_TAG or not _LANGUAGE_TAG.fullmatch(language)):
            self.add(
                prefix + "language",
                f"must be a language tag such as en or en-GB (at most {MAX_LANGUAGE_TAG}"
                " characters)",
            )
        elif text is not None and language_of(language) not in analyzers.languages():
            self.add(
                prefix + "language",
                f"no analyzer for {language!r} (offered: {', '.join(analyzers.languages())});"
                " send a score the sender computed instead",
            )

    def count(self, field: str, count: int, maximum: int, what: str) -> None:
        """A repeated field must hold between 1 and ``maximum`` items."""
        if count == 0:
            self.add(field, f"must contain at least one {what}")
        elif count > maximum:
            self.add(field, too_many_items(maximum, count))

    def profile_name(self, name: str) -> None:
        if len(name) > MAX_PROFILE_NAME or not name.isprintable():
            self.add("profile", f"must be at most {MAX_PROFILE_NAME} printable characters")

    def stars(self, stars: int, field: str) -> None:
        if not STARS[0] <= stars <= STARS[1]:
            self.add(field, f"must be between {STARS[0]} and {STARS[1]} (got {stars})")

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


# -- an event's time -----------------------------------------------------------------------


def event_time(seconds: int, nanos: int, now_us: int, limits: InputLimits) -> tuple[int, str]:
    """The time an event with this occurred_at is kept with, in microseconds, and what is
    wrong with it ("" when nothing; then the time kept is now).

    It is refused when more than max_future_seconds ahead of the server's clock, and
    never later than now. Votes are ordered by this time (service/domain/voting.py: the
    newer wins), so a time ahead of the clock would pin a vote against the user's real
    later votes, which carry the server's time, until the clock caught up. Keeping
    min(occurred_at, now) rather than ordering by a second, receive-time column: one time
    per vote, the same rule for every backend and no schema change; a time a little
    ahead (a client's clock skew, up to max_future_seconds) then counts from its arrival,
    and a decayed weight never exceeds 1. Every Submit method keeps times this way (an
    unset occurred_at is now)."""
    if not 0 <= nanos < 1_000_000_000:
        return now_us, "nanos must be in [0, 999999999]"
    if seconds < 0:
        return now_us, "must not be before 1970-01-01T00:00:00Z"
    micros = int(seconds) * 1_000_000 + int(nanos) // 1000
    if micros > now_us + int(limits.max_future_seconds * 1_000_000):
        return now_us, f"is more than {limits.max_future_seconds:g} s ahead of the server's clock"
    return min(micros, now_us), ""


# -- each method's checks of plain values --------------------------------------------------


# Where a Rank request's candidates are: (their count, an id, a relevance), by position.
_CANDIDATE_FIELDS = ("candidates", "candidates[{}].product_id", "candidates[{}].relevance")
_COLUMN_FIELDS = ("candidate_ids", "candidate_ids[{}]", "candidate_relevances[{}]")


def rank_candidates(
    ids: list[str],
    relevance: FloatArray,
    profile: str,
    user_id: str,
    limits: InputLimits,
    id_bytes: IntArray | None = None,
    columnar: bool = False,
) -> None:
    """Checks a Rank request's candidates (ids and relevances), profile and user id;
    raises InvalidArgument naming every field at fault. ``id_bytes``: each id's length in
    bytes when at hand (the bulk decoding's): in characters for ASCII ids. ``columnar``:
    sent as candidate_ids and candidate_relevances (the names the faults are given)."""
    check = Violations(limits)
    count_field, id_field, relevance_field = _COLUMN_FIELDS if columnar else _CANDIDATE_FIELDS
    check.count(count_field, len(ids), limits.max_candidates, "candidate")
    check.profile_name(profile)
    check.identifier(user_id, "user_id", required=False)
    check.raise_if_any()
    # Fast path: every check at C speed; the slow loop below only names the culprits.
    # (A sum of squares is finite when every value is, unless it overflows: then the
    # slow loop decides.)
    joined = "".join(ids)
    if id_bytes is not None and joined.isascii():  # (lengths in bytes are in characters)
        shortest, longest = int(id_bytes.min()), int(id_bytes.max())
    else:
        lengths = list(map(len, ids))
        shortest, longest = min(lengths), max(lengths)
    with np.errstate(over="ignore"):  # (an overflow is no warning on stderr: it is handled)
        squares = float(np.dot(relevance, relevance))
    most = limits.max_id_length
    if (
        id_length_ok(shortest, most)
        and id_length_ok(longest, most)
        and joined.isprintable()
        and len(set(ids)) == len(ids)
        and math.isfinite(squares)
    ):
        return
    seen: dict[str, int] = {}
    for i, (product_id, score) in enumerate(zip(ids, relevance.tolist(), strict=True)):
        check.identifier(product_id, id_field.format(i))
        first = seen.setdefault(product_id, i)
        if first != i:
            check.add(id_field.format(i), f"duplicates {id_field.format(first)}")
        if not math.isfinite(score):
            check.add(relevance_field.format(i), "must be a finite number")
        if len(check.items) >= MOST_NAMED:
            break
    check.raise_if_any()


def top_request(
    category: str, user_id: str, profile: str, limit: int, page_token: str, limits: InputLimits
) -> None:
    """Checks a Top request's fields (InvalidArgument naming each at fault)."""
    check = Violations(limits)
    check.identifier(category, "category", required=False)
    check.identifier(user_id, "user_id", required=False)
    check.profile_name(profile)
    if limit > limits.max_top_limit:
        check.add("limit", f"must be at most {limits.max_top_limit} (got {limit})")
    if len(page_token) > MAX_PAGE_TOKEN:
        check.add("page_token", "is not a token returned by Top")
    check.raise_if_any()


def stats_product_ids(product_ids: Sequence[str], profile: str, limits: InputLimits) -> None:
    """Checks a GetProductStats request's ids and profile."""
    check = Violations(limits)
    check.count("product_ids", len(product_ids), limits.max_stats_products, "product id")
    check.profile_name(profile)
    check.raise_if_any()
    for i, product_id in enumerate(product_ids):
        check.identifier(product_id, f"product_ids[{i}]")
    check.raise_if_any()
