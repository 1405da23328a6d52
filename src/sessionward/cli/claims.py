"""claim take: the command line over sessionward.claims.take_over.

Run by the model in Claude Code's Bash tool after the edit guard stopped an edit of a file
another live session edited recently (its reason says to). The PreToolUse hook asks the
person first, naming that session (sessionward.guards.check_take_over), so this runs on
their word; it then takes the file over for the calling session, whose next edit goes ahead.
"""

import os
import time

from sessionward import claims
from sessionward.cli.render import Output
from sessionward.guards import describe_claimant, standing_edits
from sessionward.identity import describe_checkout, resolve_owner, resolve_session_id


def run_take(values: dict) -> Output:
    from sessionward._jsoncodec import require_utf8
    from sessionward.config import load_config
    from sessionward.errors import BadInput

    given = values["path"]
    if not given or "\0" in given:
        raise BadInput("the path is empty or holds a NUL byte")
    require_utf8(given, "path")  # a claim is stored as UTF-8 JSON
    owner = resolve_owner(values.get("pid"), shell_pid=values.get("shell_pid"))
    cwd = os.getcwd()
    path = os.path.realpath(os.path.join(cwd, given))  # as the hooks key a file
    now = time.time()
    standing = standing_edits(path, owner, load_config(), now)
    claim = claims.take_over(path, owner=owner, session_id=resolve_session_id(values.get("session")),
                             checkout=describe_checkout(cwd), now=now)
    data = {"path": path, "taken_at": claim["taken"], "from": [c["session"] for c in standing],
            "owner": claim["owner"]}

    def lines(style):
        if not standing:
            return [f"no other session's recent edit stands on {style.path(path)}: this session may edit it"]
        named = "; ".join(describe_claimant(c, now) for c in standing)
        return [f"took over {style.path(path)} from {named}: this session's edits of it go ahead"]

    return Output("claim take", data, lines)
