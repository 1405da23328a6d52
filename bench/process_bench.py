"""Section 2 of bench/run.py (`--only process`): whole processes against a registry of 50
live sessions, next to `python -c pass` (the method is in run.py's docstring)."""

import os
import re
import subprocess
from pathlib import Path

from harness import (
    PROCESS_BUDGET_RATIO,
    REPO,
    against_pass,
    child_env,
    interleave,
    launcher_interpreter,
    make_store,
    median,
    p90,
    peak_rss_kib,
    populate,
    render_table,
    wall_ms,
)

PROCESS_SESSIONS = 50

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

