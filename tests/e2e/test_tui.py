"""sessionward as a person meets it: the real interactive Claude Code TUI (each test once per
version in conftest.TUI_VERSIONS), driven through tmux offline (tui_harness.py), with the
hooks `sessionward install` writes. Every assertion is on what the screen shows.

- two sessions in one worktree: the second's SessionStart line is on its screen;
- B's edit of a file A just edited: the screen names A (short id, branch, how long ago) and
  says what to do before the person answers; No keeps A's text, Yes lets B's edit through;
- B's `git checkout -b x`: the dialog carries the reason, naming A;
- `/start` runs and its report reaches the model;
- A's status line changes within the refresh interval as B starts, holds `end`, releases it,
  ends (/exit), and as another session is `kill -9`ed;
- on the shared store (a real redis-server): A's status line shows B, B's edit of A's file
  is stopped with the reason naming A on B's screen, A's status line follows B's `kill -9`;
- a permission dialog refused (Claude Code runs no hook then): `watch` shows the session idle,
  "refused", within a moment, not waiting;
- a permission dialog opened: the live `watch` (in a window beside it) shows the session
  "waiting: permission for Bash <command>" within a second (Claude Code's Notification comes
  only ~6.5 s later), also for a dialog refused at once;
- a PermissionRequest hook that fails (exit 1, as sessionward's do) decides nothing: the
  dialog shows as usual and the person's Yes runs the command;
- `/end` in A while B holds the end lock: sessionward's step lines, naming B, reach the model
  and the person's screen (the step's output and the status line), then /end goes on;
- a sessionward.toml whose store cannot be read: the hooks' failure lines say "which store to
  use cannot be read until this is fixed", the status row "not guarding", before Claude Code
  cuts them.

Run one at a time on a small machine: each test starts two full Claude Code processes.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sessionward._humanize import short_session_id
from sessionward.install.settings import STATUS_LINE_REFRESH_S
from sessionward.store.local_claims import claims_dir

from e2e.mock_messages_api import Step, ToolUse, bash, edit, flatten_text, read, text, tool_result_text, write
from e2e.tui_harness import compact
from helpers import SESSIONWARD, cli_json, make_git_repo

# A change must be on the status line within one refresh interval; the slack covers Claude
# Code's debounce (300 ms), this test's polling and a loaded two-core machine.
WITHIN_S = STATUS_LINE_REFRESH_S + 2.0

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.tui]


@pytest.fixture
def proj(tmp_path):
    return make_git_repo(tmp_path / "proj")


def pair(tui, proj):
    """Sessions A and B in one worktree, started together; A alone answers its first turn by
    writing shared.txt (so A holds a fresh claim on it). Returns (a, b, a's short id, path)."""
    a, b = tui.open(proj), tui.open(proj)
    a.ready()
    b.ready()
    shared = proj / "shared.txt"
    a.run([write(shared, "from A\n"), text("A wrote shared.txt")], until="A wrote shared.txt")
    assert shared.read_text() == "from A\n"
    return a, b, a.session_id()[:8], shared


def test_the_second_session_in_a_worktree_is_told_at_start(tui, proj):
    a = tui.open(proj)
    a.ready()
    a.run([text("A is here")], until="A is here")  # A registered, and has a session id
    b = tui.open(proj)
    b.ready()
    b.run([text("B is here")], until="B is here")  # 2.1.112 prints SessionStart's line with the first turn
    b.wait_for("SessionStart:startup says: sessionward: 1 other session in this worktree", history=200)
    assert any(row.startswith("sessionward:") for row in b.status_line()), b.screen()  # the row is read


def test_an_edit_of_a_file_another_session_just_edited_names_it_and_both_answers_work(tui, proj):
    a, b, a_id, shared = pair(tui, proj)
    take = f"sessionward claim take {shared.name}"
    # B's model reads and edits; the guard stops the edit; the model runs the take-over the
    # reason names, which the person is asked about; on Yes it edits again.
    steps = [read(shared), edit(shared, "from A", "from B"), bash(take, description="take the file over"),
             edit(shared, "from A", "from B"), text("B edited shared.txt")]

    b.run(steps, prompt="change shared.txt")
    screen = b.wait_for("Do you want to proceed", timeout=60, history=200)
    # Before the person answers: who (A's short id, branch, how long ago), what, what to do.
    b.wait_for(f"session {a_id}", "branch main", "edited", str(shared), "still running",
               f"`sessionward claim take {shared}`", history=200)
    b.wait_for("sessionward: take over", f"from session {a_id}", "Yes: this session's edits of it go ahead")
    assert shared.read_text() == "from A\n", screen
    b.answer("Escape")  # No
    b.ready()
    assert shared.read_text() == "from A\n"  # A's work untouched

    b.run(steps, prompt="change shared.txt, the person agrees")
    b.wait_for("Do you want to proceed", "sessionward: take over", f"from session {a_id}")
    b.answer("Enter")  # Yes
    b.wait_for("B edited shared.txt", timeout=60)
    assert shared.read_text() == "from B\n"


def test_a_checkout_in_a_shared_worktree_shows_the_reason_in_its_dialog(tui, proj):
    a, b, a_id, _shared = pair(tui, proj)
    b.run([bash("git checkout -q -b x", description="make branch x"), text("B switched")], prompt="branch off")
    b.wait_for("Do you want to proceed", "git checkout -q -b x", "moves HEAD", f"session {a_id}",
               "where another session also works")
    b.answer("Escape")  # No
    b.ready()
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=proj, capture_output=True, text=True).stdout
    assert branch.strip() == "main"


