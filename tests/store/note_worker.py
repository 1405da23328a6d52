"""A note writer process for the shared-store note tests (test_note_fence.py, the torture
restarts). The store comes from the environment the test set (SESSIONWARD_STORE).

    note_worker.py cli ARGS...                  the sessionward command line, as `sessionward ARGS`
    note_worker.py workload NOTE CLAIMED N S    N rounds: append "PID i" to NOTE and record a
                                                claim on CLAIMED; prints "ok i" once both
                                                are committed; a round that fails is retried
                                                (printing "err CODE") for up to S seconds
    note_worker.py sessions DIR LOG N S         N rounds of a session's life in DIR: the heartbeat
                                                of the previous round's session "wPID-(i-1)"
                                                ("lost i-1" when its record is gone), its
                                                unregister, the register of "wPID-i" ("reg i
                                                TIME" when done), then the
                                                end lock taken and released, writing
                                                "in PID i FENCE" / "out PID i" to LOG while
                                                held; prints "ok i" once all are committed;
                                                a failed step is retried as above; then
                                                prints "done" and stays alive (its records
                                                with it) until its stdin is closed

Environment (test-only): WORKER_TTL_MS sets the note lease's TTL; WORKER_BROKEN breaks the
fence on purpose, for negative controls: "no-lease" (no exclusion at all), "no-check" (the
lease, but no fence check before the rename).
"""

import os
import sys
import time

from sessionward.store import redis_notes

if os.environ.get("WORKER_TTL_MS"):
    redis_notes.NOTE_LEASE_TTL_MS = int(os.environ["WORKER_TTL_MS"])
BROKEN = os.environ.get("WORKER_BROKEN", "")
if BROKEN == "no-lease":
    from sessionward import store

    class NoFence(store.NoteFence):
        waited_s = 0.0

        def check(self, current, new):
            pass

        def written(self, new):
            pass

        def close(self):
            pass

    store.note_fence = lambda target, timeout_s: NoFence()
elif BROKEN == "no-check":
    def check_without_fence(self, current, new):
        self.leases.renew(self.lease)
        redis_notes._test_pause()

    redis_notes.RedisNoteFence.check = check_without_fence


def workload(note: str, claimed: str, rounds: int, seconds: float) -> int:
    from sessionward import claims, notes
    from sessionward.errors import SessionwardError
    from sessionward.identity import resolve_owner

    owner = resolve_owner(os.getpid())
    deadline = time.monotonic() + seconds
    for i in range(rounds):
        while True:
            try:
                notes.append_note(note, f"{os.getpid()} {i}\n")
                claims.record_claim(claimed, owner=owner, session_id=f"s{os.getpid()}", tool="Edit", now=time.time(),
                                    state={"size": i, "mtime_ns": i, "digest": None})
                print(f"ok {i}", flush=True)
                break
            except SessionwardError as error:
                print(f"err {error.code}", flush=True)
                if time.monotonic() > deadline:
                    return 1
                time.sleep(0.05)
    return 0


def sessions(cwd: str, log: str, rounds: int, seconds: float) -> int:
    from sessionward import registry
    from sessionward.errors import NotRegistered, SessionwardError
    from sessionward.identity import resolve_owner
    from sessionward.locks import NamedLock

    owner, pid = resolve_owner(os.getpid()), os.getpid()
    deadline = time.monotonic() + seconds

    def held(i: int) -> None:
        lock = NamedLock("end", owner=owner, session_id=f"w{pid}-{i}", purpose="torture")
        lock.acquire(timeout=20)
        with open(log, "a") as out:  # O_APPEND: whole lines, in the order they happened
            out.write(f"in {pid} {i} {lock.fence}\n")
            out.flush()
            time.sleep(0.003)
            out.write(f"out {pid} {i}\n")
        lock.release()

    def registered(i: int) -> None:
        registry.register_session(cwd, session_id=f"w{pid}-{i}", owner=owner)
        print(f"reg {i} {time.time()}", flush=True)  # when the server had it (a restart after may lose it)

    def unregister_previous(i: int) -> None:
        registry.unregister_sessions(session_id=f"w{pid}-{i - 1}")

    def check_previous(i: int) -> None:
        try:
            registry.heartbeat(session_id=f"w{pid}-{i - 1}", owner=owner)
        except NotRegistered:
            print(f"lost {i - 1}", flush=True)

    for i in range(rounds):
        for step in ([check_previous, unregister_previous] if i else []) + [registered, held]:
            while True:
                try:
                    step(i)
                    break
                except SessionwardError as error:
                    print(f"err {error.code}", flush=True)
                    if time.monotonic() > deadline:
                        return 1
                    time.sleep(0.05)
        print(f"ok {i}", flush=True)
    print("done", flush=True)
    sys.stdin.read()  # alive, its records too, until the test has read the registry and closes stdin
    return 0


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "cli":
        from sessionward.cli.entry import main

        sys.argv = ["sessionward", *sys.argv[2:]]
        sys.exit(main())
    if mode == "sessions":
        sys.exit(sessions(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
    sys.exit(workload(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
