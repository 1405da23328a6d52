"""/end's wait for the `end` lock, as the person meets it (issue 11, items 3 and 4), with real
processes: the holder a real process whose session is registered, the waiter the real
launcher, the command file the one `sessionward install` writes.

- `lock acquire --step K`: each step names the holder (short session id, project, worktree
  and the branch it has now, how long it has held the lock) and the next step; the last
  step is the timeout, counting every step. Claude Code's TUI shows a Bash command's output
  only once it ended (2.1.112) or not at all (2.1.331): the model reports between steps.
- end.md looks for what sessionward really prints: every phrase it tells the model to look
  for is in a real outcome, and every outcome is one it names.
- short ids and the worktree's branch now in `list` (piped too), `check` and `lock status`;
  full ids in --json.
"""

import re
import subprocess
import time

import pytest

from helpers import SESSIONWARD, cli_json, git, make_git_repo, run_cli

CLAUDE_ID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
TWIN_ID = "3f2a9c1e-0000-4e8f-9a0b-1c2d3e4f5a6b"  # the same first 8 characters


@pytest.fixture
def repo(tmp_path):
    return make_git_repo(tmp_path / "proj")


@pytest.fixture
def holder(repo):
    """A live process whose registered session (a Claude-style id) holds `end`."""
    proc = subprocess.Popen(["sleep", "120"])
    try:
        run_cli("register", "--pid", str(proc.pid), "--session", CLAUDE_ID, "proj", str(repo), check=True)
        run_cli("lock", "acquire", "end", "--pid", str(proc.pid), "--purpose", "/end save", check=True)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def acquire_step(step, *extra, cwd=None):
    started = time.monotonic()
    ran = run_cli("lock", "acquire", "end", "--step", str(step), "--exit-zero", "--purpose", "/end save", *extra,
                  cwd=cwd)
    assert ran.returncode == 0 and ran.stderr == "", ran
    return ran.stdout, time.monotonic() - started


def holder_phrase(proc, repo, branch="main") -> str:
    return (f"held by pid {proc.pid} (sleep), session 3f2a9c1e, project proj, worktree {repo} ({branch}), "
            f"purpose: /end save, held for ")


def test_each_step_names_the_holder_and_the_next_step(holder, repo, tmp_path):
    out, took = acquire_step(0, "--timeout", "7", cwd=tmp_path)  # the !`...` line: a try, no wait
    assert took < 2.0, took
    assert out.startswith(f"sessionward: waiting for lock end (0 s of 7 s), {holder_phrase(holder, repo)}"), out
    assert out.endswith("s; still waiting: run the next step, 'lock acquire end --step 1'\n"
                        "(sessionward exit status 1)\n"), out
    out, took = acquire_step(1, "--timeout", "7", cwd=tmp_path)
    assert 4.5 < took < 8.0, took
    assert re.fullmatch(re.escape(f"sessionward: waiting for lock end (5 s of 7 s), {holder_phrase(holder, repo)}")
                        + r"[5-9]s; still waiting: run the next step, 'lock acquire end --step 2'\n"
                        r"\(sessionward exit status 1\)\n", out), out
    out, took = acquire_step(2, "--timeout", "7", cwd=tmp_path)  # the last: what is left, 2 s
    assert 1.5 < took < 4.5, took
    assert out.startswith(f"sessionward: lock end still held after 7.0 s by pid {holder.pid} (sleep), "
                          "session 3f2a9c1e, project proj"), out
    assert (run_cli("lock", "status").stdout.split(",")[0]) == f"end: held by pid {holder.pid} (sleep)"


