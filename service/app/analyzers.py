"""Sentiment analyzers for comments: a comment's text becomes one score in [−1, 1], with
the language and the analyzer's version kept beside it (the text itself is not kept).

One analyzer per language, chosen by ``analyzer_for``; English is scored by VADER
(vaderSentiment: C. J. Hutto, E. Gilbert, "VADER: a parsimonious rule-based model for
sentiment analysis of social media text", ICWSM 2014), a lexicon and rules made for
short social-media text, with no model to download. Its compound score is already in
[−1, 1]. Another language plugs in as another ``CommentAnalyzer``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import metadata
from typing import Protocol

from reviewrank.service.domain.errors import InvalidArgument


class CommentAnalyzer(Protocol):
    language: str  # a BCP 47 primary language tag, e.g. "en"
    version: str  # what produced the score, e.g. "vader-3.3.2"

    def score(self, text: str) -> float:
        """The text's sentiment in [−1, 1] (0: neutral, or nothing to judge)."""


class VaderAnalyzer:
    """English comments scored by VADER's compound score."""

    language = "en"

    def __init__(self) -> None:
        # Imported here: the lexicon loads (about 0.1 s) only when comments are scored.
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._polarity = SentimentIntensityAnalyzer().polarity_scores
        self.version = f"vader-{metadata.version('vaderSentiment')}"

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
