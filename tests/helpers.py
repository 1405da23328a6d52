"""Helpers shared by the tests (importable as `helpers`: pytest puts tests/ on sys.path)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

VENV_BIN = os.path.dirname(sys.executable)
SESSIONWARD = os.path.join(VENV_BIN, "sessionward")


IN_CI = os.environ.get("CI") == "true"


def skip_or_fail(reason: str):
    """Skip the test, saying why; under CI=true fail it instead (CI must not pass quietly)."""
    import pytest

    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def run_cli(*args, cwd=None, env=None, input=None, check=False):
    """Run the real `sessionward` launcher as a process; return the CompletedProcess."""
    result = subprocess.run(
        [SESSIONWARD, *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"sessionward {' '.join(args)} -> {result.returncode}\n{result.stderr}")
    return result


def run_on_a_terminal(*args, env=None, cwd=None) -> tuple[int, str, str]:
    """`sessionward ARGS` with its stdout on a terminal (a pty), as a person sees it: (exit
    status, what the terminal showed, with \\n line ends, stderr). env: the whole environment
    (default: this process's, NO_COLOR=1 included, as every test's)."""
    import pty

    master, slave = pty.openpty()
    try:
        done = subprocess.run([SESSIONWARD, *args], stdout=slave, stderr=subprocess.PIPE, timeout=60, env=env, cwd=cwd)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return done.returncode, b"".join(chunks).decode().replace("\r\n", "\n"), done.stderr.decode()


def cli_json(*args, **kwargs) -> dict:
    result = run_cli(*args, "--json", **kwargs)
    return json.loads(result.stdout)


def make_git_repo(path, branch="main"):
    """A repository with one commit at `path`; returns path."""
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
    path.mkdir(parents=True, exist_ok=True)
    git = shutil.which("git")
    subprocess.run([git, "init", "-q", "-b", branch], cwd=path, check=True, env=env)
    (path / "README").write_text("x\n")
    subprocess.run([git, "add", "README"], cwd=path, check=True, env=env)
    subprocess.run([git, "commit", "-q", "-m", "init"], cwd=path, check=True, env=env)
    return path


def git(path, *args):
    subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


def hold_flock(path, then: str = "") -> subprocess.Popen:
    """Another process holding an exclusive flock on `path` (a file, created if missing, or a
    directory) until killed;
    `then` is Python run while it holds (e.g. to release it on its own)."""
    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\n"
         f"path = {str(path)!r}\n"
         "fd = os.open(path, os.O_RDONLY if os.path.isdir(path) else os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\n" + then + "time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def watcher_pids(state_dir, key: str | None = None) -> list[int]:
    """The live watcher processes of life files under `state_dir` (of `key` only, if given),
    found by their argv: python -I -S .../_watcher.py FD PID START PATH [STAMP]."""
    from sessionward.identity.life import life_dir

    directory = life_dir(str(state_dir)) + "/"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")[:-1]  # a zombie's is empty
        except OSError:
            continue
        if len(argv) in (8, 9) and argv[3].endswith(b"/_watcher.py"):
            path = argv[7].decode()
            if path.startswith(directory) and (key is None or path == directory + key):
                found.append(int(name))
    return sorted(found)


def watchers_once(state_dir, condition, timeout_s: float = 10.0) -> list[int]:
    """The watcher pids under state_dir once `condition` holds of them (AssertionError after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while not condition(pids := watcher_pids(state_dir)):
        assert time.monotonic() < deadline, pids
        time.sleep(0.05)
    return pids


def kill_watcher_pair(state_dir) -> None:
    """Kill the one watcher pair under state_dir as a whole, as a person might (both of it:
    one killed alone is replaced by the other): stopped first, then killed, since a survivor
    would fork a new peer at once."""
    pair = watchers_once(state_dir, lambda pids: len(pids) == 2)  # the second is forked by the first
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pair:
            os.kill(pid, sig)
    watchers_once(state_dir, lambda pids: not pids)


# -- another Unix user ---------------------------------------------------------------------------

NOBODY = 65534  # uid and gid of `nobody`, present on every distribution: no account to create
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class OtherUser:
    """Another Unix user with an install of sessionward it can read (see install_for_other_user).

    argv(*args, via=())  the argv running `sessionward ARGS` as that user (setpriv, no
                         supplementary groups); `via` is a program and its arguments run as
                         that user too, which then runs sessionward (e.g. flock -s GATE)
    command(*args)       the same as one shell command line (for FakeClaude.run, `sh -c`)
    run(*args)           subprocess.run of argv(*args), text mode, output captured
    prefix()             the argv before any program run as that user (setpriv ... env)
    for_user(uid, gid)   the same install run as another uid and gid (one copy serves many)
    python               the interpreter it runs, launcher its `sessionward`, uid and gid
    """

    def __init__(self, uid: int, gid: int, python: str, launcher: str) -> None:
        self.uid, self.gid, self.python, self.launcher = uid, gid, python, launcher

    def prefix(self) -> list:
        # Through env: a program setpriv execs itself is still found with root's powers (under
        # root's 0700 home, say); one that env execs is found with the user's own, as by flock(1).
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "env"]

    def argv(self, *args, via=()) -> list:
        return [*self.prefix(), *via, self.launcher, *args]

    def command(self, *args) -> str:
        import shlex

        return shlex.join(self.argv(*args))

    def run(self, *args, timeout=60, **kwargs):
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout, **kwargs)

    def for_user(self, uid: int, gid: int):
        """This install run as `uid`:`gid`: an OtherUser, or a string saying why it does not
        run as them (the caller skips with it)."""
        other = OtherUser(uid, gid, self.python, self.launcher)
        return _why_it_does_not_run(other) or other


