import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from reviewrank.v1 import ranking_pb2 as _ranking_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BurstDecisionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BURST_DECISION_UNSPECIFIED: _ClassVar[BurstDecisionKind]
    BURST_DECISION_CONFIRM: _ClassVar[BurstDecisionKind]
    BURST_DECISION_DISMISS: _ClassVar[BurstDecisionKind]
BURST_DECISION_UNSPECIFIED: BurstDecisionKind
BURST_DECISION_CONFIRM: BurstDecisionKind
BURST_DECISION_DISMISS: BurstDecisionKind

class ListBurstsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class Burst(_message.Message):
    __slots__ = ("product_id", "start", "end", "votes", "expected", "damping", "dismissed")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    DAMPING_FIELD_NUMBER: _ClassVar[int]
    DISMISSED_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    votes: int
    expected: float
    damping: float
    dismissed: bool
    def __init__(self, product_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., votes: _Optional[int] = ..., expected: _Optional[float] = ..., damping: _Optional[float] = ..., dismissed: _Optional[bool] = ...) -> None: ...

class LowWeightVoter(_message.Message):
    __slots__ = ("user_id", "votes", "least_weight")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    LEAST_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    votes: int
    least_weight: float
    def __init__(self, user_id: _Optional[str] = ..., votes: _Optional[int] = ..., least_weight: _Optional[float] = ...) -> None: ...

class ListBurstsResponse(_message.Message):
    __slots__ = ("bursts", "low_weight_voters", "total_bursts", "total_low_weight_voters", "weighed_at", "votes_weighed", "damped_votes", "enabled")
    class DampedVotesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BURSTS_FIELD_NUMBER: _ClassVar[int]
    LOW_WEIGHT_VOTERS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BURSTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_LOW_WEIGHT_VOTERS_FIELD_NUMBER: _ClassVar[int]
    WEIGHED_AT_FIELD_NUMBER: _ClassVar[int]
    VOTES_WEIGHED_FIELD_NUMBER: _ClassVar[int]
    DAMPED_VOTES_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    bursts: _containers.RepeatedCompositeFieldContainer[Burst]
    low_weight_voters: _containers.RepeatedCompositeFieldContainer[LowWeightVoter]
    total_bursts: int
    total_low_weight_voters: int
    weighed_at: _timestamp_pb2.Timestamp
    votes_weighed: int
    damped_votes: _containers.ScalarMap[str, int]
    enabled: bool
    def __init__(self, bursts: _Optional[_Iterable[_Union[Burst, _Mapping]]] = ..., low_weight_voters: _Optional[_Iterable[_Union[LowWeightVoter, _Mapping]]] = ..., total_bursts: _Optional[int] = ..., total_low_weight_voters: _Optional[int] = ..., weighed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., votes_weighed: _Optional[int] = ..., damped_votes: _Optional[_Mapping[str, int]] = ..., enabled: _Optional[bool] = ...) -> None: ...

