"""The hooks fed the real payloads of Claude Code 2.1.331 and 2.1.112, through a stand-in Claude
process (see conftest.FakeClaude), answering exactly what the contract says.

Every test runs for both versions (the `version` fixture): 2.1.331 hands the hook CLAUDE_PID
and CLAUDE_CODE_SESSION_ID, 2.1.112 neither (the owner is the `claude` ancestor).
Answers are compared whole, as JSON; only durations ("up 0s", "just now", "held for 0s") are
normalised, since they depend on the machine's speed.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from sessionward.locks import NamedLock
from sessionward.registry import HEARTBEAT_REFRESH_S
from sessionward.store import open_store

from helpers import SESSIONWARD, cli_json, git, make_git_repo, run_cli

pytestmark = pytest.mark.usefixtures("store_backend")  # the hooks as real processes, on every store backend

HEADER = "sessionward: other Claude Code sessions are working near this one right now."
STRONG_TAIL = (
    ". Edits to the same files and git commands that switch branches, stash, reset or rebase affect both "
    "sessions; sessionward asks before such git commands and before editing a file the other session "
    "edited recently."
)
NEARBY_TAIL = ". Shared notes, memory and the resume file are saved under the end lock: save them with /end."
TWIN_TAIL = ". Both append to one transcript; close one of them."
ASK_TAIL = ". Editing it here can overwrite that session's work. Allow only if you know the edits do not collide."


def deny_tail(path: str) -> str:
    """The default (deny) policy's words after the facts: what to do, with the take-over command."""
    return (". Editing it here could overwrite that work, so sessionward stopped this edit. Tell the user which "
            "session is working on the file. If they want this session to edit it anyway, run "
            f"`{TAKE} {path}` (the user confirms it), then make the edit again.")


# The hooks run through the launcher: the reason names the bare command only when PATH finds one.
TAKE = ("sessionward" if shutil.which("sessionward") else SESSIONWARD) + " claim take"
WARN_TAIL = ": editing it here anyway (edit policy: warn)."
STALE_TAIL = (
    ". Editing now would overwrite that change unseen. Read the file again, then make the edit on its "
    "current content."
)
GIT_TAIL = (
    ". Its uncommitted work could be overwritten or switched away. Make sure it has committed or stashed, "
    "or work in a separate worktree (git worktree add ../<dir> -b <branch>)."
)


# -- reading answers -------------------------------------------------------------------------


def _normalise(text: str) -> str:
    text = re.sub(r"\bup \d+(s|m|h\d\dm|d)(?=[,)])", "up <T>", text)
    text = re.sub(r"\b(just now|\d+(s|m|h\d\dm|d) ago)", "<AGO>", text)
    text = re.sub(r", fence \d+, lease [\d.]+ s left unless renewed\b", "", text)  # the shared store's lease
    return re.sub(r"\bheld for \d+(s|m|h\d\dm|d)\b", "held for <T>", text)


def _normalised(value):
    if isinstance(value, str):
        return _normalise(value)
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    return value


def silent(ran) -> None:
    """Exit 0 and nothing at all on stdout or stderr."""
    assert (ran.rc, ran.stdout, ran.stderr, ran.timed_out) == (0, "", "", False), ran


def answered(ran) -> dict:
    """Exit 0, nothing on stderr, one JSON object on one stdout line; returned normalised."""
    assert (ran.rc, ran.stderr, ran.timed_out) == (0, "", False), ran
    assert ran.stdout.startswith("{") and ran.stdout.endswith("}\n") and ran.stdout.count("\n") == 1, ran
    return _normalised(json.loads(ran.stdout))


def failed_open(ran) -> str:
    """Exit 1 with one line on stderr, no traceback, nothing on stdout; returns the line."""
    assert (ran.rc, ran.stdout, ran.timed_out) == (1, "", False), ran
    assert ran.stderr.endswith("\n") and ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr, ran
    return ran.stderr


def registry(state_dir) -> dict:
    """The registry as it is stored (read without any sweeping): the document on disk, or
    the shared store's records."""
    if os.environ["SESSIONWARD_STORE"] != "local":
        return open_store().load_sessions()
    doc = json.loads((state_dir / "obsidian_sessions.json").read_text())
    assert doc["schema"] == "sessionward/1"
    return doc["sessions"]


def end_holder() -> int | None:
    """The PID holding the end lock (end.lock's content on the local store), None when free."""
    state = NamedLock("end").status()
    return state.pid if state.present else None


# -- what the answers say of another session ----------------------------------------------------


def label(session) -> str:
    return session.session_id[:8]


def described(session, worktree=None, branch="main") -> str:
    """registry.describe_session for a registered session."""
    return (f"session {label(session)} (project proj, worktree {worktree or session.cwd}, branch {branch}, "
            f"pid {session.pid}, up <T>)")


def claimant(session, worktree=None, branch="main") -> str:
    """guards.describe_claimant for a claim of `session`."""
    return f"session {label(session)} (project proj, worktree {worktree or session.cwd}, branch {branch}, pid {session.pid})"


def named(session, branch="main", worktree=None) -> str:
    """session_start._named for one registered session: as the user's line names it."""
    where = f"{worktree}, " if worktree else ""
    return f"{label(session)} ({where}branch {branch}, started <AGO>)"


def pre_tool_answer(decision: str, reason: str) -> dict:
    return {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": decision,
                                   "permissionDecisionReason": "sessionward: " + reason}}


