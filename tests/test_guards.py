"""The guards, with real owners (live `sleep` processes), real claims, real locks and a real
registry: who may edit a file, and who may run a risky git command, now."""

import copy
import os
import re
import signal
import subprocess
import sys

import pytest

from sessionward import registry
from sessionward.claims import end_claims, record_claim, take_over
from sessionward.config import Config, load_config
from sessionward.guards import Verdict, check_file_edit, check_git_command, check_take_over, parse_take_command
from sessionward.identity import describe_checkout, resolve_owner
from sessionward.locks import Holder, NamedLock

from helpers import git, make_git_repo

pytestmark = pytest.mark.usefixtures("store_backend")  # the guards' verdicts, on every store backend

NOW = 1_800_000_000.0
OTHER_SID = "bbbbbbbb-1111-2222-3333"  # shown as its first 8 characters
MINE_SID = "aaaaaaaa-1111-2222-3333"


@pytest.fixture
def repo(tmp_path):
    return make_git_repo(tmp_path / "proj")


@pytest.fixture
def target(repo):
    path = repo / "notes.md"
    path.write_text("first\n")
    return str(path)


@pytest.fixture
def me(owners):
    return owners()


@pytest.fixture
def other(owners):
    return owners()


def kill(owner) -> None:
    os.kill(owner.pid, signal.SIGKILL)
    os.waitpid(owner.pid, 0)  # reaped: the PID is gone, not a zombie


def claim(path, owner, tool="Edit", at=NOW, session=OTHER_SID, state=None):
    return record_claim(path, owner=owner, session_id=session, tool=tool, checkout=describe_checkout(os.path.dirname(path)),
                        now=at, state=state)


def policy(name: str) -> Config:
    return load_config({"SESSIONWARD_EDIT_POLICY": name})


def who(owner, repo, label="bbbbbbbb") -> str:
    return f"session {label} (project proj, worktree {repo}, branch main, pid {owner.pid})"


# -- claimed: another live session edited the file recently ------------------------------------


def test_verdict_truthiness_and_repr():
    assert not Verdict() and Verdict().decision is None
    assert Verdict("ask", "why", "git")
    assert repr(Verdict("deny", "r", "stale")) == "Verdict('deny', 'stale', 'r')"


def test_claimed_by_another_live_session_is_denied_by_default_saying_how_to_take_it_over(target, repo, me, other):
    claim(target, other, at=NOW - 60)
    verdict = check_file_edit(target, me, load_config({}), now=NOW)
    assert (verdict.decision, verdict.rule) == ("deny", "claimed")
    assert verdict.reason == (
        f"{who(other, repo)} edited {target} 1m ago and is still running. Editing it here could overwrite "
        f"that work, so sessionward stopped this edit. Tell the user which session is working on the file. "
        f"If they want this session to edit it anyway, run `sessionward claim take {target}` (the user "
        f"confirms it), then make the edit again."
    )
    assert [c["owner"]["pid"] for c in verdict.others] == [other.pid]


def test_claimed_with_policy_ask(target, repo, me, other):
    claim(target, other, at=NOW - 5)
    verdict = check_file_edit(target, me, policy("ask"), now=NOW)
    assert (verdict.decision, verdict.rule) == ("ask", "claimed")
    assert verdict.reason == (
        f"{who(other, repo)} edited {target} 5s ago and is still running. Editing it here can "
        f"overwrite that session's work. Allow only if you know the edits do not collide."
    )


def test_taking_over_lets_this_sessions_edits_through_until_the_other_edits_again(target, repo, me, other):
    claim(target, other, at=NOW - 60)
    take_over(target, owner=me, session_id=MINE_SID, checkout=describe_checkout(str(repo)), now=NOW - 30)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None
    claim(target, me, at=NOW - 20, session=MINE_SID)  # our edit keeps the take-over
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None
    claim(target, other, at=NOW - 10)  # the other session edits again: stopped again
    assert check_file_edit(target, me, load_config({}), now=NOW).decision == "deny"
    assert check_file_edit(target, other, load_config({}), now=NOW).decision == "deny"  # and so is the other, by ours


def test_take_over_command_is_asked_naming_the_other_session(target, repo, me, other):
    command = f"sessionward claim take {os.path.basename(target)}"
    assert not check_take_over(command, str(repo), me, load_config({}), now=NOW)  # nothing stands: no question
    claim(target, other, at=NOW - 60)
    verdict = check_take_over(command, str(repo), me, load_config({}), now=NOW)
    assert (verdict.decision, verdict.rule) == ("ask", "take")
    assert verdict.reason == (
        f"take over {target} from {who(other, repo)}, which edited it 1m ago and is still running. Yes: this "
        f"session's edits of it go ahead and can overwrite that session's work (its next edit is stopped in "
        f"turn). No: nothing changes."
    )
    for other_form in (f"'/usr/local/bin/sessionward' claim take {target}", f"sessionward claim take {target}; true"):
        assert check_take_over(other_form, str(repo), me, load_config({}), now=NOW).decision == "ask"
    assert not check_take_over("sessionward list", str(repo), me, load_config({}), now=NOW)