def _why_it_does_not_run(other: OtherUser):
    """None when `sessionward --version` runs as `other`, else a line saying what it printed."""
    import shlex

    version = other.run("--version", cwd="/")  # a directory every user may enter
    if version.returncode == 0 and version.stdout.startswith("sessionward "):
        return None
    return (f"the copy does not run as uid {other.uid}: {shlex.join(other.argv('--version'))}: "
            f"{version.stderr.strip()[-200:]}")


def install_for_other_user(base: str, uid: int = NOBODY, gid: int = NOBODY):
    """A copy of src/sessionward and a launcher in `base` (made world-readable), run by an
    interpreter `uid` can execute: an OtherUser, or a string saying why there is none (the
    caller skips with it). Needs root (setpriv).

    Why a copy: the test run's own install lives in the clone (.venv/bin/sessionward, src/),
    which another user cannot read when the clone sits in a private directory (a 0700 home,
    `mktemp -d`): that user would fail to start at all (exit 2, "Permission denied") instead
    of meeting the state directory the test is about. The interpreter is this run's own when
    that user can run it, else another of the same major.minor version, on PATH or the
    system's (a venv's python is a link into the base install, often under a private home).
    OtherUser.for_user runs the same copy as further users."""
    if os.geteuid() != 0:
        return "needs root to run commands as another user (setpriv)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing"
    os.chmod(base, 0o755)
    lib = os.path.join(base, "lib")
    shutil.copytree(os.path.join(REPO, "src", "sessionward"), os.path.join(lib, "sessionward"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "compileall", "-q", lib], capture_output=True)  # as this run would
    launcher = os.path.join(base, "bin", "sessionward")
    want = "%d.%d" % sys.version_info[:2]
    tried = []
    system = "/usr/local/bin:/usr/bin"  # the system's own, which PATH may put behind private shims (pyenv)
    candidates = [sys.executable, os.path.realpath(sys.executable), getattr(sys, "_base_executable", None),
                  *(shutil.which(name, path=path) for path in (None, system) for name in (f"python{want}", "python3"))]
    for python in dict.fromkeys(c for c in candidates if c):
        probe = subprocess.run([*OtherUser(uid, gid, python, launcher).prefix(), python, "-c",
                                "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, timeout=30)
        seen = probe.stdout.strip() or probe.stderr.strip()[-80:]
        tried.append(f"{python}: {seen or probe.returncode}")
        if probe.returncode == 0 and seen == want:
            break
    else:
        return f"uid {uid} can run no Python {want} interpreter ({'; '.join(tried)})"
    with open(os.path.join(REPO, "scripts", "launcher", "sessionward")) as f:
        _shebang, rest = f.read().split("\n", 1)
    os.makedirs(os.path.dirname(launcher))
    with open(launcher, "w") as f:  # the real launcher, pointed at the copy
        f.write(f"#!{python}\nimport sys\nsys.path.insert(0, {lib!r})\n{rest}")
    os.chmod(launcher, 0o755)
    for directory, subdirs, files in os.walk(base):
        for name in subdirs:
            os.chmod(os.path.join(directory, name), 0o755)
        for name in files:
            path = os.path.join(directory, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)
    other = OtherUser(uid, gid, python, launcher)
    return _why_it_does_not_run(other) or other
