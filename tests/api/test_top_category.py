"""Top of a category: NOT_FOUND, with a hint, for a category no product has."""

from __future__ import annotations

import grpc
import pytest

from reviewrank.v1 import ranking_pb2
from tests.api.test_ranking_rpc import seed
from tests.conftest import Client


def top_refusal(client: Client, category: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        client.ranking.Top(ranking_pb2.TopRequest(category=category), timeout=5)
    return refused.value


def test_top_of_a_category_no_product_has_is_not_found(client: Client) -> None:
    seed(client, "a", [5], category="Dresses")

    error = top_refusal(client, "Coats")

    assert grpc.StatusCode.NOT_FOUND == error.code()
    assert "no product in category 'Coats'" == error.details()


def test_a_category_differing_only_in_case_is_named_as_a_hint(client: Client) -> None:
    seed(client, "a", [5], category="Dresses")

    error = top_refusal(client, "dresses")

    assert grpc.StatusCode.NOT_FOUND == error.code()
    assert "did you mean 'Dresses'?" in (error.details() or "")


def test_top_of_a_known_category_lists_its_products(client: Client) -> None:
    seed(client, "a", [5], category="Dresses")
    seed(client, "b", [4], category="Coats")

    response = client.ranking.Top(ranking_pb2.TopRequest(category="Dresses"))

    assert ["a"] == [r.product_id for r in response.results]
