"""Fixtures for the Claude Code hook tests: a stand-in Claude process and the real payloads.

FakeClaude: Claude Code runs every hook as `/bin/sh -c "<command>"`, a direct child of its own
process (comm `claude`). The stand-in is a small Python program started through a symlink
named `claude` (so its comm is `claude`) that stays alive and runs commands on request, as
`/bin/sh -c` children with the env, cwd and stdin asked for: the hooks see the process tree
they see under Claude Code. Requests and replies are JSON lines on its stdin and stdout.
Two flavours, as captured from the real CLI (tests/hooks/payloads, FACTS.md):
  "2.1.331"  sets CLAUDE_PID=<its pid>, CLAUDE_CODE_SESSION_ID=<the payload's session id>
             and CLAUDECODE=1 in the hook's environment
  "2.1.112"  sets neither (the owner is found by walking up to the `claude` ancestor)
Both set CLAUDE_PROJECT_DIR. `kill()` is a kill -9 (reaped: no zombie left behind).

Payloads: tests/hooks/payloads/<version>/<scenario>/NN-Event.json are copies of the captured
files; `stdin_payload` is what the hook read. Their /tmp/rc/<run>/ paths are rewritten at
load time to a temporary root whose proj/ is a real git repository.
<version>/statusline/*.json are the statusLine command's stdin, byte for byte (paths under
/tmp/rc/statusline/ shortened), read by tests/test_status_line_fast.py.

The autouse fixture of tests/conftest.py isolates HOME and SESSIONWARD_HOME; every FakeClaude
is started after it, so it and its hooks inherit them.
"""

import base64
import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from helpers import SESSIONWARD, make_git_repo

PAYLOADS_DIR = os.path.join(os.path.dirname(__file__), "payloads")
VERSIONS = ("2.1.331", "2.1.112")
SCENARIOS = ("basic", "deny-json", "deny-exit2")
HOOK_TIMEOUT_S = 30.0  # far above what a hook may take: reaching it is a hang

FAKE_CLAUDE_PROGRAM = r"""
import base64, json, os, subprocess, sys

flavour = sys.argv[1]
base = dict(os.environ)
for name in ("CLAUDE_PID", "CLAUDE_CODE_SESSION_ID", "CLAUDECODE", "CLAUDE_PROJECT_DIR"):
    base.pop(name, None)
out = sys.stdout
out.write(json.dumps({"pid": os.getpid()}) + "\n")
out.flush()
for line in sys.stdin:
    request = json.loads(line)
    env = dict(base)
    env.update(request.get("env") or {})
    if request.get("project_dir"):
        env["CLAUDE_PROJECT_DIR"] = request["project_dir"]
    if flavour == "2.1.331":
        env["CLAUDE_PID"] = str(os.getpid())
        env["CLAUDECODE"] = "1"
        if request.get("session_id"):
            env["CLAUDE_CODE_SESSION_ID"] = request["session_id"]
    for name in request.get("unset") or ():
        env.pop(name, None)
    reply = {"timed_out": False}
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", request["command"]],
            input=base64.b64decode(request["stdin"]),
            capture_output=True,
            env=env,
            cwd=request.get("cwd") or None,
            timeout=request["timeout"],
        )
        reply.update(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)
    except subprocess.TimeoutExpired as late:
        reply.update(rc=None, timed_out=True, stdout=late.stdout or b"", stderr=late.stderr or b"")
    except Exception as error:  # a request it cannot run (say, a NUL in the env): tell, stay alive
        reply.update(rc=None, error=repr(error), stdout=b"", stderr=b"")
    reply["stdout"] = base64.b64encode(reply["stdout"]).decode()
    reply["stderr"] = base64.b64encode(reply["stderr"]).decode()
    out.write(json.dumps(reply) + "\n")
    out.flush()
"""


class Ran:
    """What one command run by the FakeClaude did."""

    __slots__ = ("rc", "stdout", "stderr", "timed_out")

    def __init__(self, rc, stdout: bytes, stderr: bytes, timed_out: bool) -> None:
        self.rc = rc
        self.stdout = stdout.decode("utf-8", "surrogateescape")
        self.stderr = stderr.decode("utf-8", "surrogateescape")
        self.timed_out = timed_out

    @property
    def json(self):
        """stdout parsed as one JSON document (None when stdout is empty)."""
        return json.loads(self.stdout) if self.stdout else None

    def __repr__(self) -> str:
        return f"Ran(rc={self.rc}, stdout={self.stdout!r}, stderr={self.stderr!r}, timed_out={self.timed_out})"


