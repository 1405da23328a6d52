"""Where unexpected errors go: their traceback into STATE/sessionward/errors.log, so the
person sees one line (naming the log) and never a traceback. Used by the CLI's top-level
handler and by the hooks, which must fail open with one line."""

import os


def log_traceback(what: str, error: BaseException) -> str:
    """Append the current traceback to the error log; return how to find it, for the one line."""
    import traceback

    from sessionward import paths

    where = paths.error_log_path()
    try:
        paths.ensure_private_dir()
        fd = os.open(where, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "a") as log:
            log.write(f"--- sessionward {what}: {error!r}\n{traceback.format_exc()}\n")
        return f"traceback in {where}"
    except Exception:  # noqa: BLE001 - reporting must not fail in turn
        return "set SESSIONWARD_DEBUG=1 to see the traceback"
