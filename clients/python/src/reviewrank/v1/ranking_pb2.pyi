from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Candidate(_message.Message):
    __slots__ = ("product_id", "relevance")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    RELEVANCE_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    relevance: float
    def __init__(self, product_id: _Optional[str] = ..., relevance: _Optional[float] = ...) -> None: ...

class RankRequest(_message.Message):
    __slots__ = ("candidates", "limit", "profile", "explain", "user_id", "min_seq", "candidate_ids", "candidate_relevances")
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_IDS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_RELEVANCES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    limit: int
    profile: str
    explain: bool
    user_id: str
    min_seq: int
    candidate_ids: _containers.RepeatedScalarFieldContainer[str]
    candidate_relevances: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., limit: _Optional[int] = ..., profile: _Optional[str] = ..., explain: _Optional[bool] = ..., user_id: _Optional[str] = ..., min_seq: _Optional[int] = ..., candidate_ids: _Optional[_Iterable[str]] = ..., candidate_relevances: _Optional[_Iterable[float]] = ...) -> None: ...

class TopRequest(_message.Message):
    __slots__ = ("category", "limit", "page_token", "profile", "explain", "user_id", "min_seq")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    category: str
    limit: int
    page_token: str
    profile: str
    explain: bool
    user_id: str
    min_seq: int
    def __init__(self, category: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., profile: _Optional[str] = ..., explain: _Optional[bool] = ..., user_id: _Optional[str] = ..., min_seq: _Optional[int] = ...) -> None: ...

class RankResponse(_message.Message):
    __slots__ = ("results", "weights_version", "profile", "next_page_token", "result_ids", "result_scores")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RESULT_IDS_FIELD_NUMBER: _ClassVar[int]
    RESULT_SCORES_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RankedProduct]
    weights_version: int
    profile: str
    next_page_token: str
    result_ids: _containers.RepeatedScalarFieldContainer[str]
    result_scores: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, results: _Optional[_Iterable[_Union[RankedProduct, _Mapping]]] = ..., weights_version: _Optional[int] = ..., profile: _Optional[str] = ..., next_page_token: _Optional[str] = ..., result_ids: _Optional[_Iterable[str]] = ..., result_scores: _Optional[_Iterable[float]] = ...) -> None: ...

