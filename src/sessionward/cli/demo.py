"""demo: sessionward at work, on simulated sessions, in a throw-away state directory.

Each simulated session is a real process (`sleep`, started through a symlink named
`claude`, so its comm is `claude` as Claude Code's is). The commands shown are the real
ones, run through the same entry point a shell would use; only SESSIONWARD_HOME points at
the temporary directory, so nothing of the user's is read or changed.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

from sessionward.cli.render import Output, Style

_SLEEP_S = "3600"


def run_demo(values: dict) -> Output:
    style = Style.for_stream(sys.stdout)
    root = tempfile.mkdtemp(prefix="sessionward-demo-")
    sleepers: list[subprocess.Popen] = []
    saved_env = {k: os.environ.get(k) for k in ("SESSIONWARD_HOME", "CLAUDE_PID", "CLAUDE_CODE_SESSION_ID", "HOME")}
    saved_cwd = os.getcwd()
    try:
        os.environ["SESSIONWARD_HOME"] = os.path.join(root, "state")
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

    def start_session() -> int:
        proc = subprocess.Popen([claude, _SLEEP_S], stdin=subprocess.DEVNULL)
        sleepers.append(proc)
        return proc.pid

    def say(text: str = "") -> None:
        print(text, flush=True)

    say(style.bold("sessionward demo") + ": five simulated Claude Code sessions")
    tilde = " (~ below)" if style.tty else ""  # piped, the commands print paths in full
    say(f"in a throw-away home, {root}{tilde}; nothing of yours is read or changed.")
    say()
    say("Two git worktrees of one project, 'webapp' (main) and 'webapp-feature' (branch feature),")
    say("and a separate project, 'notes'. Each session registers itself, as /start does:")

    a, b, c, d, e = (start_session() for _ in range(5))
    _run(style, webapp, ["register", "--pid", str(a), "--quiet"], "session A, in webapp")
    _run(style, feature, ["register", "--pid", str(b), "--quiet"], "session B, in webapp-feature")
    _run(style, webapp, ["register", "--pid", str(c), "--quiet"], "session C, in webapp too")
    _run(style, notes, ["register", "--pid", str(d), "--quiet"], "session D, in notes")
    _run(style, feature, ["register", "--pid", str(e), "--quiet"], "session E, in webapp-feature")
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
    sleepers[-1].wait()
    _run(style, webapp, ["prune"])
    say()
    say("No human needed: the next command of any session sweeps it.")
    _run(style, webapp, ["list"])
    say()
    say("Use it in Claude Code: 'sessionward install' adds its hooks, status line, /start and /end")
    say("('sessionward install --dry-run' shows the plan first). By hand: 'sessionward register' in")
    say("a terminal, then 'sessionward check' from another one in the same checkout.")
    say("'sessionward --help' lists every command.")
    return 0


def _run(style: Style, cwd: str, argv: list[str], comment: str = "") -> int:
    from sessionward.cli.main import main

    os.chdir(cwd)
    where = os.path.basename(cwd)
    note = style.paint(f"   # {comment}", "2") if comment else ""
    print(style.paint(f"{where} $ ", "2") + style.bold("sessionward " + " ".join(argv)) + note, flush=True)
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
    bindir = os.path.join(root, "bin")
    os.makedirs(bindir)
    claude = os.path.join(bindir, "claude")
    os.symlink(shutil.which("sleep") or "/bin/sleep", claude)
    return claude
