"""Checkpoint replication: the pure state and log, the gRPC stream between active and standbys."""
