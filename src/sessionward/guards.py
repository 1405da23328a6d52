"""The guards: should this session edit that file, or run that git command, now?

check_file_edit(path, owner, config) -> Verdict, before Edit/Write/MultiEdit/NotebookEdit:
  vault    the file lies in the configured notes vault while another session holds the
           `end` lock (its /end save is writing there)                       -> deny
  stale    the file changed on disk since this session last read or wrote it, and another
           session wrote it after that (this edit would be made blind)        -> deny
  claimed  another live session edited it within the claim TTL, and this session has not
           taken it over since                                                -> the policy
           (deny by default, the reason saying how to take it over; ask; or warn: go
           ahead, the person is told). Why deny: in Claude Code's full-screen TUI the
           diff dialog of an Edit/Write `ask` shows no hook reason, while a deny's reason
           is printed where the person reads (README, "Edits another session made").
check_take_over(command, cwd, owner) -> Verdict, before Bash: `sessionward claim take FILE`
  while another live session's recent edit of FILE stands -> ask, naming that session (a
  Bash dialog shows the reason), so the person's Yes is the take-over's go-ahead.
check_git_command(command, cwd, owner, config) -> Verdict, before Bash, while another live
  session works in the same worktree (sessionward.gitcmd reads the command):
  - a whole-tree move (checkout of a branch, switch, reset, stash, rebase, merge, pull,
    bisect, `gh pr checkout`, ...) -> ask, always: no git process; the reason names the
    files the other session edited there through Claude Code (its claims: a few, then how
    many more), what the move could overwrite;
  - a command on named files only (`git checkout -- f`, `git restore f`, `git rm --cached f`,
    `git add f`, `git commit -m m f`) -> ask when one of them is the other session's work
    (below), naming the files and that session; git runs only for a named file no session
    claimed that changed after the other session started (is it changed at all?);
  - a sweep (`git add -A/./-u/<dir>`, `git commit` of the index, `-a`, `--amend`, a pathspec
    of `.`) -> one `git status` says which files it takes; ask when one of them is the other
    session's work, naming them; an `--amend` also asks when the commit at HEAD was made after
    the other session started (it may be its commit). A sweep whose paths no reader can know
    (xargs, --pathspec-from-file, commit --include), or when git cannot tell -> ask.
  Whose work a changed file is: another live session's when its claim stands on it (as for
  check_file_edit); this session's when only this session claimed it; a change no session
  claimed (a Bash edit; any edit of a shell session, which leaves no claims) is possibly the
  other session's when the file changed after it started (its mtime), and not when it changed
  before every other session there started. The reason says which of those it is.

A Verdict's reason states the facts (who: session, project, worktree, its branch now, PID,
how long ago) and what to do. Verdicts are advice computed from shared state without a lock: two
sessions racing within one millisecond can both pass (the claims are recorded after the
tool ran). What they never do is block on a dead session: claims of dead owners are ignored,
and a dead holder of `end` holds nothing.
"""

import os
import time

from sessionward import claims as claims_mod
from sessionward._humanize import format_ago, session_label, short_path
from sessionward.identity import Owner, branch_now, record_liveness

MAX_NAMED_FILES = 3  # a whole-tree ask names this many of the other session's files, then "and N more"
ALLOW = None
ASK = "ask"
DENY = "deny"
WARN = "warn"


class Verdict:
    """A guard's answer: decision (None: no objection, "ask", "deny", "warn") and why."""

    __slots__ = ("decision", "reason", "rule", "others")

    def __init__(self, decision=None, reason: str = "", rule: str = "", others=()) -> None:
        self.decision = decision
        self.reason = reason
        self.rule = rule
        self.others = list(others)

    def __bool__(self) -> bool:
        return self.decision is not None

    def __repr__(self) -> str:
        return f"Verdict({self.decision!r}, {self.rule!r}, {self.reason!r})"


# -- files ----------------------------------------------------------------------------------


