"""Hand-written wire-format codecs (Rank candidates, SubmitBatch, pre-encoded results),
each with a byte-for-byte fallback to the protobuf runtime.
"""
