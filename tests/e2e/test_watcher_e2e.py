"""The life lock's watcher under the real Claude Code CLI: `claude -p` with sessionward's hooks
installed (as `sessionward install` writes them) starts a watcher pair at SessionStart, which
lives while claude waits on the stub and holds none of the hook's pipes: Claude Code reads a
hook's stdout and stderr (2.1.331: socket pairs), and a watcher holding one would keep any
reader that waits for EOF waiting on a process that only exits with claude itself. (2.1.331
itself does not wait for them: a SessionStart hook `sleep 8 &` delays nothing; so the
descriptors are checked in /proc, and the strict EOF wait is tests/identity/test_life.py's
stand-in claude.) After claude exits, the pair and the life file are gone within a second.
"""

import os
import time

import pytest

from sessionward.identity import life, read_process, this_host

from e2e.mock_messages_api import text
from e2e.test_sessionward_e2e import installed, proj  # noqa: F401 - fixtures
from helpers import watcher_pids

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROMPT_S = 20.0  # far above a turn against the local stub; a run waiting on a hook's pipe takes its timeout


def test_claude_p_starts_a_watcher_and_never_waits_for_it(installed, proj, state_dir):  # noqa: F811
    a = installed.start([text("A done", hold=True)], cwd=proj)
    a.wait_held()  # SessionStart and UserPromptSubmit ran; claude waits on the stub
    to_held = time.monotonic() - a.started
    host = this_host()
    key = life.life_key(host.boot_id, host.pidns, a.pid, read_process(a.pid).start_time)
    assert os.listdir(life.life_dir(str(state_dir))) == [key]
    assert life.probe(key, str(state_dir)) == life.HELD
    assert len(watcher_pids(state_dir, key)) == 2, watcher_pids(state_dir)
    for pid in watcher_pids(state_dir, key):  # none of claude's hook sockets
        assert [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in (0, 1, 2)] == ["/dev/null"] * 3, pid

    released = time.monotonic()
    a.release()
    result = a.wait(timeout=PROMPT_S + 10).check()
    to_exit = time.monotonic() - released
    assert to_held < PROMPT_S and to_exit < PROMPT_S, f"start to held {to_held:.1f} s, release to exit {to_exit:.1f} s"
    assert "A done" in result.stdout

    deadline = time.monotonic() + 1.0  # claude exited: its watchers follow within a second
    while watcher_pids(state_dir) or os.listdir(life.life_dir(str(state_dir))):
        assert time.monotonic() < deadline, (watcher_pids(state_dir), os.listdir(life.life_dir(str(state_dir))))
        time.sleep(0.01)
    print(f"claude -p: start to held {to_held:.2f} s, release to exit {to_exit:.2f} s")
