"""Claude Code hooks: `sessionward hook <Event>` reads the event's JSON on stdin and answers.

One module per event (session_start, user_prompt_submit, pre_tool_use, post_tool_use,
permission_request, notification, stop, session_end), each with `handle(event: HookEvent) ->
dict | None`: the JSON answer Claude Code documents (`hookSpecificOutput`, `systemMessage`),
or None for "no opinion". PermissionRequest's is always None: it only notes activity, and
never decides a permission dialog (hooks/permission_request.py).

The contract with Claude Code (see FACTS.md, "Answering"):
  exit 0  stdout is the JSON answer, or empty
  exit 1  sessionward itself failed: one line on stderr, the user sees "hook error", and
          the action goes on (a broken guard fails open; promise 4)
  never 2 (exit 2 blocks a tool call: only a deliberate deny may block, and that is JSON)
Nothing here waits longer than a few seconds (lock waits are bounded far below Claude
Code's hook timeouts), nothing prints a traceback (it goes to the error log), and nothing
heavy is imported: this runs before and after every tool call.

Every event is first noted as the session's activity (sessionward.activity: one small write),
so `sessionward watch` shows what each session is doing. A guard's ask or deny, and what the
person then did (the tool asked about ran: allowed; the turn ended first: not run), go to
the event log (sessionward.eventlog: one appended line, only when that happens).

A repair not yet told in Claude Code (a corrupt registry kept aside, by this hook or an
earlier process: sessionward._notices) is added to the answer's systemMessage, once; when
nothing is pending that costs one stat. A problem in the configuration (a bad
sessionward.toml or SESSIONWARD_* variable) is told at SessionStart, in its systemMessage,
and nowhere else in Claude Code: every hook works on the defaults meanwhile (config.py).

run_hook(event, stdin_bytes, environ) is the whole of it, callable from tests and Python.
"""

import os

from sessionward import _jsoncodec as jsoncodec
from sessionward.errors import HookInputError, SessionwardError, StoreUnavailable, is_out_of_memory

EVENTS = {
    "SessionStart": "sessionward.hooks.session_start",
    "UserPromptSubmit": "sessionward.hooks.user_prompt_submit",
    "PreToolUse": "sessionward.hooks.pre_tool_use",
    "PostToolUse": "sessionward.hooks.post_tool_use",
    "PermissionRequest": "sessionward.hooks.permission_request",
    "Notification": "sessionward.hooks.notification",
    "Stop": "sessionward.hooks.stop",
    "SessionEnd": "sessionward.hooks.session_end",
}
HOOK_LOCK_TIMEOUT_S = 2.0  # registry waits inside a hook; SessionEnd uses less
MAX_STDIN_BYTES = 64 * 1024 * 1024
MAX_PATH_CHARS = 4096
EXIT_FAILED_OPEN = 1


class HookEvent:
    """The event's payload, with checked accessors, and the environment the hook runs in."""

    __slots__ = ("name", "payload", "environ", "_owner", "defer_watchers")

    def __init__(self, name: str, payload: dict, environ, defer_watchers: bool = False) -> None:
        self.name = name
        self.payload = payload
        self.environ = environ
        self._owner = None
        # The caller starts deferred watcher pairs once it has answered (main: start_deferred_watchers).
        self.defer_watchers = defer_watchers

    def text(self, key: str, required: bool = True, source: dict | None = None) -> str | None:
        value = (self.payload if source is None else source).get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value):
            raise HookInputError(f"field {key!r} must be a non-empty string, not {_kind(value)}")
        return value

    def mapping(self, key: str) -> dict:
        value = self.payload.get(key)
        if type(value) is not dict:
            raise HookInputError(f"field {key!r} must be an object, not {_kind(value)}")
        return value

    @property
    def session_id(self) -> str | None:
        """Claude Code's session id when it is usable as a registry key, else None."""
        value = self.payload.get("session_id")
        if isinstance(value, str) and 0 < len(value) <= 128 and all(c.isascii() and (c.isalnum() or c in "-_.:") for c in value):
            return value
        return None

    @property
    def cwd(self) -> str:
        cwd = self.text("cwd")
        assert cwd is not None  # required: text() raised otherwise
        if not os.path.isabs(cwd) or "\0" in cwd or len(cwd) > MAX_PATH_CHARS or not _is_utf8(cwd):
            raise HookInputError(f"field 'cwd' must be an absolute path, not {cwd[:80]!r}")
        return cwd

    @property
    def owner(self):
        """The session's owner: CLAUDE_PID, else the `claude` ancestor (resolved once)."""
        if self._owner is None:
            from sessionward.identity import resolve_owner

            self._owner = resolve_owner(environ=self.environ)
        return self._owner

    def file_path(self, tool_input: dict) -> str | None:
        """The absolute, resolved path a file tool acts on; None when the input names none."""
        raw = tool_input.get("file_path")
        if raw is None:
            raw = tool_input.get("notebook_path")
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw or "\0" in raw or len(raw) > MAX_PATH_CHARS:
            raise HookInputError(f"tool_input.file_path must be a path, not {_kind(raw)}")
        if not _is_utf8(raw):  # a lone surrogate could be neither resolved nor stored as a claim
            raise HookInputError(f"tool_input.file_path {raw[:80]!r} is not valid UTF-8")
        if not os.path.isabs(raw):
            raw = os.path.join(self.cwd, raw)
        try:
            return os.path.realpath(raw)  # two sessions may reach one file through a symlink
        except (OSError, ValueError) as exc:
            raise HookInputError(f"tool_input.file_path {raw[:80]!r} cannot be resolved: {exc}") from None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind(value) -> str:
    if value is None:
        return "missing"
    return type(value).__name__


