"""`vnfha demo` is reachable from the CLI, with the demo's own options (the run itself is in
tests/integration/test_demo.py)."""

from __future__ import annotations

import pytest

from vnfha.cli import main


def test_demo_help_comes_from_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["demo", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--kill {sigkill,sigstop,switchover,partition}" in out
    assert "--hosts" in out


def test_demo_refuses_a_bad_kill_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["demo", "--kill", "reboot"])
    assert e.value.code == 2
    assert "invalid choice: 'reboot'" in capsys.readouterr().err


def test_a_partition_needs_the_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["demo", "--kill", "partition"])
    assert e.value.code == 2
    assert "--kill partition needs --hosts" in capsys.readouterr().err


def test_demo_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "demo" in capsys.readouterr().out
