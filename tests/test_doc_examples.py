"""Every `$ command` example in README.md and docs/*.md is what the tool really prints.

An example is a fenced block holding lines `$ CMD` (or `DIR $ CMD`), each followed by the
output it shows. Each one is listed here, by its commands: either with a scenario that sets up
a throw-away home as the example's story says (files, sessions, a lock held by another
terminal), runs the commands in a real shell whose output is a terminal (paths print as ~,
tables aligned) and compares, or in NOT_RUN with the reason it cannot run here. A block found
in the docs and listed in neither fails, and so does a listed one no doc holds any more.

Compared after normalising, on both sides, what differs from run to run: PIDs (numbers of 3
digits or more), session ids (8 hex digits, or s-XXXXXXXX, or a full UUID), durations and
ages (`12s`, `3.2 s`, `2m ago`, `just now`, `<1m`, the event log's `waited_s 0.012`), UTC
stamps, the home directory (`/home/<user>` in a doc) and runs of spaces (a table's column
widths follow its widest PID).
A doc line `...` stands for any number of lines.

docs/RELIABILITY.md is not searched: it is the lead's record of test runs (figures, not
commands a reader types), and has no `$` transcript.

`python tests/test_doc_examples.py [WORDS]` prints the real transcript of every example whose
commands contain WORDS: how the docs' outputs are made.
"""

import difflib
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import sessionward

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from helpers import SESSIONWARD, VENV_BIN, make_git_repo  # noqa: E402

EXCLUDED_DOCS = {"docs/RELIABILITY.md"}  # the lead's record of runs, no transcript (see above)
PROMPT = re.compile(r"^\s*(?:(\S+)\s+)?\$ (.+)$")
FENCE = re.compile(r"^```")
DONE = "__doc_example_done__"


def doc_names() -> list[str]:
    names = ["README.md"] + sorted(f"docs/{n}" for n in os.listdir(os.path.join(ROOT, "docs")) if n.endswith(".md"))
    return [n for n in names if n not in EXCLUDED_DOCS]


class Example:
    """One fenced block with `$` lines: its commands, each with the output the doc shows."""

    def __init__(self, doc: str, line: int, lines: list[str]) -> None:
        self.doc, self.line, self.lines = doc, line, lines
        self.steps: list[tuple[str, str, list[str]]] = []  # (prompt dir, command, output lines)
        heredoc = None
        for text in lines:
            if heredoc is not None:  # a heredoc's body belongs to its command
                prompt, command, out = self.steps[-1]
                self.steps[-1] = (prompt, command + "\n" + text, out)
                heredoc = None if text == heredoc else heredoc
                continue
            found = PROMPT.match(text)
            if found:
                self.steps.append((found.group(1) or "", found.group(2), []))
                marker = re.search(r"<<'?(\w+)'?", found.group(2))
                heredoc = marker.group(1) if marker else None
            elif self.steps:
                self.steps[-1][2].append(text)
        if lines and lines[0].startswith("sessionward demo:"):
            self.key: tuple = ("sessionward demo",)  # the demo's own transcript, commands and all
        else:
            self.key = tuple(command.split("\n")[0] for _, command, _ in self.steps)

    def __repr__(self) -> str:
        return f"{self.doc}:{self.line}"


def find_examples() -> list[Example]:
    found = []
    for name in doc_names():
        with open(os.path.join(ROOT, name), encoding="utf-8") as f:
            text = f.read().splitlines()
        inside, start, block = False, 0, []
        for number, line in enumerate(text, 1):
            if FENCE.match(line):
                if inside and any(PROMPT.match(b) for b in block):
                    found.append(Example(name, start, block))
                inside, start, block = not inside, number + 1, []
            elif inside:
                block.append(line)
    return found


# -- what differs from run to run -----------------------------------------------------------

