"""Liveness as DESIGN.md defines it: dead PID, reused PID, zombie, other host, reboot."""

import os
import subprocess
import sys
import time

from sessionward.identity import owner_is_alive, read_process, this_host
from sessionward.identity.process import REAP_GRACE_S


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _here(pid: int, start_time):
    host = this_host()
    return owner_is_alive(pid, start_time, host.hostname, host.boot_id, last_seen=time.time())


def test_own_process_with_its_start_time_is_alive():
    me = read_process(os.getpid())
    verdict = _here(os.getpid(), me.start_time)
    assert verdict.alive, verdict.reason


def test_missing_pid_is_dead():
    pid = _dead_pid()
    verdict = _here(pid, 12345)
    assert not verdict.alive
    assert verdict.reason == f"process {pid} is gone"


def test_live_pid_with_another_start_time_is_a_reused_pid():
    me = read_process(os.getpid())
    verdict = _here(os.getpid(), me.start_time - 1)
    assert not verdict.alive
    assert verdict.reason.startswith(f"PID {os.getpid()} was reused by another process")


def test_zombie_is_dead():
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while read_process(child.pid).state != "Z":  # exited, not yet reaped by us
        assert time.monotonic() < deadline, "child never became a zombie"
        time.sleep(0.01)
    info = read_process(child.pid)
    verdict = _here(child.pid, info.start_time)
    child.wait()
    assert info.is_zombie
    assert not verdict.alive
    assert "zombie" in verdict.reason


def _zombie_of(parent_code: str) -> tuple:
    """A zombie whose parent runs `parent_code` (after making the zombie, whose PID it prints
    on its first line): (the parent's Popen, the zombie's PID)."""
    parent = subprocess.Popen([sys.executable, "-c", "import os, subprocess, signal, sys, time\n"
                               "child = subprocess.Popen(['true'])\nprint(child.pid, flush=True)\n" + parent_code],
                              stdout=subprocess.PIPE, text=True)
    zombie = int(parent.stdout.readline())
    deadline = time.monotonic() + 10
    while (info := read_process(zombie)) is not None and info.state != "Z":  # (gone: adopted and reaped)
        assert time.monotonic() < deadline, "the child never became a zombie"
        time.sleep(0.01)
    return parent, zombie


def _host_liveness(pid: int, grace: float):
    host = this_host()
    info = read_process(pid)
    return owner_is_alive(pid, info.start_time, host.hostname, host.boot_id, time.time(), reap_grace_s=grace)


def test_a_zombie_being_reaped_is_alive_for_the_grace_then_dead():
    """Its parent lives and runs (it will reap it): a lock's waiter gives it REAP_GRACE_S,
    counted from its first look, then judges it dead; without a grace it is dead at once."""
    parent, zombie = _zombie_of("time.sleep(60)")
    try:
        assert not _host_liveness(zombie, 0.0).alive
        first = _host_liveness(zombie, 0.5)
        assert first.alive and f"its parent, pid {parent.pid} (python" in first.reason, first.reason
        time.sleep(0.3)
        assert _host_liveness(zombie, 0.5).alive
        time.sleep(0.3)
        late = _host_liveness(zombie, 0.5)
        assert not late.alive and "zombie" in late.reason and f"pid {parent.pid}" in late.reason, late.reason
    finally:
        parent.kill()
        parent.wait()


def test_a_zombie_whose_parent_is_stopped_or_gone_is_dead_at_once():
    """A stopped parent reaps nothing; an exited one left the zombie to PID 1 (or a subreaper,
    which reaps at once): no grace either way."""
    stopped, zombie = _zombie_of("os.kill(os.getpid(), signal.SIGSTOP)")
    try:
        deadline = time.monotonic() + 10
        while read_process(stopped.pid).state not in ("T", "t"):
            assert time.monotonic() < deadline, "the parent never stopped"
            time.sleep(0.01)
        verdict = _host_liveness(zombie, REAP_GRACE_S)
        assert not verdict.alive and "zombie" in verdict.reason, verdict.reason
    finally:
        stopped.kill()
        stopped.wait()
    gone, zombie = _zombie_of("sys.exit(0)")  # exits without reaping it
    gone.wait()
    info = read_process(zombie)
    if info is not None:  # adopted by PID 1, which has not reaped it (yet)
        assert info.ppid in (0, 1), f"adopted by {info.ppid}: a subreaper above this test"
        verdict = _host_liveness(zombie, REAP_GRACE_S)
        assert not verdict.alive and "zombie" in verdict.reason, verdict.reason


def test_record_from_before_a_reboot_is_dead_even_if_the_pid_exists():
    verdict = owner_is_alive(os.getpid(), None, this_host().hostname, "another-boot-id", time.time())
    assert not verdict.alive
    assert "rebooted" in verdict.reason


def test_another_kernel_is_unknown_never_dead_on_age():
    # PID 1 exists here, but a record from another kernel must not be judged by our processes,
    # nor by its age: its liveness is unknown, and it stays (alive=True, known=False).
    now = time.time()
    for last_seen in (now - 10, now - 365 * 86400):
        verdict = owner_is_alive(_dead_pid(), 1, "other-host", "x", last_seen=last_seen, now=now)
        assert verdict.alive and not verdict.known and verdict.how == "unknown", verdict
        assert verdict.reason.startswith("unknown: on another kernel (other-host); last sign of life "), verdict


def test_same_host_owner_is_never_dead_on_age_alone():
    me = read_process(os.getpid())
    host = this_host()
    ancient = time.time() - 365 * 86400
    assert owner_is_alive(os.getpid(), me.start_time, host.hostname, host.boot_id, last_seen=ancient).alive


def test_unknown_start_time_falls_back_to_pid_existence():
    assert _here(os.getpid(), None).alive
    assert not _here(_dead_pid(), None).alive


def test_read_process_parses_comm_with_parentheses_and_spaces(tmp_path):
    # comm is taken from the executable's name: make one with ") (" in it.
    weird = tmp_path / "a) (b"
    weird.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(weird), "30"])
    try:
        deadline = time.monotonic() + 10
        while read_process(proc.pid).comm != "a) (b":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        info = read_process(proc.pid)
        assert info.ppid == os.getpid()
        assert info.start_time is not None and info.state in "RSD"
    finally:
        proc.kill()
        proc.wait()


def test_an_unknown_boot_id_on_either_side_falls_back_to_the_pid_check():
    from sessionward.identity.process import BOOT_ID_UNKNOWN

    me = read_process(os.getpid())
    host = this_host()
    for unknown in (BOOT_ID_UNKNOWN, "", None):
        verdict = owner_is_alive(os.getpid(), me.start_time, host.hostname, unknown, last_seen=0.0)
        assert verdict.alive and verdict.reason == f"process {os.getpid()} is running", (unknown, verdict)
        dead = _dead_pid()
        verdict = owner_is_alive(dead, 1, host.hostname, unknown, last_seen=time.time())
        assert not verdict.alive and verdict.reason == f"process {dead} is gone"
        # Unknown is no proof of "same machine": another hostname is unknown, never dead.
        verdict = owner_is_alive(dead, 1, "other-host", unknown, last_seen=time.time())
        assert verdict.alive and not verdict.known, verdict
