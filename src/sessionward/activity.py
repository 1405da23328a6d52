"""Activity: what each Claude Code session is doing now, from its hook events alone.

Purpose: let a person running many sessions see which one needs them (`sessionward watch`),
without scraping any screen. Every hook sessionward installs notes its event here, from the
payload alone, before it does its own work (hooks.run_hook):

  event             state     what else
  SessionStart      idle      since now (no prompt yet)
  UserPromptSubmit  busy      since now: a prompt is being answered
  PreToolUse        busy      the tool now running and what on (file, command), since now;
                              a deny of ours clears it (the tool does not run), an ask of
                              ours is "waiting" for permission (Claude Code's dialog is up)
  PostToolUse       busy      that tool finished (only the tool_use_id that started it)
  Notification      waiting   permission (a permission dialog: "permission_prompt", or a
                              message that says so), input (Claude Code waits for the
                              person's next prompt: "idle_prompt", or an MCP server's
                              question: "elicitation_dialog"); other notifications change nothing
  Stop              idle      since now: the turn ended
  SessionEnd        ended     since now, with Claude Code's reason
An ask of ours also records the tool_use_id asked about ("asked"), kept until that tool's
PostToolUse (the person allowed it) or the turn's end (it never ran): hooks.run_hook writes
that outcome to the event log (sessionward.eventlog).
A busy or waiting state keeps its `since` from the state it continues (busy since the prompt,
whatever tools ran since; waiting for input since the turn ended). What it cannot see: only
hooked tools are named (Edit, Write, MultiEdit, NotebookEdit, Bash; Read after the fact),
others show as busy; a permission dialog the person rejected leaves "waiting" until the next
event (Claude Code runs no hook then); a session killed without SessionEnd keeps its last
state here, but the registry sweeps it, and `watch` only shows sessions it knows alive, or
ended ones.

Files, under STATE/sessionward/activity/ (0700, made on first use):
  <session_id>.json   one JSON object on one line (FIELDS), padded with spaces to
                      RECORD_BYTES and overwritten in place by one pwrite (see _write). Not
                      fsynced: it is volatile by nature (the next event
                      rewrites it, within seconds while a session works), a `kill -9` cannot
                      lose it (the page cache outlives the process), and a power cut only
                      shows a stale state until that next event; an fsync would cost every
                      hook a disk flush for nothing that lasts.
Cost: one read of the previous state (a few hundred bytes) and one small write per event,
nothing imported beyond what the hooks already hold (see tests/hooks/test_activity.py and
bench/hooks_bench.py).

note_event() never raises: activity is worth less than the hook's own work.
remove_stale() removes the files of sessions gone for longer than STALE_S (watch calls it).
"""

import os
import time

from sessionward import _jsoncodec as jsoncodec
from sessionward import paths

ACTIVITY_DIR_NAME = "activity"
SUFFIX = ".json"
BUSY = "busy"
WAITING = "waiting"
IDLE = "idle"
ENDED = "ended"
STATES = (WAITING, BUSY, IDLE, ENDED)  # the order a person wants them in: who needs me first
WAIT_PERMISSION = "permission"
WAIT_INPUT = "input"
# Claude Code's notification_type values (hooks reference, "Notification"), and what they mean here.
NOTIFICATION_WAITS = {"permission_prompt": WAIT_PERMISSION, "idle_prompt": WAIT_INPUT, "elicitation_dialog": WAIT_INPUT}
FIELDS = ("state", "since", "at", "event", "tool", "target", "tool_use_id", "tool_since", "wait", "message", "reason",
          "cwd", "asked")  # asked: the tool_use_id our PreToolUse asked about, until it ran or the turn ended
MAX_TEXT = 160  # a target or message, cut: one table cell, and the whole record inside RECORD_BYTES
MAX_CWD = 1024
RECORD_BYTES = 2048  # every record padded to this length (see _write), at most ~1.8 KB of fields
STALE_S = 3600.0  # the file of a session that is not live any more goes after this long
TARGET_KEYS = ("file_path", "notebook_path", "command", "pattern", "url", "query", "description")


def activity_dir(state_dir: str | None = None) -> str:
    return os.path.join(state_dir or paths.state_dir(), paths.PRIVATE_DIR_NAME, ACTIVITY_DIR_NAME)


