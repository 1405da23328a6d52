"""Entry point: the command table, and the one handler mapping exceptions to exit codes.

Command modules are named as "module:function" strings and imported only when chosen, so
`sessionward hook ...` never pays for the session table code and vice versa.
"""

import os
import sys

from sessionward.cli.args import Arg, Command, Opt, parse
from sessionward.cli.entry import is_hook_call
from sessionward.cli.render import emit, emit_error
from sessionward.errors import (
    EXIT_CODES,
    EXIT_ENVIRONMENT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SessionwardError,
    is_out_of_memory,
)


def _pid(text: str) -> int:
    from sessionward.identity.owner import parse_pid

    return parse_pid(text)


def _seconds(text: str) -> float:
    from sessionward.errors import BadInput

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise BadInput(f"invalid duration {text!r}: expected seconds between 0 and 86400")
    return value


def _choice(text: str, what: str, choices: tuple) -> str:
    from sessionward.errors import BadInput

    if text not in choices:
        raise BadInput(f"invalid {what} {text!r}: expected one of {', '.join(choices)}")
    return text


def _log_limit(text: str) -> int:
    from sessionward.cli.log import _limit

    return _limit(text)


def _lock_name(text: str) -> str:
    from sessionward.locks import validate_lock_name

    return validate_lock_name(text)


def _session_id(text: str) -> str:
    from sessionward.registry import validate_session_id

    return validate_session_id(text)


JSON = Opt("--json", "print a versioned JSON envelope instead of text")
QUIET = Opt("--quiet", "print nothing on success")
PID = Opt("--pid", "act for this owner process instead of the resolved one", "PID", _pid, complete="pid")
SESSION = Opt("--session", "the session id (inside Claude Code: its session_id)", "ID", _session_id, complete="session")
DRY_RUN = Opt("--dry-run", "show what would change, change nothing")
SHELL_PID = Opt(
    "--shell-pid", "the calling shell's PID ($$): the owner outside Claude Code (the shell helpers pass it)", "PID", _pid
)
TIMEOUT = Opt("--timeout", "seconds to wait for the lock (default: lock_timeout_s of sessionward.toml, 30)", "S", _seconds)
PURPOSE = Opt("--purpose", "what the lock is taken for (shown to whoever waits)", "TEXT")
SCOPES = ("user", "project")
SCOPE = Opt("--scope", "user (~/.claude/settings.json, the default) or project (.claude/settings.json here)", "SCOPE",
            lambda text: _choice(text, "scope", SCOPES), "user", complete=SCOPES)
LOCK_NAME = Arg("name", "lock name (default: end)", required=False, convert=_lock_name, complete="lock")
NOTE_PATH = Arg("path", "the note's file (a symlink is followed; see below)", complete="file")
# One fact for both note commands' help: where the text should come from, and which links are followed.
NOTE_DETAILS = ("Give the text on stdin (a quoted heredoc: <<'EOF'), not as TEXT: a command's arguments\n"
                "are visible to every local user (ps, /proc) while it runs. Where the command itself sits\n"
                "in a shell's arguments (Claude Code's Bash tool runs bash -c '<command>'), write the text\n"
                "to a file and give --text-file FILE: yours, not a symlink, and private (mode 600, or in a\n"
                "directory closed to others, such as the drafts directory ~/.local/state/sessionward/drafts,\n"
                "$XDG_STATE_HOME/sessionward/drafts). A draft is removed once the note holds its text, and\n"
                "kept when the write fails. Other files stay.\n"
                "A symlink another user owns in a sticky world-writable directory, or one to nothing, is refused.\n")
NOTE_TEXT_FILE = Opt("--text-file", "read the text from this private file instead (removed after, if a draft)", "FILE",
                     complete="file")
NOTE_TIMEOUT = Opt("--timeout", "seconds to wait for another writer of the note (default 10)", "S", _seconds)