def context_answer(event: str, system: str, *lines: str) -> dict:
    return {"systemMessage": "sessionward: " + system,
            "hookSpecificOutput": {"hookEventName": event, "additionalContext": "\n".join((HEADER,) + lines)}}


@pytest.fixture
def worktree2(project, rc_root) -> str:
    """A second worktree of proj (branch feature)."""
    path = os.path.join(rc_root, "wt2")
    git(project, "worktree", "add", "-q", path, "-b", "feature")
    return path


# -- alone: the captured runs, replayed -------------------------------------------------------


@pytest.mark.parametrize("scenario", ["basic", "deny-json", "deny-exit2"])
def test_alone_every_captured_payload_is_answered_with_nothing(fake_claude, payloads, version, scenario, project, state_dir):
    claude = fake_claude(version)
    events = []
    for event, payload in payloads.sequence(version, scenario):
        if event == "BashTool":  # a Bash tool command's own stdin, not a hook (see below)
            continue
        if event == "PostToolUse" and payload["tool_name"] == "Write":
            with open(payload["tool_input"]["file_path"], "w") as f:  # what the Write did
                f.write(payload["tool_input"]["content"])
        assert payload["cwd"] == project
        silent(claude.hook(event, payload))
        events.append(event)
        if event == "SessionStart":
            (record,) = registry(state_dir).values()
            assert record["id"] == payload["session_id"] and record["owner"]["pid"] == claude.pid
            assert record["owner"]["comm"] == "claude" and record["kind"] == "claude-code"
            assert (record["project"], record["worktree"], record["branch"]) == ("proj", project, "main")
    assert events[0] == "SessionStart" and events[-1] == "SessionEnd"
    assert registry(state_dir) == {}


def test_bash_tool_payload_empty_stdin_fails_open_with_one_line(fake_claude, payloads, version, project):
    claude = fake_claude(version)
    (bash_tool,) = [p for e, p in payloads.sequence(version, "basic") if e == "BashTool"]
    assert bash_tool == ""
    line = failed_open(claude.hook("BashTool", bash_tool.encode(), cwd=project))
    assert line == (
        "sessionward hook BashTool: unknown event 'BashTool' "
        "(known: SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, PermissionRequest, Notification, Stop, SessionEnd)\n"
    )
    for event in ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"):
        line = failed_open(claude.hook(event, bash_tool.encode(), cwd=project))
        assert line == f"sessionward hook {event}: stdin is empty: expected the event's JSON\n"


# -- SessionStart: who else is here -------------------------------------------------------------


