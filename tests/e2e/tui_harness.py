"""Drive the real interactive Claude Code CLI (the full-screen TUI) through tmux, offline.

    tui = Tui(tmp_path / "tui", Path(os.environ["HOME"]), claude_bin)   # or the `tui` fixture
    a = tui.open(proj)                         # a tmux window running `claude` in proj
    a.wait_for("? for shortcuts")             # waits on screen text; fails showing the screen
    a.prompt(tui.api.script([write(proj / "x", "hi\\n"), text("done")]))   # typed, then Enter
    a.wait_for("done")
    a.status_line()                            # the rows under the input box
    a.wait_status("1 other session", timeout=5)   # waits on those rows alone
    a.exit()                                   # `/exit`, then waits for the process to end

How it stays offline and hermetic: one private tmux server (`tmux -S <socket>`) is started
inside `unshare -n` with only its loopback up, so every window, every `claude` and every hook
share one network namespace that reaches nothing but itself. The scripted Messages API stub
(mock_messages_api.py) listens on 127.0.0.1 of that same namespace: this process binds its
socket from a thread that joined the namespace (setns), so the stub stays in-process and the
test registers scripts and reads requests directly. A session picks its script by a marker in
the prompt typed last, so one session runs several scripted turns.

Each window runs `claude --permission-mode acceptEdits --allowedTools Bash --debug-file
<run>/debug.log` (mode and flags can be changed per session) in its cwd
with the environment of claude_harness.ClaudeHome (HOME, TMPDIR, PATH with the venv first,
ANTHROPIC_BASE_URL and the offline switches). $HOME/.claude.json is seeded so that neither
onboarding nor the trust and API-key dialogs appear (one `projects` entry per cwd). Windows
stay after their process exits (remain-on-exit), so the last screen can still be read.

Screens are read with `capture-pane -p`. The TUI wraps long lines at its own width, inside
boxes; `wait_for` therefore compares with every space and box-drawing character removed from
both the screen and the text looked for. Every wait has a timeout and fails with the last
screen and the tail of the session's debug log. Needs root (unshare), tmux and iproute2's `ip`.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e.claude_harness import ClaudeHome
from e2e.mock_messages_api import MockMessagesAPI

WIDTH, HEIGHT = 150, 50
POLL_S = 0.1
# The empty input box: "❯ " between two rules (2.1.331), "│ > " in a box (2.1.112).
_INPUT_BOX = re.compile(r"^\s*(❯|│\s*>|>)\s*(│\s*)?$", re.M)
_INVISIBLE = re.compile(r"[\s│┃╭╮╰╯─━┌┐└┘├┤┬┴┼╌╍▐▛▜▌▝▘█▗▖]+")
_CLONE_NEWNET = 0x40000000


class TuiUnavailable(Exception):
    """No tmux, no `ip`, or no right to make a network namespace."""


def compact(text: str) -> str:
    """`text` without spaces, line breaks and box drawing: what survives the TUI's wrapping."""
    return _INVISIBLE.sub("", text)


