"""Torture tier, part "hostile input" (issue 5, part 4): promise 6 under fuzzing.

Three groups, one summary line ("hostile input: operations ..., tracebacks 0"):
  1. every command of the command table (and no command, --help, unknown ones) gets at least
     10,000 hypothesis-built command lines, mixing its real options and values (from its
     parser spec) with hostile text, numbers and paths; driven in-process through the
     launcher's own entry point (cli/entry.py) with stdin/stdout/stderr swapped for buffers,
     and a few hundred of them through the real launcher process to show the two agree;
  2. every hook event gets at least 10,000 stdins (built on tests/hooks/test_hook_fuzz.py's
     Ground and the captured payloads), through run_hook;
  3. hostile registry documents: huge, deeply nested, mistyped, NUL bytes, invalid UTF-8,
     duplicate keys, a newer schema, and 100,000 sessions (valid, and with hostile owners),
     each under the real CLI.
Every case: an exit code of the documented table, errors on one line, `--json` as the
versioned envelope, no traceback (shown, or logged as an internal error), and the registry
and settings.json still whole documents. Contract breaks that are not tracebacks (two lines,
an undocumented exit code, a broken envelope) are gathered and fail the test too.
"""

import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hooks.conftest import fake_claude, payloads, project, rc_root  # noqa: F401 - fixtures
from hooks.test_hook_fuzz import BASE_PAYLOAD, ENV, EVENTS, check_answer
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from sessionward.cli.args import COMPLETE_KINDS

from helpers import SESSIONWARD

PART = "hostile input"
# Cases are drawn BATCH at a time per hypothesis example: the engine's own cost per example
# (bookkeeping, mutation) is several times that of one in-process command.
BATCH = 10
CLI_EXAMPLES = int(os.environ.get("HOSTILE_CLI_EXAMPLES", 10_000))
HOOK_EXAMPLES = 10_000
LAUNCHER_SAMPLE = 500  # drawn; state-changing ones are left out, ~45% are run
DOCUMENTED_EXITS = {0, 1, 2, 3, 130}
FUZZ = dict(max_examples=CLI_EXAMPLES // BATCH, deadline=None, database=None, derandomize=True,
            phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def batches(strategy):
    return st.lists(strategy, min_size=BATCH, max_size=BATCH)


@pytest.fixture
def state_dir(_isolated_env, tmp_path, monkeypatch):
    """The state directory on tmpfs when there is one: this part tests what input does, not
    durability, and each fsync of a registry write on a disk costs more than the case."""
    import shutil
    import tempfile

    if not os.path.isdir("/dev/shm") or os.environ.get("HOSTILE_STATE_ON_DISK") == "1":
        yield tmp_path / "state"
        return
    root = tempfile.mkdtemp(prefix="sessionward-hostile-", dir="/dev/shm")  # 0700
    monkeypatch.setenv("SESSIONWARD_HOME", os.path.join(root, "state"))
    yield type(tmp_path)(root) / "state"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _state_on_tmpfs(state_dir):
    return state_dir


# -- the in-process launcher --------------------------------------------------------------------------


class Ran:
    __slots__ = ("argv", "rc", "out", "err", "errors")

    def __init__(self, argv, rc, out: bytes, err: bytes, errors: str) -> None:
        self.argv, self.rc, self.out, self.err, self.errors = argv, rc, out, err, errors


def run_in_process(argv: list, stdin: bytes = b"", errors: str = "strict") -> Ran:
    """sessionward.cli.entry.main() with sys.argv = argv, on buffers: stdout encodes UTF-8 with
    `errors` ("strict" as under en_US.UTF-8, "surrogateescape" as under C.UTF-8), stderr with
    backslashreplace, as Python sets them up. Any exception escaping is a traceback."""
    from sessionward.cli import entry

    saved = sys.argv, sys.stdin, sys.stdout, sys.stderr
    out, err = io.BytesIO(), io.BytesIO()
    sys.argv = ["sessionward", *argv]
    streams = (io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"),
               io.TextIOWrapper(out, encoding="utf-8", errors=errors, write_through=True),
               io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True))
    sys.stdin, sys.stdout, sys.stderr = streams
    try:
        rc = entry.main()
    except BaseException as exc:  # noqa: BLE001 - exactly what must never happen
        import traceback

        rc = f"raised {type(exc).__name__}"
        sys.stderr.write("Traceback (most recent call last):\n" + traceback.format_exc())
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        sys.argv, sys.stdin, sys.stdout, sys.stderr = saved
    ran = Ran(argv, rc, out.getvalue(), err.getvalue(), errors)
    for stream in streams:
        stream.detach()  # or their finalizers close the buffers we keep no more
    return ran


def run_launcher(argv: list, stdin: bytes = b"", errors: str = "strict") -> Ran:
    env = dict(os.environ, PYTHONIOENCODING=f"utf-8:{errors}")
    done = subprocess.run([SESSIONWARD, *argv], input=stdin, capture_output=True, timeout=60, env=env)
    return Ran(argv, done.returncode, done.stdout, done.stderr, errors)