def test_start_reports_to_the_model(tui, proj):
    a, b = tui.open(proj), tui.open(proj)
    a.ready()
    b.ready()
    marker = tui.api.script([text("Start report read")])
    b.command(f"/start {marker}")
    b.wait_for("Start report read", timeout=60)
    sent = tui.api.first_request(marker).text()
    assert "STRONG WARNING" in sent or "this worktree" in sent, sent[-3000:]


def newly_registered(known: set, timeout: float = 30.0) -> str:
    """The id of a session registered that is not in `known` (added to it), once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        fresh = [s["id"] for s in cli_json("list")["result"]["sessions"] if s["id"] not in known]
        if fresh:
            known.add(fresh[0])
            return fresh[0]
        assert time.monotonic() < deadline, f"no new session registered within {timeout:g}s"
        time.sleep(0.1)


def a_then_b(tui, proj) -> tuple:
    """A opens alone (its status line says so), then B: (a, b, B's short id, the ids
    registered so far, the seconds A's status line took to show B)."""
    a = tui.open(proj)
    a.ready()
    known = {newly_registered(set())}
    a.wait_status("sessionward: main · no other session on proj", timeout=30)
    b = tui.open(proj)
    b_id = short_session_id(newly_registered(known))
    return a, b, b_id, known, a.wait_status(f"1 other session in this worktree ({b_id})", timeout=WITHIN_S)


def test_the_status_line_follows_the_other_session_within_the_refresh_interval(tui, proj):
    took = {}
    a, b, b_id, known, took["B starts"] = a_then_b(tui, proj)

    # B takes the end lock with a real process of its own (its Bash tool runs `lock acquire`,
    # as /end does) and stays mid-turn, so its Stop hook does not free it yet.
    b_turn = b.run([bash(f"{SESSIONWARD} lock acquire end --purpose 'B saves'", description="take the end lock"),
                    text("B is saving", hold=True)])
    tui.api.wait_held(b_turn)
    took["B holds end"] = a.wait_status(f"end held by {b_id} for <1m", timeout=WITHIN_S)
    tui.api.release(b_turn)  # B's turn ends: its Stop hook frees the lock B still holds
    b.wait_for("B is saving")
    took["B's turn ends, end freed"] = a.wait_status("end held", gone=True, timeout=WITHIN_S)
    assert f"1 other session in this worktree ({b_id})" in "".join(a.status_line()), a.screen()

    b.exit()
    took["B exits"] = a.wait_status("sessionward: main · no other session on proj", timeout=WITHIN_S)

    c = tui.open(proj)
    c_id = short_session_id(newly_registered(known))
    a.wait_status(f"1 other session in this worktree ({c_id})", timeout=WITHIN_S)
    os.kill(c.pid, signal.SIGKILL)  # nobody unregisters it: its watcher sees the death
    took["C killed"] = a.wait_status("sessionward: main · no other session on proj", timeout=WITHIN_S)
    print("status line caught up after (s):", {k: round(v, 1) for k, v in took.items()})


def test_on_the_shared_store_sessions_see_each_other_and_an_edit_names_the_other(tui, proj, shared_redis, monkeypatch):
    # SESSIONWARD_STORE on a real redis-server, for both sessions and this test's own
    # `sessionward list`: the records, the claim and the guard go through the server, and
    # what the person sees is what the local store shows.
    with shared_redis.connect() as conn:
        conn.call("FLUSHDB")
    monkeypatch.setenv("SESSIONWARD_STORE", shared_redis.url)
    a, b, _b_id, _known, _took = a_then_b(tui, proj)
    b.ready()

    shared = proj / "shared.txt"
    a.run([write(shared, "from A\n"), text("A wrote shared.txt")], until="A wrote shared.txt")
    a_id = a.session_id()[:8]
    b.run([read(shared), edit(shared, "from A", "from B"), text("B's turn ends")], prompt="change shared.txt")
    b.wait_for(f"sessionward: session {a_id}", "still running", "sessionward stopped this edit", "claim take",
               timeout=60, history=200)
    b.wait_for("B's turn ends")
    assert shared.read_text() == "from A\n"
    state = Path(os.environ["SESSIONWARD_HOME"])
    assert not (state / "obsidian_sessions.json").exists()  # the records and the claim are on the server,
    assert not os.path.exists(claims_dir(str(state)))  # not in the local files

    os.kill(b.pid, signal.SIGKILL)  # nobody unregisters it: on this kernel its PID is gone at once
    a.wait_status("sessionward: main · no other session on proj", timeout=WITHIN_S)


def test_end_while_the_other_session_holds_the_lock_shows_the_wait_and_the_holder(tui, proj):
    a, b = tui.open(proj), tui.open(proj)
    a.ready()
    b.ready()
    b_turn = b.run([bash(f"{SESSIONWARD} lock acquire end --purpose 'B saves'", description="take the end lock"),
                    text("B is saving", hold=True)])
    tui.api.wait_held(b_turn)
    b_id = b.session_id()[:8]
    a.wait_status(f"end held by {b_id} for <1m", timeout=WITHIN_S)

    def step(k):
        return ToolUse("Bash", {"command": f'{SESSIONWARD} lock acquire end --step {k} --exit-zero --purpose "/end save"',
                                "description": "Waiting for the end lock"})

    # The model's part, as end.md teaches it: one line to the person, then the next step.
    told = f"Session {b_id} holds the end lock; waiting for it."
    a_turn = tui.api.script([Step((told, step(1))), Step((told, step(2)), hold=True),
                             bash(f"{SESSIONWARD} lock release end"), bash(f"{SESSIONWARD} unregister"),
                             text("A saved and ended")])
    a.command(f"/end {a_turn}")
    holder = f"pid {b.pid} ("  # then the process name, as /proc shows it
    where = f"session {b_id}, project proj, worktree {proj} (main), purpose: B saves"
    # The !`...` line's output (step 0: only tries) reached the model, naming B.
    deadline = time.monotonic() + 30
    while not tui.api.requests_for(a_turn):
        assert time.monotonic() < deadline, a.describe()
        time.sleep(0.1)
    sent = flatten_text(tui.api.first_request(a_turn).messages)
    assert f"sessionward: waiting for lock end (0 s of 30 s), held by {holder}" in sent, sent[-3000:]
    assert where in sent and "run the next step, 'lock acquire end --step 1'" in sent, sent[-3000:]
    # While step 1 waits, A's status line says so and names B.
    a.wait_status(f"waiting for end (held by {b_id} for <1m)", timeout=WITHIN_S + 5)
    # Step 1's output, naming B, is in the model's next request. (The TUI does not show a
    # Bash call's output while the turn goes on: the status line above is what names B.)
    tui.api.wait_held(a_turn, step=1)
    [result] = tui.api.tool_results(a_turn)
    assert f"waiting for lock end (5 s of 30 s), held by {holder}" in tool_result_text(result)
    assert where in tool_result_text(result)

    tui.api.release(b_turn)  # B's turn ends; its Stop hook frees the end lock
    a.wait_status("waiting for end", "end held by", gone=True, timeout=WITHIN_S)
    tui.api.release(a_turn)  # A runs step 2: it takes the lock at once, saves, releases, ends
    a.wait_for("A saved and ended", timeout=60)
    results = [tool_result_text(r) for r in tui.api.tool_results(a_turn)]
    assert "acquired lock end" in results[1], results
    assert results[2].startswith("released lock end"), results


def activity_of(session_id: str) -> dict:
    """The session's activity as `sessionward watch` shows it (its --once --json snapshot)."""
    rows = cli_json("watch", "--once")["result"]["sessions"]
    return next((row["activity"] or {} for row in rows if row["id"] == session_id), {})


def wait_activity(session_id: str, done, timeout: float) -> tuple[dict, float]:
    start = time.monotonic()
    while True:
        current = activity_of(session_id)
        if done(current):
            return current, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"after {timeout:g}s the activity is still {current}")
        time.sleep(0.2)


