"""Load (issue 5, part 5): 1,000 hook invocations through the real launcher, in bursts of 16
concurrent processes, against a registry of 500 live sessions (each owned by its own live
process, so every liveness check reads /proc as it would with 500 real sessions).

Sixteen stand-in Claude processes (FakeClaude: comm `claude`, running each hook as its own
`sh -c` child with CLAUDE_PID set, as Claude Code 2.1.331 does) each run one hook of every burst: their SessionStart first, then a mix of PreToolUse
on Write (files the others write too, so some answers are `ask`) and on Bash (git and not),
PostToolUse Write, UserPromptSubmit and Stop. Every invocation must be answered: exit 0,
nothing on stderr, stdout empty or one JSON object for that event. Afterwards the 500
sessions are all still registered (nobody alive is evicted) and the registry parses.
Wall time per invocation (spawn to exit) goes into the summary as p50 / p99 / max.
"""

import json
import os
import subprocess
import threading
import time
import uuid

from helpers import SESSIONWARD, make_git_repo

SESSIONS = 500
INVOCATIONS = 1000
BURST = 16
PROJECTS = 20


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def populate(state: str, repos: list[str], owners: list) -> None:
    """SESSIONS live sessions over the repos: one registered per repo through the API, the rest
    copies of those records (own id, own owner) added in one transaction (as bench/run.py)."""
    from sessionward import registry
    from sessionward.store.local import LocalStore

    store = LocalStore(state)
    templates = [registry.register_session(repo, session_id=f"load-{i:04d}", owner=owners[i], store=store).session
                 for i, repo in enumerate(repos)]

    def add_copies(sessions: dict):
        for i in range(len(templates), SESSIONS):
            sid = f"load-{i:04d}"
            sessions[sid] = dict(templates[i % len(templates)], id=sid, session_id=sid, owner=owners[i].to_record())
        return None, True

    store.update_sessions(add_copies)


def payload(event: str, claude: dict, cwd: str, n: int) -> bytes:
    doc = {"session_id": claude["session_id"], "transcript_path": "/dev/null", "cwd": cwd,
           "hook_event_name": event, "permission_mode": "acceptEdits"}
    shared = os.path.join(cwd, f"shared-{n % 5}.txt")
    if event == "SessionStart":
        doc["source"] = "startup"
    elif event == "UserPromptSubmit":
        doc["prompt"] = "go on"
    elif event == "Stop":
        doc["stop_hook_active"] = False
    elif event == "PreToolUse:Bash":
        doc.update(hook_event_name="PreToolUse", tool_name="Bash", tool_use_id=f"toolu_{n}",
                   tool_input={"command": ("git checkout -b t", "ls -la", "git stash", "make test")[n % 4],
                               "description": "x"})
    else:
        doc.update(hook_event_name=event.split(":")[0], tool_name="Write", tool_use_id=f"toolu_{n}",
                   tool_input={"file_path": shared, "content": "x\n"})
        if event.startswith("PostToolUse"):
            doc["tool_response"] = {"filePath": shared, "success": True}
    return json.dumps(doc).encode()


MIX = ("PreToolUse:Write", "PreToolUse:Write", "PreToolUse:Bash", "PostToolUse:Write", "UserPromptSubmit",
       "PreToolUse:Write", "Stop", "PreToolUse:Bash")


def answered(event: str, done: tuple) -> str | None:
    """None when the invocation kept the contract, else what was wrong."""
    rc, out, err = done
    name = event.split(":")[0]
    if rc != 0 or err:
        return f"exit {rc}, stderr {err[-500:]!r}"
    if not out:
        return None
    if not (out.startswith(b"{") and out.endswith(b"}\n") and out.count(b"\n") == 1):
        return f"stdout is not one JSON line: {out[:300]!r}"
    doc = json.loads(out)
    specific = doc.get("hookSpecificOutput")
    if specific is not None and specific.get("hookEventName") != name:
        return f"answered for {specific.get('hookEventName')!r}: {out[:300]!r}"
    if specific is None and "systemMessage" not in doc:
        return f"an answer with neither hookSpecificOutput nor systemMessage: {out[:300]!r}"
    return None


def test_1000_hook_invocations_in_bursts_of_16_against_500_sessions(tmp_path, tally, claude):
    from sessionward.identity import resolve_owner
    from sessionward.store.local import decode_registry

    t = tally("load")
    state = os.environ["SESSIONWARD_HOME"]
    repos = [str(make_git_repo(tmp_path / f"p{i:02d}")) for i in range(PROJECTS)]
    keepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(SESSIONS)]
    claudes = [claude() for _ in range(BURST)]
    try:
        populate(state, repos, [resolve_owner(explicit_pid=k.pid) for k in keepers])
        who = [{"pid": c.pid, "session_id": str(uuid.uuid4())} for c in claudes]
        walls, decisions = [], {}
        for n in range(INVOCATIONS // BURST + (INVOCATIONS % BURST > 0)):
            batch = min(BURST, INVOCATIONS - n * BURST)
            done: list = [None] * batch

            def run(slot: int, event: str, data: bytes, done: list = done) -> None:  # this batch's list
                started = time.monotonic()
                ran = claudes[slot].run(f"{SESSIONWARD} hook {event.split(':')[0]}", data, cwd=repos[0],
                                        session_id=who[slot]["session_id"], project_dir=repos[0])
                done[slot] = (event, ran, (time.monotonic() - started) * 1000)

            threads = []
            for slot in range(batch):  # each stand-in runs its hook at once, as a burst of tool calls
                event = "SessionStart" if n == 0 else MIX[(n + slot) % len(MIX)]
                data = payload(event, who[slot], repos[0], n * BURST + slot)
                threads.append(threading.Thread(target=run, args=(slot, event, data)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for event, ran, wall in done:
                walls.append(wall)
                t.operations += 1
                t.saw_output(f"hook {event}", ran.stderr)
                wrong = answered(event, (ran.rc, ran.stdout.encode(), ran.stderr.encode()))
                if wrong:
                    t.problems.append(f"{event} not answered: {wrong}")
                elif ran.stdout:
                    decision = json.loads(ran.stdout).get("hookSpecificOutput", {}).get("permissionDecision")
                    decisions[decision or "context"] = decisions.get(decision or "context", 0) + 1
        sessions, corrupt = decode_registry(open(os.path.join(state, "obsidian_sessions.json"), "rb").read(), "r")
        if corrupt:
            t.problem("torn_files", f"registry: {corrupt}")
        missing = [f"load-{i:04d}" for i in range(SESSIONS) if f"load-{i:04d}" not in sessions]
        if missing:
            t.problem("lost_updates", f"{len(missing)} live sessions evicted: {missing[:5]}")
        ours = [c["session_id"] for c in who if c["session_id"] not in sessions]
        if ours:
            t.problem("lost_updates", f"{len(ours)} stand-in Claude sessions not registered: {ours[:3]}")
    finally:
        for proc in keepers:
            proc.kill()
            proc.wait()
    not_answered = [p for p in t.problems if "not answered" in p]
    t.figures.update({"sessions": SESSIONS, "burst": BURST, "answered": f"{t.operations - len(not_answered)}/{t.operations}",
                      "p50 ms": round(percentile(walls, 0.50), 1), "p99 ms": round(percentile(walls, 0.99), 1),
                      "max ms": round(max(walls), 1), "answers": decisions})
    assert not not_answered, "\n".join(not_answered[:20])
    assert decisions.get("ask", 0) > 0, decisions  # the guards really ran against the others
    t.check()
