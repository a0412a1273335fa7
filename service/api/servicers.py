"""Thin gRPC servicers: protobuf in, application call, protobuf out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from reviewrank.service.api import convert, convert_admin, convert_integrity
from reviewrank.service.api.request_budget import MethodBudget
from reviewrank.service.api.validation import InputLimits
from reviewrank.service.api.wire.batch_codec import EncodedBatch
from reviewrank.service.api.wire.rank_decode import RankRequestDecoder
from reviewrank.service.app.application import Application
from reviewrank.service.app.waits import let_others_run
from reviewrank.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    feedback_pb2,
    feedback_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
)

_NO_DEADLINE = 365 * 24 * 3600.0


def _timeout(context: grpc.ServicerContext) -> float | None:
    """Seconds left before the caller's deadline; None when the caller set none."""
    remaining: float | None = context.time_remaining()
    return None if remaining is None or remaining > _NO_DEADLINE else max(remaining, 0.0)


class FeedbackServicer(feedback_pb2_grpc.FeedbackServiceServicer):
    def __init__(self, app: Application) -> None:
        self._app = app
        self._limits = limits = InputLimits.of(app.settings)
        self._batch_budget = MethodBudget.of(EncodedBatch.DESCRIPTOR, limits)

    def SubmitRating(
        self, request: feedback_pb2.SubmitRatingRequest, context: grpc.ServicerContext
    ) -> feedback_pb2.SubmitResponse:
        event = convert.rating_event(request, self._limits)
        [result] = self._app.submit([event], _timeout(context))
        return convert.submit_response(result)

    def SubmitLike(
        self, request: feedback_pb2.SubmitLikeRequest, context: grpc.ServicerContext
    ) -> feedback_pb2.SubmitResponse:
        event = convert.like_event(request, self._limits)
        [result] = self._app.submit([event], _timeout(context))
        return convert.submit_response(result)

    def SubmitShare(
        self, request: feedback_pb2.SubmitShareRequest, context: grpc.ServicerContext
    ) -> feedback_pb2.SubmitResponse:
        event = convert.share_event(request, self._limits)
        [result] = self._app.submit([event], _timeout(context))
        return convert.submit_response(result)

    def SubmitComment(
        self, request: feedback_pb2.SubmitCommentRequest, context: grpc.ServicerContext
    ) -> feedback_pb2.SubmitResponse:
        event = convert.comment_event(request, self._limits)
        [result] = self._app.submit([event], _timeout(context))
        return convert.submit_response(result)

    def SubmitPollVote(
        self, request: feedback_pb2.SubmitPollVoteRequest, context: grpc.ServicerContext
    ) -> feedback_pb2.SubmitResponse:
        event = convert.poll_vote_event(request, self._limits)
        [result] = self._app.submit([event], _timeout(context))
        return convert.submit_response(result)

    def SubmitBatch(
        self, request: EncodedBatch, context: grpc.ServicerContext
    ) -> feedback_pb2.SubmitBatchResponse:
        # Registered with EncodedBatch.from_bytes as its deserializer: read from its
        # encoding in bulk, the message parsed only when that declines (batch_codec.py).
        try:
            events = convert.batch_events(request, self._limits)
        except DecodeError:
            raise self._batch_budget.undecodable(request.data) from None
        return convert.batch_response(self._app.submit(events, _timeout(context)))

    def ForgetUser(
        self, request: feedback_pb2.ForgetUserRequest, context: grpc.ServicerContext
    ) -> feedback_pb2.ForgetUserResponse:
        user_id = convert.forget_user_request(request, self._limits)
        return convert.forget_user_response(self._app.forget_user(user_id, _timeout(context)))


# Raises the error of a call whose metadata does not carry the admin token (service/api/auth.py).
AdminCheck = Callable[[Sequence[tuple[str, Any]] | None], None]


