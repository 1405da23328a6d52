"""Section 6 of bench/run.py (`--only cli`): the hooks inside the real Claude Code CLI.

DESIGN's budget: "Inside the real Claude Code CLI, as its own debug log times them, every
event's hook costs at most 1.3x a no-op hook (`python -c pass`) run beside it, with other
live sessions holding claims." This runs `claude -p` (CLI_VERSION, the binary below) offline
against the mock Messages API of tests/e2e (mock_messages_api.py, driven through
claude_harness.py, both imported as they are), 30 times per store (3 with --quick) one after
the other, each a whole session whose scripted model calls Write and Bash a few times:

    Write a new file, Bash `ls -la`, Write another, Bash `git status --short`, Edit the first,
    then a final answer

so every event fires: SessionStart, UserPromptSubmit, PreToolUse (Write, Bash, Edit),
PostToolUse (Write, Edit), Stop, SessionEnd. settings.json (in a private HOME) gives every
event, with install's matchers (sessionward.install.settings.HOOKS), two handlers in one
group: sessionward's own command as install writes it (`<launcher> hook <Event>`) and a no-op
`<python> -c pass` on the launcher's interpreter. Claude Code runs the handlers of one event
in parallel, and logs each with `--debug-file`:

    Hooks: <Event> [<command>] finished with status 0 (NNms)

which is what is read: per event, the median of ours, the median of the no-op's, and their
ratio (medians over every firing of that event in every run). PASS at most CLI_BUDGET_RATIO.

The state is this section's own (SESSIONWARD_HOME and HOME in the temporary directory): as
in section 4, CLI_SESSIONS other live sessions owned by processes named `claude`, spread over
harness.make_checkouts's three checkouts, holding HOOK_CLAIMS claims over HOOK_FILES files (hooks_bench's
fixture); the CLI works in the main checkout, which a third of them share (its SessionStart
answers with their names). Every run is a new `claude` process: its first SessionStart starts
its watcher pair (identity.life), as a real session's does.

Both stores, as DESIGN's budget says ("with the shared store too"), in one run: the local
store, and a redis-server of the section's own (shared_bench.Server: AOF, appendfsync
always) reached over its Unix socket through SESSIONWARD_STORE, which claude and so every
hook inherit; the same sessions and claims are written to each. The sessions alternate,
local then shared, so that both stores meet the same moments of a noisy machine; each row
names its store. SESSIONWARD_BENCH_CLI_STORE=local (or =shared) runs one store alone; without
redis-server the shared store's rows say so. Why so many sessions: a session fires
SessionStart once, and at 20 firings the ratio of medians moved from 1.16x to 1.68x from
one run to the next (docs/BENCHMARKS.md, 2026-12-06); the spread narrows with the firings.

Offline and hermetic: the section re-runs itself (this file, `--child`) inside `unshare -n`
with only loopback up, when it can (root, unshare and ip present); otherwise it runs without
the namespace, with the mock on 127.0.0.1 all the same, and the header says which. No
binary (SESSIONWARD_TEST_CLAUDE, else CLI_DEFAULT_BIN): the section says so and is skipped.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLI_VERSION = "2.1.331"
CLI_DEFAULT_BIN = Path.home() / ".cache" / "sessionward-test" / "claude-code" / CLI_VERSION / "node_modules" / ".bin" / "claude"
CLI_BUDGET_RATIO = 1.3
CLI_SESSIONS = 50
CLI_RUN_TIMEOUT_S = 180.0
EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd")
HOOK_LINE = re.compile(r"Hooks: (\w+)(?::\w+)? \[(.*?)\] finished with status (-?\d+) \((\d+)ms\)")
# SessionEnd's handlers are logged without a duration (2.1.331): "SessionEnd:other [CMD] completed with status 0".
END_LINE = re.compile(r"(\S+) \[DEBUG\] SessionEnd(?::\w+)? \[(.*?)\] completed with status (-?\d+)")
CHILD_ARG = "--child"
STORE_ENV = "SESSIONWARD_BENCH_CLI_STORE"  # "local" or "shared": that store alone (default: both, alternating)
STORES = ("local", "shared")


def claude_binary() -> Path | None:
    given = os.environ.get("SESSIONWARD_TEST_CLAUDE")
    path = Path(given) if given else CLI_DEFAULT_BIN
    return path if os.access(path, os.X_OK) else None


def stores_to_run() -> tuple:
    """The stores this run measures: STORE_ENV's one, else both (the shared one only where
    redis-server is installed)."""
    chosen = os.environ.get(STORE_ENV, "")
    if chosen in STORES:
        return (chosen,)
    return STORES if shutil.which("redis-server") else ("local",)


def can_isolate() -> bool:
    """Root with unshare and ip: a network namespace with only loopback up."""
    return os.geteuid() == 0 and bool(shutil.which("unshare")) and bool(shutil.which("ip"))


def run_cli_section(root: Path, runs: int) -> tuple[dict, str]:
    """Run the section in a child process (inside `unshare -n` when possible); its results."""
    from harness import launcher_interpreter

    launcher = REPO / ".venv" / "bin" / "sessionward"
    python = launcher_interpreter(launcher)
    claude = claude_binary()
    if claude is None:
        return {"skipped": f"no Claude Code CLI at {os.environ.get('SESSIONWARD_TEST_CLAUDE') or CLI_DEFAULT_BIN}"}, python
    work = root / "cli"
    work.mkdir()
    stores = stores_to_run()
    child = [sys.executable, str(Path(__file__).resolve()), CHILD_ARG, str(work), str(claude), str(runs), ",".join(stores)]
    isolated = can_isolate()
    if isolated:
        line = " ".join(_quote(a) for a in child)
        argv = ["unshare", "-n", "--", "sh", "-c", f"ip link set lo up && exec {line}"]
    else:
        argv = child
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_RUN_TIMEOUT_S * runs * len(stores) + 300)
    if done.returncode != 0:
        raise SystemExit(f"bench: the cli section failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    results["isolated"] = isolated
    return results, python


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# -- the child: fixture, runs, the debug logs -------------------------------------------------


def child_main(work: Path, claude: str, runs: int, stores: tuple) -> int:
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(REPO / "tests"))  # tests/e2e: the harness and the mock, as they are
    import harness

    # As section 4: SESSIONWARD_HOME here, a warm bytecode cache of our own (the warm-up run
    # writes it), never PYTHONDONTWRITEBYTECODE; set before sessionward is used at all, and
    # inherited by claude and so by every hook.
    env = harness.child_env(work, work / "state", True)
    os.environ.clear()
    os.environ.update(env)

    (work / "state").mkdir(mode=0o700)
    checkouts = harness.make_checkouts(work)
    bin_dir = work / "bin"
    bin_dir.mkdir()
    sleeper = bin_dir / "claude"  # comm `claude`: the other sessions look like Claude Code's
    sleeper.symlink_to(shutil.which("sleep") or "/bin/sleep")
    package_launcher = REPO / ".venv" / "bin" / "sessionward"
    python = harness.launcher_interpreter(package_launcher)
    launcher = harness.hooks_launcher(work, package_launcher)  # what install points the hooks at
    server = None
    urls = {"local": None}
    if "shared" in stores:
        from shared_bench import Server

        server = Server(work)
        urls["shared"] = f"unix://{server.sock}"
    try:
        results = _child_runs(work, claude, checkouts, sleeper, launcher, python, runs, {s: urls[s] for s in stores})
    finally:
        if server is not None:
            server.close()
    print(json.dumps(results))
    return 0


def _use_store(url: str | None) -> None:
    """SESSIONWARD_STORE for this process (store.current() follows it) and for the claude
    processes started after it (ClaudeHome.env copies this environment)."""
    if url is None:
        os.environ.pop("SESSIONWARD_STORE", None)
    else:
        os.environ["SESSIONWARD_STORE"] = url


def _child_runs(work: Path, claude: str, checkouts: list, sleeper: Path, launcher: Path, python: str, runs: int,
                urls: dict) -> dict:
    import harness
    import hooks_bench

    with harness.SleeperPool(CLI_SESSIONS, program=str(sleeper), seconds=86400) as pool:
        from sessionward.identity import resolve_owner
        from sessionward.store import open_store

        owners = [resolve_owner(explicit_pid=pid) for pid in pool.pids]
        files = hooks_bench.make_files(checkouts)
        src = Path(checkouts[0]) / "src"
        targets = {name: str(src / f"{name}.py") for name in ("claimed", "unclaimed", "written")}
        for path in targets.values():
            Path(path).write_text("print('hello')\n" * 40)
        census = {"claims": hooks_bench.HOOK_CLAIMS}
        # The same sessions and claims in each store, the shared one first: the owners' watcher
        # pairs start at their first registration and keep the store they were started with,
        # so on the shared store they renew the owners' leases (a script and an fsync each,
        # every 10 s), as real sessions' watchers do, whichever store a run then uses.
        for url in sorted(urls.values(), key=lambda url: url is None):
            _use_store(url)
            harness.populate(open_store(), CLI_SESSIONS, owners, checkouts)
            hooks_bench.record_claims(work / "state", owners, checkouts, files, targets)
            if url is None:
                census = hooks_bench.claims_census(work / "state")
        _use_store(None)
        results = _runs(work, claude, python, launcher, checkouts[0], runs, urls)
        results.update(census=census, sessions=CLI_SESSIONS, version=_version(claude))
    return results


def _version(claude: str) -> str:
    out = subprocess.run([claude, "--version"], capture_output=True, text=True, timeout=60).stdout
    return out.split()[0] if out.split() else "?"


def settings_with_noops(launcher: Path, python: str) -> tuple[dict, dict]:
    """settings.json with, for every event, install's group of ours and a no-op beside it;
    and {command: "ours" | "noop"} to read the debug log with."""
    from sessionward.install.settings import HOOKS, our_group

    hooks, roles = {}, {}
    noop = f"{python} -c pass"
    for event, matcher, timeout in HOOKS:
        group = our_group(event, matcher, timeout, str(launcher))
        roles[group["hooks"][0]["command"]] = "ours"
        group["hooks"].append({"type": "command", "command": noop, **({"timeout": timeout} if timeout else {})})
        hooks[event] = [group]
    roles[noop] = "noop"
    return {"hooks": hooks}, roles


def script(cwd: str, n) -> list:
    from e2e.mock_messages_api import bash, edit, text, write

    first, second = Path(cwd) / f"cli-bench-{n}-a.txt", Path(cwd) / f"cli-bench-{n}-b.txt"
    return [
        write(first, "hello from the mock model\n"),
        bash("ls -la"),
        write(second, "and again\n"),
        bash("git status --short"),
        edit(first, "hello", "goodbye"),
        text("Done."),
    ]


def _runs(work: Path, claude: str, python: str, launcher: Path, cwd: str, runs: int, urls: dict) -> dict:
    from e2e.claude_harness import ClaudeHome
    from e2e.mock_messages_api import MockMessagesAPI

    settings, roles = settings_with_noops(launcher, python)
    samples = {store: {event: {"ours": [], "noop": []} for event in EVENTS} for store in urls}
    seconds = {store: [] for store in urls}
    ends = {store: [] for store in urls}
    failures = []
    api = MockMessagesAPI().start()
    home = ClaudeHome(work / "home", api, claude, runs_dir=work / "runs")
    home.write_settings(settings)
    try:
        for n in range(-1, runs):  # run -1: the warm-up (bytecode cache, page cache), not counted
            for store, url in urls.items():  # alternating: both stores meet the same moments
                result = home.run(script(cwd, f"{store}-{n}"), cwd=Path(cwd), prompt="write two files and look around",
                                  timeout=CLI_RUN_TIMEOUT_S, env={"SESSIONWARD_STORE": url} if url else None).check()
                if n < 0:
                    continue
                seconds[store].append(result.seconds)
                ends[store].append(session_end_gap(result.debug_log, roles))
                seen = parse_debug_log(result.debug_log, roles)
                for event, role, status, ms in seen:
                    if status != 0:
                        failures.append(f"{store} store, run {n}: {event} {role} exited {status}")
                    samples[store].setdefault(event, {"ours": [], "noop": []})[role].append(ms)
                missing = [e for e in EVENTS if e != "SessionEnd" and not any(s[0] == e and s[1] == "ours" for s in seen)]
                if missing:
                    raise SystemExit(f"bench: run {n} ({store} store) logged no hook of ours for {missing}:\n{result.describe()}")
    finally:
        home.close()
        api.stop()
    return {"samples": samples, "failures": failures, "runs": runs, "stores": list(urls), "run_seconds": seconds,
            "end_gaps": ends}


def parse_debug_log(log: str, roles: dict) -> list:
    """[(event, "ours" | "noop", status, ms)] from Claude Code's --debug-file."""
    found = []
    for event, command, status, ms in HOOK_LINE.findall(log):
        role = roles.get(command)
        if role is not None:
            found.append((event, role, int(status), float(ms)))
    return found


