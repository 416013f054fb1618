"""libvirt's Python binding, for the libvirt driver's modules only: importing this without the
binding raises an ImportError that says how to install it (``vnfha bridge serve --driver
libvirt`` turns it into exit 2 with that message)."""

from __future__ import annotations

try:
    import libvirt
except ImportError as _e:  # pragma: no cover - depends on the environment
    raise ImportError("the libvirt driver needs libvirt's Python binding: "
                      "pip install 'vnfha[libvirt]' (and the system's libvirt-dev)") from _e

__all__ = ["libvirt"]