_NORMALISE = [
    (re.compile(r"/tmp/sessionward-demo-\w+"), "/tmp/sessionward-demo-X"),
    (re.compile(r"/home/[\w.-]+"), "/home/you"),
    (re.compile(r"\b\d{8}T\d{6}Z(?:-\d+)?\b"), "STAMP"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "ID"),
    (re.compile(r"\bs-[0-9a-f]{8}\b"), "ID"),
    # a short session id: any 8 hex digits, letters only too ("bdaeccab" came up in one run of
    # the demo, 1 in 2,500 of ids); no English word of 8 letters is made of a to f alone
    (re.compile(r"\b[0-9a-f]{8}\b"), "ID"),
    (re.compile(r"\b(\w+_s) \d+(?:\.\d+)?\b"), r"\1 T"),  # the event log's durations (waited_s 0.012)
    (re.compile(r"\bjust now\b|<1m\b|\b\d+(?:\.\d+)?\s?(?:ms|s|m|h|d)(?: ago)?\b"), "T"),
    (re.compile(r"\b\d{3,}\b"), "N"),
    (re.compile(r"[ \t]+"), " "),
    (re.compile(r"^ (?=N\b)"), ""),  # a right-aligned number (ps) starts a line, or not, by its width
]


# Where the package lives: the docs show scripts/install's venv; a test runs from a checkout.
PACKAGE_DIR = os.path.dirname(os.path.abspath(sessionward.__file__))
INSTALLED_PACKAGE = re.compile(r"/home/you/\.local/share/sessionward/venv/lib/python3\.\d+/site-packages/sessionward")


def normalise(line: str, home: str | None = None) -> str:
    line = INSTALLED_PACKAGE.sub("PACKAGE", line.replace(PACKAGE_DIR, "PACKAGE"))
    if home:
        line = line.replace(home, "/home/you")
    for pattern, replacement in _NORMALISE:
        line = pattern.sub(replacement, line)
    return line.rstrip()