def _file_of(session_id: str, state_dir: str | None = None) -> str | None:
    # Ids come from Claude Code's payload (ASCII letters, digits, "-_.:"): one leading "." could
    # still name ".." or a hidden temp, so such an id gets no file.
    if not session_id or session_id.startswith(".") or "/" in session_id:
        return None
    return os.path.join(activity_dir(state_dir), session_id + SUFFIX)


# -- writing (the hot path) ---------------------------------------------------------------------


def note_event(event: str, session_id: str | None, payload: dict, now: float | None = None) -> dict | None:
    """Record what `event` (its payload as Claude Code sent it) says the session does now;
    return the activity before it (None: unknown), for the hook to compare."""
    path = _file_of(session_id) if session_id else None
    if path is None:
        return None
    previous = None
    try:
        previous = read_activity_file(path)
        current = next_activity(event, payload, previous, time.time() if now is None else now)
        if current is not None:
            if isinstance(payload.get("cwd"), str):
                current["cwd"] = payload["cwd"][:MAX_CWD]  # where an ended session was, once its record is gone
            _write(path, current)
    except Exception:  # noqa: BLE001 - never in the hook's way (module docstring)
        pass
    return previous


def note_decision(session_id: str | None, payload: dict, answer: dict, now: float | None = None) -> None:
    """After PreToolUse answered: a deny means the tool will not run; an ask means Claude
    Code now shows its permission dialog, whatever its Notification hook says (it does not
    fire for every dialog)."""
    decision = ((answer or {}).get("hookSpecificOutput") or {}).get("permissionDecision")
    path = _file_of(session_id) if session_id else None
    if decision not in ("deny", "ask") or path is None:
        return
    try:
        current = read_activity_file(path) or {}
        now = time.time() if now is None else now
        if decision == "deny":
            current.update(state=BUSY, tool=None, target=None, tool_use_id=None, tool_since=None, at=now)
        else:
            reason = answer["hookSpecificOutput"].get("permissionDecisionReason")
            current.update(state=WAITING, wait=WAIT_PERMISSION, since=now, at=now, message=_cut(reason),
                           asked=_cut(payload.get("tool_use_id")) or "?")
        _write(path, current)
    except Exception:  # noqa: BLE001 - never in the hook's way
        pass


def next_activity(event: str, payload: dict, previous: dict | None, now: float) -> dict | None:
    """The activity after `event`, given the one before (None: unknown); None: unchanged.
    Pure: the table of the module docstring."""
    prev = previous or {}
    state = prev.get("state")
    if event == "SessionStart":
        return _new(IDLE, now, event)
    if event == "UserPromptSubmit":
        return _new(BUSY, now, event)
    if event == "PreToolUse":
        tool = payload.get("tool_name")
        tool_input = payload.get("tool_input")
        current = _new(BUSY, prev.get("since", now) if state == BUSY else now, event)
        current.update(tool=_cut(tool) if isinstance(tool, str) else None,
                       target=target_of(tool_input) if type(tool_input) is dict else None,
                       tool_use_id=_cut(payload.get("tool_use_id")), tool_since=now, asked=prev.get("asked"))
        return current
    if event == "PostToolUse":
        current = dict(prev, state=BUSY, at=now, event=event)
        if state != BUSY:
            current["since"] = now
        finished = payload.get("tool_use_id")
        if not prev.get("tool_use_id") or not finished or prev.get("tool_use_id") == finished:
            current.update(tool=None, target=None, tool_use_id=None, tool_since=None)  # parallel calls: only its own
        if prev.get("asked") in (finished, "?"):
            current["asked"] = None  # the tool we asked about ran: the person allowed it
        current.update(wait=None, message=None)
        return current
    if event == "Notification":
        wait = wait_of(payload)
        if wait is None:
            return None  # auth_success and the like: nothing the person must do
        since = prev.get("since", now) if (state == IDLE and wait == WAIT_INPUT) or (
            state == WAITING and prev.get("wait") == wait) else now
        current = dict(prev, state=WAITING, since=since, at=now, event=event, wait=wait,
                       message=_cut(payload.get("message")))
        if wait == WAIT_INPUT:
            current.update(tool=None, target=None, tool_use_id=None, tool_since=None)
        return current
    if event == "Stop":
        return _new(IDLE, now, event)
    if event == "SessionEnd":
        current = _new(ENDED, now, event)
        current["reason"] = _cut(payload.get("reason"))
        return current
    return None


