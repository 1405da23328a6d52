"""Section 5 of bench/run.py (`--only watchers`): the life locks' watchers (identity.life).

Every owner process gets a watcher pair the first time one of its hooks runs (SessionStart:
ensure_watcher creates the life file locked and the hook holds it; once it has answered, it
points its standard streams at /dev/null and forks, and the child, once the hook has exited,
execs `python -I -S _watcher.py`, which forks its peer); every later hook of that process
finds the lock held (one open and one flock) and starts nothing. This section times both,
through the real launcher run by a stand-in `claude` (hooks_bench.ClaudeStandIn, CLAUDE_PID
set), next to `python -c pass`, interleaved round-robin, against WATCH_SESSIONS live sessions
each registered by its own stand-in's SessionStart (so WATCH_SESSIONS pairs run meanwhile):

  SessionStart, first of its process   a new stand-in each sample (started untimed); its
                                       first hook starts the pair. After each sample,
                                       untimed: SessionEnd, the stand-in killed, and a wait
                                       until its pair has gone (so the state stays the same)
  SessionStart, pair running           /clear in a session whose pair runs: probe only
  UserPromptSubmit, pair running       the heartbeat, which also makes sure of the pair

Budget (DESIGN.md, the issue): each row <= PROCESS_BUDGET_RATIO x `python -c pass`.

Then the memory the pairs of those WATCH_SESSIONS sessions hold: Rss and Pss from
/proc/PID/smaps_rollup, summed over every watcher process (found by its argv: the
_watcher.py script and a life file under this run's state directory), next to one idle
bare interpreter (`python -I -S` sleeping) for scale. Pss divides shared pages among the
processes sharing them (the interpreter's text, the peer's copy-on-write pages): it is what
the pairs add to the machine; Rss counts shared pages in every process.
"""

import os
import subprocess
import time
from pathlib import Path

from harness import (
    PROCESS_BUDGET_RATIO,
    against_pass,
    child_env,
    hooks_launcher,
    interleave,
    launcher_interpreter,
    make_store,
    median,
    p90,
    render_table,
)
from hooks_bench import ClaudeStandIn, hook_env, payload

WATCH_SESSIONS = 20
GONE_WAIT_S = 5.0  # a killed stand-in's pair exits within milliseconds; more is a broken run


def watcher_processes(state: Path) -> list[int]:
    """PIDs of the live watcher processes whose life file lies under `state`."""
    from sessionward.identity.life import life_dir

    prefix = (life_dir(str(state)) + "/").encode()
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"/_watcher.py") for part in argv) and any(part.startswith(prefix) for part in argv):
                pids.append(int(name))
    return pids


def memory_kib(pid: int) -> dict:
    """{"Rss": KiB, "Pss": KiB} of a process, from /proc/PID/smaps_rollup."""
    found = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            found[key] = int(rest.split()[0])
    return found


def run_watcher_section(root: Path, checkouts: list[str], rounds: dict) -> tuple[dict, str]:
    package_launcher = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "sessionward"
    if not package_launcher.exists():
        raise SystemExit(f"bench: no launcher at {package_launcher}; install the package into .venv first")
    python = launcher_interpreter(package_launcher)
    launcher = hooks_launcher(root, package_launcher)  # what install points the hooks at
    bin_dir = root / "watchers-bin"
    bin_dir.mkdir()
    store = make_store(root, "watchers-state")
    state = Path(store.registry_path).parent
    home = root / "watchers-user"
    home.mkdir()
    base = child_env(root, state, True)
    cwd = checkouts[0]
    stand_ins: list = []  # ClaudeStandIns, and the keeper of watcher_calls: closed or killed after
    try:
        return _watcher_section(python, launcher, bin_dir, state, home, base, cwd, rounds, stand_ins)
    finally:
        for process in stand_ins:
            if isinstance(process, ClaudeStandIn):
                process.close()
            else:
                process.kill()
                process.wait()