# -- judging one run ------------------------------------------------------------------------------------


class Judge:
    """Checks runs against the contract; tracebacks go to the tally, other breaks to `broken`."""

    def __init__(self, t, error_log: str) -> None:
        self.t = t
        self.error_log = error_log
        self.logged = 0
        self.broken: list[str] = []
        self.kinds: dict = {}
        self.exits: dict = {}

    def breach(self, what: str, ran) -> None:
        self.kinds[what] = self.kinds.get(what, 0) + 1
        if self.kinds[what] <= 3:  # a few examples of each kind are enough to read
            self.broken.append(f"{what}: argv={ran.argv!r:.300} rc={ran.rc} out={ran.out[:300]!r} err={ran.err[:300]!r}")

    def internal_errors_logged(self) -> int:
        try:
            with open(self.error_log, "rb") as log:
                return log.read().count(b"--- sessionward ")
        except FileNotFoundError:
            return 0

    def cli(self, ran: Ran, lock_run: bool = False) -> None:
        t = self.t
        t.operations += 1
        t.faults_injected += 1
        self.exits[ran.rc] = self.exits.get(ran.rc, 0) + 1
        try:
            out = ran.out.decode("utf-8")
        except UnicodeDecodeError:
            out = ran.out.decode("utf-8", "backslashreplace")
            self.breach("stdout is not UTF-8", ran)
        err = ran.err.decode("utf-8", "backslashreplace")
        if "Traceback (most recent call last)" in out + err:
            t.saw_output(f"sessionward {ran.argv!r:.200}", out + err)
        logged = self.internal_errors_logged()
        if logged != self.logged:
            self.logged = logged
            t.problem("tracebacks", f"internal error logged for {ran.argv!r:.200}: {err[:300]}")
        argv = list(ran.argv)
        own = argv[: argv.index("--")] if "--" in argv else argv
        if "--exit-zero" in own and own[:1] != ["hook"]:  # a hook answers 0 or 1 (fail open), always
            if ran.rc != 0:
                self.breach("--exit-zero exited non-zero", ran)
            return
        allowed = DOCUMENTED_EXITS | ({126, 127} if lock_run else set())
        if ran.rc not in allowed:
            return self.breach("undocumented exit code", ran)
        helped = out.startswith("usage: ") or (ran.rc == 0 and out.startswith("sessionward ") and "--version" in own)
        if "--json" in own and not helped and argv[:1] != ["hook"]:
            return self._envelope(out, err, ran)
        lines = err.splitlines(keepends=True)
        if any(not line.startswith("sessionward") or not line.endswith("\n") for line in lines):
            self.breach("stderr line not from sessionward", ran)
        if ran.rc in (2, 3) and len(lines) != 1:
            self.breach("error is not exactly one line", ran)

    def _envelope(self, out: str, err: str, ran: Ran) -> None:
        if not out.endswith("\n") or out.count("\n") != 1:
            return self.breach("--json output is not one line", ran)
        try:
            doc = json.loads(out)
        except ValueError:
            return self.breach("--json output does not parse", ran)
        if type(doc) is not dict or doc.get("schema") != "sessionward/1" or doc.get("exit_code") != ran.rc \
                or doc.get("ok") is not (ran.rc == 0) or not isinstance(doc.get("command"), str) \
                or not (("result" in doc) ^ ("error" in doc)):
            return self.breach("--json envelope malformed", ran)
        if "error" in doc and not (isinstance(doc["error"].get("message"), str) and doc["error"]["message"]):
            self.breach("--json error without message", ran)
        if any(not line.startswith("sessionward") for line in err.splitlines()):
            self.breach("stderr beside --json not from sessionward", ran)


def check_documents(t, state_dir, home) -> None:
    """The registry, the lock holders and settings.json: whole documents (a torn file counts)."""
    candidates = [os.path.join(state_dir, "obsidian_sessions.json"), os.path.join(home, ".claude", "settings.json")]
    for path in candidates:
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            continue
        except ValueError as exc:
            t.problem("torn_files", f"{path}: {exc}")
            continue
        if path.endswith("obsidian_sessions.json") and (type(doc) is not dict or doc.get("schema") != "sessionward/1"):
            t.problem("torn_files", f"{path}: not a sessionward/1 document")


# -- what goes on the command line -------------------------------------------------------------------

# Hostile text is mostly joined from a pool of fragments (one cheap draw each): hypothesis's
# own text strategy costs far more per case than the in-process command it feeds.
FRAGMENTS = ["\0", "\n", "\r\n", "\t", "\u2028", "\u202e", "\ufeff", "\ufffd", "e\u0301", "\U0001f600", "\x7f",
             "\x1b[31m", "\x85", "'", '"', "\\", "$(id)", "`", ";", "..", "/", "-", "--", "=", "\udcff", "\ud800",
             "\udfff", " ", "%s", "{}", "*", "a", "fuzz", "\u00e9", "\u65e5\u672c", "x y", "0", "-1", "end", "~",
             "\u0130", "\u0000\u0000", "\\x00", "/dev/zero", "null", "[]", "{\"a\":1}"]
