"""Settings are read once, from the environment and flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reviewrank.service.app.settings import Settings, from_env


def test_defaults_serve_on_localhost_50051() -> None:
    assert "127.0.0.1:50051" == from_env({}).address


def test_environment_variables_override_defaults() -> None:
    settings = from_env(
        {
            "REVIEWRANK_ADDRESS": "0.0.0.0:6000",
            "REVIEWRANK_MAX_CANDIDATES": "10",
            "REVIEWRANK_DATABASE": "/tmp/x.db",
        }
    )

    assert ("0.0.0.0:6000", 10, Path("/tmp/x.db")) == (
        settings.address,
        settings.max_candidates,
        settings.database,
    )


def test_flags_override_the_environment() -> None:
    settings = from_env({"REVIEWRANK_ADDRESS": "0.0.0.0:6000"}, address="127.0.0.1:7000")

    assert "127.0.0.1:7000" == settings.address


def test_unset_flags_leave_the_environment_in_force() -> None:
    assert "0.0.0.0:6000" == from_env({"REVIEWRANK_ADDRESS": "0.0.0.0:6000"}, address=None).address


def test_a_malformed_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="REVIEWRANK_MAX_CANDIDATES"):
        from_env({"REVIEWRANK_MAX_CANDIDATES": "many"})


def test_an_impossible_value_is_refused() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        from_env({"REVIEWRANK_SYNCHRONOUS": "OFF"})


@pytest.mark.parametrize("value", ["-1", "20"])
def test_a_writer_nice_outside_0_to_19_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="writer_nice"):
        from_env({"REVIEWRANK_WRITER_NICE": value})


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().address = "x"  # type: ignore[misc]


def test_observability_settings_come_from_the_environment() -> None:
    settings = from_env(
        {
            "REVIEWRANK_METRICS_ADDRESS": "0.0.0.0:9464",
            "REVIEWRANK_LOG_SAMPLE_RATE": "0.01",
            "REVIEWRANK_TRACING": "otlp",
        }
    )

    assert ("0.0.0.0:9464", 0.01, "otlp") == (
        settings.metrics_address,
        settings.log_sample_rate,
        settings.tracing,
    )


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("REVIEWRANK_LOG_SAMPLE_RATE", "1.5", "log_sample_rate"),
        ("REVIEWRANK_LOG_SAMPLE_RATE", "nan", "log_sample_rate"),
        ("REVIEWRANK_TRACING", "jaeger", "tracing"),
        ("REVIEWRANK_METRICS_ADDRESS", "9464", "metrics_address"),
        ("REVIEWRANK_METRICS_ADDRESS", "localhost:http", "metrics_address"),
    ],
)
def test_impossible_observability_settings_are_refused(
    variable: str, value: str, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        from_env({variable: value})


def test_without_a_database_url_the_sqlite_file_is_the_database() -> None:
    settings = from_env({"REVIEWRANK_DATABASE": "/srv/rr.db"})

    assert ("sqlite", Path("/srv/rr.db")) == (settings.storage.kind, settings.storage.path)


def test_a_database_url_is_chosen_over_the_sqlite_file() -> None:
    settings = from_env(
        {"REVIEWRANK_DATABASE": "/srv/rr.db", "REVIEWRANK_DATABASE_URL": "postgresql://db:5432/rr"}
    )

    assert ("postgresql", None) == (settings.storage.kind, settings.storage.path)


@pytest.mark.parametrize(
    ("url", "absolute"), [("sqlite:///data/x.db", False), ("sqlite:////var/x.db", True)]
)
def test_sqlite_urls_take_relative_and_absolute_paths(url: str, absolute: bool) -> None:
    assert absolute == from_env({"REVIEWRANK_DATABASE_URL": url}).storage.path.is_absolute()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url", ["mysql://db/rr", "postgresql://db:5432", "sqlite://relative.db", "db.sqlite"]
)
def test_a_database_url_that_cannot_work_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(url))):
        from_env({"REVIEWRANK_DATABASE_URL": url})


def test_the_database_password_is_never_shown() -> None:
    settings = from_env({"REVIEWRANK_DATABASE_URL": "postgresql://rr:hunter2@db:5432/rr"})

    assert "hunter2" not in repr(settings)
    assert "postgresql://rr:***@db:5432/rr" == settings.storage.display
