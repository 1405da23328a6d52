"""What every section of bench/run.py shares: statistics, tables, the round-robin interleave,
the fixtures (owner processes, checkouts, populated registries) and the process timers.

The section modules (api_bench, process_bench, locks_bench, hooks_bench, watchers_bench,
cli_bench, statusline_bench) import from here; run.py only orchestrates them, so no module
imports run.py.
"""

import math
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROCESS_BUDGET_RATIO = 2.0
TIME_BIN = "/usr/bin/time"  # GNU time, for peak RSS (%M)

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


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]




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



# -- whole processes -----------------------------------------------------------------------


def hooks_launcher(root: Path, launcher: Path, pack: bool = True) -> Path:
    """The launcher `sessionward install` writes for the hooks and the status line
    (sessionward.install.hook_launcher: Python without site), for `launcher`'s interpreter,
    at root/hooks/sessionward, with the bytecode pack it imports from beside it: what a user's
    hooks run. pack=False: root/hooks/sessionward-unpacked, whose pack is never written (the
    usual imports, to compare with)."""
    from sessionward.install.hook_launcher import BYTECODE_PACK_SUFFIX, import_dirs, render, render_bytecode_pack

    path = root / "hooks" / ("sessionward" if pack else "sessionward-unpacked")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pack_path = str(path) + BYTECODE_PACK_SUFFIX
        if pack:
            Path(pack_path).write_bytes(render_bytecode_pack())
        path.write_bytes(render(launcher_interpreter(launcher), import_dirs(), pack_path))
        path.chmod(0o755)
    return path


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



def against_pass(row: dict, base: dict) -> tuple[float, str]:
    """A process row's median over `python -c pass`'s (the base row), and its verdict: a
    "budget" row passes at most PROCESS_BUDGET_RATIO; any other row gets "-"."""
    ratio = row["median"] / base["median"]
    if row["role"] != "budget":
        return ratio, "-"
    return ratio, "PASS" if ratio <= PROCESS_BUDGET_RATIO else f"FAIL (> {PROCESS_BUDGET_RATIO:g}x)"


