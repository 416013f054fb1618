"""Generated messages of proto/vnfha/replication/v1/replication.proto (do not edit)."""
