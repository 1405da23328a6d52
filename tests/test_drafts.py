"""`note append|write --text-file FILE` (sessionward.drafts): which files may carry a note's
text, what becomes of them, and the drafts directory kept private before the Write tool
writes there. Through the real CLI: exit codes and the one line it prints."""

import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

from sessionward import drafts, paths
from sessionward.errors import BadInput

from helpers import cli_json, run_cli


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def draft_dir():
    return drafts.ensure_drafts_dir()


@pytest.fixture
def note(tmp_path):
    return tmp_path / "vault" / "daily.md"


@pytest.fixture
def open_dir():
    """A directory every user can enter, with no closed directory above it (not under
    pytest's own 0700 base)."""
    path = tempfile.mkdtemp(prefix="swd-open-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def draft(directory, name: str, text: bytes, mode: int = 0o644) -> str:
    """A file as Claude Code's Write tool leaves it: the umask's mode (0644 under 022)."""
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def one_line(done) -> str:
    assert done.stdout == "" and done.stderr.count("\n") == 1, done
    return done.stderr


def test_the_drafts_dir_is_outside_any_claude_dir(monkeypatch):
    """Claude Code refuses its Write tool in any path with a `.claude` component."""
    home = os.environ["HOME"]
    monkeypatch.delenv("SESSIONWARD_HOME")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert paths.state_dir() == os.path.join(home, ".claude")
    assert paths.drafts_dir() == os.path.join(home, ".local", "state", "sessionward", "drafts")
    monkeypatch.setenv("XDG_STATE_HOME", "/srv/state")
    assert paths.drafts_dir() == "/srv/state/sessionward/drafts"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # ignored, as the XDG spec says
    assert paths.drafts_dir() == os.path.join(home, ".local", "state", "sessionward", "drafts")


def test_a_draft_lands_in_the_note_and_is_removed(note, draft_dir):
    note.parent.mkdir()
    assert stat.S_IMODE(os.stat(draft_dir).st_mode) == 0o700
    first = draft(draft_dir, "daily-1.md", b"- 14:02 fixed the parser\n")
    done = run_cli("note", "append", str(note), "--text-file", first)
    assert (done.returncode, done.stderr) == (0, ""), done
    data = b"- 14:02 fixed the parser\n"
    assert done.stdout == f"appended 25 bytes to {note} (now 25 bytes, sha256 {sha(data)[:12]}); removed {first}\n"
    assert not os.path.exists(first) and note.read_bytes() == data
    # write, from a draft in a directory of its own under the drafts directory
    os.mkdir(os.path.join(draft_dir, "sub"))  # as the Write tool makes it: 0755, private all the same
    second = draft(os.path.join(draft_dir, "sub"), "resume.md", b"# Resume\n")
    envelope = cli_json("note", "write", str(note), "--expect-sha256", sha(data), "--text-file", second)
    assert envelope["ok"] and envelope["result"]["text_file"] == {"path": second, "draft": True, "removed": True}
    assert not os.path.exists(second) and note.read_bytes() == b"# Resume\n"


def test_a_failed_write_keeps_the_draft_and_says_where_it_is(note, draft_dir):
    note.parent.mkdir()
    note.write_bytes(b"another session's save\n")
    theirs = sha(note.read_bytes())
    kept = draft(draft_dir, "resume.md", b"my resume\n")
    done = run_cli("note", "write", str(note), "--expect-sha256", "absent", "--text-file", kept)
    assert done.returncode == 1
    assert one_line(done) == (
        f"sessionward: {note} changed since it was read (its sha256 is now {theirs[:12]}, "
        f"expected to be absent); read it again and redo the change on its current content; nothing was written; "
        f"the text is still in {kept}\n")
    assert open(kept, "rb").read() == b"my resume\n" and note.read_bytes() == b"another session's save\n"
    # bad input met after the text was read (a malformed digest) keeps it too
    done = run_cli("note", "write", str(note), "--expect-sha256", "xyz", "--text-file", kept)
    assert done.returncode == 2 and one_line(done).endswith(f"; the text is still in {kept}\n")
    assert os.path.exists(kept)


def test_a_file_outside_the_drafts_dir_is_the_callers_and_stays(note, tmp_path, draft_dir):
    note.parent.mkdir()
    mine = draft(tmp_path, "text.md", b"kept\n", mode=0o600)
    done = run_cli("note", "append", str(note), "--text-file", mine)
    assert done.returncode == 0 and "removed" not in done.stdout
    assert note.read_bytes() == b"kept\n" and open(mine, "rb").read() == b"kept\n"


def test_a_missing_file_is_bad_input(note, draft_dir):
    note.parent.mkdir()
    missing = os.path.join(draft_dir, "never-written.md")
    done = run_cli("note", "append", str(note), "--text-file", missing)
    assert done.returncode == 2
    assert one_line(done) == f"sessionward: no text file {missing}; write the text there first; nothing was written\n"
    assert not note.exists()


def test_a_symlink_is_refused_even_to_a_private_file(note, tmp_path, draft_dir):
    note.parent.mkdir()
    target = draft(tmp_path, "real.md", b"secret\n", mode=0o600)
    link = os.path.join(draft_dir, "link.md")
    os.symlink(target, link)
    done = run_cli("note", "append", str(note), "--text-file", link)
    assert done.returncode == 2
    assert one_line(done) == f"sessionward: refusing text file {link}: it is a symlink; give the file itself; nothing was written\n"
    assert os.path.islink(link) and os.path.exists(target) and not note.exists()


def test_a_directory_and_a_fifo_are_refused(note, draft_dir):
    note.parent.mkdir()
    done = run_cli("note", "append", str(note), "--text-file", draft_dir)
    assert done.returncode == 2 and "it is a directory" in one_line(done)
    fifo = os.path.join(draft_dir, "fifo")
    os.mkfifo(fifo, 0o600)
    done = run_cli("note", "append", str(note), "--text-file", fifo)  # must not wait for a writer
    assert done.returncode == 2 and "it is not a regular file" in one_line(done)
    assert not note.exists() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_file_other_users_can_read_is_refused(note, open_dir, draft_dir):
    note.parent.mkdir()
    shared = draft(open_dir, "text.md", b"secret\n", mode=0o644)
    done = run_cli("note", "append", str(note), "--text-file", shared)
    assert done.returncode == 2
    assert one_line(done) == (
        f"sessionward: refusing text file {shared}: other users can read it (mode 0644, and no directory above it is "
        f"closed to them); chmod 600 {shared}, or write it in {draft_dir}; nothing was written\n")
    assert os.path.exists(shared) and not note.exists()
    os.chmod(shared, 0o600)  # private by its own mode
    assert run_cli("note", "append", str(note), "--text-file", shared).returncode == 0
    closed = os.path.join(open_dir, "closed")
    os.mkdir(closed, 0o700)
    inside = draft(closed, "text.md", b"more\n", mode=0o644)  # private by the directory above
    assert run_cli("note", "append", str(note), "--text-file", inside).returncode == 0
    os.link(inside, os.path.join(open_dir, "second-name.md"))  # ...unless another name lies open
    done = run_cli("note", "append", str(note), "--text-file", inside)
    assert done.returncode == 2 and "other users can read it" in one_line(done)
    assert note.read_bytes() == b"secret\nmore\n"


def test_a_name_no_file_can_have_is_bad_input_not_a_crash():
    with pytest.raises(BadInput, match="holds a lone surrogate"):
        drafts.read_text_file("\ud800.md", 100)


def test_text_and_text_file_together_are_a_usage_error(note, draft_dir):
    note.parent.mkdir()
    path = draft(draft_dir, "x.md", b"x\n")
    done = run_cli("note", "append", str(note), "inline", "--text-file", path)
    assert done.returncode == 2 and "not two of them" in one_line(done)
    assert os.path.exists(path) and not note.exists()


@pytest.mark.slow
def test_another_users_file_is_refused(note, open_dir, draft_dir):
    """A file another user wrote (here in a shared directory) would put their words in the
    note, and be deleted as a draft: refused, though root could read it."""
    name = f"swd{os.getpid() % 100000}"
    subprocess.run(["useradd", "-M", "-N", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        entry = pwd.getpwnam(name)
        os.chmod(open_dir, 0o1777)
        planted = os.path.join(open_dir, "draft.md")
        subprocess.run(["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
                        "sh", "-c", f"umask 077; printf 'their words\\n' > {planted}"], check=True)
        assert os.stat(planted).st_uid == entry.pw_uid
        note.parent.mkdir()
        done = run_cli("note", "append", str(note), "--text-file", planted)
        assert done.returncode == 2
        assert one_line(done) == (f"sessionward: refusing text file {planted}: it belongs to uid {entry.pw_uid}, "
                                  f"not to you (uid 0); write the text to a file of your own; nothing was written\n")
        assert os.path.exists(planted) and not note.exists()
    finally:
        subprocess.run(["userdel", name], capture_output=True)


# -- the PreToolUse hook keeps the drafts directory private before a Write into it --------------


def pre_tool_use_write(path: str, cwd) -> subprocess.CompletedProcess:
    payload = {"session_id": "swd-drafts", "transcript_path": str(cwd / "t.jsonl"), "cwd": str(cwd),
               "hook_event_name": "PreToolUse", "permission_mode": "acceptEdits", "tool_name": "Write",
               "tool_input": {"file_path": path, "content": "secret"}, "tool_use_id": "toolu_1"}
    return run_cli("hook", "PreToolUse", input=json.dumps(payload), cwd=cwd)


def test_pre_tool_use_makes_the_drafts_dir_private_before_a_write(tmp_path):
    where = paths.drafts_dir()
    assert not os.path.exists(where)
    done = pre_tool_use_write(os.path.join(where, "daily-1.md"), tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o700
    os.chmod(where, 0o755)  # as the Write tool creates a missing directory
    assert pre_tool_use_write(os.path.join(where, "daily-2.md"), tmp_path).returncode == 0
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o700
    other = tmp_path / "elsewhere"
    other.mkdir(mode=0o755)  # a Write anywhere else changes nothing
    assert pre_tool_use_write(str(other / "x.md"), tmp_path).stdout == ""
    assert stat.S_IMODE(other.stat().st_mode) == 0o755


def test_pre_tool_use_denies_a_draft_where_the_dir_cannot_be_made_private(tmp_path, open_dir):
    where = paths.drafts_dir()
    os.makedirs(os.path.dirname(where))
    os.symlink(open_dir, where)  # the drafts directory replaced by a link to an open one
    done = pre_tool_use_write(os.path.join(where, "daily-1.md"), tmp_path)
    assert done.returncode == 0, done
    answer = json.loads(done.stdout)["hookSpecificOutput"]
    assert answer["permissionDecision"] == "deny"
    assert answer["permissionDecisionReason"].startswith(
        f"sessionward: the drafts directory cannot be made private, so a draft there could be read by other users: "
        f"refusing state path {where}: it is a symlink")