def wait_of(payload: dict) -> str | None:
    """What a Notification asks the person for: WAIT_PERMISSION, WAIT_INPUT or None. By its
    notification_type; without one (an older Claude Code), by its message ("Claude needs your
    permission to use Bash", "Claude is waiting for your input")."""
    kind = payload.get("notification_type")
    if isinstance(kind, str) and kind:
        return NOTIFICATION_WAITS.get(kind)
    message = payload.get("message")
    if not isinstance(message, str):
        return None
    lowered = message.lower()
    if "permission" in lowered:
        return WAIT_PERMISSION
    if "waiting for your input" in lowered:
        return WAIT_INPUT
    return None


def target_of(tool_input: dict) -> str | None:
    """What a tool works on, in one short line: its file, its command's first line, ..."""
    for key in TARGET_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return _cut(value.strip().split("\n", 1)[0])
    return None


def _new(state: str, since: float, event: str) -> dict:
    return {"state": state, "since": since, "at": since, "event": event}


def _cut(text) -> str | None:
    if not isinstance(text, str):
        return None
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _write(path: str, current: dict) -> None:
    """Overwrite the file in place with the record padded to RECORD_BYTES: one pwrite, no
    truncation, no rename (a rename over a file costs ext4 a data flush: about 2 ms here, a
    tenth of a hook's whole budget). Every record has one length, so nothing of an older one
    is left behind; a reader racing the write could see a mix of two records, which does not
    parse (read as "unknown" until the next read), never a wrong state."""
    from sessionward.status_stamp import open_creating_dir

    record = {key: current.get(key) for key in FIELDS if current.get(key) is not None}
    data = jsoncodec.dumps_line(record).encode("utf-8", "surrogateescape")
    if len(data) >= RECORD_BYTES:
        return  # cannot happen with the cuts above; never a torn record
    fd = open_creating_dir(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.pwrite(fd, data + b" " * (RECORD_BYTES - 1 - len(data)) + b"\n", 0)
    finally:
        os.close(fd)


# -- reading ------------------------------------------------------------------------------------


def read_activity_file(path: str) -> dict | None:
    from sessionward.status_stamp import read_first_line

    line = read_first_line(path)
    if not line:
        return None
    try:
        found = jsoncodec.loads(line.rstrip(" ").encode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):
        return None
    if type(found) is not dict or found.get("state") not in STATES or type(found.get("since")) not in (int, float):
        return None
    return found


def read_activity(session_id: str, state_dir: str | None = None) -> dict | None:
    """One session's activity, or None (no hook event seen, or not a Claude Code session)."""
    path = _file_of(session_id, state_dir)
    return read_activity_file(path) if path else None


def read_all_activity(state_dir: str | None = None) -> dict:
    """{session_id: activity} for every session with an activity file. Takes no lock."""
    directory = activity_dir(state_dir)
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    found = {}
    for name in names:
        if name.endswith(SUFFIX) and not name.startswith("."):
            current = read_activity_file(os.path.join(directory, name))
            if current is not None:
                found[name[: -len(SUFFIX)]] = current
    return found


def remove_stale(live_ids, now: float | None = None, state_dir: str | None = None) -> int:
    """Remove the files of sessions not in `live_ids` whose last event is older than
    STALE_S (and stray temps as old); returns how many went."""
    now = time.time() if now is None else now
    directory = activity_dir(state_dir)
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    live = set(live_ids)
    removed = 0
    for name in names:
        if name.endswith(SUFFIX) and name[: -len(SUFFIX)] in live:
            continue
        path = os.path.join(directory, name)
        try:
            if now - os.lstat(path).st_mtime > STALE_S:
                os.unlink(path)
                removed += 1
        except OSError:
            pass
    return removed


def describe(current: dict | None, now: float) -> str:
    """One cell: "waiting: permission (Bash: rm -rf build) 12s", "busy: Edit app.py 3s",
    "busy 2m", "idle 5m", "ended 1m", or "-" when unknown."""
    from sessionward._humanize import format_age, short_path

    if not current:
        return "-"
    state = current["state"]
    age = format_age(now - current["since"])
    if state == WAITING:
        what = current.get("wait") or "?"
        tool = current.get("tool")
        if what == WAIT_PERMISSION and tool:
            what += f" for {tool}"
        return f"waiting: {what} {age}"
    if state == BUSY and current.get("tool"):
        target = current.get("target")
        if target and target.startswith("/"):
            target = short_path(target)
        shown = f"{current['tool']} {target}" if target else current["tool"]
        return f"busy: {shown} {format_age(now - current.get('tool_since', current['since']))}"
    return f"{state} {age}"