def test_take_over_command_naming_the_file_from_home_is_asked(target, repo, me, other, monkeypatch):
    """Bash expands `~/` before sessionward runs, so `claim take ~/proj/notes.md` takes over
    the file itself: the person must be asked, as for any other spelling of its path."""
    monkeypatch.setenv("HOME", str(repo.parent))
    claim(target, other, at=NOW - 60)
    verdict = check_take_over("sessionward claim take ~/proj/notes.md", str(repo), me, load_config({}), now=NOW)
    assert (verdict.decision, verdict.rule) == ("ask", "take")
    assert verdict.reason.startswith("take over ~/proj/notes.md from session bbbbbbbb (project proj, worktree ~/proj, ")


@pytest.mark.parametrize("command, expected", [
    ("sessionward claim take notes.md", "{repo}/notes.md"),
    ("  /opt/x/bin/sessionward claim take '/a b/c.md' ", "/a b/c.md"),
    ('sessionward claim take "sub/../notes.md"', "{repo}/notes.md"),
    ("sessionward claim take notes.md && rm x", None),
    ("sessionward claim take $(echo x)", None),
    ("sessionward claim take", None),
    ("sessionwardx claim take notes.md", None),
    ("sessionward claim take ~/notes.md", "{home}/notes.md"),        # bash expands an unquoted ~
    ("sessionward claim take '~/notes.md'", "{repo}/~/notes.md"),     # a quoted one stays literal
])
def test_parse_take_command(repo, command, expected):
    home = os.path.realpath(os.environ["HOME"])
    assert parse_take_command(command, str(repo)) == (expected.format(repo=repo, home=home) if expected else None)


def test_claimed_with_policy_warn(target, repo, me, other):
    claim(target, other, at=NOW - 0.5)
    verdict = check_file_edit(target, me, policy("warn"), now=NOW)
    assert (verdict.decision, verdict.rule) == ("warn", "claimed")
    assert verdict.reason == f"{who(other, repo)} edited {target} just now and is still running: editing it here anyway (edit policy: warn)."


def test_several_claimants_name_the_latest_and_count_the_rest(target, repo, me, owners):
    first, second, third = owners(), owners(), owners()
    claim(target, first, at=NOW - 300)
    claim(target, second, at=NOW - 200)
    claim(target, third, at=NOW - 100)
    verdict = check_file_edit(target, me, load_config({}), now=NOW)
    assert verdict.reason.startswith(f"{who(third, repo)} (and 2 more) edited {target} 1m ago and is still running.")


def test_a_claim_without_checkout_facts_still_names_pid_and_session(target, me, other):
    record_claim(target, owner=other, session_id=None, tool="Write", now=NOW - 60)
    verdict = check_file_edit(target, me, load_config({}), now=NOW)
    assert verdict.reason.startswith(f"session ? (pid {other.pid}) edited {target} 1m ago and is still running.")


def test_a_claimant_on_another_kernel_may_still_be_running(target, repo, me, other):
    # Its liveness cannot be known from here (another machine or VM sharing the files): the
    # claim still counts, and the reason says why it is not "still running" for sure.
    far = copy.copy(other)
    far.hostname, far.boot_id, far.life = "far", "other-boot", True  # life: no watcher started here for it
    claim(target, far, at=NOW - 60)
    verdict = check_file_edit(target, me, load_config({"SESSIONWARD_EDIT_POLICY": "ask"}), now=NOW)
    assert (verdict.decision, verdict.rule) == ("ask", "claimed")
    assert verdict.reason == (
        f"session bbbbbbbb (project proj, worktree {repo}, branch main, pid {other.pid} on far) edited {target} "
        f"1m ago and may still be running (unknown: on another kernel (far); last sign of life 1m ago). "
        f"Editing it here can overwrite that session's work. Allow only if you know the edits do not collide."
    )


def test_a_read_by_another_session_does_not_block(target, me, other):
    claim(target, other, tool="Read", at=NOW - 60)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_a_dead_claimant_blocks_nobody(target, me, other):
    claim(target, other, at=NOW - 60)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision == "deny"  # alive: blocks
    kill(other)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_a_zombie_claimant_blocks_nobody(target, me):
    proc = subprocess.Popen(["sleep", "600"])
    try:
        from sessionward.identity import resolve_owner

        zombie = resolve_owner(proc.pid)
        claim(target, zombie, at=NOW - 60)
        os.kill(proc.pid, signal.SIGKILL)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert check_file_edit(target, me, load_config({}), now=NOW).decision is None
    finally:
        proc.wait()