def check_file_edit(path: str, owner: Owner, config, now: float | None = None) -> Verdict:
    now = time.time() if now is None else now
    if config.in_vault(path):
        verdict = _vault_busy(path, owner, now)
        if verdict:
            return verdict
    found = claims_mod.claims_on(path)
    if not found:
        return Verdict()
    mine = [c for c in found if claims_mod.is_mine(c, owner)]
    others = [c for c in found if not claims_mod.is_mine(c, owner)]
    if mine and others:
        verdict = _changed_behind_our_back(path, mine[-1], others, now)
        if verdict:
            return verdict
    recent = _blocking(others, claims_mod.taken_at(mine), config.claim_ttl_s, now)
    if not recent:
        return Verdict()
    return _claimed(path, recent[-1], config, now, len(recent))


def _blocking(others: list, taken_at, ttl_s: float, now: float, seen: dict | None = None) -> list:
    """Other sessions' edits that stand against this one: live, recent, and made after this
    session last took the file over (a later edit by one of them blocks again). `seen`: the
    owners already looked up in /proc, for a caller that asks about many files."""
    return [
        c for c in others
        if c["write"] and c.get("ended") is None and now - c["at"] <= ttl_s
        and (taken_at is None or c["at"] > taken_at) and _alive(c["owner"], now, seen)
    ]


def standing_edits(path: str, owner: Owner, config, now: float) -> list:
    """The other sessions' claims on `path` that stop this owner's edits now (oldest first)."""
    found = claims_mod.claims_on(path)
    mine = [c for c in found if claims_mod.is_mine(c, owner)]
    return _blocking([c for c in found if not claims_mod.is_mine(c, owner)], claims_mod.taken_at(mine),
                     config.claim_ttl_s, now)


TAKE_COMMAND = "sessionward claim take"


def take_command(path: str) -> str:
    """The command that takes `path` over, as a reason tells the model to run it: through
    the bare name when PATH finds a sessionward, else through this very launcher's path (an
    install whose bin directory is not on PATH: the bare name would not run)."""
    return f"{_launcher_to_name()}{TAKE_COMMAND[len('sessionward'):]} {_quoted(path)}"


def _launcher_to_name() -> str:
    import sys

    launcher = sys.argv[0] if sys.argv else ""
    if not (os.path.isabs(launcher) and os.path.basename(launcher) == "sessionward"):
        return "sessionward"  # not run through a launcher (the Python API, tests)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory and os.access(os.path.join(directory, "sessionward"), os.X_OK):
            return "sessionward"
    return launcher


def check_take_over(command: str, cwd: str, owner: Owner, config, now: float | None = None) -> Verdict:
    """`sessionward claim take FILE` about to run in Bash: ask the person, naming the session
    whose edit it overrides; no objection when the command is anything else, or nobody's
    edit stands against this session (nothing to take over)."""
    if not is_take_command(command):
        return Verdict()
    path = parse_take_command(command, cwd)
    if path is None:
        reason = (f"'{_clip(command)}' takes a file over from other sessions, but sessionward cannot tell which "
                  f"file (expected: {TAKE_COMMAND} FILE, nothing else). Allow it only if you meant to let this "
                  f"session edit that file over another session's recent edit.")
        return Verdict(ASK, reason, "take")
    now = time.time() if now is None else now
    recent = standing_edits(path, owner, config, now)
    if not recent:
        return Verdict()
    other = recent[-1]
    also = f" (and {len(recent) - 1} more)" if len(recent) > 1 else ""
    reason = (
        f"take over {short_path(path)} from {describe_claimant(other, now)}{also}, which {_verb(other)} it "
        f"{format_ago(now - other['at'])} and is still running. Yes: this session's edits of it go ahead and can "
        f"overwrite that session's work (its next edit is stopped in turn). No: nothing changes."
    )
    return Verdict(ASK, reason, "take", recent)


