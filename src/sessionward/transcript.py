"""What Claude Code's own transcript says about one tool call: answered or not, refused, when.

Why: Claude Code runs no hook when its person refuses a permission dialog (seen with 2.1.331
and 2.1.112 in the interactive TUI: after the refusal no Stop, no PostToolUse, no
PostToolUseFailure, no Notification, nothing until the person types the next prompt or
quits, even minutes later). The transcript, though, gets the refusal at once: a "user"
record holding the call's tool_result, its text Claude Code's fixed refusal sentence, with
the record's own ISO time. sessionward.activity reads it to end a "waiting: permission"
whose dialog was answered, and the hooks to date what became of a tool a guard asked about
(sessionward.eventlog's edit/git.not_run and .allowed).

The record, as both versions write it (one JSON object per line, appended; other keys left
out; tests/hooks/payloads/2.1.331/permission/transcript-after-refusal.jsonl is a real one):
  {"type": "user", "timestamp": "2026-12-06T04:14:14.077Z",
   "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_…",
               "is_error": true, "content": "The user doesn't want to proceed with this tool use. …"}]}}
A tool that ran has its output there instead; 2.1.331 also copies the request sent to the
model ("api-request-blob", no time), which is skipped.

find_tool_result() reads the file backwards from its end, by chunks, up to the call's own
tool_use record (its result cannot be before it), and not at all when the file was not
written since `not_before`: a stat while nothing happened, one or two small reads after
(records can be large: 2.1.331 writes a ~100 KB one right after a refusal). It
never raises (an unreadable, missing or foreign file is "not found"). Imports nothing beyond
what the hooks hold (it runs inside a hook at a turn's end, when a guard's ask is pending).
"""

import os

from sessionward import _jsoncodec as jsoncodec

CHUNK_BYTES = 64 * 1024  # read backwards this much at a time
MAX_SCAN_BYTES = 4 * 1024 * 1024  # and no further: a result is among the last records
REFUSAL_START = "The user doesn't want to proceed with this tool use"
MAX_PATH = 4096


class ToolResult:
    """The tool_result of one call: when Claude Code wrote it, and whether it is a refusal."""

    __slots__ = ("at", "refused")

    def __init__(self, at: float, refused: bool) -> None:
        self.at = at
        self.refused = refused


def find_tool_result(path: str | None, tool_use_id: str | None, not_before: float = 0.0) -> ToolResult | None:
    """The result of call `tool_use_id` in the transcript at `path`, or None (not there yet,
    or the file written last before `not_before`, or not readable)."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH or not os.path.isabs(path):
        return None
    if not isinstance(tool_use_id, str) or not tool_use_id or tool_use_id == "?":
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if info.st_mtime < not_before - 1.0:  # 1 s: the clocks of a file system and time.time() differ
            return None
        return _scan_back(fd, info.st_size, tool_use_id.encode("utf-8", "surrogateescape"), info.st_mtime)
    except OSError:
        return None
    finally:
        os.close(fd)


def _scan_back(fd: int, size: int, needle: bytes, mtime: float) -> ToolResult | None:
    """Read the file backwards, CHUNK_BYTES at a time, line by line: the call's result, or
    None once its tool_use line (nothing of it can come before) or MAX_SCAN_BYTES is passed.
    Records can be large (2.1.331 writes a ~100 KB "attachment" right after a refusal)."""
    end = size
    carry = b""  # the start of a line whose beginning is in the chunk before
    while end > 0 and size - end < MAX_SCAN_BYTES:
        start = max(0, end - CHUNK_BYTES)
        data = os.pread(fd, end - start, start) + carry
        end = start
        lines = data.split(b"\n")
        carry = lines.pop(0) if start > 0 else b""
        for line in reversed(lines):
            if needle not in line:
                continue
            if b'"tool_result"' in line:
                found = _result_in(line, needle.decode("utf-8", "surrogateescape"), mtime)
                if found is not None:
                    return found
            elif b'"tool_use"' in line:
                return None  # the call itself: its result is not written yet
    return None


def _result_in(line: bytes, tool_use_id: str, fallback_at: float) -> ToolResult | None:
    try:
        record = jsoncodec.loads(line)
    except (ValueError, RecursionError):
        return None  # the first line of the tail, cut, or a foreign one
    if type(record) is not dict or record.get("type") != "user":
        return None
    message = record.get("message")
    content = message.get("content") if type(message) is dict else None
    if type(content) is not list:
        return None
    for block in content:
        if type(block) is dict and block.get("type") == "tool_result" and block.get("tool_use_id") == tool_use_id:
            at = utc_epoch(record.get("timestamp"))
            return ToolResult(fallback_at if at is None else at, _text_of(block.get("content")).startswith(REFUSAL_START))
    return None


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if type(content) is list:
        for part in content:
            if type(part) is dict and isinstance(part.get("text"), str):
                return part["text"]
    return ""


def utc_epoch(text) -> float | None:
    """Epoch seconds of an ISO 8601 UTC time as the transcript writes it
    ("2026-12-06T04:14:14.077Z"), or None. Computed here: `datetime` is not worth importing
    into a hook for one date."""
    if not isinstance(text, str) or len(text) < 20 or text[4] != "-" or text[10] != "T" or text[-1] != "Z":
        return None
    try:
        year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
        hours, minutes, seconds = int(text[11:13]), int(text[14:16]), float(text[17:-1])
    except ValueError:
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and hours < 24 and minutes < 60 and 0 <= seconds < 61):
        return None
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return days * 86400 + hours * 3600 + minutes * 60 + seconds
