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

Layout: this script only orchestrates. Each section's code is a module of its own
(api_bench, process_bench, locks_bench, hooks_bench, watchers_bench, cli_bench,
statusline_bench); what they share (statistics, tables, the interleave, owner processes,
checkouts, populated registries, process timers) is in bench/harness.py.

Sections:
  1. Registry operations through the Python API (--only api; bench/api_bench.py) at 10,
     100 and 1,000 sessions: register_session (a new session; removed again, untimed, so N stays N),
     load_live_sessions (list) and find_conflicts (check); us/session and the growth
     factor from N/10 to N show linearity. Budget: under REGISTRY_BUDGET_MS at 1,000
     sessions, and linear (the per-session cost at 1,000 at most LINEAR_SLACK times the
     one at 100). Table 1b times two components every operation pays, to show where the
     time goes: reading the registry (store.load_sessions), judging each owner alive, and
     the floor of any one-JSON-document design: a bare json.loads of the same bytes.
  2. Whole processes (--only process; bench/process_bench.py) against a registry of 50 live
     sessions (50 distinct owners), cwd in
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
  3. Named locks (--only locks; bench/locks_bench.py), next to py-filelock (its FileLock), portalocker and a raw flock.
     3a. Uncontended acquire+release in this process, one cycle per sample, the cases
     interleaved round-robin: sessionward's NamedLock (Python API, state_dir in the temp
     directory, cwd the bench's git checkout, as /end runs from a project), FileLock,
     portalocker.Lock (opens the file, flock LOCK_EX|LOCK_NB, release unlocks and closes),
     fcntl.flock LOCK_EX then LOCK_UN on an fd opened once; and, for context, a NamedLock made
     anew every cycle (`with NamedLock(...)`). Each lock is first checked to exclude a second
     contender while held and to be free after release. Budget: NamedLock's median below
     FileLock's (ratio < 1).
     3b. Contention: LOCK_PROCESSES worker processes (locks_bench.py, argv[1] == LOCK_WORKER_ARG)
     x LOCK_CYCLES cycles of acquire, time.sleep(LOCK_CRITICAL_S), release, on one lock; the
     same worker for NamedLock and for FileLock (with FileLock's defaults: 50 ms poll, no
     timeout). Workers take the lock once untimed, say ready on a pipe, and start together
     when the bench closes the write end of a second pipe they all block on. Each cycle is
     stamped on CLOCK_MONOTONIC (one clock for all processes): the wait is start of acquire
     to holding; critical sections are checked pairwise for overlap (mutual exclusion), and
     the gap between one and the next is the hand-over. Trials of the two locks alternate.
     Budget: NamedLock's worst wait (over all cycles of all trials) <= FileLock's.
  4. Claude Code hook processes (--only hooks; the code is in bench/hooks_bench.py): `<launcher> hook <Event>`
     through the launcher install writes (Python without site, the bytecode pack), with the event's
     JSON piped to stdin, next to `python -c pass` on the same interpreter (given the same
     stdin), against 50 live sessions whose owners are 50 processes named `claude` (CLAUDE_PID
     names one, as Claude Code sets it) and 2,000 claims over 1,000 files. Cases: PreToolUse
     Write on a file other live sessions just wrote (answers ask) and on an unclaimed one
     (no answer), PreToolUse Bash `ls -la` (no git: no answer) and `git checkout main` with
     other sessions in the worktree (ask), PostToolUse Write (records, replacing its own
     claim), SessionStart (registered already: answers with the sessions sharing its
     worktree), UserPromptSubmit and Stop (heartbeats), SessionEnd (re-registered and
     ended.json removed, untimed, after every sample), PreToolUse Write compiled on
     every run, and PreToolUse Write and SessionStart without the bytecode pack. Answers
     are checked before and after timing. Budget: every event's row (the asking git
     checkout aside) <= PROCESS_BUDGET_RATIO x `python -c pass`;
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
     --debug-file times them, 50 other live sessions holding 2,000 claims, on the local store
     and on a redis-server of its own, the sessions alternating between them. Budget: every
     event <= 1.3x the no-op, on each store. Skipped (and said so) without the CLI binary.
  7. The status line (--only statusline; bench/statusline_bench.py): CPU per refresh (user+sys
     of the children) of the command install writes, run as Claude Code runs it, on the
     unchanged path (the shell fast path prints the cached row) and the changed path (the
     stamp renewed: `sessionward status-line` renders), next to `sh -c :` and `python -c
     pass`, with 15 live sessions in the worktree. Budget: 15 sessions refreshing every 3 s
     take at most 2% of one core.
  8. The shared store (--only shared; bench/shared_bench.py): a real redis-server (AOF,
     appendfsync always) on a Unix socket and on 127.0.0.1, next to the local store: the
     lock cycle, register, heartbeat and check through the API, hook processes against the
     budget, and 16 processes contending for one lock.