FRAGMENT = st.sampled_from(FRAGMENTS)
ODD_TEXT = st.one_of(
    FRAGMENT, st.tuples(FRAGMENT, FRAGMENT).map("".join), st.tuples(FRAGMENT, FRAGMENT, FRAGMENT, FRAGMENT).map("".join),
    st.text(max_size=5), st.characters(categories=["Cs", "Cc", "Zl", "Zp", "Cf", "Co"]),
)
HUGE = st.sampled_from([10_000, 131_000, 1_000_000]).map(lambda n: "x" * n)


def odd_text():
    return ODD_TEXT


NUMBERS = st.one_of(
    st.sampled_from(["0", "-0", "-1", "1", "-4", "4194304", "4194305", "2147483647", "2147483648", "9" * 40,
                     "-" + "9" * 40, "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400",
                     "0x10", "0o7", "1_000", " 12", "12 ", "+5", "١٢", "½", "1.5", "", "1e3", "٣"]),
    st.integers().map(str), st.floats().map(str),
)


class Places:
    """Odd places on the file system, made under tmp once per test."""

    def __init__(self, root: str) -> None:
        os.makedirs(root)
        self.dir = os.path.join(root, "dir")
        os.mkdir(self.dir)
        self.file = os.path.join(root, "file")
        open(self.file, "w").close()
        self.fifo = os.path.join(root, "fifo")
        os.mkfifo(self.fifo)
        self.dangling = os.path.join(root, "dangling")
        os.symlink(os.path.join(root, "nowhere"), self.dangling)
        self.newline_dir = os.path.join(root, "new\nline")
        os.mkdir(self.newline_dir)
        self.unreadable = os.path.join(root, "unreadable")
        os.mkdir(self.unreadable, 0)
        self.all = [self.dir, self.dir + "/", self.file, self.fifo, self.dangling, self.newline_dir, self.unreadable,
                    self.dir + "/../dir", "/dev/zero", "/dev/null", "/proc/self/fd/0", "/", "/nonexistent/x",
                    "relative/dir", ".", "..", "~", "", self.dir + "/\udcff", self.dir + "\0x"]

    def paths(self):
        return st.one_of(st.sampled_from(self.all + ["/" + "a" * 5000, "/" + "b/" * 3000]),
                         odd_text().map(lambda t: self.dir + "/" + t))


class Ground1:
    """Values for each metavar and positional of the command table."""

    def __init__(self, places: Places, live_pid: int, dead_pid: int) -> None:
        self.places = places
        pids = [str(live_pid), str(os.getpid()), str(dead_pid), "1"]
        self.pid = st.one_of(st.sampled_from(pids), NUMBERS, odd_text())
        # --timeout: valid values are tiny, so that nothing waits; the rest never parses
        self.seconds = st.one_of(st.sampled_from(["0", "0.01", "0.0", "1e-9"]),
                                 NUMBERS.filter(lambda s: not _parses_as_wait(s)), odd_text())
        self.session = st.one_of(st.sampled_from(["fuzz-1", "fuzz-2", "s-0000abcd", "a" * 128]),
                                 st.sampled_from(["a" * 129, "bad id!", "", "-x", "x/y", "\u00e9"]), odd_text())
        self.scope = st.one_of(st.sampled_from(["user", "project", "USER", "", "global", "user\0"]), odd_text())
        self.text = st.one_of(st.text(max_size=20), odd_text(), HUGE)
        self.project = st.one_of(st.sampled_from(["fuzzproj", "p", "a" * 128, "a" * 129, "..", ".", "a/b", " "]),
                                 odd_text(), HUGE)
        self.lock_name = st.one_of(st.sampled_from(["end", "fuzz", "x_1", "a" * 64, "a" * 65, "END", "", "../x"]),
                                   odd_text())
        self.event = st.one_of(st.sampled_from(EVENTS), odd_text())
        # log --since and --limit
        self.when = st.one_of(st.sampled_from(["10m", "2h", "1e9d", "99999999999w", "2026-05-01T10:00", "2026-13-01",
                                               "0s", "-1m", "m", "1.5.5h", "9999-12-31T23:59:59+14:00"]), NUMBERS, odd_text())
        self.count = st.one_of(st.sampled_from(["1", "0", "-1", "10" * 30, "١"]), NUMBERS, odd_text())

        self.digest = st.one_of(st.sampled_from(["absent", "ABSENT", "0" * 64, "F" * 64, "0" * 63, "g" * 64, ""]),
                                odd_text())

    def for_opt(self, opt):
        # --step K: a wait in steps; with the tiny --timeout values above no step waits long
        steps = st.one_of(st.sampled_from(["0", "1", "2", "10000", "10001", "-1", "", "\u00b2", "\u0661"]), NUMBERS,
                          odd_text())
        return {"K": steps, "PID": self.pid, "S": self.seconds, "ID": self.session, "SCOPE": self.scope,
                "DIR": self.places.paths(), "TEXT": self.text, "NAME": self.project, "HEX": self.digest,
                "FILE": self.places.paths(), "WHEN": self.when, "N": self.count,
                "PATH": self.places.paths(),  # install --vault: odd places, never a real note
                "KIND": st.one_of(st.sampled_from(COMPLETE_KINDS + ("", "SESSION", "lock\0")), odd_text()),
                }[opt.value]  # --text-file: odd places

    def for_arg(self, arg):
        if arg.name == "pid":
            return self.pid
        if arg.name in ("cwd", "path"):  # a note's path: only under tmp or at odd places, never a real file
            return self.places.paths()
        if arg.name == "text":
            return self.text
        if arg.name == "name":
            return self.lock_name
        if arg.name == "event":
            return self.event
        return self.project


