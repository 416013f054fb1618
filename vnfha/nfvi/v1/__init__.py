"""Generated messages of proto/vnfha/nfvi/v1/nfvi.proto (do not edit)."""
