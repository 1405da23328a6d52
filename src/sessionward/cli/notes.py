"""note append | write: shared notes written atomically, one writer at a time (sessionward.notes).

The text comes from TEXT, stdin, or --text-file FILE (sessionward.drafts), one of them."""

import sys

from sessionward import notes
from sessionward.cli.render import Output
from sessionward.errors import BadInput


def _text(values: dict, what: str) -> bytes:
    """TEXT when given (and not "-"), else all of stdin: the way to prefer, as an argument is
    visible to every local user in /proc/PID/cmdline while we run (TEXT stays for
    compatibility). A terminal on stdin is refused: a forgotten argument must not leave the
    command waiting for input nobody types."""
    given = values.get("text")
    if given is not None and given != "-":
        return given
    if sys.stdin is None or sys.stdin.isatty():
        raise BadInput(f"note {what}: give the text on stdin (a heredoc or a pipe), or as an argument")
    from sessionward._atomic import read_capped

    try:
        return read_capped(sys.stdin.fileno(), notes.MAX_NOTE_BYTES)  # notes refuses more
    except OSError as exc:
        raise BadInput(f"note {what}: cannot read stdin: {exc.strerror or exc}") from None


def _text_file(values: dict) -> str | None:
    """--text-file FILE, which replaces both TEXT and stdin."""
    if values["text_file"] is not None and values.get("text") is not None:
        raise BadInput("note: give the text as TEXT, on stdin or with --text-file, not two of them")
    return values["text_file"]


def _timeout(values: dict) -> float:
    return notes.NOTE_LOCK_TIMEOUT_S if values["timeout"] is None else values["timeout"]


def _output(command: str, verb: str, written: notes.NoteWritten, quiet: bool) -> Output:
    def lines(style):
        if quiet:
            return []
        waited = f" after waiting {written.waited_s:.1f} s" if written.waited_s >= 0.1 else ""
        removed = written.text_file and written.text_file["removed"]
        draft = f"; removed {style.path(written.text_file['path'])}" if removed else ""
        return [f"{verb} {written.written} bytes to {style.path(written.path)}{waited} "
                f"(now {written.size} bytes, sha256 {written.sha256[:12]}){draft}"]

    return Output(command, written.to_json(), lines)


def run_append(values: dict) -> Output:
    if _text_file(values) is not None:
        written = notes.append_note_from_file(values["path"], values["text_file"], _timeout(values))
    else:
        written = notes.append_note(values["path"], _text(values, "append"), _timeout(values))
    return _output("note append", "appended", written, values["quiet"])


def run_write(values: dict) -> Output:
    if _text_file(values) is not None:
        written = notes.write_note_from_file(values["path"], values["text_file"], values["expect_sha256"],
                                             _timeout(values))
    else:
        written = notes.write_note(values["path"], _text(values, "write"), values["expect_sha256"], _timeout(values))
    return _output("note write", "wrote", written, values["quiet"])