def hook_store():
    """The registry store with a wait bounded for hooks."""
    from sessionward.store import open_store

    return open_store(lock_timeout_s=HOOK_LOCK_TIMEOUT_S)


# -- running ----------------------------------------------------------------------------------


class Answer:
    __slots__ = ("exit_code", "stdout", "stderr")

    def __init__(self, exit_code: int, stdout: str = "", stderr: str = "") -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


def run_hook(event: str, raw: bytes, environ=None, defer_watchers: bool = False) -> Answer:
    """Answer one hook call. Never raises (but re-raises under SESSIONWARD_DEBUG=1, and lets
    a MemoryError met while reporting one go: cli.entry turns that into its one line).
    defer_watchers: the caller calls start_deferred_watchers() once it has answered
    (SessionStart then starts its owner's watcher pair there: identity.life.defer_starts)."""
    env = os.environ if environ is None else environ
    try:
        module_name = EVENTS.get(event)
        if module_name is None:
            raise HookInputError(f"unknown event {event!r} (known: {', '.join(EVENTS)})")
        payload = _decode(raw)
        from sessionward.store import SHARED, current

        hook_event = HookEvent(event, payload, env, defer_watchers)
        if current() == SHARED:  # the store backend, chosen once: a shared one not built fails open here
            _record_kept_claims(hook_event)
        from sessionward import activity

        previous = activity.note_event(event, hook_event.session_id, payload)  # first: noted even if the handler fails
        if previous and previous.get("asked"):
            log_asked_outcome(event, hook_event.session_id, payload, previous)
        module = __import__(module_name, fromlist=["handle"])
        answer = module.handle(hook_event)
        if answer and event == "PreToolUse":
            activity.note_decision(hook_event.session_id, payload, answer)
            log_decision(hook_event.session_id, payload, answer)
        if event == "SessionStart":
            answer = with_config_problems(env, answer)
        answer = with_pending_notices(event, answer)
        return Answer(0, jsoncodec.dumps_line(answer) + "\n" if answer else "")
    except StoreUnavailable as error:  # the action goes on unguarded: said first, as the status line says it
        return _failed(event, f"{error.not_guarding()}; {error.hint}")
    except SessionwardError as error:
        return _failed(event, str(error))
    except KeyboardInterrupt:
        return _failed(event, "interrupted")
    except Exception as error:  # noqa: BLE001 - a hook fails open with one line (promise 4)
        if is_out_of_memory(error):  # no traceback to log: nothing is wrong but the limit
            return _failed(event, "out of memory (a memory limit such as ulimit -v?); the action goes on unguarded")
        if env.get("SESSIONWARD_DEBUG") == "1":
            raise
        from sessionward._errorlog import log_traceback

        logged = log_traceback(f"hook {event}", error)
        return _failed(event, f"internal error: {type(error).__name__}: {error} ({logged})")


