"""`reviewrank import --data FILE`: a shop's own history (docs/import.md), into real SQLite
files and to a real server on port 0."""

from __future__ import annotations

import csv
import gzip
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from reviewrank.service.app.settings import DATA_DIR
from reviewrank.service.cli import main as cli
from reviewrank.service.cli.shop_data import derived_event_id, parse_time
from reviewrank.service.storage.sqlite.store import SQLiteStore
from reviewrank.v1 import ranking_pb2
from tests.conftest import TEST_WEIGHTS, Client

EXAMPLE = DATA_DIR / "example-import.csv"
HEADER = "event_id,kind,product_id,user_id,stars,value,occurred_at,category\n"
# The example's events as JSON Lines: the same content, times written another way, no kind.
EXAMPLE_JSONL = [
    {"product_id": "sku-100", "user_id": "alice", "stars": 5, "occurred_at": 1709284500,
     "category": "Shoes"},
    {"product_id": "sku-100", "user_id": "bob", "stars": 4.0,
     "occurred_at": "2024-03-02T17:40:00Z", "category": "Shoes"},
    {"product_id": "sku-200", "user_id": "alice", "stars": "2",
     "occurred_at": "2024-03-04T10:00:00+00:00", "category": "Bags"},
    {"product_id": "sku-100", "user_id": "alice", "value": 1, "occurred_at": 1709284560},
    {"product_id": "sku-200", "user_id": "carol", "value": "dislike",
     "occurred_at": "2024-03-05T11:00:00"},
    {"event_id": "order-7781-review", "product_id": "sku-300", "user_id": "dave", "stars": 3,
     "occurred_at": "2024-03-06T00:00:00Z", "category": "Hats"},
]  # fmt: skip


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Runs `reviewrank import ARGS --quiet` into tmp_path/shop.db (unless --server is
    given); returns the exit status, stdout and stderr."""
    weights = tmp_path / "weights.toml"
    weights.write_text(TEST_WEIGHTS)

    def run_import(*args: str, database: Path | None = None) -> tuple[int, str, str]:
        target = [] if "--server" in args else ["--database", str(database or tmp_path / "shop.db")]
        status = cli.main(["import", *args, *target, "--weights", str(weights), "--quiet"])
        out, err = capsys.readouterr()
        return status, out, err

    return run_import


def table(database: Path, sql: str) -> list[tuple[object, ...]]:
    store = SQLiteStore(database)
    try:
        return [tuple(row) for row in store.conn.execute(sql).fetchall()]
    finally:
        store.close()


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_the_example_csv_imports_and_again_is_all_duplicate(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    status, out, _ = run("--data", str(EXAMPLE))
    assert 0 == status
    assert "6 rows" in out and "6 applied, 0 duplicate, 0 superseded, 0 refused" in out

    status, out, _ = run("--data", str(EXAMPLE))
    assert 0 == status
    assert "0 applied, 6 duplicate" in out
    database = tmp_path / "shop.db"
    assert [("sku-100", 9), ("sku-200", 2), ("sku-300", 3)] == table(
        database, "SELECT product_id, sum(stars) FROM ratings GROUP BY 1 ORDER BY 1"
    )
    assert [("sku-100", "alice", 1), ("sku-200", "carol", -1)] == table(
        database, "SELECT product_id, user_id, value FROM likes ORDER BY 1"
    )
    assert [(1_709_284_500_000_000,)] == table(
        database,
        "SELECT occurred_at_us FROM ratings WHERE product_id = 'sku-100' AND user_id = 'alice'",
    )
    assert [("Shoes",)] == table(
        database, "SELECT category FROM products WHERE product_id = 'sku-100'"
    )
    ids = [row[0] for row in table(database, "SELECT event_id FROM events ORDER BY event_id")]
    assert "order-7781-review" in ids
    assert 5 == sum(1 for event_id in ids if event_id.startswith("import:"))


def test_the_same_events_as_json_lines_are_duplicates_whatever_the_time_notation(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    assert 0 == run("--data", str(EXAMPLE))[0]

    status, out, _ = run("--data", str(write_jsonl(tmp_path / "history.jsonl", EXAMPLE_JSONL)))

    assert 0 == status
    assert "0 applied, 6 duplicate" in out


def test_json_lines_import_to_a_server_and_again_is_all_duplicate(
    run: Callable[..., tuple[int, str, str]], client: Client, tmp_path: Path
) -> None:
    data = str(write_jsonl(tmp_path / "history.jsonl", EXAMPLE_JSONL))

    status, out, _ = run("--data", data, "--server", client.target)
    assert 0 == status
    assert "6 applied, 0 duplicate" in out
    status, out, _ = run("--data", data, "--server", client.target)
    assert 0 == status
    assert "0 applied, 6 duplicate" in out

    stats = client.ranking.GetProductStats(
        ranking_pb2.GetProductStatsRequest(product_ids=["sku-100", "sku-200"]), timeout=10
    ).stats
    assert [(2, 1, 0), (1, 0, 1)] == [(s.rating_count, s.likes, s.dislikes) for s in stats]
    assert "Shoes" == stats[0].category


def test_csv_to_a_server_maps_its_refusals_to_lines_and_sends_the_rest(
    run: Callable[..., tuple[int, str, str]], client: Client, tmp_path: Path
) -> None:
    data = tmp_path / "mine.csv"
    data.write_text(
        "product_id,user_id,stars,occurred_at\n"
        "p1,u1,5,2024-01-01T00:00:00Z\n"
        "p1,u2,9,2024-01-01T00:00:00Z\n"  # the server's rule: 1 to 5
        "p2,u1,4,2999-01-01T00:00:00Z\n"  # the server's rule: not ahead of its clock
        f"p2,{'u' * 129},4,2024-01-01T00:00:00Z\n"  # the server's rule: 1-128 characters
        "p2,u2,3,2024-01-02T00:00:00Z\n"
    )

    status, out, err = run("--data", str(data), "--server", client.target, "--batch-size", "2")

    assert 1 == status
    assert "2 applied, 0 duplicate, 0 superseded, 3 refused" in out
    lines = err.splitlines()
    assert f"{data}:3: stars: must be between 1 and 5 (got 9)" in lines
    assert any(line.startswith(f"{data}:4: occurred_at: is more than 300") for line in lines)
    assert f"{data}:5: user_id: must be at most 128 characters (got 129)" in lines
    assert "Traceback" not in err


def test_two_sources_with_the_same_rows_do_not_collide(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "mine.csv"
    data.write_text(
        "product_id,user_id,stars,occurred_at\np1,u1,5,1700000000\np2,u1,4,1700000000\n"
    )

    assert 0 == run("--data", str(data), "--source", "shop-a")[0]
    status, out, _ = run("--data", str(data), "--source", "shop-b")

    assert 0 == status
    assert "0 duplicate" in out
    ids = [row[0] for row in table(tmp_path / "shop.db", "SELECT event_id FROM events")]
    assert 4 == len(ids) == len(set(ids))
    assert {"shop-a", "shop-b"} == {event_id.split(":")[0] for event_id in ids}


def test_dry_run_writes_nothing_and_reports_bad_rows_by_line_and_field(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "mine.csv"
    data.write_text(
        HEADER + ",rating,p1,u1,5,,2024-01-01,\n"
        ",rating,p1,u2,7,,2024-01-01,\n"
        ',rating,p2,,"4",,yesterday,\n'
        ",like,p3,u3,,2,1700000000,\n"
        ",,p4,u4,,,1700000000,\n"
        ",rating,p5,u5,4.5,,1700000000000,\n"
        ",rating,p6,u6,3,,2024-01-01\n"
    )

    status, out, err = run("--data", str(data), "--dry-run")

    assert 1 == status
    assert "7 rows" in out and "1 valid, 6 refused (dry run: nothing written)" in out
    assert not (tmp_path / "shop.db").exists()
    assert err.splitlines() == [
        f"{data}:3: stars: must be between 1 and 5 (got 7)",
        f"{data}:4: user_id: is required",
        f"{data}:4: occurred_at: must be ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds "
        "(got 'yesterday')",
        f"{data}:5: value: must be 1 (like), -1 (dislike) or 0 (clear) (got '2')",
        f"{data}:6: stars: is required (or value, for a like)",
        f"{data}:7: occurred_at: must be epoch seconds, not milliseconds (got 1700000000000)",
        f"{data}:7: stars: must be a whole number (got '4.5')",
        f"{data}:8: has 7 fields, the header 8",
    ]


def test_refused_rows_go_to_the_rejects_file_and_import_once_fixed(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "mine.csv"
    data.write_text(
        "product_id,user_id,stars,occurred_at\n"
        "p1,u1,5,2024-01-01\n"
        "p1,u2,0,2024-01-01\n"  # refused by the server's rule
        "p2,u2,x,2024-01-01\n"  # refused by the format
        "p2,u3,2,2024-01-01\n"
    )
    rejects = tmp_path / "rejects.csv"

    status, out, _ = run("--data", str(data), "--rejects", str(rejects))

    assert 1 == status
    assert "2 applied, 0 duplicate, 0 superseded, 2 refused" in out
    with rejects.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [
        ["product_id", "user_id", "stars", "occurred_at", "reject_line", "reject_reason"],
        ["p1", "u2", "0", "2024-01-01", "3", "stars: must be between 1 and 5 (got 0)"],
        ["p2", "u2", "x", "2024-01-01", "4", "stars: must be a whole number (got 'x')"],
    ]

    fixed = rejects.read_text().replace(",0,", ",1,").replace(",x,", ",3,")
    rejects.write_text(fixed)
    status, out, err = run("--data", str(rejects))
    assert 0 == status
    assert "2 applied" in out
    assert "ignoring columns reject_line, reject_reason" in err


def test_json_lines_rejects_keep_the_records_and_name_unparsable_lines(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "mine.jsonl"
    data.write_text(
        '{"product_id": "p1", "user_id": "u1", "stars": 5, "occurred_at": 1700000000}\n'
        "\n"
        '{"product_id": "p1", "user_id": "u2", "stars": 5, "occurred_at": 1700000000\n'
        '["p1"]\n'
        '{"product_id": "p1", "user_id": true, "stars": 5, "occurred_at": 1700000000}\n'
    )
    rejects = tmp_path / "rejects.jsonl"

    status, _out, err = run("--data", str(data), "--rejects", str(rejects))

    assert 1 == status
    assert err.splitlines()[0].startswith(f"{data}:3: not JSON")
    assert f"{data}:4: not a JSON object" in err
    assert f"{data}:5: user_id: must be text (got true)" in err
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [3, 4, 5] == [line["_line"] for line in lines]
    assert '["p1"]' == lines[1]["_text"]
    assert "u2" not in json.dumps(lines[2])  # the record as read, with its reason
    assert {"product_id": "p1", "user_id": True, "stars": 5, "occurred_at": 1700000000} == {
        k: v for k, v in lines[2].items() if not k.startswith("_")
    }


def test_compressed_files_import(run: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    gzipped = tmp_path / "history.jsonl.gz"
    with gzip.open(gzipped, "wt") as file:
        file.write("".join(json.dumps(record) + "\n" for record in EXAMPLE_JSONL))
    zipped = tmp_path / "history.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(EXAMPLE, "export/reviews.csv")

    assert 0 == run("--data", str(gzipped))[0]
    status, out, _ = run("--data", str(zipped))

    assert 0 == status
    assert "0 applied, 6 duplicate" in out


def _zip_without_csv(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "no rows here")


def _demo_layout_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mine.csv", "Clothing ID,Rating,Recommended IND,Class Name\n7,5,1,Hats\n")


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("missing.csv", None, "cannot read"),
        ("mine.csv", lambda p: p.write_bytes(bytes(range(256)) * 4), "binary data at line 1"),
        (
            "mine.csv",
            lambda p: p.write_bytes(b"product_id\n\xff\xfe\n"),
            "not UTF-8 text at line 2",
        ),
        ("mine.csv", lambda p: p.write_bytes(b""), "is empty"),
        ("mine.zip", _zip_without_csv, "one .csv or .jsonl file, not 0 (it holds readme.txt)"),
        ("mine.zip", _demo_layout_zip, "the demo data set's layout"),
        ("mine.csv", lambda p: p.write_text("product,user\n1,2\n"), "the header has no column"),
        ("mine.csv.gz", lambda p: p.write_bytes(gzip.compress(b"a,b\n" * 1000)[:40]), "cannot"),
        ("mine.zip", lambda p: p.write_bytes(b"PK\x03\x04 not really"), "damaged zip file"),
        ("mine.zip", lambda p: p.write_text("product_id,user_id\n"), "not a zip file"),
        ("mine.csv.gz", lambda p: p.write_text("product_id,user_id\n"), "not a gzip file"),
    ],
)
def test_an_unreadable_file_is_one_line_and_exit_2(
    run: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    name: str,
    make: Callable[[Path], object] | None,
    says: str,
) -> None:
    path = tmp_path / name
    if make is not None:
        make(path)

    status, out, err = run("--data", str(path))

    assert 2 == status
    assert "" == out
    assert 1 == len(err.splitlines()), err
    assert err.startswith("reviewrank: ") and says in err
    assert not (tmp_path / "shop.db").exists()


def test_the_options_of_a_file_need_a_file(run: Callable[..., tuple[int, str, str]]) -> None:
    status, _out, err = run("--dry-run")

    assert 2 == status
    assert "go with --data FILE" in err


def test_the_example_round_trips_through_export_and_import(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    assert 0 == run("--data", str(EXAMPLE), database=first)[0]
    export = tmp_path / "export.jsonl.gz"
    assert 0 == cli.main(["export", "--database", str(first), "--output", str(export)])
    assert 0 == cli.main(["import", "--from-export", str(export), "--database", str(second)])
    capsys.readouterr()

    for sql in (
        "SELECT product_id, user_id, stars, occurred_at_us, event_id FROM ratings ORDER BY 1, 2",
        "SELECT product_id, user_id, value, occurred_at_us, event_id FROM likes ORDER BY 1, 2",
        "SELECT event_id FROM events ORDER BY 1",
        "SELECT product_id, category FROM products ORDER BY 1",
    ):
        assert table(first, sql) == table(second, sql)
    status, out, _ = run("--data", str(EXAMPLE), database=second)
    assert 0 == status
    assert "0 applied, 6 duplicate" in out


def test_times_and_derived_ids_do_not_depend_on_the_notation() -> None:
    micros = 1_709_284_500 * 1_000_000
    for text in ("2024-03-01T09:15:00Z", "2024-03-01T10:15:00+01:00", "2024-03-01 09:15:00",
                 "1709284500", "1709284500.0"):  # fmt: skip
        assert micros == parse_time(text), text
    assert parse_time("2024-03-01") == 1_709_251_200 * 1_000_000
    one = derived_event_id("shop", "rating", "p", "u", 5, micros)
    assert one == derived_event_id("shop", "rating", "p", "u", 5, micros)
    assert one.startswith("shop:") and len(one) == len("shop:") + 32
    assert one != derived_event_id("other", "rating", "p", "u", 5, micros)
    assert one != derived_event_id("shop", "rating", "p", "u", 4, micros)


@pytest.mark.parametrize("size", ["0", "-3", "1001", "many"])
def test_a_batch_size_outside_1_to_1000_is_refused_by_name(
    run: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str], size: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        run("--data", str(EXAMPLE), "--batch-size", size)

    assert 2 == exited.value.code
    assert "--batch-size" in capsys.readouterr().err


def test_the_example_imports_to_a_tls_server_trusting_its_certificate(
    run: Callable[..., tuple[int, str, str]],
    start_server: Callable[..., Client],
    tmp_path: Path,
) -> None:
    from tests.api.test_auth import _self_signed

    cert_file, key_file = _self_signed(tmp_path)
    client = start_server(tls_cert_file=cert_file, tls_key_file=key_file)

    status, out, err = run(
        "--data", str(EXAMPLE), "--server", f"localhost:{client.port}", "--ca-file",
        str(cert_file), "--timeout", "20",
    )  # fmt: skip

    assert (0, "") == (status, err)
    assert "6 applied" in out


def test_shares_import_with_their_channels_and_again_are_all_duplicate(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    shares = tmp_path / "shares.csv"
    shares.write_text(
        "kind,product_id,user_id,occurred_at,channel\n"
        "share,sku-100,alice,2024-03-01T09:15:00Z,instagram\n"
        "share,sku-100,bob,2024-03-02T09:15:00Z,\n"
        "share,sku-100,alice,2024-03-03T09:15:00Z,web\n"
    )

    first = run("--data", str(shares))
    again = run("--data", str(shares))

    assert (0, 0) == (first[0], again[0])
    assert "3 applied, 0 duplicate" in first[1]
    assert "0 applied, 3 duplicate" in again[1]
    assert [(2,)] == table(tmp_path / "shop.db", "SELECT shares FROM products")
    assert [("alice", "web"), ("bob", "")] == table(
        tmp_path / "shop.db", "SELECT user_id, channel FROM shares ORDER BY user_id"
    )


def test_comments_import_scored_from_their_text_or_given_and_again_are_all_duplicate(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    comments = tmp_path / "comments.csv"
    comments.write_text(
        "kind,product_id,user_id,occurred_at,text,score,channel\n"
        'comment,sku-100,alice,2024-03-01T09:15:00Z,"Love it, fits perfectly!",,app\n'
        "comment,sku-100,bob,2024-03-02T09:15:00Z,,-0.25,\n"
    )

    first = run("--data", str(comments))
    again = run("--data", str(comments))

    assert (0, 0) == (first[0], again[0])
    assert "2 applied, 0 duplicate" in first[1]
    assert "0 applied, 2 duplicate" in again[1]
    rows = table(tmp_path / "shop.db", "SELECT user_id, score > 5000, analyzer FROM comments")
    assert [("alice", 1), ("bob", 0)] == sorted((user, high) for user, high, _ in rows)
    assert {"sender"} == {analyzer for user, _, analyzer in rows if user == "bob"}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("comment,sku-1,alice,2024-03-01,,", "text: is required for a comment (or score)"),
        ("comment,sku-1,alice,2024-03-01,nice,0.5", "score: a comment has its text or its score"),
        ("comment,sku-1,alice,2024-03-01,,1.5", "score: must be a number from -1 to 1"),
    ],
)
def test_a_comment_row_without_exactly_one_of_text_and_score_is_named(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path, row: str, problem: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"kind,product_id,user_id,occurred_at,text,score\n{row}\n")

    status, out, err = run("--data", str(bad), "--dry-run")

    assert 0 != status
    assert problem in out + err


def test_a_comment_the_server_refuses_is_named_by_its_line_and_the_others_imported(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    comments = tmp_path / "comments.csv"
    comments.write_text(
        "kind,product_id,user_id,occurred_at,text,language\n"
        "comment,sku-1,alice,2024-03-01,Lovely,en\n"
        "comment,sku-1,bob,2024-03-01,Charmant,fr\n"
        "comment,sku-2,carol,2024-03-01,Awful,\n"
    )

    status, out, err = run("--data", str(comments))

    assert 0 != status  # a row was refused
    assert "comments.csv:3: language: no analyzer for 'fr'" in err
    assert "2 applied" in out
    assert [(2,)] == table(tmp_path / "shop.db", "SELECT count(*) FROM comments")


def test_a_row_of_an_unknown_kind_is_named_and_nothing_of_it_imported(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,product_id,user_id,occurred_at\nretweet,sku-1,alice,2024-03-01\n")

    status, out, err = run("--data", str(bad), "--dry-run")

    assert (1, True) == (status, "0 valid, 1 refused" in out)
    assert (
        "bad.csv:2: kind: must be rating, like, share, comment or poll_vote (got 'retweet')" in err
    )


def test_poll_votes_import_from_csv_and_json_lines_and_again_are_all_duplicate(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    votes = tmp_path / "polls.csv"
    votes.write_text(
        "kind,poll_id,product_id,shown,user_id,occurred_at,channel\n"
        "poll_vote,story-7,sku-2,sku-1|sku-2,alice,2024-03-01T09:15:00Z,instagram\n"
        "poll_vote,story-7,sku-1,sku-1|sku-2,bob,2024-03-01T09:16:00Z,instagram\n"
    )
    lines = tmp_path / "polls.jsonl"
    vote = {"kind": "poll_vote", "poll_id": "story-8", "product_id": "sku-3", "user_id": "carol"}
    lines.write_text(json.dumps({**vote, "shown": ["sku-1", "sku-3"], "occurred_at": 1.7e9}))

    first = run("--data", str(votes))
    again = run("--data", str(votes))
    other = run("--data", str(lines))

    assert (0, 0, 0) == (first[0], again[0], other[0])
    assert "2 applied, 0 duplicate" in first[1]
    assert "0 applied, 2 duplicate" in again[1]
    assert [("sku-1", 3, 1), ("sku-2", 2, 1), ("sku-3", 1, 1)] == table(
        tmp_path / "shop.db",
        "SELECT product_id, polls_shown, polls_won FROM products ORDER BY product_id",
    )


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("poll_vote,,sku-1,sku-1|sku-2,alice", "poll_id: is required for a poll vote"),
        ("poll_vote,q,sku-1,,alice", "shown: is required for a poll vote"),
    ],
)
def test_a_poll_vote_row_without_its_poll_or_products_is_named(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path, row: str, problem: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"kind,poll_id,product_id,shown,user_id,occurred_at\n{row},2024-03-01\n")

    status, out, err = run("--data", str(bad), "--dry-run")

    assert 0 != status
    assert problem in out + err


def test_a_poll_vote_the_server_refuses_is_named_by_its_line_and_column(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    votes = tmp_path / "polls.csv"
    votes.write_text(
        "kind,poll_id,product_id,shown,user_id,occurred_at\n"
        "poll_vote,q,sku-9,sku-1|sku-2,alice,2024-03-01\n"
        "poll_vote,q,sku-1,sku-1|sku-2,bob,2024-03-01\n"
    )

    status, out, err = run("--data", str(votes))

    assert 0 != status
    assert "polls.csv:2: product_id: must be one of the products shown" in err
    assert "1 applied" in out


def test_a_poll_votes_products_may_be_numbers_in_json_lines(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    lines = tmp_path / "polls.jsonl"
    vote = {"kind": "poll_vote", "poll_id": 7, "product_id": 101, "user_id": "carol"}
    lines.write_text(json.dumps({**vote, "shown": [101, 102], "occurred_at": 1.7e9}))

    status, _, err = run("--data", str(lines))

    assert (0, "") == (status, err)
    assert [("101", 1, 1), ("102", 1, 0)] == table(
        tmp_path / "shop.db",
        "SELECT product_id, polls_shown, polls_won FROM products ORDER BY product_id",
    )


def test_a_row_correcting_a_poll_votes_products_is_another_event(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    votes = tmp_path / "polls.csv"
    header = "kind,poll_id,product_id,shown,user_id,occurred_at\n"
    votes.write_text(header + "poll_vote,q,a,a|b,alice,2024-03-01\n")
    corrected = tmp_path / "corrected.csv"
    corrected.write_text(header + "poll_vote,q,a,a|c,alice,2024-03-01\n")

    run("--data", str(votes))
    status, out, _ = run("--data", str(corrected))

    assert 0 == status
    assert "0 duplicate" in out  # recorded (applied or superseded: same time, ids decide)


def test_verified_purchases_import_from_csv_as_true_false_1_or_0(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    rows = tmp_path / "verified.csv"
    rows.write_text(
        "kind,product_id,user_id,stars,value,occurred_at,verified_purchase\n"
        "rating,sku-100,alice,5,,2024-03-01T09:15:00Z,true\n"
        "rating,sku-100,bob,4,,2024-03-02T09:15:00Z,0\n"
        "rating,sku-100,carol,4,,2024-03-02T09:15:00Z,\n"
        "like,sku-100,alice,,1,2024-03-01T09:16:00Z,1\n"
        "like,sku-100,bob,,-1,2024-03-01T09:16:00Z,FALSE\n"
    )

    status, out, _ = run("--data", str(rows))

    assert (0, True) == (status, "5 applied" in out)
    assert [("alice", 1), ("bob", 0), ("carol", 0)] == table(
        tmp_path / "shop.db", "SELECT user_id, verified FROM ratings ORDER BY user_id"
    )
    assert [("alice", 1), ("bob", 0)] == table(
        tmp_path / "shop.db", "SELECT user_id, verified FROM likes ORDER BY user_id"
    )


def test_verified_purchases_import_from_json_lines_as_booleans_or_text(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    rows = write_jsonl(
        tmp_path / "verified.jsonl",
        [
            {"product_id": "sku-1", "user_id": "alice", "stars": 5, "occurred_at": 1709284500,
             "verified_purchase": True},
            {"product_id": "sku-1", "user_id": "bob", "stars": 2, "occurred_at": 1709284500,
             "verified_purchase": False},
            {"product_id": "sku-1", "user_id": "carol", "value": 1, "occurred_at": 1709284500,
             "verified_purchase": "true"},
            {"product_id": "sku-1", "user_id": "dave", "value": 1, "occurred_at": 1709284500,
             "verified_purchase": 0},
        ],
    )  # fmt: skip

    status, _, _ = run("--data", str(rows))

    assert 0 == status
    assert [("alice", 1), ("bob", 0), ("carol", 1), ("dave", 0)] == table(
        tmp_path / "shop.db",
        "SELECT user_id, verified FROM ratings UNION ALL SELECT user_id, verified FROM likes"
        " ORDER BY user_id",
    )


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("yes", 'verified_purchase: must be true or false, 1 or 0 (got "yes")'),
        ("2", 'verified_purchase: must be true or false, 1 or 0 (got "2")'),
    ],
)
def test_a_bad_verified_purchase_is_refused_by_line_and_column(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path, cell: str, problem: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "product_id,user_id,stars,occurred_at,verified_purchase\n"
        "sku-1,alice,5,2024-03-01,true\n"
        f"sku-1,bob,5,2024-03-01,{cell}\n"
    )

    status, out, err = run("--data", str(bad), "--dry-run")

    assert (1, True) == (status, "1 valid, 1 refused" in out)
    assert f"bad.csv:3: {problem}" in err


def test_a_bad_verified_purchase_in_json_lines_is_refused_by_line_and_column(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    rows = write_jsonl(
        tmp_path / "bad.jsonl",
        [{"product_id": "sku-1", "user_id": "alice", "stars": 5, "occurred_at": 1709284500,
          "verified_purchase": 1.5}],
    )  # fmt: skip

    status, _, err = run("--data", str(rows), "--dry-run")

    assert 1 == status
    assert "bad.jsonl:1: verified_purchase: must be true or false, 1 or 0 (got 1.5)" in err


def test_a_share_marked_a_verified_purchase_is_refused_by_line_and_column(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "kind,product_id,user_id,occurred_at,verified_purchase\nshare,sku-1,alice,2024-03-01,true\n"
    )

    status, _, err = run("--data", str(bad), "--dry-run")

    assert 1 == status
    assert "bad.csv:2: verified_purchase: only a rating or a like is a verified purchase" in err