COMMANDS = [
    Command(
        "register",
        "Register the calling session (idempotent) and report who else is working nearby.",
        "sessionward.cli.sessions:run_register",
        args=[
            Arg("project", "project name (default: from git, or the directory name)", required=False, complete="project"),
            Arg("cwd", "absolute working directory (default: the current directory)", required=False, complete="dir"),
        ],
        opts=[PID, SHELL_PID, SESSION, JSON, QUIET],
    ),
    Command(
        "unregister",
        "Remove a session: the one of PID, the one given by --session, or else the caller's.",
        "sessionward.cli.sessions:run_unregister",
        args=[Arg("pid", "owner PID whose sessions to remove (default: the caller's own)", required=False, convert=_pid,
                  complete="pid")],
        opts=[SHELL_PID, SESSION, JSON, QUIET],
    ),
    Command(
        "heartbeat",
        "Mark the caller's session as seen now (its last sign of life, shown to other kernels).",
        "sessionward.cli.sessions:run_heartbeat",
        opts=[PID, SHELL_PID, SESSION, JSON, QUIET],
    ),
    Command(
        "list",
        "List live sessions (dead ones are swept first).",
        "sessionward.cli.sessions:run_list",
        opts=[JSON],
        details="Sessions are shown by short id (8 characters, longer where two would look alike) and with\n"
        "their worktree's branch now; --json gives the full ids.",
    ),
    Command(
        "check",
        "Show the other live sessions and how they conflict with this project and worktree.",
        "sessionward.cli.sessions:run_check",
        args=[Arg("project", "project name (default: from git, or the directory name)", required=False, complete="project")],
        opts=[Opt("--cwd", "working directory to check from (default: the current one)", "DIR", complete="dir"),
              PID, SHELL_PID, SESSION, JSON],
        details="Exit status: 0 when no other session shares the project or worktree, 1 when one does.",
    ),
    Command(
        "prune",
        "Show sessions whose owner is dead, and why; --apply removes them; --force ID... removes those named.",
        "sessionward.cli.sessions:run_prune",
        args=[Arg("ids", "with --force: the sessions to remove (ids as 'sessionward list' shows them)",
                  required=False, many=True, complete="session")],
        opts=[DRY_RUN, Opt("--apply", "remove the dead sessions (and life files left by killed watchers) now"),
              Opt("--force", "remove the sessions named, dead or unknown (on another kernel), now"), JSON],
        details="Dry run by default. Every other command sweeps dead sessions too. Sessions whose liveness\n"
        "is unknown (their owner runs on another kernel: a VM, another machine) are listed, never swept\n"
        "on age: once they are gone, remove them by hand with --force. --force refuses a session whose\n"
        "owner is known to be alive (stop it instead; its session then goes by itself).\n"
        "Exit status: 0 done, 1 refused (a named session is alive; nothing removed), 2 an id names no session.",
    ),
    Command(
        "whoami",
        "Show the owner process and checkout sessionward resolves for the caller.",
        "sessionward.cli.sessions:run_whoami",
        opts=[PID, SHELL_PID, JSON],
    ),
    Command(
        "lock acquire",
        "Take a named lock for this session (re-entrant: taking it again succeeds at once).",
        "sessionward.cli.locks:run_acquire",
        args=[LOCK_NAME],
        opts=[TIMEOUT, PURPOSE, Opt("--caller", "hold it for the calling process only, not re-entrant (end_with_lock)"),
              Opt("--step", "wait in steps of 5 s: step 0 only tries, step K waits the K-th 5 s of the timeout "
                  "(for /end, whose model reports between steps)", "K"),
              PID, SHELL_PID, SESSION, JSON, QUIET],
        details="Waits in arrival order, naming the holder; takes over an orphan (holder dead or PID reused) at once.\n"
        "With --step K, a step that ends without the lock names the holder and the next step; the last step\n"
        "(the timeout reached) fails as a timed-out acquire.\n"
        "Exit status: 0 acquired, 1 timed out or a step ended without it (the message names the holder).",
    ),
    Command(
        "lock release",
        "Release a named lock held by this session; --force releases another's.",
        "sessionward.cli.locks:run_release",
        args=[LOCK_NAME],
        opts=[Opt("--force", "release it even if another live process holds it"),
              Opt("--caller", "release the lock held by the calling process (end_with_lock)"), PID, SHELL_PID, JSON, QUIET],
        details="Exit status: 0 released (or not held), 1 refused: another live process holds it.",
    ),
    Command(
        "lock status",
        "Show who holds a lock (default: end), since when, and whether the holder lives.",
        "sessionward.cli.locks:run_status",
        args=[LOCK_NAME],
        opts=[Opt("--all", "every lock sessionward took (not other tools' *.lock files)"), JSON],
    ),
    Command(
        "lock cleanup",
        "Remove orphaned locks (holder dead or PID reused), saying why: all, or NAME's.",
        "sessionward.cli.locks:run_cleanup",
        args=[Arg("name", "only this lock (default: every lock)", required=False, convert=_lock_name, complete="lock")],
        opts=[DRY_RUN, JSON],
    ),
    Command(
        "lock run",
        "Run a command while holding a lock: held exactly while it runs, released on any exit.",
        "sessionward.cli.locks:run_run",
        args=[Arg("name", "lock name", convert=_lock_name, complete="lock"),
              Arg("command", "the command and its arguments", remainder=True, complete="command")],
        opts=[TIMEOUT, PURPOSE, PID, SHELL_PID, SESSION],
        details="The command's own process holds the lock (two runs never overlap, even in one session).\n"
        "Exit status: the command's (128+N if killed by signal N); 1 if the lock was not obtained in time.",
    ),
    Command(
        "lock check",
        "Is writing safe now? 0 when the lock is free or yours, 1 naming the holder otherwise.",
        "sessionward.cli.locks:run_check",
        args=[LOCK_NAME],
        opts=[Opt("--project", "only a holder working on this project blocks", "NAME", complete="project"), PID, SHELL_PID, SESSION, JSON],
    ),
    Command(
        "note append",
        "Append text to a shared note (vault note, memory or resume file): atomic, one writer at a time.",
        "sessionward.cli.notes:run_append",
        args=[NOTE_PATH, Arg("text", "the text to add (default, or -: read stdin); prefer stdin, see below", required=False)],
        opts=[NOTE_TEXT_FILE, NOTE_TIMEOUT, JSON, QUIET],
        details="A newline goes first when the note does not end with one. Concurrent appends all land.\n"
        + NOTE_DETAILS + "Exit status: 0 written, 1 refused, or another writer held the note past --timeout;\n"
        "2 a --text-file refused (not yours, not private, a symlink). Nothing is written then.",
    ),
    Command(
        "note write",
        "Replace a shared note with stdin (or TEXT): atomic; with --expect-sha256, only if unchanged.",
        "sessionward.cli.notes:run_write",
        args=[NOTE_PATH, Arg("text", "the new content (default, or -: read stdin); prefer stdin, see below", required=False)],
        opts=[Opt("--expect-sha256", "write only if the note's sha256 is still this one ('absent': must not exist)",
                  "HEX"), NOTE_TEXT_FILE, NOTE_TIMEOUT, JSON, QUIET],
        details=NOTE_DETAILS + "Exit status: 0 written, 1 the note changed since it was read (--expect-sha256), refused,\n"
        "or another writer held it past --timeout; 2 a --text-file refused (not yours, not private, a symlink).\n"
        "Nothing is written then.",
    ),
    Command(
        "claim take",
        "Take a file over from the sessions that edited it recently: this session's next edit goes ahead.",
        "sessionward.cli.claims:run_take",
        args=[Arg("path", "the file (relative to the current directory, or absolute)", complete="file")],
        opts=[PID, SHELL_PID, SESSION, JSON],
        details="Run by Claude Code when the edit guard stopped an edit (its message gives the command); the\n"
        "hook asks the person first, naming the other session. A later edit by that session stops\n"
        "this one's edits again. Exit status: 0 taken (or nothing to take over).",
    ),
    Command(
        "watch",
        "A live view of every session: who waits for you, who is busy with what, who is in whose way.",
        "sessionward.cli.watch:run_watch",
        opts=[Opt("--project", "only this project's sessions", "NAME", complete="project"),
              Opt("--once", "print one snapshot and exit"), JSON],
        details="On a terminal: the whole screen, updated within a second of any change. Sessions waiting for\n"
        "their person come first. Keys: q quit, s sort, p project, up/down select, enter details.\n"
        "Not on a terminal: the table again at every change, until interrupted. --json implies --once.",
    ),
    Command(
        "log",
        "The event history: sessions started, ended or found dead, locks, guard decisions, notes.",
        "sessionward.cli.log:run_log",
        opts=[Opt("--session", "only this session's events (its id, or the start of it)", "ID", complete="session"),
              Opt("--project", "only this project's events", "NAME", complete="project"),
              Opt("--since", "only events since then: an age (10m, 2h, 3d) or an ISO time", "WHEN"),
              Opt("--limit", "only the last N events that match", "N", _log_limit),
              Opt("--follow", "keep printing events as they come, until interrupted"),
              Opt("--jsonl", "one JSON object per event and line (with --follow too)"), JSON],
        details="Append-only, under the state directory's sessionward/log/ (rotated by size, 5 older files\n"
        "kept). On a terminal: a table with relative times; piped: tab-separated, ISO times, full ids.\n"
        "Events: session.started|ended|died|removed (died says which liveness check found it dead),\n"
        "lock.taken|taken_over|waiting|timed_out|released|forced|cleaned, edit.* and git.*\n"
        "asked|denied|allowed|not_run (allowed: the tool the guard asked about then ran), note.written.",
    ),
    Command(
        "install",
        "Install the Claude Code hooks, /start and /end, the status line and the origin's files.",
        "sessionward.cli.install:run_install",
        opts=[SCOPE, DRY_RUN,
              Opt("--seed-paths", "only write the origin's manager script and shell helpers at the origin's paths"),
              Opt("--yes", "protect the Obsidian vaults found without asking"),
              Opt("--vault", "protect this vault or shared note (a file: resume, memory export) instead of those found",
                  "PATH", complete="file", repeat=True),
              Opt("--no-vaults", "leave the notes protection (vaults in sessionward.toml) as it is"), JSON],
        details="Merges sessionward's hooks into settings.json, keeping everything else; idempotent.\n"
        "With --scope user it also writes ~/scripts/obsidian_session_manager.py and ~/.claude/shell-config/,\n"
        "where the origin's guide runs them. Prints one line per file (created, updated, unchanged,\n"
        "replaced, kept) and records what it created for uninstall.\n"
        "--dry-run prints the changes as a diff and changes nothing.\n"
        "Notes: it finds your Obsidian vaults in Obsidian's own list (obsidian.json) and offers to protect\n"
        "them (edits there wait while another session saves under the end lock): on a terminal it asks;\n"
        "otherwise it says what it found, and writes them to sessionward.toml with --yes. --vault PATH\n"
        "(repeatable) protects those paths instead: vaults, or shared notes such as a resume file.",
    ),
    Command(
        "uninstall",
        "Remove what 'sessionward install' created and you did not change since.",
        "sessionward.cli.install:run_uninstall",
        opts=[SCOPE, DRY_RUN, JSON],
        details="Its hooks and statusLine leave settings.json (every other byte stays; a settings.json install\n"
        "created goes once nothing else is in it); /start, /end and the origin's files go while they hold\n"
        "what install wrote; a file install moved aside comes back; directories install made go once empty.\n"
        "Kept, with the reason on its line: a file changed since install or not sessionward's, a shell\n"
        "helper a startup file (~/.bashrc, ~/.zshrc, ...) still sources, drafts an /end left.",
    ),
    Command(
        "hook",
        "Answer a Claude Code hook: reads its JSON on stdin (installed into settings.json).",
        "sessionward.hooks:main",  # never through the parser: see cli.entry.is_hook_call
        args=[Arg("event", "the hook event, spelled as Claude Code spells it (SessionStart, PreToolUse, ...)",
                  complete="event")],
        details="Exit status: 0 with the hook's JSON answer (or nothing) on stdout; 1 with one line on stderr\n"
        "when sessionward itself failed (Claude Code goes on: a broken guard fails open).",
    ),
    Command(
        "status-line",
        "Print one status row for Claude Code's statusLine (reads its JSON on stdin).",
        "sessionward.cli.hook:run_status_line",
    ),
    Command(
        "doctor",
        "Check the install, the state directory and Claude Code, and say how to fix each problem.",
        "sessionward.cli.doctor:run_doctor",
        opts=[SCOPE, Opt("--reseed", "on the shared store, after it lost its state: set every fence counter above "
                         "every recorded mark, so that fenced writes are allowed again"), JSON],
        details="Doctor changes nothing, but on a shared store that lost its state: it marks the loss (fenced writes\n"
        "are then refused on every host), and with --reseed it re-seeds the store (only one that lost its state).\n"
        "Exit status: 0 when every check passes, 1 when one fails; 2 for --reseed on the local store.",
    ),
    Command(
        "demo",
        "Show sessionward at work on simulated sessions, in a throw-away state directory.",
        "sessionward.cli.demo:run_demo",
    ),
    Command(
        "completion",
        "Print the completion script for a shell (bash, zsh or fish), made from this command table.",
        "sessionward.cli.completion:run_completion",
        args=[Arg("shell", "bash, zsh or fish", required=False, complete="shell")],
        opts=[Opt("--values", "print what completes a KIND of value (session, lock, pid, project), one a line: "
                  "the scripts call it", "KIND")],
        details="Enable it: bash, in ~/.bashrc: eval \"$(sessionward completion bash)\"; zsh, in ~/.zshrc after\n"
        "compinit: eval \"$(sessionward completion zsh)\"; fish: sessionward completion fish >\n"
        "~/.config/fish/completions/sessionward.fish. Completes commands, subcommands, options, lock\n"
        "names, session ids, PIDs and projects of recorded sessions, and file and directory arguments.\n"
        "Exit status: 0, or 2 for a shell it does not know.",
    ),
]