class RankedProduct(_message.Message):
    __slots__ = ("product_id", "score", "explanation", "display")
    class DisplayEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    score: float
    explanation: Explanation
    display: _containers.ScalarMap[str, str]
    def __init__(self, product_id: _Optional[str] = ..., score: _Optional[float] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ..., display: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("rating_count", "stars_mean", "prior_mean", "prior_strength", "prior_source", "bayesian_average", "likes", "dislikes", "wilson_lower_bound", "confidence", "relevance", "relevance_normalized", "contributions", "known", "half_life_days", "weighted_ratings", "weighted_likes", "weighted_dislikes", "shares_half_life_days", "weighted_shares", "exposure_days", "share_prior_shape", "share_prior_rate_days", "share_reference_rate", "comments", "sentiment_mean", "sentiment_prior_mean", "sentiment_prior_strength", "sentiment_average", "polls_shown", "polls_won", "poll_strength", "weighted_comments", "damped_ratings", "damped_likes", "damped_dislikes")
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    STARS_MEAN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    PRIOR_SOURCE_FIELD_NUMBER: _ClassVar[int]
    BAYESIAN_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    LIKES_FIELD_NUMBER: _ClassVar[int]
    DISLIKES_FIELD_NUMBER: _ClassVar[int]
    WILSON_LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    RELEVANCE_FIELD_NUMBER: _ClassVar[int]
    RELEVANCE_NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    HALF_LIFE_DAYS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_RATINGS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_LIKES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_DISLIKES_FIELD_NUMBER: _ClassVar[int]
    SHARES_HALF_LIFE_DAYS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_DAYS_FIELD_NUMBER: _ClassVar[int]
    SHARE_PRIOR_SHAPE_FIELD_NUMBER: _ClassVar[int]
    SHARE_PRIOR_RATE_DAYS_FIELD_NUMBER: _ClassVar[int]
    SHARE_REFERENCE_RATE_FIELD_NUMBER: _ClassVar[int]
    COMMENTS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_MEAN_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_PRIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_PRIOR_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    POLLS_SHOWN_FIELD_NUMBER: _ClassVar[int]
    POLLS_WON_FIELD_NUMBER: _ClassVar[int]
    POLL_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_COMMENTS_FIELD_NUMBER: _ClassVar[int]
    DAMPED_RATINGS_FIELD_NUMBER: _ClassVar[int]
    DAMPED_LIKES_FIELD_NUMBER: _ClassVar[int]
    DAMPED_DISLIKES_FIELD_NUMBER: _ClassVar[int]
    rating_count: int
    stars_mean: float
    prior_mean: float
    prior_strength: float
    prior_source: str
    bayesian_average: float
    likes: int
    dislikes: int
    wilson_lower_bound: float
    confidence: float
    relevance: float
    relevance_normalized: float
    contributions: _containers.RepeatedCompositeFieldContainer[Contribution]
    known: bool
    half_life_days: float
    weighted_ratings: float
    weighted_likes: float
    weighted_dislikes: float
    shares_half_life_days: float
    weighted_shares: float
    exposure_days: float
    share_prior_shape: float
    share_prior_rate_days: float
    share_reference_rate: float
    comments: int
    sentiment_mean: float
    sentiment_prior_mean: float
    sentiment_prior_strength: float
    sentiment_average: float
    polls_shown: int
    polls_won: int
    poll_strength: float
    weighted_comments: float
    damped_ratings: float
    damped_likes: float
    damped_dislikes: float
    def __init__(self, rating_count: _Optional[int] = ..., stars_mean: _Optional[float] = ..., prior_mean: _Optional[float] = ..., prior_strength: _Optional[float] = ..., prior_source: _Optional[str] = ..., bayesian_average: _Optional[float] = ..., likes: _Optional[int] = ..., dislikes: _Optional[int] = ..., wilson_lower_bound: _Optional[float] = ..., confidence: _Optional[float] = ..., relevance: _Optional[float] = ..., relevance_normalized: _Optional[float] = ..., contributions: _Optional[_Iterable[_Union[Contribution, _Mapping]]] = ..., known: _Optional[bool] = ..., half_life_days: _Optional[float] = ..., weighted_ratings: _Optional[float] = ..., weighted_likes: _Optional[float] = ..., weighted_dislikes: _Optional[float] = ..., shares_half_life_days: _Optional[float] = ..., weighted_shares: _Optional[float] = ..., exposure_days: _Optional[float] = ..., share_prior_shape: _Optional[float] = ..., share_prior_rate_days: _Optional[float] = ..., share_reference_rate: _Optional[float] = ..., comments: _Optional[int] = ..., sentiment_mean: _Optional[float] = ..., sentiment_prior_mean: _Optional[float] = ..., sentiment_prior_strength: _Optional[float] = ..., sentiment_average: _Optional[float] = ..., polls_shown: _Optional[int] = ..., polls_won: _Optional[int] = ..., poll_strength: _Optional[float] = ..., weighted_comments: _Optional[float] = ..., damped_ratings: _Optional[float] = ..., damped_likes: _Optional[float] = ..., damped_dislikes: _Optional[float] = ...) -> None: ...

class Contribution(_message.Message):
    __slots__ = ("component", "value", "normalized", "weight", "contribution")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    component: str
    value: float
    normalized: float
    weight: float
    contribution: float
    def __init__(self, component: _Optional[str] = ..., value: _Optional[float] = ..., normalized: _Optional[float] = ..., weight: _Optional[float] = ..., contribution: _Optional[float] = ...) -> None: ...

class GetProductStatsRequest(_message.Message):
    __slots__ = ("product_ids", "profile", "min_seq")
    PRODUCT_IDS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MIN_SEQ_FIELD_NUMBER: _ClassVar[int]
    product_ids: _containers.RepeatedScalarFieldContainer[str]
    profile: str
    min_seq: int
    def __init__(self, product_ids: _Optional[_Iterable[str]] = ..., profile: _Optional[str] = ..., min_seq: _Optional[int] = ...) -> None: ...

class GetProductStatsResponse(_message.Message):
    __slots__ = ("stats", "weights_version")
    STATS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    stats: _containers.RepeatedCompositeFieldContainer[ProductStats]
    weights_version: int
    def __init__(self, stats: _Optional[_Iterable[_Union[ProductStats, _Mapping]]] = ..., weights_version: _Optional[int] = ...) -> None: ...

class ProductStats(_message.Message):
    __slots__ = ("product_id", "known", "category", "rating_count", "stars_histogram", "stars_mean", "bayesian_average", "prior_mean", "prior_strength", "likes", "dislikes", "wilson_lower_bound", "confidence", "prior_source", "inactive", "more_categories", "display", "shares", "weighted_shares", "exposure_days", "share_rate", "comments", "sentiment_mean", "polls_shown", "polls_won", "poll_strength", "damped_ratings", "damped_likes", "damped_dislikes")
    class DisplayEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    RATING_COUNT_FIELD_NUMBER: _ClassVar[int]
    STARS_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    STARS_MEAN_FIELD_NUMBER: _ClassVar[int]
    BAYESIAN_AVERAGE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_MEAN_FIELD_NUMBER: _ClassVar[int]
    PRIOR_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    LIKES_FIELD_NUMBER: _ClassVar[int]
    DISLIKES_FIELD_NUMBER: _ClassVar[int]
    WILSON_LOWER_BOUND_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_SOURCE_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_FIELD_NUMBER: _ClassVar[int]
    MORE_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    WEIGHTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_DAYS_FIELD_NUMBER: _ClassVar[int]
    SHARE_RATE_FIELD_NUMBER: _ClassVar[int]
    COMMENTS_FIELD_NUMBER: _ClassVar[int]
    SENTIMENT_MEAN_FIELD_NUMBER: _ClassVar[int]
    POLLS_SHOWN_FIELD_NUMBER: _ClassVar[int]
    POLLS_WON_FIELD_NUMBER: _ClassVar[int]
    POLL_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    DAMPED_RATINGS_FIELD_NUMBER: _ClassVar[int]
    DAMPED_LIKES_FIELD_NUMBER: _ClassVar[int]
    DAMPED_DISLIKES_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    known: bool
    category: str
    rating_count: int
    stars_histogram: _containers.RepeatedScalarFieldContainer[int]
    stars_mean: float
    bayesian_average: float
    prior_mean: float
    prior_strength: float
    likes: int
    dislikes: int
    wilson_lower_bound: float
    confidence: float
    prior_source: str
    inactive: bool
    more_categories: _containers.RepeatedScalarFieldContainer[str]
    display: _containers.ScalarMap[str, str]
    shares: int
    weighted_shares: float
    exposure_days: float
    share_rate: float
    comments: int
    sentiment_mean: float
    polls_shown: int
    polls_won: int
    poll_strength: float
    damped_ratings: float
    damped_likes: float
    damped_dislikes: float
    def __init__(self, product_id: _Optional[str] = ..., known: _Optional[bool] = ..., category: _Optional[str] = ..., rating_count: _Optional[int] = ..., stars_histogram: _Optional[_Iterable[int]] = ..., stars_mean: _Optional[float] = ..., bayesian_average: _Optional[float] = ..., prior_mean: _Optional[float] = ..., prior_strength: _Optional[float] = ..., likes: _Optional[int] = ..., dislikes: _Optional[int] = ..., wilson_lower_bound: _Optional[float] = ..., confidence: _Optional[float] = ..., prior_source: _Optional[str] = ..., inactive: _Optional[bool] = ..., more_categories: _Optional[_Iterable[str]] = ..., display: _Optional[_Mapping[str, str]] = ..., shares: _Optional[int] = ..., weighted_shares: _Optional[float] = ..., exposure_days: _Optional[float] = ..., share_rate: _Optional[float] = ..., comments: _Optional[int] = ..., sentiment_mean: _Optional[float] = ..., polls_shown: _Optional[int] = ..., polls_won: _Optional[int] = ..., poll_strength: _Optional[float] = ..., damped_ratings: _Optional[float] = ..., damped_likes: _Optional[float] = ..., damped_dislikes: _Optional[float] = ...) -> None: ...
