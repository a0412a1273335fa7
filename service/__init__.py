"""reviewrank: the gRPC service around the pure ranking core in `ranking`."""

__version__ = "0.1.0"
