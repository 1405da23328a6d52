"""Run the real Claude Code CLI offline against tests/e2e/mock_messages_api.py.

    home = ClaudeHome(Path(os.environ["HOME"]), api, claude_bin)   # or the `claude_home` fixture
    home.add_hook("PreToolUse", "sessionward hook PreToolUse", matcher="Edit|Write")
    s = home.start([write(proj / "x.txt", "hi\\n"), text("done")], cwd=proj)
    result = s.wait()              # ClaudeResult: returncode, stdout, stderr, seconds, ...
    api.tool_results(s.marker)     # what the session sent back to the model

Each session runs `claude -p "<marker> <prompt>" --permission-mode acceptEdits --allowedTools
Bash` as a background process (Popen) with its own marker, so several sessions run at once
against one stub, each with its own script. `session.pid` is the real `claude` process
(comm `claude`): the process hooks see as CLAUDE_PID and a test may `kill -9`.

Environment of a session: the test's own (HOME and SESSIONWARD_HOME from tests/conftest.py,
PATH with the venv's bin first so hook commands find `sessionward`), less every CLAUDE* /
ANTHROPIC_* / proxy variable, plus ANTHROPIC_BASE_URL=<stub>, ANTHROPIC_API_KEY=dummy,
TMPDIR=<per HOME>, and DISABLE_TELEMETRY / DISABLE_AUTOUPDATER / DISABLE_ERROR_REPORTING /
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1. With these, 2.1.331 opens exactly one TCP
connection, to the stub (checked with strace under `unshare -n`); without them it also sends
HEAD /api/hello to the base URL and looks up outside hosts. CLAUDE_CONFIG_DIR is left unset,
so user settings are $HOME/.claude/settings.json, where `sessionward install` puts its hooks.
An empty HOME is enough: in -p mode there is no onboarding or trust dialog.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e.mock_messages_api import MockMessagesAPI, Recorded, Step

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "scripts" / "claude-code"
VENV_BIN = os.path.dirname(sys.executable)

OFFLINE_ENV = {
    "ANTHROPIC_API_KEY": "dummy",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
_DROP_PREFIXES = ("CLAUDE", "ANTHROPIC_", "OTEL_")
_DROP = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
         "IS_SANDBOX", "CLAUDECODE"}


class ClaudeUnavailable(Exception):
    """The CLI is not installed and could not be (no npm, no registry...)."""


def find_claude(version: str | None = None) -> str:
    """The `claude` binary for the e2e tests: $SESSIONWARD_TEST_CLAUDE (set by scripts/test),
    else what scripts/claude-code installs or finds in its cache (an install takes about 7 s
    once). With `version` (the TUI tier drives two): $SESSIONWARD_TEST_CLAUDE_<version, dots
    as underscores>, else scripts/claude-code for that version. Raises ClaudeUnavailable."""
    given = os.environ.get(f"SESSIONWARD_TEST_CLAUDE_{version.replace('.', '_')}" if version else "SESSIONWARD_TEST_CLAUDE")
    if given:
        if os.access(given, os.X_OK):
            return given
        raise ClaudeUnavailable(f"SESSIONWARD_TEST_CLAUDE{'_' + version if version else ''}={given} is not an executable")
    error = os.environ.get("SESSIONWARD_TEST_CLAUDE_ERROR")
    if error:  # scripts/test tried already; don't try again for every test run
        raise ClaudeUnavailable(error)
    env = dict(os.environ, SESSIONWARD_TEST_CLAUDE_VERSION=version) if version else None
    try:
        proc = subprocess.run([str(INSTALLER)], capture_output=True, text=True, timeout=900, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ClaudeUnavailable(f"scripts/claude-code: {exc}") from exc
    path = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not os.access(path, os.X_OK):
        raise ClaudeUnavailable(f"scripts/claude-code failed (exit {proc.returncode}): "
                                f"{proc.stderr.strip()[-2000:]}")
    return path


def claude_version(claude_bin: str) -> str:
    out = subprocess.run([claude_bin, "--version"], capture_output=True, text=True, timeout=60).stdout
    return out.split()[0] if out.split() else ""


def write_script(path: Path, body: str) -> Path:
    """Write an executable script (give the #! line yourself); returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def proc_comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def proc_children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


@dataclass
class ClaudeResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float          # from start to exit
    pid: int
    marker: str
    debug_log: str          # Claude Code's --debug-file output ("" if none)

    def describe(self) -> str:
        tail = "\n".join(self.debug_log.splitlines()[-40:])
        return (f"claude pid {self.pid} exit {self.returncode} after {self.seconds:.1f}s\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}\n--- debug log (tail)\n{tail}")

    def check(self) -> "ClaudeResult":
        """This result if the CLI exited 0; else an AssertionError that shows everything."""
        if self.returncode != 0:
            raise AssertionError(self.describe())
        return self


@dataclass
class ClaudeSession:
    """One running `claude -p` process. `pid` is the claude process itself."""
    home: "ClaudeHome"
    marker: str
    cwd: Path
    proc: subprocess.Popen
    pid: int
    run_dir: Path
    started: float
    _result: ClaudeResult | None = field(default=None, repr=False)

    @property
    def api(self) -> MockMessagesAPI:
        return self.home.api

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 60.0) -> ClaudeResult:
        """Wait for the process to exit (killing it after `timeout` seconds, and then raising
        AssertionError with its output)."""
        if self._result is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"claude still running after {timeout}s, killed\n"
                                     + self._collect().describe()) from None
            self._result = self._collect()
        return self._result

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the claude process (SIGKILL by default: no SessionEnd then)."""
        if self.alive():
            os.kill(self.pid, sig)

    def _collect(self) -> ClaudeResult:
        def read(name: str) -> str:
            return (self.run_dir / name).read_text(errors="replace") if (self.run_dir / name).exists() else ""

        return ClaudeResult(self.proc.returncode if self.proc.returncode is not None else -999,
                            read("stdout"), read("stderr"), time.monotonic() - self.started,
                            self.pid, self.marker, read("debug.log"))

    # what the session said to the model (via the stub)
    def requests(self) -> list[Recorded]:
        return self.api.requests_for(self.marker)

    def first_request(self) -> Recorded:
        return self.api.first_request(self.marker)

    def tool_results(self) -> list[dict]:
        return self.api.tool_results(self.marker)

    def session_id(self, timeout: float = 30.0) -> str:
        """Claude Code's session id (from the first model request; waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for req in self.requests():
                if req.session_id:
                    return req.session_id
            if not self.alive() and not self.requests():
                break
            time.sleep(0.05)
        raise AssertionError(f"no model request from session {self.marker}")

    # keeping it alive
    def wait_held(self, step: int | None = None, timeout: float = 60.0) -> int:
        """Wait until the session is waiting on a `hold=True` step of its script: the process
        is then alive, mid-turn, its earlier tool calls done. Returns the step index."""
        try:
            return self.api.wait_held(self.marker, step, timeout)
        except TimeoutError:
            raise AssertionError("session never reached its held step\n"
                                 + (self._collect().describe() if not self.alive() else "(still running)")) from None

    def release(self, step: int | None = None) -> None:
        """Let the held step be answered; the script goes on."""
        self.api.release(self.marker, step)