EXIT_ZERO = "--exit-zero"
GLOBAL_OPTIONS = (  # `sessionward --help` and docs/CLI.md list them
    (EXIT_ZERO, "exit 0 whatever happens, errors on stdout (for Claude Code's !`command` lines)"),
    ("--version", "print the version (sessionward X.Y.Z) and exit"),
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        # A path or name from argv may hold undecodable bytes (lone surrogates): shown as
        # escapes rather than failing the write (a UTF-8 locale other than C.UTF-8 is strict).
        sys.stdout.reconfigure(errors="backslashreplace")
    own_args = argv[: argv.index("--")] if "--" in argv else argv
    if EXIT_ZERO in own_args:
        # For Claude Code's !`command` lines in slash commands, which must exit 0: the
        # outcome (errors included) goes to stdout, where the model reads it.
        argv.remove(EXIT_ZERO)
        sys.stderr.flush()
        saved, sys.stderr = sys.stderr, sys.stdout
        try:
            code = _main(argv)
        finally:
            sys.stderr = saved
        if code:
            sys.stdout.write(f"(sessionward exit status {code})\n")
        return 0
    return _main(argv)


def _main(argv: list[str]) -> int:
    own = argv[: argv.index("--")] if "--" in argv else argv  # after `--`: a command's words, not ours
    as_json = "--json" in own
    name = argv[0] if argv else ""
    told: list = []  # pending notices taken for this command (see _pending_notices)
    if is_hook_call(argv):
        # Straight to the hook runner, around the parser, as from the launcher (cli.entry): a
        # hook must exit 0 or 1, never the usage code 2, which Claude Code reads as "block".
        from sessionward.hooks import main as hook_main

        return hook_main(argv[1:])
    try:
        parsed = parse(argv, COMMANDS)
        if parsed.version:
            from sessionward import __version__

            print(f"sessionward {__version__}")
            return 0
        if parsed.help_for is not None:
            print(_help(parsed.help_for))
            return 0
        command = parsed.command
        name = command.name
        from sessionward.errors import StoreNotBuilt
        from sessionward.store import current

        try:
            current()  # the store backend, chosen once, before any state is touched
        except StoreNotBuilt:
            if name not in ("doctor", "demo"):
                raise  # doctor reports it with the rest (its store check: FAIL, and the fix); demo uses none
        module_name, function = command.runner.split(":")
        module = __import__(module_name, fromlist=[function])
        try:
            output = getattr(module, function)(parsed.values)
        finally:
            told = _pending_notices(name)
        if told:  # a repair a hook made and nobody told: as if this command had found it
            output.notices[:0] = told
            if output.exit_code == EXIT_OK and name != "lock run":  # lock run exits with its command's status
                output.exit_code = EXIT_ENVIRONMENT
        try:
            return emit(output, bool(parsed.values.get("json")))
        except BrokenPipeError:
            # The reader went away (`sessionward check | head -1`): no message, and the
            # command's own status still counts.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return output.exit_code
    except SessionwardError as error:
        _print_notices(told)
        return emit_error(name, error, as_json)
    except KeyboardInterrupt:
        _print_notices(told)
        sys.stderr.write("sessionward: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # the one place an unexpected error becomes one line
        if os.environ.get("SESSIONWARD_DEBUG") == "1" or is_out_of_memory(error):
            raise  # out of memory: cli.entry says so in one line of prepared bytes (a report needs memory)
        _print_notices(told)
        return _report_internal_error(name, error, as_json)


NOT_TELLING = ("hook", "status-line")  # Claude Code's commands: a notice there goes to a hook's systemMessage


def _pending_notices(command: str) -> list:
    """Repairs not yet told on the command line (sessionward._notices): one stat when none."""
    if command in NOT_TELLING:
        return []
    from sessionward import _notices

    return _notices.take("cli") if _notices.is_pending() else []


def _print_notices(told: list) -> None:
    from sessionward._humanize import one_line

    for message in told:
        sys.stderr.write(one_line(f"sessionward: {message}") + "\n")


def _help(topic) -> str:
    if isinstance(topic, str) and topic != "all":
        group = [c for c in COMMANDS if c.name.startswith(topic + " ")]
        width = max(len(c.name) for c in group)
        lines = [f"usage: sessionward {topic} <subcommand> [options]", "", "subcommands:"]
        lines += [f"  {c.name:<{width}}  {c.summary}" for c in group]
        lines += ["", f"Run 'sessionward {topic} <subcommand> --help' for its options."]
        return "\n".join(lines)
    if topic != "all":
        return topic.help_text()
    width = max(len(c.name) for c in COMMANDS)
    lines = ["usage: sessionward <command> [options]", "", "commands:"]
    lines += [f"  {c.name:<{width}}  {c.summary}" for c in COMMANDS]
    lines += ["", "exit codes:"]
    lines += [f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items()]
    lines += ["", "global options:"]
    width = max(len(option) for option, _ in GLOBAL_OPTIONS)
    lines += [f"  {option:<{width}}  {meaning}" for option, meaning in GLOBAL_OPTIONS]
    lines += ["", "Run 'sessionward <command> --help' for a command's options."]
    return "\n".join(lines)


def _report_internal_error(command: str, error: Exception, as_json: bool) -> int:
    from sessionward._errorlog import log_traceback

    logged = log_traceback(command, error)
    internal = SessionwardError(f"internal error in '{command}': {type(error).__name__}: {error}", logged)
    internal.code = "internal_error"
    if as_json:
        emit_error(command, internal, True)
    from sessionward._humanize import one_line

    sys.stderr.write(one_line(f"sessionward: {internal.message} ({logged})") + "\n")
    return EXIT_ENVIRONMENT
