"""/end's note commands keep the note's text off the command line.

A process's arguments are readable by every local user in /proc/PID/cmdline while it runs.
The commands end.md tells the model to run are taken from the installed template (fenced
blocks and inline code alike), run for real by bash (the script on bash's stdin, as typed in
a terminal) with a secret text, while another thread reads the cmdline of every process: the
secret must never show there, and must reach the note.

Not covered, and not coverable here: Claude Code's Bash tool runs each command as
`/bin/bash -c "... eval '<command>'"`, so while a call runs, the whole command, heredoc
included, is in that wrapper shell's own arguments. The heredoc keeps the text out of
sessionward's arguments, not out of Claude Code's wrapper.
"""

import hashlib
import os
import re
import shlex
import subprocess
import threading

from helpers import SESSIONWARD
from sessionward.install.slash_commands import render_template


def note_commands(template: str, launcher: str) -> list[str]:
    """Every `LAUNCHER note ...` command of the template: fenced blocks, then inline code."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", template, re.S | re.M)
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", template, flags=re.S | re.M)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return [c for c in blocks + spans if c.startswith(f"{launcher} note ")]


class CmdlineWatcher(threading.Thread):
    """Reads /proc/*/cmdline in a loop: which processes it saw running `note`, and whether
    any cmdline held the secret."""

    def __init__(self, secret: bytes) -> None:
        super().__init__(daemon=True)
        self.secret = secret
        self.stop = threading.Event()
        self.note_processes: set[int] = set()
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
                if self.secret in cmdline:
                    self.leaks.append(cmdline)


def run_watched(script: str, secret: bytes, cwd) -> tuple[subprocess.CompletedProcess, CmdlineWatcher]:
    watcher = CmdlineWatcher(secret)
    watcher.start()
    try:
        done = subprocess.run(["bash", "-s"], input=script.encode(), cwd=cwd, capture_output=True, timeout=60)
    finally:
        watcher.stop.set()
        watcher.join()
    return done, watcher


def fill(command: str, note, secret: str) -> str:
    current = note.read_bytes() if note.exists() else None
    digest = "absent" if current is None else hashlib.sha256(current).hexdigest()
    command = re.sub(r"\bFILE\b", shlex.quote(str(note)), command)
    command = re.sub(r"\bSHA\b", digest, command)
    return re.sub(r"\bTEXT\b", secret, command)


def test_end_md_note_commands_keep_the_text_off_the_command_line(tmp_path):
    template = render_template("end.md", SESSIONWARD).decode()
    commands = note_commands(template, SESSIONWARD)
    assert {c.split()[2] for c in commands} == {"append", "write"}, commands  # both are taught
    note = tmp_path / "vault" / "daily.md"
    note.parent.mkdir()
    for n, command in enumerate(commands):
        secret = f"swn-secret-{n}-{os.urandom(6).hex()}"
        (tmp_path / "new-content").write_text(secret + "\n")  # what a `< new-content` form would read
        done, watcher = run_watched(fill(command, note, secret), secret.encode(), tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        assert watcher.note_processes, "the watcher never saw the sessionward process: it proves nothing"
        assert watcher.leaks == [], f"{command!r} put the note's text on a command line: {watcher.leaks[:1]}"
        assert secret in note.read_text(), command


def test_the_watcher_sees_text_given_as_an_argument(tmp_path):
    """The negative control: the old form, `note append FILE "TEXT"`, is caught."""
    note = tmp_path / "daily.md"
    secret = f"swn-secret-{os.urandom(6).hex()}"
    done, watcher = run_watched(fill(f'{SESSIONWARD} note append FILE "TEXT"', note, secret), secret.encode(), tmp_path)
    assert done.returncode == 0 and secret in note.read_text()
    assert watcher.leaks
