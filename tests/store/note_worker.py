"""A note writer process for the shared-store note tests (test_note_fence.py, the torture
restarts). The store comes from the environment the test set (SESSIONWARD_STORE).

    note_worker.py cli ARGS...                  the sessionward command line, as `sessionward ARGS`
    note_worker.py workload NOTE CLAIMED N S    N rounds: append "PID i" to NOTE and record a
                                                claim on CLAIMED; prints "ok i" once both
                                                are committed; a round that fails is retried
                                                (printing "err CODE") for up to S seconds

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


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "cli":
        from sessionward.cli.entry import main

        sys.argv = ["sessionward", *sys.argv[2:]]
        sys.exit(main())
    sys.exit(workload(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
