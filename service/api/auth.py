"""Bearer-token authentication of the reviewrank services, as a server interceptor.

* ``AdminService`` needs the admin token. With none configured the server still serves
  everything else, and admin calls answer FAILED_PRECONDITION ("admin RPCs are off")
  whatever they send: an open admin service is never the default.
* ``FeedbackService.ForgetUser`` (erasure: irreversible) needs the admin token too, and
  answers FAILED_PRECONDITION when none is configured, unless the operator opted out
  (``open_erasure``): then it is guarded like the other feedback calls. An API token
  alone never authorises an erasure.
* The other reviewrank services (feedback, ranking) are open unless an API token is
  configured; then they need it (or the admin token).
* Rank and Top with ``explain`` set need the admin token too (checked by the servicer,
  once the request is read): an explanation shows the weights and priors in force.
* Health and reflection are never guarded: load balancers and grpcurl rely on them.

A token travels as ``authorization: Bearer <token>`` metadata and is compared in
constant time (hmac.compare_digest). No token, given or expected, ever appears in a log
line or an error message.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from reviewrank.service.api.status import to_status
from reviewrank.service.domain.errors import FailedPrecondition, ReviewrankError, Unauthenticated

ADMIN_PREFIX = "/reviewrank.v1.AdminService/"
GUARDED_PREFIX = "/reviewrank."
ERASURE = "/reviewrank.v1.FeedbackService/ForgetUser"
AUTHORIZATION = "authorization"

NO_ADMIN_TOKEN = FailedPrecondition(
    "admin RPCs are disabled: the server has no admin token "
    "(set REVIEWRANK_ADMIN_TOKEN or REVIEWRANK_ADMIN_TOKEN_FILE)"
)
NO_ERASURE_TOKEN = FailedPrecondition(
    "erasure is disabled: the server has no admin token "
    "(set REVIEWRANK_ADMIN_TOKEN or REVIEWRANK_ADMIN_TOKEN_FILE, "
    "or REVIEWRANK_OPEN_ERASURE=1 to let anyone who reaches the port erase users)"
)
MISSING = Unauthenticated("missing credentials: send the metadata 'authorization: Bearer <token>'")
INVALID = Unauthenticated("invalid bearer token")


def read_token(value: str, path: Path | None, name: str) -> str:
    """The token set directly, or read from ``path`` (surrounding whitespace dropped)."""
    if path is None:
        return value
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{name}_file {path}: cannot read it ({problem})") from None
    if not text:
        raise ValueError(f"{name}_file {path} is empty")
    return text


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The token of the first ``authorization`` entry, if it is a bearer one."""
    for key, value in metadata or ():
        if key != AUTHORIZATION:
            continue
        if not isinstance(value, str):
            return None
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else None
    return None


def _refusal(handler: grpc.RpcMethodHandler, error: ReviewrankError) -> grpc.RpcMethodHandler:
    """A handler of the same kind that answers ``error`` without reading the request."""

    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(to_status(error))

    factories: list[tuple[Any, Callable[..., grpc.RpcMethodHandler]]] = [
        (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
        (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
        (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
        (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
    ]
    factory = next(f for behaviour, f in factories if behaviour is not None)
    # No request deserializer: the request is not even decoded before the refusal.
    return factory(refuse, request_deserializer=None, response_serializer=None)


class BearerAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self, admin_token: str = "", api_token: str = "", open_erasure: bool = False
    ) -> None:
        self._admin = admin_token.encode("utf-8")
        self._api = api_token.encode("utf-8")
        self._open_erasure = open_erasure

    def _matches(self, given: str | None, *expected: bytes) -> bool:
        if given is None:
            return False
        candidate = given.encode("utf-8")
        # Every configured token is compared, so that timing does not tell which matched.
        results = [hmac.compare_digest(candidate, token) for token in expected if token]
        return any(results)

    def check(self, method: str, metadata: Sequence[tuple[str, Any]] | None) -> None:
        """Raises the error a call to ``method`` with this metadata gets, if any."""
        if method.startswith(ADMIN_PREFIX):
            self.check_admin(metadata)
        elif method == ERASURE and not self._open_erasure:
            if not self._admin:
                raise NO_ERASURE_TOKEN
            self._require(metadata, self._admin)
        elif method.startswith(GUARDED_PREFIX) and self._api:
            self._require(metadata, self._api, self._admin)

    def check_admin(self, metadata: Sequence[tuple[str, Any]] | None) -> None:
        """Raises what a call with this metadata gets where the admin token is needed: an
        admin RPC, or an explained ranking (it shows the weights and priors in force)."""
        if not self._admin:
            raise NO_ADMIN_TOKEN
        self._require(metadata, self._admin)

    def _require(self, metadata: Sequence[tuple[str, Any]] | None, *expected: bytes) -> None:
        given = bearer_token(metadata)
        if given is None:
            raise MISSING
        if not self._matches(given, *expected):
            raise INVALID

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        try:
            self.check(handler_call_details.method, handler_call_details.invocation_metadata)
        except ReviewrankError as error:
            handler = continuation(handler_call_details)
            return None if handler is None else _refusal(handler, error)
        return continuation(handler_call_details)


def server_credentials(
    cert_file: Path | None, key_file: Path | None
) -> grpc.ServerCredentials | None:
    """TLS credentials from a PEM certificate chain and its private key, or None (both unset)."""
    if cert_file is None or key_file is None:
        return None
    try:
        chain = cert_file.read_bytes()
        key = key_file.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"cannot read the TLS certificate or key: {exc.strerror} ({exc.filename})"
        ) from None
    return grpc.ssl_server_credentials([(key, chain)])


class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(self, details: grpc.ClientCallDetails, metadata: list[tuple[str, str]]) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = details.compression


class BearerToken(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Client side: adds ``authorization: Bearer <token>`` to every unary call."""

    def __init__(self, token: str) -> None:
        self._header = (AUTHORIZATION, f"Bearer {token}")

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = [*(client_call_details.metadata or ()), self._header]
        return continuation(_CallDetails(client_call_details, metadata), request)


def client_channel(
    target: str, token: str = "", ca_file: Path | None = None, tls: bool = False
) -> grpc.Channel:
    """A channel to ``target``: TLS when ``ca_file`` (the roots to trust, e.g. a self-signed
    certificate) or ``tls`` (the system's roots) is given; sending ``token`` if not empty."""
    if ca_file is not None or tls:
        roots = None if ca_file is None else ca_file.read_bytes()
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(roots))
    else:
        channel = grpc.insecure_channel(target)
    return grpc.intercept_channel(channel, BearerToken(token)) if token else channel
