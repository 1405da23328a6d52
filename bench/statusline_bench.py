"""Section 6 of bench/run.py (`--only statusline`): the status line's CPU per refresh.

Claude Code re-runs every session's status line every refreshInterval seconds (install sets
STATUS_LINE_REFRESH_S, 3). The budget (the issue): with STATUS_SESSIONS sessions refreshing
that often, all their status lines together take at most 2% of one core, about 4 ms of CPU
per refresh. Each sample runs exactly what Claude Code runs: `/bin/sh -c "<the command
install writes>"` with a statusLine JSON (compact, as Claude Code sends it, about 600
bytes) on stdin, with STATUS_SESSIONS live sessions (owners: `sleep` processes) in the
checkout. CPU is user + system time of the children (getrusage(RUSAGE_CHILDREN) before and
after each run, so the shell, the fast path and any interpreter it starts are all counted);
wall time beside it. Cases, interleaved round-robin:

  unchanged     nothing changed since the row was cached: the shell fast path alone
  changed       the status stamp renewed before each sample (untimed): the fast path
                finds it and runs `sessionward status-line`, which renders and caches again
  sh -c :       an empty shell command, the floor of any statusLine command
  python -c pass  the launcher's interpreter doing nothing, for scale

The last line: STATUS_SESSIONS sessions x one refresh every STATUS_LINE_REFRESH_S on the
unchanged path, as a share of one core.
"""

import json
import os
import resource
import subprocess
import time
from pathlib import Path

from harness import hooks_launcher, interleave, launcher_interpreter, median, p90, populate, render_table

STATUS_SESSIONS = 15
BUDGET_SHARE = 0.02  # of one core, all STATUS_SESSIONS status lines together
SESSION_ID = "bench000-0000-4000-8000-000000000000"


def run_statusline_section(root: Path, checkouts: list[str], owners: list, rounds: int) -> dict:
    from sessionward import status_stamp
    from sessionward.install.settings import STATUS_LINE_REFRESH_S, our_status_line
    from sessionward.store import open_store

    package_launcher = Path(os.environ.get("SESSIONWARD_BENCH_LAUNCHER",
                                            Path(__file__).resolve().parent.parent / ".venv" / "bin" / "sessionward"))
    python = launcher_interpreter(package_launcher)
    launcher = hooks_launcher(root, package_launcher)  # what install points the status line at
    state = Path(os.environ["SESSIONWARD_HOME"])
    populate(open_store(), STATUS_SESSIONS, owners[:STATUS_SESSIONS], checkouts[:1])  # the store the status line reads
    cwd = checkouts[0]
    env = {k: v for k, v in os.environ.items() if k != "CLAUDE_PID"}
    env["SESSIONWARD_HOME"] = str(state)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    raw = json.dumps({
        "session_id": SESSION_ID, "transcript_path": f"/home/u/.claude/projects/p/{SESSION_ID}.jsonl", "cwd": cwd,
        "model": {"id": "claude-opus-4-1", "display_name": "Opus"},
        "workspace": {"current_dir": cwd, "project_dir": cwd, "added_dirs": []}, "version": "2.1.331",
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 0.01, "total_duration_ms": 1234, "total_api_duration_ms": 100,
                 "total_lines_added": 3, "total_lines_removed": 1},
        "exceeds_200k_tokens": False,
    }, separators=(",", ":")).encode()
    command = our_status_line(str(launcher))["command"]
    cache = state / "sessionward" / "status" / f"{SESSION_ID}.row"

    def refresh():
        return subprocess.run(["/bin/sh", "-c", command], input=raw, env=env, cwd=cwd, capture_output=True)

    first = refresh()
    row = first.stdout.decode().strip()
    if first.returncode or "other sessions in this worktree" not in row or not cache.exists():
        raise SystemExit(f"statusline bench: the status line did not render and cache its row: {first}")
    cases = [
        ("unchanged (fast path)", ["/bin/sh", "-c", command], raw, None),
        ("changed (renders)", ["/bin/sh", "-c", command], raw, lambda: status_stamp.touch(str(state))),
        ("sh -c :", ["/bin/sh", "-c", ":"], raw, None),
        ("python -c pass", [python, "-c", "pass"], raw, None),
    ]

    def run_one(case):
        _, argv, stdin, before = case
        if before is not None:
            before()
        inode = cache.stat().st_ino
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, input=stdin, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = (time.perf_counter() - start) * 1000.0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) * 1000.0
        rendered = cache.stat().st_ino != inode
        return cpu, wall, rendered

    results = interleave(cases, rounds, run_one)
    # Each case did what it is named for: the fast path never rendered, the changed path always did.
    assert not any(r for _, _, r in results["unchanged (fast path)"]), "the unchanged path rendered"
    assert all(r for _, _, r in results["changed (renders)"]), "the changed path did not render"
    return {"results": results, "row": row, "refresh_s": STATUS_LINE_REFRESH_S, "command": command}


def statusline_tables(out: dict, markdown: bool) -> str:
    results, refresh_s = out["results"], out["refresh_s"]
    rows = []
    for label, samples in results.items():
        cpu = [c for c, _, _ in samples]
        wall = [w for _, w, _ in samples]
        rows.append([label, f"{median(cpu):.2f}", f"{p90(cpu):.2f}", f"{median(wall):.2f}", str(len(samples))])
    fast = median([c for c, _, _ in results["unchanged (fast path)"]])
    changed = median([c for c, _, _ in results["changed (renders)"]])
    share = STATUS_SESSIONS * fast / (refresh_s * 1000.0)
    verdict = "PASS" if share <= BUDGET_SHARE else f"FAIL (> {BUDGET_SHARE:.0%})"
    table = render_table(
        f"7. Status line: CPU per refresh (user+sys of the children), {STATUS_SESSIONS} live sessions in the worktree",
        ["case", "CPU median ms", "CPU p90 ms", "wall median ms", "n"], rows, markdown)
    lines = [table, "",
             f"{STATUS_SESSIONS} sessions every {refresh_s} s on the unchanged path = {share:.2%} of one core "
             f"(budget {BUDGET_SHARE:.0%}): {verdict}; a render (changed path) costs {changed / fast:.0f}x the fast path.",
             f"row: {out['row']}"]
    return "\n".join(lines)