def test_two_sessions_in_one_worktree(sessions, project, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    assert answered(b.start()) == context_answer(
        "SessionStart", f"1 other session in this worktree: {named(a)}",
        f"In this same worktree ({project}): {described(a)}{STRONG_TAIL}",
    )
    # A's turn: a heartbeat, nothing said (A was told nothing at its start, and is not re-told).
    silent(a.prompt())
    silent(b.prompt())
    assert sorted(r["owner"]["pid"] for r in registry(state_dir).values()) == sorted([a.pid, b.pid])


def test_a_session_start_names_the_lock_the_other_session_holds_and_none_once_freed(sessions, project):
    # On the shared store whether a lock is held comes with the registry's read (one script),
    # not from a call of its own (tests/hooks/test_hook_cost.py counts them): it must still
    # be told, and told as it is at that read.
    a, b, c = sessions(0), sessions(1), sessions(2)
    silent(a.start())
    run_cli("lock", "acquire", "end", "--pid", str(a.pid), check=True)
    assert answered(b.start()) == context_answer(
        "SessionStart", f"1 other session in this worktree: {named(a)}",
        f"In this same worktree ({project}): {described(a)[:-1]}, holds end){STRONG_TAIL}",
    )
    run_cli("lock", "release", "end", "--pid", str(a.pid), check=True)
    told = answered(c.start())["hookSpecificOutput"]["additionalContext"]
    assert described(a) in told and "holds" not in told


def test_same_project_other_worktree(sessions, project, worktree2):
    a, b = sessions(0), sessions(1, cwd=worktree2)
    silent(a.start())
    assert answered(b.start()) == context_answer(
        "SessionStart", f"1 other session on project proj in other worktrees: {named(a, worktree=project)}",
        f"On the same project (proj) in other worktrees: {described(a)}{NEARBY_TAIL}",
    )
    silent(a.prompt())


def test_same_worktree_and_other_worktree_together(sessions, project, worktree2):
    a, b, c = sessions(0), sessions(1, cwd=worktree2), sessions(2)
    silent(a.start())
    answered(b.start())
    assert answered(c.start()) == context_answer(
        "SessionStart", f"1 other session in this worktree: {named(a)}; "
        f"1 other session on project proj in other worktrees: {named(b, 'feature', worktree2)}",
        f"In this same worktree ({project}): {described(a)}{STRONG_TAIL}",
        f"On the same project (proj) in other worktrees: {described(b, branch='feature')}{NEARBY_TAIL}",
    )


def test_many_sessions_in_the_worktree_are_named_up_to_three_and_counted(sessions, project):
    others = [sessions(i, session_id=f"00000000-0000-4000-8000-00000000000{i}") for i in range(5)]
    for other in others:
        other.start()
    me = sessions(5, session_id="00000000-0000-4000-8000-000000000005")
    answer = answered(me.start())
    context = answer["hookSpecificOutput"]["additionalContext"]
    named = [o for o in others if described(o) in context]
    assert len(named) == 3, context
    assert f"{described(named[-1])} (and 2 more){STRONG_TAIL}" in context
    # Their ids share the first 8 characters: the user's line tells them apart by longer ones.
    shown = ", ".join(f"{o.session_id} (branch main, started <AGO>)" for o in others[:3])
    assert answer["systemMessage"] == f"sessionward: 5 other sessions in this worktree: {shown} and 2 more"


def test_another_project_is_not_mentioned(sessions, rc_root):
    other = str(make_git_repo(pathlib.Path(rc_root) / "other"))
    a, b = sessions(0), sessions(1, cwd=other)
    silent(a.start())
    silent(b.start())
    silent(b.prompt())


def test_user_prompt_submit_registers_an_unknown_session_and_tells(sessions, project, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    # B never ran SessionStart (sessionward installed mid-session): its first prompt registers it.
    assert answered(b.prompt()) == context_answer(
        "UserPromptSubmit", f"1 other session in this worktree: {named(a)}",
        f"In this same worktree ({project}): {described(a)}{STRONG_TAIL}",
    )
    assert b.session_id in registry(state_dir)
    silent(b.prompt())  # registered now: a heartbeat only


def test_stop_of_an_unknown_session_leaves_it_to_the_next_prompt(sessions, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    silent(b.stop())
    assert list(registry(state_dir)) == [a.session_id]
    answered(b.prompt())  # its person typed: registered, and told of A
    assert registry(state_dir)[b.session_id]["owner"]["pid"] == b.pid


def test_a_session_ended_by_end_stays_ended_until_its_person_types_again(sessions, project, state_dir):
    """/end's last step unregisters the session; the Stop hook of that same turn must not
    register it again (issue 11), while the Claude process, and its TUI, stay open."""
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    silent(b.prompt())
    silent(b.prompt())  # B's heartbeat has nothing to do for the next seconds (heartbeat_memo)...
    ended = b.claude.run(f"{SESSIONWARD} unregister", cwd=project, session_id=b.session_id)  # as /end runs it
    assert ended.rc == 0 and ended.stdout.startswith(f"unregistered session {label(b)} (project proj"), ended
    silent(b.stop())
    assert list(registry(state_dir)) == [a.session_id]
    silent(a.prompt())  # others' hooks do not bring it back either
    silent(a.stop())
    assert list(registry(state_dir)) == [a.session_id]
    # ...but the registry changed since: its person typing again registers it, within those seconds
    assert answered(b.prompt())["systemMessage"] == f"sessionward: 1 other session in this worktree: {named(a)}"
    assert sorted(registry(state_dir)) == sorted([a.session_id, b.session_id])


def test_start_after_end_names_the_session_by_its_claude_session_id(sessions, project, state_dir):
    """/end, then /start: /start's `!` line registers the session before the prompt's
    UserPromptSubmit runs, from a command that knows no session id where Claude Code gives
    none (2.1.112: no CLAUDE_CODE_SESSION_ID), so the record got a made-up id (s-...) that no
    hook message uses. The prompt's hook keys it by the session id, silently (/start told)."""
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    assert b.claude.run(f"{SESSIONWARD} unregister", cwd=project, session_id=b.session_id).rc == 0  # /end
    started = b.claude.run(f"{SESSIONWARD} register --exit-zero", cwd=project, session_id=b.session_id)  # /start
    assert started.rc == 0, started
    silent(b.prompt())
    assert sorted(registry(state_dir)) == sorted([a.session_id, b.session_id])
    record = registry(state_dir)[b.session_id]
    assert (record["session_id"], record["owner"]["pid"]) == (b.session_id, b.pid)


@pytest.mark.parametrize("with_session_end", [True, False], ids=["end-then-start", "start-only"])
def test_clear_rekeys_the_record_of_the_same_process(sessions, payloads, version, state_dir, with_session_end):
    a = sessions(0)
    silent(a.start())
    first = registry(state_dir)[a.session_id]
    if with_session_end:
        silent(a.end(reason="clear"))
        assert registry(state_dir) == {}
    a.session_id = payloads.session_ids(version)[2]  # /clear: a new id, the same process
    silent(a.start(source="clear"))
    (record,) = registry(state_dir).values()
    assert (record["id"], record["session_id"], record["owner"]["pid"]) == (a.session_id, a.session_id, a.pid)
    if not with_session_end:
        assert record["started_at"] == first["started_at"]  # the same process all along
    silent(a.prompt())
    assert list(registry(state_dir)) == [a.session_id]


def test_clear_beside_another_session_rekeys_and_tells(sessions, payloads, version, project, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    silent(a.end(reason="clear"))
    a.session_id = payloads.session_ids(version)[2]
    assert answered(a.start(source="clear")) == context_answer(
        "SessionStart", f"1 other session in this worktree: {named(b)}",
        f"In this same worktree ({project}): {described(b)}{STRONG_TAIL}",
    )
    assert sorted(registry(state_dir)) == sorted([a.session_id, b.session_id])


def test_same_session_resumed_in_two_processes_is_a_twin(sessions, project, state_dir):
    a = sessions(0)
    b = sessions(1, session_id=a.session_id)  # the same conversation, resumed in another terminal
    silent(a.start())
    assert answered(b.start(source="resume")) == {
        "systemMessage": f"sessionward: this session is also open in pid {a.pid}",
        "hookSpecificOutput": {
            "hookEventName": "SessionStart",
            "additionalContext": HEADER + "\n" + f"This same session ({label(a)}) is also open in another process: "
            f"{described(a)}{TWIN_TAIL}",
        },
    }
    records = registry(state_dir)
    assert sorted(records) == sorted([a.session_id, f"{a.session_id}.{b.pid}"])
    assert records[f"{a.session_id}.{b.pid}"]["owner"]["pid"] == b.pid
    # B's end removes B's record only.
    silent(b.end())
    assert list(registry(state_dir)) == [a.session_id]


def test_the_branch_named_is_the_worktrees_branch_now(sessions, project, state_dir):
    """A checkout in a shared worktree moves every session there: the one that registered on
    main is named with the branch its worktree has now (issue 11, item 4)."""
    a, b = sessions(0), sessions(1)
    silent(a.start())
    git(project, "checkout", "-q", "-b", "topic")  # done by A, or by anyone, in the shared worktree
    assert answered(b.start()) == context_answer(
        "SessionStart", f"1 other session in this worktree: {named(a, 'topic')}",
        f"In this same worktree ({project}): {described(a, branch='topic')}{STRONG_TAIL}",
    )
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "from A\n"))
    git(project, "checkout", "-q", "-b", "later")
    reason = f"{claimant(a, branch='later')} edited {path} <AGO> and is still running"
    assert answered(b.pre_write(path)) == pre_tool_answer("deny", reason + deny_tail(path))


def test_a_bad_configuration_is_told_at_session_start_and_edits_are_guarded_on_the_defaults(
        sessions, project):
    """A broken sessionward.toml: SessionStart says so, once, in the line the person sees;
    every edit after is guarded on the defaults, without a hook error (issue 11, item 5)."""
    config = pathlib.Path(os.environ["HOME"]) / ".claude" / "sessionward.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('edit_policy = "sometimes"\n')
    a, b = sessions(0), sessions(1)
    problem = (f"sessionward: configuration: {config}: edit_policy: expected one of ask, deny, warn, not "
               "'sometimes'; the file is ignored until it is fixed (defaults meanwhile)")
    assert answered(a.start()) == {"systemMessage": problem}
    answer = answered(b.start())
    assert answer["systemMessage"] == f"sessionward: 1 other session in this worktree: {named(a)}\n{problem}"
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "from A\n"))
    reason = f"{claimant(a)} edited {path} <AGO> and is still running"
    assert answered(b.pre_write(path)) == pre_tool_answer("deny", reason + deny_tail(path))  # the default policy
    silent(b.prompt())
    silent(b.stop())