def test_a_step_takes_the_lock_once_it_is_released(holder, tmp_path):
    waiter = subprocess.Popen([SESSIONWARD, "lock", "acquire", "end", "--step", "1", "--exit-zero"],
                              stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(1.0)
    run_cli("lock", "release", "end", "--force", check=True)
    out, _ = waiter.communicate(timeout=10)
    assert out.startswith("acquired lock end after "), out
    assert run_cli("lock", "acquire", "end", "--step", "x").stderr == (
        "sessionward: invalid step 'x': expected a whole number from 0 to 10000\n")


def test_the_branch_shown_is_the_worktrees_branch_now(holder, repo, tmp_path):
    git(repo, "checkout", "-q", "-b", "topic")  # a checkout in the shared worktree, since the acquire
    out, _ = acquire_step(0, cwd=tmp_path)
    assert holder_phrase(holder, repo, "topic") in out, out
    [row] = [line for line in run_cli("list").stdout.splitlines()[1:]]
    assert row.split("\t")[:4] == ["3f2a9c1e", "proj", str(repo), "topic"], row
    [session] = cli_json("list")["result"]["sessions"]
    assert (session["id"], session["branch"]) == (CLAUDE_ID, "topic")  # full id in --json
    checked = run_cli("check", "--cwd", str(repo))
    assert f"  3f2a9c1e  project proj  {repo}  branch topic  pid {holder.pid}" in checked.stdout, checked.stdout
    assert run_cli("lock", "status").stdout.startswith(
        f"end: held by pid {holder.pid} (sleep), session 3f2a9c1e, project proj, worktree {repo} (topic)")


def test_ids_that_look_alike_are_told_apart(holder, repo):
    other = subprocess.Popen(["sleep", "120"])
    try:
        run_cli("register", "--pid", str(other.pid), "--session", TWIN_ID, "proj", str(repo), check=True)
        rows = run_cli("list").stdout.splitlines()[1:]
        assert sorted(row.split("\t")[0] for row in rows) == ["3f2a9c1e-0", "3f2a9c1e-5"], rows
        assert {s["id"] for s in cli_json("list")["result"]["sessions"]} == {CLAUDE_ID, TWIN_ID}
        refused = run_cli("prune", "--force", "3f2a9c1e-0")  # the label names the one session
        assert refused.returncode == 1 and "session 3f2a9c1e-0000" not in refused.stderr, refused
        assert "session 3f2a9c1e (project proj) is alive" in refused.stderr, refused
    finally:
        other.kill()
        other.wait()


# -- end.md says what sessionward prints ------------------------------------------------------


def end_md(claude_dir) -> str:
    ran = run_cli("install")
    assert ran.returncode == 0, ran.stderr
    return (claude_dir / "commands" / "end.md").read_text()


def looked_for(text: str) -> list[str]:
    """The phrases end.md tells the model to look for: `says `PHRASE``, and `(or `PHRASE`)`."""
    return re.findall(r"says `([^`]+)`", text) + re.findall(r"\(or `([^`]+)`\)", text)


def test_end_md_looks_for_what_sessionward_prints(tmp_path, repo, holder):
    claude_dir = tmp_path / "home" / ".claude"
    text = end_md(claude_dir)
    # What its lines print in each case: the lock taken, already ours, still waiting, given up.
    [line] = re.findall(r"^!`(.+)`$", text, re.M)
    argv = line.split(" ", 1)[1]
    assert argv == 'lock acquire end --step 0 --exit-zero --purpose "/end save"'
    waiting, _ = acquire_step(0, "--timeout", "1", cwd=tmp_path)
    gave_up, _ = acquire_step(1, "--timeout", "1", cwd=tmp_path)
    holder.kill()
    holder.wait()
    mine = subprocess.Popen(["sleep", "60"])
    try:
        took = run_cli("lock", "acquire", "end", "--step", "0", "--exit-zero", "--pid", str(mine.pid)).stdout
        again = run_cli("lock", "acquire", "end", "--step", "0", "--exit-zero", "--pid", str(mine.pid)).stdout
    finally:
        mine.kill()
        mine.wait()
    outcomes = {"waiting": waiting, "gave up": gave_up, "acquired": took, "already": again}
    phrases = looked_for(text)
    assert phrases, text
    for phrase in phrases:  # each phrase end.md looks for is printed in some outcome
        assert any(phrase in out for out in outcomes.values()), (phrase, outcomes)
    for name, out in outcomes.items():  # and each outcome is one end.md names
        assert any(phrase in out for phrase in phrases), (name, out, phrases)
    assert "--step N --exit-zero" in text and "next step" in waiting
