"""sessionward as a person meets it: the real interactive Claude Code TUI (each test once per
version in conftest.TUI_VERSIONS), driven through tmux offline (tui_harness.py), with the
hooks `sessionward install` writes. Every assertion is on what the screen shows.

- two sessions in one worktree: the second's SessionStart line is on its screen;
- B's edit of a file A just edited: the screen names A (short id, branch, how long ago) and
  says what to do before the person answers; No keeps A's text, Yes lets B's edit through;
- B's `git checkout -b x`: the dialog carries the reason, naming A;
- `/start` runs and its report reaches the model.

Run one at a time on a small machine: each test starts two full Claude Code processes.
"""

import subprocess

import pytest

from e2e.mock_messages_api import bash, edit, read, text, write
from helpers import make_git_repo

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
