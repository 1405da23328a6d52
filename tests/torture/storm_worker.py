"""One process of the storm (test_storms.py): random operations until killed or done.

    python storm_worker.py NAME LOG KEEPER_PID CWD CLAUDES_JSON SECONDS SEED

Every operation is announced in LOG (one os.write per line on an O_APPEND file, so a line
is whole or absent whatever instant the kill -9 lands): `try-X ...` before the call, `X ...`
after it returned, i.e. committed. The test asserts only on committed facts.

  reg ID / unreg ID       a session owned by the keeper (a process that outlives the storm)
  self ID                 a session owned by this worker: it dies with the worker, and must be
                          swept by whoever operates next
  beat                    a heartbeat of the keeper's sessions
  claim PATH SESSION      a claim by the keeper's owner on a path nobody else claims
  acq T / inc V / rel T   the `storm` lock taken (T: CLOCK_MONOTONIC ns, one clock for every
                          process of the machine), the shared counter written under it with
                          value V, the critical section left (just before release())
  hook EVENT RC           a hook answered through run_hook, as `sessionward hook EVENT` would
  bad ...                 something that must never happen (an answer that is not the
                          contract, an unexpected exception): the test counts it
"""

import json
import os
import random
import sys
import time
import traceback


def main() -> None:
    name, log_path, keeper_pid, cwd, claudes_json, seconds, seed = sys.argv[1:8]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def log(line: str) -> None:
        os.write(log_fd, (line + "\n").encode("utf-8", "backslashreplace"))

    from sessionward import registry
    from sessionward._atomic import read_file_nofollow, write_file_atomic
    from sessionward.claims import record_claim
    from sessionward.errors import SessionwardError
    from sessionward.hooks import run_hook
    from sessionward.identity import resolve_owner
    from sessionward.locks import LockTimeout, NamedLock
    from sessionward.store import open_store

    rng = random.Random(int(seed))
    keeper = resolve_owner(explicit_pid=int(keeper_pid))
    me = resolve_owner(explicit_pid=os.getpid())
    claudes = json.loads(claudes_json)  # [{"pid": ..., "session_id": ...}]
    state = os.environ["SESSIONWARD_HOME"]
    counter = os.path.join(state, "storm-counter")
    files_dir = os.path.join(cwd, "files")
    lock = NamedLock("storm", purpose=f"storm {name}")
    committed_regs: list[str] = []
    serial = 0
    deadline = time.monotonic() + float(seconds)

    def hook(event: str, payload: dict, claude: dict) -> None:
        env = dict(os.environ, CLAUDE_PID=str(claude["pid"]), CLAUDE_CODE_SESSION_ID=claude["session_id"])
        payload = dict(payload, session_id=claude["session_id"], transcript_path="/dev/null", cwd=cwd,
                       hook_event_name=event)
        log(f"try-hook {event}")
        answer = run_hook(event, json.dumps(payload).encode(), env)
        if answer.exit_code == 0:
            if answer.stdout and not (answer.stdout.startswith("{") and json.loads(answer.stdout)):
                log(f"bad hook {event} answered {answer.stdout!r}")
        elif answer.exit_code == 1:
            if "internal error" in answer.stderr or answer.stderr.count("\n") != 1:
                log(f"bad hook {event} failed: {answer.stderr!r}")
        else:
            log(f"bad hook {event} exit {answer.exit_code}: {answer.stderr!r}")
        log(f"hook {event} {answer.exit_code}")

    while time.monotonic() < deadline:
        serial += 1
        op = rng.random()
        try:
            if op < 0.22:
                sid = f"{name}-{serial}"
                log(f"try-reg {sid}")
                registry.register_session(cwd, session_id=sid, owner=keeper, store=open_store())
                log(f"reg {sid}")
                committed_regs.append(sid)
            elif op < 0.30 and committed_regs:
                sid = committed_regs.pop(rng.randrange(len(committed_regs)))
                log(f"try-unreg {sid}")
                registry.unregister_sessions(session_id=sid, owner=keeper, store=open_store())
                log(f"unreg {sid}")
            elif op < 0.36:
                sid = f"{name}-self"
                log(f"try-self {sid}")
                registry.register_session(cwd, session_id=sid, owner=me, store=open_store())
                log(f"self {sid}")
            elif op < 0.44:
                log("try-beat")
                registry.heartbeat(owner=keeper, store=open_store())
                log("beat")
            elif op < 0.56:
                path = os.path.join(files_dir, f"{name}-{serial}.txt")
                sid = f"{name}-claim-{serial}"
                log(f"try-claim {path} {sid}")
                record_claim(path, owner=keeper, session_id=sid, tool="Write", now=time.time())
                log(f"claim {path} {sid}")
            elif op < 0.78:
                try:
                    lock.acquire(timeout=3.0)
                except LockTimeout:
                    log("lock-timeout")
                    continue
                log(f"acq {time.monotonic_ns()}")
                raw = read_file_nofollow(counter)
                value = int(raw) if raw else 0
                time.sleep(rng.random() * 0.002)  # widen the window a double holder would need
                write_file_atomic(counter, f"{value + 1}\n".encode())
                log(f"inc {value + 1}")
                log(f"rel {time.monotonic_ns()}")
                lock.release()
            else:
                claude = rng.choice(claudes)
                shared = os.path.join(files_dir, f"shared-{rng.randrange(8)}.txt")
                event = rng.choice(("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop",
                                    "PreToolUse"))
                if event == "SessionStart":
                    hook(event, {"source": "startup"}, claude)
                elif event in ("UserPromptSubmit",):
                    hook(event, {"prompt": "go"}, claude)
                elif event == "Stop":
                    hook(event, {"stop_hook_active": False}, claude)
                elif event == "PreToolUse" and rng.random() < 0.4:
                    hook(event, {"tool_name": "Bash", "tool_use_id": "t",
                                 "tool_input": {"command": rng.choice(["ls -la", "git checkout -b x", "git stash"])}},
                         claude)
                else:
                    hook(event, {"tool_name": "Write", "tool_use_id": "t",
                                 "tool_input": {"file_path": shared, "content": "x"},
                                 "tool_response": {"filePath": shared, "success": True}}, claude)
        except SessionwardError as error:
            # A bounded wait that ran out under 32 processes on 2 cores is an answer, not a bug.
            log(f"refused {type(error).__name__}: {error}".replace("\n", " "))
        except Exception:  # noqa: BLE001 - anything else is a bug the test must see
            log("bad exception " + traceback.format_exc().replace("\n", " | "))
    log("done")


if __name__ == "__main__":
    main()
