"""Section 8 of bench/run.py (`--only shared`): the shared store (Redis) next to the local
one, side by side in one run (the method is in run.py's docstring).

A real redis-server is started in the temporary directory, as docs/SHARED_STORE.md says to
run it (AOF, appendfsync always), on a Unix socket and on 127.0.0.1; every case reaches it
as a user would, through SESSIONWARD_STORE.
  8a. A named lock's uncontended acquire+release cycle (NamedLock, Python API, one object
      per store, as in 3a), and a registry register (a new session, removed again untimed),
      heartbeat (of one session's owner) and check (find_conflicts) at SHARED_SESSIONS live
      sessions, through the Python API: the local store, Redis over its Unix socket, Redis
      over TCP loopback.
  8b. Hook processes (PreToolUse on a claimed Write, UserPromptSubmit, Stop, SessionStart)
      in section 4's setting (bench/hooks_bench.py: 50 sessions owned by live processes
      named `claude`, 2,000 claims, the hook run and timed by its session's own process),
      on the local store and on Redis (Unix socket), interleaved with `python -c pass` on
      the same interpreter: the hook budget is 2x that. With SESSIONWARD_BENCH_BEFORE=DIR (a
      checkout of an older commit with its own DIR/.venv), that checkout's hooks run too, on
      Redis database 1 of the same server, in the same loop: before and after side by side.
  8c. Contention: CONTENTION_PROCESSES processes take one named lock CONTENTION_CYCLES times
      each (section 3b's workers: acquire, time.sleep(1 ms), release, every step timed), on
      the local store and on Redis (Unix socket), trials alternated; no two critical sections
      may overlap.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from api_bench import time_api_case
from harness import (
    PROCESS_BUDGET_RATIO,
    SleeperPool,
    hooks_launcher,
    interleave,
    launcher_interpreter,
    median,
    p90,
    render_table,
)

SHARED_SESSIONS = 50
CONTENTION_PROCESSES = 16
CONTENTION_CYCLES = 50
BEFORE_ENV = "SESSIONWARD_BENCH_BEFORE"  # a checkout of an older commit, with its own .venv


class Server:
    """redis-server with AOF (appendfsync always) on a Unix socket and a loopback port."""

    def __init__(self, root: Path) -> None:
        import socket

        self.dir = root / "redis"
        self.dir.mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.sock = str(self.dir / "redis.sock")
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--unixsocket", self.sock, "--unixsocketperm", "700", "--dir", str(self.dir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--logfile", str(self.dir / "redis.log")],
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("redis-server did not start (apt-get install redis-server)")
            time.sleep(0.02)
        time.sleep(0.1)

    def stores(self) -> dict:
        return {"redis (unix socket)": f"unix://{self.sock}", "redis (TCP loopback)": f"redis://127.0.0.1:{self.port}/0"}

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def server_version() -> str:
    done = subprocess.run([shutil.which("redis-server") or "redis-server", "--version"], capture_output=True, text=True)
    return " ".join(done.stdout.split()[:3])


def _use(setting: str) -> None:
    os.environ["SESSIONWARD_STORE"] = setting  # store.current() follows it (chosen once per value)


def api_cases(root: Path, settings: dict, owners: list, me, checkouts: list) -> list:
    """(label, store setting, timed function, untimed undo) for every store."""
    from sessionward import locks, registry
    from sessionward.store import open_store

    cases = []
    for label, setting in settings.items():
        _use(setting)
        state = root / f"state-{len(cases)}"
        os.environ["SESSIONWARD_HOME"] = str(state)
        store = open_store()
        from harness import populate

        populate(store, SHARED_SESSIONS, owners, checkouts)
        lock = locks.NamedLock("bench-shared", state_dir=str(state) if setting == "local" else None)
        lock.acquire(timeout=5)  # warm: the session info, the connection
        lock.release()
        counter = iter(range(10**9))
        last: dict = {}

        def register(store=store, counter=counter, last=last):
            last["id"] = f"new-{next(counter)}"
            registry.register_session(checkouts[0], session_id=last["id"], owner=owners[0], store=store)

        def unregister(store=store, last=last):
            registry.unregister_sessions(session_id=last["id"], store=store)

        def cycle(lock=lock):
            lock.acquire(timeout=5)
            lock.release()

        cases += [(f"lock cycle|{label}", setting, str(state), cycle, None),
                  (f"register|{label}", setting, str(state), register, unregister),
                  (f"heartbeat|{label}", setting, str(state),
                   lambda store=store: registry.heartbeat(owner=owners[0], store=store), None),
                  (f"check|{label}", setting, str(state),
                   lambda store=store: registry.find_conflicts(cwd=checkouts[0], owner=me, store=store), None)]
    return cases


def time_case(case) -> float:
    """api_bench's timing of one operation, in the case's store and state directory."""
    _, setting, state, operation, undo = case
    _use(setting)
    os.environ["SESSIONWARD_HOME"] = state
    return time_api_case((None, None, operation, undo))


HOOK_EVENTS = ("PreToolUse Write, claimed by another session", "UserPromptSubmit (heartbeat)",
               "Stop (heartbeat, end lock not held)", "SessionStart (startup, registered, pair running)")


def run_hook_rows(root: Path, checkouts: list, settings: dict, rounds: int, launchers: dict | None = None) -> tuple:
    """8b: section 4's setting (bench/hooks_bench.py: HOOK_SESSIONS sessions owned by live
    processes named `claude`, HOOK_CLAIMS claims over HOOK_FILES files, the hook run and timed
    by its session's own process through CLAUDE_PID), once per store in `settings`, its
    HOOK_EVENTS cases interleaved with each other's and `python -c pass`. `launchers` names
    another checkout's launcher for some labels (BEFORE_ENV), this one's otherwise."""
    import hooks_bench as hb
    from harness import child_env, populate

    from sessionward.identity import resolve_owner
    from sessionward.store import open_store

    package_launcher = Path(sys.executable).parent / "sessionward"
    python = launcher_interpreter(package_launcher)
    launcher = hooks_launcher(root, package_launcher)  # what install points the hooks at
    bin_dir = root / "shared-bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.symlink_to(shutil.which("sleep") or "/bin/sleep")
    home = root / "shared-hooks-user"
    home.mkdir()
    files = hb.make_files([str(Path(c) / "shared-files") for c in checkouts])
    main = str(checkouts[hb.ME % len(checkouts)])
    targets = {name: str(Path(main) / "src" / f"shared-{name}.py") for name in ("claimed", "unclaimed", "written")}
    for path in targets.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("print('hello')\n" * 40)
    stand_in = hb.ClaudeStandIn(bin_dir, python)
    cases: list = []
    try:
        with SleeperPool(hb.HOOK_SESSIONS, program=str(claude), seconds=86400) as pool:
            pids = list(pool.pids)
            pids[hb.ME] = stand_in.pid
            owners = [resolve_owner(explicit_pid=pid) for pid in pids]
            for label, setting in settings.items():
                _use(setting)
                state = root / f"shared-hooks-{len(cases)}"
                state.mkdir(mode=0o700)
                os.environ["SESSIONWARD_HOME"] = str(state)
                populate(open_store(), hb.HOOK_SESSIONS, owners, checkouts)
                hb.record_claims(state, owners, checkouts, files, targets)
                env = hb.hook_env(child_env(root, state, True), home, stand_in.pid)
                env["SESSIONWARD_STORE"] = setting
                no_end = SimpleNamespace(cwd=main)  # its SessionEnd case is not run here
                case_launcher = (launchers or {}).get(label, launcher)
                for case in hb.hook_cases(root, state, python, case_launcher, case_launcher, owners, pids, checkouts, targets,
                                          no_end):
                    if case.label in HOOK_EVENTS:
                        cases.append(case._replace(label=f"{case.label}|{label}", env=env))
                    elif case.role == "base" and not cases:
                        cases.append(case)
            for case in cases:
                hb.verify_hook_case(case, owners, targets, stand_in)  # the answer, and warm
            walls = interleave(cases, rounds, lambda case: stand_in.run(case.argv, case.env, case.cwd, case.stdin)["ms"])
            for case in cases:  # the fixture has not drifted
                hb.verify_hook_case(case, owners, targets, stand_in)
    finally:
        stand_in.close()
    return walls, python


def run_shared_section(root: Path, checkouts: list, rounds: dict) -> tuple:
    from sessionward.identity import resolve_owner

    server = Server(root)
    home = os.environ.get("SESSIONWARD_HOME")
    try:
        settings = {"local": "local", **server.stores()}
        with SleeperPool(SHARED_SESSIONS) as pool:
            owners = [resolve_owner(explicit_pid=pid) for pid in pool.pids]
            me = resolve_owner(explicit_pid=os.getpid())
            cases = api_cases(root, settings, owners, me, checkouts)
            for case in cases:
                time_case(case)
            api = interleave(cases, rounds["shared"], time_case)
        hook_settings = {k: v for k, v in settings.items() if "TCP" not in k}
        launchers = {}
        before = os.environ.get(BEFORE_ENV)
        if before:  # the same hooks of an older checkout, on a database of their own, in the same loop
            commit = subprocess.run(["git", "-C", before, "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
            label = f"redis (unix socket), before ({commit or before})"
            hook_settings[label] = f"unix://{server.sock}?db=1"
            launchers[label] = Path(before) / ".venv" / "bin" / "sessionward"
        timed, python = run_hook_rows(root, checkouts, hook_settings, rounds["hooks"], launchers)
        contention = run_contention_rows(root, server, checkouts[0], rounds["contention"])
    finally:
        server.close()
        os.environ.pop("SESSIONWARD_STORE", None)
        if home is not None:
            os.environ["SESSIONWARD_HOME"] = home
    return {"api": api, "hooks": timed, "contention": contention}, python


def run_contention_rows(root: Path, server: Server, cwd: str, trials: int) -> dict:
    """{store label: [trial results]}: the lock contention of 8c, local and Redis alternated."""
    from locks_bench import run_contention_trial

    state = root / "shared-contention"
    state.mkdir(mode=0o700)
    cases = [("local", "sessionward", str(state)), ("redis (unix socket)", "sessionward-shared", f"unix://{server.sock}")]
    return interleave(cases, trials, lambda case: run_contention_trial(case[1], case[2], cwd, CONTENTION_PROCESSES,
                                                                       CONTENTION_CYCLES))


def shared_tables(results: dict, markdown: bool) -> str:
    rows = []
    api = results["api"]
    for op in ("lock cycle", "register", "heartbeat", "check"):
        base = median(api[f"{op}|local"])
        for label in ("local", "redis (unix socket)", "redis (TCP loopback)"):
            samples = api[f"{op}|{label}"]
            rows.append([op, label, f"{median(samples):.3f}", f"{p90(samples):.3f}", f"{median(samples) / base:.2f}x"])
    first = render_table(f"8a. Shared store: lock cycle and registry at {SHARED_SESSIONS} sessions, Python API (ms)",
                         ["operation", "store", "median", "p90", "vs local"], rows, markdown)
    hooks = results["hooks"]
    base = median(hooks["python -c pass"])
    rows = [["python -c pass", "-", f"{base:.1f}", f"{p90(hooks['python -c pass']):.1f}", "1.00x", "-", "-"]]
    for label, samples in sorted(hooks.items(), key=lambda item: item[0].split("|")[0]):
        if "|" not in label:
            continue
        event, store = label.split("|")
        local = median(hooks[f"{event}|local"])
        ratio = median(samples) / base
        verdict = "PASS" if ratio <= PROCESS_BUDGET_RATIO else f"FAIL (> {PROCESS_BUDGET_RATIO:g}x)"
        rows.append([event, store, f"{median(samples):.1f}", f"{p90(samples):.1f}", f"{ratio:.2f}x",
                     f"{median(samples) / local:.2f}x", verdict])
    import hooks_bench as hb

    second = render_table(
        f"8b. Hook processes on the shared store in section 4's setting ({hb.HOOK_SESSIONS} sessions owned by live "
        f"processes named claude, {hb.HOOK_CLAIMS:,} claims over {hb.HOOK_FILES:,} files, run and timed by the "
        f"session's own process), local and Redis side by side (wall ms; budget {PROCESS_BUDGET_RATIO:g}x pass)",
        ["hook", "store", "median", "p90", "vs pass", "vs local", "budget"], rows, markdown)
    from locks_bench import CONTENTION_HEADERS, LOCK_CRITICAL_S, contention_row, contention_summary

    rows = []
    for store, trials in results["contention"].items():
        summary = contention_summary(trials)
        rows.append([store, *contention_row(summary), "FAIL (no mutual exclusion)" if summary["overlaps"] else "PASS"])
    trials = len(next(iter(results["contention"].values())))
    third = render_table(
        f"8c. Contention: {CONTENTION_PROCESSES} processes x {CONTENTION_CYCLES} cycles of one named lock, critical "
        f"section time.sleep({LOCK_CRITICAL_S:g}); {trials} trial{'s' * (trials != 1)} per store, alternated "
        "(must: no overlap)", ["store", *CONTENTION_HEADERS, "exclusion"], rows, markdown)
    return first + "\n\n" + second + "\n\n" + third