def test_an_ended_claim_blocks_nobody(target, me, other):
    claim(target, other, at=NOW - 60)
    end_claims(other, NOW - 30)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_my_own_claim_does_not_block_me(target, me):
    claim(target, me, at=NOW - 60, session=MINE_SID)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_a_claim_older_than_the_ttl_blocks_nobody(target, me, other):
    config = load_config({"SESSIONWARD_CLAIM_TTL_MINUTES": "10"})
    claim(target, other, at=NOW - 600)
    assert check_file_edit(target, me, config, now=NOW).decision == "deny"  # at the TTL: still counts
    assert check_file_edit(target, me, config, now=NOW + 1).decision is None


def test_an_unclaimed_file_is_free(target, me):
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


# -- stale: the file changed behind this session's back ----------------------------------------


def change_file(path, text: str, mtime_ns: int) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def stale_setup(target, me, other, new_text: str, mine_tool="Read"):
    """Mine at t1 (2 h ago), the other's write at t2 (1 h ago, beyond the claim TTL so only
    the staleness rule can speak); the file's content then becomes `new_text`."""
    claim(target, me, tool=mine_tool, at=NOW - 7200, session=MINE_SID)
    recorded = os.stat(target).st_mtime_ns
    change_file(target, new_text, recorded + 3_000_000_000)
    claim(target, other, tool="Edit", at=NOW - 3600)


def test_changed_after_my_read_by_another_writer_is_denied_naming_it(target, repo, me, other):
    stale_setup(target, me, other, "second, longer\n")
    verdict = check_file_edit(target, me, load_config({}), now=NOW)
    assert (verdict.decision, verdict.rule) == ("deny", "stale")
    assert verdict.reason == (
        f"{target} changed on disk since this session last read it (2h00m ago): {who(other, repo)} "
        f"edited it 1h00m ago. Editing now would overwrite that change unseen. Read the file "
        f"again, then make the edit on its current content."
    )
    assert [c["owner"]["pid"] for c in verdict.others] == [other.pid]


def test_stale_after_my_write_says_wrote(target, me, other):
    stale_setup(target, me, other, "second\n", mine_tool="Write")
    verdict = check_file_edit(target, me, load_config({}), now=NOW)
    assert verdict.rule == "stale" and "since this session last wrote it (2h00m ago)" in verdict.reason


def test_same_size_new_content_is_stale(target, me, other):
    stale_setup(target, me, other, "FIRST\n")  # same size, new mtime, new digest
    assert check_file_edit(target, me, load_config({}), now=NOW).rule == "stale"


def test_stale_counts_writers_that_ended_or_died(target, repo, me, other):
    stale_setup(target, me, other, "second\n")
    end_claims(other, NOW - 60)
    verdict = check_file_edit(target, me, load_config({}), now=NOW)
    assert verdict.rule == "stale"
    assert f"session bbbbbbbb (project proj, worktree {repo}, branch main, pid {other.pid}, ended) edited it" in verdict.reason
    kill(other)
    assert check_file_edit(target, me, load_config({}), now=NOW).rule == "stale"


def test_unchanged_content_is_not_stale(target, me, other):
    stale_setup(target, me, other, "first\n")  # rewritten with the same bytes: only mtime moved
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_changed_without_another_claim_is_not_stale(target, me):
    claim(target, me, tool="Read", at=NOW - 7200, session=MINE_SID)
    change_file(target, "changed by an editor\n", os.stat(target).st_mtime_ns + 10**9)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_another_write_before_mine_is_not_stale(target, me, other):
    claim(target, other, tool="Edit", at=NOW - 7200)
    claim(target, me, tool="Read", at=NOW - 3600, session=MINE_SID)
    change_file(target, "changed later by an editor\n", os.stat(target).st_mtime_ns + 10**9)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_another_read_after_mine_is_not_stale(target, me, other):
    claim(target, me, tool="Read", at=NOW - 7200, session=MINE_SID)
    change_file(target, "changed\n", os.stat(target).st_mtime_ns + 10**9)
    claim(target, other, tool="Read", at=NOW - 3600)
    assert check_file_edit(target, me, load_config({}), now=NOW).decision is None


def test_a_file_deleted_since_is_stale(target, me, other):
    claim(target, me, tool="Read", at=NOW - 7200, session=MINE_SID)
    os.unlink(target)
    claim(target, other, tool="Write", at=NOW - 3600)
    assert check_file_edit(target, me, load_config({}), now=NOW).rule == "stale"


# -- the vault while another session holds the end lock ----------------------------------------


@pytest.fixture
def vault(tmp_path):
    path = tmp_path / "Vault"
    path.mkdir()
    (path / "daily.md").write_text("notes\n")
    return path


def vault_config(vault) -> Config:
    return load_config({"SESSIONWARD_VAULT": str(vault)})


def take_end(owner, repo, session=OTHER_SID) -> NamedLock:
    lock = NamedLock("end", holder=Holder.session_owner(owner), owner=owner, session_id=session,
                     cwd=str(repo), purpose="/end save")
    lock.acquire(timeout=1)
    return lock


