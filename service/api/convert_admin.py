"""AdminService messages to domain values (validating every field) and back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2

from reviewrank.ranking.profiles import Profile
from reviewrank.service import __version__
from reviewrank.service.api import convert
from reviewrank.service.api.validation import (
    InputLimits,
    Violations,
    display_problems,
    more_categories_problems,
)
from reviewrank.service.api.wire.rank_decode import from_message
from reviewrank.service.app.preview import Preview, Sample, SampleChange
from reviewrank.service.app.ranker import DEFAULT_TOP_LIMIT
from reviewrank.service.app.settings import Settings
from reviewrank.service.app.status import Status
from reviewrank.service.app.weights import WeightsState
from reviewrank.service.app.weights_history import HistoryEntry
from reviewrank.service.domain.errors import InvalidArgument
from reviewrank.service.domain.values import CatalogueEntry, CatalogueResult, display_text
from reviewrank.v1 import admin_pb2, ranking_pb2

HISTORY_PAGE_SIZE = 50
HISTORY_MAX_PAGE_SIZE = 1000
PREVIEW_TOP_K = 10
PREVIEW_MAX_TOP_K = 100
PREVIEW_MAX_SAMPLES = 100
PREVIEW_MAX_CATEGORIES = 20


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _limits(profile: Profile, settings: Settings) -> admin_pb2.ProfileLimits:
    """The limits in force with this profile: its own, else the server's."""
    limits = profile.limits
    top_max = limits.top_max_limit or settings.max_top_limit
    return admin_pb2.ProfileLimits(
        max_candidates=limits.max_candidates or settings.max_candidates,
        top_default_limit=min(limits.top_default_limit or DEFAULT_TOP_LIMIT, top_max),
        top_max_limit=top_max,
    )


def weights_response(state: WeightsState, settings: Settings) -> admin_pb2.GetWeightsResponse:
    return admin_pb2.GetWeightsResponse(
        version=state.version,
        default_profile=state.profiles.default,
        profiles=[
            admin_pb2.WeightsProfile(
                name=p.name,
                weights=dict(p.weights),
                prior_mean=p.prior.mean or 0.0,
                prior_mean_from_catalogue=p.prior.mean is None,
                prior_strength=p.prior.strength or 0.0,
                prior_strength_auto=p.prior.strength is None,
                prior_per_category=p.prior.per_category,
                confidence=p.confidence,
                half_life_days=p.half_life_days or 0.0,
                limits=_limits(p, settings),
                shares_half_life_days=p.shares.half_life_days,
                shares_prior_auto=p.shares.prior is None,
                shares_prior_shape=p.shares.prior.shape if p.shares.prior else 0.0,
                shares_prior_rate_days=p.shares.prior.rate if p.shares.prior else 0.0,
                channels=dict(p.channels),
                sentiment_prior_auto=p.sentiment.prior is None,
                sentiment_prior_mean=p.sentiment.prior.mean if p.sentiment.prior else 0.0,
                sentiment_prior_strength=(p.sentiment.prior.strength if p.sentiment.prior else 0.0),
                integrity=p.integrity,
            )
            for p in state.profiles.profiles.values()
        ],
        source_toml=state.source_toml,
        source=state.source,
        loaded_at=_timestamp(state.loaded_at),
        content_sha256=state.content_sha256,
        trigger=state.trigger,
        actor=state.actor,
        reason=state.reason,
        rollback_of=state.rollback_of or 0,
        traffic=[
            admin_pb2.TrafficShare(profile=name, share=share)
            for name, share in state.profiles.traffic
        ],
        traffic_salt=state.profiles.traffic_salt,
    )


def reload_response(
    state: WeightsState, previous_version: int, settings: Settings
) -> admin_pb2.ReloadWeightsResponse:
    return admin_pb2.ReloadWeightsResponse(
        weights=weights_response(state, settings), previous_version=previous_version
    )


