"""sessionward benchmarks: `.venv/bin/python bench/run.py [--quick] [--markdown] [--only SECTION]`.

Checks the "Performance budgets" of DESIGN.md and prints one table per section. Nothing
here asserts a timing: the numbers are for people to read, next to the budget they serve.

Method (the box this runs on is shared and noisy):
  * Every comparison is made inside one run, side by side. The compared cases are
    interleaved round-robin (round r runs every case once, starting at case r mod k), so a
    burst of noise from a neighbour hits all of them alike instead of one.
  * Reported: medians (and p90), and ratios of medians. Never a mean, never a single run.
  * Everything lives in a fresh temporary directory: SESSIONWARD_HOME points there before
    sessionward is imported, so the user's ~/.claude is never read or written.
  * Owners are real, live processes: one `sleep` process per session (1,000 at the largest
    size), started by this script and killed at the end, so every record's owner is a
    distinct PID that liveness must read from /proc (a sweep reads each PID once).
  * Sessions are spread over three checkouts (a git repository, a linked worktree of it,
    a plain directory of another project), so a check finds every conflict level.

Sections:
  1. Registry operations through the Python API at 10, 100 and 1,000 sessions:
     register_session (a new session; removed again, untimed, so N stays N),
     load_live_sessions (list) and find_conflicts (check); us/session and the growth
     factor from N/10 to N show linearity. Budget: under REGISTRY_BUDGET_MS at 1,000
     sessions, and linear (the per-session cost at 1,000 at most LINEAR_SLACK times the
     one at 100). Table 1b times two components every operation pays, to show where the
     time goes: reading the registry (store.load_sessions), judging each owner alive, and
     the floor of any one-JSON-document design: a bare json.loads of the same bytes.
  2. Whole processes against a registry of 50 live sessions (50 distinct owners), cwd in
     one of the checkouts: the real launcher `.venv/bin/sessionward check` and `list`,
     `python -m sessionward check`, next to `python -c pass` on the same interpreter (the
     one the launcher's #! line names). Wall time is spawn to reap. Peak RSS comes from
     GNU time's %M in a few separate rounds (our own wait4() would report this bench's
     RSS: a child carries its parent's high-water mark until it execs).
     Budget: check <= PROCESS_BUDGET_RATIO x `python -c pass`.
     Bytecode: the main rows run with a bytecode cache (PYTHONPYCACHEPREFIX in the temp
     directory, warmed before timing), as after a normal `pip install`. The last row runs
     check with sessionward compiled on every run (a copy of src/ without __pycache__,
     PYTHONDONTWRITEBYTECODE=1), as where that variable is set over an editable install.
  3. Named locks (--only locks), next to py-filelock (its FileLock), portalocker and a raw flock.
     3a. Uncontended acquire+release in this process, one cycle per sample, the cases
     interleaved round-robin: sessionward's NamedLock (Python API, state_dir in the temp
     directory, cwd the bench's git checkout, as /end runs from a project), FileLock,
     portalocker.Lock (opens the file, flock LOCK_EX|LOCK_NB, release unlocks and closes),
     fcntl.flock LOCK_EX then LOCK_UN on an fd opened once; and, for context, a NamedLock made
     anew every cycle (`with NamedLock(...)`). Each lock is first checked to exclude a second
     contender while held and to be free after release. Budget: NamedLock's median below
     FileLock's (ratio < 1).
     3b. Contention: LOCK_PROCESSES worker processes (this script, argv[1] == LOCK_WORKER_ARG)
     x LOCK_CYCLES cycles of acquire, time.sleep(LOCK_CRITICAL_S), release, on one lock; the
     same worker for NamedLock and for FileLock (with FileLock's defaults: 50 ms poll, no
     timeout). Workers take the lock once untimed, say ready on a pipe, and start together
     when the bench closes the write end of a second pipe they all block on. Each cycle is
     stamped on CLOCK_MONOTONIC (one clock for all processes): the wait is start of acquire
     to holding; critical sections are checked pairwise for overlap (mutual exclusion), and
     the gap between one and the next is the hand-over. Trials of the two locks alternate.
     Budget: NamedLock's worst wait (over all cycles of all trials) <= FileLock's.
  4. Claude Code hook processes (--only hooks; the code is in bench/hooks_bench.py, which
     imports its helpers from here): `.venv/bin/sessionward hook <Event>` with the event's
     JSON piped to stdin, next to `python -c pass` on the same interpreter (given the same
     stdin), against 50 live sessions whose owners are 50 processes named `claude` (CLAUDE_PID
     names one, as Claude Code sets it) and 2,000 claims over 1,000 files. Cases: PreToolUse
     Write on a file other live sessions just wrote (answers ask) and on an unclaimed one
     (no answer), PreToolUse Bash `ls -la` (no git: no answer) and `git checkout main` with
     other sessions in the worktree (ask), PostToolUse Write (records, replacing its own
     claim), SessionStart (registered already: answers with the sessions sharing its
     worktree), UserPromptSubmit and Stop (heartbeats), SessionEnd (re-registered and
     ended.json removed, untimed, after every sample), and PreToolUse Write compiled on
     every run. Answers are checked before and after timing. Budget: every event's row
     (the asking git checkout aside) <= PROCESS_BUDGET_RATIO x `python -c pass`;
     SessionEnd's slowest sample also at most half of the 1.5 s Claude Code gives all
     SessionEnd hooks.
  5. The life locks' watchers (--only watchers; bench/watchers_bench.py): the hooks that
     start a watcher pair (the first SessionStart of a process) or find it running (later
     SessionStarts, UserPromptSubmit), with 20 sessions each holding its pair, next to
     `python -c pass`; and the memory of those 20 pairs (RSS and PSS summed from
     /proc/PID/smaps_rollup over the watcher processes). Budget: each hook row <=
     PROCESS_BUDGET_RATIO x `python -c pass`.
  6. The hooks inside the real Claude Code CLI (--only cli; bench/cli_bench.py): `claude -p`
     sessions offline against tests/e2e's mock Messages API (inside `unshare -n` when it
     can), every event's hook with a no-op `python -c pass` beside it, as the CLI's own
     --debug-file times them, 50 other live sessions holding 2,000 claims. Budget: every
     event <= 1.3x the no-op. Skipped (and said so) without the CLI binary.
  7. The status line (--only statusline; bench/statusline_bench.py): CPU per refresh (user+sys
     of the children) of the command install writes, run as Claude Code runs it, on the
     unchanged path (the shell fast path prints the cached row) and the changed path (the
     stamp renewed: `sessionward status-line` renders), next to `sh -c :` and `python -c
     pass`, with 15 live sessions in the worktree. Budget: 15 sessions refreshing every 3 s
     take at most 2% of one core.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SIZES = (10, 100, 1000)
OWNER_POOL = max(SIZES)  # one owner process per session
PROCESS_SESSIONS = 50
REGISTRY_BUDGET_MS = 5.0  # "under a few milliseconds at 1,000 sessions"
LINEAR_SLACK = 1.5
PROCESS_BUDGET_RATIO = 2.0
TIME_BIN = "/usr/bin/time"  # GNU time, for peak RSS (%M)
LOCK_NAME = "bench"
LOCK_TIMEOUT_S = 60.0  # never reached: a timeout is a broken run, not a slow one
LOCK_PROCESSES = 8
LOCK_CYCLES = 200
LOCK_CRITICAL_S = 0.001  # time.sleep: the holder is off the CPU, as in a save doing I/O
LOCK_WORKER_ARG = "_lock_worker"  # argv[1] of a contention worker (this very script)
ROUNDS = {"api": 50, "process": 40, "hooks": 40, "rss": 5, "lock": 2000, "contention": 3, "cli": 20, "statusline": 100}
QUICK_ROUNDS = {"api": 10, "process": 10, "hooks": 10, "rss": 2, "lock": 300, "contention": 1, "cli": 3, "statusline": 20}
# hooks, watchers, cli, statusline: bench/hooks_bench.py, watchers_bench.py, cli_bench.py, statusline_bench.py
SECTIONS = ("api", "process", "locks", "hooks", "watchers", "cli", "statusline")


# -- statistics and tables ------------------------------------------------------------------


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def p90(samples: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def render_table(title: str, headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [f"### {title}", "", "| " + " | ".join(headers) + " |"]
        lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows)]

    def line(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([title, line(headers), rule] + [line(row) for row in rows])


def interleave(cases: list, rounds: int, run_one) -> dict:
    """Run every case once per round, rotating the start; return {case label: [results]}."""
    results = {case[0]: [] for case in cases}
    for r in range(rounds):
        for i in range(len(cases)):
            case = cases[(r + i) % len(cases)]
            results[case[0]].append(run_one(case))
    return results


# -- the machine ----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x {os.cpu_count()}"


def filesystem_of(path: str) -> str:
    """Filesystem type of the mount holding `path` (fsync cost depends on it)."""
    best, kind = "", "?"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                mount = fields[1]
                if path == mount or path.startswith(mount.rstrip("/") + "/"):
                    if len(mount) >= len(best):
                        best, kind = mount, fields[2]
    except OSError:
        pass
    return kind


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        status = ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else "?"
    except OSError:
        return "?"


def header_lines(root: str, interpreter: str, rounds: dict, sections=SECTIONS) -> list[str]:
    import sessionward

    counts = {
        "api": f"{rounds['api']} (API)",
        "process": f"{rounds['process']} (process wall time), {rounds['rss']} (peak RSS)",
        "hooks": f"{rounds['hooks']} (hook wall time), {rounds['rss']} (hook peak RSS)",
        "watchers": f"{rounds['hooks']} (hooks with watchers)",
        "cli": f"{rounds['cli']} (claude -p sessions)",
        "statusline": f"{rounds['statusline']} (status line refreshes per case)",
        "locks": f"{rounds['lock']} (uncontended lock cycles), {rounds['contention']} (lock contention trials)",
    }
    lines = [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"host: {socket.gethostname()}",
        f"cpu: {cpu_model()}",
        f"python: {platform.python_version()} ({interpreter})",
        f"sessionward: {sessionward.__version__} at {git_revision()}",
    ]
    if "locks" in sections:
        lines.append(f"compared with: {lock_library_versions()}")
    lines += [
        f"state dir filesystem: {filesystem_of(root)}",
        "rounds: " + ", ".join(counts[name] for name in sections) + "; cases interleaved round-robin",
    ]
    return lines


# -- fixtures: owners, checkouts, registries ------------------------------------------------


class SleeperPool:
    """`count` live processes to own sessions; killed (each by its own handle) on exit.
    `program` is the sleep to run: run through a symlink named `claude`, its processes' comm
    is `claude`, which a hook requires of the process CLAUDE_PID names."""

    def __init__(self, count: int, program: str = "sleep", seconds: int = 900) -> None:
        self.count = count
        self.program = program
        self.seconds = seconds
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "SleeperPool":
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([self.program, str(self.seconds)], stdin=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]


def make_checkouts(root: Path) -> list[str]:
    """[main worktree, linked worktree, other project]: all three conflict levels."""
    repo, linked, other = root / "proj", root / "proj-feature", root / "other"
    other.mkdir()
    repo.mkdir()
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-C", str(repo)]
    try:
        subprocess.run(git + ["init", "-q", "-b", "main"], check=True)
        subprocess.run(git + ["commit", "-q", "--allow-empty", "-m", "init"], check=True)
        subprocess.run(git + ["worktree", "add", "-q", "-b", "feature", str(linked)], check=True)
    except (OSError, subprocess.CalledProcessError):
        linked.mkdir(exist_ok=True)  # no git: plain directories still give distinct worktrees
    return [str(repo), str(linked), str(other)]


def populate(store, count: int, owners: list, checkouts: list[str]) -> None:
    """Fill `store` with `count` live sessions spread over owners and checkouts.

    The first session of each checkout is registered through the API; the rest are copies
    of those records (own session id, own owner), added in one transaction. Registering
    them one by one would cost O(N^2) and most of the run at 1,000 sessions.
    """
    from sessionward import registry

    templates = [
        registry.register_session(cwd, session_id=f"bench-{i:05d}", owner=owners[i % len(owners)], store=store).session
        for i, cwd in enumerate(checkouts[:count])
    ]

    def add_copies(sessions: dict):
        for i in range(len(templates), count):
            sid = f"bench-{i:05d}"
            owner = owners[i % len(owners)].to_record()
            sessions[sid] = dict(templates[i % len(templates)], id=sid, session_id=sid, owner=owner)
        return None, True

    store.update_sessions(add_copies)


def make_store(root: Path, name: str):
    from sessionward.store.local import LocalStore

    state = root / name
    state.mkdir(mode=0o700)
    return LocalStore(str(state))


# -- section 1: the Python API --------------------------------------------------------------

OPERATIONS = ("register_session", "load_live_sessions", "find_conflicts")
COMPONENTS = ("store.load_sessions", "session_liveness x N", "json.loads (floor)")


def api_cases(store, size: int, owners: list, me, checkouts: list[str]) -> list:
    """(op, size, timed function, untimed undo): the operations and their main components."""
    from sessionward import registry

    counter = iter(range(10**9))
    last = {}

    def register():
        last["id"] = f"new-{next(counter)}"
        registry.register_session(checkouts[0], session_id=last["id"], owner=owners[0], store=store)

    def unregister():
        registry.unregister_sessions(session_id=last["id"], store=store)

    def liveness():  # what every operation pays per owner: one /proc read, as in a sweep
        seen: dict = {}
        for record in snapshot.values():
            registry.session_liveness(record, seen=seen)

    snapshot = store.load_sessions()
    raw = Path(store.registry_path).read_bytes()
    return [
        ("register_session", size, register, unregister),
        ("load_live_sessions", size, lambda: registry.load_live_sessions(store), None),
        ("find_conflicts", size, lambda: registry.find_conflicts(cwd=checkouts[0], owner=me, store=store), None),
        ("store.load_sessions", size, store.load_sessions, None),
        ("session_liveness x N", size, liveness, None),
        ("json.loads (floor)", size, lambda: json.loads(raw), None),
    ]


def verify_api_fixture(store, size: int, me, checkouts: list[str]) -> None:
    """The registry really holds `size` live sessions, each a conflict for `me`."""
    from sessionward import registry

    live, swept = registry.load_live_sessions(store)
    conflicts = registry.find_conflicts(cwd=checkouts[0], owner=me, store=store).conflicts
    if len(live) != size or swept or len(conflicts) != size:
        raise SystemExit(f"bench fixture broken at N={size}: {len(live)} live, {len(swept)} swept, {len(conflicts)} conflicts")


def time_api_case(case) -> float:
    _, _, operation, undo = case
    start = time.perf_counter()
    operation()
    elapsed = time.perf_counter() - start
    if undo is not None:
        undo()
    return elapsed * 1000.0


def run_api_section(root: Path, owners: list, me, checkouts: list[str], rounds: int) -> list[dict]:
    cases = []
    for size in SIZES:
        store = make_store(root, f"state{size}")
        populate(store, size, owners, checkouts)
        verify_api_fixture(store, size, me, checkouts)
        cases += api_cases(store, size, owners, me, checkouts)
    labelled = [(f"{op}@{size}",) + case for case in cases for op, size in [case[:2]]]
    for case in labelled:  # warm-up: first reads, page cache
        time_api_case(case[1:])
    samples = interleave(labelled, rounds, lambda case: time_api_case(case[1:]))
    return [
        {"op": op, "size": size, "median": median(samples[label]), "p90": p90(samples[label])}
        for label, op, size, _, _ in labelled
    ]


def api_budget(row: dict, by_key: dict) -> str:
    if row["size"] != max(SIZES) or row["op"] not in OPERATIONS:
        return "-"
    smaller = by_key[(row["op"], SIZES[-2])]
    problems = []
    if row["median"] > REGISTRY_BUDGET_MS:
        problems.append(f"> {REGISTRY_BUDGET_MS:g} ms")
    if row["median"] / row["size"] > LINEAR_SLACK * smaller["median"] / smaller["size"]:
        problems.append("superlinear")
    return "FAIL (" + ", ".join(problems) + ")" if problems else "PASS"


def api_rows(results: list[dict], ops: tuple) -> list[list[str]]:
    by_key = {(r["op"], r["size"]): r for r in results}
    rows = []
    for op in ops:
        for size in SIZES:
            r = by_key[(op, size)]
            smaller = by_key.get((op, size // 10))
            growth = f"{r['median'] / smaller['median']:.1f}" if smaller else "-"
            rows.append([
                op, str(size), f"{r['median']:.3f}", f"{r['p90']:.3f}",
                f"{1000 * r['median'] / size:.1f}", growth, api_budget(r, by_key),
            ])
    return rows


def api_tables(results: list[dict], markdown: bool) -> str:
    headers = ["operation", "sessions", "median ms", "p90 ms", "us/session", "x N/10", "budget"]
    title = (
        f"1. Registry operations, Python API (budget at {max(SIZES)} sessions: <= {REGISTRY_BUDGET_MS:g} ms "
        f"and linear; 'x N/10' = time / time at N/10, 10.0 when exactly linear)"
    )
    main = render_table(title, headers, api_rows(results, OPERATIONS), markdown)
    title = "1b. Where the time goes: components every operation above pays (no budget)"
    parts = render_table(title, headers[:-1], [row[:-1] for row in api_rows(results, COMPONENTS)], markdown)
    return main + "\n\n" + parts


# -- section 2: whole processes -------------------------------------------------------------


def launcher_interpreter(launcher: Path) -> str:
    """The interpreter the launcher's shebang names: the one to compare it against."""
    with open(launcher, "rb") as f:
        first = f.readline().decode().strip()
    if not first.startswith("#!"):
        raise SystemExit(f"{launcher} has no #! line")
    return first[2:].strip().split()[0]


