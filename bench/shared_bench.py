"""Section 8 of bench/run.py (`--only shared`): the shared store (Redis) next to the local
one, side by side in one run (the method is in run.py's docstring).

A real redis-server is started in the temporary directory, as docs/SHARED_STORE.md says to
run it (AOF, appendfsync always), on a Unix socket and on 127.0.0.1; every case reaches it
as a user would, through SESSIONWARD_STORE.
  8a. A named lock's uncontended acquire+release cycle (NamedLock, Python API, one object
      per store, as in 3a), and a registry register (a new session, removed again untimed)
      and check (find_conflicts) at SHARED_SESSIONS live sessions, through the Python API:
      the local store, Redis over its Unix socket, Redis over TCP loopback.
  8b. Hook processes (`sessionward hook PreToolUse` on a Write, and UserPromptSubmit, the
      heartbeat) against SHARED_SESSIONS live sessions, local and Redis (Unix socket), next
      to `python -c pass` on the same interpreter: the hook budget is 2x that.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from api_bench import time_api_case
from harness import (
    PROCESS_BUDGET_RATIO,
    SleeperPool,
    interleave,
    launcher_interpreter,
    median,
    p90,
    render_table,
    wall_ms,
)
from hooks_bench import payload, write_payload

SHARED_SESSIONS = 50


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
                  (f"check|{label}", setting, str(state),
                   lambda store=store: registry.find_conflicts(cwd=checkouts[0], owner=me, store=store), None)]
    return cases


def time_case(case) -> float:
    """api_bench's timing of one operation, in the case's store and state directory."""
    _, setting, state, operation, undo = case
    _use(setting)
    os.environ["SESSIONWARD_HOME"] = state
    return time_api_case((None, None, operation, undo))


def hook_cases(root: Path, settings: dict, states: dict, checkouts: list) -> tuple:
    launcher = Path(sys.executable).parent / "sessionward"
    python = launcher_interpreter(launcher)
    target = os.path.join(checkouts[0], "notes.md")
    inputs = {"PreToolUse Write": write_payload("PreToolUse", 0, checkouts[0], target),
              "UserPromptSubmit": payload("UserPromptSubmit", 0, checkouts[0], prompt="go on")}
    cases = [("python -c pass", [python, "-c", "pass"], dict(os.environ), None)]
    for label, setting in settings.items():
        env = {k: v for k, v in os.environ.items() if k != "CLAUDE_PID"}
        env["SESSIONWARD_STORE"] = setting
        env["SESSIONWARD_HOME"] = states[label]  # the API cases' state: SHARED_SESSIONS live sessions
        env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        for event, data in inputs.items():
            cases.append((f"{event}|{label}", [str(launcher), "hook", event.split()[0]], env, data))
    return cases, python


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
            states = {case[0].split("|")[1]: case[2] for case in cases}
            hooks, python = hook_cases(root, {k: v for k, v in settings.items() if "TCP" not in k}, states, checkouts)
            for _, argv, env, data in hooks:  # warm the bytecode cache and the registries
                subprocess.run(argv, env=env, cwd=checkouts[0], input=data, capture_output=True)
            timed = interleave([(c[0], c) for c in hooks], rounds["hooks"],
                               lambda labelled: wall_ms(labelled[1], checkouts[0], labelled[1][3]))
    finally:
        server.close()
        os.environ.pop("SESSIONWARD_STORE", None)
        if home is not None:
            os.environ["SESSIONWARD_HOME"] = home
    return {"api": api, "hooks": timed}, python


def shared_tables(results: dict, markdown: bool) -> str:
    rows = []
    api = results["api"]
    for op in ("lock cycle", "register", "check"):
        base = median(api[f"{op}|local"])
        for label in ("local", "redis (unix socket)", "redis (TCP loopback)"):
            samples = api[f"{op}|{label}"]
            rows.append([op, label, f"{median(samples):.3f}", f"{p90(samples):.3f}", f"{median(samples) / base:.2f}x"])
    first = render_table(f"8a. Shared store: lock cycle and registry at {SHARED_SESSIONS} sessions, Python API (ms)",
                         ["operation", "store", "median", "p90", "vs local"], rows, markdown)
    hooks = results["hooks"]
    base = median(hooks["python -c pass"])
    rows = [["python -c pass", "-", f"{base:.1f}", f"{p90(hooks['python -c pass']):.1f}", "1.00x", "-"]]
    for label, samples in hooks.items():
        if "|" not in label:
            continue
        event, store = label.split("|")
        local = median(hooks[f"{event}|local"])
        rows.append([event, store, f"{median(samples):.1f}", f"{p90(samples):.1f}", f"{median(samples) / base:.2f}x",
                     f"{median(samples) / local:.2f}x"])
    second = render_table(f"8b. Hook processes with the shared store, {SHARED_SESSIONS} live sessions, the bench as their "
                          f"owner (wall ms; the budget, {PROCESS_BUDGET_RATIO:g}x pass, is judged in section 4's setting)",
                          ["hook", "store", "median", "p90", "vs pass", "vs local"], rows, markdown)
    return first + "\n\n" + second

