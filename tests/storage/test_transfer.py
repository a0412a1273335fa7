"""Export and import (service/storage/transfer.py) and the migrate/export/import commands, on real
SQLite files and the real PostgreSQL of the test session."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reviewrank.service.app.store import DatabaseURL, Store
from reviewrank.service.cli.main import main
from reviewrank.service.domain.errors import StoreError
from reviewrank.service.domain.values import (
    CommentEvent,
    Erasure,
    LikeEvent,
    LikeValue,
    PollVoteEvent,
    RatingEvent,
    ShareEvent,
)
from reviewrank.service.storage.factory import open_store
from reviewrank.service.storage.transfer import TransferError, export_to, import_from
from tests.helpers import WEIGHTS_ROW, exported

BOTH = "m001_initial, m002_erasure, m003_weights_history, m004_rowid_tables"
POSTGRES_MIGRATIONS = (
    f"{BOTH}, m006_shop_catalogue, m007_shares, m008_listing_time, m009_comments,"
    " m010_poll_votes, m011_events_seq_brin, m012_burst_decisions, m013_verified_purchase"
    # (m011: PostgreSQL only)
)
SQLITE_MIGRATIONS = (
    f"{BOTH}, m005_votes_by_product_on_demand, m006_shop_catalogue, m007_shares,"
    " m008_listing_time, m009_comments, m010_poll_votes, m012_burst_decisions,"
    " m013_verified_purchase"  # m005: SQLite
)


def sqlite_store(path: Path) -> Store:
    return open_store(DatabaseURL.for_path(path))


def postgres_store(url: str) -> Store:
    return open_store(DatabaseURL.parse(url))


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Store]:
    """A SQLite database holding every kind of row: applied, superseded and duplicate
    events, a cleared like, an erased user, a weights version."""
    store = sqlite_store(tmp_path / "source.db")
    store.apply(
        [
            [
                RatingEvent("e1", "p1", "u1", 4, 100, category="books"),
                RatingEvent("e2", "p1", "u2", 5, 110),
                LikeEvent("e3", "p2", "u1", LikeValue.LIKE, 120),
                LikeEvent("e4", "p1", "u3", LikeValue.DISLIKE, 130, verified=True),
                RatingEvent("e5", "p2", "ü-ser", 3, 140, category="künste", verified=True),
                ShareEvent("e9", "p1", "u1", 150, "web"),
                ShareEvent("e10", "p2", "u3", 160),
                ShareEvent("e11", "p2", "u2", 170, "app"),  # erased below
                CommentEvent("e12", "p1", "u1", -2_500, 180, "store", "en", "vader-3.3.2"),
                CommentEvent("e13", "p2", "u3", 10_000, 190, "", "", "sender"),
                PollVoteEvent("e14", "q1", "u1", ("p1", "p2", "p3"), "p3", 195, "app"),
                PollVoteEvent("e15", "q1", "u3", ("p1", "p2"), "p1", 196),
            ]
        ],
        now_us=1_000,
    )
    store.apply(
        [
            [
                RatingEvent("e6", "p1", "u1", 2, 50),  # older than e1: SUPERSEDED
                RatingEvent("e1", "p1", "u1", 4, 100),  # DUPLICATE
                LikeEvent("e7", "p2", "u1", LikeValue.CLEAR, 200),
                LikeEvent("e8", "p1", "u2", LikeValue.LIKE, 210),
            ],
            Erasure("u2"),
        ],
        now_us=2_000,
    )
    store.save_weights_entry(WEIGHTS_ROW)
    yield store
    store.close()


def dump(store: Store) -> dict[str, Any]:
    return exported(store, chunk=3)


def test_sqlite_to_postgresql_to_sqlite_keeps_every_row_and_the_sequence(
    source: Store, tmp_path: Path, pg_url: str
) -> None:
    original = dump(source)
    export_to(source, tmp_path / "first.jsonl.gz")
    postgres = postgres_store(pg_url)
    try:
        import_from(postgres, tmp_path / "first.jsonl.gz", chunk=2)
        in_postgres = dump(postgres)
        export_to(postgres, tmp_path / "second.jsonl")
    finally:
        postgres.close()
    back = sqlite_store(tmp_path / "back.db")
    try:
        import_from(back, tmp_path / "second.jsonl", chunk=2)
        round_trip = dump(back)
    finally:
        back.close()

    assert {"APPLIED", "SUPERSEDED"} == {row[7] for row in original["events"]}
    assert 3 == len(original["erased_events"])  # u2's e2, e8 and e11, kept as hashes
    assert [("p1", "u1", 1, 150, "e9", "web"), ("p2", "u3", 1, 160, "e10", "")] == sorted(
        tuple(row) for row in original["shares"]
    )
    assert [
        ("p1", "u1", -2_500, 180, "e12", "store", "en", "vader-3.3.2"),
        ("p2", "u3", 10_000, 190, "e13", "", "", "sender"),
    ] == sorted(tuple(row) for row in original["comments"])
    assert [
        ("q1", "u1", "p3", 195, "e14", "app", '["p1","p2","p3"]'),
        ("q1", "u3", "p1", 196, "e15", "", '["p1","p2"]'),
    ] == sorted(tuple(row) for row in original["poll_votes"])
    assert 0 in {row[2] for row in original["likes"]}  # the cleared like
    assert original == in_postgres
    assert original == round_trip


def exported_rating_and_like(
    tmp_path: Path,
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """A SQLite database of a rating and a like, exported: its dump, and the file's header,
    rows and footer (to be made a file of an older version)."""
    store = sqlite_store(tmp_path / "exported.db")
    store.apply(
        [[RatingEvent("e1", "p1", "u1", 4, 100), LikeEvent("e2", "p1", "u2", LikeValue.LIKE, 110)]]
    )
    export_to(store, tmp_path / "exported.jsonl")
    expected = dump(store)
    store.close()
    lines = [json.loads(line) for line in (tmp_path / "exported.jsonl").read_text().splitlines()]
    return expected, lines[0], lines[1:-1], lines[-1]


def test_verified_purchases_keep_their_flag_from_sqlite_to_postgresql_and_back(
    source: Store, tmp_path: Path, pg_url: str
) -> None:
    export_to(source, tmp_path / "first.jsonl")
    postgres = postgres_store(pg_url)
    try:
        import_from(postgres, tmp_path / "first.jsonl")
        export_to(postgres, tmp_path / "second.jsonl")
    finally:
        postgres.close()
    back = sqlite_store(tmp_path / "back.db")
    try:
        import_from(back, tmp_path / "second.jsonl")
        round_trip = dump(back)
    finally:
        back.close()

    flags = {
        table: sorted((row[0], row[1], row[-1]) for row in round_trip[table])
        for table in ("ratings", "likes")
    }
    assert {
        "ratings": [("p1", "u1", 0), ("p2", "ü-ser", 1)],
        "likes": [("p1", "u3", 1), ("p2", "u1", 0)],
    } == flags


def test_a_version_6_export_imports_with_every_vote_not_verified(
    tmp_path: Path, pg_url: str
) -> None:
    expected, header, rows, footer = exported_rating_and_like(tmp_path)
    header["version"] = 6
    for table in ("ratings", "likes"):
        header["tables"][table].remove("verified")
    old = [{"t": r["t"], "r": r["r"][:-1] if r["t"] in ("ratings", "likes") else r["r"]}
           for r in rows]  # fmt: skip
    (tmp_path / "v6.jsonl").write_text("\n".join(json.dumps(x) for x in [header, *old, footer]))

    target = postgres_store(pg_url)
    try:
        import_from(target, tmp_path / "v6.jsonl")
        assert expected == dump(target)
        assert [0, 0] == [row[-1] for table in ("ratings", "likes") for row in dump(target)[table]]
    finally:
        target.close()


def test_import_into_a_database_with_events_is_refused_and_changes_nothing(
    source: Store, tmp_path: Path, pg_url: str
) -> None:
    export_to(source, tmp_path / "export.jsonl")
    target = postgres_store(pg_url)
    try:
        target.apply([[RatingEvent("x1", "px", "ux", 5, 10)]])
        before = dump(target)
        with pytest.raises(TransferError, match="not empty"):
            import_from(target, tmp_path / "export.jsonl")
        assert before == dump(target)
    finally:
        target.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_truncated_export_is_refused_and_the_target_stays_empty(
    source: Store, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    export_to(source, tmp_path / "export.jsonl.gz")
    data = (tmp_path / "export.jsonl.gz").read_bytes()
    (tmp_path / "cut.jsonl.gz").write_bytes(data[: len(data) * 3 // 4])
    if backend == "sqlite":
        target = sqlite_store(tmp_path / "target.db")
    else:
        target = postgres_store(request.getfixturevalue("pg_url"))
    try:
        empty = dump(target)
        with pytest.raises(TransferError, match="truncated"):
            import_from(target, tmp_path / "cut.jsonl.gz", chunk=1)
        assert empty == dump(target)
    finally:
        target.close()


def test_an_export_without_its_footer_is_refused_and_the_target_stays_empty(
    source: Store, tmp_path: Path
) -> None:
    export_to(source, tmp_path / "export.jsonl")
    lines = (tmp_path / "export.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "cut.jsonl").write_bytes(b"".join(lines[:-1]))
    target = sqlite_store(tmp_path / "target.db")
    try:
        with pytest.raises(TransferError, match="without its footer"):
            import_from(target, tmp_path / "cut.jsonl", chunk=1)
        assert 0 == target.count_events()
        assert 0 == target.last_seq()
    finally:
        target.close()


def test_an_export_with_a_row_missing_is_refused_by_the_footer_counts(
    source: Store, tmp_path: Path
) -> None:
    export_to(source, tmp_path / "export.jsonl")
    lines = (tmp_path / "export.jsonl").read_bytes().splitlines(keepends=True)
    lines.remove(next(line for line in lines if line.startswith(b'{"t": "events"')))
    (tmp_path / "edited.jsonl").write_bytes(b"".join(lines))
    target = sqlite_store(tmp_path / "target.db")
    try:
        with pytest.raises(TransferError, match="events 11 \\(footer 12\\)"):
            import_from(target, tmp_path / "edited.jsonl")
        assert 0 == target.count_events()
    finally:
        target.close()


def import_of_edited(
    source: Store, tmp_path: Path, edit: Callable[[str], str]
) -> Callable[[], object]:
    """Exports ``source``, edits the file's text, and returns the import of the edited
    file into a new SQLite database (which the caller expects to be refused): a call that
    asserts the target stays empty once it raised."""
    export_to(source, tmp_path / "export.jsonl")
    text = (tmp_path / "export.jsonl").read_text()
    edited = edit(text)
    assert edited != text
    (tmp_path / "edited.jsonl").write_text(edited)

    def run() -> object:
        target = sqlite_store(tmp_path / "target.db")
        try:
            return import_from(target, tmp_path / "edited.jsonl")
        finally:
            assert 0 == target.count_events()
            target.close()

    return run


def test_an_export_whose_aggregates_differ_from_the_votes_is_refused(
    source: Store, tmp_path: Path
) -> None:
    def drop_a_rating(text: str) -> str:
        # A rating dropped from the votes and from the footer: counts match, the recount not.
        rating = next(line for line in text.splitlines() if line.startswith('{"t": "ratings"'))
        return text.replace(rating + "\n", "").replace('"ratings": 2', '"ratings": 1')

    with pytest.raises(StoreError, match="differ from a recount"):
        import_of_edited(source, tmp_path, drop_a_rating)()


def test_a_poll_vote_whose_choice_was_not_shown_is_refused_naming_it(
    source: Store, tmp_path: Path
) -> None:
    run = import_of_edited(
        source, tmp_path, lambda text: text.replace('"e15","","[\\"p1\\",', '"e15","","[\\"p9\\",')
    )

    with pytest.raises(TransferError, match=r"poll_votes\.shown"):
        run()


def test_poll_counts_that_differ_from_the_poll_votes_are_refused(
    source: Store, tmp_path: Path
) -> None:
    # p3 shown by a poll vote that names p2 in its place: a valid vote, the counts wrong.
    run = import_of_edited(
        source,
        tmp_path,
        lambda text: text.replace(
            '"p3",195,"e14","app","[\\"p1\\",\\"p2\\",\\"p3\\"]"',
            '"p2",195,"e14","app","[\\"p1\\",\\"p2\\"]"',
        ),
    )

    with pytest.raises(StoreError, match="differ from a recount"):
        run()


def test_an_import_keeps_the_weights_versions_the_target_holds(
    source: Store, tmp_path: Path
) -> None:
    export_to(source, tmp_path / "export.jsonl")
    target = sqlite_store(tmp_path / "target.db")
    own = (1, 5, "inline", "inline", "rpc", "ops", "target's own", None, "cd" * 32, "x = 1\n")
    try:
        target.save_weights_entry(own)
        import_from(target, tmp_path / "export.jsonl")
        assert [own] == target.load_weights_history()
        assert 12 == target.count_events()
    finally:
        target.close()


def test_migrate_creates_the_schema_on_an_empty_postgresql_database(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["migrate", "--database-url", pg_url])
    out = capsys.readouterr().out
    assert f"applied 12 migrations: {POSTGRES_MIGRATIONS}" in out
    assert f"schema up to date: {POSTGRES_MIGRATIONS}" in out


def test_migrate_run_again_applies_nothing(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["migrate", "--database-url", pg_url])
    capsys.readouterr()
    assert 0 == main(["migrate", "--database-url", pg_url])
    out = capsys.readouterr().out
    assert "nothing to apply" in out
    assert f"schema up to date: {POSTGRES_MIGRATIONS}" in out


def test_migrate_creates_the_schema_of_a_new_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["migrate", "--database", str(tmp_path / "new.db")])
    assert f"applied 12 migrations: {SQLITE_MIGRATIONS}" in capsys.readouterr().out


def test_migrate_never_prints_the_password_of_the_url(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with_password = pg_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    assert 0 == main(["migrate", "--database-url", with_password])
    captured = capsys.readouterr()
    assert "s3cret-pw" not in captured.out + captured.err
    assert "postgres:***@" in captured.out


def test_export_and_import_commands_move_a_sqlite_database_to_postgresql(
    source: Store, tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    database = str(tmp_path / "source.db")
    export = str(tmp_path / "export.jsonl.gz")
    assert 0 == main(["export", "--database", database, "--output", export])
    exported = capsys.readouterr().err
    assert 0 == main(["import", "--from-export", export, "--database-url", pg_url])
    imported = capsys.readouterr().out
    target = postgres_store(pg_url)
    try:
        assert dump(source) == dump(target)
    finally:
        target.close()
    assert "at sequence 16" in exported
    assert re.search(r"events +12\n", exported)
    assert re.search(r"events +12\n", imported)


def test_import_command_reports_a_refused_import_and_exits_non_zero(
    source: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export_to(source, tmp_path / "export.jsonl")
    target = str(tmp_path / "source.db")  # not empty
    assert 1 == main(["import", "--from-export", str(tmp_path / "export.jsonl"), "--database",
                      target])  # fmt: skip
    assert "not empty" in capsys.readouterr().err


def test_export_to_stdout_is_the_export_file_format(
    source: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["export", "--database", str(tmp_path / "source.db"), "--output", "-"])
    lines = capsys.readouterr().out.splitlines()
    assert '"format": "reviewrank-export"' in lines[0]
    assert lines[-1].startswith('{"end": "reviewrank-export"')


def test_gzip_export_files_are_gzip(source: Store, tmp_path: Path) -> None:
    export_to(source, tmp_path / "export.jsonl.gz")
    with gzip.open(tmp_path / "export.jsonl.gz", "rt") as file:
        assert '"format": "reviewrank-export"' in file.readline()


def test_a_version_1_export_imports_with_no_shares_no_channels_and_listing_times_from_events(
    tmp_path: Path,
) -> None:
    expected, header, rows, footer = exported_rating_and_like(tmp_path)
    header["version"] = 1
    for added in ("shares", "comments", "poll_votes", "burst_decisions"):
        del header["tables"][added]
        del footer["counts"][added]
    for column in (
        "shares", "listed_at_us", "comments", "sentiment_sum", "sentiment_squares",
        "polls_shown", "polls_won",
    ):  # fmt: skip
        header["tables"]["products"].remove(column)
    header["tables"]["events"].remove("channel")
    header["tables"]["ratings"].remove("verified")
    header["tables"]["likes"].remove("verified")
    cut = {"products": -7, "events": -1, "ratings": -1, "likes": -1}  # the columns appended since
    old = [{"t": r["t"], "r": r["r"][: cut[r["t"]]] if r["t"] in cut else r["r"]}
           for r in rows if r["t"] not in ("shares", "comments", "poll_votes")]  # fmt: skip
    (tmp_path / "v1.jsonl").write_text("\n".join(json.dumps(x) for x in [header, *old, footer]))

    target = sqlite_store(tmp_path / "new.db")
    try:
        import_from(target, tmp_path / "v1.jsonl")
        assert expected == dump(target)
    finally:
        target.close()
