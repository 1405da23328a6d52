"""Property tests of the hooks' stdin: whatever Claude Code (or anything else) writes there,
a hook exits 0 with nothing or one documented JSON answer, or fails open with exit 1 and one
line on stderr; never exit 2, never a traceback, never a hang; and the registry and the claim
shards stay valid JSON documents of schema "sessionward/1".

Two ways in:
  - the real `sessionward hook <Event>`, as a subprocess of a FakeClaude (the process tree of
    Claude Code): a few hundred examples in the quick tier, more under @pytest.mark.slow;
  - run_hook() in this process, with CLAUDE_PID naming a live fake `claude` in the environ
    it is given (so the owner resolves), for many more examples.
Around the session being fuzzed, another live session works in the same worktree, has
written shared.txt, and holds the `end` lock while the vault is configured: so guarded
paths and git commands really produce answers whose shape is checked.
"""

import json
import os

import pytest
from hypothesis import HealthCheck, event as count_outcome, given, settings, strategies as st

from helpers import SESSIONWARD, run_cli

EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PermissionRequest", "Notification", "Stop",
          "SessionEnd")
# Top-level keys each event may answer with, and the keys of its hookSpecificOutput.
ALLOWED_TOP = {
    "SessionStart": {"systemMessage", "hookSpecificOutput"},
    "UserPromptSubmit": {"systemMessage", "hookSpecificOutput"},
    "PreToolUse": {"systemMessage", "hookSpecificOutput"},
    "PostToolUse": set(),
    "PermissionRequest": set(),  # never a word: an answer there decides a permission dialog
    "Stop": {"systemMessage"},
    "SessionEnd": set(),
}
ALLOWED_SPECIFIC = {
    "SessionStart": {"hookEventName", "additionalContext"},
    "UserPromptSubmit": {"hookEventName", "additionalContext"},
    "PreToolUse": {"hookEventName", "permissionDecision", "permissionDecisionReason"},
}
BASE_PAYLOAD = {  # which captured payload of basic/ each event starts from
    "SessionStart": "01-SessionStart",
    "UserPromptSubmit": "02-UserPromptSubmit",
    "PreToolUse": "03-PreToolUse",
    "PostToolUse": "04-PostToolUse",
    "PermissionRequest": "03-PreToolUse",  # none in basic/: PreToolUse's carries its tool_name and tool_input
    "Notification": "08-Stop",  # none captured: Stop's carries the fields every event has
    "Stop": "08-Stop",
    "SessionEnd": "09-SessionEnd",
}
FUZZ = dict(deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])


# -- checking one answer ------------------------------------------------------------------------


def check_answer(event: str, rc, stdout: str, stderr: str) -> None:
    assert rc in (0, 1), (rc, stdout, stderr)
    if rc == 1:
        assert stdout == "", stdout
        assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
        assert "Traceback" not in stderr
        assert stderr.startswith(f"sessionward hook {event}: "), stderr
        return
    assert stderr == "", stderr
    if not stdout:
        return
    stdout.encode("utf-8")  # strict: what reaches Claude Code is UTF-8
    assert stdout.endswith("\n") and stdout.count("\n") == 1, stdout
    doc = json.loads(stdout)
    assert type(doc) is dict and doc, doc
    assert set(doc) <= ALLOWED_TOP[event], doc
    if "systemMessage" in doc:
        assert type(doc["systemMessage"]) is str and doc["systemMessage"].startswith("sessionward: ")
    if "hookSpecificOutput" in doc:
        specific = doc["hookSpecificOutput"]
        assert type(specific) is dict and set(specific) <= ALLOWED_SPECIFIC[event], specific
        assert specific["hookEventName"] == event
        if event == "PreToolUse":
            assert specific["permissionDecision"] in ("ask", "deny")
            assert specific["permissionDecisionReason"].startswith("sessionward: ")
        else:
            assert type(specific["additionalContext"]) is str and specific["additionalContext"]
    elif event == "PreToolUse":
        assert set(doc) == {"systemMessage"}  # the warn policy: only the user is told


