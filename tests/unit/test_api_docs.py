"""docs/api.md cannot drift from the code: every public name of ``vnfha`` and of the test kit
``vnfha.testing`` appears there, as a heading or in backticks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vnfha
import vnfha.testing

API = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_PUBLIC = sorted({*vnfha.__all__, *vnfha.testing.__all__})


def documented(name: str, text: str) -> bool:
    """True when ``name`` is in backticks (alone) or is the text of a Markdown heading."""
    heading = re.compile(rf"^#+\s+{re.escape(name)}\s*$", re.MULTILINE)
    return f"`{name}`" in text or heading.search(text) is not None


@pytest.mark.parametrize("name", _PUBLIC)
def test_public_name_is_in_the_api_reference(name: str) -> None:
    assert documented(name, API.read_text(encoding="utf-8")), f"{name} missing from {API}"


def test_a_missing_name_is_detected() -> None:
    text = API.read_text(encoding="utf-8").replace("`AckTimeout`", "AckTimeout")
    assert not documented("AckTimeout", text)
    assert documented("Member", "## Member\n")