def matches(expected: list[str], actual: list[str]) -> bool:
    """expected (a doc's lines, `...` for any lines) against actual, both normalised."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])


# -- a throw-away home and terminals in it ---------------------------------------------------

def as_shown(line: str) -> str:
    """A line as a terminal leaves it: a carriage return starts it over, ESC[K clears the rest."""
    return line.rpartition("\r")[2].replace("\033[K", "")


class Terminal:
    """A long-lived bash, its output a terminal (a pty), that runs one command at a time, as
    a person's terminal does: it is the owner of the sessions its commands register."""

    def __init__(self, lab: "Lab", cwd: str) -> None:
        self.lab = lab
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE, stdout=slave,
                                     stderr=slave, cwd=cwd, env=lab.env, text=True)
        os.close(slave)
        self.pid = self.proc.pid
        self.cwd = cwd

    def run(self, command: str, timeout: float = 30.0) -> list[str]:
        """Run `command` (stdin /dev/null unless it redirects its own); what the terminal
        showed, with `(exit status N)` after it as the docs write it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{{ {command}\n}} </dev/null; printf '\\n{DONE} %s\\n' \"$?\"\n")
        self.proc.stdin.flush()
        shown, deadline = b"", time.monotonic() + timeout
        while DONE.encode() not in shown or not shown.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.master], [], [], left)[0]:
                raise AssertionError(f"{command!r} did not finish in {timeout} s; it showed {shown!r}")
            shown += os.read(self.master, 65536)
        text, _, status = shown.decode().replace("\r\n", "\n").rpartition(f"\n{DONE} ")
        lines = [as_shown(line) for line in text.split("\n")]
        if lines and lines[-1] == "":
            lines.pop()  # the output's own last newline (the printf's \n follows it)
        if status.strip() != "0":
            lines.append(f"(exit status {status.strip()})")
        return lines

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        os.close(self.master)


class Lab:
    """A throw-away home (state in its ~/.claude, as installed), with the sessionward under
    test on PATH, and the terminals and processes a scenario starts there."""

    def __init__(self, base: str) -> None:
        self.home = os.path.join(base, "home")
        os.makedirs(os.path.join(self.home, ".claude"), mode=0o700)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SESSIONWARD_", "CLAUDE")) and k not in ("XDG_STATE_HOME", "XDG_CONFIG_HOME")}
        self.env.update(HOME=self.home, NO_COLOR="1", COLUMNS="200", LC_ALL="C.UTF-8",
                        PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
        self.terminals: list[Terminal] = []
        self.procs: list[subprocess.Popen] = []
        self.rewrite: dict[str, str] = {}  # a doc's literal -> what it is here (in commands and outputs)

    def path(self, *parts: str) -> str:
        return os.path.join(self.home, *parts)

    def terminal(self, *cwd: str) -> Terminal:
        where = self.path(*cwd)
        os.makedirs(where, exist_ok=True)
        term = Terminal(self, where)
        self.terminals.append(term)
        return term

    def write(self, relative: str, text: str, mode: int = 0o644) -> str:
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def sessionward(self, *args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([SESSIONWARD, *args], cwd=cwd or self.home, env=self.env, capture_output=True,
                              text=True, timeout=60)

    def claude(self) -> subprocess.Popen:
        """A live process named `claude` (a Claude Code session's owner), killed at the end."""
        link = self.path(".local", "bin", "claude")
        if not os.path.exists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(shutil.which("sleep") or "/bin/sleep", link)
        proc = subprocess.Popen([link, "600"])
        self.procs.append(proc)
        return proc

    def transcript(self, example: Example, terminals: list[Terminal], before: dict | None = None) -> list[str]:
        """Run the example's commands (the k-th in terminals[k], the last terminal for the
        rest), `before[k]()` first if given; the transcript as the doc writes it."""
        out: list[str] = []
        for k, (prompt, command, _) in enumerate(example.steps):
            if before and k in before:
                before[k]()
            term = terminals[min(k, len(terminals) - 1)]
            assert not prompt or prompt == os.path.basename(term.cwd), (
                f"{example!r}: '{prompt} $' run in {term.cwd}: the scenario's terminals do not follow the example")
            for literal, real in self.rewrite.items():
                command = command.replace(literal, real)
            out.append(f"{prompt} $ {example.steps[k][1]}" if prompt else f"$ {example.steps[k][1]}")
            out.extend(term.run(command))
        return out

    def close(self) -> None:
        for term in self.terminals:
            term.close()
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def expected_lines(example: Example) -> list[str]:
    """The block's lines, with a heredoc's body kept in its command (as transcript() writes it)."""
    lines = []
    for prompt, command, out in example.steps:
        lines.append(f"{prompt} $ {command}" if prompt else f"$ {command}")
        lines.extend(out)
    return lines


# -- the scenarios ---------------------------------------------------------------------------
# Each takes a Lab and the example, sets up what the example's story says, and returns the
# real transcript. Listed in SCENARIOS by the example's commands.

def _repo(lab: Lab, *parts: str) -> str:
    import pathlib

    return str(make_git_repo(pathlib.Path(lab.path(*parts))))


def installed(lab: Lab, example: Example) -> list[str]:
    """A home with ~/.claude and nothing installed yet."""
    return lab.transcript(example, [lab.terminal()])


def uninstall_keeps_what_is_yours(lab: Lab, example: Example) -> list[str]:
    term = lab.terminal()
    term.run("sessionward install")
    lab.write(".bashrc", "source ~/.claude/shell-config/end-lock-helpers.sh\n")
    with open(lab.path(".claude", "commands", "end.md"), "a") as f:
        f.write("4. push the notes repository\n")
    return lab.transcript(example, [term])


def edited_hooks(lab: Lab, example: Example) -> list[str]:
    term = lab.terminal()
    term.run("sessionward install")
    settings = lab.path(".claude", "settings.json")
    with open(settings) as f:
        doc = json.load(f)
    doc["hooks"]["Stop"][0]["hooks"][0]["command"] = "sessionward hook Stop 2>>~/hook.log"  # edited by the person
    doc["hooks"]["PostToolUse"].append(  # and one of theirs that runs it in a pipeline
        {"matcher": "Bash", "hooks": [{"type": "command", "command": "sessionward hook PostToolUse | tee -a /tmp/post.log"}]})
    with open(settings, "w") as f:
        json.dump(doc, f, indent=2)
    return lab.transcript(example, [term])


def end_wait_in_steps(lab: Lab, example: Example) -> list[str]:
    """Another Claude Code session (3f2a9c1e) holds end for its /end save; it releases it
    while the second step waits."""
    webapp = _repo(lab, "src", "webapp")
    lab.terminal("src", "webapp")
    other = lab.claude()
    lab.sessionward("register", "--pid", str(other.pid), "--session", "3f2a9c1e-0000-4000-8000-000000000001",
                    "--quiet", cwd=webapp)
    assert lab.sessionward("lock", "acquire", "end", "--pid", str(other.pid), "--purpose", "/end save",
                           cwd=webapp).returncode == 0

    def release_soon():
        threading.Timer(1.5, lambda: lab.sessionward("lock", "release", "end", "--pid", str(other.pid))).start()

    return lab.transcript(example, lab.terminals, before={1: release_soon})


def obsidian_vault_found(lab: Lab, example: Example) -> list[str]:
    vault = lab.path("Notes", "Vault")
    os.makedirs(os.path.join(vault, ".obsidian"))
    lab.write(".config/obsidian/obsidian.json", '{"vaults":{"a1":{"path":"%s","ts":1,"open":true}}}' % vault)
    return lab.transcript(example, [lab.terminal()])


def origin_session_manager(lab: Lab, example: Example) -> list[str]:
    term = lab.terminal()
    term.run("sessionward install --seed-paths")
    os.makedirs(lab.path("src", "windsurf"))
    lab.rewrite["4242"] = str(term.pid)  # the terminal's shell owns the session
    return [line.replace(str(term.pid), "4242") for line in lab.transcript(example, [term])]


def end_lock_two_terminals(lab: Lab, example: Example) -> list[str]:
    _repo(lab, "src", "webapp")
    first, second = lab.terminal("src", "webapp"), lab.terminal("src", "webapp")
    lab.write("src/webapp/save-notes.sh", '#!/bin/sh\necho "saving notes as pid $$; end.lock holds $(cat ~/.claude/end.lock)"\n',
              0o755)
    first.run("sessionward register --quiet")
    order = [first, first, first, first, second, first, first]
    return lab.transcript(example, order)


def shared_notes(lab: Lab, example: Example) -> list[str]:
    return lab.transcript(example, [lab.terminal("Vault")])


def notes_from_drafts(lab: Lab, example: Example) -> list[str]:
    term = lab.terminal("Vault")
    drafts = lab.path(".local", "state", "sessionward", "drafts")
    os.makedirs(drafts, mode=0o700)
    lab.write(".local/state/sessionward/drafts/daily-1.md", "- 14:02 session A: refactored the parser\n", 0o600)
    lab.write(".local/state/sessionward/drafts/resume-2.md", "# Resume\nnext: docs\n", 0o600)
    lab.write("Vault/resume.md", "# Resume\nnext: release\n")
    public = tempfile.mkdtemp(prefix="doc-example-")  # under /tmp, open to all, as /tmp/text.md is
    os.chmod(public, 0o755)
    lab.rewrite["/tmp/text.md"] = os.path.join(public, "text.md")
    with open(os.path.join(public, "text.md"), "w") as f:
        f.write("x\n")
    os.chmod(os.path.join(public, "text.md"), 0o644)
    try:
        return [line.replace(os.path.join(public, "text.md"), "/tmp/text.md")
                for line in lab.transcript(example, [term])]
    finally:
        shutil.rmtree(public)


def json_envelope(lab: Lab, example: Example) -> list[str]:
    return lab.transcript(example, [lab.terminal()])


def the_demo(lab: Lab, example: Example) -> list[str]:
    return lab.terminal().run("sessionward demo", timeout=60)


def different_projects(lab: Lab, example: Example) -> list[str]:
    _repo(lab, "src", "webapp")
    _repo(lab, "src", "notes")
    webapp, notes = lab.terminal("src", "webapp"), lab.terminal("src", "notes")
    return lab.transcript(example, [webapp, notes])


def worktrees_of_one_project(lab: Lab, example: Example) -> list[str]:
    _repo(lab, "src", "webapp")
    webapp, feature = lab.terminal("src", "webapp"), lab.terminal("src", "webapp-feature")  # empty until git adds it
    return lab.transcript(example, [webapp, webapp, feature, feature, webapp, feature, webapp, feature])


def one_worktree(lab: Lab, example: Example) -> list[str]:
    _repo(lab, "src", "webapp")
    first, second = lab.terminal("src", "webapp"), lab.terminal("src", "webapp")
    return lab.transcript(example, [first, second])


def _holder(lab: Lab, cwd: str, session: str) -> subprocess.Popen:
    """A Claude Code session (a live `claude` process) in cwd that holds end for its /end save."""
    proc = lab.claude()
    lab.sessionward("register", "--pid", str(proc.pid), "--session", session, "--quiet", cwd=cwd)
    assert lab.sessionward("lock", "acquire", "end", "--pid", str(proc.pid), "--purpose", "/end save",
                           cwd=cwd).returncode == 0
    return proc


def end_lock_of_a_dead_session(lab: Lab, example: Example) -> list[str]:
    webapp = _repo(lab, "src", "webapp")
    holder = _holder(lab, webapp, "3f2a9c1e-0000-4000-8000-000000000001")
    holder.kill()  # kill -9 in the middle of its save
    holder.wait()
    return lab.transcript(example, [lab.terminal("src", "webapp")])


def end_lock_of_a_stopped_session(lab: Lab, example: Example) -> list[str]:
    webapp = _repo(lab, "src", "webapp")
    holder = _holder(lab, webapp, "3f2a9c1e-0000-4000-8000-000000000001")
    os.kill(holder.pid, signal.SIGSTOP)  # Ctrl-Z (killed at the end, stopped or not)
    return lab.transcript(example, [lab.terminal("src", "webapp")])


def orphan_session(lab: Lab, example: Example) -> list[str]:
    webapp = _repo(lab, "src", "webapp")
    term = lab.terminal("src", "webapp")
    term.run("sessionward install --seed-paths && sessionward register --quiet")
    dead = lab.claude()
    lab.sessionward("register", "--pid", str(dead.pid), "--session", "3f2a9c1e-0000-4000-8000-000000000001",
                    "--quiet", cwd=webapp)
    dead.kill()
    dead.wait()
    lab.rewrite["4242"] = str(term.pid)
    return [line.replace(str(term.pid), "4242") for line in lab.transcript(example, [term])]


def installed_by_the_script(lab: Lab, example: Example) -> list[str]:
    """The layout scripts/install makes (a venv in ~/.local/share/sessionward, linked from
    ~/.local/bin; here a venv of links to the one under test, made in milliseconds), Claude
    Code 2.1.331 at ~/.local/bin/claude (a stand-in that answers --version as it does), an
    Obsidian vault at ~/Notes/Vault, and `sessionward install --yes` run from that launcher."""
    venv = lab.path(".local", "share", "sessionward", "venv")
    os.makedirs(os.path.join(venv, "bin"))
    real_venv = os.path.dirname(VENV_BIN)
    shutil.copy(os.path.join(real_venv, "pyvenv.cfg"), venv)
    os.symlink(os.path.join(real_venv, "lib"), os.path.join(venv, "lib"))
    os.symlink(os.path.realpath(os.path.join(VENV_BIN, "python")), os.path.join(venv, "bin", "python"))
    with open(SESSIONWARD) as f:
        script = f.read().split("\n", 1)[1]
    lab.write(".local/share/sessionward/venv/bin/sessionward", f"#!{venv}/bin/python\n{script}", 0o755)
    lab.write(".local/bin/claude", "#!/bin/sh\necho '2.1.331 (Claude Code)'\n", 0o755)
    os.symlink(os.path.join(venv, "bin", "sessionward"), lab.path(".local", "bin", "sessionward"))
    lab.env["PATH"] = lab.path(".local", "bin") + os.pathsep + lab.env["PATH"]
    # A wheel's modules are byte-compiled at install; here Python caches them on first use,
    # in the lab (this test's environment may say PYTHONDONTWRITEBYTECODE).
    lab.env["PYTHONPYCACHEPREFIX"] = lab.path(".cache", "pycache")
    vault = lab.path("Notes", "Vault")
    os.makedirs(os.path.join(vault, ".obsidian"))
    lab.write(".config/obsidian/obsidian.json", '{"vaults":{"a1":{"path":"%s","ts":1,"open":true}}}' % vault)
    term = lab.terminal()
    assert term.run("sessionward install --yes >/dev/null; echo $?") == ["0"]
    return lab.transcript(example, [term])


class ClaudeCode:
    """A stand-in for one Claude Code session (sessionward demo's: a live process named
    `claude` that runs each hook as `sh -c` with CLAUDE_PID and CLAUDE_CODE_SESSION_ID set, as
    2.1.331 does), sending the JSON Claude Code sends."""

    def __init__(self, lab: Lab, session_id: str, cwd: str) -> None:
        from sessionward.cli.demo import _STAND_IN

        link = lab.path(".local", "lib", "claude-code", "claude")  # its comm is then `claude`
        if not os.path.exists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.realpath(sys.executable), link)
        self.proc = subprocess.Popen([link, "-I", "-S", "-c", _STAND_IN], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=lab.env)
        lab.procs.append(self.proc)
        self.session_id, self.cwd = session_id, cwd

    def hook(self, event: str, **fields) -> str:
        """Run `sessionward hook EVENT` on this session's payload; what it printed."""
        payload = {"session_id": self.session_id, "transcript_path": f"/tmp/{self.session_id}.jsonl",
                   "cwd": self.cwd, "permission_mode": "default", "hook_event_name": event, **fields}
        asked = {"command": f"sessionward hook {event}", "stdin": json.dumps(payload), "cwd": self.cwd,
                 "session_id": self.session_id}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(asked) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        assert reply["status"] == 0, reply
        return reply["printed"]


