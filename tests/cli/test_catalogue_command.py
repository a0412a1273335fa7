"""`reviewrank catalogue FILE`: the shop's catalogue sent to a real server on port 0."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from reviewrank.service.app.settings import DATA_DIR
from reviewrank.service.cli import main as cli
from reviewrank.v1 import ranking_pb2
from tests.conftest import ADMIN_TOKEN, Client
from tests.helpers import rating

EXAMPLE = DATA_DIR / "example-catalogue.csv"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Runs `reviewrank catalogue ARGS --quiet`; returns the exit status, stdout, stderr."""

    def run_catalogue(*args: str) -> tuple[int, str, str]:
        status = cli.main(["catalogue", *args, "--quiet"])
        out, err = capsys.readouterr()
        return status, out, err

    return run_catalogue


def top(client: Client, category: str = "") -> list[str]:
    request = ranking_pb2.TopRequest(category=category, limit=100)
    return [r.product_id for r in client.ranking.Top(request, timeout=10).results]


def test_the_example_catalogue_is_applied_and_again_is_unchanged(
    client: Client, run: Callable[..., tuple[int, str, str]]
) -> None:
    server = ("--server", client.target, "--token", ADMIN_TOKEN)

    first = run(str(EXAMPLE), *server)
    again = run(str(EXAMPLE), *server)

    assert (0, 0) == (first[0], again[0])
    assert "4 products" in first[1] and "4 created, 0 updated, 0 unchanged" in first[1]
    assert "0 created, 0 updated, 4 unchanged" in again[1]
    assert ["sku-100", "sku-400"] == sorted(top(client, "Shoes"))


def test_a_delisted_row_keeps_its_product_out_of_top(
    client: Client, run: Callable[..., tuple[int, str, str]]
) -> None:
    client.feedback.SubmitRating(rating("sku-300", "u1", 5, category="Hats"))

    run(str(EXAMPLE), "--server", client.target, "--token", ADMIN_TOKEN)

    assert "sku-300" not in top(client)