def test_a_refused_permission_dialog_is_not_shown_as_waiting(tui, proj):
    """Claude Code runs no hook at all when its person refuses a permission dialog (nothing
    until the next prompt): `watch` shows the session waiting while the dialog is up, and
    idle ("refused") within a moment of the refusal, not waiting until the person types."""
    a = tui.open(proj, permission_mode="default", args=())  # Bash not pre-approved: a dialog
    a.ready()
    a.run([bash("touch refused.txt", description="make a file"), text("never reached")], prompt="make a file")
    a.wait_for("Do you want to proceed", timeout=60)
    sid = a.session_id()
    # Waiting from the dialog's PermissionRequest (Claude Code's Notification comes ~6.5 s on).
    waiting, _ = wait_activity(sid, lambda doing: doing.get("state") == "waiting", timeout=20)
    assert (waiting["wait"], waiting["tool"]) == ("permission", "Bash")
    a.answer("Escape")
    refused, took = wait_activity(sid, lambda doing: doing.get("state") != "waiting", timeout=5)
    assert (refused["state"], refused["event"], refused["tool"]) == ("idle", "refused", "Bash"), refused
    assert refused["since"] > waiting["since"]
    assert not (proj / "refused.txt").exists()
    print(f"shown idle {took:.2f}s after the refusal")