def test_vault_file_while_another_session_holds_end_is_denied_naming_it(vault, repo, me, other):
    take_end(other, repo)
    path = str(vault / "daily.md")
    verdict = check_file_edit(path, me, vault_config(vault), now=NOW)
    assert (verdict.decision, verdict.rule) == ("deny", "vault")
    assert re.fullmatch(
        re.escape(
            f"{path} is in the notes vault, and another session is saving there under the end lock: "
            f"pid {other.pid} (sleep), session bbbbbbbb, project proj, worktree {repo} (main), "
            f"purpose: /end save, held for "
        )
        + r"\d+s"
        + r"(, fence \d+, lease [\d.]+ s left unless renewed)?"  # the shared store's lease
        + re.escape(". Wait until its /end save finishes, then retry ('sessionward lock status' shows the holder)."),
        verdict.reason,
    ), verdict.reason


def test_the_vault_itself_and_new_files_in_it_are_guarded(vault, repo, me, other):
    take_end(other, repo)
    assert check_file_edit(str(vault), me, vault_config(vault), now=NOW).rule == "vault"
    assert check_file_edit(str(vault / "sub" / "new.md"), me, vault_config(vault), now=NOW).rule == "vault"


def test_vault_while_i_hold_end_is_free(vault, repo, me):
    take_end(me, repo, session=MINE_SID)
    assert check_file_edit(str(vault / "daily.md"), me, vault_config(vault), now=NOW).decision is None


def test_vault_while_my_pid_on_another_machine_holds_end_is_denied(vault, repo, me):
    """Sessions on two machines (a shared store): the holder there has my owner's PID (and,
    both in their initial PID namespace, its namespace's inode): it is not my /end save
    (regression: PIDs were compared, and the edit went through)."""
    elsewhere = resolve_owner(me.pid)
    elsewhere.boot_id, elsewhere.hostname = "0badb007-0000-4000-8000-00000000beef", "devbox"
    take_end(elsewhere, repo)
    verdict = check_file_edit(str(vault / "daily.md"), me, vault_config(vault), now=NOW)
    assert (verdict.decision, verdict.rule) == ("deny", "vault"), verdict.reason


def test_vault_while_a_command_of_my_session_holds_end_is_free(vault, repo, me, owners):
    command = owners()  # `lock run`: the command's PID is in end.lock, the session is mine
    NamedLock("end", holder=Holder(command, reentrant=False), owner=me, cwd=str(repo)).acquire(timeout=1)
    assert check_file_edit(str(vault / "daily.md"), me, vault_config(vault), now=NOW).decision is None


def test_outside_the_vault_the_end_lock_does_not_matter(vault, repo, target, me, other):
    take_end(other, repo)
    assert check_file_edit(target, me, vault_config(vault), now=NOW).decision is None
    sibling = str(vault) + "2/x.md"  # a prefix of the name is not inside
    assert check_file_edit(sibling, me, vault_config(vault), now=NOW).decision is None


def test_vault_with_a_free_or_orphaned_end_lock_is_free(vault, repo, me, other):
    path = str(vault / "daily.md")
    assert check_file_edit(path, me, vault_config(vault), now=NOW).decision is None
    take_end(other, repo)
    assert check_file_edit(path, me, vault_config(vault), now=NOW).rule == "vault"
    kill(other)  # a dead holder holds nothing
    assert check_file_edit(path, me, vault_config(vault), now=NOW).decision is None


def test_without_a_configured_vault_the_end_lock_does_not_matter(vault, repo, me, other):
    take_end(other, repo)
    assert check_file_edit(str(vault / "daily.md"), me, load_config({}), now=NOW).decision is None


def test_the_vault_rule_comes_before_claims(vault, repo, me, other, owners):
    path = str(vault / "daily.md")
    claim(path, owners(), at=NOW - 60)
    take_end(other, repo)
    assert check_file_edit(path, me, vault_config(vault), now=NOW).rule == "vault"


# -- git commands while another session shares the worktree -----------------------------------


def register(owner, cwd, session=OTHER_SID, at=NOW - 90):
    return registry.register_session(str(cwd), owner=owner, session_id=session, now=at)


@pytest.mark.parametrize("command,says", [
    ("git stash",
     "'git stash' moves HEAD or rewrites the index or files of {repo}, where another session also works: {other}. "
     "Its uncommitted work could be overwritten or switched away. Make sure it has committed or stashed, or work "
     "in a separate worktree (git worktree add ../<dir> -b <branch>)."),
    ("git ls-files -m | xargs git add && git commit -m wip",  # a sweep of paths no reader can know
     "'git add' stages or commits more than named files in {repo}, where another session also works: {other}. "
     "Its uncommitted work could go into this commit. Stage and commit only your own files by name "
     "(git add <files> && git commit -m <msg> -- <files>)."),
])
def test_risky_git_with_another_session_in_the_worktree_asks_naming_it(repo, me, other, command, says):
    register(other, repo)
    verdict = check_git_command(command, str(repo), me, load_config({}), now=NOW)
    assert (verdict.decision, verdict.rule) == ("ask", "git")
    described = f"session bbbbbbbb (project proj, worktree {repo}, branch main, pid {other.pid}, up 1m)"
    assert verdict.reason == says.format(repo=repo, other=described)


