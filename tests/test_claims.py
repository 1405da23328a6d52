"""File claims: recording, reading, ending, ageing, damaged shards, refused symlinks, the
file-state comparison, and no lost claim under many real processes."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from sessionward import claims
from sessionward.claims import (
    HISTORY_S,
    ClaimsLockTimeout,
    claims_on,
    end_claims,
    file_state,
    record_claim,
    same_content,
)
from sessionward.errors import UnsafeState
from sessionward.identity import describe_checkout, read_process
from sessionward.store.local_claims import SCHEMA, claims_dir, shard_name

from helpers import hold_flock, make_git_repo, run_cli

pytestmark = pytest.mark.usefixtures("store_backend")  # every claim test, on every store backend

T0 = 1_700_000_000.0


@pytest.fixture
def target(tmp_path):
    path = tmp_path / "work" / "notes.md"
    path.parent.mkdir()
    path.write_text("hello\n")
    return str(path)


def shard_of(path: str) -> str:
    return os.path.join(claims_dir(), shard_name(path))


def read_shard(path: str) -> dict:
    with open(shard_of(path), "rb") as f:
        return json.load(f)


def record(path, owner, tool="Edit", now=T0, **kwargs):
    return record_claim(path, owner=owner, session_id=kwargs.pop("session_id", f"sess-{owner.pid}"), tool=tool, now=now, **kwargs)


def same_shard_paths(directory, count=2, avoid=None) -> list:
    """`count` distinct paths under `directory` that land in one shard."""
    by_shard: dict = {}
    for i in range(10_000):
        path = os.path.join(str(directory), f"f{i}.txt")
        name = shard_name(path)
        if avoid is not None and name == avoid:
            continue
        by_shard.setdefault(name, []).append(path)
        if len(by_shard[name]) == count:
            return by_shard[name]
    raise AssertionError("no collision found")


# -- recording and reading ---------------------------------------------------------------------


def test_shard_name_is_two_hex_digits_and_stable():
    name = shard_name("/a/b")
    assert len(name) == 7 and name.endswith(".json") and int(name[:2], 16) in range(256)
    assert shard_name("/a/b") == name
    assert len({shard_name(f"/p/{i}") for i in range(2000)}) == 256  # every shard is used


def test_record_then_claims_on_returns_it_with_the_file_state(target, owners, tmp_path):
    me = owners()
    repo = make_git_repo(tmp_path / "proj")
    checkout = describe_checkout(str(repo))
    before = os.stat(target)
    claim = record(target, me, tool="Write", checkout=checkout, session_id="abc")
    assert claims_on(target) == [claim]
    assert claim == {
        "session": "abc",
        "owner": me.to_record(),
        "project": "proj",
        "worktree": str(repo.resolve()),
        "branch": "main",
        "tool": "Write",
        "write": True,
        "at": T0,
        "state": {"size": 6, "mtime_ns": before.st_mtime_ns, "digest": claims.file_digest(target)},
        "ended": None,
    }
    assert len(claim["state"]["digest"]) == 32


def test_a_read_is_not_a_write_and_a_missing_file_has_no_state(tmp_path, owners):
    me = owners()
    missing = str(tmp_path / "nope.txt")
    claim = record(missing, me, tool="Read")
    assert claim["write"] is False and claim["state"] is None and claim["project"] is None
    assert claims_on(missing) == [claim]


@pytest.mark.parametrize("tool", claims.WRITE_TOOLS)
def test_every_write_tool_counts_as_a_write(target, owners, tool):
    assert record(target, owners(), tool=tool)["write"] is True


def test_an_explicit_state_is_kept_as_given(target, owners):
    state = {"size": 1, "mtime_ns": 2, "digest": "d"}
    assert record(target, owners(), state=state)["state"] == state


def test_claims_on_an_unclaimed_path_or_without_a_directory_is_empty(target):
    assert not os.path.exists(claims_dir())
    assert claims_on(target) == []


def test_one_claim_per_owner_and_path_the_newer_replaces(target, owners):
    me = owners()
    record(target, me, tool="Read", now=T0)
    newer = record(target, me, tool="Edit", now=T0 + 5)
    assert claims_on(target) == [newer]


def test_two_owners_are_both_kept_newest_last(target, owners):
    a, b = owners(), owners()
    first = record(target, a, now=T0)
    second = record(target, b, now=T0 + 1)
    assert claims_on(target) == [first, second]
    again = record(target, a, now=T0 + 2)  # a's newer claim moves to the end
    assert claims_on(target) == [second, again]


def test_at_most_max_claims_per_file_are_kept(target, owners, monkeypatch):
    monkeypatch.setattr(claims, "MAX_CLAIMS_PER_FILE", 3)
    people = [owners() for _ in range(4)]
    made = [record(target, o, now=T0 + i) for i, o in enumerate(people)]
    assert claims_on(target) == made[1:]


def test_shard_collisions_are_harmless(tmp_path, owners):
    p1, p2 = same_shard_paths(tmp_path)
    me, other = owners(), owners()
    c1 = record(p1, me)
    c2 = record(p2, other)
    assert shard_of(p1) == shard_of(p2)
    assert claims_on(p1) == [c1] and claims_on(p2) == [c2]
    end_claims(me, T0 + 1)
    assert claims_on(p2) == [c2] and claims_on(p1)[0]["ended"] == T0 + 1


@pytest.mark.local_store_only  # the claims directory's and shards' modes: the shared store has no files
def test_state_files_are_private(target, owners):
    record(target, owners())
    assert stat.S_IMODE(os.stat(claims_dir()).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(shard_of(target)).st_mode) == 0o600
    assert sorted(os.listdir(claims_dir())) == sorted(["claims.lock", shard_name(target)])


# -- ending ------------------------------------------------------------------------------------


def test_end_claims_marks_them_ended(tmp_path, owners):
    me, other = owners(), owners()
    p1, p2 = str(tmp_path / "a.txt"), str(tmp_path / "b.txt")
    assert shard_name(p1) != shard_name(p2)
    record(p1, me)
    record(p2, me)
    theirs = record(p1, other)
    end_claims(me, T0 + 10)
    mine_1 = [c for c in claims_on(p1) if c["owner"]["pid"] == me.pid]
    assert [c["ended"] for c in mine_1] == [T0 + 10]
    assert [c["ended"] for c in claims_on(p2)] == [T0 + 10]
    assert theirs in claims_on(p1)  # untouched
    later = record(p1, me, now=T0 + 15)  # after /clear, the same process: a new session's claim
    assert later["ended"] is None and [c["ended"] for c in claims_on(p1) if c["owner"]["pid"] == me.pid] == [None]
    end_claims(me, T0 + 20)  # ended again: everything the process claimed until now is ended
    assert [c["ended"] for c in claims_on(p1) if c["owner"]["pid"] == me.pid] == [T0 + 20]
    assert [c["ended"] for c in claims_on(p2)] == [T0 + 20]  # one entry per process: its latest end


def test_ended_json_keeps_one_entry_per_process(owners, target):
    """A process that ends a session on every /clear all day must not grow ended.json (each
    SessionEnd reads and rewrites it: it grew to thousands of entries under fuzzing)."""
    me, other = owners(), owners()
    record(target, me)
    for i in range(50):
        end_claims(me, T0 + i)
    end_claims(other, T0 + 60)
    ended = claims._facts(None).ended()  # ended.json's "owners", or the shared store's claims-ended
    assert [(e["owner"]["pid"], e["at"]) for e in ended] == [(me.pid, T0 + 49), (other.pid, T0 + 60)]


@pytest.mark.local_store_only  # shards' mtimes: the shared store keeps ended owners in one key
def test_end_claims_is_one_small_write_whatever_the_claims(tmp_path, owners):
    me = owners()
    made = [str(tmp_path / f"f{i}.txt") for i in range(300)]
    for path in made:
        record(path, me)
    shards_before = {n: os.stat(os.path.join(claims_dir(), n)).st_mtime_ns for n in os.listdir(claims_dir())}
    end_claims(me, T0 + 1)
    changed = [n for n in os.listdir(claims_dir()) if shards_before.get(n) != os.stat(os.path.join(claims_dir(), n)).st_mtime_ns]
    assert changed == ["ended.json"]
    assert all(claims_on(path)[0]["ended"] == T0 + 1 for path in made)


@pytest.mark.local_store_only  # the claims directory and a shard's mtime
def test_end_claims_without_any_claim_is_a_no_op(owners, target):
    me = owners()
    end_claims(me, T0)
    assert not os.path.exists(claims_dir())
    other = record(target, owners())
    before = os.stat(shard_of(target)).st_mtime_ns
    end_claims(me, T0)
    assert os.stat(shard_of(target)).st_mtime_ns == before  # shards are never rewritten by an end
    assert claims_on(target) == [other]


# -- ageing ------------------------------------------------------------------------------------


@pytest.mark.local_store_only  # two paths of one shard: on the shared store each path has its key (its ageing: tests/store/test_claims_backends.py)
def test_claims_older_than_history_are_dropped_when_their_shard_is_rewritten(tmp_path, owners):
    p1, p2 = same_shard_paths(tmp_path)
    old = record(p1, owners(), now=T0)
    record(p2, owners(), now=T0 + HISTORY_S - 1)
    assert claims_on(p1) == [old]  # still within HISTORY_S
    newest = record(p2, owners(), now=T0 + HISTORY_S + 1)
    assert claims_on(p1) == []
    assert p1 not in read_shard(p1)["files"]  # the path's entry is gone, not left empty
    assert claims_on(p2)[-1] == newest


def test_an_aged_claim_of_another_owner_on_the_same_path_is_dropped(target, owners):
    record(target, owners(), now=T0)
    fresh = record(target, owners(), now=T0 + HISTORY_S)
    assert claims_on(target) == [fresh]


# -- damaged shards ----------------------------------------------------------------------------


DAMAGED = {
    "not json": b"{not json at all",
    "torn": json.dumps({"schema": SCHEMA, "files": {"/x": []}}).encode()[:20],
    "empty": b"",
    "binary": b"\x00\xff\xfe" * 10,
    "unknown schema": json.dumps({"schema": "other/1", "files": {}}).encode(),
    "a list": b"[]",
    "files not a dict": json.dumps({"schema": SCHEMA, "files": []}).encode(),
}


@pytest.mark.local_store_only  # a damaged shard file (Redis's unreadable record: tests/store/test_claims_backends.py)
@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_shard_reads_as_empty_and_is_rewritten(target, owners, content):
    os.makedirs(claims_dir(), mode=0o700)
    with open(shard_of(target), "wb") as f:
        f.write(content)
    assert claims_on(target) == []
    claim = record(target, owners())
    assert claims_on(target) == [claim]
    assert read_shard(target) == {"schema": SCHEMA, "files": {target: [claim]}}
    kept = [n for n in os.listdir(claims_dir()) if n.startswith(os.path.basename(shard_of(target)) + ".corrupt-")]
    if content and content != DAMAGED["files not a dict"]:  # a document that is not ours: kept, never lost
        [kept] = kept
        with open(os.path.join(claims_dir(), kept), "rb") as f:
            assert f.read() == content
    else:
        assert kept == []


@pytest.mark.local_store_only  # the shard file's schema: a shared record is a bare list
def test_a_shard_of_a_newer_sessionward_is_left_untouched(target, owners):
    from sessionward.errors import StateTooNew

    os.makedirs(claims_dir(), mode=0o700)
    newer = json.dumps({"schema": "sessionward/2", "files": {}}).encode()
    with open(shard_of(target), "wb") as f:
        f.write(newer)
    assert claims_on(target) == []  # readers: advice only
    with pytest.raises(StateTooNew):
        record(target, owners())
    with open(shard_of(target), "rb") as f:
        assert f.read() == newer


@pytest.mark.local_store_only  # writes junk into the shard file
def test_wrong_shaped_entries_are_ignored_and_dropped(target, owners):
    other = owners()
    good = record(target, other, now=T0)
    doc = read_shard(target)
    doc["files"][target] += [
        "a string",
        {"owner": "x", "at": T0, "write": True},
        {"owner": {"pid": "1"}, "at": T0, "write": True},
        {"owner": {"pid": 1}, "at": "now", "write": True},
        {"owner": {"pid": 1}, "at": T0, "write": "yes"},
        {"owner": {"pid": 1}, "at": T0, "write": True, "state": "garbage"},
    ]
    doc["files"]["/another/path"] = 5
    doc["files"]["/a/third"] = {"not": "a list"}
    with open(shard_of(target), "w") as f:
        json.dump(doc, f)
    assert claims_on(target) == [good]
    assert claims_on("/another/path") == []
    mine = record(target, owners(), now=T0 + 1)
    assert read_shard(target)["files"] == {target: [good, mine]}


@pytest.mark.local_store_only  # writes junk into the shard file
def test_a_wrong_shaped_entry_for_the_recorded_path_is_replaced(target, owners):
    os.makedirs(claims_dir(), mode=0o700)
    for junk in (5, "text", {"a": 1}, None):
        with open(shard_of(target), "w") as f:
            json.dump({"schema": SCHEMA, "files": {target: junk}}, f)
        claim = record(target, owners())
        assert claims_on(target) == [claim], junk


# -- symlinks are refused, never followed ------------------------------------------------------


@pytest.mark.local_store_only  # symlinks in the claims directory
def test_a_symlink_at_a_shard_path_is_refused(target, owners, tmp_path):
    me = owners()
    os.makedirs(claims_dir(), mode=0o700)
    decoy = tmp_path / "decoy.json"
    decoy.write_text(json.dumps({"schema": SCHEMA, "files": {}}))
    os.symlink(decoy, shard_of(target))
    with pytest.raises(UnsafeState, match="it is a symlink"):
        record(target, me)
    with pytest.raises(UnsafeState, match="it is a symlink"):
        claims_on(target)
    assert json.loads(decoy.read_text()) == {"schema": SCHEMA, "files": {}}
    assert os.path.islink(shard_of(target))


@pytest.mark.local_store_only  # symlinks in the claims directory
def test_a_symlink_planted_as_the_claims_dir_is_refused(target, owners, tmp_path):
    me = owners()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    planted = {"schema": SCHEMA, "files": {target: [{"owner": me.to_record(), "at": T0, "write": True, "ended": None}]}}
    (elsewhere / shard_name(target)).write_text(json.dumps(planted))
    os.makedirs(os.path.dirname(claims_dir()), mode=0o700)
    os.symlink(elsewhere, claims_dir())
    with pytest.raises(UnsafeState) as info:
        record(target, me)
    assert info.value.path == claims_dir()
    with pytest.raises(UnsafeState, match="it is a symlink"):
        claims_on(target)
    with pytest.raises(UnsafeState, match="it is a symlink"):
        end_claims(me, T0)
    assert sorted(os.listdir(elsewhere)) == [shard_name(target)]  # nothing written through it
    assert json.loads((elsewhere / shard_name(target)).read_text()) == planted


@pytest.mark.local_store_only  # symlinks in the claims directory
def test_a_symlink_at_the_lock_path_is_refused(target, owners, tmp_path):
    os.makedirs(claims_dir(), mode=0o700)
    os.symlink(tmp_path / "lock-target", os.path.join(claims_dir(), "claims.lock"))
    with pytest.raises(UnsafeState, match="claims.lock: it is a symlink"):
        record(target, owners())
    assert not (tmp_path / "lock-target").exists()


# -- the lock ----------------------------------------------------------------------------------


@pytest.mark.local_store_only  # holds claims.lock's flock: the shared store takes no lock (compare-and-set)
def test_a_stuck_lock_holder_times_out_with_a_clear_error(target, owners, monkeypatch):
    os.makedirs(claims_dir(), mode=0o700)
    monkeypatch.setattr(claims, "CLAIMS_LOCK_TIMEOUT_S", 0.2)
    holder = hold_flock(os.path.join(claims_dir(), "claims.lock"))
    comm = read_process(holder.pid).comm
    try:
        started = time.monotonic()
        with pytest.raises(ClaimsLockTimeout) as info:
            record(target, owners())
        assert 0.15 < time.monotonic() - started < 2.0
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(info.value, TimeoutError)
    assert str(info.value) == (
        f"the claims lock {claims_dir()}/claims.lock stayed busy for 0.2 s: held by pid {holder.pid} ({comm}, running); "
        f"retry in a moment; if it stays stuck, end it (kill {holder.pid})"
    )
    assert claims_on(target) == []
    record(target, owners())  # the holder died: its flock went with it
    assert len(claims_on(target)) == 1


@pytest.mark.local_store_only  # holds claims.lock's flock: the shared store takes no lock (compare-and-set)
def test_claim_take_with_the_claims_lock_stuck_exits_1_as_every_lock_timeout(target, keeper):
    """A timed-out lock is a conflict (exit 1), whichever lock it is; the claims lock's
    timeout once exited 3, the code for a broken environment."""
    os.makedirs(claims_dir(), mode=0o700)
    holder = hold_flock(os.path.join(claims_dir(), "claims.lock"))
    try:
        result = run_cli("claim", "take", target, "--pid", str(keeper))
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sessionward: the claims lock {claims_dir()}/claims.lock stayed busy"), lines


# -- many processes ----------------------------------------------------------------------------


CHILD = r"""
import os, sys, time
from sessionward import claims
from sessionward.identity import resolve_owner
from sessionward.store import local_claims
if os.environ.get("TEST_CLAIMS_NO_LOCK") == "1":
    local_claims.lock_claims = lambda directory, timeout_s: os.open(os.devnull, os.O_RDONLY)  # the broken lock