class RankingServicer(ranking_pb2_grpc.RankingServiceServicer):
    """``check_admin``: what an explained ranking must pass (explanations show the weights
    and priors in force: operators' information, as the admin service's)."""

    def __init__(self, app: Application, check_admin: AdminCheck) -> None:
        self._app = app
        self._check_admin = check_admin
        self._limits = limits = InputLimits.of(app.settings)
        self._decode_rank = RankRequestDecoder(limits.max_candidates).decode
        self._rank_budget = MethodBudget.of(RankRequestDecoder.DESCRIPTOR, limits)

    def _explaining(self, explain: bool, context: grpc.ServicerContext) -> bool:
        if explain:
            self._check_admin(context.invocation_metadata())
        return explain

    def Rank(
        self, request: bytes, context: grpc.ServicerContext
    ) -> ranking_pb2.RankResponse | bytes:
        # Registered undecoded: decoding here, on this worker thread rather than on the
        # server's polling thread, serves about 10 % more calls (see server.py).
        try:
            decoded = self._decode_rank(request)
        except DecodeError:
            raise self._rank_budget.undecodable(request) from None
        self._explaining(decoded.message.explain, context)  # (before any other complaint)
        query = convert.rank_query(decoded, self._limits)
        let_others_run()  # (each step of a Rank of 5,000 candidates takes milliseconds)
        ranking = self._app.rank(query)
        let_others_run()
        return convert.rank_response(ranking, decoded)

    def Top(
        self, request: ranking_pb2.TopRequest, context: grpc.ServicerContext
    ) -> ranking_pb2.RankResponse | bytes:
        explain = self._explaining(request.explain, context)
        limit = convert.top_request(request, self._limits)
        ranking = self._app.top(
            request.category,
            limit,
            request.page_token,
            request.profile,
            explain,
            request.user_id,
            request.min_seq,
        )
        return convert.top_response(ranking)

    def GetProductStats(
        self, request: ranking_pb2.GetProductStatsRequest, context: grpc.ServicerContext
    ) -> ranking_pb2.GetProductStatsResponse:
        ids = convert.stats_request(request, self._limits)
        stats, version = self._app.product_stats(ids, request.profile, request.min_seq)
        return convert.stats_response(stats, version)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Weights at runtime (Application's weights methods) and the server's status;
    service/api/auth.py guards every method."""

    def __init__(
        self, app: Application, health: Callable[[], dict[str, int]] | None = None
    ) -> None:
        self._app = app
        self._health = health

    def GetWeights(
        self, request: admin_pb2.GetWeightsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetWeightsResponse:
        return convert_admin.weights_response(self._app.weights_state(), self._app.settings)

    def ReloadWeights(
        self, request: admin_pb2.ReloadWeightsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ReloadWeightsResponse:
        state, previous = self._app.reload_weights(
            request.toml,
            request.expected_version,
            request.actor,
            request.reason,
            timeout=_timeout(context),
        )
        return convert_admin.reload_response(state, previous, self._app.settings)

    def RollbackWeights(
        self, request: admin_pb2.RollbackWeightsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ReloadWeightsResponse:
        state, previous = self._app.rollback_weights(
            request.version,
            request.expected_version,
            request.actor,
            request.reason,
            timeout=_timeout(context),
        )
        return convert_admin.reload_response(state, previous, self._app.settings)

    def ListWeightHistory(
        self, request: admin_pb2.ListWeightHistoryRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListWeightHistoryResponse:
        page_size, before = convert_admin.history_page(request)
        return convert_admin.history_response(
            self._app.weights_history(),
            self._app.weights_state().version,
            page_size,
            before,
            request.include_content,
        )

    def PreviewWeights(
        self, request: admin_pb2.PreviewWeightsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.PreviewWeightsResponse:
        samples, categories, top_k = convert_admin.preview_request(request, self._app.settings)
        preview = self._app.preview_weights(
            request.toml, request.profile, samples, categories, top_k, _timeout(context)
        )
        return convert_admin.preview_response(preview)

    def GetStatus(
        self, request: admin_pb2.GetStatusRequest, context: grpc.ServicerContext
    ) -> admin_pb2.GetStatusResponse:
        health = {} if self._health is None else self._health()
        return convert_admin.status_response(self._app.status(), health)

    def UpsertProducts(
        self, request: admin_pb2.UpsertProductsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.UpsertProductsResponse:
        entries = convert_admin.upsert_products_request(request, self._app.settings)
        result = self._app.upsert_products(entries, _timeout(context))
        return convert_admin.upsert_products_response(result)

    def ListBursts(
        self, request: admin_pb2.ListBurstsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListBurstsResponse:
        limit = convert_integrity.bursts_limit(request)
        enabled = self._app.integrity is not None
        return convert_integrity.bursts_response(self._app.weighed(), limit, enabled)

    def DecideBurst(
        self, request: admin_pb2.DecideBurstRequest, context: grpc.ServicerContext
    ) -> admin_pb2.DecideBurstResponse:
        product_id, start, end, confirmed = convert_integrity.decide_request(
            request, InputLimits.of(self._app.settings)
        )
        decision, applied = self._app.decide_burst(
            product_id, start, end, confirmed, request.actor, request.reason, _timeout(context)
        )
        return convert_integrity.decide_response(decision, applied)

    def ListBurstDecisions(
        self, request: admin_pb2.ListBurstDecisionsRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListBurstDecisionsResponse:
        decisions = self._app.burst_decisions(_timeout(context))
        return convert_integrity.decisions_response(decisions)
