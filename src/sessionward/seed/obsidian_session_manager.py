#!/usr/bin/env python3
# sessionward: managed file. 'sessionward install' (or 'install --seed-paths') wrote it and may overwrite it.
"""Multi-session protection for Claude Code: the session manager, served by sessionward.

    python3 ~/scripts/obsidian_session_manager.py register <project> <cwd>
    python3 ~/scripts/obsidian_session_manager.py list
    python3 ~/scripts/obsidian_session_manager.py check <project>
    python3 ~/scripts/obsidian_session_manager.py unregister [pid]

Runs with any python3. It hands the command to the sessionward that installed it through
exec, which keeps this process's PID, so whoever called this script owns the session.
"""
import os
import sys

SESSIONWARD = "@SESSIONWARD@"  # the launcher, filled in by 'sessionward install'
PYTHON = "@PYTHON@"  # its interpreter, used as `PYTHON -m sessionward` if the launcher is gone


def _candidates():
    if not SESSIONWARD.startswith("@"):
        yield [SESSIONWARD]
    if not PYTHON.startswith("@"):
        yield [PYTHON, "-m", "sessionward"]
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            yield [os.path.join(directory, "sessionward")]


def main():
    argv = sys.argv[1:]
    for command in _candidates():
        if os.access(command[0], os.X_OK) and not os.path.isdir(command[0]):
            os.execv(command[0], command + argv)
    sys.stderr.write(
        "obsidian_session_manager: sessionward is not installed "
        "(install it, then run 'sessionward install --seed-paths')\n"
    )
    return 3


if __name__ == "__main__":
    sys.exit(main())