# `watch` redraws within a second of a change (cli/watch.py polls every 0.25 s); the slack
# covers this test's polling of two panes on a loaded two-core machine. Without the
# PermissionRequest hook the wait shows only with Claude Code's Notification, ~6.5 s on.
SHOWN_WITHIN_S = 1.0


def open_watch(tui) -> str:
    """`sessionward watch`, live, in a window of the TUI's tmux server; returns its pane."""
    exports = " ".join(f"{k}={v}" for k, v in (("HOME", os.environ["HOME"]),
                                                 ("SESSIONWARD_HOME", os.environ["SESSIONWARD_HOME"])))
    pane = tui.tmux("new-window", "-d", "-P", "-F", "#{pane_id}", "-t", "tui:", "-n", "watch",
                    f"env {exports} TERM=tmux-256color {SESSIONWARD} watch; sleep 600").strip()
    return pane


def wait_pane(tui, pane: str, shown: str, timeout: float) -> float:
    """Seconds until `shown` (compared as the TUI harness compares) is on the pane."""
    start = time.monotonic()
    while True:
        screen = tui.tmux("capture-pane", "-p", "-t", pane, check=False)
        if compact(shown) in compact(screen):
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"after {timeout:g}s `watch` does not show {shown!r}:\n{screen}")
        time.sleep(0.05)


