"""The shared store killed with -9 and restarted under a 16-process note and claim workload
(tests/store/note_worker.py), against a real redis-server: with AOF nothing committed is
lost or torn; without it, the epoch check refuses every fenced note write from the restart
until `sessionward doctor --reseed`, then the workload completes."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sessionward.store import shared

from helpers import run_cli
from store.redis_server import RedisServer, need_redis_server

PART = "shared store restarts"
WORKER = str(Path(__file__).parent.parent / "store" / "note_worker.py")
PROCESSES, ROUNDS = 16, 12


@pytest.fixture
def server_factory(tmp_path, monkeypatch):
    need_redis_server()

    made = []

    def start(aof: bool) -> RedisServer:
        directory = tmp_path / f"redis-{len(made)}"
        directory.mkdir()
        server = RedisServer(directory, aof=aof)
        made.append(server)
        server.start()
        monkeypatch.setenv("SESSIONWARD_STORE", server.url)
        return server

    yield start
    shared.disconnect()
    for server in made:
        server.cleanup()


class Workload:
    """16 workers appending "PID i" to one note and claiming one file; their output read as it comes."""

    def __init__(self, note: str, claimed: str) -> None:
        self.procs = [subprocess.Popen([sys.executable, WORKER, "workload", note, claimed, str(ROUNDS), "90"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                      for _ in range(PROCESSES)]
        self.lines: dict = {p.pid: [] for p in self.procs}
        self.readers = [threading.Thread(target=self._read, args=(p,), daemon=True) for p in self.procs]
        for reader in self.readers:
            reader.start()

    def _read(self, proc) -> None:
        for line in proc.stdout:
            self.lines[proc.pid].append(line.strip())

    def oks(self) -> int:
        return sum(1 for lines in self.lines.values() for line in list(lines) if line.startswith("ok"))

    def errors(self, code: str) -> int:
        return sum(1 for lines in self.lines.values() for line in list(lines) if line == f"err {code}")

    def wait_for(self, predicate, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.lines}"
            time.sleep(0.01)

    def finish(self, t) -> dict:
        errs = {}
        for proc in self.procs:
            errs[proc.pid] = proc.stderr.read()
            proc.wait(timeout=120)
            t.saw_output(f"worker {proc.pid}", errs[proc.pid])
        for reader in self.readers:
            reader.join(timeout=10)
        assert [p.returncode for p in self.procs] == [0] * PROCESSES, errs
        return {pid: [int(x.split()[1]) for x in lines if x.startswith("ok")] for pid, lines in self.lines.items()}


def judge_note(t, note: str, committed: dict) -> None:
    """Every committed append is in the note, whole; no line is torn."""
    lines = open(note).read().splitlines()
    present = set()
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            t.problem("torn_files", f"line {line!r}")
        else:
            present.add((int(parts[0]), int(parts[1])))
    for pid, rounds in committed.items():
        for i in rounds:
            if (pid, i) not in present:
                t.problem("lost_updates", f"append {pid} {i} was committed and is gone")
    t.operations += sum(len(r) for r in committed.values())


def test_kill_9_with_aof_loses_nothing_committed(server_factory, tmp_path, tally):
    t = tally(PART)
    server = server_factory(aof=True)
    note, claimed = str(tmp_path / "log.md"), str(tmp_path / "claimed.txt")
    work = Workload(note, claimed)
    work.wait_for(lambda: work.oks() >= 20, 60, "20 committed rounds")
    server.kill()
    t.faults_injected += 1
    time.sleep(0.3)
    server.start()
    committed = work.finish(t)
    judge_note(t, note, committed)
    from sessionward.claims import claims_on

    shared.disconnect()
    latest = {c["owner"]["pid"]: c["state"]["size"] for c in claims_on(claimed)}
    for pid, rounds in committed.items():
        if latest.get(pid) != ROUNDS - 1:
            t.problem("lost_updates", f"the claim of {pid} holds {latest.get(pid)}, committed {rounds[-1]}")
    if work.errors("store_state_lost"):
        t.problem("lost_updates", "fenced writes were refused after a restart with AOF: its state was lost")
    t.figures["kill -9 with AOF"] = 1
    t.figures["errors told while down"] = work.errors("store_unavailable")
    t.check()


def test_kill_9_without_aof_refuses_fenced_writes_until_doctor_reseeds(server_factory, tmp_path, tally):
    t = tally(PART)
    server = server_factory(aof=False)
    note, claimed = str(tmp_path / "log.md"), str(tmp_path / "claimed.txt")
    work = Workload(note, claimed)
    work.wait_for(lambda: work.oks() >= 20, 60, "20 committed rounds")
    server.kill()
    t.faults_injected += 1
    server.start()  # empty: nothing was persisted
    work.wait_for(lambda: work.errors("store_state_lost") >= PROCESSES, 30, "every worker refused")
    before = open(note).read()
    oks = work.oks()
    time.sleep(1.0)
    if open(note).read() != before or work.oks() != oks:
        t.problem("lost_updates", "a fenced note write landed after the loss, before the re-seed")
    doctor = run_cli("doctor")
    assert "fix: sessionward doctor --reseed" in doctor.stdout, doctor.stdout
    fixed = run_cli("doctor", "--reseed")
    assert fixed.stdout.startswith("re-seeded the shared store"), fixed.stdout + fixed.stderr
    committed = work.finish(t)
    judge_note(t, note, committed)
    t.figures["kill -9 without AOF"] = 1
    t.figures["refusals before the re-seed"] = work.errors("store_state_lost")
    t.check()