def is_take_command(command: str) -> bool:
    """Does `command` look like it runs `sessionward claim take` (however written)?"""
    return "sessionward" in command and "claim" in command and "take" in command


def parse_take_command(command: str, cwd: str) -> str | None:
    """The absolute path `command` takes over when it is exactly `sessionward claim take FILE`
    (FILE plain, a leading ~ expanded as bash does, or in one pair of quotes; no other shell
    syntax), else None. Without shlex:
    this runs before every Bash call that mentions sessionward."""
    words = command.strip().split(None, 3)
    if len(words) != 4 or words[0].rsplit("/", 1)[-1] != "sessionward" or words[1:3] != ["claim", "take"]:
        return None
    arg = words[3].strip()
    quoted = len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "'\""
    if quoted:
        arg = arg[1:-1]
    if not arg or any(ch in arg for ch in "'\"`$;&|<>\n\\"):
        return None
    import os

    if not quoted:  # bash expands a leading ~ before sessionward sees the path: so must we
        arg = os.path.expanduser(arg)
    return os.path.realpath(os.path.join(cwd, arg))


def _changed_behind_our_back(path: str, mine: dict, others: list, now: float) -> Verdict:
    later = [c for c in others if c["write"] and c["at"] > mine["at"]]
    if not later:
        return Verdict()
    current = claims_mod.file_state(path, with_digest=False)
    if claims_mod.same_content(mine.get("state"), current, path):
        return Verdict()
    writer = later[-1]
    seen = "wrote" if mine["write"] else "read"
    reason = (
        f"{short_path(path)} changed on disk since this session last {seen} it ({format_ago(now - mine['at'])}): "
        f"{describe_claimant(writer, now)} {_verb(writer)} it {format_ago(now - writer['at'])}. "
        f"Editing now would overwrite that change unseen. Read the file again, then make the edit "
        f"on its current content."
    )
    return Verdict(DENY, reason, "stale", [writer])


def _claimed(path: str, other: dict, config, now: float, count: int) -> Verdict:
    also = f" (and {count - 1} more)" if count > 1 else ""
    verdict = record_liveness(other["owner"], other["at"], now)
    running = "is still running" if verdict.known else f"may still be running ({verdict.reason})"
    facts = f"{describe_claimant(other, now)}{also} {_verb(other)} {short_path(path)} {format_ago(now - other['at'])} and {running}"
    policy = config.edit_policy
    if policy == DENY:
        reason = (
            f"{facts}. Editing it here could overwrite that work, so sessionward stopped this edit. Tell the "
            f"user which session is working on the file. If they want this session to edit it anyway, run "
            f"`{take_command(path)}` (the user confirms it), then make the edit again."
        )
    elif policy == ASK:
        reason = f"{facts}. Editing it here can overwrite that session's work. Allow only if you know the edits do not collide."
    else:
        reason = f"{facts}: editing it here anyway (edit policy: warn)."
    return Verdict(policy, reason, "claimed", [other])


def _vault_busy(path: str, owner: Owner, now: float) -> Verdict:
    from sessionward.identity import same_process
    from sessionward.locks import END_LOCK, NamedLock, held_by_process

    state = NamedLock(END_LOCK).status()
    if not state.held:
        return Verdict()
    holder_owner = ((state.meta or {}).get("session") or {}).get("owner") or {}
    # Our own /end save: held for our session, or by our process. Compared as processes, not
    # PIDs: on the shared store another machine's holder may have our owner's PID.
    if same_process(holder_owner, owner.identity()) or held_by_process(state, owner):
        return Verdict()
    reason = (
        f"{short_path(path)} is in the notes vault, and another session is saving there under the "
        f"end lock: {state.describe(short_path)}. "
        + _sentence(state.advice("wait until its /end save finishes, then retry ('sessionward lock status' shows the holder)"))
    )
    return Verdict(DENY, reason, "vault")


# -- git ------------------------------------------------------------------------------------