def _record_kept_claims(event: HookEvent) -> None:
    """Claims kept on this host while the shared store did not answer (sessionward.claims,
    keep_for_later) are recorded before this hook reads any: the guard then knows of the
    edits made meanwhile. One stat when there are none. StoreUnavailable when it still does
    not answer (this hook fails open, as it would have); a PostToolUse keeps its own claim
    first, without asking the server again (another 0.25 s from a paused one)."""
    from sessionward import paths

    if not paths.kept_claims_present():
        return
    import time

    from sessionward.claims import record_kept

    try:
        record_kept(time.time())
    except StoreUnavailable:
        if event.name == "PostToolUse":
            from sessionward.hooks.post_tool_use import keep_claim

            keep_claim(event)
        raise


# -- the event log (sessionward.eventlog): what the guards asked or denied, what the person did --

TURN_ENDS = ("UserPromptSubmit", "Stop", "SessionEnd")  # a tool asked about and not run by then never ran


def _guarded(payload: dict) -> tuple[str, str | None, str | None]:
    """("edit" or "git", the tool, what it works on) for the event log."""
    from sessionward.activity import target_of

    tool = payload.get("tool_name") if isinstance(payload.get("tool_name"), str) else None
    tool_input = payload.get("tool_input")
    target = target_of(tool_input) if type(tool_input) is dict else None
    return ("git" if tool == "Bash" else "edit"), tool, target


def log_decision(session_id: str | None, payload: dict, answer: dict) -> None:
    """A PreToolUse answer of ours that asked or denied: one event-log line."""
    output = answer.get("hookSpecificOutput") or {}
    decision = output.get("permissionDecision")
    if decision not in ("ask", "deny"):
        return
    from sessionward import eventlog

    kind, tool, target = _guarded(payload)
    eventlog.append(f"{kind}.{'asked' if decision == 'ask' else 'denied'}", session_id, tool=tool, target=target,
                    reason=output.get("permissionDecisionReason"), cwd=payload.get("cwd"))


def log_asked_outcome(event: str, session_id: str | None, payload: dict, previous: dict) -> None:
    """What became of the tool our PreToolUse asked about (activity's "asked"): its PostToolUse
    means the person allowed it. At the turn's end without one, Claude Code's transcript says
    (sessionward.transcript): a refusal, when, or a result (it ran: allowed, its PostToolUse
    missed, say it failed); nothing there means it never ran. Dated when it happened
    (sessionward.eventlog, "`at`")."""
    import time

    asked = previous["asked"]
    how = None
    at = None
    if event == "PostToolUse" and asked in (payload.get("tool_use_id"), "?"):
        outcome = "allowed"
    elif event in TURN_ENDS:
        from sessionward.transcript import find_tool_result

        found = find_tool_result(previous.get("transcript") or payload.get("transcript_path"),
                                 asked if asked != "?" else previous.get("tool_use_id"), previous.get("since", 0.0))
        if found is None:
            outcome, how = "not_run", "no result when the turn ended"
        else:
            outcome, at = ("not_run", found.at) if found.refused else ("allowed", found.at)
            how = "refused by the person" if found.refused else "ran; no PostToolUse seen"
    else:
        return
    from sessionward import eventlog

    kind, tool, target = _guarded(payload) if event == "PostToolUse" else (
        "git" if previous.get("tool") == "Bash" else "edit", previous.get("tool"), previous.get("target"))
    eventlog.append(f"{kind}.{outcome}", session_id, at=at, tool=tool, target=target, how=how,
                    learnt_at=round(time.time(), 3) if at is not None else None, cwd=payload.get("cwd"))


def with_pending_notices(event: str, answer: dict | None) -> dict | None:
    """`answer` with the repairs not yet told in Claude Code (a corrupt registry kept aside,
    see sessionward._notices) added to its systemMessage, which Claude Code shows the user.
    Costs one stat when nothing is pending. Left pending where the user would not see it:
    at SessionEnd (the session is closing), beside an "ask" (the edit dialog hides it), and
    at PermissionRequest (its answer stays empty: it never speaks to a dialog)."""
    if event in ("SessionEnd", "PermissionRequest"):
        return answer
    if answer and (answer.get("hookSpecificOutput") or {}).get("permissionDecision") == "ask":
        return answer
    import sys

    found = sys.modules.get("sessionward._notices")  # loaded only by a process that kept something aside
    if found is None or not found.found_here:
        from sessionward import paths

        try:  # the one stat paid by every hook: sessionward._notices itself is not even imported
            os.stat(paths.pending_notices_path())
        except OSError:
            return answer
    from sessionward import _notices

    told = _notices.take("hook")
    if not told:
        return answer
    answer = dict(answer or {})
    lines = [f"sessionward: {message}" for message in told]
    if answer.get("systemMessage"):
        lines.append(answer["systemMessage"])
    answer["systemMessage"] = "\n".join(lines)
    return answer


