"""The shop's catalogue (AdminService.UpsertProducts): the shop says what its products'
categories are and which are listed; feedback events no longer move them."""

from __future__ import annotations

import grpc
import pytest

from reviewrank.service.compose import build_application
from reviewrank.service.domain.values import CatalogueEntry
from reviewrank.v1 import admin_pb2, admin_pb2_grpc, ranking_pb2
from tests.conftest import Client, both_backends
from tests.helpers import rating

pytestmark = both_backends


def product(
    product_id: str,
    category: str | None = None,
    inactive: bool | None = None,
    more: tuple[str, ...] = (),
    display: dict[str, str] | None = None,
) -> admin_pb2.CatalogueProduct:
    """A catalogue entry; the fields left None are not sent (the product keeps them)."""
    message = admin_pb2.CatalogueProduct(product_id=product_id, more_categories=more)
    if category is not None:
        message.category = category
    if inactive is not None:
        message.inactive = inactive
    if display is not None:
        message.display.SetInParent()
        message.display.fields.update(display)
    return message


def upsert(
    client: Client, *products: admin_pb2.CatalogueProduct
) -> admin_pb2.UpsertProductsResponse:
    request = admin_pb2.UpsertProductsRequest(products=products)
    response: admin_pb2.UpsertProductsResponse = client.admin.UpsertProducts(request, timeout=10)
    return response


def top(client: Client, category: str = "", min_seq: int = 0) -> list[str]:
    request = ranking_pb2.TopRequest(category=category, limit=100, min_seq=min_seq)
    return [r.product_id for r in client.ranking.Top(request, timeout=10).results]


def category_of(client: Client, product_id: str) -> str:
    request = ranking_pb2.GetProductStatsRequest(product_ids=[product_id])
    return str(client.ranking.GetProductStats(request, timeout=10).stats[0].category)


def refusal(client: Client, *products: admin_pb2.CatalogueProduct) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        upsert(client, *products)
    return refused.value


def test_a_rating_cannot_move_a_product_the_catalogue_holds(client: Client) -> None:
    upsert(client, product("p1", "Dresses"))
    client.feedback.SubmitRating(rating("p1", "u1", 5, category="Dresses"))

    client.feedback.SubmitRating(rating("p1", "stranger", 5, category="zz"))

    assert (["p1"], "Dresses") == (top(client, "Dresses"), category_of(client, "p1"))


def test_a_catalogue_product_without_a_category_is_not_given_one_by_events(
    client: Client,
) -> None:
    upsert(client, product("p1"))

    client.feedback.SubmitRating(rating("p1", "u1", 5, category="zz"))

    assert "" == category_of(client, "p1")


def test_an_event_fills_in_the_category_of_a_product_that_has_none(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 4))
    client.feedback.SubmitRating(rating("p1", "u2", 4, category="Dresses"))

    client.feedback.SubmitRating(rating("p1", "u3", 4, category="Knits"))

    assert "Dresses" == category_of(client, "p1")


def test_the_first_category_in_one_batch_fills_in(client: Client) -> None:
    from tests.helpers import batch

    client.feedback.SubmitBatch(
        batch(rating("p1", "u1", 4, category="Dresses"), rating("p1", "u2", 4, category="Knits"))
    )

    assert "Dresses" == category_of(client, "p1")


def test_the_shop_recategorises_a_product_events_had_categorised(client: Client) -> None:
    client.feedback.SubmitRating(rating("p1", "u1", 4, category="zz"))

    response = upsert(client, product("p1", "Dresses"))

    assert (0, 1, "Dresses") == (response.created, response.updated, category_of(client, "p1"))
    assert ["p1"] == top(client, "Dresses", min_seq=response.seq)


def test_an_upsert_counts_created_updated_and_unchanged(client: Client) -> None:
    first = upsert(client, product("a", "Dresses"), product("b", "Knits"))

    again = upsert(client, product("a", "Dresses"), product("b", "Tops"), product("c"))

    assert (2, 0, 0) == (first.created, first.updated, first.unchanged)
    assert (1, 1, 1) == (again.created, again.updated, again.unchanged)
    assert again.seq > first.seq > 0