def test_bad_rows_are_named_by_line_and_column_and_nothing_is_sent(
    client: Client, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.csv"
    data.write_text("product_id,category,active\na,Shoes,yes\n,Shoes,\nb,Bags,maybe\na,Hats,\n")

    status, _, err = run(str(data), "--server", client.target, "--token", ADMIN_TOKEN)

    assert 1 == status
    assert "line 3: product_id: is required" in err
    assert "line 4: active: must be true or false (got 'maybe')" in err
    assert "line 5: product_id: repeats line 2" in err
    assert "3 of 4 rows refused: nothing sent" in err
    assert [] == top(client)


def test_a_dry_run_checks_json_lines_and_sends_nothing(
    client: Client, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.jsonl"
    rows = [{"product_id": "a", "category": "Shoes"}, {"product_id": "b", "active": False}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    status, out, _ = run(str(data), "--dry-run", "--server", client.target)

    assert (0, "checked") == (status, out.split()[0])
    assert "2 products, all valid" in out


def test_a_file_without_a_product_id_column_is_refused_at_its_header(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.csv"
    data.write_text("sku,category\na,Shoes\n")

    status, _, err = run(str(data), "--dry-run")

    assert 2 == status
    assert "line 1: the header has no column product_id" in err


def test_without_the_admin_token_the_server_refuses_in_one_line(
    client: Client, run: Callable[..., tuple[int, str, str]]
) -> None:
    status, _, err = run(str(EXAMPLE), "--server", client.target, "--token", "wrong")

    assert 1 == status
    assert err.startswith("reviewrank: UNAUTHENTICATED")
    assert 1 == len(err.strip().splitlines())


def test_other_categories_come_from_a_csv_cell_joined_by_bars(
    client: Client, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.csv"
    data.write_text("product_id,category,more_categories\na,Dresses,Sale|New\n")
    client.feedback.SubmitRating(rating("a", "u1", 5))

    status, _, _ = run(str(data), "--server", client.target, "--token", ADMIN_TOKEN)

    assert (0, ["a"], ["a"]) == (status, top(client, "Sale"), top(client, "New"))


def test_bad_other_categories_in_a_file_are_named_by_line(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.jsonl"
    rows = [{"product_id": "a", "more_categories": ["Sale"]},
            {"product_id": "b", "category": "X", "more_categories": 7}]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))

    status, _, err = run(str(data), "--dry-run")

    assert 1 == status
    assert "line 1: more_categories: needs a category first" in err
    assert "line 2: more_categories: must be a list of names" in err


def test_json_lines_may_say_inactive_as_the_rpc_does(
    client: Client, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.jsonl"
    data.write_text('{"product_id": "a", "category": "Q", "inactive": true}\n')
    client.feedback.SubmitRating(rating("a", "u1", 5))

    status, _, _ = run(str(data), "--server", client.target, "--token", ADMIN_TOKEN)

    assert (0, []) == (status, top(client))


def test_keys_this_command_does_not_read_are_named(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.jsonl"
    data.write_text('{"product_id": "a", "titel": "Red shoes"}\n')

    status, _, err = run(str(data), "--dry-run")

    assert (0, True) == (status, "ignoring columns titel" in err)


def test_a_header_naming_a_column_twice_is_refused(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.csv"
    data.write_text("product_id,product_id,category\nx,y,A\n")

    status, _, err = run(str(data), "--dry-run")

    assert (2, True) == (status, "line 1: the header names product_id twice" in err)


def test_a_file_without_a_category_column_keeps_the_products_categories(
    client: Client, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    server = ("--server", client.target, "--token", ADMIN_TOKEN)
    run(str(EXAMPLE), *server)
    data = tmp_path / "delist.csv"
    data.write_text("product_id,active\nsku-100,false\n")

    status, out, _ = run(str(data), *server)

    assert (0, True) == (status, "0 created, 1 updated" in out)
    assert ["sku-400"] == top(client, "Shoes")
    request = ranking_pb2.GetProductStatsRequest(product_ids=["sku-100"])
    assert "Shoes" == client.ranking.GetProductStats(request, timeout=10).stats[0].category


def test_a_batch_size_out_of_range_is_refused_before_reading(
    run: Callable[..., tuple[int, str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run(str(EXAMPLE), "--batch", "20000")

    assert 2 == exited.value.code
    assert "--batch: must be between 1 and 10000 (got 20000)" in capsys.readouterr().err


def test_display_fields_come_from_display_columns_of_a_csv(
    client: Client, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.csv"
    data.write_text("product_id,display.title,display.url\na,Red dress,https://s.example/a\n")
    client.feedback.SubmitRating(rating("a", "u1", 5))

    status, _, err = run(str(data), "--server", client.target, "--token", ADMIN_TOKEN)

    response = client.ranking.Top(ranking_pb2.TopRequest(limit=5), timeout=10)
    assert (0, "") == (status, err)
    assert {"title": "Red dress", "url": "https://s.example/a"} == dict(response.results[0].display)


def test_a_display_that_is_no_object_is_named_by_line(
    run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.jsonl"
    data.write_text('{"product_id": "a", "display": "Red dress"}\n')

    status, _, err = run(str(data), "--dry-run")

    assert (1, True) == (status, "line 1: display: must be an object of names and texts" in err)


def test_a_null_display_in_json_lines_clears_the_fields(
    client: Client, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    data = tmp_path / "catalogue.jsonl"
    server = ("--server", client.target, "--token", ADMIN_TOKEN)
    client.feedback.SubmitRating(rating("a", "u1", 5))
    data.write_text('{"product_id": "a", "display": {"title": "Red"}}\n')
    run(str(data), *server)
    data.write_text('{"product_id": "a", "display": null}\n')

    status, out, _ = run(str(data), *server)

    response = client.ranking.Top(ranking_pb2.TopRequest(limit=5), timeout=10)
    assert (0, True, {}) == (status, "1 updated" in out, dict(response.results[0].display))