def missing_tools() -> str | None:
    """Why the TUI tier cannot run here, or None."""
    for tool in ("tmux", "ip", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if os.geteuid() != 0:
        return "needs root for `unshare -n` (a loopback-only network namespace)"
    return None


def _in_netns(pid: int, make):
    """Call make() on a thread that joined the network namespace of `pid`, and return what it
    returns: a socket made there stays there, whichever thread serves it later."""
    out: dict = {}

    def run():
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns into the TUI's network namespace failed")
            finally:
                os.close(fd)
            out["value"] = make()
        except BaseException as exc:  # handed to the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=run, name="tui-netns")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class Tui:
    """A private tmux server in its own loopback-only network namespace, the stub inside it,
    and a ClaudeHome (settings, environment) for the sessions opened in its windows."""

    def __init__(self, base: Path, home: Path, claude_bin: str, api_log=None):
        why = missing_tools()
        if why:
            raise TuiUnavailable(why)
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.socket = str(self.base / "tmux.sock")
        self.claude_bin = claude_bin
        self.sessions: list[TuiSession] = []
        self._names = 0
        start = (f"ip link set lo up && exec tmux -S {shlex.quote(self.socket)} -f /dev/null "
                 f"new-session -d -s tui -n idle -x {WIDTH} -y {HEIGHT} 'sleep 86400'")
        made = subprocess.run(["unshare", "-n", "sh", "-c", start], capture_output=True, text=True, timeout=30)
        if made.returncode != 0:
            raise TuiUnavailable(f"could not start tmux inside unshare -n: {made.stderr.strip()}")
        self.server_pid = int(self.tmux("display-message", "-p", "#{pid}").strip())
        self.tmux("set-option", "-gw", "remain-on-exit", "on")  # the last screen stays readable
        self.tmux("set-option", "-g", "history-limit", "5000")
        self.api = _in_netns(self.server_pid, lambda: MockMessagesAPI(log=api_log).start())
        self.home = ClaudeHome(home, self.api, claude_bin, runs_dir=self.base / "runs")

    # tmux
    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    # ~/.claude.json
    def seed(self, *cwds: Path) -> None:
        """Seed $HOME/.claude.json so the TUI starts straight into its input box in each cwd:
        onboarding done, the dummy API key approved, each cwd trusted."""
        path = self.home.path / ".claude.json"
        try:
            doc = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            doc = {}
        key = self.home.env()["ANTHROPIC_API_KEY"]
        doc.update({"hasCompletedOnboarding": True, "theme": "dark",
                    "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}})
        projects = doc.setdefault("projects", {})
        for cwd in cwds:
            projects.setdefault(str(cwd), {}).update(
                {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True})
        path.write_text(json.dumps(doc, indent=2) + "\n")

    # sessions
    def open(self, cwd: Path, *, permission_mode: str = "acceptEdits", args: list[str] | tuple = ("--allowedTools", "Bash"),
             env: dict | None = None, name: str | None = None) -> "TuiSession":
        """Start `claude` in a new window in `cwd` (seeded first); returns at once (wait on
        `ready()` or on screen text). By default edits in cwd and Bash are pre-approved (as
        in claude_harness), so every dialog on screen is one a hook asked for."""
        self._names += 1
        name = name or f"s{self._names}"
        cwd = Path(cwd)
        self.seed(cwd)
        run_dir = self.base / "runs" / name
        run_dir.mkdir(parents=True)
        cmd = [self.claude_bin, "--permission-mode", permission_mode, "--debug-file", str(run_dir / "debug.log"), *args]
        environ = self.home.env(env)
        launch = run_dir / "launch.sh"
        launch.write_text("#!/bin/sh\n"
                          + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(environ.items())
                                    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k))
                          + f"cd {shlex.quote(str(cwd))} || exit 97\n"
                          + "exec " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        launch.chmod(0o755)
        pane = self.tmux("new-window", "-d", "-P", "-F", "#{pane_id}", "-t", "tui:", "-n", name,
                         f"exec {shlex.quote(str(launch))}").strip()
        pid = int(self.tmux("display-message", "-p", "-t", pane, "#{pane_pid}").strip())
        session = TuiSession(self, name, pane, cwd, pid, run_dir, time.monotonic())
        self.sessions.append(session)
        return session

    def close(self) -> None:
        """Kill the tmux server (every window's process gets SIGHUP), then stop the stub."""
        for s in self.sessions:
            if s.alive():
                try:
                    os.kill(s.pid, 9)
                except ProcessLookupError:
                    pass
        self.tmux("kill-server", check=False)
        self.api.stop()


@dataclass
class TuiSession:
    """One `claude` in one tmux window (pane `pane`); `pid` is the process in the pane."""
    tui: Tui
    name: str
    pane: str
    cwd: Path
    pid: int
    run_dir: Path
    started: float
    _markers: list = field(default_factory=list, repr=False)

    # reading
    def screen(self, history: int = 0) -> str:
        """The pane as text (with `history` lines of scrollback above it)."""
        args = ["capture-pane", "-p", "-t", self.pane]
        if history:
            args += ["-S", str(-history)]
        return self.tui.tmux(*args, check=False)

    def debug_log(self) -> str:
        path = self.run_dir / "debug.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self) -> bool:
        return self.tui.tmux("display-message", "-p", "-t", self.pane, "#{pane_dead}", check=False).strip() == "0"

    def describe(self, screen: str | None = None) -> str:
        tail = "\n".join(self.debug_log().splitlines()[-25:])
        return (f"--- screen of {self.name} (pid {self.pid}, {'alive' if self.alive() else 'exited'}, "
                f"{time.monotonic() - self.started:.1f}s)\n{screen if screen is not None else self.screen()}"
                f"\n--- debug log (tail)\n{tail}")

    def wait_for(self, *texts: str, timeout: float = 60.0, history: int = 0, gone: bool = False) -> str:
        """Wait until every one of `texts` is on screen (compared without spaces or box
        drawing), or with gone=True until none is; returns the screen. Fails with it."""
        wanted = [compact(t) for t in texts]
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(history)
            flat = compact(screen)
            found = [w in flat for w in wanted]
            if (not any(found)) if gone else all(found):
                return screen
            if time.monotonic() > deadline or not self.alive():
                missing = [t for t, f in zip(texts, found) if f == gone]
                raise AssertionError(f"{self.name}: after {timeout:g}s the screen {'still shows' if gone else 'lacks'} "
                                     f"{missing!r}\n{self.describe(screen)}")
            time.sleep(POLL_S)

    def wait_any(self, *texts: str, timeout: float = 60.0) -> str:
        """Wait until one of `texts` is on screen; returns the one found."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            flat = compact(screen)
            for t in texts:
                if compact(t) in flat:
                    return t
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"{self.name}: after {timeout:g}s none of {texts!r} on screen\n{self.describe(screen)}")
            time.sleep(POLL_S)

    def ready(self, timeout: float = 60.0) -> str:
        """Wait for the empty input box; returns the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if _INPUT_BOX.search(screen):
                return screen
            if time.monotonic() > deadline or not self.alive():
                raise AssertionError(f"{self.name}: no empty input box after {timeout:g}s\n{self.describe(screen)}")
            time.sleep(POLL_S)

    def status_line(self, screen: str | None = None) -> list[str]:
        """The rows under the input box (the status line and the mode hints), stripped, of
        the screen now (or of `screen`)."""
        lines = (self.screen() if screen is None else screen).rstrip("\n").splitlines()
        box_end = None
        for i, line in enumerate(lines):
            s = line.strip()
            if s.startswith("╰") or (len(s) > 20 and set(s) <= {"─"}):
                box_end = i
        if box_end is None:
            return []
        return [line.strip() for line in lines[box_end + 1:] if line.strip()]

    def wait_status(self, *texts: str, timeout: float = 60.0, gone: bool = False) -> float:
        """Wait until the status line rows (status_line(), compared as wait_for compares)
        show every one of `texts`, or with gone=True none of them; returns the seconds
        waited. Fails with the screen."""
        wanted = [compact(t) for t in texts]
        start = time.monotonic()
        while True:
            screen = self.screen()
            rows = compact("".join(self.status_line(screen)))
            found = [w in rows for w in wanted]
            if (not any(found)) if gone else all(found):
                return time.monotonic() - start
            if time.monotonic() - start > timeout or not self.alive():
                missing = [t for t, f in zip(texts, found) if f == gone]
                raise AssertionError(f"{self.name}: after {timeout:g}s the status line {'still shows' if gone else 'lacks'} "
                                     f"{missing!r}\n{self.describe(screen)}")
            time.sleep(POLL_S)

    # typing
    def keys(self, *keys: str) -> None:
        """tmux key names: "Enter", "Down", "Escape", "C-c"..."""
        self.tui.tmux("send-keys", "-t", self.pane, *keys)

    def answer(self, key: str, dialog: str = "Do you want to proceed", timeout: float = 15.0) -> None:
        """Answer the permission dialog showing `dialog` with `key` ("Enter": the highlighted
        Yes; "Escape": No), pressing it again while the dialog stays: a key that arrives
        while the dialog is still being drawn can be lost."""
        deadline = time.monotonic() + timeout
        while True:
            self.keys(key)
            settle = time.monotonic() + 2.0
            while time.monotonic() < settle:
                if compact(dialog) not in compact(self.screen()):
                    return
                time.sleep(POLL_S)
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: the dialog stayed after {key}\n{self.describe()}")

    def type(self, text: str) -> None:
        self.tui.tmux("send-keys", "-t", self.pane, "-l", text)

    def prompt(self, text: str, *, settle: float = 5.0) -> None:
        """Type `text`, wait until it shows in the input box, then press Enter (separately:
        text and Enter in one burst read as a paste)."""
        self.type(text)
        self.wait_for(text[-40:], timeout=settle)
        self.keys("Enter")

    def command(self, slash: str, *, settle: float = 5.0) -> None:
        """Run a slash command ("/exit", "/start swmark..."): typed, then Escape closes the
        completion menu when it would swallow the Enter, then Enter."""
        self.prompt(slash, settle=settle)

    def exit(self, timeout: float = 30.0) -> None:
        """`/exit`, then wait until the process is gone (SessionEnd has run)."""
        self.command("/exit")
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: still running {timeout:g}s after /exit\n{self.describe()}")
            time.sleep(POLL_S)

    # what it said to the model
    def session_id(self, timeout: float = 30.0) -> str:
        """Claude Code's session id, from this session's first scripted model request."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for marker in self._markers:
                for req in self.tui.api.requests_for(marker):
                    if req.session_id:
                        return req.session_id
            time.sleep(POLL_S)
        raise AssertionError(f"{self.name}: no model request carried a session id\n{self.describe()}")

    def run(self, steps, *, prompt: str = "do the task", until: str | None = None, timeout: float = 60.0) -> str:
        """Type a prompt answered by `steps` (a mock script); with `until`, wait for that text."""
        marker = self.tui.api.script(steps)
        self._markers.append(marker)
        self.prompt(f"{marker} {prompt}")
        return self.wait_for(until, timeout=timeout) if until else marker
