import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetWeightsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetWeightsResponse(_message.Message):
    __slots__ = ("version", "default_profile", "profiles", "source_toml", "source", "loaded_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOML_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    default_profile: str
    profiles: _containers.RepeatedCompositeFieldContainer[WeightsProfile]
    source_toml: str
    source: str
    loaded_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., default_profile: _Optional[str] = ..., profiles: _Optional[_Iterable[_Union[WeightsProfile, _Mapping]]] = ..., source_toml: _Optional[str] = ..., source: _Optional[str] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WeightsProfile(_message.Message):
    __slots__ = ("name", "weights", "prior_mean", "prior_mean_from_catalogue", "prior_strength", "confidence", "prior_strength_auto", "prior_per_category", "half_life_days")
    class WeightsEntry(_message.Message):
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
    name: str
    weights: _containers.ScalarMap[str, float]
    prior_mean: float
    prior_mean_from_catalogue: bool
    prior_strength: float
    confidence: float
    prior_strength_auto: bool
    prior_per_category: bool
    half_life_days: float
    def __init__(self, name: _Optional[str] = ..., weights: _Optional[_Mapping[str, float]] = ..., prior_mean: _Optional[float] = ..., prior_mean_from_catalogue: _Optional[bool] = ..., prior_strength: _Optional[float] = ..., confidence: _Optional[float] = ..., prior_strength_auto: _Optional[bool] = ..., prior_per_category: _Optional[bool] = ..., half_life_days: _Optional[float] = ...) -> None: ...