def child_env(root: Path, state: Path, cached: bool) -> dict:
    """Cached: bytecode under root/pycache, warmed before timing (as after `pip install`).
    Uncached: sessionward imported from a copy of src/ without __pycache__, with
    PYTHONDONTWRITEBYTECODE=1, so each run compiles it (the stdlib keeps its own cache)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CLAUDE_PID", "PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")}
    env["SESSIONWARD_HOME"] = str(state)
    if cached:
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        return env
    cold = root / "cold-src"
    if not cold.exists():
        shutil.copytree(REPO / "src" / "sessionward", cold / "sessionward", ignore=shutil.ignore_patterns("__pycache__"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cold), env.get("PYTHONPATH")]))
    return env


def process_cases(root: Path, state: Path, python: str, launcher: Path) -> list:
    """(label, argv, env, role): role "base" is the baseline, "budget" rows are judged."""
    cached, uncached = child_env(root, state, True), child_env(root, state, False)
    return [
        ("python -c pass", [python, "-c", "pass"], cached, "base"),
        ("sessionward check", [str(launcher), "check"], cached, "budget"),
        # for context: `-m` adds runpy's imports; hooks and helpers call the launcher
        ("python -m sessionward check", [python, "-m", "sessionward", "check"], cached, "info"),
        ("sessionward list", [str(launcher), "list"], cached, "info"),
        # for context: what PYTHONDONTWRITEBYTECODE over an editable install costs
        ("sessionward check, no bytecode cache", [str(launcher), "check"], uncached, "info"),
    ]


def _stdin_of(data: bytes | None) -> dict:
    """subprocess.run's keywords for a child's stdin: `data` through a pipe, else /dev/null."""
    return {"stdin": subprocess.DEVNULL} if data is None else {"input": data}


def wall_ms(case, cwd: str, stdin: bytes | None = None) -> float:
    """Spawn to reap, output discarded; `stdin` (a hook's JSON) is piped in, else /dev/null."""
    _, argv, env, _ = case
    feed = _stdin_of(stdin)
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **feed)
    return (time.perf_counter() - start) * 1000.0