def check_git_command(command: str, cwd: str, owner: Owner, config, now: float | None = None) -> Verdict:
    if not config.git_guard:
        return Verdict()
    from sessionward.gitcmd import SWEEP, risky_git_commands

    risky = risky_git_commands(command, cwd)
    if not risky:
        return Verdict()
    from sessionward.identity import describe_checkout
    from sessionward.registry import describe_sessions, load_live_sessions

    now = time.time() if now is None else now
    live, _swept = load_live_sessions(now=now)
    others = [r for r in live if not _owned_by(r["owner"], owner)]
    for git in risky:
        worktree = describe_checkout(git.directory).worktree
        sharing = [r for r in others if r.get("worktree") == worktree]
        if not sharing:
            continue
        if git.paths is not None:  # named files: ask only when one is another live session's work
            theirs = _named_files_theirs(git, worktree, owner, config, now, sharing)
            if theirs:
                return Verdict(ASK, _theirs_reason(git, theirs, now), "git", sharing)
            continue
        if git.kind == SWEEP and git.scope is not None:  # ask only when it takes another's work
            verdict = _sweep_verdict(git, worktree, owner, config, now, sharing)
            if verdict:
                return verdict
            if verdict is not None:
                continue  # git says the sweep takes nothing of another session's
        one = len(sharing) == 1
        also = "another session also works" if one else f"{len(sharing)} other sessions also work"
        its, it_has = ("Its", "it has") if one else ("Their", "they have")
        if git.kind == SWEEP:
            reason = (
                f"'{_clip(git.text)}' stages or commits more than named files in {short_path(worktree)}, "
                f"where {also}: {describe_sessions(sharing, now)}. {its} uncommitted work "
                f"could go into this commit. Stage and commit only your own files by name "
                f"(git add <files> && git commit -m <msg> -- <files>)."
            )
        else:
            reason = (
                f"'{_clip(git.text)}' moves HEAD or rewrites the index or files of {short_path(worktree)}, "
                f"where {also}: {describe_sessions(sharing, now)}.{files_at_stake(worktree, sharing)}"
                f" {its} uncommitted work could be overwritten or switched away. Make sure {it_has} committed or "
                f"stashed, or work in a separate worktree (git worktree add ../<dir> -b <branch>)."
            )
        return Verdict(ASK, reason, "git", sharing)
    return Verdict()


# Whose work a changed file is, for the git guard. Another live session's, when its claim
# stands on the file (it edited it through Claude Code within the claim TTL, and this session has
# not taken it over since). This session's, when only this session claimed it. A file changed
# that no session claimed (a Bash edit: sed -i, a formatter, a generator) is possibly another
# session's when it changed after that session started (its mtime says so): either session may
# have made the change, and only the person knows; a change older than every other live session
# in the worktree was there before they started, so it is not theirs.


def _whose(path: str, found: list, owner: Owner, config, now: float, sharing: list, seen: dict):
    """("claim", claim) | ("unclaimed", [session records]) | None (this session's, or nobody's
    now), from the claims `found` on `path`."""
    mine = [c for c in found if claims_mod.is_mine(c, owner)]
    standing = _blocking([c for c in found if not claims_mod.is_mine(c, owner)], claims_mod.taken_at(mine),
                         config.claim_ttl_s, now, seen)
    if standing:
        return "claim", standing[-1]
    if mine:
        return None
    try:
        changed_at = os.lstat(path).st_mtime
    except OSError:
        changed_at = now  # deleted: when is unknown, so it may be anyone's
    since = [r for r in sharing if type(r.get("started_at")) not in (int, float) or r["started_at"] <= changed_at]
    return ("unclaimed", since) if since else None


def _whose_each(paths: list, owner: Owner, config, now: float, sharing: list) -> list:
    """[(path, whose)] of `paths` that are possibly another session's work (_whose)."""
    found, seen = claims_mod.claims_on_each(paths), {}  # type: ignore[var-annotated]
    return [(path, whose) for path in paths for whose in (_whose(path, found[path], owner, config, now, sharing, seen),)
            if whose]


