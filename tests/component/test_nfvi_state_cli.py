"""``vnfha bridge serve --state-file PATH`` as an operator runs it (a subprocess): a missing file
is a first start and is written at once; the bridge restarts on its own file; a corrupt, wrong
version or unusable file makes it refuse to start, exit 2, naming the path and what is wrong,
and leave the file as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vnfha.bridge.state import STATE_VERSION

DEADLINE_S = 60


def serve(state_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "vnfha", "bridge", "serve", "--driver", "sim",
                             "--listen", "127.0.0.1:0", "--state-file", str(state_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], *, stop: bool) -> tuple[str, str]:
    """Its stdout and stderr once it exits (SIGTERM first if ``stop``); killed if it has not
    exited within the deadline."""
    try:
        if stop:
            proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def serve_then_stop(state_file: Path) -> None:
    proc = serve(state_file)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    out, err = finish(proc, stop=True)
    assert "vnfha bridge serving on 127.0.0.1:" in line, (line, err)
    assert proc.returncode == 0, err
    assert "vnfha bridge stopped" in out


def refused(state_file: Path) -> str:
    """Run the bridge, which must exit 2 without serving; returns its stderr."""
    proc = serve(state_file)
    out, err = finish(proc, stop=False)
    assert proc.returncode == 2, (out, err)
    assert "serving" not in out
    return err


def test_a_first_start_writes_the_file_and_a_restart_reads_it(tmp_path: Path) -> None:
    state_file = tmp_path / "bridge-state.json"
    serve_then_stop(state_file)
    saved = json.loads(state_file.read_text())
    assert saved == {"version": STATE_VERSION, "epochs": {}, "next_ticket": 1, "tickets": [],
                     "maintenance": []}
    serve_then_stop(state_file)


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "not valid JSON"),
    (json.dumps({"version": 99}), "version=99: this bridge reads version 1 only"),
    (json.dumps({"version": 1, "epochs": {"vfw": "seven"}, "next_ticket": 1, "tickets": [],
                 "maintenance": []}), "epochs['vfw']='seven': must be an integer >= 0"),
])
def test_a_bad_state_file_stops_the_bridge_with_exit_2(tmp_path: Path, content: str,
                                                      problem: str) -> None:
    state_file = tmp_path / "bridge-state.json"
    state_file.write_text(content)
    err = refused(state_file)
    assert f"vnfha bridge: error: state file {state_file}: " in err, err
    assert problem in err and "not starting without it" in err, err
    assert state_file.read_text() == content  # left for the operator to look at


def test_a_state_file_in_a_missing_directory_stops_the_bridge(tmp_path: Path) -> None:
    state_file = tmp_path / "no-such-dir" / "bridge-state.json"
    err = refused(state_file)
    # the first thing that needs the directory is the lock file beside the state file
    assert f"state file {state_file}: cannot open its lock file" in err, err
    assert "No such file or directory" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_state_file_stops_the_bridge(tmp_path: Path) -> None:
    state_file = tmp_path / "bridge-state.json"
    state_file.write_text("{}")
    state_file.chmod(0)
    assert "cannot read it" in refused(state_file)


def test_a_second_bridge_on_the_same_file_is_refused_until_the_first_exits(
    tmp_path: Path,
) -> None:
    state_file = tmp_path / "bridge-state.json"
    first = serve(state_file)
    try:
        assert first.stdout is not None
        assert "vnfha bridge serving on" in first.stdout.readline()
        err = refused(state_file)
        assert str(state_file) in err and f"pid {first.pid}" in err, err
        assert "one bridge per state file" in err
    finally:
        finish(first, stop=True)
    serve_then_stop(state_file)  # the lock went with the first bridge


def test_a_killed_bridge_leaves_no_lock_behind(tmp_path: Path) -> None:
    state_file = tmp_path / "bridge-state.json"
    first = serve(state_file)
    assert first.stdout is not None
    assert "vnfha bridge serving on" in first.stdout.readline()
    first.kill()  # no cleanup runs: the kernel drops the flock
    finish(first, stop=False)
    assert (tmp_path / "bridge-state.json.lock").exists()
    serve_then_stop(state_file)