def peak_rss_kib(case, cwd: str, out: Path, stdin: bytes | None = None) -> int | None:
    """Peak RSS from GNU time (%M). Not from our own wait4(): a child forked from this big
    process inherits its high-water mark until exec, so every child would read ~20 MiB."""
    if not os.access(TIME_BIN, os.X_OK):
        return None
    _, argv, env, _ = case
    subprocess.run([TIME_BIN, "-f", "%M", "-o", str(out)] + argv, env=env, cwd=cwd,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_stdin_of(stdin))
    try:
        return int(out.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def verify_process_case(case, python: str, cwd: str) -> None:
    """One untimed run that must succeed (check exits 1 on conflict) and see every session;
    the uncached case must import the copy of src/, not a cached tree."""
    label, argv, env, _ = case
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    allowed = (0, 1) if "check" in argv else (0,)
    if done.returncode not in allowed or done.stderr:
        raise SystemExit(f"bench: {label!r} exited {done.returncode}: {done.stderr.strip()}")
    if argv[-1] in ("check", "list") and len(set(re.findall(r"bench-\d{5}", done.stdout))) != PROCESS_SESSIONS:
        raise SystemExit(f"bench: {label!r} did not show the {PROCESS_SESSIONS} sessions:\n{done.stdout}")
    if "PYTHONPATH" in env and env.get("PYTHONDONTWRITEBYTECODE") == "1":
        where = subprocess.run([python, "-c", "import sessionward; print(sessionward.__file__)"], env=env,
                               capture_output=True, text=True).stdout.strip()
        if not where.startswith(env["PYTHONPATH"].split(os.pathsep)[0]):
            raise SystemExit(f"bench: {label!r} imports sessionward from {where}, not from the uncached copy")


def run_process_section(root: Path, owners: list, checkouts: list[str], rounds: dict) -> tuple[list, str]:
    launcher = REPO / ".venv" / "bin" / "sessionward"
    if not launcher.exists():
        raise SystemExit(f"bench: no launcher at {launcher}; install the package into .venv first")
    python = launcher_interpreter(launcher)
    store = make_store(root, f"state{PROCESS_SESSIONS}")
    populate(store, PROCESS_SESSIONS, owners, checkouts)
    cwd = checkouts[0]
    cases = process_cases(root, Path(store.registry_path).parent, python, launcher)
    for case in cases:
        verify_process_case(case, python, cwd)  # also writes the bytecode cache of the cached rows
        wall_ms(case, cwd)
    walls = interleave(cases, rounds["process"], lambda case: wall_ms(case, cwd))
    rss = interleave(cases, rounds["rss"], lambda case: peak_rss_kib(case, cwd, root / "time.out"))
    rows = []
    for label, _, _, role in cases:
        kib = [k for k in rss[label] if k is not None]
        rows.append({
            "label": label, "role": role, "median": median(walls[label]), "p90": p90(walls[label]),
            "rss": median(kib) if kib else None,
        })
    return rows, python


def against_pass(row: dict, base: dict) -> tuple[float, str]:
    """A process row's median over `python -c pass`'s (the base row), and its verdict: a
    "budget" row passes at most PROCESS_BUDGET_RATIO; any other row gets "-"."""
    ratio = row["median"] / base["median"]
    if row["role"] != "budget":
        return ratio, "-"
    return ratio, "PASS" if ratio <= PROCESS_BUDGET_RATIO else f"FAIL (> {PROCESS_BUDGET_RATIO:g}x)"


def process_table(rows: list[dict], markdown: bool) -> str:
    base = next(r for r in rows if r["role"] == "base")
    out = []
    for r in rows:
        ratio, budget = against_pass(r, base)
        known = r["rss"] is not None and base["rss"]
        out.append([
            r["label"], f"{r['median']:.1f}", f"{r['p90']:.1f}", f"{ratio:.2f}",
            f"{r['rss'] / 1024:.1f}" if known else "n/a", f"{r['rss'] / base['rss']:.2f}" if known else "n/a", budget,
        ])
    title = (
        f"2. Processes, {PROCESS_SESSIONS} live sessions (budget: check <= {PROCESS_BUDGET_RATIO:g}x "
        "python -c pass, same interpreter; 'x pass' = ratio of medians)"
    )
    headers = ["command", "median ms", "p90 ms", "x pass", "peak RSS MiB", "RSS x pass", "budget"]
    return render_table(title, headers, out, markdown)


# -- section 3: named locks -----------------------------------------------------------------


def lock_library_versions() -> str:
    import filelock
    import portalocker

    return f"filelock {filelock.__version__}, portalocker {portalocker.__version__}"


def flock_probe(path: str):
    """Could another open file description take an exclusive flock on `path` right now?"""
    import fcntl

    def can_take() -> bool:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # drops the probe's flock, if it got one
        return True

    return can_take


def uncontended_lock_cases(root: Path, cwd: str) -> list:
    """(label, role, acquire, release, can another take it now?): role "base" is FileLock,
    the "budget" row is judged against it. Each lock object is made once and reused, as a
    program holding one lock would; the last sessionward row makes a new one every cycle."""
    import fcntl
    import functools

    import filelock
    import portalocker
    from sessionward.locks import LockTimeout, NamedLock

    state = root / "lock-state"
    state.mkdir(mode=0o700)

    def named(name: str) -> NamedLock:
        return NamedLock(name, state_dir=str(state), cwd=cwd)

    def named_probe(name: str):
        def can_take() -> bool:  # another NamedLock of this process: not re-entrant, so it must wait
            other = named(name)
            try:
                other.acquire(0)
            except LockTimeout:
                return False
            other.release()
            return True

        return can_take

    lock = named(LOCK_NAME)
    fresh: dict = {}

    def fresh_acquire():
        fresh["lock"] = named(LOCK_NAME + "-fresh")
        fresh["lock"].acquire(LOCK_TIMEOUT_S)

    def fresh_release():
        fresh.pop("lock").release()

    file_lock = filelock.FileLock(str(root / "filelock.lock"))  # its defaults
    # portalocker's own high-level lock: opens the file (mode "a"), flock LOCK_EX|LOCK_NB;
    # release unlocks and closes it.
    porta = portalocker.Lock(str(root / "portalocker.lock"))
    raw_path = str(root / "raw.lock")
    raw_fd = os.open(raw_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)  # open once, kept open
    return [
        ("sessionward NamedLock", "budget", functools.partial(lock.acquire, LOCK_TIMEOUT_S), lock.release,
         named_probe(LOCK_NAME)),
        ("py-filelock FileLock", "base", file_lock.acquire, file_lock.release, flock_probe(file_lock.lock_file)),
        ("portalocker Lock", "info", porta.acquire, porta.release, flock_probe(porta.filename)),
        ("raw fcntl.flock, open fd", "info", functools.partial(fcntl.flock, raw_fd, fcntl.LOCK_EX),
         functools.partial(fcntl.flock, raw_fd, fcntl.LOCK_UN), flock_probe(raw_path)),
        ("sessionward, new NamedLock per cycle", "info", fresh_acquire, fresh_release,
         named_probe(LOCK_NAME + "-fresh")),
    ]


def verify_lock_case(case) -> None:
    """Held after acquire (another contender cannot take it), free after release."""
    label, _, acquire, release, can_take = case
    acquire()
    try:
        if can_take():
            raise SystemExit(f"bench: {label!r} does not exclude another contender while held")
    finally:
        release()
    if not can_take():
        raise SystemExit(f"bench: {label!r} is still held after release")


def time_lock_cycle(case) -> float:
    """One acquire+release, in microseconds."""
    _, _, acquire, release, _ = case
    start = time.perf_counter()
    acquire()
    release()
    return (time.perf_counter() - start) * 1e6


def run_uncontended_locks(root: Path, cwd: str, rounds: int) -> list[dict]:
    cases = uncontended_lock_cases(root, cwd)
    for case in cases:
        verify_lock_case(case)
        for _ in range(20):  # warm-up: imports on first use, who we are, page cache
            time_lock_cycle(case)
    samples = interleave(cases, rounds, time_lock_cycle)
    return [
        {"label": label, "role": role, "median": median(samples[label]), "p90": p90(samples[label])}
        for label, role, _, _, _ in cases
    ]


def lock_worker_main(argv: list[str]) -> int:
    """A contender: `run.py _lock_worker KIND TARGET CYCLES CRITICAL_S READY_FD GO_FD`.

    Takes the lock once (untimed: imports, who it is), says ready, waits at the barrier, then
    runs CYCLES cycles of acquire, sleep CRITICAL_S, release; prints its records as JSON:
    (start of acquire, holding, leaving the critical section, released), CLOCK_MONOTONIC,
    which is one clock for every process of the machine.
    """
    kind, target, cycles, critical = argv[0], argv[1], int(argv[2]), float(argv[3])
    ready_fd, go_fd = int(argv[4]), int(argv[5])
    if kind == "sessionward":
        import functools

        from sessionward.locks import NamedLock

        lock = NamedLock(LOCK_NAME, state_dir=target)  # the Python API's default holder: this process
        acquire = functools.partial(lock.acquire, LOCK_TIMEOUT_S)
    elif kind == "filelock":
        import filelock

        lock = filelock.FileLock(target)  # defaults: poll_interval 0.05 s, timeout -1 (forever)
        acquire = lock.acquire
    else:
        raise SystemExit(f"unknown lock kind {kind!r}")
    release = lock.release
    acquire()
    release()
    os.write(ready_fd, b"r")
    os.close(ready_fd)
    os.read(go_fd, 1)  # returns (EOF) when the parent closes the write end: all at once
    clock, sleep = time.monotonic, time.sleep
    go = clock()
    records = []
    for _ in range(cycles):
        t0 = clock()
        acquire()
        t1 = clock()
        sleep(critical)
        t2 = clock()
        release()
        records.append((t0, t1, t2, clock()))
    json.dump({"pid": os.getpid(), "go": go, "cycles": records}, sys.stdout)
    return 0


def run_contention_trial(kind: str, target: str, cwd: str) -> dict:
    """LOCK_PROCESSES workers started together behind a pipe barrier; their merged records."""
    import select

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    workers: list[subprocess.Popen] = []
    try:
        try:
            for _ in range(LOCK_PROCESSES):
                argv = [sys.executable, str(Path(__file__).resolve()), LOCK_WORKER_ARG, kind, target,
                        str(LOCK_CYCLES), repr(LOCK_CRITICAL_S), str(ready_w), str(go_r)]
                workers.append(subprocess.Popen(argv, cwd=cwd, pass_fds=(ready_w, go_r), stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        finally:
            os.close(ready_w)
            os.close(go_r)
        ready, deadline = 0, time.monotonic() + 60.0
        while ready < LOCK_PROCESSES:
            readable, _, _ = select.select([ready_r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(ready_r, LOCK_PROCESSES) if readable else b""
            if not chunk:
                raise SystemExit(f"bench: {kind} lock workers did not all get ready ({ready}/{LOCK_PROCESSES})")
            ready += len(chunk)
        os.close(go_w)  # the barrier opens
        go_w = -1
        outputs = []
        for worker in workers:
            out, err = worker.communicate(timeout=600)
            if worker.returncode != 0:
                raise SystemExit(f"bench: a {kind} lock worker exited {worker.returncode}: {err.decode().strip()}")
            outputs.append(json.loads(out))
    finally:
        os.close(ready_r)
        if go_w >= 0:
            os.close(go_w)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return analyse_contention(kind, outputs)


def analyse_contention(kind: str, outputs: list[dict]) -> dict:
    cycles = [c for out in outputs for c in out["cycles"]]
    if len(cycles) != LOCK_PROCESSES * LOCK_CYCLES:
        raise SystemExit(f"bench: {kind} contention ran {len(cycles)} cycles, not {LOCK_PROCESSES * LOCK_CYCLES}")
    overlaps, latest_leave = 0, -math.inf  # a critical section entered before an earlier one left
    handoffs = []  # from the end of one critical section to the start of the next
    for enter, leave in sorted((c[1], c[2]) for c in cycles):
        if enter < latest_leave:
            overlaps += 1
        elif latest_leave > -math.inf:
            handoffs.append(enter - latest_leave)
        latest_leave = max(latest_leave, leave)
    start = min(out["go"] for out in outputs)
    return {
        "wall": max(c[3] for c in cycles) - start,
        "first_done": min(out["cycles"][-1][3] for out in outputs) - start,
        "waits": [c[1] - c[0] for c in cycles],
        "critical": [c[2] - c[1] for c in cycles],
        "overlaps": overlaps,
        "handoffs": handoffs,
        "go_spread": max(out["go"] for out in outputs) - start,
    }


def run_contention(root: Path, cwd: str, trials: int) -> dict:
    """Both kinds, `trials` times each, alternated; {kind: [trial results]}."""
    from sessionward.locks import NamedLock

    state = root / "contention-state"
    state.mkdir(mode=0o700)
    cases = [("sessionward", str(state)), ("filelock", str(root / "contention.filelock"))]
    results = interleave(cases, trials, lambda case: run_contention_trial(case[0], case[1], cwd))
    if NamedLock(LOCK_NAME, state_dir=str(state)).status().present:
        raise SystemExit("bench: the sessionward lock is still held after the contention runs")
    return results


def run_lock_section(root: Path, cwd: str, rounds: dict) -> dict:
    try:
        import filelock
        import portalocker  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"bench: the lock section compares with filelock and portalocker ({exc}); "
                         "install the dev extra: .venv/bin/pip install -e '.[dev]'") from None
    from sessionward import locks

    probe = filelock.FileLock(str(root / "never-taken.filelock"))  # making one takes nothing
    return {
        "uncontended": run_uncontended_locks(root, cwd, rounds["lock"]),
        "contention": run_contention(root, cwd, rounds["contention"]),
        "trials": rounds["contention"],
        "filelock_defaults": (probe.poll_interval, probe.timeout),
        "sessionward_polls": (getattr(locks, "_POLL_FIRST_S", None), getattr(locks, "_POLL_CAP_S", None)),
    }


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def lock_tables(results: dict, markdown: bool) -> str:
    rows = results["uncontended"]
    base = next(r for r in rows if r["role"] == "base")
    out = []
    for r in rows:
        ratio = r["median"] / base["median"]
        budget = ("PASS" if ratio < 1.0 else "FAIL (>= 1x FileLock)") if r["role"] == "budget" else "-"
        out.append([r["label"], f"{r['median']:.1f}", f"{r['p90']:.1f}", f"{ratio:.2f}", budget])
    title = "3a. Named locks, uncontended acquire+release in one process (budget: sessionward < FileLock; 'x FileLock' = ratio of medians)"
    headers = ["lock", "median us", "p90 us", "x FileLock", "budget"]
    parts = [render_table(title, headers, out, markdown)]

    labels = {"sessionward": "sessionward NamedLock", "filelock": "py-filelock FileLock"}
    summary = {}
    for kind, trials in results["contention"].items():
        waits = [w for t in trials for w in t["waits"]]
        summary[kind] = {
            "wall": median([t["wall"] for t in trials]),
            "rate": median([LOCK_PROCESSES * LOCK_CYCLES / t["wall"] for t in trials]),
            "first_done": median([t["first_done"] for t in trials]),
            "wait_median": median(waits), "wait_p99": p99(waits), "wait_max": max(waits),
            "critical": median([c for t in trials for c in t["critical"]]),
            "handoff": median([h for t in trials for h in t["handoffs"]]),
            "overlaps": sum(t["overlaps"] for t in trials),
            "cycles": sum(len(t["waits"]) for t in trials),
            "go_spread": max(t["go_spread"] for t in trials),
        }
    out = []
    for kind, s in summary.items():
        budget = "-"
        if kind == "sessionward":
            budget = "PASS" if s["wait_max"] <= summary["filelock"]["wait_max"] else "FAIL (worse than FileLock)"
        if s["overlaps"]:
            budget = "FAIL (no mutual exclusion)"
        out.append([
            labels[kind], str(s["cycles"]), f"{s['wall']:.2f}", f"{s['rate']:.0f}", f"{s['first_done']:.2f}",
            f"{1000 * s['wait_median']:.1f}", f"{1000 * s['wait_p99']:.1f}", f"{1000 * s['wait_max']:.1f}",
            f"{1000 * s['critical']:.2f}", f"{1000 * s['handoff']:.2f}", str(s["overlaps"]), budget,
        ])
    trials = results["trials"]
    title = (
        f"3b. Named locks, contention: {LOCK_PROCESSES} processes x {LOCK_CYCLES} cycles, critical section "
        f"time.sleep({LOCK_CRITICAL_S:g}); {trials} trial{'s' * (trials != 1)} per lock, alternated "
        "(budget: sessionward's worst wait <= FileLock's)"
    )
    headers = ["lock", "cycles", "wall s", "cycles/s", "1st done s", "wait med ms", "wait p99 ms",
               "wait max ms", "crit. ms", "handoff ms", "overlaps", "budget"]
    parts.append(render_table(title, headers, out, markdown))
    spread = max(s["go_spread"] for s in summary.values())
    poll, timeout = results["filelock_defaults"]
    first, cap = results["sessionward_polls"]
    polls = f" and poll from {first * 1000:g} ms, x1.5 a try up to {cap * 1000:g} ms, jittered" if first and cap else ""
    notes = [
        "wall s, cycles/s, 1st done s (when the first worker had finished all its cycles): medians over trials.",
        "wait (start of acquire to holding), crit. ms (the measured critical section) and handoff ms (end of one",
        "critical section to the start of the next: release, hand-over, acquire): over every cycle of every trial.",
        "overlaps: critical sections entered before an earlier one had left (0: mutual exclusion held).",
        f"FileLock runs with its defaults: poll_interval {poll:g} s, timeout {timeout:g} (wait forever), i.e. a",
        f"non-blocking flock retried every {poll:g} s. sessionward: NamedLock.acquire(timeout={LOCK_TIMEOUT_S:g}), the",
        "worker process as holder; waiters queue in arrival order (in the guard file)" + polls + ".",
        f"All workers start behind one pipe barrier (their first clock readings lie within {1000 * spread:.2f} ms).",
    ]
    parts.append("\n".join(notes))
    return "\n\n".join(parts)


# -- main -----------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run, noisier)")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--dir", help="where to make the temporary state (default: the system temp dir)")
    parser.add_argument("--only", action="append", choices=SECTIONS, metavar="SECTION",
                        help=f"run only this section (repeatable): {', '.join(SECTIONS)}")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    rounds = QUICK_ROUNDS if args.quick else ROUNDS
    sections = [name for name in SECTIONS if name in (args.only or SECTIONS)]
    root = Path(tempfile.mkdtemp(prefix="sessionward-perf-", dir=args.dir)).resolve()
    os.environ.pop("CLAUDE_PID", None)
    os.environ["SESSIONWARD_HOME"] = str(root / "home")  # before sessionward is used at all
    try:
        from sessionward.identity import resolve_owner

        tables = []
        python = sys.executable
        checkouts = make_checkouts(root)
        if "api" in sections or "process" in sections:
            with SleeperPool(OWNER_POOL) as pool:
                owners = [resolve_owner(explicit_pid=pid) for pid in pool.pids]
                me = resolve_owner(explicit_pid=os.getpid())
                if "api" in sections:
                    tables.append(api_tables(run_api_section(root, owners, me, checkouts, rounds["api"]), args.markdown))
                if "process" in sections:
                    procs, python = run_process_section(root, owners, checkouts, rounds)
                    tables.append(process_table(procs, args.markdown))
        if "locks" in sections:  # no owner pool: it would only add processes to schedule
            tables.append(lock_tables(run_lock_section(root, checkouts[0], rounds), args.markdown))
        if "hooks" in sections:  # its own owners: 50 processes named `claude` (bench/hooks_bench.py)
            sys.modules.setdefault("run", sys.modules[__name__])  # so hooks_bench imports this module, not a copy
            import hooks_bench

            hooks, python = hooks_bench.run_hook_section(root, checkouts, rounds)
            tables.append(hooks_bench.hook_table(hooks, args.markdown))
        if "watchers" in sections:  # its own owners: stand-in `claude` processes (bench/watchers_bench.py)
            sys.modules.setdefault("run", sys.modules[__name__])
            import watchers_bench

            watched, python = watchers_bench.run_watcher_section(root, checkouts, rounds)
            tables.append(watchers_bench.watcher_tables(watched, args.markdown))
        if "cli" in sections:  # the real Claude Code CLI, in a child process of its own (bench/cli_bench.py)
            sys.modules.setdefault("run", sys.modules[__name__])
            import cli_bench

            inside, python = cli_bench.run_cli_section(root, rounds["cli"])
            tables.append(cli_bench.cli_table(inside, args.markdown))
        if "statusline" in sections:  # its own owners: 15 `sleep` processes (bench/statusline_bench.py)
            sys.modules.setdefault("run", sys.modules[__name__])
            import statusline_bench

            with SleeperPool(statusline_bench.STATUS_SESSIONS) as pool:
                owners = [resolve_owner(explicit_pid=pid) for pid in pool.pids]
                lines = statusline_bench.run_statusline_section(root, checkouts, owners, rounds["statusline"])
            tables.append(statusline_bench.statusline_tables(lines, args.markdown))
        header = header_lines(str(root), python, rounds, sections)
        if args.markdown:
            print("\n".join(f"- {line}" for line in header))
        else:
            print("\n".join(header))
        for table in tables:
            print()
            print(table)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == LOCK_WORKER_ARG:
        sys.exit(lock_worker_main(sys.argv[2:]))
    sys.exit(main())
