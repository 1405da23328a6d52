"""Section 4 of bench/run.py (`--only hooks`): the Claude Code hook processes.

`sessionward hook <Event>` runs as a whole process before and after every tool call, with
Claude Code's JSON on stdin. This times it, spawn to reap, through the launcher install writes
(harness.hooks_launcher: Python without site, sessionward's modules from the bytecode pack
beside it; `<launcher> hook ...`, as settings.json runs it), next to `python -c pass` on the
launcher's interpreter, the cases interleaved round-robin with bench/harness.py's helpers.

Fixture (in run.py's temporary directory; SESSIONWARD_HOME and HOME point into it):
  * HOOK_SESSIONS live sessions, each owned by its own long-lived process whose comm is
    `claude` (a symlink named `claude` to sleep), spread over harness.make_checkouts's three checkouts. The
    two sessions whose hooks run (ME and ENDING) are owned by ClaudeStandIn processes instead,
    which run every case, as Claude Code runs hooks: as their child, with CLAUDE_PID = their
    PID (trusted only while it names an ancestor of the hook), timed spawn to reap inside the
    stand-in. `python -c pass` runs the same way.
  * HOOK_CLAIMS claims in all, recorded with sessionward.claims.record_claim: by those
    sessions over HOOK_FILES real files (so every claim carries a size, mtime and digest, and
    the claims shards hold realistic sizes), spread over the last 20 hours; 3 recent Write
    claims by three other live sessions in the same worktree on the target of the "claimed"
    case; and the hook's own session's claim on the target of PostToolUse.
  * The hook's own session ("me") is one of them, in the main worktree of the git checkout.
Every case's answer is checked before timing and again after it (a drifted fixture would
time something else). The cases:
  PreToolUse Write, claimed       the file guard reads one claims shard, finds live claims
                                  by others, checks their owners in /proc: answers deny
                                  (the default edit policy)
  PreToolUse Write, unclaimed     the same path to the shard, which holds no claim on it:
                                  no answer
  PreToolUse Bash `ls -la`        no `git` in the command: no answer, before any state is read
  PreToolUse Bash `git checkout`  a risky git command with other live sessions in the same
                                  worktree: reads the registry, checks 50 owners: asks
  PostToolUse Write               records this session's claim (stat, digest, shard rewrite
                                  under the claims lock); it replaces its own claim each
                                  time, so the state does not grow
  PostToolUse Bash                only the activity write (sessionward.activity): the
                                  command ended
  PermissionRequest Bash          only the activity write, as the dialog opens: the session
                                  waits for its person; no answer, ever
  Notification permission_prompt  only the activity write: the session waits for its person
  SessionStart                    `startup` of the session, registered already, its watcher
                                  pair running (section 5 has a process's first one):
                                  registers (a durable registry write), tells the model of
                                  the sessions sharing its worktree (answers additionalContext)
  UserPromptSubmit, Stop          the heartbeat: last_seen rewritten (a durable registry
                                  write); Stop also looks for an `end` lock it forgot
  SessionEnd                      unregisters the session, releases its locks, ends its
                                  claims (one small write: ended.json). Each sample starts
                                  from the same state: between samples (untimed) the
                                  session is registered again and ended.json removed.
  PreToolUse Write, claimed, no bytecode cache   as run.py's section 2 (information)
  PreToolUse Write claimed, SessionStart, without the bytecode pack   the same hooks through
                                  a launcher whose pack is missing: the usual imports
                                  (information: what the pack saves, side by side)
Budgets (DESIGN.md, the issue): every event's row <= PROCESS_BUDGET_RATIO x `python -c pass`
(the git checkout that asks is information: it is what the guard is for); SessionEnd, besides,
with its worst sample well under the 1.5 s Claude Code gives all SessionEnd hooks together: at
most SESSION_END_BUDGET_MS (half).
"""

import collections
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from harness import (
    PROCESS_BUDGET_RATIO,
    REPO,
    TIME_BIN,
    SleeperPool,
    against_pass,
    child_env,
    hooks_launcher,
    interleave,
    launcher_interpreter,
    make_store,
    median,
    p90,
    populate,
    render_table,
)

