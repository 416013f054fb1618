"""``vnfha bridge serve --state-file PATH`` refuses a state file it cannot write before the sim
driver launches anything (a subprocess, as an operator or a supervisor runs it).

The bridge used to find out that the file could not be written only at its first save, when the
inventory's instances were already running: it killed them and exited 2, and a supervisor that
restarts the bridge started and killed the VNFs in a loop. Evidence of a launch: the sim driver
writes ``<log-dir>/<instance>.log`` (a header line) before it starts each process, and the
instance itself touches a marker file. The control shows that both detectors see a launch.

Files that root cannot write either (the tests may run as root, in containers, where ``chmod``
stops nothing): a state file whose name leaves no room for the temporary file that an atomic
save writes beside it, and a directory made read-only (``chmod`` as a user, ``chattr +i`` as
root; skipped where neither works).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_nfvi_state_cli import finish

from vnfha.bridge.state import BridgeState, StateFileError, StateStore

SAVED = {"version": 1, "epochs": {"vfw": 7}, "next_ticket": 1, "tickets": [], "maintenance": []}


def inventory(tmp_path: Path) -> Path:
    """One instance whose process touches ``marker`` and then sleeps."""
    path = tmp_path / "sim.toml"
    marker = tmp_path / "marker"
    path.write_text(f"""
[[instances]]
name = "vm-a"
group = "vfw"
member = "vfw-a"
host = "h1"
argv = ["sh", "-c", "touch {marker}; exec sleep 600"]
""")
    return path


def serve(tmp_path: Path, state_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vnfha", "bridge", "serve", "--driver", "sim",
         "--listen", "127.0.0.1:0", "--instances", str(inventory(tmp_path)),
         "--log-dir", str(tmp_path / "logs"), "--state-file", str(state_file),
         "--log-level", "info"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def launched(tmp_path: Path) -> list[str]:
    """The evidence that an instance was launched (empty: none)."""
    logs = tmp_path / "logs"
    found = sorted(p.name for p in logs.iterdir()) if logs.exists() else []
    return found + (["marker"] if (tmp_path / "marker").exists() else [])


def refused_before_launching(tmp_path: Path, state_file: Path) -> str:
    """Run the bridge, which must exit 2 without launching or serving; returns its stderr."""
    proc = serve(tmp_path, state_file)
    out, err = finish(proc, stop=False)
    assert proc.returncode == 2, (out, err)
    assert "serving" not in out
    assert launched(tmp_path) == [], err
    assert "sim: vm-a launched" not in err, err  # the sim driver logs each launch at INFO
    assert f"state file {state_file}: cannot write it" in err, err
    assert "not starting without it" in err, err
    return err


def name_without_room_for_its_temporary_file(directory: Path) -> str:
    """A file name that fits, whose lock file's name (``+ ".lock"``) fits, but whose atomic
    save's temporary file (``"." + name + ".XXXXXXXX.tmp"``) is over the filesystem's name
    limit: the save fails (ENAMETOOLONG), for root as for anyone."""
    return "s" * (os.pathconf(directory, "PC_NAME_MAX") - len(".lock"))


def test_the_control_a_writable_state_file_launches_the_instance(tmp_path: Path) -> None:
    proc = serve(tmp_path, tmp_path / "bridge-state.json")
    assert proc.stdout is not None
    line = proc.stdout.readline()
    out, err = finish(proc, stop=True)
    assert "1 instances launched" in line, (line, err)
    assert proc.returncode == 0, err
    assert "vnfha bridge stopped" in out
    assert "vm-a.log" in launched(tmp_path), err  # the detector sees a launch


def test_a_state_file_that_cannot_be_written_is_refused_before_any_launch(
        tmp_path: Path) -> None:
    state_file = tmp_path / name_without_room_for_its_temporary_file(tmp_path)
    err = refused_before_launching(tmp_path, state_file)
    assert "File name too long" in err, err
    assert not state_file.exists()


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` refuses new entries, to whoever runs the test (skips where it cannot)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)],
                                        capture_output=True, check=False).returncode != 0:
        pytest.skip("root, and this filesystem has no immutable flag (chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


def test_a_state_file_in_a_read_only_directory_is_refused_before_any_launch(
        tmp_path: Path) -> None:
    """The realistic case: the file and its lock exist (an earlier run), and the directory has
    become read-only; reading works, an atomic save (a new file beside it) does not."""
    directory = tmp_path / "state"
    directory.mkdir()
    state_file = directory / "bridge-state.json"
    state_file.write_text(json.dumps(SAVED))
    (directory / "bridge-state.json.lock").touch()
    with read_only(directory):
        refused_before_launching(tmp_path, state_file)
    assert json.loads(state_file.read_text()) == SAVED  # left as it was


def test_open_claims_reads_and_writes_back(tmp_path: Path) -> None:
    state_file = tmp_path / "bridge-state.json"
    store = StateStore(state_file)
    try:
        assert store.open() is None  # a first start
        assert json.loads(state_file.read_text()) == {**SAVED, "epochs": {}}
        with pytest.raises(StateFileError, match="in use by another bridge"):
            StateStore(state_file).claim()
    finally:
        store.release()
    state_file.write_text(json.dumps(SAVED, indent=2))
    again = StateStore(state_file)
    try:
        assert again.open() == BridgeState({"vfw": 7})
        assert json.loads(state_file.read_text()) == SAVED
    finally:
        again.release()


def test_open_that_fails_releases_the_claim_it_took(tmp_path: Path) -> None:
    state_file = tmp_path / name_without_room_for_its_temporary_file(tmp_path)
    with pytest.raises(StateFileError, match="cannot write it"):
        StateStore(state_file).open()
    other = StateStore(state_file)
    other.claim()  # not held by the failed store
    other.release()