def session_end_gap(log: str, roles: dict) -> float | None:
    """SessionEnd is logged on completion only: how many ms after the no-op ours completed
    (both start together); None when either is missing."""
    import datetime

    done = {}
    for stamp, command, _ in END_LINE.findall(log):
        if roles.get(command):
            done[roles[command]] = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    if "ours" not in done or "noop" not in done:
        return None
    return (done["ours"] - done["noop"]) * 1000.0


# -- the table --------------------------------------------------------------------------------


def paired_ratio(ours: list, noop: list) -> str:
    """The median of ours[i] / noop[i]: the i-th firing's two handlers (an event's lines come in
    the log firing by firing, both handlers each time); "-" when the counts differ."""
    from harness import median

    if len(ours) != len(noop) or not all(noop):
        return "-"
    return f"{median([a / b for a, b in zip(ours, noop)]):.2f}"


def cli_table(results: dict, markdown: bool) -> str:
    from harness import median, render_table

    if "skipped" in results:
        return f"6. Hooks inside the real Claude Code CLI: skipped ({results['skipped']})"
    rows = []
    for event in EVENTS:
        for store in results["stores"]:
            if event == "SessionEnd":
                gaps = [g for g in results["end_gaps"][store] if g is not None]
                gap = f"ours completed {median(gaps):.0f} ms after the no-op (median)" if gaps else "not logged"
                rows.append([event, store, str(len(gaps)), "n/a", "n/a", "n/a", "n/a", f"- (no duration in the log; {gap})"])
                continue
            ours, noop = results["samples"][store][event]["ours"], results["samples"][store][event]["noop"]
            if not ours or not noop:
                rows.append([event, store, str(len(ours)), "-", "-", "-", "-", "FAIL (not logged)"])
                continue
            ratio = median(ours) / median(noop)
            verdict = "PASS" if ratio <= CLI_BUDGET_RATIO else f"FAIL (> {CLI_BUDGET_RATIO:g}x)"
            rows.append([event, store, str(len(ours)), f"{median(ours):.1f}", f"{median(noop):.1f}", f"{ratio:.2f}",
                         paired_ratio(ours, noop), verdict])
    census = results["census"]
    title = (f"6. Hooks inside the real Claude Code CLI {results['version']}, as its --debug-file times them, "
             f"{results['sessions']} other live sessions, {census['claims']:,} claims, on "
             + " and ".join(f"the {store} store" for store in results["stores"])
             + f" (budget: every event <= {CLI_BUDGET_RATIO:g}x a no-op hook `python -c pass` run beside it; "
             "'x no-op' = ratio of medians)")
    headers = ["event", "store", "firings", "ours median ms", "no-op median ms", "x no-op", "paired", "budget"]
    sessions = ", ".join(f"{store} {median(results['run_seconds'][store]):.1f} s" for store in results["stores"])
    notes = [
        f"{results['runs']} `claude -p` sessions per store, one after the other"
        + (", the stores alternating" if len(results["stores"]) > 1 else "")
        + "; each: SessionStart, UserPromptSubmit, Write, Bash,",
        "Write, Bash, Edit (PreToolUse each, PostToolUse for the edits), Stop, SessionEnd; the model is the mock of",
        "tests/e2e. Each event's two handlers (ours, as install writes it, and the no-op) run in parallel, as Claude",
        "Code runs one event's hooks; its log gives whole milliseconds. Network: "
        + ("a namespace of its own, loopback only (unshare -n)." if results.get("isolated") else "the host's (mock on 127.0.0.1)."),
        f"Median session: {sessions}. The shared store: a redis-server of the section's own (AOF, appendfsync always)",
        "on the same machine, over its Unix socket.",
        "'paired': the median, over firings, of ours / the no-op of the same firing (they run at the same moment,",
        "so a slow moment slows both): shown beside the budget's ratio of medians, which it does not replace.",
    ]
    if "shared" not in results["stores"]:
        notes.append("The shared store was not measured: " + (f"{STORE_ENV}={os.environ.get(STORE_ENV)}."
                     if os.environ.get(STORE_ENV) in STORES else "no redis-server (apt-get install redis-server)."))
    if results["failures"]:
        notes.append("Hooks that did not exit 0: " + "; ".join(results["failures"][:5]))
    return render_table(title, headers, rows, markdown) + "\n\n" + "\n".join(notes)


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == CHILD_ARG:
    sys.exit(child_main(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), tuple(sys.argv[5].split(","))))
