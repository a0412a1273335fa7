"""reviewrank's service: the gRPC server, its storage and tools around the pure ranking
core in reviewrank.ranking (installed as reviewrank.service; the repository's service/)."""

__version__ = "0.1.0"

# The command line as a module, for starting servers in processes of their own
# (`python -m CLI_MODULE serve ...`).
CLI_MODULE = "reviewrank.service.cli.main"
