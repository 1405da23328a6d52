"""The event log under concurrent writers, rotation and kill -9, with real processes.

* test_concurrent_writers_and_kill_9_tear_nothing_and_lose_nothing: 6 writers append 150
  events each while 6 others append with short pauses and are SIGKILLed at random instants
  (all started together);
  the log rotates several times meanwhile (SESSIONWARD_TEST_LOG_MAX_BYTES). Each writer
  announces on its own file every event its append() returned from. At the end every line
  of every log file is one whole JSON record (no torn or interleaved line), every writer's
  events are there exactly once and in order, the killed writers' a prefix holding at least
  every event they announced (only what a killed writer had not yet written is missing).
* test_split_writes_would_be_caught (the negative control): the same check on writers that
  write each line in two write(2) calls, as a careless appender would, finds torn lines.
"""

import json
import os
import random
import subprocess
import sys
import time

import pytest

from sessionward import eventlog

pytestmark = pytest.mark.slow

WRITER = r"""
import os, sys, time
from sessionward import eventlog

name, count, pause, mode, announce = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
out = open(announce, "a", buffering=1)
current = os.path.join(eventlog.log_dir(), eventlog.CURRENT)
os.makedirs(eventlog.log_dir(), exist_ok=True)
while not os.path.exists(os.path.join(os.path.dirname(announce), "go")):  # all start together
    time.sleep(0.001)
for n in range(count):
    if mode == "whole":
        eventlog.append("note.written", name, n=n, pad="x" * 60)
    else:  # the careless way: one line in two writes
        data = eventlog.encode_line({"at": time.time(), "event": "note.written", "session": name, "n": n, "pad": "x" * 60})
        fd = os.open(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, data[: len(data) // 2])
        os.write(fd, data[len(data) // 2:])
        os.close(fd)
    out.write(f"{n}\n")
    if pause:
        time.sleep(pause)
"""


def start(tmp_path, name: str, count: int, pause: float, mode: str = "whole") -> tuple:
    announce = tmp_path / f"{name}.announced"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, name, str(count), str(pause), mode, str(announce)])
    return proc, announce


def announced(path) -> list[int]:
    try:
        return [int(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def whole_lines() -> tuple[list, int]:
    """(records of lines that are whole JSON records, count of lines that are not)."""
    records, torn = [], 0
    for path in eventlog.log_files():
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        assert data == b"" or data.endswith(b"\n"), f"{path} ends inside a line"
        for line in data.splitlines():
            try:
                record = json.loads(line)
                assert list(record)[:2] == ["at", "event"]
                records.append(record)
            except (ValueError, AssertionError):
                torn += 1
    return records, torn


def test_concurrent_writers_and_kill_9_tear_nothing_and_lose_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONWARD_TEST_LOG_MAX_BYTES", "50000")
    rng = random.Random(1314)
    steady = [start(tmp_path, f"steady{i}", 150, 0.0) for i in range(6)]
    doomed = [start(tmp_path, f"doomed{i}", 1000, 0.002) for i in range(6)]  # killed long before the end
    time.sleep(0.5)  # every interpreter up
    (tmp_path / "go").touch()
    for proc, _ in doomed:
        time.sleep(rng.uniform(0.01, 0.05))
        proc.kill()  # SIGKILL, wherever it is
    for proc, _ in steady + doomed:
        proc.wait(timeout=60)
    records, torn = whole_lines()
    assert torn == 0
    rotated = [p for p in eventlog.log_files()[:-1] if os.path.exists(p)]
    assert len(rotated) >= 2, "the workload must rotate the log more than once"
    assert not os.path.exists(eventlog.log_files()[0]), "sized so that rotation drops nothing"
    by_writer: dict = {}
    for record in sorted(records, key=lambda r: r["at"]):
        by_writer.setdefault(record["session"], []).append(record["n"])
    for i, (proc, _announce) in enumerate(steady):
        assert proc.returncode == 0
        assert by_writer[f"steady{i}"] == list(range(150))
    killed = 0
    for i, (proc, announce) in enumerate(doomed):
        told = announced(announce)
        found = by_writer.get(f"doomed{i}", [])
        assert found == list(range(len(found))), f"doomed{i}: a gap or a duplicate"
        assert len(told) <= len(found) <= len(told) + 1, f"doomed{i}: announced {len(told)}, logged {len(found)}"
        killed += proc.returncode == -9
    assert killed == len(doomed), "every doomed writer must have been killed mid-run"
    print(f"eventlog: {len(records)} lines, {len(rotated)} rotations kept, {killed} writers killed, 0 torn")


def test_split_writes_would_be_caught(tmp_path):
    for attempt in range(3):
        writers = [start(tmp_path, f"split{attempt}-{i}", 1000, 0.0, "split") for i in range(6)]
        time.sleep(0.5)
        (tmp_path / "go").touch()
        for proc, _ in writers:
            proc.wait(timeout=60)
        if whole_lines()[1]:
            return
        (tmp_path / "go").unlink()
    pytest.fail("writers splitting their lines never tore one: the check above proves nothing")
