"""flock with a deadline: kernel wait under a one-shot timer, polling where that cannot be used."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from sessionward._flock import flock_exclusive


@pytest.fixture
def held_lock(tmp_path):
    """A lock file held by another process; yields (path, release())."""
    path = tmp_path / "x.lock"
    path.touch()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys\n"
         f"fd = os.open({str(path)!r}, os.O_RDWR)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"

    def release():
        holder.stdin.close()
        holder.wait()

    yield str(path), release
    if holder.poll() is None:
        holder.kill()
        holder.wait()


def _open(path):
    return os.open(path, os.O_RDWR)


def test_times_out_and_restores_the_callers_alarm_handler(held_lock):
    path, _ = held_lock
    mine = lambda signum, frame: None  # noqa: E731
    previous = signal.signal(signal.SIGALRM, mine)
    fd = _open(path)
    try:
        started = time.monotonic()
        assert flock_exclusive(fd, 0.2) is False
        assert time.monotonic() - started >= 0.2
        assert signal.getsignal(signal.SIGALRM) is mine
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    finally:
        os.close(fd)
        signal.signal(signal.SIGALRM, previous)


def test_waiter_gets_the_lock_when_the_holder_releases(held_lock):
    path, release = held_lock
    fd = _open(path)
    threading.Timer(0.2, release).start()
    try:
        assert flock_exclusive(fd, 10) is True
    finally:
        os.close(fd)


def test_a_running_timer_of_the_process_is_left_alone(held_lock):
    path, _ = held_lock
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda s, f: fired.append(s))
    signal.setitimer(signal.ITIMER_REAL, 5.0)
    fd = _open(path)
    try:
        assert flock_exclusive(fd, 0.2) is False  # polled instead
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 4.0 < remaining < 5.0 and fired == []
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.close(fd)


def test_from_a_thread_it_polls(held_lock):
    path, release = held_lock
    results = []

    def waiter(timeout):
        fd = _open(path)
        try:
            results.append(flock_exclusive(fd, timeout))
        finally:
            os.close(fd)

    thread = threading.Thread(target=waiter, args=(0.2,))
    thread.start()
    thread.join()
    assert results == [False]
    threading.Timer(0.2, release).start()
    thread = threading.Thread(target=waiter, args=(10,))
    thread.start()
    thread.join()
    assert results == [False, True]


def test_free_lock_is_taken_at_once_even_with_zero_timeout(tmp_path):
    path = tmp_path / "free.lock"
    path.touch()
    fd = _open(str(path))
    try:
        assert flock_exclusive(fd, 0) is True
    finally:
        os.close(fd)


def _stopped_flock_holder(path):
    from sessionward.identity import read_process

    from helpers import hold_flock

    holder = hold_flock(path)
    os.kill(holder.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while read_process(holder.pid).state not in "Tt":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return holder, read_process(holder.pid).comm


def _captured_payload(name: str, cwd: str) -> str:
    import json

    here = os.path.join(os.path.dirname(__file__), "hooks", "payloads", "2.1.331", "basic", name)
    with open(here, encoding="utf-8") as f:
        payload = json.load(f)["stdin_payload"]
    return json.dumps(dict(payload, cwd=cwd))


@pytest.mark.slow
def test_a_stopped_process_holding_a_state_flock_is_named_in_the_timeout(tmp_path, state_dir, keeper):
    """registry.lock (a CLI command waits 5 s, a hook 2 s) and a lock's guard file, held by a
    stopped process: one line naming it, stopped, and how to resume it."""
    from helpers import run_cli

    run_cli("register", "p", str(tmp_path), "--pid", str(keeper), check=True)  # creates the state
    run_cli("lock", "acquire", "end", "--pid", str(keeper), check=True)  # creates the guard file
    run_cli("lock", "release", "end", "--pid", str(keeper), check=True)
    registry_lock = state_dir / "sessionward" / "registry.lock"
    holder, comm = _stopped_flock_holder(registry_lock)
    try:
        advice = f"resume it with `fg` in its terminal or `kill -CONT {holder.pid}`, or end it (kill {holder.pid})"
        who = f"held by pid {holder.pid} ({comm}, stopped)"
        cli = run_cli("register", "p", str(tmp_path), "--pid", str(keeper))
        assert (cli.returncode, cli.stderr) == (
            1, f"sessionward: registry lock {registry_lock} still busy after 5.0 s: {who}; {advice}\n")
        hook = run_cli("hook", "UserPromptSubmit", input=_captured_payload("02-UserPromptSubmit.json", str(tmp_path)))
        assert (hook.returncode, hook.stdout, hook.stderr) == (
            1, "", f"sessionward hook UserPromptSubmit: registry lock {registry_lock} still busy after 2.0 s: {who}; {advice}\n")
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait()

    guard = state_dir / "sessionward" / "locks" / "end.guard"
    holder, comm = _stopped_flock_holder(guard)
    try:
        waited = run_cli("lock", "acquire", "end", "--pid", str(keeper), "--timeout", "0")
        assert (waited.returncode, waited.stderr) == (
            1, f"sessionward: lock guard {guard} still busy after 5.0 s: held by pid {holder.pid} ({comm}, stopped); "
               f"resume it with `fg` in its terminal or `kill -CONT {holder.pid}`, or end it (kill {holder.pid})\n")
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait()