class DecideBurstRequest(_message.Message):
    __slots__ = ("product_id", "start", "end", "decision", "actor", "reason")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    decision: BurstDecisionKind
    actor: str
    reason: str
    def __init__(self, product_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decision: _Optional[_Union[BurstDecisionKind, str]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class BurstDecision(_message.Message):
    __slots__ = ("product_id", "start", "end", "decision", "actor", "reason", "decided_at")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    decision: BurstDecisionKind
    actor: str
    reason: str
    decided_at: _timestamp_pb2.Timestamp
    def __init__(self, product_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decision: _Optional[_Union[BurstDecisionKind, str]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DecideBurstResponse(_message.Message):
    __slots__ = ("decision", "applied")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    decision: BurstDecision
    applied: bool
    def __init__(self, decision: _Optional[_Union[BurstDecision, _Mapping]] = ..., applied: _Optional[bool] = ...) -> None: ...

class ListBurstDecisionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBurstDecisionsResponse(_message.Message):
    __slots__ = ("decisions",)
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    decisions: _containers.RepeatedCompositeFieldContainer[BurstDecision]
    def __init__(self, decisions: _Optional[_Iterable[_Union[BurstDecision, _Mapping]]] = ...) -> None: ...

class CatalogueProduct(_message.Message):
    __slots__ = ("product_id", "category", "inactive", "more_categories", "display")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_FIELD_NUMBER: _ClassVar[int]
    MORE_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    category: str
    inactive: bool
    more_categories: _containers.RepeatedScalarFieldContainer[str]
    display: DisplayFields
    def __init__(self, product_id: _Optional[str] = ..., category: _Optional[str] = ..., inactive: _Optional[bool] = ..., more_categories: _Optional[_Iterable[str]] = ..., display: _Optional[_Union[DisplayFields, _Mapping]] = ...) -> None: ...

class DisplayFields(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.ScalarMap[str, str]
    def __init__(self, fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UpsertProductsRequest(_message.Message):
    __slots__ = ("products",)
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    products: _containers.RepeatedCompositeFieldContainer[CatalogueProduct]
    def __init__(self, products: _Optional[_Iterable[_Union[CatalogueProduct, _Mapping]]] = ...) -> None: ...

class UpsertProductsResponse(_message.Message):
    __slots__ = ("created", "updated", "unchanged", "seq")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    created: int
    updated: int
    unchanged: int
    seq: int
    def __init__(self, created: _Optional[int] = ..., updated: _Optional[int] = ..., unchanged: _Optional[int] = ..., seq: _Optional[int] = ...) -> None: ...

class GetWeightsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetWeightsResponse(_message.Message):
    __slots__ = ("version", "default_profile", "profiles", "source_toml", "source", "loaded_at", "content_sha256", "trigger", "actor", "reason", "rollback_of", "traffic", "traffic_salt")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOML_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_OF_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_SALT_FIELD_NUMBER: _ClassVar[int]
    version: int
    default_profile: str
    profiles: _containers.RepeatedCompositeFieldContainer[WeightsProfile]
    source_toml: str
    source: str
    loaded_at: _timestamp_pb2.Timestamp
    content_sha256: str
    trigger: str
    actor: str
    reason: str
    rollback_of: int
    traffic: _containers.RepeatedCompositeFieldContainer[TrafficShare]
    traffic_salt: str
    def __init__(self, version: _Optional[int] = ..., default_profile: _Optional[str] = ..., profiles: _Optional[_Iterable[_Union[WeightsProfile, _Mapping]]] = ..., source_toml: _Optional[str] = ..., source: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content_sha256: _Optional[str] = ..., trigger: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., rollback_of: _Optional[int] = ..., traffic: _Optional[_Iterable[_Union[TrafficShare, _Mapping]]] = ..., traffic_salt: _Optional[str] = ...) -> None: ...

class TrafficShare(_message.Message):
    __slots__ = ("profile", "share")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    profile: str
    share: float
    def __init__(self, profile: _Optional[str] = ..., share: _Optional[float] = ...) -> None: ...

class WeightsProfile(_message.Message):
    __slots__ = ("name", "weights", "prior_mean", "prior_mean_from_catalogue", "prior_strength", "confidence", "prior_strength_auto", "prior_per_category", "half_life_days", "limits", "shares_half_life_days", "shares_prior_auto", "shares_prior_shape", "shares_prior_rate_days", "channels", "sentiment_prior_auto", "sentiment_prior_mean", "sentiment_prior_strength", "integrity")
    class WeightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ChannelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    PRIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_MEAN_FROM_CATALOGUE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_STRENGTH_AUTO_FIELD_NUMBER: _ClassVar[int]
    PRIOR_PER_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    HALF_LIFE_DAYS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SHARES_HALF_LIFE_DAYS_FIELD_NUMBER: _ClassVar[int]
    SHARES_PRIOR_AUTO_FIELD_NUMBER: _ClassVar[int]
    SHARES_PRIOR_SHAPE_FIELD_NUMBER: _ClassVar[int]
    SHARES_PRIOR_RATE_DAYS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_PRIOR_AUTO_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_PRIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_PRIOR_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    INTEGRITY_FIELD_NUMBER: _ClassVar[int]
    name: str
    weights: _containers.ScalarMap[str, float]
    prior_mean: float
    prior_mean_from_catalogue: bool
    prior_strength: float
    confidence: float
    prior_strength_auto: bool
    prior_per_category: bool
    half_life_days: float
    limits: ProfileLimits
    shares_half_life_days: float
    shares_prior_auto: bool
    shares_prior_shape: float
    shares_prior_rate_days: float
    channels: _containers.ScalarMap[str, float]
    sentiment_prior_auto: bool
    sentiment_prior_mean: float
    sentiment_prior_strength: float
    integrity: bool
    def __init__(self, name: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., prior_mean: _Optional[float] = ..., prior_mean_from_catalogue: _Optional[bool] = ..., prior_strength: _Optional[float] = ..., confidence: _Optional[float] = ..., prior_strength_auto: _Optional[bool] = ..., prior_per_category: _Optional[bool] = ..., half_life_days: _Optional[float] = ..., limits: _Optional[_Union[ProfileLimits, _Mapping]] = ..., shares_half_life_days: _Optional[float] = ..., shares_prior_auto: _Optional[bool] = ..., shares_prior_shape: _Optional[float] = ..., shares_prior_rate_days: _Optional[float] = ..., channels: _Optional[_Mapping[str, float]] = ..., sentiment_prior_auto: _Optional[bool] = ..., sentiment_prior_mean: _Optional[float] = ..., sentiment_prior_strength: _Optional[float] = ..., integrity: _Optional[bool] = ...) -> None: ...

class ProfileLimits(_message.Message):
    __slots__ = ("max_candidates", "top_default_limit", "top_max_limit")
    MAX_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    TOP_DEFAULT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TOP_MAX_LIMIT_FIELD_NUMBER: _ClassVar[int]
    max_candidates: int
    top_default_limit: int
    top_max_limit: int
    def __init__(self, max_candidates: _Optional[int] = ..., top_default_limit: _Optional[int] = ..., top_max_limit: _Optional[int] = ...) -> None: ...

class ReloadWeightsRequest(_message.Message):
    __slots__ = ("toml", "expected_version", "actor", "reason")
    TOML_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    toml: str
    expected_version: int
    actor: str
    reason: str
    def __init__(self, toml: _Optional[str] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReloadWeightsResponse(_message.Message):
    __slots__ = ("weights", "previous_version")
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    weights: GetWeightsResponse
    previous_version: int
    def __init__(self, weights: _Optional[_Union[GetWeightsResponse, _Mapping]] = ..., previous_version: _Optional[int] = ...) -> None: ...

class ListWeightHistoryRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "include_content")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    include_content: bool
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., include_content: _Optional[bool] = ...) -> None: ...

class ListWeightHistoryResponse(_message.Message):
    __slots__ = ("versions", "next_page_token", "current_version")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[WeightsVersion]
    next_page_token: str
    current_version: int
    def __init__(self, versions: _Optional[_Iterable[_Union[WeightsVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., current_version: _Optional[int] = ...) -> None: ...

class WeightsVersion(_message.Message):
    __slots__ = ("version", "applied_at", "source", "trigger", "actor", "reason", "content_sha256", "rollback_of", "default_profile", "profiles", "content")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_OF_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    version: int
    applied_at: _timestamp_pb2.Timestamp
    source: str
    trigger: str
    actor: str
    reason: str
    content_sha256: str
    rollback_of: int
    default_profile: str
    profiles: _containers.RepeatedScalarFieldContainer[str]
    content: str
    def __init__(self, version: _Optional[int] = ..., applied_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source: _Optional[str] = ..., trigger: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., content_sha256: _Optional[str] = ..., rollback_of: _Optional[int] = ..., default_profile: _Optional[str] = ..., profiles: _Optional[_Iterable[str]] = ..., content: _Optional[str] = ...) -> None: ...

class RollbackWeightsRequest(_message.Message):
    __slots__ = ("version", "expected_version", "actor", "reason")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    version: int
    expected_version: int
    actor: str
    reason: str
    def __init__(self, version: _Optional[int] = ..., expected_version: _Optional[int] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PreviewWeightsRequest(_message.Message):
    __slots__ = ("toml", "profile", "samples", "categories", "top_k")
    TOML_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    toml: str
    profile: str
    samples: _containers.RepeatedCompositeFieldContainer[CandidateList]
    categories: _containers.RepeatedScalarFieldContainer[str]
    top_k: int
    def __init__(self, toml: _Optional[str] = ..., profile: _Optional[str] = ..., samples: _Optional[_Iterable[_Union[CandidateList, _Mapping]]] = ..., categories: _Optional[_Iterable[str]] = ..., top_k: _Optional[int] = ...) -> None: ...

class CandidateList(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[_ranking_pb2.Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[_ranking_pb2.Candidate, _Mapping]]] = ...) -> None: ...

class PreviewWeightsResponse(_message.Message):
    __slots__ = ("current_version", "current_profile", "candidate_profile", "changes")
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_PROFILE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    current_version: int
    current_profile: str
    candidate_profile: str
    changes: _containers.RepeatedCompositeFieldContainer[SampleChange]
    def __init__(self, current_version: _Optional[int] = ..., current_profile: _Optional[str] = ..., candidate_profile: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[SampleChange, _Mapping]]] = ...) -> None: ...

class SampleChange(_message.Message):
    __slots__ = ("sample", "current_top", "candidate_top", "moved_in", "moved_out", "shifts", "overlap")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_TOP_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_TOP_FIELD_NUMBER: _ClassVar[int]
    MOVED_IN_FIELD_NUMBER: _ClassVar[int]
    MOVED_OUT_FIELD_NUMBER: _ClassVar[int]
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    sample: str
    current_top: _containers.RepeatedScalarFieldContainer[str]
    candidate_top: _containers.RepeatedScalarFieldContainer[str]
    moved_in: _containers.RepeatedScalarFieldContainer[str]
    moved_out: _containers.RepeatedScalarFieldContainer[str]
    shifts: _containers.RepeatedCompositeFieldContainer[RankShift]
    overlap: float
    def __init__(self, sample: _Optional[str] = ..., current_top: _Optional[_Iterable[str]] = ..., candidate_top: _Optional[_Iterable[str]] = ..., moved_in: _Optional[_Iterable[str]] = ..., moved_out: _Optional[_Iterable[str]] = ..., shifts: _Optional[_Iterable[_Union[RankShift, _Mapping]]] = ..., overlap: _Optional[float] = ...) -> None: ...

class RankShift(_message.Message):
    __slots__ = ("product_id", "current_rank", "candidate_rank", "shift", "current_score", "candidate_score")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENT_RANK_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_RANK_FIELD_NUMBER: _ClassVar[int]
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SCORE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SCORE_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    current_rank: int
    candidate_rank: int
    shift: int
    current_score: float
    candidate_score: float
    def __init__(self, product_id: _Optional[str] = ..., current_rank: _Optional[int] = ..., candidate_rank: _Optional[int] = ..., shift: _Optional[int] = ..., current_score: _Optional[float] = ..., candidate_score: _Optional[float] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("version", "started_at", "uptime_seconds", "products", "seq", "events_since_start", "erasures_since_start", "transactions_since_start", "failed_transactions_since_start", "weights_version", "default_profile", "priors", "queue_depth", "queue_capacity", "storage_ok", "health", "change_feed_lag")
    class EventsSinceStartEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PRODUCTS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENTS_SINCE_START_FIELD_NUMBER: _ClassVar[int]
    ERASURES_SINCE_START_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_SINCE_START_FIELD_NUMBER: _ClassVar[int]
    FAILED_TRANSACTIONS_SINCE_START_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PRIORS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    QUEUE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    STORAGE_OK_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FEED_LAG_FIELD_NUMBER: _ClassVar[int]
    version: str
    started_at: _timestamp_pb2.Timestamp
    uptime_seconds: float
    products: int
    seq: int
    events_since_start: _containers.ScalarMap[str, int]
    erasures_since_start: int
    transactions_since_start: int
    failed_transactions_since_start: int
    weights_version: int
    default_profile: str
    priors: _containers.RepeatedCompositeFieldContainer[PriorInForce]
    queue_depth: int
    queue_capacity: int
    storage_ok: bool
    health: _containers.RepeatedCompositeFieldContainer[ServiceHealth]
    change_feed_lag: int
    def __init__(self, version: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime_seconds: _Optional[float] = ..., products: _Optional[int] = ..., seq: _Optional[int] = ..., events_since_start: _Optional[_Mapping[str, int]] = ..., erasures_since_start: _Optional[int] = ..., transactions_since_start: _Optional[int] = ..., failed_transactions_since_start: _Optional[int] = ..., weights_version: _Optional[int] = ..., default_profile: _Optional[str] = ..., priors: _Optional[_Iterable[_Union[PriorInForce, _Mapping]]] = ..., queue_depth: _Optional[int] = ..., queue_capacity: _Optional[int] = ..., storage_ok: _Optional[bool] = ..., health: _Optional[_Iterable[_Union[ServiceHealth, _Mapping]]] = ..., change_feed_lag: _Optional[int] = ...) -> None: ...

class PriorInForce(_message.Message):
    __slots__ = ("profile", "mean", "strength", "source", "likes_alpha", "likes_beta", "shares_shape", "shares_rate_days", "sentiment_mean", "sentiment_strength")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LIKES_ALPHA_FIELD_NUMBER: _ClassVar[int]
    LIKES_BETA_FIELD_NUMBER: _ClassVar[int]
    SHARES_SHAPE_FIELD_NUMBER: _ClassVar[int]
    SHARES_RATE_DAYS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_MEAN_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    profile: str
    mean: float
    strength: float
    source: str
    likes_alpha: float
    likes_beta: float
    shares_shape: float
    shares_rate_days: float
    sentiment_mean: float
    sentiment_strength: float
    def __init__(self, profile: _Optional[str] = ..., mean: _Optional[float] = ..., strength: _Optional[float] = ..., source: _Optional[str] = ..., likes_alpha: _Optional[float] = ..., likes_beta: _Optional[float] = ..., shares_shape: _Optional[float] = ..., shares_rate_days: _Optional[float] = ..., sentiment_mean: _Optional[float] = ..., sentiment_strength: _Optional[float] = ...) -> None: ...

class ServiceHealth(_message.Message):
    __slots__ = ("service", "status")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    service: str
    status: str
    def __init__(self, service: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...
