"""Comment analyzers (service/app/analyzers.py): English scored by VADER in [−1, 1],
with its version named; a language without an analyzer is refused, naming the field."""

from __future__ import annotations

import pytest

from reviewrank.service.app.analyzers import analyzer_for, languages
from reviewrank.service.domain.errors import InvalidArgument


def test_english_praise_scores_above_zero_and_a_complaint_below() -> None:
    analyzer = analyzer_for("en")

    praise = analyzer.score("Love this dress, the fit is perfect and the fabric is great!")
    complaint = analyzer.score("Awful quality, it tore after one wash. Very disappointed.")

    assert complaint < 0.0 < praise


def test_scores_stay_within_minus_1_and_1_for_extreme_text() -> None:
    analyzer = analyzer_for("en")

    scores = [analyzer.score(text) for text in ("good " * 500, "terrible " * 500, "", "!!!")]

    assert all(-1.0 <= s <= 1.0 for s in scores)


def test_the_analyzer_names_its_version() -> None:
    assert analyzer_for("en").version.startswith("vader-3.")


def test_language_tags_are_matched_without_regard_to_case() -> None:
    assert analyzer_for("EN") is analyzer_for("en")


def test_a_language_without_an_analyzer_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument) as refused:
        analyzer_for("xx")

    assert "language" == refused.value.violations[0][0]
    assert ("en",) == languages()