HOOK_SESSIONS = 50
HOOK_CLAIMS = 2000  # in all: the 3 on the claimed target and 1 on the PostToolUse target included
HOOK_FILES = 1000
HISTORY_SPREAD_S = 20 * 3600.0  # fixture claims are up to this old (kept: HISTORY_S is 24 h)
CLAUDE_CODE_SESSION_END_S = 1.5  # what Claude Code gives all SessionEnd hooks together
SESSION_END_BUDGET_MS = 750.0  # "well under 1.5 s": half of it, for the worst sample
CONTEXT = "context"  # a case's expected answer: additionalContext naming the other sessions
ME, ENDING, CLAIMERS = 0, 1, (3, 6, 9)  # session indexes: 0, 3, 6, 9 share the main worktree

HookCase = collections.namedtuple("HookCase", "label argv env role stdin cwd expect undo")

STAND_IN_PROGRAM = r"""
import json, subprocess, sys, time
for line in sys.stdin:
    r = json.loads(line)
    feed = {"stdin": subprocess.DEVNULL} if r["stdin"] is None else {"input": bytes.fromhex(r["stdin"])}
    out = subprocess.PIPE if r["capture"] else subprocess.DEVNULL
    start = time.perf_counter()
    done = subprocess.run(r["argv"], env=r["env"], cwd=r["cwd"], stdout=out, stderr=out, **feed)
    ms = (time.perf_counter() - start) * 1000.0
    print(json.dumps({"ms": ms, "rc": done.returncode, "stdout": (done.stdout or b"").decode(errors="replace"),
                      "stderr": (done.stderr or b"").decode(errors="replace")}), flush=True)
"""


