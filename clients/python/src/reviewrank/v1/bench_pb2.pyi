from reviewrank.v1 import ranking_pb2 as _ranking_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EchoRequest(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[_ranking_pb2.Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[_ranking_pb2.Candidate, _Mapping]]] = ...) -> None: ...

class EchoResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[_ranking_pb2.Candidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[_ranking_pb2.Candidate, _Mapping]]] = ...) -> None: ...
