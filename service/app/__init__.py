"""The application: the in-memory catalogue, ranking and Top, priors, weights
administration, the writer and the change feed. Owns the storage interface
(service.storage implements it); knows nothing of gRPC.
"""
