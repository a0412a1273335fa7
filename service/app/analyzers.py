"""Sentiment analyzers for comments: a comment's text becomes one score in [−1, 1], with
the language and the analyzer's version kept beside it (the text itself is not kept).

One analyzer per language, chosen by ``analyzer_for``; English is scored by VADER
(vaderSentiment: C. J. Hutto, E. Gilbert, "VADER: a parsimonious rule-based model for
sentiment analysis of social media text", ICWSM 2014), a lexicon and rules made for
short social-media text, with no model to download. Its compound score is already in
[−1, 1]. Another language plugs in as another ``CommentAnalyzer``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from functools import cache
from importlib import metadata
from itertools import repeat
from typing import Any, Protocol

from reviewrank.service.domain.errors import InvalidArgument


class CommentAnalyzer(Protocol):
    language: str  # a BCP 47 primary language tag, e.g. "en"
    version: str  # what produced the score, e.g. "vader-3.3.2"

    def score(self, text: str) -> float:
        """The text's sentiment in [−1, 1] (0: neutral, or nothing to judge)."""

    def cost(self, text: str) -> int:
        """How much scoring the text costs, in words the analyzer reads (its time is about
        proportional): what a batch's limit counts."""


# The furthest VADER's negation and idiom checks look from the word they judge (word i
# reads words i - 3 to i + 2).
_VADER_REACH = 3


def _near(words: list[str], i: int) -> tuple[list[str], int]:
    """The words within _VADER_REACH of word ``i``, and its place among them: what the
    checks read, whatever the text's length. Near the start, the whole list: a check there
    reads words[i - 3] with i - 3 < 0, Python's index from the list's end, which a slice
    would move."""
    if i < _VADER_REACH:
        return words, i
    return words[i - _VADER_REACH : i + _VADER_REACH + 1], _VADER_REACH


def _contrast(words: list[str], sentiments: list[float]) -> list[float]:
    """VADER's "but" rule at a cost of n log n: what its own ``_but_check`` does with
    ``sentiments.index`` in a loop over them (quadratic), step for step.

    Before the first "but" a sentiment counts half, after it one and a half. VADER finds
    each item by its value, as it stands then: the first position holding an equal value,
    which for repeated values is not the item's own (so a repeat may be scaled twice, or
    not at all). Here each value keeps a heap of the positions holding it, the first of
    which is that position; the scores are the same (tests/app/test_analyzers.py)."""
    lowered = [str(word).lower() for word in words]
    if "but" not in lowered:
        return sentiments
    but = lowered.index("but")
    held: dict[float, list[int]] = {}  # value -> positions holding it (a heap)
    for position, value in enumerate(sentiments):
        held.setdefault(value, []).append(position)  # (ascending: already a heap)
    for i in range(len(sentiments)):
        value = sentiments[i]
        first = held[value][0]
        if first == but:
            continue
        scaled = value * (0.5 if first < but else 1.5)
        heapq.heappop(held[value])
        sentiments[first] = scaled
        heapq.heappush(held.setdefault(scaled, []), first)
    return sentiments


def _linear_vader() -> Any:
    """VADER's analyzer with its negation and idiom checks given only the words they
    read, and its "but" rule without a search per sentiment (_contrast).

    vaderSentiment 3.3.2 lowercases every word of the text in the two checks, once per
    sentiment-laden word, and looks each sentiment up by value in the "but" rule:
    quadratic in the words. A 5,000-character comment of emoji (each expanded to its
    several-word name) took 48 s, 2.8 s with a "but" once the checks were windowed, and a
    long English text 40 ms. The checks read at most three words before and two after,
    so the same checks on that window give the same scores (tests/app/test_analyzers.py)
    at a cost linear in the text.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    negation = SentimentIntensityAnalyzer._negation_check
    idioms = SentimentIntensityAnalyzer._special_idioms_check

    class LinearVader(SentimentIntensityAnalyzer):  # type: ignore[misc]
        @staticmethod
        def _negation_check(valence: float, words: list[str], start_i: int, i: int) -> float:
            window, j = _near(words, i)
            return float(negation(valence, window, start_i, j))

        @staticmethod
        def _special_idioms_check(valence: float, words: list[str], i: int) -> float:
            window, j = _near(words, i)
            return float(idioms(valence, window, j))

        @staticmethod
        def _but_check(words: list[str], sentiments: list[float]) -> list[float]:
            return _contrast(words, sentiments)

    return LinearVader()


class VaderAnalyzer:
    """English comments scored by VADER's compound score."""

    language = "en"

    def __init__(self) -> None:
        # Built here: the lexicon loads (about 0.1 s) only when comments are scored.
        analyzer = _linear_vader()
        self._polarity = analyzer.polarity_scores
        self.version = f"vader-{metadata.version('vaderSentiment')}"
        # VADER reads an emoji as the words of its name ("grinning cat face with smiling
        # eyes"): six words for four bytes.
        self._emoji_words: dict[str, int] = {
            emoji: len(name.split()) for emoji, name in analyzer.emojis.items()
        }

    def cost(self, text: str) -> int:
        words = len(text.split())
        if text.isascii():  # (no emoji)
            return words
        return words + sum(map(self._emoji_words.get, text, repeat(0)))

    def score(self, text: str) -> float:
        compound = float(self._polarity(text)["compound"])
        return min(1.0, max(-1.0, compound))


_ANALYZERS: dict[str, Callable[[], CommentAnalyzer]] = {"en": VaderAnalyzer}


def languages() -> tuple[str, ...]:
    """The languages a comment's text may be in."""
    return tuple(_ANALYZERS)


def analyzer_for(language: str) -> CommentAnalyzer:
    """The analyzer of ``language`` (built once; tags matched without regard to case);
    InvalidArgument for one not offered."""
    return _built(language.lower())


@cache
def _built(language: str) -> CommentAnalyzer:
    make = _ANALYZERS.get(language)
    if make is None:
        raise InvalidArgument(
            [
                (
                    "language",
                    f"no analyzer for {language!r} (offered: {', '.join(languages())});"
                    " send a score the sender computed instead",
                )
            ]
        )
    return make()