def four_sessions_at_work(lab: Lab, example: Example) -> list[str]:
    """Four Claude Code sessions, each brought to its state by the hooks Claude Code runs: one
    asks its person's permission for Bash, one edits app.py (read before), one has ended its
    turn, one runs a Bash command."""
    webapp = _repo(lab, "src", "webapp")
    subprocess.run(["git", "worktree", "add", "-q", "../webapp-feature", "-b", "feature"], cwd=webapp, check=True)
    notes = _repo(lab, "src", "notes")
    app = lab.write("src/webapp/app.py", "def main():\n    return 'hello'\n")
    start = dict(source="startup")
    waiting = ClaudeCode(lab, "a1b2c3d4-0000-4000-8000-000000000001", webapp)
    editing = ClaudeCode(lab, "3f2a9c1e-0000-4000-8000-000000000002", webapp)
    idle = ClaudeCode(lab, "e5f60718-0000-4000-8000-000000000003", lab.path("src", "webapp-feature"))
    running = ClaudeCode(lab, "9d8c7b6a-0000-4000-8000-000000000004", notes)
    for session in (waiting, editing, idle, running):
        session.hook("SessionStart", **start)
        session.hook("UserPromptSubmit", prompt="go on")
    waiting.hook("PreToolUse", tool_name="Bash", tool_input={"command": "make deploy", "description": "Deploy"})
    waiting.hook("Notification", message="Claude needs your permission to use Bash", title="Permission needed",
                 notification_type="permission_prompt")
    editing.hook("PostToolUse", tool_name="Read", tool_input={"file_path": app},
                 tool_response={"type": "text", "file": {"filePath": app}})
    editing.hook("PreToolUse", tool_name="Edit",
                 tool_input={"file_path": app, "old_string": "'hello'", "new_string": "'hi'", "replace_all": False})
    idle.hook("Stop", stop_hook_active=False)
    running.hook("PreToolUse", tool_name="Bash",
                 tool_input={"command": "sessionward note append ~/Notes/today.md", "description": "Note"})
    return lab.transcript(example, [lab.terminal()])