class ClaudeHome:
    """A HOME for Claude Code sessions (settings in `<home>/.claude/settings.json`), the stub
    they talk to, and the CLI binary. Sessions started from one ClaudeHome share the HOME,
    as a user's sessions do."""

    def __init__(self, path: Path, api: MockMessagesAPI, claude_bin: str, runs_dir: Path | None = None):
        self.path = Path(path)
        self.api = api
        self.claude_bin = claude_bin
        self.tmpdir = self.path.parent / (self.path.name + "-tmp")
        self.runs_dir = runs_dir or self.path.parent / (self.path.name + "-claude-runs")
        for d in (self.path / ".claude", self.tmpdir, self.runs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.sessions: list[ClaudeSession] = []

    # settings
    @property
    def settings_path(self) -> Path:
        return self.path / ".claude" / "settings.json"

    def settings(self) -> dict:
        try:
            return json.loads(self.settings_path.read_text())
        except FileNotFoundError:
            return {}

    def write_settings(self, settings: dict) -> None:
        self.settings_path.write_text(json.dumps(settings, indent=2) + "\n")

    def add_hook(self, event: str, command: str, matcher: str | None = None,
                 timeout: int | None = None) -> None:
        """Add one command hook for `event` (e.g. "PreToolUse", matcher "Write") to settings.json."""
        settings = self.settings()
        handler: dict = {"type": "command", "command": command}
        if timeout is not None:
            handler["timeout"] = timeout
        group: dict = {"hooks": [handler]}
        if matcher is not None:
            group["matcher"] = matcher
        settings.setdefault("hooks", {}).setdefault(event, []).append(group)
        self.write_settings(settings)

    # sessions
    def env(self, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(_DROP_PREFIXES) and k not in _DROP}
        env.update(OFFLINE_ENV)
        env["HOME"] = str(self.path)
        env["TMPDIR"] = str(self.tmpdir)
        env["ANTHROPIC_BASE_URL"] = self.api.base_url
        env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env.update(extra or {})
        return env

    def start(self, steps: list[Step], *, cwd: Path, prompt: str = "do the task",
              args: list[str] | tuple = (), env: dict | None = None,
              skip_permissions: bool = False, marker: str | None = None) -> ClaudeSession:
        """Start `claude -p` in `cwd` with its own script of model turns; returns at once.
        The prompt carries the script's marker: put `{marker}` where it goes (a slash
        command's argument: "/end {marker}"), else it goes first. `args` are extra CLI flags; `env` extra/overriding environment variables;
        `skip_permissions` adds --dangerously-skip-permissions (and IS_SANDBOX=1, needed as root)."""
        marker = self.api.script(steps, marker)
        run_dir = self.runs_dir / marker
        run_dir.mkdir(parents=True)
        prompt = prompt.replace("{marker}", marker) if "{marker}" in prompt else f"{marker} {prompt}"
        cmd = [self.claude_bin, "-p", prompt,
               "--permission-mode", "acceptEdits", "--allowedTools", "Bash",
               "--debug-file", str(run_dir / "debug.log"), *args]
        extra = dict(env or {})
        if skip_permissions:
            cmd.append("--dangerously-skip-permissions")
            extra.setdefault("IS_SANDBOX", "1")
        with open(run_dir / "stdout", "wb") as out, open(run_dir / "stderr", "wb") as err:
            proc = subprocess.Popen(cmd, cwd=str(cwd), env=self.env(extra), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True)
        started = time.monotonic()
        session = ClaudeSession(self, marker, Path(cwd), proc, self._claude_pid(proc), run_dir, started)
        self.sessions.append(session)
        return session

    def run(self, steps: list[Step], *, cwd: Path, timeout: float = 60.0, **kw) -> ClaudeResult:
        """start() and wait(): the finished session's result."""
        return self.start(steps, cwd=cwd, **kw).wait(timeout)

    @staticmethod
    def _claude_pid(proc: subprocess.Popen, timeout: float = 10.0) -> int:
        """The claude process: the Popen child itself for the native build (exec'd by the
        name `claude`); for old cli.js builds the node process, which names itself `claude`
        soon after start. Never matched on `node`."""
        deadline = time.monotonic() + timeout
        while True:
            if proc_comm(proc.pid) in ("claude", "claude.exe"):
                return proc.pid
            for child in proc_children(proc.pid):
                if proc_comm(child) in ("claude", "claude.exe"):
                    return child
            if proc.poll() is not None or time.monotonic() > deadline:
                return proc.pid  # exited already (or never renamed): the best there is
            time.sleep(0.01)

    def close(self) -> None:
        """Kill every session's process group (each session starts its own) and reap it."""
        for s in self.sessions:
            # The whole group: also a Bash tool's `sleep` orphaned by a test's kill -9.
            try:
                os.killpg(s.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            s.proc.wait()