owner = resolve_owner(os.getpid())
go, path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.0005)
for i in range(rounds):
    claims.record_claim(path, owner=owner, session_id="s%d" % os.getpid(), tool="Edit",
                        now=time.time(), state={"size": i, "mtime_ns": i, "digest": None})
"""


def run_writers(tmp_path, path, processes=8, rounds=50, broken=False) -> tuple[dict, list]:
    """Start `processes` writers at once; return ({pid: latest size seen}, [pids])."""
    env = dict(os.environ)
    env.pop("TEST_CLAIMS_NO_LOCK", None)
    if broken:
        env["TEST_CLAIMS_NO_LOCK"] = "1"
    go = tmp_path / f"go-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(go), path, str(rounds)], env=env,
                         stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n"
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0
        proc.stdout.close()
    latest = {c["owner"]["pid"]: c["state"]["size"] for c in claims_on(path)}
    return latest, [p.pid for p in procs]


@pytest.mark.slow
def test_no_claim_is_lost_under_eight_processes(tmp_path, target, store_backend):
    latest, pids = run_writers(tmp_path, target)
    assert latest == {pid: 49 for pid in pids}  # every owner's latest claim, and only that
    assert len(claims_on(target)) == 8
    if store_backend != "local":
        return
    doc = read_shard(target)
    assert list(doc["files"]) == [target] and len(doc["files"][target]) == 8


@pytest.mark.local_store_only  # breaks the local claims lock (Redis's control: tests/store/test_claims_backends.py)
@pytest.mark.slow
def test_negative_control_without_the_lock_claims_are_lost(tmp_path, target):
    """The same workload with the claims lock made a no-op in the children must lose claims, or the
    test above could not catch a broken lock."""
    for _attempt in range(5):
        latest, pids = run_writers(tmp_path, target, broken=True)
        if latest != {pid: 49 for pid in pids}:
            return
        os.unlink(shard_of(target))
    pytest.fail("8 unlocked writers never lost a claim in 5 runs: the test cannot see a broken lock")


# -- file state --------------------------------------------------------------------------------


def test_file_state_of_files_and_non_files(tmp_path, target):
    info = os.stat(target)
    assert file_state(target) == {"size": 6, "mtime_ns": info.st_mtime_ns, "digest": claims.file_digest(target)}
    assert file_state(target, with_digest=False) == {"size": 6, "mtime_ns": info.st_mtime_ns, "digest": None}
    assert file_state(str(tmp_path / "missing")) is None
    assert file_state(str(tmp_path)) is None  # a directory
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    assert file_state(fifo) is None  # and no blocking open
    assert file_state("bad\0path") is None


def test_the_digest_is_of_the_content(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    c.write_bytes(b"diff")
    assert claims.file_digest(str(a)) == claims.file_digest(str(b)) != claims.file_digest(str(c))
    assert claims.file_digest(str(tmp_path / "missing")) is None


def set_mtime(path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_touch_with_the_same_content_is_the_same(target):
    recorded = file_state(target)
    set_mtime(target, recorded["mtime_ns"] + 5_000_000_000)
    current = file_state(target, with_digest=False)
    assert current["mtime_ns"] != recorded["mtime_ns"]
    assert same_content(recorded, current, target) is True
    assert current["digest"] == recorded["digest"]  # computed on demand, and kept


def test_different_content_of_the_same_size_is_different(target):
    recorded = file_state(target)
    with open(target, "w") as f:
        f.write("HELLO\n")
    set_mtime(target, recorded["mtime_ns"] + 1_000_000_000)
    assert same_content(recorded, file_state(target, with_digest=False), target) is False


def test_a_different_size_is_different_without_reading(target, monkeypatch):
    recorded = file_state(target)
    with open(target, "a") as f:
        f.write("more")
    monkeypatch.setattr(claims, "file_digest", lambda *a: pytest.fail("read the file"))
    assert same_content(recorded, file_state(target, with_digest=False), target) is False


def test_same_size_and_mtime_is_the_same_without_reading(target, monkeypatch):
    recorded = file_state(target)
    with open(target, "w") as f:
        f.write("HELLO\n")  # same size...
    set_mtime(target, recorded["mtime_ns"])  # ...and the same mtime: taken as unchanged
    monkeypatch.setattr(claims, "file_digest", lambda *a: pytest.fail("read the file"))
    assert same_content(recorded, file_state(target, with_digest=False), target) is True


def test_existence_changes_are_changes(target):
    assert same_content(None, None, target) is True
    assert same_content(None, file_state(target), target) is False
    assert same_content(file_state(target), None, target) is False


def test_files_beyond_max_digest_bytes_compare_by_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "MAX_DIGEST_BYTES", 10)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 20)
    recorded = file_state(str(big))
    assert recorded["digest"] is None and recorded["size"] == 20
    assert claims.file_digest(str(big)) is None
    assert same_content(recorded, file_state(str(big)), str(big)) is True  # untouched
    set_mtime(big, recorded["mtime_ns"] + 1_000_000_000)  # a touch, same content
    assert same_content(recorded, file_state(str(big)), str(big)) is False  # cannot tell: changed
    small = tmp_path / "small.bin"
    small.write_bytes(b"y" * 10)
    assert file_state(str(small))["digest"] is not None  # at the limit: still hashed


def test_a_file_that_grows_past_the_limit_while_hashed_has_no_digest(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "MAX_DIGEST_BYTES", 10)
    grown = tmp_path / "grown.bin"
    grown.write_bytes(b"z" * 30)
    assert claims.file_digest(str(grown), size=5) is None  # the size said small, reading says big


@pytest.mark.local_store_only  # a FIFO at claims.lock
def test_fifo_at_the_claims_lock_is_refused(tmp_path, owners):
    from sessionward.errors import UnsafeState

    directory = claims_dir()
    os.makedirs(directory, mode=0o700)
    os.mkfifo(os.path.join(directory, "claims.lock"), 0o600)
    with pytest.raises(UnsafeState, match="claims.lock: it is not a regular file"):
        claims.end_claims(owners(), time.time())


@pytest.mark.local_store_only  # the shards' temp files
def test_a_claim_writer_killed_mid_write_leaves_no_temp_file_behind(target, owners):
    # Regression: shards and ended.json are replaced through temp files; a writer killed
    # before its rename left `.NN.json.PID.RAND.tmp` in the claims directory for good.
    code = ("import sys\nfrom sessionward.claims import record_claim\nfrom sessionward.identity import resolve_owner\n"
            f"record_claim({target!r}, owner=resolve_owner({{pid}}), session_id='a', tool='Edit', now={T0})\n")
    first, second = owners(), owners()
    env = dict(os.environ, SESSIONWARD_TEST_CRASH_AT="temp-written")
    record_claim(target, owner=first, session_id="s", tool="Read", now=T0)  # the directory exists
    assert subprocess.run([sys.executable, "-c", code.format(pid=second.pid)], env=env).returncode == 91
    assert [e for e in os.listdir(claims_dir()) if e.endswith(".tmp")]
    record_claim(target, owner=first, session_id="s", tool="Edit", now=T0 + 1)
    assert not [e for e in os.listdir(claims_dir()) if e.endswith(".tmp")]
    assert [c["tool"] for c in claims_on(target)] == ["Edit"]


# -- kept for later: claims made while the shared store did not answer ---------------------------


def kept_claim(owner, at: float, tool: str = "Write") -> dict:
    return {"session": f"sess-{owner.pid}", "owner": owner.to_record(), "project": None, "worktree": None,
            "branch": None, "tool": tool, "write": True, "at": at, "state": None, "ended": None}


def test_claims_kept_for_later_are_recorded_in_order_once(owners, tmp_path):
    a, b = owners(), owners()
    first, second = str(tmp_path / "one.txt"), str(tmp_path / "two.txt")
    claims.keep_for_later(first, kept_claim(a, T0))
    claims.keep_for_later(second, kept_claim(a, T0 + 1))
    kept = os.path.join(os.environ["SESSIONWARD_HOME"], "sessionward", "claims-kept")
    with open(kept, "ab") as f:
        f.write(b'{"path": "/x", "claim": {"not": "a claim"}}\nnot json\n')  # dropped, never block the rest
    claims.keep_for_later(first, kept_claim(b, T0 + 2, tool="Edit"))
    assert claims.record_kept(T0 + 3) == 5
    assert [(c["owner"]["pid"], c["tool"], c["at"]) for c in claims_on(first)] == [(a.pid, "Write", T0), (b.pid, "Edit", T0 + 2)]
    assert [(c["owner"]["pid"], c["at"]) for c in claims_on(second)] == [(a.pid, T0 + 1)]
    assert os.path.getsize(kept) == 0 and claims.record_kept(T0 + 4) == 0  # once: emptied, not removed


def test_a_store_that_fails_again_midway_leaves_the_rest_kept(owners, tmp_path, monkeypatch):
    from sessionward.errors import StoreUnavailable

    a = owners()
    paths = [str(tmp_path / f"f{i}.txt") for i in range(3)]
    for i, path in enumerate(paths):
        claims.keep_for_later(path, kept_claim(a, T0 + i))
    real, calls = claims._store_claim, []

    def fails_on_the_second(*args):
        calls.append(args[0])
        if len(calls) == 2:
            raise StoreUnavailable("redis://127.0.0.1:6390/0", "no reply within 0.25 s")
        return real(*args)

    monkeypatch.setattr(claims, "_store_claim", fails_on_the_second)
    with pytest.raises(StoreUnavailable):
        claims.record_kept(T0 + 5)
    monkeypatch.setattr(claims, "_store_claim", real)
    assert claims.record_kept(T0 + 6) == 2  # the one that failed, and the one after it
    assert [len(claims_on(path)) for path in paths] == [1, 1, 1]