def _named_files_theirs(git, worktree: str, owner: Owner, config, now: float, sharing: list) -> list:
    """[(path, whose)] of the named files that are another live session's work. Claims first;
    git runs only for files no session claimed that changed after another session started."""
    theirs: list = []
    unsure: list = []
    for path, whose in _whose_each(git.paths, owner, config, now, sharing):
        (theirs if whose[0] == "claim" else unsure).append((path, whose))
    if theirs or not unsure:
        return theirs
    from sessionward.gitwork import changed_files

    changed = changed_files(git.directory, worktree, [path for path, _whose in unsure], untracked=True)
    if changed is None:
        return unsure  # git cannot tell: take the change as made
    paths = {path for path, _x, _y in changed}
    return [(path, whose) for path, whose in unsure if path in paths]


def _sweep_verdict(git, worktree: str, owner: Owner, config, now: float, sharing: list):
    """Ask when the sweep takes files that are another live session's work (git status says
    which files it takes), or amends a commit made after another session started; an empty
    Verdict when nothing of theirs is at stake; None when git cannot tell (the caller then
    asks as for a sweep it cannot read)."""
    from sessionward.gitcmd import ALL, STAGED
    from sessionward.gitwork import changed_files, head_commit

    scope = git.scope
    changed = changed_files(git.directory, worktree, scope.pathspecs, untracked=scope.changes == ALL)
    if changed is None:
        return None
    # a commit takes what is staged; an add, only what the working tree changed (work already
    # staged is the next commit's to take)
    staged = git.words[1] == "commit"
    unstaged = scope.changes != STAGED
    untracked = scope.changes == ALL
    taken = [path for path, x, y in changed
             if (staged and x not in " ?!") or (unstaged and y in "MDT") or (untracked and x == "?")]
    theirs = _whose_each(taken, owner, config, now, sharing)
    if theirs:
        return Verdict(ASK, _theirs_reason(git, theirs, now), "git", sharing)
    if scope.amend:
        head = head_commit(git.directory)
        after = [r for r in sharing if head is None or type(r.get("started_at")) not in (int, float)
                 or r["started_at"] <= head[0]]
        if after:
            made = f"'{_clip(head[1], 60)}', made {format_ago(now - head[0])}" if head else "which git could not read"
            from sessionward.registry import describe_sessions

            reason = (f"'{_clip(git.text)}' rewrites the commit at HEAD of {short_path(worktree)}, {made}, after "
                      f"another live session there started: {describe_sessions(after, now)}. It may be that "
                      f"session's commit. Make a new commit instead, or make sure HEAD is this session's.")
            return Verdict(ASK, reason, "git", after)
    return Verdict()


def _theirs_reason(git, theirs: list, now: float) -> str:
    from sessionward.gitcmd import SWEEP
    from sessionward.registry import describe_sessions

    files = ", ".join(short_path(path) for path, _whose in theirs[:3])
    if len(theirs) > 3:
        files += f" (and {len(theirs) - 3} more)"
    path, (how, detail) = theirs[0]
    if how == "claim":
        who = f"{describe_claimant(detail, now)} edited {short_path(path)} {format_ago(now - detail['at'])}"
        changed = "changed by another live session"
    else:
        who = f"{short_path(path)} changed since {describe_sessions(detail, now)} started, {_unseen_edit(detail)}"
        changed = "possibly another live session's work"
    if git.kind == SWEEP:
        return (f"'{_clip(git.text)}' would commit {files}, {changed}: {who}. Its uncommitted work would go "
                f"into this session's commit. Commit only your own files by name (git add <files> && git commit "
                f"-m <msg> -- <files>), or ask it to commit first.")
    return (f"'{_clip(git.text)}' would discard or unstage changes to {files}, {changed}: {who}. Its "
            f"uncommitted work there could be lost. Leave those files to it, or ask it to commit first.")


