import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LikeValue(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIKE_VALUE_UNSPECIFIED: _ClassVar[LikeValue]
    LIKE: _ClassVar[LikeValue]
    DISLIKE: _ClassVar[LikeValue]
    CLEAR: _ClassVar[LikeValue]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    APPLIED: _ClassVar[Outcome]
    DUPLICATE: _ClassVar[Outcome]
    SUPERSEDED: _ClassVar[Outcome]
LIKE_VALUE_UNSPECIFIED: LikeValue
LIKE: LikeValue
DISLIKE: LikeValue
CLEAR: LikeValue
OUTCOME_UNSPECIFIED: Outcome
APPLIED: Outcome
DUPLICATE: Outcome
SUPERSEDED: Outcome

class SubmitRatingRequest(_message.Message):
    __slots__ = ("event_id", "product_id", "user_id", "stars", "occurred_at", "category", "verified_purchase")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STARS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_PURCHASE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    product_id: str
    user_id: str
    stars: int
    occurred_at: _timestamp_pb2.Timestamp
    category: str
    verified_purchase: bool
    def __init__(self, event_id: _Optional[str] = ..., product_id: _Optional[str] = ..., user_id: _Optional[str] = ..., stars: _Optional[int] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., category: _Optional[str] = ..., verified_purchase: _Optional[bool] = ...) -> None: ...

class SubmitLikeRequest(_message.Message):
    __slots__ = ("event_id", "product_id", "user_id", "value", "occurred_at", "verified_purchase")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_PURCHASE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    product_id: str
    user_id: str
    value: LikeValue
    occurred_at: _timestamp_pb2.Timestamp
    verified_purchase: bool
    def __init__(self, event_id: _Optional[str] = ..., product_id: _Optional[str] = ..., user_id: _Optional[str] = ..., value: _Optional[_Union[LikeValue, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., verified_purchase: _Optional[bool] = ...) -> None: ...

class SubmitShareRequest(_message.Message):
    __slots__ = ("event_id", "product_id", "user_id", "occurred_at", "channel")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    product_id: str
    user_id: str
    occurred_at: _timestamp_pb2.Timestamp
    channel: str
    def __init__(self, event_id: _Optional[str] = ..., product_id: _Optional[str] = ..., user_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[str] = ...) -> None: ...

class SubmitCommentRequest(_message.Message):
    __slots__ = ("event_id", "product_id", "user_id", "occurred_at", "channel", "text", "score", "language")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    product_id: str
    user_id: str
    occurred_at: _timestamp_pb2.Timestamp
    channel: str
    text: str
    score: float
    language: str
    def __init__(self, event_id: _Optional[str] = ..., product_id: _Optional[str] = ..., user_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., language: _Optional[str] = ...) -> None: ...

class SubmitPollVoteRequest(_message.Message):
    __slots__ = ("event_id", "poll_id", "user_id", "shown", "chosen", "occurred_at", "channel")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    POLL_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SHOWN_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    poll_id: str
    user_id: str
    shown: _containers.RepeatedScalarFieldContainer[str]
    chosen: str
    occurred_at: _timestamp_pb2.Timestamp
    channel: str
    def __init__(self, event_id: _Optional[str] = ..., poll_id: _Optional[str] = ..., user_id: _Optional[str] = ..., shown: _Optional[_Iterable[str]] = ..., chosen: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[str] = ...) -> None: ...

class FeedbackEvent(_message.Message):
    __slots__ = ("rating", "like", "share", "comment", "poll_vote")
    RATING_FIELD_NUMBER: _ClassVar[int]
    LIKE_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    POLL_VOTE_FIELD_NUMBER: _ClassVar[int]
    rating: SubmitRatingRequest
    like: SubmitLikeRequest
    share: SubmitShareRequest
    comment: SubmitCommentRequest
    poll_vote: SubmitPollVoteRequest
    def __init__(self, rating: _Optional[_Union[SubmitRatingRequest, _Mapping]] = ..., like: _Optional[_Union[SubmitLikeRequest, _Mapping]] = ..., share: _Optional[_Union[SubmitShareRequest, _Mapping]] = ..., comment: _Optional[_Union[SubmitCommentRequest, _Mapping]] = ..., poll_vote: _Optional[_Union[SubmitPollVoteRequest, _Mapping]] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[FeedbackEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[FeedbackEvent, _Mapping]]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("outcome", "seq")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    seq: int
    def __init__(self, outcome: _Optional[_Union[Outcome, str]] = ..., seq: _Optional[int] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("results", "seq")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SubmitResponse]
    seq: int
    def __init__(self, results: _Optional[_Iterable[_Union[SubmitResponse, _Mapping]]] = ..., seq: _Optional[int] = ...) -> None: ...

class ForgetUserRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ForgetUserResponse(_message.Message):
    __slots__ = ("ratings_removed", "likes_removed", "seq", "events_erased", "shares_removed", "comments_removed", "poll_votes_removed")
    RATINGS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    LIKES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENTS_ERASED_FIELD_NUMBER: _ClassVar[int]
    SHARES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    COMMENTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    POLL_VOTES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    ratings_removed: int
    likes_removed: int
    seq: int
    events_erased: int
    shares_removed: int
    comments_removed: int
    poll_votes_removed: int
    def __init__(self, ratings_removed: _Optional[int] = ..., likes_removed: _Optional[int] = ..., seq: _Optional[int] = ..., events_erased: _Optional[int] = ..., shares_removed: _Optional[int] = ..., comments_removed: _Optional[int] = ..., poll_votes_removed: _Optional[int] = ...) -> None: ...