def test_session_start_loads_the_configuration_only_when_there_may_be_one(sessions):
    """With no sessionward.toml and no variable the configuration reads (the usual start)
    there is nothing to tell, and SessionStart does not import sessionward.config at all, nor
    (on the shared store) the watchers' lease scripts: imports are most of a hook's cost. A
    variable config reads brings it back, and its problem is told."""
    a = sessions(0)

    def start(**env):
        ran = a.claude.run(f"{sys.executable} -X importtime {SESSIONWARD} hook SessionStart",
                           json.dumps(a.payload("01-SessionStart")), env=env, cwd=a.cwd, session_id=a.session_id)
        assert ran.rc == 0, ran
        return ran.stdout, set(re.findall(r"\| +([\w.]+)$", ran.stderr, re.M))

    answer, loaded = start()
    assert "sessionward.registry" in loaded  # it registered: the importtime lines were read
    assert not {"sessionward.config", "sessionward.store.redis_lives"} & loaded
    assert answer == ""
    answer, loaded = start(SESSIONWARD_EDIT_POLICY="sometimes")
    assert "sessionward.config" in loaded
    assert json.loads(answer)["systemMessage"] == ("sessionward: configuration: SESSIONWARD_EDIT_POLICY: expected one "
                                                   "of ask, deny, warn, not 'sometimes'; ignored")


def test_every_variable_the_configuration_reads_brings_it_to_session_start():
    """hooks.may_name_a_setting leaves out the variables config does not read; none of those
    it reads may be left out (SESSIONWARD_STORE aside: a bad one refuses the store, and the
    hook, before SessionStart's answer)."""
    from sessionward import config
    from sessionward.hooks import may_name_a_setting

    read = set(config._ENV.values()) - {"SESSIONWARD_STORE"}
    assert read and all(may_name_a_setting(name) for name in read)
    assert not any(may_name_a_setting(name) for name in ("SESSIONWARD_HOME", "SESSIONWARD_TEST_CLAUDE", "PATH"))

# -- PreToolUse on files ----------------------------------------------------------------------


@pytest.mark.parametrize("replayed", [True, False])
def test_an_edit_made_while_the_shared_store_did_not_answer_is_claimed_once_it_answers(sessions, project, store_backend,
                                                                                      request, replayed):
    """PostToolUse fails open when the shared store does not answer (the edit goes on), and
    keeps its claim on this host; the next hook of any session here that reaches the store
    records it first, so the other session is stopped from overwriting that edit as if the
    store had answered all along. replayed=False is the negative control: the kept claim
    removed, the overwrite goes through unasked."""
    if store_backend != "redis":
        pytest.skip("about a shared store that does not answer")
    server = request.getfixturevalue("shared_redis")
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "from A\n"))
    server.pause()
    try:  # as Claude Code makes a model do: read the file, then write it, all in one outage
        lines = [failed_open(b.read(path)), failed_open(b.write(path, "from B\n"))]
    finally:
        server.resume()
    assert all(line.startswith("sessionward hook PostToolUse: not guarding: shared store ") for line in lines), lines
    kept = os.path.join(os.environ["SESSIONWARD_HOME"], "sessionward", "claims-kept")
    with open(kept) as f:
        kept_claims = [json.loads(line)["claim"] for line in f]
    assert [c["tool"] for c in kept_claims] == ["Read", "Write"]  # each kept, the store down
    assert all(c["owner"]["life"] for c in kept_claims)  # as recorded ones: its watcher vouches for B
    if not replayed:
        os.truncate(kept, 0)
        silent(a.pre_write(path))
        return
    denied = answered(a.pre_write(path))["hookSpecificOutput"]
    assert denied["permissionDecision"] == "deny" and f"{claimant(b)} edited it <AGO>" in denied["permissionDecisionReason"], \
        denied  # "changed on disk since this session last wrote it": B's write, known now
    assert os.path.getsize(kept) == 0  # recorded once: emptied, never removed