"""

import argparse
import datetime
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import api_bench
import cli_bench
import hooks_bench
import locks_bench
import process_bench
import shared_bench
import statusline_bench
import watchers_bench
from harness import REPO, SleeperPool, make_checkouts

ROUNDS = {"api": 50, "process": 40, "hooks": 40, "rss": 5, "lock": 2000, "contention": 3, "cli": 30, "statusline": 100,
          "shared": 300}
QUICK_ROUNDS = {"api": 10, "process": 10, "hooks": 10, "rss": 2, "lock": 300, "contention": 1, "cli": 3, "statusline": 20,
                "shared": 50}
# each section's code: api_bench, process_bench, locks_bench, hooks_bench, watchers_bench, cli_bench, statusline_bench,
# shared_bench
SECTIONS = ("api", "process", "locks", "hooks", "watchers", "cli", "statusline", "shared")


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
        "cli": f"{rounds['cli']} (claude -p sessions per store, the stores alternating)",
        "statusline": f"{rounds['statusline']} (status line refreshes per case)",
        "locks": f"{rounds['lock']} (uncontended lock cycles), {rounds['contention']} (lock contention trials)",
        "shared": (f"{rounds['shared']} (shared store API), {rounds['hooks']} (hooks with the shared store), "
                   f"{rounds['contention']} (contention trials per store)"),
    }
    lines = [
        f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"host: {socket.gethostname()}",
        f"cpu: {cpu_model()}",
        f"python: {platform.python_version()} ({interpreter})",
        f"sessionward: {sessionward.__version__} at {git_revision()}",
    ]
    if "locks" in sections:
        lines.append(f"compared with: {locks_bench.lock_library_versions()}")
    if "shared" in sections:
        lines.append(f"shared store: {shared_bench.server_version()}, AOF appendfsync always, same machine")
    lines += [
        f"state dir filesystem: {filesystem_of(root)}",
        "rounds: " + ", ".join(counts[name] for name in sections) + "; cases interleaved round-robin",
    ]
    return lines


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
            with SleeperPool(max(api_bench.SIZES)) as pool:  # one owner process per session
                owners = [resolve_owner(explicit_pid=pid) for pid in pool.pids]
                me = resolve_owner(explicit_pid=os.getpid())
                if "api" in sections:
                    results = api_bench.run_api_section(root, owners, me, checkouts, rounds["api"])
                    tables.append(api_bench.api_tables(results, args.markdown))
                if "process" in sections:
                    procs, python = process_bench.run_process_section(root, owners, checkouts, rounds)
                    tables.append(process_bench.process_table(procs, args.markdown))
        if "locks" in sections:  # no owner pool: it would only add processes to schedule
            tables.append(locks_bench.lock_tables(locks_bench.run_lock_section(root, checkouts[0], rounds), args.markdown))
        if "hooks" in sections:  # its own owners: 50 processes named `claude` (bench/hooks_bench.py)
            hooks, python = hooks_bench.run_hook_section(root, checkouts, rounds)
            tables.append(hooks_bench.hook_table(hooks, args.markdown))
        if "watchers" in sections:  # its own owners: stand-in `claude` processes (bench/watchers_bench.py)
            watched, python = watchers_bench.run_watcher_section(root, checkouts, rounds)
            tables.append(watchers_bench.watcher_tables(watched, args.markdown))
        if "cli" in sections:  # the real Claude Code CLI, in a child process of its own (bench/cli_bench.py)
            inside, python = cli_bench.run_cli_section(root, rounds["cli"])
            tables.append(cli_bench.cli_table(inside, args.markdown))
        if "statusline" in sections:  # its own owners: 15 `sleep` processes (bench/statusline_bench.py)
            with SleeperPool(statusline_bench.STATUS_SESSIONS) as pool:
                owners = [resolve_owner(explicit_pid=pid) for pid in pool.pids]
                lines = statusline_bench.run_statusline_section(root, checkouts, owners, rounds["statusline"])
            tables.append(statusline_bench.statusline_tables(lines, args.markdown))
        if "shared" in sections:  # a redis-server of its own, and 50 `sleep` owners (bench/shared_bench.py)
            shared, python = shared_bench.run_shared_section(root, checkouts, rounds)
            tables.append(shared_bench.shared_tables(shared, args.markdown))
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
    sys.exit(main())
