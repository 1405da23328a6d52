"""Times, paths and lines as people read them; shared by the renderer, the hooks and the guards.
format_age is the one age formatter (a lock's "held for", a session's "up", a claim's "ago")."""

import os


def format_age(seconds: float) -> str:
    """12s, 5m, 3h05m, 2d: short enough for a table cell or a hook's message."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def format_ago(seconds: float) -> str:
    """"just now" under a second, else format_age's "5m ago"."""
    return "just now" if seconds < 1 else f"{format_age(seconds)} ago"


def short_session_id(session_id: str) -> str:
    """A session id as people read it: a long one (Claude's UUIDs) cut to its first 8
    characters, keeping the ".PID" of a session resumed in a second terminal, so the two stay
    apart. Every message a person reads names sessions so (short_session_ids where several
    are shown together); --json keeps the full id; `prune --force` takes either."""
    if len(session_id) <= 12:
        return session_id
    twin = session_id.rfind(".")
    return session_id[:8] + (session_id[twin:] if twin > 8 else "")


def session_label(session_id) -> str:
    """short_session_id of a stored value, "?" when it is missing or not a string."""
    if not isinstance(session_id, str) or not session_id:
        return "?"
    return short_session_id(session_id)


def short_session_ids(ids) -> dict:
    """{id: label} for a set of sessions shown together (a table, a message naming several):
    short_session_id, lengthened to the shortest prefix that tells them apart where two
    share their first 8 characters (then any of them still works with `prune --force`)."""
    groups: dict = {}
    for session_id in dict.fromkeys(ids):
        groups.setdefault(short_session_id(session_id), []).append(session_id)
    labels = {}
    for label, members in groups.items():
        if len(members) == 1:
            labels[members[0]] = label
            continue
        for size in range(9, max(len(m) for m in members) + 1):
            cut = {m: _prefix(m, size) for m in members}
            if len(set(cut.values())) == len(members):
                break
        labels.update(cut)
    return labels


def _prefix(session_id: str, size: int) -> str:
    if len(session_id) <= size + 4:
        return session_id
    twin = session_id.rfind(".")
    return session_id[:size] + (session_id[twin:] if twin > size else "")


def short_path(path: str) -> str:
    """The path with the home directory shown as ~."""
    home = os.path.expanduser("~")
    if home not in ("", "/") and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


def one_line(text: str) -> str:
    """`text` with every character that is not printable shown as its escape: a message
    quoting hostile input (a newline, NEL, an escape sequence, a lone surrogate from
    undecodable bytes) stays one line of valid UTF-8."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
