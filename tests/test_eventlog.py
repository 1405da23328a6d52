"""The event log (sessionward.eventlog) and `sessionward log`: lines, recovery, rotation, the
events the registry, the locks and the notes write, the filters. Real processes own the
sessions and locks; the concurrent writers with kill -9 are in tests/concurrency."""

import json
import os
import subprocess
import time

import pytest

from sessionward import eventlog
from sessionward.cli.log import Filter, parse_since
from sessionward.errors import LockTimeout
from sessionward.locks import NamedLock

from helpers import SESSIONWARD, cli_json, run_cli


def events(*names) -> list:
    found = eventlog.read_events()
    return [r for r in found if not names or r["event"] in names]


def test_an_event_is_one_whole_line_under_pipe_buf_whatever_its_texts():
    eventlog.append("edit.denied", "s1", tool="Write", target="/x" * 5000, reason="é" * 9000, cwd="/c" * 3000)
    [line] = open(eventlog.log_files()[-1], "rb").read().splitlines(keepends=True)
    assert len(line) < eventlog.MAX_LINE_BYTES and line.endswith(b"\n") and line.count(b"\n") == 1
    record = json.loads(line)
    assert list(record)[:2] == ["at", "event"] and record["session"] == "s1" and record["reason"].endswith("…")
    assert oct(os.stat(eventlog.log_dir()).st_mode & 0o777) == "0o700"
    assert oct(os.stat(eventlog.log_files()[-1]).st_mode & 0o777) == "0o600"


def test_a_line_cut_by_a_killed_writer_loses_only_itself():
    whole = eventlog.encode_line({"at": 2.0, "event": "lock.taken", "lock": "end"}).decode()
    cut = eventlog.encode_line({"at": 1.0, "event": "note.written", "path": "/n"}).decode()[:25]
    assert eventlog.parse_line(cut + whole) == {"at": 2.0, "event": "lock.taken", "lock": "end"}
    assert eventlog.parse_line(cut) is None
    assert eventlog.parse_line('{"at": 1, "event": 3}') is None  # not a record


def test_rotation_keeps_every_line_and_at_most_keep_files(monkeypatch):
    monkeypatch.setenv("SESSIONWARD_TEST_LOG_MAX_BYTES", "2000")
    for n in range(600):
        eventlog.append("note.written", f"s{n}", n=n)
    files = [p for p in eventlog.log_files() if os.path.exists(p)]
    assert len(files) == eventlog.KEEP + 1  # the oldest went: history is bounded
    kept = [r["n"] for r in events()]
    assert kept == list(range(kept[0], 600)) and kept[0] > 0  # every line since the oldest kept one
    assert all(os.path.getsize(p) <= 2000 + eventlog.MAX_LINE_BYTES for p in files)


def test_a_writer_holding_the_old_file_across_a_rotation_loses_nothing(monkeypatch):
    monkeypatch.setenv("SESSIONWARD_TEST_LOG_MAX_BYTES", "100")
    eventlog.append("note.written", "first")
    current = eventlog.log_files()[-1]
    late = os.open(current, os.O_WRONLY | os.O_APPEND)  # opened before the rotation
    eventlog.append("note.written", "second", pad="x" * 200)  # past 100 bytes: rotates
    assert os.path.exists(os.path.join(eventlog.log_dir(), "events.1.jsonl"))
    os.write(late, eventlog.encode_line({"at": round(time.time(), 3), "event": "note.written", "session": "late"}))
    # (at rounded as append rounds it: a raw time.time() could sort before "second", rounded up)
    os.close(late)
    assert [r["session"] for r in events()] == ["first", "second", "late"]


def test_parse_since_takes_ages_and_iso_times():
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("2h", now=10000.0) == 2800.0
    assert parse_since("1970-01-01T00:01:00+00:00") == 60.0
    for bad in ("", "ten minutes", "5x", "-3m", "2026-13-01"):
        with pytest.raises(Exception) as info:
            parse_since(bad)
        assert "invalid --since" in str(info.value)


def test_the_project_filter_learns_a_hook_events_project_from_its_session():
    keep = Filter(None, "alpha", None)
    rows = [{"at": 1, "event": "session.started", "session": "s1", "project": "alpha"},
            {"at": 2, "event": "edit.denied", "session": "s1"},
            {"at": 3, "event": "edit.denied", "session": "s2"},
            {"at": 4, "event": "lock.taken", "project": "beta"}]
    assert [r["at"] for r in rows if keep(r)] == [1, 2]


# -- the events of the registry, the locks and the notes ------------------------------------------


def test_registry_logs_started_ended_and_died_with_the_check_that_found_it_dead(tmp_path, keeper):
    doomed = subprocess.Popen(["sleep", "600"])
    run_cli("register", "alpha", str(tmp_path), "--pid", str(doomed.pid), "--session", "doomed-1", check=True)
    run_cli("register", "alpha", str(tmp_path), "--pid", str(keeper), "--session", "keeper-1", check=True)
    doomed.kill()
    doomed.wait()
    run_cli("list", check=True)  # sweeps the dead one
    run_cli("unregister", "--session", "keeper-1", check=True)
    seen = [(r["event"], r["session"]) for r in events()]
    assert seen == [("session.started", "doomed-1"), ("session.started", "keeper-1"),
                    ("session.died", "doomed-1"), ("session.ended", "keeper-1")]
    [died] = events("session.died")
    assert died["check"] == "pid" and died["reason"] == f"process {doomed.pid} is gone"
    assert died["pid"] == doomed.pid and died["project"] == "alpha"
    # as `log` shows it: the reason right after the pid, and which check told it
    [shown] = [line for line in run_cli("log", check=True).stdout.splitlines() if "session.died" in line]
    assert shown.endswith(f"\tsession.died\tpid {doomed.pid}: process {doomed.pid} is gone (told by its pid)"), shown


