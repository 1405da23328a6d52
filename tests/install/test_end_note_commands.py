"""/end's note commands keep the note's text off every command line, Claude Code's included.

A process's arguments are readable by every local user in /proc/PID/cmdline while it runs.
Claude Code's Bash tool runs each command as
`/bin/bash -c "source <snapshot> && eval '<command>' < /dev/null && pwd -P >| <file>"`, so
the wrapper shell's own arguments hold the whole command while it runs: a heredoc's text
too. Its Write tool writes a file from inside the Claude process, with no command line.

The test plays Claude Code faithfully: the commands end.md tells the model to run are taken
from the installed template (fenced blocks and inline code); the draft goes where end.md's
allowed-tools let the Write tool write (its `Edit(//DIR/**)` rule), after the real PreToolUse
hook ran on that Write (it makes the drafts directory private), as a plain file write from
this process with the umask's mode, as the Write tool does (0644 under umask 022); then the
command runs inside that wrapper, while another thread reads the cmdline of every process,
the wrapper included. The secret must never show there, must reach the note, and the draft
must be gone.
"""

import hashlib
import json
import os
import re
import shlex
import subprocess
import threading
from pathlib import Path

from sessionward.install.slash_commands import render_template

from helpers import SESSIONWARD, run_cli


def note_commands(template: str, launcher: str) -> list[str]:
    """Every `LAUNCHER note ...` command of the template: fenced blocks, then inline code."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", template, re.S | re.M)
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", template, flags=re.S | re.M)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return [c for c in blocks + spans if c.startswith(f"{launcher} note ")]


def write_tool_dirs(template: str) -> list[str]:
    """The directories end.md's allowed-tools let the Write tool write in: `Edit(//DIR/**)`
    (Claude Code matches Write calls against Edit rules; `//` starts an absolute path)."""
    tools = next(line for line in template.splitlines() if line.startswith("allowed-tools:"))
    return re.findall(r"Edit\(/(/[^)]*?)/\*\*\)", tools)


class CmdlineWatcher(threading.Thread):
    """Reads /proc/*/cmdline in a loop: which processes it saw running `note`, which
    Claude-Code-shaped wrappers, and every cmdline that held the secret."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(daemon=True)
        self.secret = secret
        self.stop = threading.Event()
        self.note_processes: set[int] = set()
        self.wrappers: set[int] = set()
        self.leaks: list[bytes] = []

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmdline = f.read()
                except OSError:
                    continue
                if b"\0note\0" in cmdline and b"sessionward" in cmdline:
                    self.note_processes.add(int(pid))
                if cmdline.startswith(b"/bin/bash\0-c\0source ") and b"sessionward" in cmdline:
                    self.wrappers.add(int(pid))
                if self.secret in cmdline:
                    self.leaks.append(cmdline)


def run_as_claude_code(command: str, secret: bytes, cwd) -> tuple[subprocess.CompletedProcess, CmdlineWatcher]:
    """Run `command` the way Claude Code's Bash tool does, with the watcher reading /proc."""
    snapshot = cwd / "snapshot.sh"
    snapshot.write_text("# the shell snapshot Claude Code sources first\n")
    wrapper = (f"source {shlex.quote(str(snapshot))} && eval {shlex.quote(command)} < /dev/null "
               f"&& pwd -P >| {shlex.quote(str(cwd / 'cwd-file'))}")
    watcher = CmdlineWatcher(secret)
    watcher.start()
    try:
        done = subprocess.run(["/bin/bash", "-c", wrapper], cwd=cwd, capture_output=True, timeout=60)
    finally:
        watcher.stop.set()
        watcher.join()
    return done, watcher


def write_like_the_write_tool(draft, content: str, cwd) -> None:
    """Claude Code's Write: its PreToolUse hooks first (sessionward's, as installed), then
    the file written from inside its own process, creating missing directories."""
    payload = {"session_id": "swd-end-test", "transcript_path": str(cwd / "t.jsonl"), "cwd": str(cwd),
               "hook_event_name": "PreToolUse", "permission_mode": "acceptEdits", "tool_name": "Write",
               "tool_input": {"file_path": str(draft), "content": content}, "tool_use_id": "toolu_1"}
    hook = run_cli("hook", "PreToolUse", input=json.dumps(payload), cwd=cwd)
    assert (hook.returncode, hook.stdout, hook.stderr) == (0, "", ""), hook  # no objection
    draft.parent.mkdir(parents=True, exist_ok=True)
    draft.write_text(content)


def fill(command: str, note, draft, secret: str) -> str:
    current = note.read_bytes() if note.exists() else None
    digest = "absent" if current is None else hashlib.sha256(current).hexdigest()
    command = re.sub(r"\bFILE\b", shlex.quote(str(note)), command)
    if draft is not None:
        command = re.sub(r"\bDRAFT\b", shlex.quote(str(draft)), command)
    command = re.sub(r"\bSHA\b", digest, command)
    return re.sub(r"\bTEXT\b", secret, command)  # where an older end.md put the text itself


def test_end_md_note_commands_keep_the_text_off_every_command_line(tmp_path):
    template = render_template("end.md", SESSIONWARD).decode()
    commands = note_commands(template, SESSIONWARD)
    assert {c.split()[2] for c in commands} == {"append", "write"}, commands  # both are taught
    dirs = write_tool_dirs(template)
    note = tmp_path / "vault" / "daily.md"
    note.parent.mkdir()
    for n, command in enumerate(commands):
        secret = f"swd-secret-{n}-{os.urandom(6).hex()}"
        draft = Path(dirs[0], f"note-{n}.md") if dirs else None
        if draft:
            write_like_the_write_tool(draft, secret + "\n", tmp_path)
            assert draft.parent.stat().st_mode & 0o077 == 0, "the drafts directory is open to other users"
        done, watcher = run_as_claude_code(fill(command, note, draft, secret), secret.encode(), tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        assert watcher.wrappers and watcher.note_processes, "the watcher never saw the commands run: it proves nothing"
        assert watcher.leaks == [], f"{command!r} put the note's text on a command line: {watcher.leaks[:1]}"
        assert secret in note.read_text(), command
        assert dirs, "end.md lets the model write no draft"
        assert not draft.exists(), f"{command!r} left the draft behind"


def test_the_watcher_sees_a_heredoc_in_claude_codes_wrapper(tmp_path):
    """The negative control: the form end.md taught before drafts, a quoted heredoc, is
    caught in the wrapper shell's arguments (sessionward's own never hold it)."""
    note = tmp_path / "daily.md"
    secret = f"swd-secret-{os.urandom(6).hex()}"
    command = f"{SESSIONWARD} note append FILE <<'NOTE_END'\nTEXT\nNOTE_END"
    done, watcher = run_as_claude_code(fill(command, note, None, secret), secret.encode(), tmp_path)
    assert done.returncode == 0 and secret in note.read_text()
    assert watcher.leaks and all(leak.startswith(b"/bin/bash\0-c\0source ") for leak in watcher.leaks)


def test_the_watcher_sees_text_given_as_an_argument(tmp_path):
    """The negative control of the oldest form, `note append FILE "TEXT"`."""
    note = tmp_path / "daily.md"
    secret = f"swd-secret-{os.urandom(6).hex()}"
    done, watcher = run_as_claude_code(fill(f'{SESSIONWARD} note append FILE "TEXT"', note, None, secret),
                                       secret.encode(), tmp_path)
    assert done.returncode == 0 and secret in note.read_text()
    assert any(b"\0note\0" in leak for leak in watcher.leaks)