class ClaudeStandIn:
    """A long-lived process whose comm is `claude` that runs commands as its children and
    times them, spawn to reap (a hook trusts CLAUDE_PID only when it names an ancestor)."""

    def __init__(self, bin_dir: Path, python: str) -> None:
        link, script = bin_dir / "claude-py" / "claude", bin_dir / "stand_in.py"
        if not link.exists():
            link.parent.mkdir()
            link.symlink_to(python)
            script.write_text(STAND_IN_PROGRAM)
        self.proc = subprocess.Popen([str(link), str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def run(self, argv: list, env: dict, cwd: str, stdin: bytes | None, capture: bool = False) -> dict:
        request = {"argv": argv, "env": env, "cwd": cwd, "stdin": None if stdin is None else stdin.hex(), "capture": capture}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _session_id(index: int) -> str:
    return f"bench-{index:05d}"  # the ids harness.populate gives


def payload(event: str, session: int, cwd: str, **fields) -> bytes:
    """Claude Code's stdin for `event`: the fields of payloads recorded from Claude Code 2.1.331."""
    sid = _session_id(session)
    doc = {
        "session_id": sid,
        "transcript_path": f"/home/user/.claude/projects/-bench/{sid}.jsonl",
        "cwd": cwd,
        "prompt_id": "f2f9421c-b7db-4882-be5a-6ab14633e87c",
        "permission_mode": "acceptEdits",
        "effort": {"level": "medium"},
        "hook_event_name": event,
    }
    doc.update(fields)
    return json.dumps(doc).encode()


def write_payload(event: str, session: int, cwd: str, path: str) -> bytes:
    content = "hello from the mock model\n"
    fields = {"tool_name": "Write", "tool_input": {"file_path": path, "content": content},
              "tool_use_id": "toolu_bench_8c08c9628a884e0f9782"}
    if event == "PostToolUse":
        fields["tool_response"] = {"type": "update", "filePath": path, "content": content,
                                   "structuredPatch": [], "originalFile": None, "userModified": False}
        fields["duration_ms"] = 7
    return payload(event, session, cwd, **fields)


# The heaviest command shapes the git guard reads (issue 12): a commit message Claude Code
# writes through a heredoc (after `git add -A`, a sweep of the claimed target: one `git status`,
# ask; alone, a commit of an index that holds nothing: one `git status`, no answer), and a long
# PR body that mentions git but runs none.
HEREDOC_COMMIT = ("git add -A && git commit -m \"$(cat <<'EOF'\nFix the parser (part 1)\n\n- no git reset --hard\n"
                  "- 2) git checkout main is gone\n\nCo-Authored-By: Claude <noreply@anthropic.com>\nEOF\n)\"")
HEREDOC_PR = ("gh pr create --title Fix --body \"$(cat <<'EOF'\n## Summary\n" + "- git checkout x (1)\n" * 200
              + "EOF\n)\"")


def bash_payload(session: int, cwd: str, command: str) -> bytes:
    return payload("PreToolUse", session, cwd, tool_name="Bash",
                   tool_input={"command": command, "description": "bench"},
                   tool_use_id="toolu_bench_fd27d4a3e567460cb87b")


# -- the fixture ----------------------------------------------------------------------------


def make_files(checkouts: list[str]) -> list[str]:
    """HOOK_FILES source files of 200 B to 8 KiB, spread over the checkouts."""
    files = []
    for i in range(HOOK_FILES):
        directory = Path(checkouts[i % len(checkouts)]) / "src" / f"pkg{i % 10}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"mod{i:04d}.py"
        path.write_text(f"# module {i}\n" + "x = 1\n" * (30 + (i * 37) % 1300))
        files.append(str(path))
    return files


def record_claims(state: Path, owners: list, checkouts: list[str], files: list[str], targets: dict) -> None:
    """HOOK_CLAIMS claims in all: by the sessions over `files` (never two by one owner on one
    file: a newer one replaces it); 3 recent Write claims by others on the claimed target; and
    this session's own on the PostToolUse target (each PostToolUse replaces it)."""
    from sessionward import paths
    from sessionward.claims import record_claim
    from sessionward.identity import describe_checkout

    paths.ensure_private_dir(str(state / paths.PRIVATE_DIR_NAME))
    where = [describe_checkout(cwd) for cwd in checkouts]
    now = time.time()
    tools = ("Edit", "Read", "Write", "Edit", "MultiEdit")
    spread = HOOK_CLAIMS - len(CLAIMERS) - 1
    for i in range(spread):  # claim i and claim i + HOOK_FILES share a file, by other owners
        session = (i + (i // HOOK_FILES) * 17) % HOOK_SESSIONS
        record_claim(files[i % HOOK_FILES], owner=owners[session], session_id=_session_id(session),
                     tool=tools[i % len(tools)], checkout=where[session % len(checkouts)],
                     now=now - 60.0 - (i * 7919) % HISTORY_SPREAD_S, state_dir=str(state))
    for age, session in zip((120.0, 60.0, 30.0), CLAIMERS):
        record_claim(targets["claimed"], owner=owners[session], session_id=_session_id(session), tool="Write",
                     checkout=where[session % len(checkouts)], now=now - age, state_dir=str(state))
    record_claim(targets["written"], owner=owners[ME], session_id=_session_id(ME), tool="Write",
                 checkout=where[ME % len(checkouts)], now=now - 300.0, state_dir=str(state))


def claims_census(state: Path) -> dict:
    """How many claims the shards hold, and their sizes (for the notes under the table)."""
    from sessionward.store.local_claims import claims_dir

    directory = claims_dir(str(state))
    sizes, claims, paths_ = [], 0, 0
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            raw = Path(directory, name).read_bytes()
            files = json.loads(raw)["files"]
            sizes.append(len(raw))
            claims += sum(len(v) for v in files.values())
            paths_ += len(files)
    return {"shards": len(sizes), "claims": claims, "paths": paths_,
            "median_bytes": median(sizes), "max_bytes": max(sizes)}


def hook_env(base: dict, home: Path, claude_pid: int | None) -> dict:
    """The hook's environment: harness.child_env's, HOME in the temp directory, no configuration
    from this machine (defaults: edit policy deny, claim TTL 30 min, git guard on)."""
    env = {k: v for k, v in base.items() if not k.startswith(("CLAUDE", "SESSIONWARD_")) or k == "SESSIONWARD_HOME"}
    env["HOME"] = str(home)
    if claude_pid is not None:
        env["CLAUDE_PID"] = str(claude_pid)
    return env


class SessionEndReset:
    """Undo one SessionEnd of session ENDING, untimed: register it again (same id, owner and
    checkout) and put the claims directory back as it was (SessionEnd ends the session's
    claims by writing ended.json; the shards are not touched, but are compared too)."""

    def __init__(self, store, state: Path, owner, cwd: str) -> None:
        from sessionward.store.local_claims import claims_dir

        self.store, self.owner, self.cwd = store, owner, cwd
        self.state = str(state)
        self.directory = Path(claims_dir(self.state))
        self.files = {f.name: f.read_bytes() for f in self.directory.glob("*.json")}
        # One file the ending session claimed: SessionEnd must leave its claim ended.
        self.probe = next(path for name, data in sorted(self.files.items()) if name != "ended.json"
                          for path, claims in json.loads(data)["files"].items()
                          if any(c["owner"]["pid"] == owner.pid for c in claims))

    def _its_claims(self) -> list:
        from sessionward.claims import claims_on

        return [c for c in claims_on(self.probe, state_dir=self.state) if c["owner"]["pid"] == self.owner.pid]

    def __call__(self) -> None:
        from sessionward import registry

        registry.register_session(self.cwd, session_id=_session_id(ENDING), owner=self.owner, store=self.store)
        changed = False
        for target in self.directory.glob("*.json"):
            if target.name not in self.files:
                target.unlink()
                changed = True
        for name, data in self.files.items():
            target = self.directory / name
            if not target.exists() or target.read_bytes() != data:
                temp = target.with_name(name + ".bench-tmp")
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, data)
                    os.fsync(fd)  # on disk, as files last written long before a session ends:
                finally:  # replacing a file whose data is still dirty costs more on ext4
                    os.close(fd)
                os.replace(temp, target)
                changed = True
        if changed:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def check_ended(self) -> None:
        """After a SessionEnd: unregistered, and its claims ended."""
        sessions = self.store.load_sessions()
        if _session_id(ENDING) in sessions:
            raise SystemExit("bench: SessionEnd left its session registered")
        claims = self._its_claims()
        if not claims or any(c.get("ended") is None for c in claims):
            raise SystemExit(f"bench: SessionEnd did not end the session's claims on {self.probe}: {claims}")

    def check_restored(self) -> None:
        if _session_id(ENDING) not in self.store.load_sessions():
            raise SystemExit("bench: the ending session was not registered again")
        now = {f.name: f.read_bytes() for f in self.directory.glob("*.json")}
        if now != self.files:
            raise SystemExit(f"bench: the claims directory was not restored: {sorted(set(now) ^ set(self.files))}")
        if any(c.get("ended") is not None for c in self._its_claims()):
            raise SystemExit("bench: the session's claims are still ended after the restore")


def hook_cases(root: Path, state: Path, python: str, launcher: Path, unpacked: Path, owners: list, pool_pids: list,
               checkouts: list[str], targets: dict, reset: SessionEndReset) -> list:
    home = root / "hooks-user"  # HOME: no ~/.claude/sessionward.toml there
    home.mkdir(exist_ok=True)
    cached, uncached = child_env(root, state, True), child_env(root, state, False)
    me_env = hook_env(cached, home, pool_pids[ME])
    main = checkouts[ME % len(checkouts)]
    hook = [str(launcher), "hook"]
    claimed = write_payload("PreToolUse", ME, main, targets["claimed"])
    ask, deny, context, none = "ask", "deny", CONTEXT, None
    return [
        HookCase("python -c pass", [python, "-c", "pass"], hook_env(cached, home, None), "base",
                 claimed, main, none, None),
        HookCase("PreToolUse Write, claimed by another session", hook + ["PreToolUse"], me_env, "budget",
                 claimed, main, deny, None),
        HookCase("PreToolUse Write, unclaimed file", hook + ["PreToolUse"], me_env, "budget",
                 write_payload("PreToolUse", ME, main, targets["unclaimed"]), main, none, None),
        HookCase("PreToolUse Bash `ls -la` (no git)", hook + ["PreToolUse"], me_env, "budget",
                 bash_payload(ME, main, "ls -la"), main, none, None),
        HookCase("PreToolUse Bash `git checkout main`, shared worktree", hook + ["PreToolUse"], me_env, "info",
                 bash_payload(ME, main, "git checkout main"), main, ask, None),
        HookCase("PreToolUse Bash commit with a heredoc message (sweep), shared worktree", hook + ["PreToolUse"],
                 me_env, "info", bash_payload(ME, main, HEREDOC_COMMIT), main, ask, None),
        HookCase("PreToolUse Bash `git commit -m` of an index without another's files (git status), shared",
                 hook + ["PreToolUse"], me_env, "info", bash_payload(ME, main, HEREDOC_COMMIT.split(" && ", 1)[1]),
                 main, none, None),
        HookCase("PreToolUse Bash `git checkout -- <claimed file>`, shared worktree", hook + ["PreToolUse"],
                 me_env, "info", bash_payload(ME, main, f"git checkout -- {targets['claimed']}"), main, ask, None),
        HookCase("PreToolUse Bash `gh pr create` with a 4 KB heredoc body (no answer)", hook + ["PreToolUse"],
                 me_env, "info", bash_payload(ME, main, HEREDOC_PR), main, none, None),
        HookCase("PostToolUse Write (records a claim)", hook + ["PostToolUse"], me_env, "budget",
                 write_payload("PostToolUse", ME, main, targets["written"]), main, none, None),
        HookCase("PostToolUse Bash (activity only: the command ended)", hook + ["PostToolUse"], me_env, "budget",
                 payload("PostToolUse", ME, main, tool_name="Bash", tool_input={"command": "ls -la"},
                         tool_response={"stdout": "", "stderr": ""}, tool_use_id="toolu_bench"), main, none, None),
        HookCase("PermissionRequest Bash (activity: waiting)", hook + ["PermissionRequest"], me_env, "budget",
                 payload("PermissionRequest", ME, main, tool_name="Bash", tool_input={"command": "make deploy"},
                         permission_suggestions=[]), main, none, None),
        HookCase("Notification permission_prompt (activity: waiting)", hook + ["Notification"], me_env, "budget",
                 payload("Notification", ME, main, message="Claude needs your permission to use Bash",
                         notification_type="permission_prompt"), main, none, None),
        HookCase("SessionStart (startup, registered, pair running)", hook + ["SessionStart"], me_env, "budget",
                 payload("SessionStart", ME, main, source="startup"), main, context, None),
        HookCase("UserPromptSubmit (heartbeat)", hook + ["UserPromptSubmit"], me_env, "budget",
                 payload("UserPromptSubmit", ME, main, prompt="go on"), main, none, None),
        HookCase("Stop (heartbeat, end lock not held)", hook + ["Stop"], me_env, "budget",
                 payload("Stop", ME, main, stop_hook_active=False, last_assistant_message="Done.",
                         background_tasks=[], session_crons=[]), main, none, None),
        HookCase(f"SessionEnd, {HOOK_SESSIONS} sessions", hook + ["SessionEnd"],
                 hook_env(cached, home, pool_pids[ENDING]), "session-end",
                 payload("SessionEnd", ENDING, reset.cwd, reason="other"), reset.cwd, none, reset),
        HookCase("PreToolUse Write claimed, no bytecode cache", hook + ["PreToolUse"],
                 hook_env(uncached, home, pool_pids[ME]), "info", claimed, main, deny, None),
        HookCase("PreToolUse Write claimed, without the bytecode pack", [str(unpacked), "hook", "PreToolUse"], me_env,
                 "info", claimed, main, deny, None),
        HookCase("SessionStart, without the bytecode pack", [str(unpacked), "hook", "SessionStart"], me_env, "info",
                 payload("SessionStart", ME, main, source="startup"), main, context, None),
    ]


def verify_hook_case(case: HookCase, owners: list, targets: dict, stand_in: ClaudeStandIn) -> None:
    """One untimed run: exit 0, nothing on stderr, the expected answer (and side effect)."""
    done = stand_in.run(case.argv, case.env, case.cwd, case.stdin, capture=True)
    if done["rc"] != 0 or done["stderr"]:
        raise SystemExit(f"bench: {case.label!r} exited {done['rc']}: {done['stderr'].strip()}")
    out = done["stdout"].strip()
    if case.expect is None:
        if out:
            raise SystemExit(f"bench: {case.label!r} should not answer, but answered {out}")
    elif case.expect == CONTEXT:  # SessionStart: the other sessions in this worktree, told to the model
        specific = json.loads(out or "{}").get("hookSpecificOutput", {})
        if "other session" not in specific.get("additionalContext", ""):
            raise SystemExit(f"bench: {case.label!r} should tell of the other sessions, but answered {out or 'nothing'}")
    else:
        decision = json.loads(out or "{}").get("hookSpecificOutput", {}).get("permissionDecision")
        if decision != case.expect:
            raise SystemExit(f"bench: {case.label!r} should answer {case.expect}, but answered {out or 'nothing'}")
    if case.role == "session-end":
        case.undo.check_ended()
        case.undo()
        case.undo.check_restored()
    if "PYTHONPATH" in case.env:  # the uncached row must import the copy of src/, not a cached tree
        probe = [launcher_interpreter(Path(case.argv[0])), "-c", "import sessionward; print(sessionward.__file__)"]
        where = subprocess.run(probe, env=case.env, capture_output=True, text=True).stdout.strip()
        if not where.startswith(case.env["PYTHONPATH"].split(os.pathsep)[0]):
            raise SystemExit(f"bench: {case.label!r} imports sessionward from {where}, not from the uncached copy")
    if case.argv[-1] == "PostToolUse":
        from sessionward.claims import claims_on, is_mine

        found = claims_on(targets["written"], state_dir=case.env["SESSIONWARD_HOME"])
        mine = [c for c in found if is_mine(c, owners[ME])]
        if len(mine) != 1 or mine[0]["session"] != _session_id(ME) or not mine[0]["state"]:
            raise SystemExit(f"bench: {case.label!r} left {len(mine)} claims of its session, not 1: {mine}")


def run_hook_section(root: Path, checkouts: list[str], rounds: dict) -> tuple[dict, str]:
    package_launcher = REPO / ".venv" / "bin" / "sessionward"
    if not package_launcher.exists():
        raise SystemExit(f"bench: no launcher at {package_launcher}; install the package into .venv first")
    python = launcher_interpreter(package_launcher)
    launcher = hooks_launcher(root, package_launcher)  # what install points the hooks at
    unpacked = hooks_launcher(root, package_launcher, pack=False)  # the same, importing as usual
    bin_dir = root / "bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"  # comm `claude`: the other sessions look like Claude Code's
    claude.symlink_to(shutil.which("sleep") or "/bin/sleep")
    stand_ins = {}
    with SleeperPool(HOOK_SESSIONS, program=str(claude), seconds=86400) as pool:
        try:
            return _hook_section(root, checkouts, rounds, launcher, unpacked, python, bin_dir, pool, stand_ins)
        finally:
            for stand_in in stand_ins.values():
                stand_in.close()


def _hook_section(root, checkouts, rounds, launcher, unpacked, python, bin_dir, pool, stand_ins) -> tuple[dict, str]:
    from sessionward.identity import resolve_owner

    pids = list(pool.pids)
    for index in (ME, ENDING):  # the sessions whose hooks run: their owners run them
        stand_ins[index] = ClaudeStandIn(bin_dir, python)
        pids[index] = stand_ins[index].pid
    owners = [resolve_owner(explicit_pid=pid) for pid in pids]
    if any(owner.comm != "claude" for owner in owners):
        raise SystemExit(f"bench: the session processes are not named claude: {owners[:3]}")
    store = make_store(root, "hooks-state")
    state = Path(store.registry_path).parent
    populate(store, HOOK_SESSIONS, owners, checkouts)  # session i works in checkouts[i % 3]
    files = make_files(checkouts)
    main = Path(checkouts[ME % len(checkouts)]) / "src"
    targets = {name: str(main / f"{name}.py") for name in ("claimed", "unclaimed", "written")}
    for path in targets.values():
        Path(path).write_text("print('hello')\n" * 40)
    record_claims(state, owners, checkouts, files, targets)
    census = claims_census(state)
    if census["claims"] != HOOK_CLAIMS:
        raise SystemExit(f"bench: the claims shards hold {census['claims']} claims, not {HOOK_CLAIMS}")
    reset = SessionEndReset(store, state, owners[ENDING], checkouts[ENDING % len(checkouts)])
    cases = hook_cases(root, state, python, launcher, unpacked, owners, pids, checkouts, targets, reset)

    def runner(case: HookCase) -> ClaudeStandIn:
        return stand_ins[ENDING if case.role == "session-end" else ME]

    def run_one(case: HookCase) -> float:
        elapsed = runner(case).run(case.argv, case.env, case.cwd, case.stdin)["ms"]
        if case.undo is not None:
            case.undo()
        return elapsed

    def rss_one(case: HookCase) -> int | None:
        kib = None
        if os.access(TIME_BIN, os.X_OK):
            out = root / "time.out"
            runner(case).run([TIME_BIN, "-f", "%M", "-o", str(out)] + case.argv, case.env, case.cwd, case.stdin)
            try:
                kib = int(out.read_text().split()[-1])
            except (OSError, ValueError, IndexError):
                kib = None
        if case.undo is not None:
            case.undo()
        return kib

    for case in cases:
        verify_hook_case(case, owners, targets, runner(case))  # also writes the bytecode cache of the cached rows
        run_one(case)
    walls = interleave(cases, rounds["hooks"], run_one)
    rss = interleave(cases, rounds["rss"], rss_one)
    for case in cases:  # the fixture has not drifted: the same answers after timing
        verify_hook_case(case, owners, targets, runner(case))
    rows = []
    for case in cases:
        kib = [k for k in rss[case.label] if k is not None]
        samples = walls[case.label]
        rows.append({
            "label": case.label, "role": case.role, "median": median(samples), "p90": p90(samples),
            "max": max(samples), "rss": median(kib) if kib else None, "answer": case.expect or "none",
        })
    return {"rows": rows, "census": census, "rounds": rounds["hooks"]}, python


def hook_table(results: dict, markdown: bool) -> str:
    rows, census = results["rows"], results["census"]
    base = next(r for r in rows if r["role"] == "base")
    out = []
    for r in rows:
        ratio, budget = against_pass(r, base)
        if r["role"] == "session-end":
            problems = [] if ratio <= PROCESS_BUDGET_RATIO else [f"> {PROCESS_BUDGET_RATIO:g}x"]
            problems += [] if r["max"] <= SESSION_END_BUDGET_MS else [f"max > {SESSION_END_BUDGET_MS:g} ms"]
            budget = f"FAIL ({', '.join(problems)})" if problems else "PASS"
        known = r["rss"] is not None and base["rss"]
        out.append([
            r["label"], "-" if r["role"] == "base" else r["answer"], f"{r['median']:.1f}", f"{r['p90']:.1f}",
            f"{r['max']:.1f}", f"{ratio:.2f}", f"{r['rss'] / 1024:.1f}" if known else "n/a",
            f"{r['rss'] / base['rss']:.2f}" if known else "n/a", budget,
        ])
    title = (
        f"4. Hook processes, {HOOK_SESSIONS} live sessions, {census['claims']:,} claims over {HOOK_FILES:,} files "
        f"(budget: every event <= {PROCESS_BUDGET_RATIO:g}x python -c pass, same interpreter, the asking git "
        f"checkout aside; SessionEnd also max <= {SESSION_END_BUDGET_MS:g} ms, half of Claude Code's "
        f"{CLAUDE_CODE_SESSION_END_S:g} s; 'x pass' = ratio of medians)"
    )
    headers = ["hook", "answer", "median ms", "p90 ms", "max ms", "x pass", "peak RSS MiB", "RSS x pass", "budget"]
    notes = [
        "Each row runs `<launcher> hook <Event>` (the launcher install writes: Python without site, sessionward's",
        "modules from the bytecode pack; the last two rows without it) with the event's JSON piped to stdin (python -c",
        "pass gets the same bytes), each run and timed by the session's own process (comm `claude`, CLAUDE_PID), whose",
        "child it is, as under Claude Code. answer: the hook's decision,",
        f"checked before and after timing. Claims: {census['shards']} shards holding {census['paths']} paths, "
        f"{census['median_bytes'] / 1024:.1f} KiB median, {census['max_bytes'] / 1024:.1f} KiB the largest.",
        f"SessionEnd: each of its {results['rounds']} samples starts from the same state (untimed, after each: the "
        "session registered again, ended.json removed).",
    ]
    return render_table(title, headers, out, markdown) + "\n\n" + "\n".join(notes)
