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
  PermissionRequest waiting   permission, since now: Claude Code opens its permission dialog
                              (for any tool) right after this hook, with the tool and what on
                              from its payload. It names no tool_use_id: the PreToolUse just
                              before, for the same tool and target, lends its own (a refusal
                              is found by it, below); a wait already noted for that call (an
                              ask of ours) keeps its start and message
  Notification      waiting   permission (a permission dialog: "permission_prompt", or a
                              message that says so), input (Claude Code waits for the
                              person's next prompt: "idle_prompt", or an MCP server's
                              question: "elicitation_dialog"); other notifications change nothing.
                              Claude Code sends the permission one only once its dialog has
                              been up ~6 s (and never when the person answered sooner), and
                              its message names no tool ("Claude needs your permission"): a
                              wait already noted (PermissionRequest, our ask) keeps its start
                              and message; without one (an install from before the
                              PermissionRequest hook) the wait counts from the tool's PreToolUse
  Stop              idle      since now: the turn ended
  SessionEnd        ended     since now, with Claude Code's reason
An ask of ours also records the tool_use_id asked about ("asked"), kept until that tool's
PostToolUse (the person allowed it) or the turn's end (it never ran): hooks.run_hook writes
that outcome to the event log (sessionward.eventlog).
A busy or waiting state keeps its `since` from the state it continues (busy since the prompt,
whatever tools ran since; waiting for input since the turn ended). Every later event of the
session ends a "waiting" (a prompt, a tool, a turn's end, the session's end), except a
Notification that itself says the session waits.

A refused permission dialog: Claude Code runs no hook at all when its person refuses (no Stop,
no PostToolUse, no Notification, not even the idle one: nothing until the next prompt or the
session's end, seen minutes later with 2.1.331 and 2.1.112), and the turn is over. The file
still says "waiting: permission" then (or, without the PermissionRequest hook, "busy" with
the tool, when the person refused before Claude Code's Notification came, ~6 s after the
dialog opened). The readers
(read_activity, read_all_activity, so `watch` and `list`) therefore look at what Claude Code
wrote into its transcript since the wait began (sessionward.transcript: a stat, and a small
read once it changed), also for a tool busy for SETTLE_AFTER_S: that tool's result there
means the dialog was answered, and the state shown is "idle" since that result's own time,
event REFUSED when it was Claude Code's refusal. So between the refusal and the next event
`watch` shows "idle: refused <tool>", within a poll of the transcript (overview.
transcript_token), and the next event writes its own state as usual. Without a transcript
(none named, unreadable) it shows "waiting: permission" until that next event.

What it cannot see: only hooked tools are named while they run (Edit, Write, MultiEdit,
NotebookEdit, Bash; Read after the fact), others show as busy (but a permission dialog names
any tool: PermissionRequest fires for all; a refusal of one with no PreToolUse of ours has no
tool_use_id to find in the transcript, so it shows "waiting" until the next event); a tool the person allowed shows "waiting" while it
runs (Claude Code tells nothing until its PostToolUse, nor writes its transcript); a session
killed without SessionEnd keeps its last state here, but the registry sweeps it, and `watch`
only shows sessions it knows alive, or ended ones. An ended record carries the project,
worktree and branch the session had (note_ended, from its SessionEnd hook), so the view
still names them once the registry's record is gone.

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

from sessionward import _jsoncodec as jsoncodec, paths

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
          "cwd", "asked",  # asked: the tool_use_id our PreToolUse asked about, until it ran or the turn ended
          "transcript",  # Claude Code's transcript_path: where a refused dialog shows (module docstring)
          "project", "worktree", "branch")  # of an ended session (note_ended)
