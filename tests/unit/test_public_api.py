"""The flat public namespace: sorted, complete, and every name documented."""

from __future__ import annotations

import vnfha
from vnfha import errors


def test_all_is_sorted_and_resolves() -> None:
    assert list(vnfha.__all__) == sorted(vnfha.__all__)
    for name in vnfha.__all__:
        assert hasattr(vnfha, name), name


def test_every_public_name_has_a_docstring() -> None:
    for name in vnfha.__all__:
        obj = getattr(vnfha, name)
        assert (obj.__doc__ or "").strip(), name


def test_every_error_derives_from_the_root_and_is_exported() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, vnfha.VnfhaError)
        assert getattr(vnfha, name) is cls