def test_with_two_other_sessions_in_the_worktree_the_reason_speaks_of_both(repo, me, other, owners):
    register(other, repo)
    register(owners(), repo, session="cccccccc-0000-4000-8000-000000000003")
    verdict = check_git_command("git stash", str(repo), me, load_config({}), now=NOW)
    assert verdict.decision == "ask"
    assert "where 2 other sessions also work: session " in verdict.reason, verdict.reason
    assert "Their uncommitted work could be overwritten or switched away. Make sure they have committed or " \
           "stashed" in verdict.reason
    sweep = check_git_command("git ls-files -m | xargs git add && git commit -m wip", str(repo), me, load_config({}),
                              now=NOW)
    assert sweep.decision == "ask" and "Their uncommitted work could go into this commit" in sweep.reason


def test_the_reason_says_what_the_other_session_holds(repo, me, other):
    register(other, repo)
    take_end(other, repo)
    verdict = check_git_command("git checkout -b x", str(repo), me, load_config({}), now=NOW)
    assert f"pid {other.pid}, up 1m, holds end)" in verdict.reason


def test_from_a_subdirectory_or_after_cd_the_worktree_is_the_same(repo, me, other):
    register(other, repo)
    (repo / "sub").mkdir()
    config = load_config({})
    assert check_git_command("git reset --hard", str(repo / "sub"), me, config, now=NOW).rule == "git"
    verdict = check_git_command("cd sub && git pull", str(repo), me, config, now=NOW)
    assert verdict.reason.startswith(f"'git pull' moves HEAD or rewrites the index or files of {repo}, ")


def test_other_session_in_another_worktree_is_not_asked(repo, tmp_path, me, other):
    linked = tmp_path / "proj-feature"
    git(repo, "worktree", "add", "-q", str(linked), "-b", "feature")
    register(other, linked)
    config = load_config({})
    assert check_git_command("git checkout main", str(repo), me, config, now=NOW).decision is None
    # ...but a command aimed at its worktree is
    verdict = check_git_command(f"git -C {linked} stash", str(repo), me, config, now=NOW)
    assert verdict.rule == "git"
    assert f"session bbbbbbbb (project proj, worktree {linked}, branch feature, pid {other.pid}, up 1m)" in verdict.reason


def test_git_guard_false_turns_it_off(repo, me, other):
    register(other, repo)
    config = load_config({"SESSIONWARD_GIT_GUARD": "0"})
    assert check_git_command("git reset --hard", str(repo), me, config, now=NOW).decision is None


def test_harmless_git_commands_pass(repo, me, other):
    register(other, repo)
    for command in ("git status", "git stash list", "git commit -m x mine.py", "echo 'git checkout'", "ls",
                    "git clean -n", "cat > s.sh <<'EOF'\ngit reset --hard\nEOF"):
        assert check_git_command(command, str(repo), me, load_config({}), now=NOW).decision is None, command


def test_a_command_on_named_files_asks_only_when_another_session_edited_one(repo, target, me, other):
    register(other, repo)
    (repo / "mine.py").write_text("x\n")
    config = load_config({})
    for command in ("git checkout -- notes.md", "git commit -m x notes.md", "git restore mine.py notes.md"):
        assert check_git_command(command, str(repo), me, config, now=NOW).decision is None, command  # no claim yet
    claim(target, other, tool="Write", at=NOW - 120)
    verdict = check_git_command("git checkout -- mine.py notes.md", str(repo), me, config, now=NOW)
    assert (verdict.decision, verdict.rule) == ("ask", "git")
    assert verdict.reason == (f"'git checkout -- mine.py notes.md' would discard or unstage changes to {target}, changed "
                              f"by another live session: {who(other, repo)} edited {target} 2m ago. Its uncommitted work "
                              f"there could be lost. Leave those files to it, or ask it to commit first.")
    verdict = check_git_command("git add notes.md && git commit -m x notes.md", str(repo), me, config, now=NOW)
    assert verdict.reason.startswith(f"'git add notes.md' would commit {target}, changed by another live session")
    assert check_git_command("git checkout -- mine.py", str(repo), me, config, now=NOW).decision is None
    kill(other)
    assert check_git_command("git checkout -- notes.md", str(repo), me, config, now=NOW).decision is None


def bash_edit(path, text: str, at: float) -> str:
    """A change no session claimed (made through Bash), at `at`."""
    with open(path, "w") as f:
        f.write(text)
    os.utime(path, (at, at))
    return str(path)


