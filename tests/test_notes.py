"""Notes (sessionward.notes and `sessionward note append|write`): atomic, serialized writes of
shared text files; a read-modify-write refused when the note changed under it."""

import hashlib
import os
import pty
import subprocess
import sys

import pytest

from sessionward._atomic import WRITE_STEPS
from sessionward.errors import BadInput, Refused
from sessionward.notes import ABSENT, NoteChanged, NoteLockTimeout, append_note, write_note

from helpers import cli_json, hold_flock, run_cli

pytestmark = pytest.mark.usefixtures("store_backend")  # every note test, on every store backend


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def note(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir()
    return vault / "daily.md"


def test_append_creates_then_adds_with_a_newline_between(note):
    first = append_note(str(note), "first")
    assert (first.created, first.written, first.size) == (True, 5, 5)
    second = append_note(str(note), b"second\n")
    assert note.read_bytes() == b"first\nsecond\n"
    assert (second.created, second.written, second.sha256) == (False, 7, sha(b"first\nsecond\n"))
    append_note(str(note), "third\n")
    assert note.read_bytes() == b"first\nsecond\nthird\n"


def test_a_new_note_gets_the_umask_an_existing_one_keeps_its_mode(note):
    old = os.umask(0o022)
    try:
        append_note(str(note), "x")
        assert oct(os.stat(note).st_mode & 0o777) == oct(0o644)
        os.chmod(note, 0o664)  # group-writable, which the umask would strip from a new file
        write_note(str(note), "y")
        assert oct(os.stat(note).st_mode & 0o777) == oct(0o664)
    finally:
        os.umask(old)


def test_bytes_that_are_not_utf8_survive(note):
    append_note(str(note), b"caf\xe9\n")
    append_note(str(note), os.fsdecode(b"\xff\xfe\n"))  # as argv hands undecodable bytes over
    assert note.read_bytes() == b"caf\xe9\n\xff\xfe\n"


def test_a_symlinked_note_is_followed_and_the_link_stays(note, tmp_path):
    target = tmp_path / "real.md"
    target.write_text("real\n")
    note.symlink_to(target)
    written = write_note(str(note), "new\n")
    assert note.is_symlink() and target.read_text() == "new\n"
    assert written.path == str(target)


def test_links_on_the_way_are_resolved_like_the_kernel(note, tmp_path):
    """A symlinked directory, then `..`: the kernel goes to the physical parent of the
    link's target, and so does the note."""
    deep = tmp_path / "elsewhere" / "deep"
    deep.mkdir(parents=True)
    (note.parent / "sub").symlink_to(deep)
    written = append_note(str(note.parent / "sub" / ".." / "n.md"), "x")
    assert written.path == str(tmp_path / "elsewhere" / "n.md")
    assert (tmp_path / "elsewhere" / "n.md").read_text() == "x" and not (note.parent / "n.md").exists()


def test_a_dangling_symlink_is_refused(note, tmp_path):
    note.symlink_to(tmp_path / "missing.md")
    with pytest.raises(Refused, match="it is a symlink to .*missing.md, which does not exist"):
        append_note(str(note), "x")
    assert not (tmp_path / "missing.md").exists() and note.is_symlink()
    done = run_cli("note", "write", str(note), input="x")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "does not exist" in done.stderr


def test_a_loop_of_links_is_bad_input(note):
    note.symlink_to(note)
    with pytest.raises(BadInput, match="too many levels of symbolic links"):
        append_note(str(note), "x")


def test_expect_sha256_writes_only_over_what_was_read(note):
    with pytest.raises(NoteChanged):
        write_note(str(note), "x", expect_sha256=sha(b"anything"))
    assert not note.exists()
    write_note(str(note), "one\n", expect_sha256=ABSENT)
    with pytest.raises(NoteChanged) as refused:
        write_note(str(note), "two\n", expect_sha256=ABSENT)
    assert str(refused.value) == (
        f"{note} changed since it was read (its sha256 is now {sha(b'one' + bytes([10]))[:12]}, expected to be "
        "absent); read it again and redo the change on its current content; nothing was written"
    )
    write_note(str(note), "two\n", expect_sha256=sha(b"one\n").upper())
    with pytest.raises(NoteChanged):
        write_note(str(note), "three\n", expect_sha256=sha(b"one\n"))
    assert note.read_text() == "two\n"


@pytest.mark.parametrize("bad", ["", "zz", "0" * 63, "g" * 64])
def test_a_malformed_expected_digest_is_bad_input(note, bad):
    with pytest.raises(BadInput):
        write_note(str(note), "x", expect_sha256=bad)
    assert not note.exists()


def test_paths_that_cannot_be_notes(note, tmp_path):
    with pytest.raises(BadInput, match="no directory"):
        append_note(str(tmp_path / "missing" / "x.md"), "x")
    with pytest.raises(BadInput, match="not a regular file"):
        append_note(str(tmp_path), "x")
    with pytest.raises(BadInput):
        append_note("bad\0path", "x")


@pytest.mark.local_store_only  # holds the directory's flock, the local note lock (the lease's: tests/store/test_note_fence.py)
def test_a_writer_holding_the_note_past_the_timeout(note):
    append_note(str(note), "x")
    holder = hold_flock(note.parent)  # the note's lock is its directory
    try:
        with pytest.raises(NoteLockTimeout) as late:
            append_note(str(note), "y", timeout=0.2)
        assert late.value.exit_code == 1 and str(note) in str(late.value)
        assert note.read_text() == "x"
    finally:
        holder.kill()
        holder.wait()
    append_note(str(note), "y")  # the holder died: its flock went with it
    assert note.read_text() == "x\ny"


@pytest.mark.parametrize("step", WRITE_STEPS)
def test_a_crash_at_any_step_leaves_the_old_note_or_the_new_one(note, step, tmp_path):
    code = f"from sessionward.notes import append_note; append_note({str(note)!r}, 'more\\n')"
    # The note's write is the writer's last atomic write; on the shared store the fence file
    # (and, the first time, the epoch file) are written before it: count the step's hits.
    append_note(str(note), "the first write\n")  # the epoch is known: every later write is alike
    note.write_text("committed\n")
    trace = tmp_path / "trace"
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ, SESSIONWARD_TEST_CRASH_AT=f"trace:{trace}"), check=True)
    hits = trace.read_text().split().count(step)
    note.write_text("committed\n")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, SESSIONWARD_TEST_CRASH_AT=f"{step}@{hits}"))
    assert done.returncode == 91  # died at that very step
    assert note.read_text() in ("committed\n", "committed\nmore\n")
    if step in ("replaced", "dir-fsynced"):
        assert note.read_text() == "committed\nmore\n"
    append_note(str(note), "after\n")  # nobody waits on the dead writer
    assert note.read_text().endswith("after\n")