def history_page(m: admin_pb2.ListWeightHistoryRequest) -> tuple[int, int]:
    """The page size, and the version below which the page starts (0: the newest)."""
    violations = []
    if m.page_size > HISTORY_MAX_PAGE_SIZE:
        violations.append(
            ("page_size", f"must be at most {HISTORY_MAX_PAGE_SIZE} (got {m.page_size})")
        )
    before = 0
    if m.page_token:
        if not m.page_token.isdigit() or len(m.page_token) > 20 or int(m.page_token) < 1:
            violations.append(("page_token", "not a token returned by ListWeightHistory"))
        else:
            before = int(m.page_token)
    if violations:
        raise InvalidArgument(violations)
    return m.page_size or HISTORY_PAGE_SIZE, before


def history_response(
    entries: Sequence[HistoryEntry],
    current_version: int,
    page_size: int,
    before: int,
    include_content: bool,
) -> admin_pb2.ListWeightHistoryResponse:
    """One page of the history; ``entries`` newest first."""
    eligible = [e for e in entries if before == 0 or e.version < before]
    page = eligible[:page_size]
    versions = []
    for entry in page:
        default, names = entry.summary()
        versions.append(
            admin_pb2.WeightsVersion(
                version=entry.version,
                applied_at=_timestamp(entry.applied_at),
                source=entry.source,
                trigger=entry.trigger,
                actor=entry.actor,
                reason=entry.reason,
                content_sha256=entry.content_sha256,
                rollback_of=entry.rollback_of or 0,
                default_profile=default,
                profiles=list(names),
                content=entry.content if include_content else "",
            )
        )
    more = len(eligible) > page_size
    return admin_pb2.ListWeightHistoryResponse(
        versions=versions,
        next_page_token=str(page[-1].version) if more and page else "",
        current_version=current_version,
    )


def preview_request(
    m: admin_pb2.PreviewWeightsRequest, settings: Settings
) -> tuple[list[Sample], list[str], int]:
    """The samples, categories and top-k of a preview, every field checked."""
    violations: list[tuple[str, str]] = []
    if len(m.profile) > 64 or not m.profile.isprintable():
        violations.append(("profile", "must be at most 64 printable characters"))
    if m.top_k > PREVIEW_MAX_TOP_K:
        violations.append(("top_k", f"must be at most {PREVIEW_MAX_TOP_K} (got {m.top_k})"))
    if len(m.samples) > PREVIEW_MAX_SAMPLES:
        violations.append(("samples", f"must contain at most {PREVIEW_MAX_SAMPLES} lists"))
    if len(m.categories) > PREVIEW_MAX_CATEGORIES:
        violations.append(
            ("categories", f"must contain at most {PREVIEW_MAX_CATEGORIES} categories")
        )
    if not m.samples and not m.categories:
        violations.append(("samples", "give at least one sample or one category to compare"))
    samples = []
    for i, sample in enumerate(m.samples[:PREVIEW_MAX_SAMPLES]):
        try:
            ids, relevance = convert.rank_request(
                from_message(ranking_pb2.RankRequest(candidates=sample.candidates)), settings
            )
        except InvalidArgument as exc:
            violations.extend((f"samples[{i}].{field}", d) for field, d in exc.violations)
            continue
        samples.append(Sample(ids, relevance.tolist()))
    for i, category in enumerate(m.categories):
        if len(category) > settings.max_id_length or not category.isprintable():
            violations.append(
                (
                    f"categories[{i}]",
                    f"must be at most {settings.max_id_length} printable characters",
                )
            )
    if violations:
        raise InvalidArgument(violations)
    return samples, list(m.categories), m.top_k or PREVIEW_TOP_K


