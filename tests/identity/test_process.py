"""Liveness as DESIGN.md defines it: dead PID, reused PID, zombie, other host, reboot."""

import os
import subprocess
import time

from sessionward.identity import owner_is_alive, read_process, this_host


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