# SESSIONWARD_* variables the configuration does not read or tell of: the state directory
# (paths), the store (sessionward.store refuses a bad one before any hook runs), which file
# (paths.config_path), and the debugging, watcher and test-only switches. Any other one may
# be one of config's (tests/hooks: every name config reads is counted).
_NOT_SETTINGS = ("SESSIONWARD_HOME", "SESSIONWARD_STORE", "SESSIONWARD_CONFIG", "SESSIONWARD_DEBUG", "SESSIONWARD_VENV")
_NOT_SETTINGS_PREFIXES = ("SESSIONWARD_TEST_", "SESSIONWARD_WATCH_")


def may_name_a_setting(variable: str) -> bool:
    """Could this environment variable be one the configuration reads?"""
    return (variable.startswith("SESSIONWARD_") and variable not in _NOT_SETTINGS
            and not variable.startswith(_NOT_SETTINGS_PREFIXES))


def with_config_problems(environ, answer: dict | None) -> dict | None:
    """`answer` with the configuration's problems (config.Config.problems) added to its
    systemMessage: told once per session, where the person looks, never on every edit.
    With no configuration file and no variable config may read (the usual start) there is
    nothing to tell, and config is not even imported."""
    if not any(may_name_a_setting(name) for name in environ):
        from sessionward import paths

        if paths.config_file_missing(environ):
            return answer
    from sessionward.config import load_config

    problems = load_config(environ).problems
    if not problems:
        return answer
    answer = dict(answer or {})
    lines = [f"sessionward: configuration: {problem}" for problem in problems]
    if answer.get("systemMessage"):
        lines.insert(0, answer["systemMessage"])
    answer["systemMessage"] = "\n".join(lines)
    return answer


def _failed(event: str, message: str) -> Answer:
    # One line, whatever the input put in the message (a cwd or event name holding "\n", a
    # lone surrogate): characters that are not printable are shown as their escapes.
    from sessionward._humanize import one_line

    return Answer(EXIT_FAILED_OPEN, stderr=one_line(f"sessionward hook {event}: {message}") + "\n")


def _decode(raw: bytes) -> dict:
    if len(raw) > MAX_STDIN_BYTES:
        raise HookInputError(f"stdin holds {len(raw)} bytes, more than any hook event")
    if not raw.strip():
        raise HookInputError("stdin is empty: expected the event's JSON")
    try:
        payload = jsoncodec.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HookInputError(f"stdin is not valid JSON ({str(exc)[:120]})") from None
    if type(payload) is not dict:
        raise HookInputError(f"stdin must be a JSON object, not {_kind(payload)}")
    return payload


def main(argv: list) -> int:
    """`sessionward hook <Event>`: stdin in, answer out, exit 0 or 1 (never 2)."""
    import sys

    if len(argv) != 1:
        sys.stderr.write("sessionward hook: expected one event name, e.g. 'sessionward hook PreToolUse'\n")
        return EXIT_FAILED_OPEN
    from sessionward._atomic import defer_syncs, read_capped, sync_after_exit

    defer_syncs()  # Claude Code waits for this process: fsyncs after the answer (_atomic.defer_syncs)
    try:
        raw = read_capped(0, MAX_STDIN_BYTES)  # fd 0, in chunks: no 64 MiB buffer up front
    except OSError as exc:
        sys.stderr.write(f"sessionward hook {argv[0]}: cannot read stdin: {exc}\n")
        return EXIT_FAILED_OPEN
    answer = run_hook(argv[0], raw, defer_watchers=True)
    try:
        if answer.stdout:
            sys.stdout.write(answer.stdout)
            sys.stdout.flush()
        if answer.stderr:
            sys.stderr.write(answer.stderr)
            sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass  # Claude Code went away (a cancelled status line): nothing to tell anyone
    start_deferred_watchers()  # a forked pair's child pays the fsyncs owed, after this process exits
    sync_after_exit()  # or else a child forked for it does (nothing forked, if none are owed)
    return answer.exit_code


def start_deferred_watchers() -> None:
    """Start the watcher pairs a hook run with defer_watchers held back (identity.life), as
    the process's last act: its standard streams go to /dev/null (the answer is out) and the
    pairs are forked. Free when none was: life is not even imported unless the hook did."""
    import sys

    life = sys.modules.get("sessionward.identity.life")
    if life is not None:
        life.start_deferred(exiting=True)