def test_write_after_another_sessions_write_is_denied_by_default(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "shared.txt")
    silent(a.pre_write(path))
    silent(a.write(path, "from A\n"))
    reason = f"{claimant(a)} edited {path} <AGO> and is still running"
    assert answered(b.pre_write(path)) == pre_tool_answer("deny", reason + deny_tail(path))
    assert answered(b.pre_edit(path)) == pre_tool_answer("deny", reason + deny_tail(path))
    # A's own claim never stands in A's way.
    silent(a.pre_write(path))


@pytest.mark.parametrize("policy", ["ask", "deny", "warn"])
def test_edit_policy(sessions, project, policy):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "from A\n"))
    facts = f"{claimant(a)} edited {path} <AGO> and is still running"
    got = answered(b.pre_write(path, SESSIONWARD_EDIT_POLICY=policy))
    if policy == "ask":
        assert got == pre_tool_answer("ask", facts + ASK_TAIL)
    elif policy == "deny":
        assert got == pre_tool_answer("deny", facts + deny_tail(path))
    else:
        assert got == {"systemMessage": f"sessionward: {facts}{WARN_TAIL}"}  # no hookSpecificOutput: it goes on


def test_edit_policy_from_the_config_file(sessions, project, tmp_path):
    (tmp_path / "home" / ".claude").mkdir()
    (tmp_path / "home" / ".claude" / "sessionward.toml").write_text('edit_policy = "ask"\n')
    a, b = sessions(0), sessions(1)
    silent(a.start())
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "from A\n"))
    assert answered(b.pre_write(path))["hookSpecificOutput"]["permissionDecision"] == "ask"
    # the environment wins over the file
    assert answered(b.pre_write(path, SESSIONWARD_EDIT_POLICY="deny"))["hookSpecificOutput"]["permissionDecision"] == "deny"


def test_take_over_is_asked_naming_the_other_session_then_lets_the_edit_through(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "from A\n"))
    assert answered(b.pre_edit(path))["hookSpecificOutput"]["permissionDecision"] == "deny"
    command = "sessionward claim take shared.txt"
    assert answered(b.pre_bash(command)) == pre_tool_answer(
        "ask", f"take over {path} from {claimant(a)}, which edited it <AGO> and is still running. Yes: this "
               f"session's edits of it go ahead and can overwrite that session's work (its next edit is stopped "
               f"in turn). No: nothing changes.")
    took = b.claude.run(f"{SESSIONWARD} claim take shared.txt", cwd=project, session_id=b.session_id)
    assert took.rc == 0, took
    assert took.stdout == f"took over {path} from {claimant(a)}: this session's edits of it go ahead\n", took
    silent(b.pre_edit(path))  # B's edit goes ahead now, and its next ones
    silent(b.write(path, "from B\n"))
    silent(b.pre_edit(path))
    silent(b.pre_bash(command))  # nothing stands any more: no question
    assert answered(a.pre_edit(path))["hookSpecificOutput"]["permissionDecision"] == "deny"  # A is stopped now


def test_drafts_are_no_claims_so_two_sessions_may_reuse_a_draft_name(sessions, project):
    """/end's drafts (sessionward.drafts) are one session's private scratch, removed once
    handed over: B's draft of the name A used is no collision, and the PreToolUse hook makes
    the drafts directory private before the Write (the Write tool would create it 0755)."""
    from sessionward import paths

    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    draft = os.path.join(paths.drafts_dir(), "daily-1.md")
    silent(a.pre_write(draft))
    assert os.stat(os.path.dirname(draft)).st_mode & 0o777 == 0o700
    silent(a.write(draft, "from A\n"))
    os.unlink(draft)  # handed over to `note append --text-file`
    silent(b.pre_write(draft))
    silent(b.write(draft, "from B\n"))
    silent(a.pre_write(draft))


def test_a_read_by_another_session_does_not_block(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "README")
    silent(a.read(path))
    silent(b.pre_write(path))


def test_an_old_claim_beyond_the_ttl_does_not_block(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "from A\n"))
    silent(b.pre_write(path, SESSIONWARD_CLAIM_TTL_MINUTES="0"))


def test_changed_on_disk_by_another_session_denies(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "README")
    silent(b.read(path))
    silent(a.pre_edit(path))  # A never saw B's read as a claim on the file
    silent(a.write(path, "A changed it\n"))
    stale = (f"{path} changed on disk since this session last read it (<AGO>): {claimant(a)} edited it <AGO>"
             f"{STALE_TAIL}")
    # Refused whatever the edit policy, and even when A's edit no longer counts as recent.
    for env in ({}, {"SESSIONWARD_EDIT_POLICY": "warn"}, {"SESSIONWARD_CLAIM_TTL_MINUTES": "0"}):
        assert answered(b.pre_edit(path, **env)) == pre_tool_answer("deny", stale), env
    assert answered(b.pre_write(path)) == pre_tool_answer("deny", stale)