def test_locks_log_taken_waiting_timed_out_released_and_taken_over(tmp_path):
    holder = subprocess.Popen(["sleep", "600"])
    run_cli("lock", "acquire", "--pid", str(holder.pid), check=True)
    with pytest.raises(LockTimeout):
        NamedLock("end").acquire(timeout=0.2)
    holder.kill()
    holder.wait()
    lock = NamedLock("end")
    lock.acquire(timeout=5)
    lock.release()
    seen = [r["event"] for r in events()]
    assert seen == ["lock.taken", "lock.waiting", "lock.timed_out", "lock.taken_over", "lock.released"]
    taken, waiting, timed_out, over, released = events()
    assert taken["pid"] == holder.pid and waiting["holder_pid"] == holder.pid == timed_out["holder_pid"]
    assert over["from_pid"] == holder.pid and over["reason"] == f"process {holder.pid} is gone"
    assert over["pid"] == released["pid"] == os.getpid() and all(r["lock"] == "end" for r in events())


def test_a_forced_release_and_a_note_write_are_logged(tmp_path, keeper):
    run_cli("lock", "acquire", "--pid", str(keeper), check=True)
    run_cli("lock", "release", "--force", check=True)
    note = tmp_path / "note.md"
    run_cli("note", "append", str(note), input="hello\n", env={**os.environ, "CLAUDE_CODE_SESSION_ID": "noter-1"}, check=True)
    forced, written = events("lock.forced", "note.written")
    assert forced["pid"] == keeper and forced["by_pid"] != keeper
    assert (written["session"], written["path"], written["how"], written["bytes"]) == ("noter-1", str(note), "append", 6)


# -- the command --------------------------------------------------------------------------------


def write_some():
    eventlog.append("session.started", "aaaa1111-x", "alpha", pid=1)
    eventlog.append("edit.denied", "aaaa1111-x", tool="Write", target="/w/f.py", reason="claimed")
    eventlog.append("session.started", "bbbb2222-y", "beta", pid=2)
    eventlog.append("lock.taken", None, "beta", lock="end", pid=2)


def test_log_filters_by_session_project_and_since():
    write_some()
    by_session = cli_json("log", "--session", "aaaa1111")["result"]["events"]
    assert [r["event"] for r in by_session] == ["session.started", "edit.denied"]
    by_project = cli_json("log", "--project", "beta")["result"]["events"]
    assert [r["event"] for r in by_project] == ["session.started", "lock.taken"]
    alpha = cli_json("log", "--project", "alpha")["result"]["events"]
    assert [r["event"] for r in alpha] == ["session.started", "edit.denied"]  # the hook's, by its session
    assert cli_json("log", "--since", "1m")["result"]["events"] == cli_json("log")["result"]["events"]
    assert cli_json("log", "--since", "2000-01-01T00:00")["result"]["events"] != []
    future = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() + 3600))
    assert cli_json("log", "--since", future)["result"]["events"] == []
    assert [r["event"] for r in cli_json("log", "--limit", "1")["result"]["events"]] == ["lock.taken"]


def test_log_piped_is_tab_separated_and_jsonl_is_one_event_per_line():
    write_some()
    piped = run_cli("log", check=True).stdout.splitlines()
    assert piped[0].split("\t") == ["WHEN", "SESSION", "PROJECT", "EVENT", "WHAT"]
    assert piped[2].split("\t")[1:4] == ["aaaa1111-x", "alpha", "edit.denied"]  # its project, from its start
    assert piped[2].split("\t")[4] == "Write /w/f.py · claimed"
    lines = run_cli("log", "--jsonl", "--project", "beta", check=True).stdout.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["session.started", "lock.taken"]


def test_log_bad_input_is_one_line_and_exit_2():
    for args in (["--since", "soon"], ["--limit", "0"], ["--follow", "--json"], ["--json", "--jsonl"]):
        done = run_cli("log", *args)
        told = json.loads(done.stdout)["error"]["message"] if "--json" in args else done.stderr
        assert done.returncode == 2 and told.count("\n") <= 1 and "Traceback" not in told, args
        assert told.strip() and "--json" not in args or done.stderr == "", args
    assert run_cli("log").stdout == "no events yet\n"


def test_log_follow_prints_events_as_they_come():
    eventlog.append("session.started", "old-1", "p")
    follower = subprocess.Popen([SESSIONWARD, "log", "--follow", "--jsonl", "--project", "p"],
                                stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(follower.stdout.readline())
        assert first["session"] == "old-1"
        time.sleep(0.5)
        eventlog.append("session.started", "new-1", "p")
        eventlog.append("session.started", "other-1", "q")
        eventlog.append("session.ended", "new-1", "p")
        got = [json.loads(follower.stdout.readline())["event"] for _ in range(2)]
        assert got == ["session.started", "session.ended"]
    finally:
        follower.kill()
        follower.wait()