@pytest.fixture
def shared(repo, me, other):
    """`repo` shared with the other session (started at NOW - 90); this session edited and
    staged mine.py (its claim names it), the file notes.md is committed and clean."""
    register(other, repo)
    register(me, repo, session=MINE_SID)
    (repo / "notes.md").write_text("first\n")
    git(repo, "add", "notes.md")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "notes")
    mine = bash_edit(repo / "mine.py", "x = 1\n", NOW - 60)
    claim(mine, me, tool="Write", at=NOW - 60, session=MINE_SID)
    git(repo, "add", "mine.py")
    return repo


SWEEPS = ("git add -A", "git add .", "git add -u", "git commit -m x", "git commit -am x", "git commit -m x .",
          "git commit --amend --no-edit", "cd sub && git add -A")


def test_a_sweep_of_only_this_sessions_changes_is_not_asked(shared, me):
    (shared / "sub").mkdir()
    old = bash_edit(shared / "old.log.txt", "before them\n", NOW - 300)  # changed before the other started
    for command in SWEEPS:
        assert check_git_command(command, str(shared), me, load_config({}), now=NOW).decision is None, command
    assert os.path.exists(old)


@pytest.mark.parametrize("command", SWEEPS)
def test_a_sweep_that_takes_a_file_the_other_session_claimed_asks_naming_it(shared, me, other, command):
    (shared / "sub").mkdir()
    notes = bash_edit(shared / "notes.md", "theirs\n", NOW - 30)
    claim(notes, other, tool="Edit", at=NOW - 30)
    if command in ("git commit -m x", "git commit --amend --no-edit"):
        git(shared, "add", "notes.md")  # a commit of the index takes what is staged
    verdict = check_git_command(command, str(shared), me, load_config({}), now=NOW)
    assert (verdict.decision, verdict.rule) == ("ask", "git"), command
    text = command.split("&& ")[-1]
    assert verdict.reason == (
        f"'{text}' would commit {notes}, changed by another live session: {who(other, shared)} edited {notes} "
        f"30s ago. Its uncommitted work would go into this session's commit. Commit only your own files by name "
        f"(git add <files> && git commit -m <msg> -- <files>), or ask it to commit first.")


def test_a_sweep_of_a_file_changed_through_bash_after_the_other_session_started_asks(shared, me, other):
    new = bash_edit(shared / "gen.py", "made by sed\n", NOW - 30)  # untracked, no claim
    config = load_config({})
    verdict = check_git_command("git add -A", str(shared), me, config, now=NOW)
    assert verdict.reason.startswith(
        f"'git add -A' would commit {new}, possibly another live session's work: {new} changed since "
        f"session bbbbbbbb (project proj, worktree {shared}, branch main, pid {other.pid}, up 1m) started, and that "
        f"session (a session of kind other, not Claude Code) edits outside Claude Code's tools")
    assert check_git_command("git add -u", str(shared), me, config, now=NOW).decision is None  # untracked: not -u
    assert check_git_command("git commit -m x", str(shared), me, config, now=NOW).decision is None  # not staged
    os.utime(new, (NOW - 300, NOW - 300))  # changed before the other session started: not its work
    assert check_git_command("git add -A", str(shared), me, config, now=NOW).decision is None


def test_a_named_file_changed_through_bash_after_the_other_session_started_is_asked(shared, me, other):
    notes = bash_edit(shared / "notes.md", "theirs, by sed\n", NOW - 30)
    config = load_config({})
    verdict = check_git_command("git checkout -- notes.md", str(shared), me, config, now=NOW)
    assert verdict.reason.startswith(f"'git checkout -- notes.md' would discard or unstage changes to {notes}, "
                                     f"possibly another live session's work: {notes} changed since session bbbbbbbb")
    git(shared, "checkout", "--", "notes.md")  # back to the committed text: nothing to lose
    os.utime(notes, (NOW - 30, NOW - 30))
    assert check_git_command("git checkout -- notes.md", str(shared), me, config, now=NOW).decision is None


def test_an_amend_asks_when_head_was_committed_after_the_other_session_started(shared, me, other):
    config = load_config({})
    assert check_git_command("git commit --amend -m y", str(shared), me, config, now=NOW).decision is None
    git(shared, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "--allow-empty",
        "--date=@%d" % (NOW - 20), "-m", "their commit")
    env = dict(os.environ, GIT_COMMITTER_DATE="@%d +0000" % (NOW - 20))
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "--amend",
                    "--no-edit"], cwd=shared, env=env, check=True, capture_output=True)
    verdict = check_git_command("git commit --amend -m y", str(shared), me, config, now=NOW)
    assert verdict.reason.startswith(f"'git commit --amend -m y' rewrites the commit at HEAD of {shared}, "
                                     f"'their commit', made 20s ago, after another live session there started: "
                                     f"session bbbbbbbb")