def test_changed_on_disk_after_this_sessions_write_denies_naming_the_writer(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    path = os.path.join(project, "notes.txt")
    silent(b.write(path, "B wrote\n"))
    silent(a.write(path, "A wrote over it\n"))
    assert answered(b.pre_edit(path, SESSIONWARD_CLAIM_TTL_MINUTES="0")) == pre_tool_answer(
        "deny", f"{path} changed on disk since this session last wrote it (<AGO>): {claimant(a)} edited it <AGO>{STALE_TAIL}"
    )


def test_changed_on_disk_but_by_no_session_is_not_denied(sessions, project):
    b = sessions(1)
    silent(b.start())
    path = os.path.join(project, "README")
    silent(b.read(path))
    with open(path, "a") as f:  # an editor, a formatter: no claim
        f.write("changed by hand\n")
    silent(b.pre_edit(path))


def test_changed_on_disk_by_hand_after_another_sessions_earlier_write_is_not_stale(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    path = os.path.join(project, "README")
    silent(a.write(path, "A wrote first\n"))
    silent(b.read(path))  # B saw A's write
    with open(path, "a") as f:
        f.write("changed by hand\n")
    # Not the stale deny (A wrote before B read): only the policy for A's recent edit.
    assert answered(b.pre_edit(path)) == pre_tool_answer(
        "deny", f"{claimant(a)} edited {path} <AGO> and is still running{deny_tail(path)}"
    )
    silent(b.pre_edit(path, SESSIONWARD_CLAIM_TTL_MINUTES="0"))


def test_rereading_after_another_sessions_write_lifts_the_deny(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    path = os.path.join(project, "README")
    silent(b.read(path))
    silent(a.write(path, "A changed it\n"))
    assert answered(b.pre_edit(path))["hookSpecificOutput"]["permissionDecision"] == "deny"
    silent(b.read(path))  # B read the file again
    assert answered(b.pre_edit(path)) == pre_tool_answer(
        "deny", f"{claimant(a)} edited {path} <AGO> and is still running{deny_tail(path)}"
    )
    silent(b.pre_edit(path, SESSIONWARD_CLAIM_TTL_MINUTES="0"))


# -- the vault and the end lock ----------------------------------------------------------------


@pytest.fixture
def vault(rc_root) -> str:
    path = os.path.join(rc_root, "vault")
    os.mkdir(path)
    return path


def test_vault_edit_denied_while_another_session_holds_end(sessions, project, vault, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    b.env["SESSIONWARD_VAULT"] = vault
    note = os.path.join(vault, "daily.md")
    silent(b.pre_write(note))  # nobody holds end
    run_cli("lock", "acquire", "end", "--pid", str(a.pid), check=True)
    assert end_holder() == a.pid
    assert answered(b.pre_write(note)) == pre_tool_answer(
        "deny",
        f"{note} is in the notes vault, and another session is saving there under the end lock: "
        f"pid {a.pid} (claude), session {label(a)}, project proj, worktree {project} (main), held for <T>. "
        "Wait until its /end save "
        f"finishes, then retry ('sessionward lock status' shows the holder).",
    )
    assert answered(b.pre_edit(note))["hookSpecificOutput"]["permissionDecision"] == "deny"
    silent(b.pre_write(os.path.join(project, "outside-the-vault.txt")))
    # A itself is not refused its own vault.
    silent(a.pre_write(note, SESSIONWARD_VAULT=vault))


def test_vault_edit_allowed_while_this_session_holds_end(sessions, project, vault, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    took = b.claude.run(f"{SESSIONWARD} lock acquire end", cwd=project, session_id=b.session_id)  # /end's first step
    assert took.rc == 0, took
    assert end_holder() == b.pid
    note = os.path.join(vault, "daily.md")
    silent(b.pre_write(note, SESSIONWARD_VAULT=vault))
    denied = answered(a.pre_write(note, SESSIONWARD_VAULT=vault))["hookSpecificOutput"]
    assert denied["permissionDecision"] == "deny" and f"pid {b.pid} (claude)" in denied["permissionDecisionReason"]


def test_vault_edit_allowed_when_the_holder_of_end_died(sessions, project, vault):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    run_cli("lock", "acquire", "end", "--pid", str(a.pid), check=True)
    a.claude.kill()
    silent(b.pre_write(os.path.join(vault, "daily.md"), SESSIONWARD_VAULT=vault))


# -- Bash: the git guard ----------------------------------------------------------------------


def test_bash_git_checkout_asks_naming_the_other_session(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    for command, shown in [
        ("git checkout -b topic", "git checkout -b topic"),
        ("git stash", "git stash"),
        ("cd sub && cd .. && git reset --hard HEAD", "git reset --hard HEAD"),
        ("gh pr checkout 7", "gh pr checkout 7"),  # no "git" in it: the hook still reads it
    ]:
        assert answered(b.pre_bash(command)) == pre_tool_answer(
            "ask",
            f"'{shown}' moves HEAD or rewrites the index or files of {project}, where another session also "
            f"works: {described(a)}{GIT_TAIL}",
        ), command
    for harmless in ("ls", "git status", "git log --oneline -3", "git stash list", "echo git checkout"):
        silent(b.pre_bash(harmless))
    silent(b.pre_bash("git checkout -b topic", SESSIONWARD_GIT_GUARD="0"))


def test_bash_sweep_asks_only_when_it_would_take_the_other_sessions_files(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    mine = os.path.join(project, "mine.py")
    silent(b.write(mine))  # B's own edit, claimed by B
    for command in ("git add -A", "git add . && git commit -m x", "git commit -am x"):
        silent(b.pre_bash(command))  # git status: only B's file
    theirs = os.path.join(project, "theirs.py")
    silent(a.write(theirs))
    reason = answered(b.pre_bash("git add -A && git commit -m x"))["hookSpecificOutput"]["permissionDecisionReason"]
    assert reason.startswith(f"sessionward: 'git add -A' would commit {theirs}, changed by another live session: session "
                             f"{label(a)} (project proj, worktree {project}, branch main, pid {a.pid}) edited {theirs} "), reason
    silent(b.pre_bash("git add mine.py && git commit -m x mine.py"))


def test_bash_alone_in_the_worktree_is_never_asked(sessions, project):
    a = sessions(0)
    silent(a.start())
    for command in ("ls", "git checkout -b topic", "git reset --hard"):
        silent(a.pre_bash(command))


def test_git_dash_c_asks_only_when_a_session_works_in_that_worktree(sessions, project, worktree2, rc_root):
    third = os.path.join(rc_root, "wt3")
    git(project, "worktree", "add", "-q", third, "-b", "third")
    a, b = sessions(0), sessions(1, cwd=worktree2)
    silent(a.start())
    answered(b.start())
    silent(b.pre_bash("git checkout -b mine"))  # B is alone in its worktree
    expected = pre_tool_answer(
        "ask",
        f"'git checkout main' moves HEAD or rewrites the index or files of {project}, where another session "
        f"also works: {described(a)}{GIT_TAIL}",
    )
    assert answered(b.pre_bash(f"git -C {project} checkout main")) == expected
    assert answered(b.pre_bash(f"cd {project} && git checkout main")) == expected
    silent(b.pre_bash(f"git -C {third} checkout main"))  # nobody works in wt3
    silent(b.pre_bash(f"git -C {project} status"))


# -- Stop and SessionEnd -------------------------------------------------------------------------


def test_stop_releases_an_end_lock_held_by_the_sessions_own_process(sessions, project, state_dir):
    b = sessions(1)
    silent(b.start())
    took = b.claude.run(f"{SESSIONWARD} lock acquire end", cwd=project, session_id=b.session_id)
    assert took.rc == 0, took
    session = f", session {label(b)}"  # CLAUDE_CODE_SESSION_ID (2.1.331), else its registered session's
    assert answered(b.stop()) == {
        "systemMessage": "sessionward: released the end lock this session still held at the end of its turn "
        f"(pid {b.pid} (claude){session}, project proj, worktree {project} (main), held for <T>)"
    }
    assert end_holder() is None
    silent(b.stop())  # nothing left to release


def test_stop_names_the_worktree_under_home_with_tilde_like_every_other_message(sessions, project, rc_root, monkeypatch):
    """The person reads Stop's line in the TUI beside SessionStart's and PreToolUse's, which show
    the home directory as ~: so does Stop's."""
    monkeypatch.setenv("HOME", rc_root)  # the project is ~/proj for the hooks the sessions run
    b = sessions(1)
    silent(b.start())
    assert b.claude.run(f"{SESSIONWARD} lock acquire end", cwd=project, session_id=b.session_id).rc == 0
    message = answered(b.stop())["systemMessage"]
    assert ", worktree ~/proj (main), held for " in message, message


def test_stop_leaves_an_end_lock_held_by_another_process(sessions, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    run_cli("lock", "acquire", "end", "--pid", str(a.pid), check=True)
    silent(b.stop())
    assert end_holder() == a.pid
    # Nor does a helper process of B's session count as B's own (a `lock run` still saving).
    helper = subprocess.Popen(["sleep", "60"])
    try:
        run_cli("lock", "release", "end", "--pid", str(a.pid), check=True)
        run_cli("lock", "acquire", "end", "--pid", str(helper.pid), check=True)
        silent(b.stop())
        assert end_holder() == helper.pid
    finally:
        helper.kill()
        helper.wait()


def test_session_end_unregisters_releases_and_ends_claims(sessions, project, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "shared.txt")
    silent(b.write(path, "B wrote\n"))
    assert answered(a.pre_write(path))["hookSpecificOutput"]["permissionDecision"] == "deny"
    took = b.claude.run(f"{SESSIONWARD} lock acquire end", cwd=project, session_id=b.session_id)
    assert took.rc == 0, took
    silent(b.end())
    assert list(registry(state_dir)) == [a.session_id]
    assert end_holder() is None
    silent(a.pre_write(path))  # B's claim no longer blocks
    silent(a.pre_bash("git checkout -b topic"))
    from sessionward.claims import claims_on

    (claim,) = claims_on(path)
    assert claim["owner"]["pid"] == b.pid and claim["ended"] is not None


def test_session_end_leaves_another_sessions_lock(sessions, state_dir):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    run_cli("lock", "acquire", "end", "--pid", str(a.pid), check=True)
    silent(b.end())
    assert end_holder() == a.pid
    assert list(registry(state_dir)) == [a.session_id]


# -- kill -9 --------------------------------------------------------------------------------


@pytest.mark.parametrize("next_hook", ["prompt", "start"])
def test_a_killed_session_stops_counting_at_once(sessions, project, state_dir, next_hook):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    answered(b.start())
    path = os.path.join(project, "shared.txt")
    silent(a.write(path, "A wrote\n"))
    assert answered(b.pre_write(path))["hookSpecificOutput"]["permissionDecision"] == "deny"
    a.claude.kill()  # no SessionEnd: Claude Code was killed
    got = b.pre_write(path)
    silent(got)
    assert str(a.pid) not in got.stdout
    assert a.session_id in registry(state_dir)  # nobody has swept yet
    if next_hook == "prompt":
        # B's prompt would have nothing to do within seconds of its start (heartbeat_memo: the
        # next whole operation sweeps, whoever runs it); B's last heartbeat long ago, it is due
        seen_long_ago(b.session_id)
    silent(b.prompt() if next_hook == "prompt" else b.start(source="resume"))
    assert list(registry(state_dir)) == [b.session_id]  # swept by B's hook
    listed = cli_json("list")["result"]["sessions"]
    assert [r["id"] for r in listed] == [b.session_id]
    silent(b.pre_bash("git checkout -b topic"))
    silent(b.pre_edit(path))


# -- owners, heartbeats, every file tool ----------------------------------------------------------


def test_a_claude_pid_naming_an_unrelated_process_is_not_the_owner(sessions, state_dir):
    a = sessions(0)
    unrelated = subprocess.Popen(["sleep", "60"])  # neither `claude` nor an ancestor of the hook
    try:
        silent(a.start(CLAUDE_PID=str(unrelated.pid)))
    finally:
        unrelated.kill()
        unrelated.wait()
    (record,) = registry(state_dir).values()
    assert (record["owner"]["pid"], record["owner"]["comm"]) == (a.pid, "claude")


def seen_long_ago(session_id: str) -> float:
    """Set the session's last_seen HEARTBEAT_REFRESH_S + 60 s back, through the store; the new value."""
    def back(sessions):
        sessions[session_id]["last_seen"] -= HEARTBEAT_REFRESH_S + 60
        return sessions[session_id]["last_seen"], True

    return open_store().update_sessions(back)


def registry_writes(state_dir):
    """What changes with every write of the registry: the file's inode (replaced whole), or
    the shared store's version counter."""
    if os.environ["SESSIONWARD_STORE"] != "local":
        from sessionward.store import shared

        return shared.connection(os.environ["SESSIONWARD_STORE"]).call("GET", shared.prefix() + "registry:version")
    return os.stat(state_dir / "obsidian_sessions.json").st_ino


def test_user_prompt_submit_and_stop_are_heartbeats(sessions, state_dir):
    a = sessions(0)
    silent(a.start())
    for hook in (a.prompt, a.stop, a.prompt):
        long_ago = seen_long_ago(a.session_id)
        silent(hook())
        assert registry(state_dir)[a.session_id]["last_seen"] > long_ago + HEARTBEAT_REFRESH_S
    assert len(registry(state_dir)) == 1


def test_a_heartbeat_soon_after_the_last_one_writes_nothing(sessions, state_dir):
    a = sessions(0)
    silent(a.start())
    written = registry_writes(state_dir)
    seen = registry(state_dir)[a.session_id]["last_seen"]
    for hook in (a.prompt, a.stop, a.prompt):  # within a second: a `claude -p` run
        silent(hook())
    assert registry_writes(state_dir) == written
    assert registry(state_dir)[a.session_id]["last_seen"] == seen


NOTEBOOK_INPUT = {"notebook_path": None, "new_source": "x", "cell_type": "code", "edit_mode": "replace"}
TOOL_INPUTS = {
    "Write": lambda path: {"file_path": path, "content": "x\n"},
    "Edit": lambda path: {"file_path": path, "old_string": "a", "new_string": "b", "replace_all": False},
    "MultiEdit": lambda path: {"file_path": path, "edits": [{"old_string": "a", "new_string": "b"}]},
    "NotebookEdit": lambda path: dict(NOTEBOOK_INPUT, notebook_path=path),
}


@pytest.mark.parametrize("claimed_by", sorted(TOOL_INPUTS))
def test_every_file_tool_claims_and_is_guarded(sessions, project, claimed_by):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    path = os.path.join(project, "book.ipynb")
    with open(path, "w") as f:
        f.write("{}\n")
    silent(a.post_tool(claimed_by, TOOL_INPUTS[claimed_by](path)))
    for tool, make in TOOL_INPUTS.items():
        assert answered(b.pre_tool(tool, make(path))) == pre_tool_answer(
            "deny", f"{claimant(a)} edited {path} <AGO> and is still running{deny_tail(path)}"
        ), tool
    for tool in ("Read", "Glob", "Grep", "WebFetch"):
        silent(b.pre_tool(tool, {"file_path": path, "pattern": "*"}))  # reading is never guarded
    silent(b.post_tool("Bash", {"command": f"cat {path}"}))  # a Bash command claims nothing
    silent(a.pre_tool(claimed_by, TOOL_INPUTS[claimed_by](path)))


def test_a_path_through_a_symlink_is_the_same_file(sessions, project):
    a, b = sessions(0), sessions(1)
    silent(a.start())
    path = os.path.join(project, "real.txt")
    link = os.path.join(project, "link.txt")
    os.symlink(path, link)
    silent(a.write(path, "A\n"))
    assert answered(b.pre_write(link)) == pre_tool_answer(
        "deny", f"{claimant(a)} edited {path} <AGO> and is still running{deny_tail(path)}"
    )


def test_a_killed_twin_is_not_a_twin(sessions, state_dir):
    a = sessions(0)
    b = sessions(1, session_id=a.session_id)
    silent(a.start())
    a.claude.kill()
    silent(b.start(source="resume"))
    (record,) = registry(state_dir).values()
    assert (record["id"], record["owner"]["pid"]) == (a.session_id, b.pid)