def a_history_with_a_kill(lab: Lab, example: Example) -> list[str]:
    """Two sessions of webapp (owned by live processes that are not Claude Code: kind other):
    7f3a9c21 holds end while c04e5d88 waits 1 s for it and times out; 7f3a9c21 releases it;
    c04e5d88's process is killed (kill -9), and the next command (a `list`) sweeps it."""
    webapp = _repo(lab, "src", "webapp")
    first, second = (subprocess.Popen(["sleep", "600"]) for _ in range(2))
    lab.procs += [first, second]
    for proc, session in ((first, "7f3a9c21-aaaa-4bbb-8ccc-000000000001"), (second, "c04e5d88-aaaa-4bbb-8ccc-000000000002")):
        assert lab.sessionward("register", "--pid", str(proc.pid), "--session", session, "--quiet", cwd=webapp).returncode == 0
    assert lab.sessionward("lock", "acquire", "end", "--pid", str(first.pid), cwd=webapp).returncode == 0
    assert lab.sessionward("lock", "acquire", "end", "--pid", str(second.pid), "--timeout", "1", cwd=webapp).returncode == 1
    assert lab.sessionward("lock", "release", "end", "--pid", str(first.pid), cwd=webapp).returncode == 0
    second.kill()
    second.wait()
    assert "swept dead session c04e5d88" in lab.sessionward("list", cwd=webapp).stderr
    return lab.transcript(example, [lab.terminal()])