class FakeClaude:
    """A live process with comm `claude` that runs hook commands as `/bin/sh -c` children."""

    def __init__(self, flavour: str, link: str, script: str) -> None:
        if flavour not in VERSIONS:
            raise ValueError(f"unknown flavour {flavour!r}")
        self.flavour = flavour
        self.proc = subprocess.Popen(
            [link, script, flavour], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        hello = self.proc.stdout.readline()
        if not hello:
            raise RuntimeError("the fake claude did not start")
        self.pid = json.loads(hello)["pid"]
        assert self.pid == self.proc.pid

    def run(self, command: str, stdin: bytes | str = b"", *, env=None, cwd=None, session_id=None,
            project_dir=None, unset=(), timeout: float = HOOK_TIMEOUT_S) -> Ran:
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8", "surrogatepass")
        request = {
            "command": command,
            "stdin": base64.b64encode(stdin).decode(),
            "env": dict(env or {}),
            "cwd": cwd,
            "session_id": session_id,
            "project_dir": project_dir or cwd,
            "unset": list(unset),
            "timeout": timeout,
        }
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake claude {self.pid} is gone")
        reply = json.loads(line)
        if reply.get("error"):
            raise RuntimeError(f"the fake claude could not run {command!r}: {reply['error']}")
        return Ran(reply["rc"], base64.b64decode(reply["stdout"]), base64.b64decode(reply["stderr"]), reply["timed_out"])

    def hook(self, event: str, payload, *, env=None, cwd=None) -> Ran:
        """Run `sessionward hook <event>` with `payload` (a dict is sent as JSON) on stdin, as
        Claude Code does: cwd is the payload's cwd when it is a directory."""
        if isinstance(payload, dict):
            # UTF-8 as Claude Code sends it; a lone surrogate (only possible inside a string)
            # becomes its JSON escape "\udXXX", which is what backslashreplace writes.
            raw = json.dumps(payload, ensure_ascii=False).encode("utf-8", "backslashreplace")
            session_id = payload.get("session_id") if isinstance(payload.get("session_id"), str) else None
            where = payload.get("cwd")
        else:
            raw = payload
            session_id = where = None
        if cwd is None:
            cwd = where if isinstance(where, str) and "\0" not in where and os.path.isdir(where) else None
        return self.run(f"{SESSIONWARD} hook {event}", raw, env=env, cwd=cwd, session_id=session_id)

    def kill(self) -> None:
        """kill -9, and reap it (a zombie would count as dead too, but leave nothing behind)."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.proc.stdout.close()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture
def fake_claude(tmp_path):
    """Factory: fake_claude("2.1.331" | "2.1.112") -> a running FakeClaude (all closed after)."""
    bin_dir = tmp_path / "fake-claude-bin"
    bin_dir.mkdir()
    script = bin_dir / "fake_claude.py"
    script.write_text(FAKE_CLAUDE_PROGRAM)
    link = bin_dir / "claude"
    link.symlink_to(sys.executable)
    started = []

    def start(flavour: str = "2.1.331") -> FakeClaude:
        claude = FakeClaude(flavour, str(link), str(script))
        started.append(claude)
        return claude

    yield start
    for claude in started:
        claude.close()


@pytest.fixture(params=VERSIONS)
def version(request) -> str:
    return request.param


# -- payloads --------------------------------------------------------------------------------


_RUN_DIR = re.compile(r"/tmp/rc/[^/\"]+")


class Payloads:
    """The captured payloads, their /tmp/rc/<run> paths rewritten to `root`."""

    def __init__(self, root: str) -> None:
        self.root = root

    def files(self, version: str, scenario: str) -> list:
        directory = os.path.join(PAYLOADS_DIR, version, scenario)
        return sorted(os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".json"))

    def load(self, path: str) -> dict:
        """The whole captured record, paths rewritten."""
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return json.loads(_RUN_DIR.sub(lambda m: self.root, text))

    def sequence(self, version: str, scenario: str) -> list:
        """[(event, stdin_payload)] in the order Claude Code ran them."""
        return [(record["event"], record["stdin_payload"]) for record in map(self.load, self.files(version, scenario))]

    def get(self, version: str, scenario: str, name: str) -> dict:
        """The stdin_payload of the file whose name ends with `name` (e.g. "03-PreToolUse")."""
        for path in self.files(version, scenario):
            if os.path.basename(path)[: -len(".json")].endswith(name):
                return self.load(path)["stdin_payload"]
        raise KeyError(f"{version}/{scenario}: no payload {name}")

    def session_ids(self, version: str) -> list:
        """The real session ids of the three captured runs of `version`."""
        return [self.get(version, scenario, "01-SessionStart")["session_id"] for scenario in SCENARIOS]


@pytest.fixture
def rc_root(tmp_path) -> str:
    """The root standing in for /tmp/rc/<run>: its proj/ is a git repository (branch main)."""
    root = os.path.realpath(tmp_path / "rc")
    os.mkdir(root)
    make_git_repo(pathlib.Path(root) / "proj")
    return root


@pytest.fixture
def project(rc_root) -> str:
    return os.path.join(rc_root, "proj")


@pytest.fixture
def payloads(rc_root) -> Payloads:
    return Payloads(rc_root)


# -- sessions: a FakeClaude driven with the real payloads of one version ------------------------


class Session:
    """One Claude Code session: a FakeClaude plus the payloads of its version, with this
    session's id and cwd put in. Each method runs one hook and returns what it did."""

    def __init__(self, claude: FakeClaude, payloads: Payloads, version: str, session_id: str, cwd: str) -> None:
        self.claude = claude
        self.payloads = payloads
        self.version = version
        self.session_id = session_id
        self.cwd = cwd
        self.env: dict = {}

    @property
    def pid(self) -> int:
        return self.claude.pid

    def payload(self, name: str, **changes) -> dict:
        payload = dict(self.payloads.get(self.version, "basic", name))
        old_cwd = payload["cwd"]
        payload["session_id"] = self.session_id
        payload["cwd"] = self.cwd
        payload["transcript_path"] = os.path.join(os.path.dirname(payload["transcript_path"]), f"{self.session_id}.jsonl")
        assert old_cwd  # the captured payload had one
        payload.update(changes)
        return payload

    def hook(self, event: str, payload, env=None) -> Ran:
        return self.claude.hook(event, payload, env={**self.env, **(env or {})})

    def start(self, source: str = "startup", **env) -> Ran:
        return self.hook("SessionStart", self.payload("01-SessionStart", source=source), env)

    def prompt(self, **env) -> Ran:
        return self.hook("UserPromptSubmit", self.payload("02-UserPromptSubmit"), env)

    def pre_tool(self, tool: str, tool_input: dict, **env) -> Ran:
        return self.hook("PreToolUse", self.payload("03-PreToolUse", tool_name=tool, tool_input=tool_input), env)

    def post_tool(self, tool: str, tool_input: dict, **env) -> Ran:
        return self.hook("PostToolUse", self.payload("04-PostToolUse", tool_name=tool, tool_input=tool_input), env)

    def pre_write(self, path: str, content: str = "new\n", **env) -> Ran:
        return self.pre_tool("Write", {"file_path": path, "content": content}, **env)

    def write(self, path: str, content: str = "new\n", **env) -> Ran:
        """The Write tool's effect on disk, then its PostToolUse."""
        with open(path, "w") as f:
            f.write(content)
        return self.post_tool("Write", {"file_path": path, "content": content}, **env)

    def pre_edit(self, path: str, **env) -> Ran:
        return self.pre_tool("Edit", {"file_path": path, "old_string": "a", "new_string": "b", "replace_all": False}, **env)

    def read(self, path: str, **env) -> Ran:
        return self.post_tool("Read", {"file_path": path}, **env)

    def pre_bash(self, command: str, **env) -> Ran:
        return self.hook("PreToolUse", self.payload("05-PreToolUse", tool_input={"command": command, "description": "x"}), env)

    def stop(self, **env) -> Ran:
        return self.hook("Stop", self.payload("08-Stop"), env)

    def end(self, reason: str = "other", **env) -> Ran:
        return self.hook("SessionEnd", self.payload("09-SessionEnd", reason=reason), env)


@pytest.fixture
def sessions(fake_claude, payloads, project, version):
    """Factory: sessions(n) -> the n-th session (0, 1, 2) of this test's version, each in its
    own FakeClaude and with the real session id of one captured run; cwd defaults to proj/."""

    def new(n: int, cwd: str | None = None, session_id: str | None = None, claude: FakeClaude | None = None) -> Session:
        claude = claude or fake_claude(version)
        sid = session_id or payloads.session_ids(version)[n]
        return Session(claude, payloads, version, sid, cwd or project)

    return new
