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