SCENARIOS = {
    ("cat ~/.claude/end.lock", "ps -p $(cat ~/.claude/end.lock)", "rm ~/.claude/end.lock"): end_lock_of_a_dead_session,
    ("sessionward lock status", "sessionward lock cleanup --dry-run", 'sessionward lock acquire --purpose "/end save"',
     "sessionward lock release"): end_lock_of_a_dead_session,
    ("sessionward lock status", "sessionward lock acquire --timeout 1", "sessionward lock release end --force"):
        end_lock_of_a_stopped_session,
    ("sessionward prune", "python3 ~/scripts/obsidian_session_manager.py list",
     "python3 ~/scripts/obsidian_session_manager.py unregister 4242"): orphan_session,
    ("sessionward register", "sessionward register", "sessionward list", "sessionward check"): different_projects,
    ("git worktree add -q ../webapp-feature -b feature", "sessionward register", "sessionward register",
     "sessionward check", 'sessionward lock acquire --purpose "/end save"', "sessionward lock check",
     "sessionward lock release", "sessionward lock check"): worktrees_of_one_project,
    ("sessionward register", "sessionward register        # a second terminal, same checkout", "sessionward check",
     """printf '{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"git checkout -b fix"},"""
     """"cwd":"%s"}' "$PWD" | sessionward hook PreToolUse"""): one_worktree,
    ("sessionward demo",): the_demo,
    ("sessionward doctor",): installed_by_the_script,
    ("sessionward watch --once",): four_sessions_at_work,
    ("sessionward log",): a_history_with_a_kill,
    ("sessionward install",): installed,
    ("sessionward uninstall",): uninstall_keeps_what_is_yours,
    ("sessionward install", "sessionward uninstall"): edited_hooks,
    ('sessionward lock acquire end --step 0 --exit-zero --purpose "/end save"',
     'sessionward lock acquire end --step 1 --exit-zero --purpose "/end save"'): end_wait_in_steps,
    ("sessionward install </dev/null", "sessionward install --yes"): obsidian_vault_found,
    ("sessionward install --seed-paths", "sessionward install --seed-paths"): installed,
    ("python3 ~/scripts/obsidian_session_manager.py register windsurf-project ~/src/windsurf",
     "python3 ~/scripts/obsidian_session_manager.py check windsurf-project",
     "python3 ~/scripts/obsidian_session_manager.py unregister 4242"): origin_session_manager,
    ('sessionward lock acquire --purpose "/end save"', "cat ~/.claude/end.lock", "ps -p $(cat ~/.claude/end.lock)",
     "sessionward lock status", "sessionward lock acquire --timeout 3     # from another terminal",
     "sessionward lock release", "sessionward lock run end -- ./save-notes.sh"): end_lock_two_terminals,
    ("cd ~/Vault", "sessionward note append daily.md <<'EOF'",
     'echo "- 14:03 session B: fixed the login bug" | sessionward note append daily.md',
     "printf '# Resume\\nnext: tests\\n' | sessionward note write resume.md --expect-sha256 absent",
     "printf '# Resume\\nnext: docs\\n' | sessionward note write resume.md --expect-sha256 absent"): shared_notes,
    ("sessionward note append daily.md --text-file ~/.local/state/sessionward/drafts/daily-1.md",
     "sessionward note write resume.md --expect-sha256 absent --text-file ~/.local/state/sessionward/drafts/resume-2.md",
     "sessionward note append daily.md --text-file /tmp/text.md"): notes_from_drafts,
    ('sessionward register "" /tmp --json',): json_envelope,
}

