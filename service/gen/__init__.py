"""Generated protobuf and gRPC code, installed as the top-level package ``reviewrank``.

Nothing here is edited by hand: ``make gen`` rewrites it from proto/.
"""
