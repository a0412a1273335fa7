"""The comment analyzers (service/app/analyzers.py): VADER with its checks given only the
words they read scores exactly as vaderSentiment's own analyzer does."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from reviewrank.service.app.analyzers import analyzer_for

# Words the negation and idiom checks look for, sentiment-laden words and emoji.
WORDS = [
    "good", "bad", "great", "awful", "love", "hate", "no", "not", "never", "so", "this",
    "without", "doubt", "least", "at", "very", "kind", "of", "but", "isn't", "nor", "or",
    "the", "shit", "bomb", "hot", "cut", "the", "mustard", "yeah", "right", "bad", "ass",
    "GREAT", "!!!", "?", "\U0001f638", "\U0001f600", "\U0001f621", ":)", ":(", "dress",
]  # fmt: skip
VADER = SentimentIntensityAnalyzer()
ENGLISH = analyzer_for("en")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=60), st.sampled_from([" ", "  ", "\n", ""]))
def test_the_linear_analyzer_scores_as_vader_does(words: list[str], space: str) -> None:
    text = space.join(words)

    assert VADER.polarity_scores(text)["compound"] == ENGLISH.score(text)


@pytest.mark.parametrize(
    "text",
    [
        "good good but good good",  # repeated values: VADER scales the first one found
        "but great great awful great",
        "love \U0001f638 \U0001f638 but \U0001f638 hate",
        "good but bad but good",
    ],
)
def test_the_but_rule_scales_as_vaders_own_does_with_repeated_values(text: str) -> None:
    assert VADER.polarity_scores(text)["compound"] == ENGLISH.score(text)


def test_a_texts_cost_counts_the_words_of_each_emojis_name() -> None:
    assert 3 == ENGLISH.cost("love this dress")
    assert ENGLISH.cost("love \U0001f638") > 3  # "grinning cat face with smiling eyes"