NOT_RUN = {
    ("sessionward claim take shared.txt",):
        "a screen of Claude Code's full-screen TUI (2.1.331), not a shell: tests/e2e/test_tui.py drives the real one",
    ("sessionward list", "sessionward check --pid 7603", "sessionward prune --force s-b4be7aa8"):
        "needs a session in a real PID namespace (unshare -fp --mount-proc, root): tests/torture/test_namespaces.py",
    ("sessionward list",):
        "the same sandbox, killed with kill -9: tests/torture/test_namespaces.py",
    ("sessionward list", "sessionward prune", "sessionward lock status", "sessionward lock release end --force",
     "sessionward prune --force 7f3a9c2e"):
        "needs a session and a lock registered from another kernel (a VM sharing ~/.claude)",
}


def examples_by_key() -> dict:
    found: dict = {}
    for example in find_examples():
        found.setdefault(example.key, []).append(example)
    return found


def test_every_example_is_checked_or_says_why_not():
    found = examples_by_key()
    unlisted = [f"{ex!r}: {key}" for key, exs in found.items() for ex in exs if key not in SCENARIOS and key not in NOT_RUN]
    assert not unlisted, ("examples neither checked nor listed in NOT_RUN with a reason "
                          "(add a scenario to tests/test_doc_examples.py):\n" + "\n".join(unlisted))
    gone = [key for key in [*SCENARIOS, *NOT_RUN] if key not in found]
    assert not gone, f"listed examples that no doc holds any more: {gone}"


