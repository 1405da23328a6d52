"""A hook's registration is made durable after it answered (_atomic.defer_syncs): the registry
and its directory are fsynced all the same, by the child that outlives the hook: the one that
becomes the watcher pair, or else one forked for that alone, which ends once it has paid.

The hook runs through a wrapper that logs every os.fsync (pid, what the descriptor names) to
a file; a forked child inherits the wrapper. Run by a stand-in `claude`, as Claude Code runs
hooks (tests/hooks/conftest.py)."""

import json
import sys
import time
from pathlib import Path

from helpers import watcher_pids

FSYNC_LOGGER = r"""
import os, sys
log, real = os.environ["FSYNC_LOG"], os.fsync

def logged_fsync(fd):
    real(fd)
    with open(log, "a") as f:
        f.write(f"{os.getpid()} {os.readlink(f'/proc/self/fd/{fd}')}\n")

os.fsync = logged_fsync
with open(log, "a") as f:
    f.write(f"{os.getpid()} hook-started\n")
sys.argv = ["sessionward", *sys.argv[1:]]
from sessionward.cli.entry import finish, main
finish(main())
"""


def fsyncs(log) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(pid), what) for pid, what in (line.split(" ", 1) for line in log.read_text().splitlines())]


def run_logged(session, event: str, payload: dict, tmp_path, log):
    wrapper = tmp_path / "fsync_logger.py"
    wrapper.write_text(FSYNC_LOGGER)
    return session.claude.run(f"{sys.executable} {wrapper} hook {event}", json.dumps(payload).encode(),
                              env={"FSYNC_LOG": str(log)}, cwd=session.cwd, session_id=session.session_id)


def wait_for(predicate, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_first_session_start_registers_durably_through_the_child_that_outlives_it(sessions, state_dir, tmp_path):
    session = sessions(0)
    log = tmp_path / "fsync.log"
    done = run_logged(session, "SessionStart", session.payload("01-SessionStart"), tmp_path, log)
    assert done.rc == 0, done
    [hook_pid] = [pid for pid, what in fsyncs(log) if what == "hook-started"]
    registry, directory = str(state_dir / "obsidian_sessions.json"), str(state_dir)

    def synced_by_child():
        seen = {what for pid, what in fsyncs(log) if pid != hook_pid}
        return registry in seen and directory in seen

    assert wait_for(synced_by_child), f"registry and directory not fsynced after the hook: {fsyncs(log)}"
    assert not [what for pid, what in fsyncs(log) if pid == hook_pid and what in (registry, directory)], \
        "the hook itself paid the fsyncs Claude Code waits for"
    assert wait_for(lambda: len(watcher_pids(state_dir)) == 2), "the child went on to become the watcher pair"


def test_a_hook_that_starts_no_pair_has_a_short_lived_child_pay_its_fsyncs(sessions, state_dir, tmp_path):
    session = sessions(0)
    assert session.start().rc == 0  # the pair starts here (not logged)
    assert wait_for(lambda: len(watcher_pids(state_dir)) == 2)
    assert session.hook("SessionEnd", session.payload("09-SessionEnd"), None).rc == 0  # unregistered; the pair lives on
    log = tmp_path / "fsync.log"
    done = run_logged(session, "UserPromptSubmit", session.payload("02-UserPromptSubmit"), tmp_path, log)
    assert done.rc == 0, done
    assert session.session_id in (state_dir / "obsidian_sessions.json").read_text()  # registered again
    [hook_pid] = [pid for pid, what in fsyncs(log) if what == "hook-started"]
    registry, directory = str(state_dir / "obsidian_sessions.json"), str(state_dir)
    assert not [what for pid, what in fsyncs(log) if pid == hook_pid and what != "hook-started"], \
        "the hook itself paid the fsyncs Claude Code waits for"

    def synced_by_child():
        return {registry, directory} <= {what for pid, what in fsyncs(log) if pid != hook_pid}

    assert wait_for(synced_by_child), f"registry and directory not fsynced after the hook: {fsyncs(log)}"
    [child] = {pid for pid, what in fsyncs(log) if pid != hook_pid}
    assert wait_for(lambda: not Path(f"/proc/{child}").exists()), "the child that paid the fsyncs lives on"
    assert len(watcher_pids(state_dir)) == 2, "no second pair: the child only paid the fsyncs"


def test_a_hook_that_owes_no_fsync_forks_nothing(sessions, state_dir, tmp_path):
    session = sessions(0)
    assert session.start().rc == 0
    log = tmp_path / "fsync.log"
    payload = session.payload("02-UserPromptSubmit")
    done = run_logged(session, "UserPromptSubmit", payload, tmp_path, log)  # a heartbeat: written, not fsynced
    assert done.rc == 0, done
    time.sleep(0.3)
    assert [what for pid, what in fsyncs(log)] == ["hook-started"], fsyncs(log)
