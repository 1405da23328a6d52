"""log: the event history (sessionward.eventlog), filtered, as a table, JSON or JSON lines."""

import os
import sys
import time

from sessionward import eventlog
from sessionward._humanize import format_ago, short_session_ids
from sessionward.cli.render import Output, Style, json_line
from sessionward.errors import BadInput, UsageError

FOLLOW_POLL_S = 0.2
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# How an event is painted on a terminal: what went wrong red, what waits on someone yellow.
_COLOURS = {"died": "31", "denied": "31", "timed_out": "31", "forced": "31", "removed": "31", "cleaned": "33",
            "asked": "33", "waiting": "33", "not_run": "33", "started": "32", "taken": "32", "allowed": "32",
            "taken_over": "32"}
_SHOWN_FIRST = ("lock", "pid", "tool", "target", "how", "reason")
_NOT_SHOWN = {"at", "event", "session", "project", "cwd", "learnt_at"}


def parse_since(text: str, now: float | None = None) -> float:
    """--since: an age ("90s", "10m", "2h", "3d", "1w": that long ago) or an ISO 8601 time
    ("2026-05-01T10:00", local time unless it names its zone); epoch seconds."""
    now = time.time() if now is None else now
    value = text.strip()
    if value[-1:] in _UNITS and value[:-1].replace(".", "", 1).isdigit():
        return now - float(value[:-1]) * _UNITS[value[-1]]
    from datetime import datetime

    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise BadInput(f"invalid --since {text!r}: expected an age such as 10m, 2h, 3d, or an ISO time "
                       "such as 2026-05-01T10:00") from None


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise BadInput(f"invalid --limit {text!r}: expected a positive number of events")
    return int(text)


class Filter:
    """--session, --project, --since. An event names its project when the writer knew it; a
    hook's (edit.asked, ...) names only its session, whose project the session.started
    event told: both count."""

    def __init__(self, session: str | None, project: str | None, since: float | None) -> None:
        self.session = session
        self.project = project
        self.since = since
        self.projects: dict = {}  # session id -> project, learnt from the events read so far

    def __call__(self, record: dict) -> bool:
        sid = record.get("session")
        if isinstance(sid, str) and isinstance(record.get("project"), str):
            self.projects.setdefault(sid, record["project"])
        if self.since is not None and record["at"] < self.since:
            return False
        if self.session and not (isinstance(sid, str) and (sid == self.session or sid.startswith(self.session))):
            return False
        if self.project and (record.get("project") or self.projects.get(sid)) != self.project:
            return False
        return True


def run_log(values: dict) -> Output:
    if values["json"] and values["jsonl"]:
        raise UsageError("log: --json and --jsonl exclude each other")
    if values["follow"] and values["json"]:
        raise UsageError("log: --follow prints events as they come: use --jsonl, not --json (one envelope)")
    since = parse_since(values["since"]) if values["since"] is not None else None
    wanted = Filter(values["session"], values["project"], since)
    events = [record for record in eventlog.read_events() if wanted(record)]
    if values["limit"]:
        events = events[-values["limit"]:]
    if values["jsonl"]:
        sys.stdout.write("".join(json_line(record) for record in events))
        sys.stdout.flush()
    if values["follow"]:
        return _follow(values, wanted, events)
    data = {"events": events, "files": [path for path in eventlog.log_files() if os.path.exists(path)]}

    def lines(style):
        if values["jsonl"]:
            return []
        if not events:
            return ["no events" + (" match" if values["session"] or values["project"] or since else " yet")]
        return event_table(events, style, time.time(), wanted.projects)

    return Output("log", data, lines)


def event_table(events: list, style, now: float, projects: dict | None = None) -> list[str]:
    labels = short_session_ids(r["session"] for r in events if isinstance(r.get("session"), str))
    rows = [event_row(record, style, now, labels, projects) for record in events]
    return style.table(["WHEN", "SESSION", "PROJECT", "EVENT", "WHAT"], rows)


def event_row(record: dict, style, now: float, labels: dict | None = None, projects: dict | None = None) -> list[str]:
    """One event as table cells: on a terminal with its age and colour, short ids and ~
    paths; piped with its ISO time and full ids (what a script wants). `projects`: session id
    -> project, for the events whose writer knew only the session (a hook's), as --project
    counts them (Filter.projects)."""
    sid = record.get("session")
    if style.tty:
        when = format_ago(now - record["at"])
        session = (labels or {}).get(sid, sid) if isinstance(sid, str) else "-"
    else:
        when = _iso(record["at"])
        session = sid if isinstance(sid, str) else "-"
    event = str(record["event"])
    colour = _COLOURS.get(event.partition(".")[2])
    shown = style.paint(event, colour) if colour else event
    project = record.get("project") or (projects or {}).get(sid)
    return [when, session, str(project or "-"), shown, describe(record, style)]


def describe(record: dict, style) -> str:
    """The rest of the event in one cell: the lock, pid, tool, target, how and reason first, then
    every other key as "key value"."""
    parts: list[str] = []
    for key in _SHOWN_FIRST:
        value = record.get(key)
        if value is None:
            continue
        if key == "target" and isinstance(value, str) and value.startswith("/"):
            value = style.path(value)
        after_label = bool(parts) and parts[-1].endswith(":")  # "pid 12085: process 12085 is gone", no dot between
        parts.append(f"{value}:" if key == "lock" else f"pid {value}:" if key == "pid"
                     else f"· {value}" if key == "reason" and parts and not after_label else str(value))
    for key, value in record.items():
        if key in _NOT_SHOWN or key in _SHOWN_FIRST or value is None:
            continue
        if key == "path" and isinstance(value, str):
            value = style.path(value)
        parts.append(f"(told by its {value})" if key == "check" else f"{key} {value}")
    return " ".join(parts)


def _iso(epoch: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def _follow(values: dict, wanted: Filter, shown: list) -> Output:
    """Print the events that match as they are appended, until interrupted: polls the current
    file every FOLLOW_POLL_S; across a rotation it reads the old file to its end first."""
    style = Style.for_stream(sys.stdout)
    out = sys.stdout
    if not values["jsonl"]:
        text = event_table(shown, style, time.time(), wanted.projects) if shown else []
        if text:
            out.write("\n".join(text) + "\n")
            out.flush()
    path = os.path.join(eventlog.log_dir(), eventlog.CURRENT)
    handle, pending = _open(path, to_end=True), b""
    try:
        while True:
            chunk = handle.read() if handle else b""
            if chunk:
                pending += chunk
                *whole, pending = pending.split(b"\n")
                for raw in whole:
                    record = eventlog.parse_line(raw.decode("utf-8", "replace"))
                    if record is not None and wanted(record):
                        out.write(json_line(record) if values["jsonl"]
                                  else "  ".join(event_row(record, style, time.time(), None, wanted.projects)) + "\n")
                out.flush()
                continue
            if handle is None or _rotated(handle, path):
                if handle:
                    handle.close()
                handle, pending = _open(path, to_end=False), b""
                if handle:
                    continue
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        pass
    finally:
        if handle:
            handle.close()
    return Output("log", {"events": shown}, None)


def _open(path: str, to_end: bool):
    try:
        handle = open(path, "rb")
    except OSError:
        return None
    if to_end:
        handle.seek(0, os.SEEK_END)
    return handle


def _rotated(handle, path: str) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False
