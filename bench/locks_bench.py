"""Section 3 of bench/run.py (`--only locks`): named locks next to py-filelock, portalocker
and a raw flock (the method is in run.py's docstring). Its contention workers are this
script: `locks_bench.py _lock_worker ...`."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import interleave, median, p90, p99, render_table

LOCK_NAME = "bench"
LOCK_TIMEOUT_S = 60.0  # never reached: a timeout is a broken run, not a slow one
LOCK_PROCESSES = 8
LOCK_CYCLES = 200
LOCK_CRITICAL_S = 0.001  # time.sleep: the holder is off the CPU, as in a save doing I/O
LOCK_WORKER_ARG = "_lock_worker"  # argv[1] of a contention worker (this very script)



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
    """A contender: `locks_bench.py _lock_worker KIND TARGET CYCLES CRITICAL_S READY_FD GO_FD`;
    KIND sessionward (TARGET a state directory), sessionward-shared (TARGET a shared store's
    URL) or filelock (TARGET a lock file).

    Takes the lock once (untimed: imports, who it is), says ready, waits at the barrier, then
    runs CYCLES cycles of acquire, sleep CRITICAL_S, release; prints its records as JSON:
    (start of acquire, holding, leaving the critical section, released), CLOCK_MONOTONIC,
    which is one clock for every process of the machine.
    """
    kind, target, cycles, critical = argv[0], argv[1], int(argv[2]), float(argv[3])
    ready_fd, go_fd = int(argv[4]), int(argv[5])
    if kind in ("sessionward", "sessionward-shared"):
        import functools

        if kind == "sessionward-shared":
            os.environ["SESSIONWARD_STORE"] = target  # the shared store's URL, before sessionward is used
        from sessionward.locks import NamedLock

        # The Python API's default holder: this process.
        lock = NamedLock(LOCK_NAME, state_dir=None if kind == "sessionward-shared" else target)
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


def run_contention_trial(kind: str, target: str, cwd: str, processes: int = LOCK_PROCESSES,
                         cycles: int = LOCK_CYCLES) -> dict:
    """`processes` workers of `cycles` cycles started together behind a pipe barrier; their
    merged records."""
    import select

    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    workers: list[subprocess.Popen] = []
    try:
        try:
            for _ in range(processes):
                argv = [sys.executable, str(Path(__file__).resolve()), LOCK_WORKER_ARG, kind, target,
                        str(cycles), repr(LOCK_CRITICAL_S), str(ready_w), str(go_r)]
                workers.append(subprocess.Popen(argv, cwd=cwd, pass_fds=(ready_w, go_r), stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        finally:
            os.close(ready_w)
            os.close(go_r)
        ready, deadline = 0, time.monotonic() + 60.0
        while ready < processes:
            readable, _, _ = select.select([ready_r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(ready_r, processes) if readable else b""
            if not chunk:
                raise SystemExit(f"bench: {kind} lock workers did not all get ready ({ready}/{processes})")
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
    return analyse_contention(kind, outputs, processes * cycles)


def analyse_contention(kind: str, outputs: list[dict], expected: int) -> dict:
    cycles = [c for out in outputs for c in out["cycles"]]
    if len(cycles) != expected:
        raise SystemExit(f"bench: {kind} contention ran {len(cycles)} cycles, not {expected}")
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


def contention_summary(trials: list) -> dict:
    """One lock's contention trials (run_contention_trial's results) in a few numbers."""
    waits = [w for t in trials for w in t["waits"]]
    return {
        "wall": median([t["wall"] for t in trials]),
        "rate": median([len(t["waits"]) / t["wall"] for t in trials]),
        "first_done": median([t["first_done"] for t in trials]),
        "wait_median": median(waits), "wait_p99": p99(waits), "wait_max": max(waits),
        "critical": median([c for t in trials for c in t["critical"]]),
        "handoff": median([h for t in trials for h in t["handoffs"]]),
        "overlaps": sum(t["overlaps"] for t in trials),
        "cycles": sum(len(t["waits"]) for t in trials),
        "go_spread": max(t["go_spread"] for t in trials),
    }


CONTENTION_HEADERS = ["cycles", "wall s", "cycles/s", "1st done s", "wait med ms", "wait p99 ms", "wait max ms",
                      "crit. ms", "handoff ms", "overlaps"]


def contention_row(s: dict) -> list:
    """contention_summary's numbers under CONTENTION_HEADERS."""
    return [str(s["cycles"]), f"{s['wall']:.2f}", f"{s['rate']:.0f}", f"{s['first_done']:.2f}",
            f"{1000 * s['wait_median']:.1f}", f"{1000 * s['wait_p99']:.1f}", f"{1000 * s['wait_max']:.1f}",
            f"{1000 * s['critical']:.2f}", f"{1000 * s['handoff']:.2f}", str(s["overlaps"])]


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
    summary = {kind: contention_summary(trials) for kind, trials in results["contention"].items()}
    out = []
    for kind, s in summary.items():
        budget = "-"
        if kind == "sessionward":
            budget = "PASS" if s["wait_max"] <= summary["filelock"]["wait_max"] else "FAIL (worse than FileLock)"
        if s["overlaps"]:
            budget = "FAIL (no mutual exclusion)"
        out.append([labels[kind], *contention_row(s), budget])
    trials = results["trials"]
    title = (
        f"3b. Named locks, contention: {LOCK_PROCESSES} processes x {LOCK_CYCLES} cycles, critical section "
        f"time.sleep({LOCK_CRITICAL_S:g}); {trials} trial{'s' * (trials != 1)} per lock, alternated "
        "(budget: sessionward's worst wait <= FileLock's)"
    )
    headers = ["lock", *CONTENTION_HEADERS, "budget"]
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



if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == LOCK_WORKER_ARG:
        sys.exit(lock_worker_main(sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} {LOCK_WORKER_ARG} KIND TARGET CYCLES CRITICAL_S READY_FD GO_FD (run by run.py)")
