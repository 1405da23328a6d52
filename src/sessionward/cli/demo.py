"""demo: sessionward at work, on simulated sessions, in a throw-away state directory.

Each simulated session is a real process: a small Python program started through a symlink
named `claude` (so its comm is `claude`, as Claude Code's is) that stays alive and, like
Claude Code, runs hook commands as `/bin/sh -c` children with CLAUDE_PID set and the
event's JSON on stdin. The commands shown are the real ones: the registry's and the locks'
through the same entry point a shell would use (in this process, `--pid` naming the
session), the guards through the real `sessionward hook PreToolUse` run by a session's
stand-in on a payload shaped as Claude Code sends it, and the /end wait against a second
process that holds `end` (`lock run`) until its save is done. HOME and SESSIONWARD_HOME
point at the temporary directory and the user's SESSIONWARD_* settings are set aside (the
demo runs on the local store, whatever SESSIONWARD_STORE says), so nothing of the user's is
read or changed; every process the demo started (the sessions, their watchers) is gone when
it returns.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from sessionward.cli.render import Output, Style

# The stand-in for Claude Code: runs each requested command as `/bin/sh -c`, as Claude Code
# runs a hook (2.1.331: CLAUDE_PID and CLAUDE_CODE_SESSION_ID in its environment), stdout and
# stderr together, and replies with what it printed. Requests and replies are JSON lines.
_STAND_IN = r"""
import json, os, subprocess, sys
for line in sys.stdin:
    asked = json.loads(line)
    env = dict(os.environ, CLAUDE_PID=str(os.getpid()), CLAUDECODE="1",
               CLAUDE_CODE_SESSION_ID=asked["session_id"], CLAUDE_PROJECT_DIR=asked["cwd"])
    done = subprocess.run(["/bin/sh", "-c", asked["command"]], input=asked["stdin"].encode(), cwd=asked["cwd"],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sys.stdout.write(json.dumps({"status": done.returncode, "printed": done.stdout.decode("utf-8", "replace")}) + "\n")
    sys.stdout.flush()
"""
_SAVE_S = 1.5  # how long session B's save holds `end` in the /end part
_WATCHERS_GONE_S = 5.0  # a session's watcher pair exits as soon as its owner does (pidfd)


def run_demo(values: dict) -> Output:
    style = Style.for_stream(sys.stdout)
    root = tempfile.mkdtemp(prefix="sessionward-demo-")
    sleepers: list[subprocess.Popen] = []  # the sessions' stand-ins, and B's save
    # Every SESSIONWARD_* variable of the user's goes, settings and test switches alike
    # (SESSIONWARD_STORE above all: the demo's sessions and its `end` lock must not land on a
    # shared store others use); SESSIONWARD_DEBUG stays.
    settings = [k for k in os.environ if k.startswith("SESSIONWARD_") and k != "SESSIONWARD_DEBUG"]
    saved_env = {k: os.environ.get(k) for k in ("SESSIONWARD_HOME", "CLAUDE_CONFIG_DIR", "CLAUDE_PID",
                                                 "CLAUDE_CODE_SESSION_ID", "HOME", "PATH", *settings)}
    saved_cwd = os.getcwd()
    try:
        for key in settings:
            del os.environ[key]
        os.environ["SESSIONWARD_HOME"] = os.path.join(root, ".claude")  # shown as ~/.claude, as installed
        os.environ.pop("CLAUDE_CONFIG_DIR", None)
        os.environ.pop("CLAUDE_PID", None)  # the demo's commands must use the --pid given
        os.environ.pop("CLAUDE_CODE_SESSION_ID", None)
        os.environ["HOME"] = root  # a throw-away home: paths print as ~/src/...
        code = _tour(root, style, sleepers)
    finally:
        os.chdir(saved_cwd)
        for proc in sleepers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        _wait_for_watchers(root)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(root, ignore_errors=True)
    return Output("demo", {"ok": code == 0}, lambda s: [], code)


def _tour(root: str, style: Style, sleepers: list) -> int:
    src = os.path.join(root, "src")
    webapp, feature, notes = _make_checkouts(src)
    claude = _fake_claude(root)
    sessions: dict = {}  # pid -> its stand-in
    ids: dict = {}  # pid -> its Claude Code session id

    def start_session() -> int:
        proc = subprocess.Popen([claude, "-I", "-S", "-c", _STAND_IN], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        sleepers.append(proc)
        sessions[proc.pid] = proc
        ids[proc.pid] = str(uuid.uuid4())
        return proc.pid

    def register(cwd: str, pid: int, comment: str) -> None:
        # --session: the id Claude Code gives the session, which its hooks name it by
        _run(style, cwd, ["register", "--pid", str(pid), "--session", ids[pid], "--quiet"], comment)

    def say(text: str = "") -> None:
        print(text, flush=True)

    say(style.bold("sessionward demo") + ": five simulated Claude Code sessions")
    tilde = " (~ below)" if style.tty else ""  # piped, the commands print paths in full
    say(f"in a throw-away home, {root}{tilde}; nothing of yours is read or changed.")
    say()
    say("Two git worktrees of one project, 'webapp' (main) and 'webapp-feature' (branch feature),")
    say("and a separate project, 'notes'. Each session registers itself under the id Claude Code")
    say("gave it, as its SessionStart hook (or /start) does:")

    a, b, c, d, e = (start_session() for _ in range(5))
    register(webapp, a, "session A, in webapp")
    register(feature, b, "session B, in webapp-feature")
    register(webapp, c, "session C, in webapp too")
    register(notes, d, "session D, in notes")
    register(feature, e, "session E, in webapp-feature")
    say()
    say("Who is working where:")
    _run(style, webapp, ["list"])
    say()
    say("Session A asks who is in its way. C shares its worktree (strong warning), B and E")
    say("work on the same project elsewhere (warning), D is on another project (info):")
    _run(style, webapp, ["check", "--pid", str(a)])
    say()
    say(f"Session E's process dies without saying goodbye (kill -9 {e}):")
    os.kill(e, signal.SIGKILL)
    sessions.pop(e).wait()
    _run(style, webapp, ["prune"])
    say()
    say("No human needed: the next command of any session sweeps it.")
    _run(style, webapp, ["list"])
    say()
    _guards(root, style, webapp, (sessions[a], ids[a]), (sessions[c], ids[c]))
    say()
    _end_wait(style, webapp, feature, a, b, sleepers)
    say()
    say("Use it in Claude Code: 'sessionward install' adds its hooks, status line, /start and /end")
    say("('sessionward install --dry-run' shows the plan first). By hand: 'sessionward register' in")
    say("a terminal, then 'sessionward check' from another one in the same checkout.")
    say("'sessionward --help' lists every command.")
    return 0


def _guards(root: str, style: Style, webapp: str, a: tuple, c: tuple) -> None:
    """C edits app.py; A's Edit of it is denied, A's `git checkout` is asked: each through the
    hook Claude Code runs, on the JSON Claude Code sends (tests/hooks/payloads)."""
    payloads = os.path.join(root, "payloads")
    os.makedirs(payloads)
    app = os.path.join(webapp, "app.py")
    with open(app, "w") as f:
        f.write("def main():\n    return 'hello'\n")
    edit = {"file_path": app, "old_string": "'hello'", "new_string": "'hello, world'", "replace_all": False}

    def hook(session: tuple, event: str, name: str, tool: str, tool_input: dict, comment: str, **more) -> None:
        stand_in, session_id = session
        payload = {"session_id": session_id, "transcript_path": os.path.join(root, "transcript.jsonl"),
                   "cwd": webapp, "permission_mode": "default", "hook_event_name": event, "tool_name": tool,
                   "tool_input": tool_input, "tool_use_id": "toolu_" + uuid.uuid4().hex[:24], **more}
        with open(os.path.join(payloads, name), "w") as f:
            json.dump(payload, f, indent=2)
        _run_in(style, stand_in, webapp, f"sessionward hook {event} < ~/payloads/{name}", comment, session_id)

    print("The guards, as Claude Code meets them: a session's Claude Code runs 'sessionward hook EVENT'", flush=True)
    print("with the event's JSON on stdin. Session C edits app.py (its PostToolUse hook notes it):", flush=True)
    hook(c, "PostToolUse", "c-edited-app.json", "Edit", edit, "C's Claude Code, after C's Edit",
         tool_response={"filePath": app, "oldString": "'hello'", "newString": "'hello, world'"})
    print(flush=True)
    print("Session A then tries to edit the same file: its PreToolUse hook denies the edit, and", flush=True)
    print("Claude Code gives the reason to A's model (the person sees it too):", flush=True)
    hook(a, "PreToolUse", "a-edits-app.json", "Edit", edit, "A's Claude Code, before A's Edit")
    print(flush=True)
    print("A runs 'git checkout -b fix' in the worktree C works in too: the hook asks, so Claude Code", flush=True)
    print("asks the person first, showing the reason:", flush=True)
    hook(a, "PreToolUse", "a-checkout.json", "Bash", {"command": "git checkout -b fix", "description": "New branch"},
         "A's Claude Code, before A's Bash")


def _end_wait(style: Style, webapp: str, feature: str, a: int, b: int, sleepers: list) -> None:
    """B saves under `end` (a second process holding it for _SAVE_S); A's /end waits for it
    in steps, as /end does, then takes the lock."""
    from sessionward import paths

    print("/end saves notes, memory and the resume file under the end lock, one session at a time.", flush=True)
    print(f"Session B's /end is saving (for {_SAVE_S} s) when session A runs /end: A waits, in steps", flush=True)
    print("as /end does, for B's save to end, then takes the lock:", flush=True)
    argv = ["lock", "run", "end", "--pid", str(b), "--purpose", "/end save", "--", "sleep", str(_SAVE_S)]
    print(_prompt(style, feature, "sessionward " + " ".join(_quoted(w) for w in argv) + " &", "B's save"), flush=True)
    save = subprocess.Popen([*_launcher(), *argv], cwd=feature, stdin=subprocess.DEVNULL)
    sleepers.append(save)
    lock_file = os.path.join(paths.state_dir(), "end.lock")
    deadline = time.monotonic() + 10
    while not os.path.exists(lock_file) and save.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # B holds it before A tries (lock run takes it within milliseconds)
    step = ["lock", "acquire", "end", "--pid", str(a), "--purpose", "/end save", "--step"]
    _run(style, webapp, [*step, "0"], "A's /end: only tries")
    _run(style, webapp, [*step, "1"], "A's /end, next step: waits")
    _run(style, webapp, ["lock", "status"])
    _run(style, webapp, ["lock", "release", "end", "--pid", str(a)], "A's /end, once saved")
    save.wait()


def _run_in(style: Style, session: subprocess.Popen, cwd: str, command: str, comment: str, session_id: str) -> None:
    """The shell command `command`, run by a session's stand-in as its Claude Code would run
    a hook; shown with what it printed."""
    print(_prompt(style, cwd, command, comment), flush=True)
    assert session.stdin is not None and session.stdout is not None
    session.stdin.write(json.dumps({"command": command, "stdin": "", "cwd": cwd, "session_id": session_id}) + "\n")
    session.stdin.flush()
    reply = json.loads(session.stdout.readline())
    if reply["printed"]:
        print(reply["printed"], end="" if reply["printed"].endswith("\n") else "\n", flush=True)
    if reply["status"]:
        print(style.paint(f"(exit status {reply['status']})", "2"), flush=True)


def _prompt(style: Style, cwd: str, command: str, comment: str = "") -> str:
    note = style.paint(f"   # {comment}", "2") if comment else ""
    return style.paint(f"{os.path.basename(cwd)} $ ", "2") + style.bold(command) + note


def _quoted(word: str) -> str:
    import shlex

    return shlex.quote(word)


def _launcher() -> list[str]:
    """The command that runs this sessionward: its launcher, beside the interpreter."""
    launcher = os.path.join(os.path.dirname(sys.executable), "sessionward")
    return [launcher] if os.access(launcher, os.X_OK) else [sys.executable, "-m", "sessionward"]


def _wait_for_watchers(root: str) -> None:
    """Until no process started for the demo's sessions (a watcher names its life file, under
    root, in its argv) is left, or _WATCHERS_GONE_S."""
    marker = root.encode()
    deadline = time.monotonic() + _WATCHERS_GONE_S
    while time.monotonic() < deadline:
        if not any(marker in _cmdline(pid) for pid in os.listdir("/proc") if pid.isdigit()):
            return
        time.sleep(0.02)


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _run(style: Style, cwd: str, argv: list[str], comment: str = "") -> int:
    from sessionward.cli.main import main

    os.chdir(cwd)
    print(_prompt(style, cwd, "sessionward " + " ".join(_quoted(w) for w in argv), comment), flush=True)
    saved, sys.stderr = sys.stderr, sys.stdout  # a transcript: its notices (stderr) in place, in order
    try:
        code = main(argv)
    finally:
        sys.stderr = saved
    if code:
        print(style.paint(f"(exit status {code})", "2"), flush=True)
    return code


def _make_checkouts(src: str) -> tuple[str, str, str]:
    webapp = os.path.join(src, "webapp")
    feature = os.path.join(src, "webapp-feature")
    notes = os.path.join(src, "notes")
    os.makedirs(webapp)
    os.makedirs(notes)
    git = shutil.which("git")
    if git is None:  # without git the demo still runs: directories stand for checkouts
        os.makedirs(feature)
        return webapp, feature, notes
    env = dict(os.environ, GIT_AUTHOR_NAME="demo", GIT_AUTHOR_EMAIL="demo@example.invalid",
               GIT_COMMITTER_NAME="demo", GIT_COMMITTER_EMAIL="demo@example.invalid")
    def run(*args, cwd=webapp):
        subprocess.run([git, *args], cwd=cwd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("init", "-q", "-b", "main")
    with open(os.path.join(webapp, "README"), "w") as f:
        f.write("webapp\n")
    run("add", "README")
    run("commit", "-q", "-m", "init")
    run("worktree", "add", "-q", "-b", "feature", feature)
    return webapp, feature, notes


def _fake_claude(root: str) -> str:
    """`claude`, a symlink to this interpreter (its comm is then `claude`), and `sessionward`
    beside it, on PATH, for the commands the stand-ins run (`sessionward hook ...`)."""
    bindir = os.path.join(root, "bin")
    os.makedirs(bindir)
    claude = os.path.join(bindir, "claude")
    os.symlink(sys.executable, claude)
    launcher = _launcher()
    with open(os.path.join(bindir, "sessionward"), "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(_quoted(w) for w in launcher) + ' "$@"\n')
    os.chmod(os.path.join(bindir, "sessionward"), 0o755)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return claude
