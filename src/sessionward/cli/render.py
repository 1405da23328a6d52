"""The one renderer: every command returns an Output; this module prints it.

  --json      a versioned envelope on stdout, for successes and failures alike:
              {"schema": "sessionward/1", "command": ..., "ok": ..., "exit_code": ...,
               "result": {...}} or {..., "error": {"code", "message", "hint"}}
  terminal    aligned tables, colour (unless NO_COLOR or TERM=dumb), home shortened to ~
  piped       the same text without colour; tables as tab-separated lines with a header
Notices (a repair, a sweep of dead sessions: `notices` and `remarks`) go to stderr, one line
each, so that piped stdout holds only the command's data; --json carries them in the envelope
(notices) or in the result (what remarks say, such as "swept").
"""

import os
import sys
import time

from sessionward import _jsoncodec as jsoncodec
from sessionward._humanize import format_age, one_line, short_path

JSON_SCHEMA = "sessionward/1"


class Output:
    """What a command produced: `data` for --json, `lines(style)` for people."""

    __slots__ = ("command", "data", "lines", "exit_code", "notices", "remarks")

    def __init__(self, command: str, data: dict, lines=None, exit_code: int = 0, notices=None, remarks=None) -> None:
        self.command = command
        self.data = data
        self.lines = lines or (lambda style: [])  # type: ignore[var-annotated]
        self.exit_code = exit_code
        self.notices = list(notices or [])
        self.remarks = list(remarks or [])  # for people, on stderr; --json has them in `data`


class Style:
    """How to print for the stream at hand."""

    __slots__ = ("tty", "color")

    def __init__(self, tty: bool, color: bool) -> None:
        self.tty = tty
        self.color = color

    @classmethod
    def for_stream(cls, stream) -> "Style":
        tty = bool(getattr(stream, "isatty", None) and stream.isatty())
        color = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
        return cls(tty, color)

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self.paint(text, "1")

    def state(self, text: str, state: str | None) -> str:
        """An activity cell, painted by its state: waiting (for the person) yellow, busy green,
        idle and ended dim."""
        code = {"waiting": "1;33", "busy": "32", "idle": "2", "ended": "2"}.get(state or "")
        return self.paint(text, code) if code else text

    def level(self, level: str) -> str:
        label = {"strong": "STRONG WARNING", "warning": "WARNING", "info": "info"}[level]
        return self.paint(label, {"strong": "1;31", "warning": "1;33", "info": "2"}[level])

    def path(self, path: str) -> str:
        return short_path(path) if self.tty else path

    def table(self, headers: list[str], rows: list[list[str]]) -> list[str]:
        if not self.tty:
            return ["\t".join(headers)] + ["\t".join(row) for row in rows]
        widths = [len(h) for h in headers]
        for row in rows:
            widths = [max(w, _visible_len(cell)) for w, cell in zip(widths, row)]
        def fmt(row):
            cells = [cell + " " * (w - _visible_len(cell)) for cell, w in zip(row, widths)]
            return "  ".join(cells).rstrip()
        return [self.bold(fmt(headers))] + [fmt(row) for row in rows]


def _visible_len(text: str) -> int:
    if "\033[" not in text:
        return len(text)
    visible, skipping = 0, False
    for char in text:
        if char == "\033":
            skipping = True
        elif skipping and char == "m":
            skipping = False
        elif not skipping:
            visible += 1
    return visible


def age_of(epoch: float, now: float | None = None) -> str:
    return format_age((time.time() if now is None else now) - epoch)


def _shown(line: str) -> str:
    """one_line(line), keeping the tabs of piped tables and the colour codes Style.paint put
    there (ESC [ digits ; m)."""
    if line.isprintable():
        return line
    if "\t" in line:
        return "\t".join(_shown(cell) for cell in line.split("\t"))
    if "\033[" not in line:
        return one_line(line)
    parts = line.split("\033[")
    out = [one_line(parts[0])]
    for part in parts[1:]:
        code, m, rest = part.partition("m")
        if m and code and all(c.isdigit() or c == ";" for c in code):
            out.append("\033[" + code + "m" + one_line(rest))
        else:
            out.append(one_line("\033[" + part))
    return "".join(out)


def json_line(document: dict) -> str:
    """One JSON line that is valid UTF-8 whatever the stream's error handler: a lone
    surrogate (from undecodable bytes in argv) becomes its JSON escape, inside its string."""
    return jsoncodec.dumps_line(document) + "\n"


def emit(output: Output, as_json: bool, stdout=None, stderr=None) -> int:
    """Print `output`; return its exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if as_json:
        envelope = {
            "schema": JSON_SCHEMA,
            "command": output.command,
            "ok": output.exit_code == 0,
            "exit_code": output.exit_code,
            "result": output.data,
            "notices": [str(n) for n in output.notices],
        }
        stdout.write(json_line(envelope))
    else:
        for notice in output.notices + output.remarks:
            stderr.write(one_line(f"sessionward: {notice}") + "\n")
        text = output.lines(Style.for_stream(stdout))
        if text:  # each line one line, whatever path or name from the input it quotes
            stdout.write("\n".join(_shown(line) for line in text) + "\n")
    stdout.flush()
    return output.exit_code


def emit_error(command: str, error, as_json: bool, stdout=None, stderr=None) -> int:
    """Print a SessionwardError as one line (or a JSON envelope); return its exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if as_json:
        envelope = {
            "schema": JSON_SCHEMA,
            "command": command,
            "ok": False,
            "exit_code": error.exit_code,
            "error": {"code": error.code, "message": error.message, "hint": error.hint},
        }
        stdout.write(json_line(envelope))
        stdout.flush()
    else:
        stderr.write(one_line(f"sessionward: {error}") + "\n")
    return error.exit_code
