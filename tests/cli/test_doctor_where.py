"""doctor on containers and sandboxes: a state directory whose flock is not shared between
two opens of one file (a real FUSE filesystem that grants every open its lock, as VirtioFS
does), and life files left by killed watchers (counted by doctor, removed by prune --apply)."""

import fcntl
import json
import os
import shutil
import subprocess
import time

import pytest

from sessionward.doctor import opens_exclude_each_other

from helpers import hold_flock, run_cli

LONEFS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lonefs.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-fusepy is a Debian package of the system's Python


def checks() -> dict:
    return {c["name"]: c for c in json.loads(run_cli("doctor", "--json").stdout)["result"]["checks"]}


def test_two_opens_of_one_local_file_exclude_each_other(tmp_path):
    path = tmp_path / "probe"
    first = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    second = os.open(path, os.O_RDWR)
    other = os.open(tmp_path / "elsewhere", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert opens_exclude_each_other(first, second) is True
        # A second descriptor whose flock is its own (what VirtioFS gives two opens of one
        # file), played by a descriptor of another file: the check says flock is broken.
        assert opens_exclude_each_other(first, other) is False
        fcntl.flock(second, fcntl.LOCK_EX | fcntl.LOCK_NB)  # both were unlocked after the check
    finally:
        for fd in (first, second, other):
            os.close(fd)


def _fuse_unavailable():
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or not shutil.which("fusermount"):
        return "needs root, /dev/fuse and fusermount"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import fusepy"], capture_output=True)
    if probe.returncode != 0:
        return "needs the system's python3 with fusepy (apt-get install python3-fusepy)"
    return None


@pytest.fixture
def lone_flock_dir(tmp_path):
    """A directory on a FUSE filesystem where two opens of one file both get LOCK_EX."""
    why = _fuse_unavailable()
    if why:
        pytest.skip(why)
    source, mount = tmp_path / "source", tmp_path / "mount"
    source.mkdir()
    mount.mkdir()
    server = subprocess.Popen([SYSTEM_PYTHON, LONEFS, str(source), str(mount)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(mount):
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.poll() else "no mount"
            time.sleep(0.05)
        yield mount
    finally:
        subprocess.run(["fusermount", "-u", "-z", str(mount)], capture_output=True)
        server.kill()
        server.wait()


@pytest.mark.slow
def test_a_state_directory_whose_flock_is_per_open_fails(lone_flock_dir, monkeypatch):
    state = lone_flock_dir / "state"
    (state / "sessionward").mkdir(parents=True, mode=0o700)
    state.chmod(0o700)
    monkeypatch.setenv("SESSIONWARD_HOME", str(state))
    flock = checks()["flock"]
    assert flock == {
        "name": "flock", "status": "fail",
        "detail": f"in {state / 'sessionward'}, flock is not shared between two opens of one file (VirtioFS and some "
        "network filesystems do this): sessions here cannot exclude each other (registry updates, locks and notes "
        "can be lost)",
        "fix": "keep the state directory on a local filesystem (SESSIONWARD_HOME); a shared store (Redis: "
        "SESSIONWARD_STORE=redis://..., docs/SHARED_STORE.md) is the fix for sessions on several kernels",
    }
    assert os.listdir(state / "sessionward") == []  # the probe file is gone
    assert run_cli("doctor").returncode == 1


def test_a_local_state_directory_passes(state_dir, keeper, tmp_path):
    run_cli("register", "p", str(tmp_path), "--pid", str(keeper), "--quiet", check=True)
    flock = checks()["flock"]
    assert (flock["status"], flock["detail"]) == ("ok", f"shared between opens in {state_dir / 'sessionward'}")


def test_life_files_of_killed_watchers_are_counted_by_doctor_and_removed_by_prune_apply(state_dir, keeper, tmp_path):
    run_cli("register", "p", str(tmp_path), "--pid", str(keeper), "--quiet", check=True)
    life = state_dir / "sessionward" / "life"
    ours = os.listdir(life)  # the keeper's, held by its watcher
    assert len(ours) == 1
    stray = ["0badb007-0000-4000-8000-000000000003-4026531836-4242-1", "0badb007-0000-4000-8000-000000000003-4026531836-4243-1"]
    for name in stray:  # left by watchers killed with their owners: free, named by no record
        (life / name).write_text("")
    held = life / "0badb007-0000-4000-8000-000000000003-4026531836-4244-1"
    holder = hold_flock(held)  # a watcher still holds this one: its owner lives
    try:
        assert checks()["life files"] == {
            "name": "life files", "status": "info",
            "detail": "2 left by killed watchers (no watcher holds them, no record names them)",
            "fix": "sessionward prune --apply"}
        assert run_cli("prune", check=True).stdout == (
            "no dead sessions\n2 life files left by killed watchers: 'sessionward prune --apply' removes them\n")
        assert sorted(os.listdir(life)) == sorted(ours + stray + [held.name])  # a dry run
        applied = json.loads(run_cli("prune", "--apply", "--json", check=True).stdout)["result"]
        assert applied["life_files"] == sorted(stray)
        assert sorted(os.listdir(life)) == sorted(ours + [held.name])
        assert checks()["life files"]["status"] == "ok"
    finally:
        holder.kill()
        holder.wait()