REFUSED = "refused"  # the `event` of a state the readers derived from a refusal in the transcript
MAX_TEXT = 160  # a target or message, cut: one table cell, and the whole record inside RECORD_BYTES
MAX_CWD = 1024  # also a transcript path, a worktree
RECORD_BYTES = 4096  # every record padded to this length (see _write), at most ~3.7 KB of fields
SETTLE_AFTER_S = 1.0  # a tool busy this long may be a dialog refused early: the readers look (settled)
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
            transcript = payload.get("transcript_path")
            if isinstance(transcript, str) and len(transcript) <= MAX_CWD:
                current["transcript"] = transcript
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
    if event == "PermissionRequest":
        tool = payload.get("tool_name")
        tool_input = payload.get("tool_input")
        tool = _cut(tool) if isinstance(tool, str) else None
        target = target_of(tool_input) if type(tool_input) is dict else None
        current = dict(prev, state=WAITING, since=now, at=now, event=event, wait=WAIT_PERMISSION, message=None)
        if (prev.get("tool"), prev.get("target")) == (tool, target) and prev.get("tool_since"):
            if state == WAITING and prev.get("wait") == WAIT_PERMISSION:  # our ask, noted at its PreToolUse
                current.update(since=prev.get("since", now), message=prev.get("message"))
        else:  # no PreToolUse of ours for this call (a tool not hooked): nothing of another call is kept
            current.update(tool=tool, target=target, tool_use_id=None, tool_since=now)
        return current
    if event == "Notification":
        wait = wait_of(payload)
        if wait is None:
            return None  # auth_success and the like: nothing the person must do
        same_wait = state == WAITING and prev.get("wait") == wait
        if (state == IDLE and wait == WAIT_INPUT) or same_wait:
            since = prev.get("since", now)
        elif state == BUSY and wait == WAIT_PERMISSION and prev.get("tool_since"):
            since = prev["tool_since"]  # no PermissionRequest noted: the dialog opened at the PreToolUse
        else:
            since = now
        message = prev.get("message") if same_wait and prev.get("message") else _cut(payload.get("message"))
        current = dict(prev, state=WAITING, since=since, at=now, event=event, wait=wait, message=message)
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
    """One session's activity, or None (no hook event seen, or not a Claude Code session);
    a permission dialog answered since is shown as answered (settled)."""
    path = _file_of(session_id, state_dir)
    return settled(read_activity_file(path)) if path else None


def settled(current: dict | None, now: float | None = None) -> dict | None:
    """`current`, or when it waits for permission (or is busy with a tool for SETTLE_AFTER_S:
    a dialog refused before Claude Code's Notification came) and Claude Code's transcript
    already holds that tool's result (sessionward.transcript), the state after that answer:
    idle since then, event REFUSED when it was a refusal (no hook tells; module docstring);
    busy when the tool ran (its PostToolUse comes next)."""
    if not current:
        return current
    state = current.get("state")
    began = current.get("tool_since") or current["since"]
    if state == WAITING and current.get("wait") == WAIT_PERMISSION:
        pass
    elif not (state == BUSY and current.get("tool_use_id")
              and (time.time() if now is None else now) - began >= SETTLE_AFTER_S):
        return current
    from sessionward.transcript import find_tool_result

    found = find_tool_result(current.get("transcript"), current.get("tool_use_id") or current.get("asked"), began)
    if found is None:
        return current
    answered = dict(current, wait=None, message=None, since=found.at, at=found.at)
    if found.refused:
        answered.update(state=IDLE, event=REFUSED)  # the tool stays named: "idle: refused Bash"
    else:
        answered.update(state=BUSY, event="PostToolUse", tool=None, target=None, tool_use_id=None, tool_since=None)
    return answered


def note_ended(session_id: str | None, record: dict) -> None:
    """Keep the project, worktree and branch of `record` (the registry's, just removed) with
    the session's ended state, for the views that show it once the record is gone. Never
    raises."""
    path = _file_of(session_id) if session_id else None
    if path is None:
        return
    try:
        current = read_activity_file(path)
        if current is None or current.get("state") != ENDED:
            return
        for key in ("project", "worktree", "branch"):
            if isinstance(record.get(key), str):
                current[key] = record[key][:MAX_CWD]
        _write(path, current)
    except Exception:  # noqa: BLE001 - never in the hook's way
        pass


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
            current = settled(read_activity_file(os.path.join(directory, name)))
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
    """One cell: "waiting: permission for Bash rm -rf build 12s", "busy: Edit app.py 3s",
    "busy 2m", "idle 5m", "ended 1m", or "-" when unknown."""
    from sessionward._humanize import format_age, short_path

    if not current:
        return "-"
    state = current["state"]
    age = format_age(now - current["since"])
    if state == IDLE and current.get("event") == REFUSED:
        return f"idle: refused {current.get('tool') or 'a tool'} {age}"
    if state == WAITING:
        what = current.get("wait") or "?"
        if what == WAIT_PERMISSION and current.get("tool"):
            what += f" for {_tool_and_target(current, short_path)}"
        return f"waiting: {what} {age}"
    if state == BUSY and current.get("tool"):
        return f"busy: {_tool_and_target(current, short_path)} {format_age(now - current.get('tool_since', current['since']))}"
    return f"{state} {age}"


def _tool_and_target(current: dict, short_path) -> str:
    """"Bash make", "Edit ~/app.py": the tool, and what on when known."""
    target = current.get("target")
    if target and target.startswith("/"):
        target = short_path(target)
    return f"{current['tool']} {target}" if target else current["tool"]