def _checked() -> list:
    return [pytest.param(ex, id=f"{ex.doc}:{ex.line}") for key, exs in examples_by_key().items()
            if key in SCENARIOS for ex in exs]


@pytest.mark.parametrize("example", _checked())
def test_example_is_what_the_tool_prints(example, tmp_path):
    actual = run_example(example, str(tmp_path))
    home = str(tmp_path / "lab" / "home")
    want = [normalise(line) for line in (example.lines if example.key == ("sessionward demo",) else expected_lines(example))]
    got = [normalise(line, home) for line in actual]
    assert matches(want, got), (f"{example!r} differs from what the tool prints (normalised; - doc, + real):\n"
                                + "\n".join(difflib.unified_diff(want, got, lineterm="", n=1)))


def run_example(example: Example, base: str) -> list[str]:
    lab = Lab(os.path.join(base, "lab"))
    try:
        return SCENARIOS[example.key](lab, example)
    finally:
        lab.close()


if __name__ == "__main__":  # print the real transcripts: what the docs' examples are made from
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    words = " ".join(sys.argv[1:])
    for key, exs in examples_by_key().items():
        if key in SCENARIOS and words in " ".join(key):
            with tempfile.TemporaryDirectory() as base:
                print(f"== {exs[0]!r}\n" + "\n".join(run_example(exs[0], base)).replace(base + "/lab/home", "/home/you"))
