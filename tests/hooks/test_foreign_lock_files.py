"""Other tools' lock files in ~/.claude are not sessionward's.

The state directory is ~/.claude, which other tools share. Only what sessionward created is
its own: a lock with a guard file (STATE/sessionward/locks/NAME.guard), and `end.lock` (the
origin's scripts write it without a guard). Every other `*.lock` there (a file, whatever its
content, a directory, a symlink) is left byte for byte by SessionEnd, `lock status --all`,
`lock cleanup` and `doctor`, none of which mentions it.
"""

import os
import subprocess

import pytest

from helpers import run_cli

FOREIGN = ("mine", "deadpid", "vim", "bar", "baz")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def plant_foreign_locks(state_dir, owner_pid: int) -> None:
    """Another tool's lock files: one holding the session owner's own PID (SessionEnd used to
    "release" it), one a dead PID (cleanup used to remove it), one not a PID (cleanup used to
    rename it .corrupt-), a directory, and a symlink."""
    state_dir.mkdir(mode=0o700, exist_ok=True)
    (state_dir / "mine.lock").write_text(f"{owner_pid}\n")
    (state_dir / "deadpid.lock").write_text(f"{_dead_pid()}\n")
    (state_dir / "vim.lock").write_bytes(b"locked by vim\x00\n")
    (state_dir / "bar.lock").mkdir()
    (state_dir / "bar.lock" / "owner").write_text("other tool\n")
    target = state_dir.parent / "elsewhere.txt"
    target.write_text("not a lock\n")
    (state_dir / "baz.lock").symlink_to(target)


def snapshot(state_dir) -> dict:
    """Every entry of the state directory that is not sessionward's, with its bytes."""
    seen = {}
    for name in sorted(os.listdir(state_dir)):
        if name == "sessionward" or name.startswith("obsidian_sessions.json") or name.startswith("end.lock"):
            continue
        path = state_dir / name
        info = os.lstat(path)
        if path.is_symlink():
            seen[name] = ("link", os.readlink(path), info.st_ino)
        elif path.is_dir():
            seen[name] = ("dir", sorted(os.listdir(path)), (path / "owner").read_bytes(), info.st_ino)
        else:
            seen[name] = ("file", path.read_bytes(), info.st_ino, info.st_mtime_ns)
    return seen


def _mentions_none(text: str) -> None:
    for name in FOREIGN:
        assert f"{name}.lock" not in text and f"{name}:" not in text, (name, text)


def test_session_end_and_lock_commands_leave_other_tools_locks_alone(sessions, state_dir, keeper):
    a = sessions(0)
    assert a.start().rc == 0
    plant_foreign_locks(state_dir, a.pid)
    before = snapshot(state_dir)
    assert set(before) == {f"{n}.lock" for n in FOREIGN}

    ended = a.end()
    assert (ended.rc, ended.stdout, ended.stderr) == (0, "", ""), ended
    assert snapshot(state_dir) == before

    for args in (["lock", "status", "--all"], ["lock", "status", "--all", "--json"], ["lock", "cleanup", "--dry-run"],
                 ["lock", "cleanup"], ["lock", "cleanup", "--json"]):
        done = run_cli(*args)
        assert (done.returncode, done.stderr) == (0, ""), (args, done)
        _mentions_none(done.stdout)
        assert snapshot(state_dir) == before, args

    doctor = run_cli("doctor")
    _mentions_none(doctor.stdout + doctor.stderr)
    assert snapshot(state_dir) == before


def test_sessionward_locks_are_still_found_beside_foreign_ones(state_dir, keeper):
    """The narrowing keeps what is ours: a lock taken through sessionward (it has a guard),
    and an end.lock the origin's scripts wrote (no guard), live or orphaned."""
    plant_foreign_locks(state_dir, keeper)
    assert run_cli("lock", "acquire", "build", "--pid", str(keeper)).returncode == 0
    (state_dir / "end.lock").write_text(f"{_dead_pid()}\n")  # `echo $$ > ~/.claude/end.lock`, then died
    status = run_cli("lock", "status", "--all")
    assert status.returncode == 0, status
    names = [line.split(":")[0] for line in status.stdout.splitlines()]
    assert names == ["build", "end"], status.stdout
    cleaned = run_cli("lock", "cleanup")
    assert cleaned.returncode == 0 and "end" in cleaned.stdout and not (state_dir / "end.lock").exists(), cleaned
    assert (state_dir / "build.lock").read_text() == f"{keeper}\n"


@pytest.mark.parametrize("what", ["file", "directory", "symlink"])
def test_a_foreign_end_lock_shape_is_still_refused(state_dir, what):
    """end.lock is ours by its path (the origin's surface): a directory or symlink there is
    still refused with one line, as before; only other names are left alone."""
    state_dir.mkdir(mode=0o700)
    path = state_dir / "end.lock"
    if what == "file":
        path.write_text("not a pid\n")
        done = run_cli("lock", "status", "--all")
        assert done.returncode == 0 and done.stdout.startswith("end: "), done
        return
    if what == "directory":
        path.mkdir()
    else:
        path.symlink_to(state_dir / "nowhere")
    done = run_cli("lock", "status", "--all")
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and str(path) in done.stderr, done