def test_sending_the_same_catalogue_again_changes_nothing(client: Client) -> None:
    upsert(client, product("a", "Dresses"))

    again = upsert(client, product("a", "Dresses"))

    assert (0, 0, 1, 0) == (again.created, again.updated, again.unchanged, again.seq)


def test_a_delisted_product_is_left_out_of_top(client: Client) -> None:
    for p, stars in (("a", 5), ("b", 4)):
        client.feedback.SubmitRating(rating(p, "u1", stars, category="Dresses"))

    response = upsert(client, product("a", "Dresses", inactive=True), product("b", "Dresses"))

    assert ["b"] == top(client, min_seq=response.seq)
    assert ["b"] == top(client, "Dresses")


def test_product_stats_say_which_products_are_delisted(client: Client) -> None:
    upsert(client, product("a", inactive=True), product("b"))

    request = ranking_pb2.GetProductStatsRequest(product_ids=["a", "b", "unknown"])
    stats = client.ranking.GetProductStats(request, timeout=10).stats

    assert [True, False, False] == [s.inactive for s in stats]


def test_a_delisted_product_is_still_ranked_when_a_shop_sends_it(client: Client) -> None:
    upsert(client, product("a", "Dresses", inactive=True))

    request = ranking_pb2.RankRequest(candidates=[ranking_pb2.Candidate(product_id="a")])
    ranked = [r.product_id for r in client.ranking.Rank(request, timeout=10).results]

    assert ["a"] == ranked