def _watcher_section(python, launcher, bin_dir, state, home, base, cwd, rounds, stand_ins) -> tuple[dict, str]:
    hook = [str(launcher), "hook"]

    def start_session(index: int) -> ClaudeStandIn:
        stand_in = ClaudeStandIn(bin_dir, python)
        done = stand_in.run(hook + ["SessionStart"], hook_env(base, home, stand_in.pid), cwd,
                            payload("SessionStart", index, cwd, source="startup"), capture=True)
        if done["rc"] != 0:
            raise SystemExit(f"bench: SessionStart exited {done['rc']}: {done['stderr'].strip()}")
        return stand_in

    for index in range(WATCH_SESSIONS):
        stand_ins.append(start_session(index))
    me = stand_ins[0]
    me_env = hook_env(base, home, me.pid)
    counter = iter(range(WATCH_SESSIONS, 10**9))

    def first_session_start(pair_first: bool) -> float:
        """A new stand-in's first SessionStart, timed; `pair_first`: its pair is started
        untimed before (the control: the same hook, with nothing left to start)."""
        from sessionward.identity import life, resolve_owner

        index = next(counter)
        stand_in = ClaudeStandIn(bin_dir, python)
        try:
            before = set(watcher_processes(state))
            if pair_first:
                life.ensure_watcher(resolve_owner(stand_in.pid), str(state))
                life._watched.clear()  # the bench's own cache: the hook is another process
            env = hook_env(base, home, stand_in.pid)
            done = stand_in.run(hook + ["SessionStart"], env, cwd, payload("SessionStart", index, cwd, source="startup"))
            stand_in.run(hook + ["SessionEnd"], env, cwd, payload("SessionEnd", index, cwd, reason="other"))
            started = set(watcher_processes(state)) - before
        finally:
            stand_in.close()
        if done["rc"] != 0 or not started:
            raise SystemExit(f"bench: a first SessionStart exited {done['rc']}; watchers started: {sorted(started)}")
        deadline = time.monotonic() + GONE_WAIT_S
        while set(watcher_processes(state)) & started:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: a stand-in's watchers outlived it: {sorted(started)}")
            time.sleep(0.005)
        return done["ms"]

    def in_me(event: str, **fields):
        def run() -> float:
            done = me.run(hook + [event], me_env, cwd, payload(event, 0, cwd, **fields))
            if done["rc"] != 0:
                raise SystemExit(f"bench: {event} exited {done['rc']}")
            return done["ms"]
        return run

    bare_env = hook_env(base, home, None)
    cases = [
        ("python -c pass", "base", lambda: me.run([python, "-c", "pass"], bare_env, cwd, b"{}")["ms"]),
        ("SessionStart, first of its process (starts the pair)", "budget", lambda: first_session_start(False)),
        ("SessionStart, first of its process, pair started before (control)", "info",
         lambda: first_session_start(True)),
        ("SessionStart, pair running (/clear: probe only)", "budget", in_me("SessionStart", source="clear")),
        ("UserPromptSubmit, pair running (heartbeat)", "budget", in_me("UserPromptSubmit", prompt="go on")),
    ]
    for case in cases:  # warm the bytecode cache; a broken case fails here
        case[2]()
    pairs_before = len(watcher_processes(state))
    walls = interleave(cases, rounds["hooks"], lambda case: case[2]())
    watchers = sorted(watcher_processes(state))
    if len(watchers) != 2 * WATCH_SESSIONS or pairs_before != len(watchers):
        raise SystemExit(f"bench: {len(watchers)} watcher processes for {WATCH_SESSIONS} sessions (before timing: "
                         f"{pairs_before}), not {2 * WATCH_SESSIONS}")
    memory = [memory_kib(pid) for pid in watchers]
    bare = subprocess.Popen([python, "-I", "-S", "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.3)
        bare_memory = memory_kib(bare.pid)
    finally:
        bare.stdin.close()
        bare.wait()
    in_process = watcher_calls(state, stand_ins)  # after the count: its keeper has a pair too
    calls = interleave(in_process, rounds["hooks"], lambda case: case[2]())
    rows = [{"label": label, "role": role, "median": median(walls[label]), "p90": p90(walls[label]),
             "max": max(walls[label])} for label, role, _ in cases]
    calls = [{"label": label, "median": median(calls[label]), "p90": p90(calls[label]), "max": max(calls[label])}
             for label, _, _ in in_process]
    return {"rows": rows, "calls": calls, "rounds": rounds["hooks"], "processes": len(watchers),
            "rss": sum(m["Rss"] for m in memory), "pss": sum(m["Pss"] for m in memory),
            "bare_rss": bare_memory["Rss"], "bare_pss": bare_memory["Pss"]}, python


def watcher_calls(state: Path, keepers: list) -> list:
    """(label, role, timed function -> ms): life.ensure_watcher in this process, for an owner
    without a pair (a new `sleep` each sample, untimed; killed after, and its pair awaited)
    and for one whose pair runs (a new process's first look: the cache of watched keys cleared)."""
    from sessionward.identity import life, resolve_owner

    keeper = subprocess.Popen(["sleep", "86400"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    keepers.append(keeper)
    held = resolve_owner(keeper.pid)
    life.ensure_watcher(held, str(state))

    def start() -> float:
        proc = subprocess.Popen(["sleep", "86400"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            owner = resolve_owner(proc.pid)
            before = time.perf_counter()
            ok = life.ensure_watcher(owner, str(state))
            elapsed = (time.perf_counter() - before) * 1000.0
        finally:
            proc.kill()
            proc.wait()
        key = life.life_key(owner.boot_id, owner.pidns, owner.pid, owner.start_time)
        deadline = time.monotonic() + GONE_WAIT_S
        while not ok or life.probe(key, str(state)) != life.MISSING:
            if not ok or time.monotonic() > deadline:
                raise SystemExit(f"bench: ensure_watcher started no pair, or it outlived its owner ({ok})")
            time.sleep(0.002)
        return elapsed

    def probe() -> float:
        life._watched.clear()
        before = time.perf_counter()
        life.ensure_watcher(held, str(state))
        return (time.perf_counter() - before) * 1000.0

    return [("life.ensure_watcher, starts the pair", "info", start),
            ("life.ensure_watcher, pair running (probe)", "info", probe)]


def watcher_tables(results: dict, markdown: bool) -> str:
    rows = results["rows"]
    base = next(r for r in rows if r["role"] == "base")
    out = []
    for r in rows:
        ratio, budget = against_pass(r, base)
        out.append([r["label"], f"{r['median']:.1f}", f"{r['p90']:.1f}", f"{r['max']:.1f}", f"{ratio:.2f}", budget])
    title = (f"5a. Hooks with watchers, {WATCH_SESSIONS} live sessions, each with its pair (budget: <= "
             f"{PROCESS_BUDGET_RATIO:g}x python -c pass, same interpreter; 'x pass' = ratio of medians)")
    parts = [render_table(title, ["hook", "median ms", "p90 ms", "max ms", "x pass", "budget"], out, markdown)]
    out = [[c["label"], f"{c['median']:.3f}", f"{c['p90']:.3f}", f"{c['max']:.3f}"] for c in results["calls"]]
    title = "5b. What a hook pays for its watcher, in process (this bench's process forks: larger than a hook's)"
    parts.append(render_table(title, ["call", "median ms", "p90 ms", "max ms"], out, markdown))
    n, mib = results["processes"], 1024.0
    memory = [
        [f"watchers of {WATCH_SESSIONS} sessions", str(n), f"{results['rss'] / mib:.1f}", f"{results['pss'] / mib:.1f}",
         f"{results['rss'] / mib / WATCH_SESSIONS:.2f}", f"{results['pss'] / mib / WATCH_SESSIONS:.2f}"],
        ["one idle `python -I -S` (for scale)", "1", f"{results['bare_rss'] / mib:.1f}",
         f"{results['bare_pss'] / mib:.1f}", "-", "-"],
    ]
    title = "5c. Watchers' memory (from /proc/PID/smaps_rollup, summed over the processes)"
    headers = ["what", "processes", "RSS MiB", "PSS MiB", "RSS MiB / session", "PSS MiB / session"]
    parts.append(render_table(title, headers, memory, markdown))
    parts.append("\n".join([
        "Each row runs `.venv/bin/sessionward hook <Event>` with the event's JSON on stdin, as the child of a stand-in",
        "`claude` (CLAUDE_PID), timed spawn to reap. 'first of its process': a new stand-in every sample, whose",
        f"SessionStart starts its pair; {results['rounds']} samples per row. PSS shares pages out among the processes",
        "mapping them (the interpreter, the peer's copy-on-write pages): what the pairs add to the machine.",
    ]))
    return "\n\n".join(parts)