def _unseen_edit(sessions: list) -> str:
    """Why sessionward cannot tell whose change it is, true for the kind of those sessions:
    Claude Code sessions leave claims for their Edit/Write tools, and none is on the file;
    a session started from a shell (or another program) leaves none at all."""
    kinds = sorted({r.get("kind") or "other" for r in sessions} - {"claude-code"})
    if not kinds:
        return "and no session edited it through Claude Code's edit tools (a Bash edit: this session's or that one's)"
    what = "a shell session" if kinds == ["shell"] else f"a session of kind {' or '.join(kinds)}, not Claude Code"
    them = "that session" if len(sessions) == 1 else "those sessions"
    return (f"and {them} ({what}) edit{'s' if len(sessions) == 1 else ''} outside Claude Code's tools (a shell, an "
            f"editor), where sessionward sees no edit: the change may be {'its' if len(sessions) == 1 else 'theirs'} "
            f"or this session's")


def files_at_stake(worktree: str, sessions: list, limit: int = MAX_NAMED_FILES) -> str:
    """" It edited a.py, b.py, c.py and 4 more there through Claude Code." (most recent
    first), or "": the files the `sessions` sharing `worktree` claimed by editing them and
    have not ended, from the claims alone (no git process), so the person asked about a
    whole-tree git command knows what is at stake. Edits made in a shell leave no claim."""
    try:
        every = claims_mod.all_claims()
    except Exception:  # noqa: BLE001 - claims are advice: the ask stands without the names
        return ""
    prefix = worktree.rstrip("/") + "/"
    owners = [r["owner"] for r in sessions if type(r.get("owner")) is dict]
    edited: dict = {}
    for path, claim in every:
        if (claim.get("write") and claim.get("ended") is None and path.startswith(prefix)
                and any(claims_mod.made_by(claim, owner) for owner in owners)):
            edited[path] = max(edited.get(path, 0.0), claim["at"])
    if not edited:
        return ""
    newest = sorted(edited, key=lambda path: -edited[path])
    named = ", ".join(os.path.relpath(path, worktree) for path in newest[:limit])
    if len(newest) > limit:
        named += f" and {len(newest) - limit} more"
    who = "It" if len(sessions) == 1 else "They"
    return f" {who} edited {named} there through Claude Code."


# -- describing -----------------------------------------------------------------------------


def describe_claimant(claim: dict, now: float) -> str:
    owner = claim["owner"]
    parts = []
    if claim.get("project"):
        parts.append(f"project {claim['project']}")
    if claim.get("worktree"):
        parts.append(f"worktree {short_path(claim['worktree'])}")
    branch = branch_now(claim.get("worktree"), claim.get("branch"))  # a checkout since moves it
    if branch:
        parts.append(f"branch {branch}")
    parts.append(f"pid {owner['pid']}")
    from sessionward.identity.where import HERE, owner_where

    where = owner_where(owner)
    if where != HERE:  # the common case stays short
        parts[-1] += f" {where}"
    if claim.get("ended") is not None:
        parts.append("ended")
    return f"session {session_label(claim.get('session'))} ({', '.join(parts)})"


def _verb(claim: dict) -> str:
    return "edited" if claim["write"] else "read"


def _alive(owner_record: dict, now: float, seen: dict | None = None) -> bool:
    return bool(record_liveness(owner_record, None, now, seen))  # claims carry no heartbeat


def _owned_by(recorded: dict, owner: Owner) -> bool:
    from sessionward.identity import owner_record_matches

    return owner_record_matches(recorded, owner)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _quoted(path: str) -> str:
    """`path` as one shell word (quoted only when it must be)."""
    plain = all(ch.isalnum() or ch in "/._-+,:@%" for ch in path)
    return path if plain and path else "'" + path.replace("'", "'\\''") + "'"


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