def test_git_status_looks_at_the_commands_worktree_whatever_the_hooks_environment(shared, me, other, monkeypatch):
    notes = bash_edit(shared / "notes.md", "theirs\n", NOW - 30)
    claim(notes, other, tool="Edit", at=NOW - 30)
    monkeypatch.setenv("GIT_DIR", str(shared.parent / "elsewhere.git"))  # as inside a git hook
    monkeypatch.setenv("GIT_INDEX_FILE", str(shared.parent / "index"))
    verdict = check_git_command("git add -A", str(shared), me, load_config({}), now=NOW)
    assert verdict.reason.startswith(f"'git add -A' would commit {notes}, changed by another live session")


def test_when_git_cannot_tell_a_sweep_is_asked_as_before(shared, me, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    verdict = check_git_command("git add -A", str(shared), me, load_config({}), now=NOW)
    assert verdict.reason.startswith("'git add -A' stages or commits more than named files in ")


def test_no_git_process_for_commands_that_need_none(repo, me, other, monkeypatch):
    from sessionward import gitwork

    def no_git(*_args):
        raise AssertionError("ran git")

    monkeypatch.setattr(gitwork, "_git", no_git)
    config = load_config({})
    for command in ("git add -A", "git commit -m x", "git checkout -- README"):  # alone in the worktree
        assert check_git_command(command, str(repo), me, config, now=NOW).decision is None
    register(other, repo)
    for command in ("git checkout main", "git reset --hard", "git stash", "git pull --rebase"):  # whole tree
        assert check_git_command(command, str(repo), me, config, now=NOW).rule == "git"
    target = bash_edit(repo / "notes.md", "x\n", NOW - 30)
    claim(target, other, tool="Write", at=NOW - 30)  # a claim decides without git
    assert check_git_command("git checkout -- notes.md", str(repo), me, config, now=NOW).rule == "git"
    os.utime(repo / "README", (NOW - 300, NOW - 300))  # older than the other session: not its work
    assert check_git_command("git checkout -- README", str(repo), me, config, now=NOW).decision is None


def test_gh_pr_checkout_asks(repo, me, other):
    register(other, repo)
    verdict = check_git_command("gh pr checkout 7", str(repo), me, load_config({}), now=NOW)
    assert verdict.reason.startswith("'gh pr checkout 7' moves HEAD")


def test_my_own_session_does_not_count(repo, me):
    register(me, repo, session=MINE_SID)
    assert check_git_command("git checkout main", str(repo), me, load_config({}), now=NOW).decision is None


def test_a_dead_session_does_not_count(repo, me, other):
    register(other, repo)
    assert check_git_command("git stash", str(repo), me, load_config({}), now=NOW).rule == "git"
    kill(other)
    assert check_git_command("git stash", str(repo), me, load_config({}), now=NOW).decision is None


def test_many_sessions_name_three_and_count_the_rest(repo, me, owners):
    others = [owners() for _ in range(5)]
    for i, owner in enumerate(others):
        register(owner, repo, session=f"sess-{i}")
    verdict = check_git_command("git merge dev", str(repo), me, load_config({}), now=NOW)
    assert verdict.reason.count("session sess-") == 3 and " (and 2 more). " in verdict.reason
    assert len(verdict.others) == 5


def test_a_long_command_is_clipped_in_the_reason(repo, me, other):
    register(other, repo)
    command = "git checkout " + "x" * 300
    verdict = check_git_command(command, str(repo), me, load_config({}), now=NOW)
    quoted = verdict.reason.split("'")[1]
    assert len(quoted) == 120 and quoted.endswith("...") and quoted.startswith("git checkout xxx")


def test_the_first_risky_command_that_shares_a_worktree_is_named(repo, tmp_path, me, other):
    elsewhere = make_git_repo(tmp_path / "unrelated")
    register(other, repo)
    verdict = check_git_command(f"git -C {elsewhere} pull && git rebase main", str(repo), me, load_config({}), now=NOW)
    assert verdict.reason.startswith("'git rebase main' moves HEAD")


# -- describing ----------------------------------------------------------------------------------


def test_paths_under_home_are_shown_with_a_tilde(tmp_path, me, other):
    home_repo = make_git_repo(tmp_path / "home" / "code" / "proj")
    path = str(home_repo / "README")
    claim(path, other, at=NOW - 60)
    verdict = check_file_edit(path, me, load_config({}), now=NOW)
    assert verdict.reason.startswith(
        f"session bbbbbbbb (project proj, worktree ~/code/proj, branch main, pid {other.pid}) "
        f"edited ~/code/proj/README 1m ago and is still running."
    )


@pytest.mark.parametrize("seconds,text", [(0, "just now"), (0.99, "just now"), (1, "1s ago"), (59.9, "59s ago"),
                                          (60, "1m ago"), (3599, "59m ago"), (3600, "1h00m ago"),
                                          (3 * 3600 + 5 * 60, "3h05m ago"), (86400 * 2 + 5, "2d ago")])
def test_ages_in_reasons(target, me, other, seconds, text):
    claim(target, other, at=NOW - seconds)
    config = load_config({"SESSIONWARD_CLAIM_TTL_MINUTES": "10080"})
    assert f" edited {target} {text} and is still running" in check_file_edit(target, me, config, now=NOW).reason


def test_the_take_over_command_runs_where_sessionward_is_not_on_path(tmp_path, monkeypatch, repo):
    # An install whose bin directory is not on PATH (scripts/install says so): the bare name
    # would be "command not found" once the person said yes; the launcher's own path runs.
    from sessionward.guards import take_command

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "sessionward"
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    target = os.path.join(repo, "shared.txt")
    monkeypatch.setattr(sys, "argv", [str(launcher), "hook", "PreToolUse"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    command = take_command(target)
    assert command == f"{launcher} claim take {target}"
    assert parse_take_command(command, "/") == target  # and the guard still knows it when it runs
    monkeypatch.setenv("PATH", f"/usr/bin:{bin_dir}")
    assert take_command(target) == f"sessionward claim take {target}"
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/pytest"])  # not through a launcher
    assert take_command(target) == f"sessionward claim take {target}"


def test_every_vault_and_shared_note_is_guarded(tmp_path, vault, repo, me, other):
    """vaults = [...] and shared_paths = [...] (a resume file) guard like the single vault."""
    second, resume = tmp_path / "Work", tmp_path / "resume.md"
    second.mkdir()
    resume.write_text("next\n")
    config = load_config({"SESSIONWARD_VAULT": str(vault), "SESSIONWARD_VAULTS": str(second),
                          "SESSIONWARD_SHARED_PATHS": str(resume)})
    take_end(other, repo)
    for path in (vault / "daily.md", second / "todo.md", resume):
        assert check_file_edit(str(path), me, config, now=NOW).rule == "vault", path
    assert check_file_edit(str(tmp_path / "resume.md.bak"), me, config, now=NOW).decision is None


@pytest.fixture
def owner_of_kind(tmp_path):
    """Factory: a live process whose comm makes the session kind asked for (a `claude`, a
    `bash`, a `sleep`), resolved as an owner; all killed after."""
    from sessionward.identity import resolve_owner

    claude = tmp_path / "bin" / "claude"
    claude.parent.mkdir()
    claude.symlink_to("/bin/sleep")  # comm "claude": a Claude Code session's owner
    argv = {"claude-code": [str(claude), "600"], "shell": ["bash", "-c", "sleep 600; exit 0"], "other": ["sleep", "600"]}
    procs = []

    def make(kind: str):
        proc = subprocess.Popen(argv[kind])
        procs.append(proc)
        owner = resolve_owner(proc.pid)
        assert owner.kind == kind
        return owner

    yield make
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("kind, says", [
    ("claude-code", "and no session edited it through Claude Code's edit tools (a Bash edit: this session's or that one's)."),
    ("shell", "and that session (a shell session) edits outside Claude Code's tools (a shell, an editor), where "
              "sessionward sees no edit: the change may be its or this session's."),
])
def test_an_unclaimed_change_is_explained_as_true_for_the_other_sessions_kind(repo, me, owner_of_kind, kind, says):
    other = owner_of_kind(kind)
    register(other, repo)
    notes = bash_edit(repo / "notes.md", "theirs\n", NOW - 30)
    verdict = check_git_command("git checkout -- notes.md", str(repo), me, load_config({}), now=NOW)
    assert verdict.rule == "git"
    assert f"{notes} changed since session bbbbbbbb (project proj, worktree {repo}, branch main, pid {other.pid}, " \
           f"up 1m) started, {says}" in verdict.reason, verdict.reason


def test_a_whole_tree_ask_names_the_files_the_other_session_edited_there(repo, tmp_path, me, other, monkeypatch):
    from sessionward import gitwork

    register(other, repo)
    names = ["a.py", "b.py", "c.py", "d.py", "e.py"]
    for i, name in enumerate(names):  # e.py edited last
        claim(str(repo / name), other, tool="Edit", at=NOW - 60 + i)
    claim(str(repo / "read-only.md"), other, tool="Read", at=NOW - 10)  # read, not edited: not at stake
    claim(str(repo / "mine.py"), me, tool="Write", at=NOW - 5, session=MINE_SID)  # this session's own
    elsewhere = make_git_repo(tmp_path / "elsewhere")
    claim(str(elsewhere / "x.py"), other, tool="Edit", at=NOW - 1)  # another worktree

    def no_git(*_args):
        raise AssertionError("ran git")

    monkeypatch.setattr(gitwork, "_git", no_git)  # the names come from the claims alone
    verdict = check_git_command("git checkout main", str(repo), me, load_config({}), now=NOW)
    assert verdict.rule == "git"
    assert (f"where another session also works: {who(other, repo)[:-1]}, up 1m). It edited e.py, d.py, c.py and 2 "
            f"more there through Claude Code. Its uncommitted work could be overwritten") in verdict.reason, verdict.reason
    end_claims(other, NOW)  # ended claims are no longer its work in progress
    verdict = check_git_command("git checkout main", str(repo), me, load_config({}), now=NOW)
    assert "through Claude Code" not in verdict.reason