def _change(change: SampleChange) -> admin_pb2.SampleChange:
    return admin_pb2.SampleChange(
        sample=change.sample,
        current_top=change.current_top,
        candidate_top=change.candidate_top,
        moved_in=change.moved_in,
        moved_out=change.moved_out,
        shifts=[
            admin_pb2.RankShift(
                product_id=s.product_id,
                current_rank=s.current_rank,
                candidate_rank=s.candidate_rank,
                shift=s.shift,
                current_score=s.current_score,
                candidate_score=s.candidate_score,
            )
            for s in change.shifts
        ],
        overlap=change.overlap,
    )


def preview_response(preview: Preview) -> admin_pb2.PreviewWeightsResponse:
    return admin_pb2.PreviewWeightsResponse(
        current_version=preview.current_version,
        current_profile=preview.current_profile,
        candidate_profile=preview.candidate_profile,
        changes=[_change(c) for c in preview.changes],
    )


def _health_name(status: int) -> str:
    try:
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(status))
    except ValueError:
        return str(status)


def status_response(status: Status, health: dict[str, int]) -> admin_pb2.GetStatusResponse:
    return admin_pb2.GetStatusResponse(
        version=__version__,
        started_at=_timestamp(status.started_at),
        uptime_seconds=status.uptime_seconds,
        products=status.products,
        seq=status.seq,
        events_since_start=status.outcomes,
        erasures_since_start=status.erasures,
        transactions_since_start=status.transactions,
        failed_transactions_since_start=status.failed_transactions,
        weights_version=status.weights_version,
        default_profile=status.default_profile,
        priors=[
            admin_pb2.PriorInForce(
                profile=p.profile,
                mean=p.mean,
                strength=p.strength,
                source=p.source,
                likes_alpha=p.likes[0],
                likes_beta=p.likes[1],
                shares_shape=p.shares[0],
                shares_rate_days=p.shares[1],
                sentiment_mean=p.sentiment[0],
                sentiment_strength=p.sentiment[1],
            )
            for p in status.priors
        ],
        queue_depth=status.queue_depth,
        queue_capacity=status.queue_capacity,
        storage_ok=status.storage_ok,
        health=[
            admin_pb2.ServiceHealth(service=name, status=_health_name(value))
            for name, value in sorted(health.items())
        ],
        change_feed_lag=status.change_feed_lag,
    )


def upsert_products_request(
    m: admin_pb2.UpsertProductsRequest, settings: Settings
) -> list[CatalogueEntry]:
    """The catalogue entries, every field checked: ids and categories as the feedback
    service's, each product once."""
    check = Violations(InputLimits.of(settings))
    check.count("products", len(m.products), settings.max_catalogue_products, "product")
    entries: list[CatalogueEntry] = []
    first: dict[str, int] = {}
    for i, product in enumerate(m.products[: settings.max_catalogue_products]):
        check.identifier(product.product_id, f"products[{i}].product_id")
        check.identifier(product.category, f"products[{i}].category", required=False)
        category = product.category if product.HasField("category") else None
        inactive = product.inactive if product.HasField("inactive") else None
        earlier = first.setdefault(product.product_id, i)
        if earlier != i:
            check.add(f"products[{i}].product_id", f"repeats products[{earlier}]")
        display: str | None = None
        if product.HasField("display"):
            fields = {k: v for k, v in product.display.fields.items() if v}  # "": no field
            for name, problem in display_problems(fields):
                where = f"products[{i}].display" + ("" if name is None else f".{name}")
                check.add(where, problem)
            display = display_text(fields)
        more = tuple(product.more_categories)
        field = f"products[{i}].more_categories"
        for j, problem in more_categories_problems(product.category, more, settings.max_id_length):
            check.add(field if j is None else f"{field}[{j}]", problem)
        entries.append(
            CatalogueEntry(
                product.product_id,
                category,
                None if inactive is None else not inactive,
                more,
                display,
            )
        )
    check.raise_if_any()
    return entries


def upsert_products_response(result: CatalogueResult) -> admin_pb2.UpsertProductsResponse:
    return admin_pb2.UpsertProductsResponse(
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        seq=result.seq,
    )