def note_outcome(rc, stdout: str) -> None:
    """For --hypothesis-show-statistics: how often each kind of outcome was reached."""
    if rc == 0 and stdout:
        doc = json.loads(stdout)
        kind = doc.get("hookSpecificOutput", {}).get("permissionDecision") or "+".join(sorted(doc))
        count_outcome(f"exit 0, answered: {kind}")
    else:
        count_outcome(f"exit {rc}, {'answer' if stdout else 'nothing'}")


def check_state(state_dir) -> None:
    """The registry and every claims shard: whole JSON documents of schema sessionward/1."""
    registry = state_dir / "obsidian_sessions.json"
    if registry.exists():
        doc = json.loads(registry.read_bytes())
        assert doc["schema"] == "sessionward/1" and type(doc["sessions"]) is dict
        for key, record in doc["sessions"].items():
            assert record["id"] == key and type(record["owner"]["pid"]) is int
    claims = state_dir / "sessionward" / "claims"
    if claims.is_dir():
        for found in claims.glob("*.json"):  # the NN.json shards (and any other document there)
            doc = json.loads(found.read_bytes())
            assert type(doc) is dict and doc["schema"] == "sessionward/1", found
            if len(found.name) == len("NN.json"):
                assert type(doc["files"]) is dict, found


# -- what goes on stdin ----------------------------------------------------------------------


SURROGATES = st.characters(categories=["Cs"])
ODD_CHARS = st.sampled_from(["\0", "\n", "\r", "\u2028", "\u202e", "\ufeff", "\ufffd", "e\u0301", "\U0001f600",
                             "\x7f", "\x1b[31m", "'", '"', "\\", "$(", "`", ";", "..", "/"])