def test_listing_a_product_again_puts_it_back_in_top(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    upsert(client, product("a", inactive=True))

    response = upsert(client, product("a", inactive=False))

    assert (1, ["a"]) == (response.updated, top(client, min_seq=response.seq))


def test_the_catalogue_outlives_a_restart(client: Client, start_server) -> None:  # type: ignore[no-untyped-def]
    client.feedback.SubmitRating(rating("a", "u1", 5))
    upsert(client, product("a", "Dresses", inactive=True), product("b", "Knits"))
    client.server.stop(grace=1.0)

    again = start_server()
    again.feedback.SubmitRating(rating("b", "u1", 5, category="zz"))

    assert (["b"], ["b"]) == (top(again, "Knits"), top(again))  # a: delisted


def test_a_catalogue_change_made_by_another_process_reaches_the_server(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    other = build_application(client.settings)
    try:
        result = other.upsert_products([CatalogueEntry("a", "Coats", active=False)], timeout=10)
    finally:
        other.close()

    assert ([], "Coats") == (top(client, min_seq=result.seq), category_of(client, "a"))


def test_events_categorise_nothing_when_told_to_ignore_them(start_server) -> None:  # type: ignore[no-untyped-def]
    client = start_server(event_categories="ignore")

    client.feedback.SubmitRating(rating("p1", "u1", 4, category="Dresses"))

    assert "" == category_of(client, "p1")


def test_an_upsert_without_the_admin_token_is_unauthenticated(client: Client) -> None:
    plain = admin_pb2_grpc.AdminServiceStub(client.channel)

    with pytest.raises(grpc.RpcError) as refused:
        plain.UpsertProducts(admin_pb2.UpsertProductsRequest(products=[product("a")]), timeout=5)

    assert grpc.StatusCode.UNAUTHENTICATED == refused.value.code()


def test_an_empty_upsert_is_refused_naming_products(client: Client) -> None:
    error = refusal(client)

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "products: must contain at least one product" in (error.details() or "")


def test_bad_entries_are_refused_naming_each_field(client: Client) -> None:
    error = refusal(client, product(""), product("a", "x\n"), product("b"), product("b"))

    details = error.details() or ""
    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "products[0].product_id: is required" in details
    assert "products[1].category" in details
    assert "products[3].product_id: repeats products[2]" in details


def test_a_refused_upsert_changes_nothing(client: Client) -> None:
    refusal(client, product("a", "Dresses"), product(""))

    with pytest.raises(grpc.RpcError) as missing:
        top(client, "Dresses")

    assert grpc.StatusCode.NOT_FOUND == missing.value.code()


def test_more_products_than_the_limit_are_refused(start_server) -> None:  # type: ignore[no-untyped-def]
    client = start_server(max_catalogue_products=3)

    error = refusal(client, *(product(f"p{i}") for i in range(4)))

    assert grpc.StatusCode.INVALID_ARGUMENT == error.code()
    assert "products: " in (error.details() or "")


def test_a_product_listed_in_more_categories_is_in_the_top_of_each(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    client.feedback.SubmitRating(rating("b", "u1", 4))

    response = upsert(client, product("a", "Dresses", more=("Sale", "New")), product("b", "Sale"))

    assert ["a"] == top(client, "Dresses", min_seq=response.seq)
    assert (["a", "b"], ["a"]) == (top(client, "Sale"), top(client, "New"))


def test_product_stats_name_the_other_categories(client: Client) -> None:
    upsert(client, product("a", "Dresses", more=("Sale",)))

    request = ranking_pb2.GetProductStatsRequest(product_ids=["a"])
    [stats] = client.ranking.GetProductStats(request, timeout=10).stats

    assert ("Dresses", ["Sale"]) == (stats.category, list(stats.more_categories))


def test_dropping_an_other_category_takes_the_product_out_of_its_top(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    client.feedback.SubmitRating(rating("b", "u1", 5))
    upsert(client, product("a", "Dresses", more=("Sale",)), product("b", "Sale"))

    response = upsert(client, product("a", "Dresses"))

    assert (1, ["b"]) == (response.updated, top(client, "Sale", min_seq=response.seq))


def test_other_categories_outlive_a_restart(client: Client, start_server) -> None:  # type: ignore[no-untyped-def]
    client.feedback.SubmitRating(rating("a", "u1", 5))
    upsert(client, product("a", "Dresses", more=("Sale",)))
    client.server.stop(grace=1.0)

    again = start_server()

    assert ["a"] == top(again, "Sale")


def test_bad_other_categories_are_refused_naming_each(client: Client) -> None:
    error = refusal(
        client,
        product("a", more=("Sale",)),
        product("b", "Dresses", more=("Dresses", "", "x" * 129)),
        product("c", "Dresses", more=tuple(f"c{i}" for i in range(17))),
    )

    details = error.details() or ""
    assert "products[0].more_categories: needs a category first" in details
    assert "products[1].more_categories[0]: repeats 'Dresses'" in details
    assert "products[1].more_categories[1]: is required" in details
    assert "products[1].more_categories[2]: must be at most 128 characters" in details
    assert "products[2].more_categories: must hold at most 16 (got 17)" in details


def test_delisting_a_product_keeps_its_categories(client: Client) -> None:
    upsert(client, product("a", "Dresses", more=("Sale",)))

    upsert(client, product("a", inactive=True))

    request = ranking_pb2.GetProductStatsRequest(product_ids=["a"])
    [stats] = client.ranking.GetProductStats(request, timeout=10).stats
    assert ("Dresses", ["Sale"], True) == (
        stats.category,
        list(stats.more_categories),
        stats.inactive,
    )


def test_recategorising_a_product_keeps_its_listing(client: Client) -> None:
    upsert(client, product("a", "Dresses", inactive=True))

    response = upsert(client, product("a", "Coats"))

    assert (1, "Coats", []) == (response.updated, category_of(client, "a"), top(client))


def test_an_empty_category_sent_clears_it(client: Client) -> None:
    upsert(client, product("a", "Dresses", more=("Sale",)))

    client.feedback.SubmitRating(rating("a", "u1", 5))

    response = upsert(client, product("a", ""))

    assert ("", ["a"]) == (category_of(client, "a"), top(client, min_seq=response.seq))


def test_an_entry_naming_only_the_product_changes_nothing(client: Client) -> None:
    upsert(client, product("a", "Dresses", inactive=True))

    again = upsert(client, product("a"))

    assert (0, 1) == (again.updated, again.unchanged)


def top_display(client: Client, category: str = "") -> list[dict[str, str]]:
    request = ranking_pb2.TopRequest(category=category, limit=100)
    return [dict(r.display) for r in client.ranking.Top(request, timeout=10).results]


def test_top_returns_the_display_fields_of_the_catalogue(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    client.feedback.SubmitRating(rating("b", "u1", 4))
    shown = {"title": "Red dress", "image_url": "https://shop.example/a.jpg"}

    upsert(client, product("a", "Dresses", display=shown), product("b", "Dresses"))

    assert [shown, {}] == top_display(client, "Dresses")


def test_product_stats_return_the_display_fields(client: Client) -> None:
    upsert(client, product("a", display={"title": "Red dress"}))

    request = ranking_pb2.GetProductStatsRequest(product_ids=["a", "b"])
    stats = client.ranking.GetProductStats(request, timeout=10).stats

    assert [{"title": "Red dress"}, {}] == [dict(s.display) for s in stats]


def test_an_entry_without_display_fields_keeps_them_and_an_empty_one_clears_them(
    client: Client,
) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    upsert(client, product("a", display={"title": "Red dress"}))

    kept = upsert(client, product("a", "Dresses"))
    shown_after_kept = top_display(client)
    cleared = upsert(client, product("a", display={}))

    assert (1, [{"title": "Red dress"}]) == (kept.updated, shown_after_kept)
    assert (1, [{}]) == (cleared.updated, top_display(client))


def test_display_fields_outlive_a_restart(client: Client, start_server) -> None:  # type: ignore[no-untyped-def]
    client.feedback.SubmitRating(rating("a", "u1", 5))
    upsert(client, product("a", display={"title": "Red dress"}))
    client.server.stop(grace=1.0)

    again = start_server()

    assert [{"title": "Red dress"}] == top_display(again)


def test_bad_display_fields_are_refused_naming_each(client: Client) -> None:
    error = refusal(
        client,
        product("a", display={"Title": "x", "url": "a\nb", "note": "n" * 513}),
        product("b", display={f"f{i}": "x" for i in range(9)}),
    )

    details = error.details() or ""
    assert "products[0].display.Title: names must be 1-32 characters a-z, 0-9 and _" in details
    assert "products[0].display.url: must not contain control" in details
    assert "products[0].display.note: must be at most 512 characters (got 513)" in details
    assert "products[1].display: must hold at most 8 fields (got 9)" in details


def test_top_of_a_category_left_without_listed_products_is_not_found(client: Client) -> None:
    client.feedback.SubmitRating(rating("a", "u1", 5))
    upsert(client, product("a", "Dresses", more=("Sale",)))

    response = upsert(client, product("a", "Coats"))

    with pytest.raises(grpc.RpcError) as missing:
        top(client, "Sale", min_seq=response.seq)
    assert grpc.StatusCode.NOT_FOUND == missing.value.code()
    assert "no listed product in category 'Sale'" == missing.value.details()


def test_display_values_may_hold_any_printable_text_of_a_title(client: Client) -> None:
    title = "Parfum 100\u00a0ml \u2014 Fam\u00adily \U0001f468\u200d\U0001f469\u200d\U0001f467"

    upsert(client, product("a", display={"title": title}))

    request = ranking_pb2.GetProductStatsRequest(product_ids=["a"])
    assert title == client.ranking.GetProductStats(request, timeout=10).stats[0].display["title"]


def test_display_fields_of_more_than_a_kilobyte_in_all_are_refused(client: Client) -> None:
    error = refusal(client, product("a", display={"a": "x" * 500, "b": "x" * 500, "c": "x" * 30}))

    assert "products[0].display: must hold at most 1024 bytes in all (got 1033)" in (
        error.details() or ""
    )
