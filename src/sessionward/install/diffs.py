"""What --dry-run shows: a unified diff per file (difflib: install is not a hot path)."""

import difflib

NO_NEWLINE = "\\ No newline at end of file\n"


BINARY_PROBE_BYTES = 8000  # as git: a NUL byte among the first 8000 makes a file binary


def unified_diff(path: str, old: bytes | None, new: bytes | None) -> list[str]:
    """The lines of `diff -u` from `old` to `new` (None: the file does not exist); for a binary
    file (the hooks' bytecode pack), diff's one line, "Binary files A and B differ"."""
    if _is_binary(old) or _is_binary(new):
        if old == new:
            return []
        return [f"Binary files {'/dev/null' if old is None else path} and {'/dev/null' if new is None else path} differ"]
    before = _lines(old)
    after = _lines(new)
    text = "".join(
        difflib.unified_diff(
            before, after, "/dev/null" if old is None else path, "/dev/null" if new is None else path
        )
    )
    return text.split("\n")[:-1] if text else []


def _lines(data: bytes | None) -> list[str]:
    if data is None:
        return []
    # split on "\n" only: str.splitlines would also split at \r, \x0c or U+2028 inside a line
    lines = [line + "\n" for line in data.decode("utf-8", errors="replace").split("\n")]
    last = lines.pop()
    if last != "\n":
        # no final newline: the marker rides on the last line, so difflib prints it right after
        lines.append(last + NO_NEWLINE)
    return lines


def _is_binary(data: bytes | None) -> bool:
    return data is not None and b"\0" in data[:BINARY_PROBE_BYTES]