def test_watch_shows_a_permission_dialog_as_waiting_as_it_opens(tui, proj):
    """Claude Code runs PermissionRequest as its dialog opens, its permission Notification
    only ~6.5 s later (never, when the person answers sooner): `watch` shows the session
    waiting, naming the tool and command, within a second of the dialog, whether the person
    then allows it or refuses it at once."""
    watch = open_watch(tui)
    a = tui.open(proj, permission_mode="default", args=())  # Bash not pre-approved: a dialog
    a.ready()
    a.run([bash("sleep 1; touch ok.txt", description="slow"), text("first turn done")], prompt="run it")
    a.wait_for("Do you want to proceed", timeout=60)
    took = wait_pane(tui, watch, "waiting: permission for Bash sleep 1; touch ok", timeout=10)  # the cell is cut at 48
    assert took <= SHOWN_WITHIN_S, f"shown {took:.2f}s after the dialog"
    a.answer("Enter")
    a.wait_for("first turn done", timeout=60)
    assert (proj / "ok.txt").exists()
    wait_pane(tui, watch, "0 waiting for their person", timeout=5)

    a.run([bash("touch no.txt", description="make a file"), text("never reached")], prompt="make a file")
    a.wait_for("Do you want to proceed", timeout=60)
    again = wait_pane(tui, watch, "waiting: permission for Bash touch no.txt", timeout=10)
    assert again <= SHOWN_WITHIN_S, f"shown {again:.2f}s after the dialog"
    a.answer("Escape")  # at once: Claude Code's Notification never comes for this dialog
    wait_pane(tui, watch, "idle: refused Bash", timeout=5)
    assert not (proj / "no.txt").exists()
    print(f"waiting shown {took:.2f}s and {again:.2f}s after the dialog was on screen")


def test_a_failing_permission_request_hook_leaves_the_dialog_to_the_person(tui, proj):
    """sessionward's hooks fail open with exit 1 and one line (hooks/__init__.py). For
    PermissionRequest that must decide nothing: Claude Code shows its dialog as usual, and
    the person's answer stands (here a store that cannot be opened makes the hook fail)."""
    a = tui.open(proj, permission_mode="default", args=(), env={"SESSIONWARD_STORE": "no-such-store"})
    a.ready()
    a.run([bash("touch allowed.txt", description="make a file"), text("turn done")], prompt="make a file")
    a.wait_for("Do you want to proceed", timeout=60)
    a.answer("Enter")
    a.wait_for("turn done", timeout=60)
    assert (proj / "allowed.txt").exists()
    # The hook did run and fail (its one line, as Claude Code logged it), and decided nothing.
    assert "sessionward hook PermissionRequest: SESSIONWARD_STORE='no-such-store'" in a.debug_log(), a.describe()


def test_a_settings_file_whose_store_cannot_be_read_says_so_where_the_person_looks(tui, proj, tmp_path):
    """A sessionward.toml that names a store but is not TOML (here a `vault =` left without
    its value): sessionward cannot know which store the other sessions use, so it refuses
    rather than split the registry (config._keep_store). What the person must read: which
    store to use cannot be read until the file is fixed (the hooks' failure lines), and that
    nothing is guarded meanwhile (the status row). Claude Code cuts a hook's line and the
    status line is one row, so those words come first."""
    settings = tmp_path / "sessionward.toml"
    settings.write_text('store = "unix:///run/redis/redis.sock"\nvault = \n')
    a = tui.open(proj, env={"SESSIONWARD_CONFIG": str(settings)})
    a.ready()
    a.wait_status("sessionward: not guarding: which store to use cannot be read until this is fixed",
                  timeout=WITHIN_S + 10)
    a.run([text("first turn done")], until="first turn done")
    a.wait_for("SessionStart", "sessionward hook SessionStart: which store to use cannot be read until this is fixed",
               "sessionward hook UserPromptSubmit: which store to use cannot be read until this is fixed",
               history=200)
