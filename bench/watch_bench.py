"""`sessionward watch` idle, with 50 live sessions: CPU it uses while nothing changes.

`.venv/bin/python bench/watch_bench.py [--seconds N]`: registers WATCH_SESSIONS sessions (each
owned by its own `sleep`, spread over three git checkouts, each with an activity record: a
few waiting, some busy, the rest idle) in a temporary SESSIONWARD_HOME, starts `sessionward
watch` in a private tmux server (150x50), lets it settle, then reads its user+system CPU time
from /proc/PID/stat over N seconds (default 30), and again with one session's activity
changing every second (the cost of a change: a snapshot and a redraw). Prints one table.
With --store shared, the same on the shared store: a redis-server of its own (AOF, a Unix
socket, as bench/shared_bench.py starts it), the sessions registered there; watch then also
polls the store's change counter (one small script per poll).
Nothing here fails on a timing: the budget row says PASS or FAIL (idle under 1% of one core).
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WATCH_SESSIONS = 50
IDLE_BUDGET_PCT = 1.0
VENV_BIN = Path(sys.executable).parent


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch_pid(tmux: list) -> int:
    pane_pid = int(subprocess.run(tmux + ["display", "-p", "-t", "w", "#{pane_pid}"], capture_output=True,
                                  text=True, check=True).stdout)
    for _ in range(100):
        kids = subprocess.run(["pgrep", "-P", str(pane_pid)], capture_output=True, text=True).stdout.split()
        if kids:
            return int(kids[0])
        time.sleep(0.05)
    return pane_pid  # exec'd in place


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--store", choices=("local", "shared"), default="local")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sessionward-watch-bench-"))
    os.environ["SESSIONWARD_HOME"] = str(root / "state")
    server = None
    if args.store == "shared":
        from shared_bench import Server

        server = Server(root)
    os.environ["SESSIONWARD_STORE"] = f"unix://{server.sock}" if server else "local"
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from sessionward import activity, registry
    from sessionward.identity import resolve_owner

    from helpers import make_git_repo

    checkouts = [str(make_git_repo(root / name)) for name in ("webapp", "api", "notes")]
    sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(WATCH_SESSIONS)]
    tmux = ["tmux", "-S", str(root / "tmux.sock"), "-f", "/dev/null"]
    try:
        for i, proc in enumerate(sleepers):
            sid = f"{i:08x}-0000-4000-8000-{i:012x}"
            cwd = checkouts[i % 3]
            registry.register_session(cwd, session_id=sid, owner=resolve_owner(proc.pid))
            activity.note_event("UserPromptSubmit", sid, {"cwd": cwd})
            if i % 10 == 0:
                activity.note_event("Notification", sid, {"notification_type": "permission_prompt", "cwd": cwd})
            elif i % 3 == 0:
                activity.note_event("Stop", sid, {"cwd": cwd})
        subprocess.run(tmux + ["new-session", "-d", "-s", "w", "-x", "150", "-y", "50",
                               f"env SESSIONWARD_HOME={root / 'state'} SESSIONWARD_STORE={os.environ['SESSIONWARD_STORE']} "
                               f"TERM=tmux-256color {VENV_BIN / 'sessionward'} watch"],
                       check=True)
        pid = watch_pid(tmux)
        time.sleep(3.0)  # started, first snapshot drawn
        rows = []
        before, start = cpu_seconds(pid), time.monotonic()
        time.sleep(args.seconds)
        idle = (cpu_seconds(pid) - before) / (time.monotonic() - start) * 100
        rows.append(("idle, nothing changes", idle, "PASS" if idle <= IDLE_BUDGET_PCT else "FAIL"))
        before, start = cpu_seconds(pid), time.monotonic()
        end = start + args.seconds
        tick = 0
        while time.monotonic() < end:
            tick += 1
            activity.note_event("PreToolUse", f"{1:08x}-0000-4000-8000-{1:012x}",
                                {"tool_name": "Bash", "tool_input": {"command": f"make {tick}"}, "cwd": checkouts[1]})
            time.sleep(1.0)
        busy = (cpu_seconds(pid) - before) / (time.monotonic() - start) * 100
        rows.append(("one session's activity changes every second", busy, "-"))
        screen = subprocess.run(tmux + ["capture-pane", "-p", "-t", "w"], capture_output=True, text=True).stdout
        assert f"{WATCH_SESSIONS} sessions" in screen, screen
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        for proc in sleepers:
            proc.kill()
            proc.wait()
        if server is not None:
            server.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}  host: {platform.node()}  python: {platform.python_version()}")
    print(f"sessionward watch, {args.store} store, {WATCH_SESSIONS} live sessions, 150x50 tmux pane, {args.seconds:g} s per row"
          f" (budget: idle <= {IDLE_BUDGET_PCT:g}% of one core)")
    print(f"{'case':<46} {'CPU % of one core':>18}  budget")
    for name, pct, verdict in rows:
        print(f"{name:<46} {pct:>18.2f}  {verdict}")


if __name__ == "__main__":
    main()