def odd_text(max_size: int = 40):
    """Text with control characters, odd Unicode and lone surrogates mixed in."""
    return st.lists(st.one_of(st.text(max_size=8), ODD_CHARS, SURROGATES), max_size=max_size // 4).map("".join)


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
NOT_A_STRING = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.lists(st.text(max_size=5), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


class Ground:
    """Where the fuzzed session stands, and what is around it."""

    def __init__(self, project: str, vault: str, session_ids: list, huge: int) -> None:
        self.project = project
        self.vault = vault
        self.session_ids = session_ids
        self.huge = huge  # the length of "huge" strings

    def files(self):
        p, v = self.project, self.vault
        return st.sampled_from([
            f"{p}/README", f"{p}/shared.txt", f"{p}/new.txt", f"{p}/sub/deeper.txt", f"{v}/note.md", f"{v}/a/b.md",
            p, v, f"{p}/../proj/shared.txt", f"{p}/./README", "/", "README", "shared.txt", "./new.txt",
        ])

    def session_id(self):
        return st.one_of(st.sampled_from(self.session_ids), st.text(max_size=20), odd_text(), NOT_A_STRING,
                         st.just("x" * 129), st.just("s" * self.huge), st.just(""))

    def cwd(self):
        p = self.project
        return st.one_of(
            st.sampled_from([p, p + "/", f"{p}/sub", self.vault, "/", "proj", "./proj", "", "/nonexistent/dir"]),
            odd_text().map(lambda t: p + "/" + t), odd_text(), NOT_A_STRING,
            st.just("/" + "a" * 300), st.just("/" + "b/" * (self.huge // 2)), st.just(p + "\0x"),
        )

    def file_path(self):
        return st.one_of(
            self.files(), self.files(), odd_text().map(lambda t: self.project + "/" + t),
            st.builds(lambda t, s: self.project + "/" + t + s, st.text(max_size=5), SURROGATES),
            NOT_A_STRING, st.just(""), st.just(self.project + "/" + "f" * self.huge), st.just(self.project + "/a\0b"),
        )

    def command(self):
        p = self.project
        return st.one_of(
            st.sampled_from([
                "ls", "git status", "git checkout -b topic", "git stash", "git reset --hard", f"git -C {p} checkout main",
                f"cd {p} && git clean -fd", "git -C /nonexistent checkout x", "echo git checkout", "(cd sub; git pull)",
                "git", "git -C", "git --work-tree", "sudo -u root git rebase main", "$(git checkout x)",
            ]),
            odd_text().map(lambda t: "git checkout " + t), odd_text(), NOT_A_STRING,
            st.just("git checkout " + "x" * self.huge), st.just("(" * 2000 + "git checkout x"),
            st.just('"$(' * 500 + "git stash"),
        )

    def tool_input(self):
        return st.one_of(
            st.fixed_dictionaries({"file_path": self.file_path()}, optional={"content": st.text(max_size=5)}),
            st.fixed_dictionaries({"notebook_path": self.file_path()}),
            st.fixed_dictionaries({"command": self.command()}, optional={"description": ANY_JSON}),
            st.fixed_dictionaries({}, optional={"file_path": self.file_path(), "command": self.command()}),
            st.text(max_size=10), NOT_A_STRING,
        )

    def payload(self, base: dict):
        """The captured payload, either well formed (a tool call on the guarded ground), or
        with fields changed, mistyped or dropped."""
        return st.one_of(self.well_formed(base), self.mangled(base))

    def well_formed(self, base: dict):
        def build(session_id, cwd, tool_name, path, command, extra):
            tool_input = {"command": command} if tool_name == "Bash" else {"file_path": path}
            return {**base, "session_id": session_id, "cwd": cwd, "tool_name": tool_name, "tool_input": tool_input, **extra}

        return st.builds(
            build,
            st.sampled_from(self.session_ids),
            st.sampled_from([self.project, self.project + "/sub", self.vault]),
            st.sampled_from(["Write", "Edit", "MultiEdit", "NotebookEdit", "Read", "Bash"]),
            self.files(),
            self.command(),
            st.fixed_dictionaries({}, optional={"source": st.sampled_from(["startup", "resume", "clear"]),
                                                "reason": st.sampled_from(["clear", "other"])}),
        )

    def mangled(self, base: dict):
        changes = st.fixed_dictionaries({}, optional={
            "session_id": self.session_id(),
            "cwd": self.cwd(),
            "tool_name": st.one_of(st.sampled_from(["Write", "Edit", "MultiEdit", "NotebookEdit", "Read", "Bash", "Glob"]),
                                   st.text(max_size=8), NOT_A_STRING),
            "tool_input": self.tool_input(),
            "source": st.one_of(st.sampled_from(["startup", "resume", "clear", "compact", "fork"]), ANY_JSON),
            "reason": st.one_of(st.sampled_from(["clear", "logout", "other"]), ANY_JSON),
            "hook_event_name": st.one_of(st.sampled_from(EVENTS), ANY_JSON),
            "extra": ANY_JSON,
        })
        dropped = st.sets(st.sampled_from(sorted(base) + ["tool_input", "tool_name"]), max_size=3)

        def build(change: dict, drop: set) -> dict:
            payload = {k: v for k, v in base.items() if k not in drop}
            payload.update(change)
            return payload

        return st.builds(build, changes, dropped)

    def stdin(self, base: dict):
        """Bytes on stdin: mostly a fuzzed payload as JSON, else garbage of many kinds."""
        as_json = self.payload(base).map(_encode)
        valid = json.dumps(base).encode()
        return st.one_of(
            as_json, as_json, as_json, as_json,
            st.binary(max_size=64),
            ANY_JSON.map(lambda v: json.dumps(v).encode()),  # mostly not an object
            st.integers(1, len(valid) - 1).map(lambda n: valid[:n]),  # truncated
            st.sampled_from([b"", b"   \n", b"null", b"[]", b"{}", b'"x"', b"{\"a\":1}{}", b"\xff\xfe{}", b"{\"a\":NaN}",
                             b"{\"a\":1e999}", b"[" * 100000, b"{\"a\":" * 50000, b"\xef\xbb\xbf{}",
                             b'{"session_id": "\\ud800"}', b'{"cwd": "\\udc80"}']),
            st.just(b'{"prompt": "' + b"p" * (self.huge * 4) + b'"}'),
        )


def _encode(payload: dict) -> bytes:
    # UTF-8, with lone surrogates as their JSON escapes (see conftest.FakeClaude.hook).
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "backslashreplace")


# -- the ground: another live session around the fuzzed one -------------------------------------


@pytest.fixture
def ground(fake_claude, payloads, project, rc_root, state_dir):
    """Another live 2.1.331 session in proj/ that wrote shared.txt and holds `end`; the vault."""
    vault = os.path.join(rc_root, "vault")
    os.mkdir(vault)
    other = fake_claude("2.1.331")
    sid = payloads.session_ids("2.1.331")[1]
    start = dict(payloads.get("2.1.331", "basic", "01-SessionStart"), session_id=sid)
    assert other.hook("SessionStart", start).rc == 0
    shared = os.path.join(project, "shared.txt")
    with open(shared, "w") as f:
        f.write("other\n")
    post = dict(payloads.get("2.1.331", "basic", "04-PostToolUse"), session_id=sid,
                tool_input={"file_path": shared, "content": "other\n"})
    assert other.hook("PostToolUse", post).rc == 0
    run_cli("lock", "acquire", "end", "--pid", str(other.pid), check=True)
    ids = payloads.session_ids("2.1.331") + payloads.session_ids("2.1.112")
    return Ground(project, vault, ids, huge=5000)


ENV_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=6)  # what an environment can hold
ENV = st.fixed_dictionaries({}, optional={
    "SESSIONWARD_EDIT_POLICY": st.one_of(st.sampled_from(["ask", "deny", "warn"]), ENV_TEXT),
    "SESSIONWARD_CLAIM_TTL_MINUTES": st.one_of(st.sampled_from(["0", "30", "1e9", "-1", "nan", "x"]), ENV_TEXT),
    "SESSIONWARD_GIT_GUARD": st.sampled_from(["0", "1", "on", "maybe"]),
})


# -- the real command, in Claude Code's process tree ----------------------------------------------


def _run_cli_fuzz(version: str, examples: int):
    @settings(max_examples=examples, **FUZZ)
    @given(data=st.data())
    def run(ground, payloads, me, state_dir, data):
        event = data.draw(st.sampled_from(EVENTS), label="event")
        base = payloads.get(version, "basic", BASE_PAYLOAD[event])
        raw = data.draw(ground.stdin(base), label="stdin")
        env = dict(SESSIONWARD_VAULT=ground.vault, **data.draw(ENV, label="env"))
        ran = me.run(f"{SESSIONWARD} hook {event}", raw, env=env, cwd=ground.project, timeout=30)
        assert not ran.timed_out, "the hook hung"
        check_answer(event, ran.rc, ran.stdout, ran.stderr)
        note_outcome(ran.rc, ran.stdout)
        check_state(state_dir)

    return run


def test_cli_hook_survives_any_stdin(version, ground, payloads, fake_claude, state_dir):
    me = fake_claude(version)  # its flavour decides whether CLAUDE_PID is set
    _run_cli_fuzz(version, examples=150)(ground, payloads, me, state_dir)


@pytest.mark.slow
def test_cli_hook_survives_any_stdin_many(version, ground, payloads, fake_claude, state_dir):
    me = fake_claude(version)
    _run_cli_fuzz(version, examples=600)(ground, payloads, me, state_dir)


# -- run_hook in this process: many more examples ----------------------------------------------


def _in_process_fuzz(examples: int):
    @settings(max_examples=examples, **FUZZ)
    @given(data=st.data())
    def run(ground, payloads, environ, state_dir, data):
        from sessionward.hooks import run_hook

        event = data.draw(st.sampled_from(EVENTS), label="event")
        version = data.draw(st.sampled_from(["2.1.331", "2.1.112"]), label="version")
        base = payloads.get(version, "basic", BASE_PAYLOAD[event])
        raw = data.draw(ground.stdin(base), label="stdin")
        env = dict(environ, **data.draw(ENV, label="env"))
        answer = run_hook(event, raw, env)
        check_answer(event, answer.exit_code, answer.stdout, answer.stderr)
        note_outcome(answer.exit_code, answer.stdout)
        check_state(state_dir)

    return run


@pytest.fixture
def environ(fake_claude, ground):
    """The environment Claude Code 2.1.331 gives a hook: CLAUDE_PID names a live fake claude."""
    me = fake_claude("2.1.331")
    return dict(os.environ, CLAUDE_PID=str(me.pid), CLAUDECODE="1", SESSIONWARD_VAULT=ground.vault)


def test_run_hook_survives_any_stdin(ground, payloads, environ, state_dir):
    _in_process_fuzz(examples=600)(ground, payloads, environ, state_dir)


@pytest.mark.slow
def test_run_hook_survives_any_stdin_many(ground, payloads, environ, state_dir):
    _in_process_fuzz(examples=5000)(ground, payloads, environ, state_dir)


@settings(max_examples=300, **FUZZ)
@given(event=st.one_of(st.sampled_from(EVENTS), st.text(max_size=12), odd_text(12)), raw=st.binary(max_size=200))
def test_run_hook_any_event_name_any_bytes(event, raw):
    from sessionward.hooks import run_hook

    answer = run_hook(event, raw, dict(os.environ))
    assert answer.exit_code in (0, 1)
    if event not in EVENTS:
        assert answer.exit_code == 1 and answer.stdout == ""
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in event)  # one line, always
        assert answer.stderr.startswith(f"sessionward hook {shown}: unknown event ")
        assert answer.stderr.endswith("\n") and answer.stderr.count("\n") == 1
    else:
        check_answer(event, answer.exit_code, answer.stdout, answer.stderr)


# -- the answers the fuzzing must be able to reach ------------------------------------------------


def test_the_ground_really_produces_answers(ground, environ, payloads, project):
    """The fuzz above checks answers only if there are some: the guarded paths and commands
    of its ground do produce them."""
    from sessionward.hooks import run_hook

    def pre(tool_input, tool="Write", **env):
        payload = dict(payloads.get("2.1.331", "basic", "03-PreToolUse"), tool_name=tool, tool_input=tool_input)
        answer = run_hook("PreToolUse", _encode(payload), dict(environ, **env))
        check_answer("PreToolUse", answer.exit_code, answer.stdout, answer.stderr)
        return json.loads(answer.stdout) if answer.stdout else None

    assert pre({"file_path": f"{project}/shared.txt"})["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert pre({"file_path": f"{project}/shared.txt"}, SESSIONWARD_EDIT_POLICY="warn").keys() == {"systemMessage"}
    assert pre({"file_path": f"{ground.vault}/note.md"})["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert pre({"command": "git stash"}, tool="Bash")["hookSpecificOutput"]["permissionDecision"] == "ask"
    start = payloads.get("2.1.331", "basic", "01-SessionStart")
    answer = run_hook("SessionStart", _encode(start), environ)
    check_answer("SessionStart", answer.exit_code, answer.stdout, answer.stderr)
    assert "additionalContext" in json.loads(answer.stdout)["hookSpecificOutput"]


# -- lone surrogates: found by the fuzzing above, kept as plain examples -----------------------------


def test_lone_surrogate_in_a_git_command_is_answered_as_valid_utf8_json(ground, environ, payloads):
    from sessionward.hooks import run_hook

    for odd in ("\ud800", "\udc80"):
        payload = dict(payloads.get("2.1.331", "basic", "05-PreToolUse"), tool_input={"command": f"git checkout x{odd}"})
        answer = run_hook("PreToolUse", _encode(payload), environ)
        check_answer("PreToolUse", answer.exit_code, answer.stdout, answer.stderr)
        reason = json.loads(answer.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
        assert reason.startswith(f"sessionward: 'git checkout x{odd}' moves HEAD")  # the escape decodes back


def test_lone_surrogate_in_a_git_command_through_the_real_command(ground, fake_claude, payloads, project):
    me = fake_claude("2.1.112")
    payload = dict(payloads.get("2.1.112", "basic", "05-PreToolUse"), tool_input={"command": "git stash \ud800"})
    ran = me.hook("PreToolUse", payload)
    check_answer("PreToolUse", ran.rc, ran.stdout, ran.stderr)
    assert "\\ud800" in ran.stdout and json.loads(ran.stdout)["hookSpecificOutput"]["permissionDecision"] == "ask"


@pytest.mark.parametrize("event", ["PreToolUse", "PostToolUse"])
@pytest.mark.parametrize("odd", ["\ud800", "\udc80"])
def test_lone_surrogate_in_a_file_path_is_bad_input(event, odd, environ, payloads, project, state_dir):
    from sessionward.hooks import run_hook

    path = f"{project}/x{odd}"
    payload = dict(payloads.get("2.1.331", "basic", "04-PostToolUse"), tool_input={"file_path": path})
    answer = run_hook(event, _encode(payload), environ)
    assert (answer.exit_code, answer.stdout) == (1, "")
    assert answer.stderr == f"sessionward hook {event}: tool_input.file_path {path!r} is not valid UTF-8\n"
    assert not (state_dir / "sessionward" / "errors.log").exists()  # bad input, not an internal error


def test_lone_surrogate_in_cwd_is_bad_input(environ, payloads, project, state_dir):
    from sessionward.hooks import run_hook

    cwd = f"{project}/\udc80"
    payload = dict(payloads.get("2.1.331", "basic", "04-PostToolUse"), cwd=cwd,
                   tool_input={"file_path": f"{project}/README"})
    answer = run_hook("PostToolUse", _encode(payload), environ)
    assert (answer.exit_code, answer.stdout) == (1, "")
    assert answer.stderr == f"sessionward hook PostToolUse: field 'cwd' must be an absolute path, not {cwd!r}\n"
    assert not (state_dir / "sessionward" / "errors.log").exists()


# -- one line, whatever the message holds: found by the fuzzing above --------------------------------


@pytest.mark.parametrize("odd", ["\n", "\r", "\u2028", "\x1b[2J"])
def test_a_control_character_in_cwd_still_fails_open_with_one_line(odd, environ, payloads, project):
    from sessionward.hooks import run_hook

    cwd = f"{project}/{odd}x"
    payload = dict(payloads.get("2.1.331", "basic", "01-SessionStart"), cwd=cwd)
    answer = run_hook("SessionStart", _encode(payload), environ)
    escaped = repr(odd)[1:-1]
    assert (answer.exit_code, answer.stdout) == (1, "")
    assert answer.stderr == (
        f"sessionward hook SessionStart: working directory {project}/{escaped}x does not exist or is not a directory\n"
    )


def test_an_event_name_with_a_newline_fails_open_with_one_line(fake_claude, project):
    me = fake_claude("2.1.331")
    ran = me.run(f"{SESSIONWARD} hook \"$(printf 'Pre\\nToolUse')\"", b"{}", cwd=project)
    assert (ran.rc, ran.stdout) == (1, "")
    assert ran.stderr == (
        "sessionward hook Pre\\nToolUse: unknown event 'Pre\\nToolUse' "
        "(known: SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, PermissionRequest, Notification, Stop, SessionEnd)\n"
    )
