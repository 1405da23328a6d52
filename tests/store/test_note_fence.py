"""Note writes on the shared store (sessionward.store.redis_notes) against a real
redis-server: the lease excludes 16 real processes (no lost append, no torn note; negative
control without it), a writer paused past its lease is refused by the fence (negative
control: without the check its late write lands), a copy that lags behind the last fenced
write is refused, the note key is the same for one vault note at two places, and after the
server lost its state fenced writes are refused until `doctor --reseed`."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessionward import notes
from sessionward.errors import NoteLagging, StoreStateLost
from sessionward.store import redis_notes, shared

from helpers import run_cli
from store.redis_server import RedisServer

WORKER = str(Path(__file__).with_name("note_worker.py"))


def worker(*args, env=None, **popen):
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})}, **popen)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def note(tmp_path):
    path = tmp_path / "vault" / "log.md"
    path.parent.mkdir()
    return str(path)


def versions(server, path) -> dict:
    key = redis_notes.note_key(os.path.realpath(path))
    with server.connect() as conn:
        flat = conn.call("HGETALL", f"{shared.prefix()}versions:note:{key}")
        mark = conn.call("GET", f"{shared.prefix()}mark:note:{key}")
    return {**{flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}, "mark": int(mark or 0)}


def test_writes_go_through_the_fence_and_record_what_they_left(shared_store, note):
    notes.write_note(note, "one\n")
    written = notes.append_note(note, "two\n")
    assert open(note, "rb").read() == b"one\ntwo\n" and written.sha256 == sha(b"one\ntwo\n")
    recorded = versions(shared_store, note)
    assert recorded["left"] == sha(b"one\ntwo\n") and recorded["old"] == sha(b"one\n")
    assert recorded["mark"] == 2 and "pending" not in recorded
    server = shared.connection(shared_store.url).target.display
    assert shared.known_fence(server) == 2 and shared.known_epoch(server)  # this host remembers both


# -- many processes ----------------------------------------------------------------------------


def run_appenders(note, claimed, processes=16, rounds=10, broken=""):
    env = {"WORKER_BROKEN": broken} if broken else {}
    procs = [worker("workload", note, claimed, rounds, 60, env=env) for _ in range(processes)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, [o[1][-500:] for o in outs]
    return [p.pid for p in procs]


@pytest.mark.slow
def test_sixteen_processes_append_on_redis_and_none_is_lost_or_torn(shared_store, note, tmp_path):
    pids = run_appenders(note, str(tmp_path / "claimed.txt"))
    lines = open(note).read().splitlines()
    assert sorted(lines) == sorted(f"{pid} {i}" for pid in pids for i in range(10))
    assert versions(shared_store, note)["left"] == sha(open(note, "rb").read())


@pytest.mark.slow
def test_negative_control_without_the_lease_appends_are_lost(shared_store, note, tmp_path):
    for _attempt in range(5):
        pids = run_appenders(note, str(tmp_path / "claimed.txt"), broken="no-lease")
        if len(open(note).read().splitlines()) < len(pids) * 10:
            return
        os.unlink(note)
    pytest.fail("16 writers without the lease never lost an append in 5 runs: the test cannot see it")


# -- a writer paused past its lease -----------------------------------------------------------


def paused_write(tmp_path, note, text: str, broken=""):
    """`sessionward note write NOTE --text-file DRAFT` stopped right before its fence check
    with a 300 ms lease; returns (the process, the draft)."""
    drafts = tmp_path / "drafts"
    drafts.mkdir(exist_ok=True)
    draft = drafts / "late.md"
    draft.write_text(text)
    marker = tmp_path / "paused"
    env = {"WORKER_TTL_MS": "300", "SESSIONWARD_TEST_NOTE_PAUSE": str(marker)}
    if broken:
        env["WORKER_BROKEN"] = broken
    proc = worker("cli", "note", "write", note, "--text-file", str(draft), env=env)
    deadline = time.monotonic() + 20
    while not (marker.exists() and marker.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    return proc, draft


def test_a_writer_paused_past_its_lease_is_refused_and_the_newer_note_stays(shared_store, note, tmp_path):
    notes.write_note(note, "first\n")
    late, draft = paused_write(tmp_path, note, "late\n")
    time.sleep(0.5)  # its 300 ms lease lapses while it is stopped
    newer = notes.write_note(note, "newer\n")  # takes the lease with the next fence, writes
    late.send_signal(signal.SIGCONT)
    out, err = late.communicate(timeout=30)
    assert late.returncode == 1, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and "was written by a newer writer (fence 3) after this writer's lease (fence 2) lapsed" \
        in lines[0], lines
    assert open(note, "rb").read() == b"newer\n"
    assert versions(shared_store, note)["left"] == newer.sha256
    assert draft.read_text() == "late\n"  # the text is kept, as on any failure


def test_negative_control_without_the_fence_check_the_late_write_lands(shared_store, note, tmp_path):
    notes.write_note(note, "first\n")
    late, _draft = paused_write(tmp_path, note, "late\n", broken="no-check")
    time.sleep(0.5)
    notes.write_note(note, "newer\n")
    late.send_signal(signal.SIGCONT)
    late.communicate(timeout=30)
    assert open(note, "rb").read() == b"late\n"  # the newer note is lost: what the fence prevents


# -- a copy that lags --------------------------------------------------------------------------


def test_a_copy_holding_an_older_fenced_version_is_refused(shared_store, note):
    notes.write_note(note, "v1\n")
    notes.write_note(note, "v2\n")
    with open(note, "w") as f:  # the sync has not delivered v2 here yet: the file is still v1
        f.write("v1\n")
    with pytest.raises(NoteLagging) as info:
        notes.append_note(note, "more\n")
    assert info.value.left == sha(b"v2\n") and info.value.found == sha(b"v1\n")
    assert open(note).read() == "v1\n"  # untouched
    result = run_cli("note", "append", note, "more")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "is behind: it holds an earlier version" in result.stderr
    with open(note, "w") as f:  # the sync catches up
        f.write("v2\n")
    notes.append_note(note, "more\n")
    assert open(note).read() == "v2\nmore\n"


def test_an_edit_made_outside_sessionward_is_not_taken_for_lag(shared_store, note):
    notes.write_note(note, "v1\n")
    with open(note, "w") as f:  # edited by hand, in Obsidian: content no fenced write left
        f.write("by hand\n")
    notes.append_note(note, "more\n")
    assert open(note).read() == "by hand\nmore\n"


def test_a_writer_killed_between_check_and_record_does_not_block_the_next(shared_store, note):
    notes.write_note(note, "v1\n")
    fence = redis_notes.RedisNoteFence(_target(note), 5.0)
    fence.check(b"v1\n", b"v2\n")  # allowed; then the note is replaced and the writer dies
    with open(note, "w") as f:
        f.write("v2\n")
    fence.leases.release(fence.lease)  # (its lease lapses in real life)
    notes.append_note(note, "v3\n")  # what it was about to leave is accepted
    assert open(note).read() == "v2\nv3\n"


def _target(note):
    from sessionward._userpath import resolve_for_replace

    return resolve_for_replace(note)


# -- the note's key ----------------------------------------------------------------------------


def test_one_vault_note_has_one_key_wherever_the_vault_is(tmp_path, monkeypatch):
    laptop = tmp_path / "Users" / "alice" / "Notes"
    remote = tmp_path / "home" / "alice" / "Notes"
    keys = []
    for vault in (laptop, remote):
        (vault / "daily").mkdir(parents=True)
        monkeypatch.setenv("SESSIONWARD_VAULT", str(vault))
        keys.append(redis_notes.note_key(os.path.realpath(vault / "daily" / "log.md")))
    assert keys == ["vault:Notes/daily/log.md"] * 2
    assert redis_notes.note_key("/srv/other/MEMORY.md") == "path:/srv/other/MEMORY.md"


# -- the server lost its state -----------------------------------------------------------------


def restart_without_data(server: RedisServer) -> None:
    server.kill()
    for name in os.listdir(server.directory):  # no AOF survived: an empty server
        if name.startswith("appendonly") or name.endswith(".rdb"):
            path = os.path.join(server.directory, name)
            subprocess.run(["rm", "-rf", path], check=True)
    server.start()
    shared.disconnect()  # this process's connection died with the server: the next operation makes a new one


def test_after_a_loss_fenced_writes_are_refused_until_doctor_reseeds(shared_store, note):
    notes.write_note(note, "before\n")
    notes.append_note(note, "again\n")
    restart_without_data(shared_store)
    with pytest.raises(StoreStateLost):
        notes.append_note(note, "refused\n")
    result = run_cli("note", "append", note, "refused")
    assert result.returncode == 3 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "lost its state" in result.stderr and "sessionward doctor --reseed" in result.stderr
    assert open(note).read() == "before\nagain\n"
    doctor = run_cli("doctor")
    assert "FAIL  shared state" in doctor.stdout
    assert "fix: sessionward doctor --reseed" in doctor.stdout
    fixed = run_cli("doctor", "--reseed")
    first = fixed.stdout.splitlines()[0]
    assert first.startswith("re-seeded the shared store: a loss was found") and "above 2" in first, fixed.stdout
    assert "ok    shared state" in fixed.stdout
    notes.append_note(note, "after\n")
    assert open(note).read() == "before\nagain\nafter\n"
    assert versions(shared_store, note)["mark"] == 3  # above every fence this host was handed
    again = run_cli("doctor", "--reseed")
    assert again.stdout.splitlines()[0].startswith("nothing to re-seed")


def test_a_loss_found_by_doctor_first_is_repaired_by_one_reseed_and_no_lock_fence_goes_back(shared_store, note,
                                                                                                 keeper):
    # After a restart without data, found by `doctor` before any fenced write: one
    # `doctor --reseed` is enough (no counter is left after the loss: the floor it sets is
    # what lifts them, and what doctor must count), and the `end` lock's next fence is above
    # every fence this host was handed, the lock's own included, not only the notes'.
    notes.write_note(note, "before\n")  # this host knows the epoch (note fence 1)
    fences = []
    for _ in range(4):
        taken = run_cli("lock", "acquire", "end", "--pid", str(keeper), "--json")
        assert taken.returncode == 0, taken.stderr
        fences.append(json.loads(taken.stdout)["result"]["lock"]["fence"])
        assert run_cli("lock", "release", "end", "--pid", str(keeper)).returncode == 0
    assert fences == [1, 2, 3, 4]
    restart_without_data(shared_store)
    found = run_cli("doctor")
    assert "FAIL  shared state" in found.stdout and "epoch key is gone" in found.stdout, found.stdout
    fixed = run_cli("doctor", "--reseed")
    assert fixed.stdout.splitlines()[0].startswith("re-seeded the shared store") and "above 4" in fixed.stdout
    assert "ok    shared state" in fixed.stdout, fixed.stdout
    assert "ok    shared state" in run_cli("doctor").stdout  # and it stays repaired
    taken = run_cli("lock", "acquire", "end", "--pid", str(keeper), "--json")
    assert json.loads(taken.stdout)["result"]["lock"]["fence"] > 4, taken.stdout
    notes.append_note(note, "after\n")  # fenced writes go through again
    assert versions(shared_store, note)["mark"] > 4


def test_a_host_that_only_took_locks_is_told_of_a_restart_without_data_and_held_to_it(shared_store, note, keeper):
    # A lock's take remembers the epoch as a note write does: after a restart that lost
    # everything, doctor names the cause (not "an older copy"), and what it says holds: the
    # next fenced note write is refused until the re-seed.
    for _ in range(3):
        assert run_cli("lock", "acquire", "end", "--pid", str(keeper)).returncode == 0
        assert run_cli("lock", "release", "end", "--pid", str(keeper)).returncode == 0
    restart_without_data(shared_store)
    found = run_cli("doctor")
    line = next(x for x in found.stdout.splitlines() if "shared state" in x)
    assert line.startswith("FAIL") and "epoch key is gone" in line and "restarted without its data" in line, line
    assert line.endswith("fenced note writes are refused"), line
    refused = run_cli("note", "append", note, "refused")
    assert refused.returncode == 3 and "lost its state" in refused.stderr, refused
    assert not os.path.exists(note)
    assert "ok    shared state" in run_cli("doctor", "--reseed").stdout
    assert run_cli("note", "append", note, "after").returncode == 0


def test_a_host_that_remembers_only_fences_is_told_and_doctor_holds_every_host_to_it(shared_store, note, keeper):
    # A host whose only memory of the server is the fences it was handed (its epoch memory
    # gone): doctor tells the loss from the fences, names the cause, and sets the re-seed
    # flag itself, so that "fenced note writes are refused" holds, for every host.
    for _ in range(3):
        assert run_cli("lock", "acquire", "end", "--pid", str(keeper)).returncode == 0
        assert run_cli("lock", "release", "end", "--pid", str(keeper)).returncode == 0
    os.unlink(os.path.join(os.environ["SESSIONWARD_HOME"], "sessionward", "store-epoch"))
    restart_without_data(shared_store)
    found = run_cli("doctor")
    line = next(x for x in found.stdout.splitlines() if "shared state" in x)
    assert "its fence counters are gone with its epoch key (this host was handed fences up to 3): it restarted " \
           "without its data; fenced note writes are refused" in line, line
    elsewhere = run_cli("note", "append", note, "refused", env={**os.environ, "SESSIONWARD_HOME": str(note) + ".h2"})
    assert elsewhere.returncode == 3 and "lost its state" in elsewhere.stderr, elsewhere  # a host that knew nothing
    assert "ok    shared state" in run_cli("doctor", "--reseed").stdout
    assert run_cli("note", "append", note, "after").returncode == 0


def test_another_server_is_a_first_use_there_not_a_loss(shared_store, note, tmp_path, monkeypatch):
    notes.write_note(note, "on the first server\n")
    (tmp_path / "second").mkdir()
    second = RedisServer(tmp_path / "second").start()
    try:
        monkeypatch.setenv("SESSIONWARD_STORE", second.url)
        shared.disconnect()
        doctor = run_cli("doctor")
        line = next(x for x in doctor.stdout.splitlines() if "shared state" in x)
        assert line.startswith("ok    shared state") and "(this host was handed up to 0)" in line, line
        assert run_cli("note", "append", note, "on the second").returncode == 0
        monkeypatch.setenv("SESSIONWARD_STORE", shared_store.url)  # and back: still known there, no loss
        shared.disconnect()
        back = run_cli("doctor")
        assert "ok    shared state" in back.stdout and "(this host was handed up to 1)" in back.stdout, back.stdout
    finally:
        second.cleanup()
        shared.disconnect()


def test_reseed_on_the_local_store_is_bad_input():
    result = run_cli("doctor", "--reseed")
    assert result.returncode == 2 and "only the shared store has fences" in result.stderr
