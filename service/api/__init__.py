"""The gRPC edge: server, servicers, interceptors, authentication, admission, health and
reflection; request conversion and validation. Wire-format codecs live in api.wire.
"""
