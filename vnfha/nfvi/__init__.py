"""The NFVI side of vnfha: the bridge's driver interface, server, drivers and the SDK client."""