def _parses_as_wait(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return 0.05 <= value <= 86400


SAFE_PROGRAMS = [["true"], ["false"], ["/nonexistent/sessionward-fuzz"], ["true", "--", "-x", "\udcff"]]
HOSTILE_TOKENS = st.one_of(
    st.sampled_from(["--", "-", "-h", "--help", "-x", "--json", "--json=1", "--quiet", "--pid", "--pid=", "--=",
                     "---", "--version", "--exit-zero", "help", "lock", "-", "--frobnicate", "--timeout"]),
    odd_text(), NUMBERS, HUGE,
)


def command_lines(command, g: Ground1):
    """Command lines for `command`: its words, then its options (well or badly valued,
    repeated, `--opt=value` or two words) and positionals, with hostile tokens mixed in."""
    words = command.name.split()
    options = []
    for opt in command.opts:
        if opt.value is None:
            options.append(st.just([opt.name]))
        else:
            values = g.for_opt(opt)
            options.append(st.one_of(values.map(lambda v, n=opt.name: [n, v]), values.map(lambda v, n=opt.name: [f"{n}={v}"])))
    plain = [g.for_arg(arg) for arg in command.args if not arg.remainder]
    option = st.one_of(*options) if options else st.just([])
    hostile = HOSTILE_TOKENS.map(lambda v: [v])
    token = st.one_of(option, *[p.map(lambda v: [v]) for p in plain], hostile)
    in_order = (st.tuples(*plain).flatmap(lambda vals: st.integers(0, len(vals)).map(lambda n: list(vals[:n])))
                if plain else st.just([]))
    # mostly well-formed (options, then positionals in order), with hostile tokens after;
    # else tokens of any kind in any order
    well = st.tuples(st.lists(option, max_size=3), in_order, st.lists(hostile, max_size=1)).map(
        lambda r: [x for o in r[0] for x in o] + r[1] + [x for h in r[2] for x in h])
    mixed = st.lists(token, max_size=5).map(lambda parts: [x for p in parts for x in p])
    body = st.one_of(well, well, mixed)
    if command.name == "lock run":
        # never anything but a harmless program after `--`
        body = st.tuples(body.map(lambda b: [x for x in b if x != "--"]), st.sampled_from([[]] + SAFE_PROGRAMS + SAFE_PROGRAMS))
        body = body.map(lambda r: r[0] + (["--"] + r[1] if r[1] else []))
    return body.map(lambda b: words + no_waiting(b))


def no_waiting(argv: list) -> list:
    """Any --timeout that would wait (0.05 s or more) becomes 0: nothing here may sleep."""
    out = list(argv)
    for i, token in enumerate(out):
        if token.startswith("--timeout="):
            if _parses_as_wait(token[len("--timeout="):]):
                out[i] = "--timeout=0"
        elif token == "--timeout" and i + 1 < len(out) and _parses_as_wait(out[i + 1]):
            out[i + 1] = "0"
    return out


def variant(argv: list) -> list:
    """The same command line with --json toggled (before any `--`): a second case per draw."""
    cut = argv.index("--") if "--" in argv else len(argv)
    own, rest = argv[:cut], argv[cut:]
    if "--json" in own:
        return [x for x in own if x != "--json"] + rest
    return own + ["--json"] + rest


def _commands():
    from sessionward.cli.main import COMMANDS

    return COMMANDS


COMMAND_NAMES = [c.name for c in _commands()]


@pytest.fixture
def world(tmp_path, keeper, monkeypatch, state_dir):
    """The command-line ground: odd places, a live and a dead PID, a canary session and lock
    of another live process the fuzz never names, nothing waiting, and the demo stubbed."""
    assert "CLAUDE_CONFIG_DIR" not in os.environ
    home = os.environ["HOME"]
    assert home.startswith(str(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # install --scope project writes under the current directory
    monkeypatch.setenv("SESSIONWARD_LOCK_TIMEOUT_S", "0")  # lock acquire/run without --timeout
    dead = subprocess.Popen(["true"])
    dead.wait()
    canary = subprocess.Popen(["sleep", "600"])
    from helpers import run_cli

    run_cli("register", "canary", str(work), "--pid", str(canary.pid), "--session", "canary-session", check=True)
    run_cli("lock", "acquire", "canary", "--pid", str(canary.pid), check=True)
    demos = []
    monkeypatch.setattr("sessionward.cli.demo.run_demo", lambda values: _stub_demo(demos))
    # watch, piped, prints until interrupted: here it prints its one snapshot and returns
    import sessionward.cli.watch

    monkeypatch.setattr(sessionward.cli.watch, "_plain_loop", sessionward.cli.watch.snapshot_output)
    # log --follow prints until interrupted too: here it returns once the events so far are out
    import sessionward.cli.log
    from sessionward.cli.render import Output

    monkeypatch.setattr(sessionward.cli.log, "_follow", lambda values, wanted, shown: Output("log", {"events": shown}))
    # doctor starts `sessionward --version` (40 ms) each time: once is enough to fuzz its args
    import sessionward.doctor

    probe, probed = sessionward.doctor._probe_version, {}
    monkeypatch.setattr(sessionward.doctor, "_probe_version",
                        lambda argv: probed.setdefault(tuple(argv), probe(argv)) if tuple(argv) not in probed else probed[tuple(argv)])
    places = Places(str(tmp_path / "places"))
    yield dict(ground=Ground1(places, keeper, dead.pid), home=home, state=str(state_dir), canary=canary.pid,
               demos=demos, work=str(work))
    canary.kill()
    canary.wait()
    os.chmod(places.unreadable, 0o700)


def _stub_demo(calls):
    from sessionward.cli.render import Output

    calls.append(1)
    return Output("demo", {"ok": True}, lambda s: ["demo stubbed"], 0)


def canary_alive(t, world) -> None:
    """The canary session and lock (another live process's, never named by the fuzz)."""
    with open(os.path.join(world["state"], "obsidian_sessions.json"), "rb") as f:
        sessions = json.loads(f.read())["sessions"]
    if "canary-session" not in sessions:
        t.problem("lost_updates", "the canary session is gone from the registry")
    if not os.path.exists(os.path.join(world["state"], "canary.lock")):
        t.problem("lost_updates", "the canary lock is gone")


FLIP = {"strict": "surrogateescape", "surrogateescape": "strict"}


def _fuzz_command(name: str, world, tally, examples: int = CLI_EXAMPLES):
    command = next(c for c in _commands() if c.name == name)
    t = tally(PART)
    judge = Judge(t, os.path.join(world["state"], "sessionward", "errors.log"))
    stdin = st.sampled_from([b"", b"{}", b"\xff", b'{"cwd": "/"}', b"[" * 50000])

    @settings(**dict(FUZZ, max_examples=examples // BATCH // 2))
    @given(cases=batches(st.tuples(command_lines(command, world["ground"]), stdin,
                                   st.sampled_from(["strict", "surrogateescape"]))))
    def case(cases):
        for argv, raw, errors in cases:
            for args, mode in ((argv, errors), (variant(argv), FLIP[errors])):
                judge.cli(run_in_process(args, raw, mode), lock_run=name == "lock run")
                check_documents(t, world["state"], world["home"])

    case()
    canary_alive(t, world)
    # Summed over the part's tests in the summary line: how many commands, how many lines.
    t.figures["commands"] = 1
    t.figures["command lines"] = t.operations
    return t, judge


def _finish(t, judge) -> None:
    t.figures["contract breaks"] = sum(judge.kinds.values())
    t.check()
    assert not judge.kinds, f"contract breaks {judge.kinds}:\n" + "\n".join(judge.broken)


@pytest.mark.parametrize("name", COMMAND_NAMES)
def test_every_command_survives_hostile_arguments(name, world, tally):
    t, judge = _fuzz_command(name, world, tally)
    assert t.operations >= CLI_EXAMPLES
    if name == "demo":
        assert world["demos"], "the demo's parsing was fuzzed but its runner never reached"
    _finish(t, judge)


NO_COMMAND = st.one_of(
    st.just([]),
    st.lists(st.one_of(HOSTILE_TOKENS, st.sampled_from(["help", "lock", "frobnicate", "hook", "lock nope", "Register"])),
             min_size=1, max_size=5),
    st.tuples(st.sampled_from(["help", "--help", "-h", "lock", "--version", "--exit-zero"]),
              st.lists(HOSTILE_TOKENS, max_size=3)).map(lambda r: [r[0], *r[1]]),
)


def test_no_command_help_and_unknown_ones(world, tally):
    t = tally(PART)
    judge = Judge(t, os.path.join(world["state"], "sessionward", "errors.log"))

    @settings(**FUZZ)
    @given(cases=batches(st.tuples(NO_COMMAND, st.sampled_from(["strict", "surrogateescape"]))))
    def case(cases):
        for argv, errors in cases:
            judge.cli(run_in_process(argv, b"", errors))

    case()
    assert t.operations >= CLI_EXAMPLES
    t.figures["command lines"] = t.operations
    _finish(t, judge)


# -- the launcher process agrees with the in-process harness ----------------------------------------


def _launchable(argv: list) -> bool:
    # what execve can carry: no NUL, surrogates only as undecodable bytes, under 128 KiB each
    try:
        return all("\0" not in a and len(os.fsencode(a)) < 100_000 for a in argv)
    except UnicodeEncodeError:
        return False


def _comparable(ran: Ran) -> tuple:
    """What must match between the two: the exit code, and for usage errors the exact
    message (other outputs name the caller, which differs: pytest vs its parent)."""
    err = ran.err.decode("utf-8", "backslashreplace")
    return (ran.rc, err if ran.rc == 2 else err.count("\n") <= 1, ran.out.startswith(b"{"))


def test_the_real_launcher_agrees_with_the_in_process_harness(world, tally):
    t = tally(PART)
    judge = Judge(t, os.path.join(world["state"], "sessionward", "errors.log"))
    drawn = []
    # the demo runs for real just below; watch, piped, runs until interrupted (fuzzed in-process above)
    names = [n for n in COMMAND_NAMES if n not in ("demo", "watch")]

    @settings(**dict(FUZZ, max_examples=LAUNCHER_SAMPLE))
    @given(name=st.sampled_from(names), data=st.data(), errors=st.sampled_from(["strict", "surrogateescape"]))
    def draw(name, data, errors):
        command = next(c for c in _commands() if c.name == name)
        argv = data.draw(command_lines(command, world["ground"]).filter(_launchable))
        if name == "log" and "--follow" in argv[: argv.index("--") if "--" in argv else len(argv)]:
            return  # runs until interrupted (fuzzed in-process, stubbed, above)
        if name not in ("register", "unregister", "heartbeat", "lock acquire", "lock release", "lock run",
                        "note append", "note write", "claim take") and not (name == "prune" and "--force" in argv):
            drawn.append((argv, errors))  # state changing commands would make the two differ
        elif "--" not in argv and any(a in ("-h", "--help") for a in argv):
            drawn.append((argv, errors))

    draw()
    drawn += [(["doctor", "--json"], "strict"), (["status-line"], "strict"), (["list", "-\udcff", "--json"], "strict")]
    inproc = [run_in_process(argv, b"", errors) for argv, errors in drawn]
    with ThreadPoolExecutor(max_workers=2) as pool:
        real = list(pool.map(lambda d: run_launcher(*d[:1], b"", d[1]), drawn))
    differ = []
    for a, b in zip(inproc, real):
        judge.cli(b)
        if _comparable(a) != _comparable(b):
            differ.append(f"{a.argv!r:.200}: in-process {_comparable(a)!r:.300} launcher {_comparable(b)!r:.300}")
    demo = run_launcher(["demo"])  # once, for real (its parsing is fuzzed above with a stub)
    judge.cli(demo)
    t.figures["launcher sample"] = len(real) + 1
    assert len(real) >= 200
    assert not differ, f"{len(differ)} of {len(real)} differ:\n" + "\n".join(differ[:10])
    assert demo.rc == 0, demo.err
    _finish(t, judge)


# -- hook stdin: every event, through run_hook ----------------------------------------------------------

from hooks.test_hook_fuzz import environ, ground  # noqa: E402,F401 - fixtures: the guarded ground


@pytest.mark.parametrize("event", EVENTS)
def test_every_hook_event_survives_hostile_stdin(event, ground, payloads, environ, state_dir, tally):  # noqa: F811
    from sessionward.hooks import run_hook

    t = tally(PART)
    error_log = os.path.join(str(state_dir), "sessionward", "errors.log")
    judge = Judge(t, error_log)
    examples = int(os.environ.get("HOSTILE_HOOK_EXAMPLES", HOOK_EXAMPLES))
    bases = [payloads.get(v, "basic", BASE_PAYLOAD[event]) for v in ("2.1.331", "2.1.112")]

    stdin = st.one_of(*[ground.stdin(base) for base in bases])  # built once: building costs 20 ms

    @settings(**dict(FUZZ, max_examples=examples // BATCH))
    @given(cases=batches(st.tuples(stdin, ENV)))
    def case(cases):
        for raw, env in cases:
            t.operations += 1
            t.faults_injected += 1
            answer = run_hook(event, raw, dict(environ, **env))
            ran = Ran(["hook", event, f"<{len(raw)} bytes>"], answer.exit_code, answer.stdout.encode("utf-8", "backslashreplace"),
                      answer.stderr.encode("utf-8", "backslashreplace"), "strict")
            if "Traceback" in answer.stdout + answer.stderr:
                t.saw_output(f"hook {event}", answer.stdout + answer.stderr)
            try:
                check_answer(event, answer.exit_code, answer.stdout, answer.stderr)
            except (AssertionError, ValueError) as exc:
                judge.breach(f"hook answer: {str(exc)[:80]}", ran)
            logged = judge.internal_errors_logged()
            if logged != judge.logged:
                judge.logged = logged
                t.problem("tracebacks", f"hook {event} logged an internal error: {answer.stderr[:300]}")
        check_documents(t, str(state_dir), os.environ["HOME"])

    case()
    assert t.operations >= HOOK_EXAMPLES or "HOSTILE_HOOK_EXAMPLES" in os.environ
    t.figures["hook events"] = 1
    t.figures["hook stdins"] = t.operations
    _finish(t, judge)


# -- hostile registry documents -------------------------------------------------------------------------


def _record(sid: str, owner: dict, name: str = "big", **extra) -> dict:
    now = time.time()
    return {"id": sid, "session_id": sid, "kind": "other", "project": name, "project_key": "name:" + name,
            "project_explicit": True, "worktree": "/tmp", "branch": None, "cwd": "/tmp", "owner": owner,
            "started_at": now, "last_seen": now, "holds": [], **extra}


def _doc(sessions: dict, **extra) -> bytes:
    return json.dumps({"schema": "sessionward/1", "sessions": sessions, **extra}).encode()


def hostile_registries(owner: dict) -> dict:
    """name -> the registry's bytes."""
    from sessionward._atomic import MAX_STATE_FILE_BYTES

    good = _record("good", owner)
    mistyped = {f"m{i}": dict(_record(f"m{i}", owner), **change) for i, change in enumerate([
        {"owner": None}, {"owner": {"pid": "12"}}, {"owner": dict(owner, pid=0)}, {"owner": dict(owner, pid=-1)},
        {"owner": dict(owner, pid=2**63)}, {"owner": dict(owner, pid=1, start_time=1)}, {"owner": dict(owner, start_time=-5)},
        {"owner": dict(owner, start_time="yesterday")}, {"owner": dict(owner, pid=True)}, {"owner": dict(owner, pid=1.5)},
        {"started_at": "x"}, {"last_seen": None}, {"started_at": 1e308 * 10 if False else 1e308}, {"holds": {"end": 1}},
        {"holds": [1]}, {"project": 7}, {"project": "a\0b"}, {"cwd": ["/"]}, {"branch": {}}, {"kind": None},
        {"id": "other"}, {"project": "\ud800"}, {"cwd": "/tmp/\udcff"},
    ])}
    deep = b"[" * 100_000 + b"]" * 100_000
    pad = MAX_STATE_FILE_BYTES - len(_doc({"good": good}, pad="")) - 100
    return {
        "near the size cap": _doc({"good": good}, pad="x" * pad),
        "over the size cap": _doc({"good": good}, pad="x" * (MAX_STATE_FILE_BYTES + 1)),
        "deeply nested": b'{"schema": "sessionward/1", "sessions": ' + deep + b"}",
        "deeply nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        "deeply nested, unclosed": b"[" * 100_000,
        "top level a list": b"[1, 2]",
        "sessions a string": _doc("x"),  # type: ignore[arg-type]
        "sessions a list": _doc([good]),  # type: ignore[arg-type]
        "mistyped records": _doc({"good": good, **mistyped}),
        "NUL bytes": b'{"schema": "sessionward/1", "sess\0ions": {}}\0\0',
        "NUL escapes": _doc({"good": _record("good", owner, name="a\u0000b")}),
        "invalid UTF-8": b'{"schema": "sessionward/1", "sessions": {"\xff\xfe": {}}}',
        "a BOM": b"\xef\xbb\xbf" + _doc({"good": good}),
        "NaN": b'{"schema": "sessionward/1", "sessions": {"good": ' + json.dumps(good).replace('"started_at": ', '"started_at": NaN, "x": ').encode() + b"}}",
        "duplicate keys": b'{"schema": "sessionward/1", "sessions": {"good": ' + json.dumps(good).encode() + b', "good": 1}}',
        "duplicate schema, newer last": b'{"schema": "sessionward/1", "schema": "sessionward/2", "sessions": {}}',
        "a newer schema": json.dumps({"schema": "sessionward/2", "sessions": {}}).encode(),
        "a far newer schema": json.dumps({"schema": "sessionward/999999999999", "sessions": {}}).encode(),
        "an unknown schema": json.dumps({"schema": ["sessionward/1"], "sessions": {}}).encode(),
        "empty": b"",
        "whitespace": b" \n\t",
        "truncated": _doc({"good": good})[:-7],
        "huge number": b'{"schema": "sessionward/1", "sessions": {}, "n": 1' + b"0" * 5000 + b"}",
    }


def _kept_aside(state: str) -> list:
    return sorted(n for n in os.listdir(state) if ".corrupt-" in n)


def test_hostile_registry_documents(tmp_path, keeper, state_dir, tally):
    from sessionward.identity import resolve_owner

    t = tally(PART)
    judge = Judge(t, os.path.join(str(state_dir), "sessionward", "errors.log"))
    o = resolve_owner(keeper)
    owner = o.to_record()
    registry = os.path.join(str(state_dir), "obsidian_sessions.json")
    cwd = str(tmp_path)
    outcomes = {}
    for name, raw in hostile_registries(owner).items():
        os.makedirs(str(state_dir), mode=0o700, exist_ok=True)
        for kept in _kept_aside(str(state_dir)):
            os.unlink(os.path.join(str(state_dir), kept))
        with open(registry, "wb") as f:
            f.write(raw)
        t.faults_injected += 1
        for argv in (["list", "--json"], ["check", "p", "--cwd", cwd], ["register", "p", cwd, "--pid", str(keeper), "--quiet"]):
            ran = run_in_process(argv)
            judge.cli(ran)
            said = ran.err.decode("utf-8", "replace") + ran.out.decode("utf-8", "replace")
            if ran.rc not in (0, 1) and not (ran.rc == 3 and ("kept as" in said or "newer than this" in said)):
                judge.breach(f"registry {name}: neither worked nor refused clearly", ran)
            if ran.rc == 3 and "newer than this" in said:
                break  # refused: every command would say the same
        outcomes[name] = ran.rc
        kept = _kept_aside(str(state_dir))
        too_new = name in ("a newer schema", "duplicate schema, newer last")
        if too_new:
            if ran.rc != 3 or open(registry, "rb").read() != raw:
                judge.breach(f"registry {name}: not refused untouched", ran)
            os.unlink(registry)
        elif kept:
            with open(os.path.join(str(state_dir), kept[0]), "rb") as f:
                if f.read() != raw:
                    t.problem("lost_updates", f"registry {name}: the kept copy differs from the corrupt file")
        elif ran.rc == 0 and name not in ("near the size cap", "a BOM", "duplicate keys", "empty", "whitespace", "NUL escapes"):
            with open(registry, "rb") as f:
                if f.read() != raw and not kept:
                    t.problem("lost_updates", f"registry {name}: replaced without a copy kept aside")
        check_documents(t, str(state_dir), os.environ["HOME"])
        after = run_in_process(["list"])  # the next command works, quietly
        judge.cli(after)
        if after.rc != 0 or after.err:
            judge.breach(f"registry {name}: the next command did not work", after)
    t.figures["registry documents"] = len(outcomes)
    _finish(t, judge)


def test_a_registry_of_100000_sessions(tmp_path, keeper, state_dir, tally):
    """Valid and live: list, check and register work, timed; then hostile owners: swept or kept aside."""
    from sessionward.identity import resolve_owner

    t = tally(PART)
    judge = Judge(t, os.path.join(str(state_dir), "sessionward", "errors.log"))
    o = resolve_owner(keeper)
    owner = o.to_record()
    registry = os.path.join(str(state_dir), "obsidian_sessions.json")
    os.makedirs(str(state_dir), mode=0o700, exist_ok=True)
    sessions = {f"s{i:06d}": _record(f"s{i:06d}", owner, name=f"p{i % 100}") for i in range(100_000)}
    with open(registry, "wb") as f:
        f.write(_doc(sessions))
    t.figures["100k registry MB"] = round(os.path.getsize(registry) / 1e6, 1)
    for label, argv in (("list", ["list", "--json"]), ("check", ["check", "p7", "--cwd", str(tmp_path)]),
                        ("register", ["register", "p7", str(tmp_path), "--pid", str(keeper), "--session", "new-one", "--quiet"])):
        started = time.monotonic()
        ran = run_in_process(argv)
        t.figures[f"100k {label} s"] = round(time.monotonic() - started, 2)
        judge.cli(ran)
        if ran.rc not in (0, 1):
            judge.breach(f"100k {label} failed", ran)
    with open(registry, "rb") as f:
        doc = json.loads(f.read())
    if len(doc["sessions"]) != 100_001:
        t.problem("lost_updates", f"100k: {len(doc['sessions'])} sessions after register, not 100001")
    # hostile owners: PIDs 0, 1, negative, huge; start times wrong
    hostile = [dict(owner, pid=0), dict(owner, pid=-7), dict(owner, pid=2**40), dict(owner, pid=1, start_time=12345),
               dict(owner, start_time=owner.get("start_time", 1) + 1), dict(owner, start_time=-1), dict(owner)]
    sessions = {f"h{i:06d}": _record(f"h{i:06d}", hostile[i % len(hostile)]) for i in range(100_000)}
    with open(registry, "wb") as f:
        f.write(_doc(sessions))
    t.faults_injected += 1
    started = time.monotonic()
    ran = run_in_process(["list", "--json"])
    t.figures["100k hostile owners list s"] = round(time.monotonic() - started, 2)
    judge.cli(ran)
    live = json.loads(ran.out)["result"] if ran.rc == 0 else None
    kept = _kept_aside(str(state_dir))
    with open(registry, "rb") as f:
        left = json.loads(f.read())["sessions"]
    expected = sum(1 for i in range(100_000) if i % len(hostile) == len(hostile) - 1)
    if len(left) != expected:
        t.problem("lost_updates", f"100k hostile: {len(left)} left, expected the {expected} live ones")
    if not kept:
        judge.breach("100k hostile: malformed records dropped without a copy kept aside", ran)
    after = run_in_process(["list"])
    judge.cli(after)
    if after.rc != 0 or after.err:
        judge.breach("100k hostile: the next command did not work", after)
    t.figures["100k hostile live"] = len(left)
    del live
    _finish(t, judge)