# -- many writers --------------------------------------------------------------------------------

APPENDER = """
import sys
from sessionward.notes import append_note
path, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    append_note(path, f"{me}-{i}\\n")
"""

RMW = """
import hashlib, sys
from sessionward.notes import ABSENT, NoteChanged, write_note
path, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    while True:  # read, change, write only over what was read: retry when another won
        try:
            old = open(path, "rb").read()
            expected = hashlib.sha256(old).hexdigest()
        except FileNotFoundError:
            old, expected = b"", ABSENT
        try:
            write_note(path, old + f"{me}-{i}\\n".encode(), expect_sha256=expected)
            break
        except NoteChanged:
            pass
"""


def run_writers(program: str, note, writers: int, each: int, **env) -> list[str]:
    procs = [subprocess.Popen([sys.executable, "-c", program, str(note), f"w{w}", str(each)],
                              env=dict(os.environ, **env)) for w in range(writers)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    return note.read_text().splitlines()


def expected_lines(writers: int, each: int) -> list[str]:
    return sorted(f"w{w}-{i}" for w in range(writers) for i in range(each))


@pytest.mark.slow
@pytest.mark.parametrize("program", [APPENDER, RMW], ids=["append", "write-expect"])
def test_concurrent_writers_lose_nothing(note, program):
    lines = run_writers(program, note, 8, 40)
    assert sorted(lines) == expected_lines(8, 40)


@pytest.mark.slow
@pytest.mark.local_store_only  # switches the flock off (the lease's control: tests/store/test_note_fence.py)
def test_without_the_lock_concurrent_appends_lose_some(note):
    """The negative control: the same appends with the lock switched off must lose lines."""
    for _ in range(3):
        if note.exists():
            note.unlink()
        lines = run_writers(APPENDER, note, 8, 40, SESSIONWARD_TEST_DISABLE_LOCKS="1")
        if sorted(lines) != expected_lines(8, 40):
            return
    pytest.fail("three unlocked runs lost no append: the test above could not catch a broken lock")


# -- the command line ------------------------------------------------------------------------------


def test_cli_append_from_an_argument_and_from_stdin(note):
    done = run_cli("note", "append", str(note), "from argv")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"appended 9 bytes to {note} (now 9 bytes, sha256 {sha(b'from argv')[:12]})\n"
    done = run_cli("note", "append", str(note), input="from stdin\n")
    assert done.returncode == 0
    assert note.read_text() == "from argv\nfrom stdin\n"
    envelope = cli_json("note", "append", str(note), "-", input="more")
    waited_s = envelope["result"].pop("waited_s")  # taking the shared store's lease is a round trip
    assert envelope["ok"] and envelope["result"] == {
        "path": str(note), "size": 25, "sha256": sha(b"from argv\nfrom stdin\nmore"), "written": 4,
        "created": False, "text_file": None}
    assert 0.0 <= waited_s < 0.5


def test_cli_write_with_expect_and_its_exit_codes(note):
    assert run_cli("note", "write", str(note), "v1\n", "--expect-sha256", "absent").returncode == 0
    stale = run_cli("note", "write", str(note), "v2\n", "--expect-sha256", "absent")
    assert (stale.returncode, stale.stdout) == (1, "")
    assert stale.stderr.startswith(f"sessionward: {note} changed since it was read") and stale.stderr.count("\n") == 1
    bad = run_cli("note", "write", str(note), "v2\n", "--expect-sha256", "nope")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    ok = run_cli("note", "write", str(note), "--expect-sha256", sha(b"v1\n"), "--quiet", input="v2\n")
    assert (ok.returncode, ok.stdout, note.read_text()) == (0, "", "v2\n")


def test_cli_refuses_to_wait_on_a_terminal_for_text(note):
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "sessionward"), "note", "append",
                               str(note)], stdin=terminal, capture_output=True, text=True, timeout=30)
    finally:
        os.close(controller)
        os.close(terminal)
    assert done.returncode == 2
    assert done.stderr == "sessionward: note append: give the text on stdin (a heredoc or a pipe), or as an argument\n"
    assert not note.exists()


def test_cli_odd_names_print_one_line_of_valid_utf8(tmp_path):
    # A file name may hold any byte but NUL and /: a newline, or bytes that are not UTF-8.
    odd = os.fsencode(str(tmp_path)) + b"/new\nline-\xff.md"
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "sessionward"), "note", "append", odd, "x"],
                          capture_output=True, timeout=30)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.count(b"\n") == 1
    assert done.stdout.decode("utf-8").startswith(f"appended 1 bytes to {tmp_path}/new\\nline-\\udcff.md (now 1 bytes")
    assert open(odd, "rb").read() == b"x"


def test_a_lone_surrogate_is_bad_input_not_a_crash(note):
    with pytest.raises(BadInput, match="lone surrogate"):
        append_note(str(note) + "\ud800", "x")
    with pytest.raises(BadInput, match="lone surrogate"):
        append_note(str(note), "\udfff")
    assert not note.exists()
