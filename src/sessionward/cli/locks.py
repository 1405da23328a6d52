"""lock acquire | release | status | cleanup | run | check: named locks on the command line."""

import sys

from sessionward import locks
from sessionward.cli.render import Output, Style
from sessionward.errors import EXIT_CONFLICT, EXIT_OK, LockStillWaiting
from sessionward.identity import resolve_owner, resolve_session_id
from sessionward.identity.where import UNKNOWN_ADVICE

_PLAIN_PROGRESS_EVERY_S = 5.0
WAIT_STEP_S = 5.0  # one step of a wait in steps (--step): /end's model reports between them
MAX_STEP = 10000


class WaitReporter:
    """One progress line on stderr while a live holder keeps the lock: rewritten in place on
    a terminal, a plain line every few seconds otherwise. Printed only while really held."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.style = Style.for_stream(self.stream)
        self.last_plain: float | None = None
        self.shown = False

    def __call__(self, state, waited_s: float) -> None:
        # described as the lines that may follow it are (a time-out, a refusal): ~ for the home
        line = f"sessionward: waiting for lock {state.name} ({waited_s:.0f} s), held by {state.describe()}"
        if self.style.tty:
            self.stream.write("\r\033[K" + line)
        elif self.last_plain is None or waited_s - self.last_plain >= _PLAIN_PROGRESS_EVERY_S:
            self.stream.write(line + "\n")
            self.last_plain = waited_s
        else:
            return
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.style.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _owner(values: dict):
    return resolve_owner(values.get("pid"), shell_pid=values.get("shell_pid"))


def _lock(values: dict, holder=None, owner=None) -> locks.NamedLock:
    return locks.NamedLock(
        values.get("name") or locks.END_LOCK,
        holder=holder,
        owner=owner,
        purpose=values.get("purpose") or "",
        session_id=resolve_session_id(values.get("session")),
    )


def _took_over_notice(acquired) -> list[str]:
    if acquired.took_over is None:
        return []
    orphan = acquired.took_over
    return [f"took over orphaned lock {orphan.name} from {orphan.describe()}: {orphan.liveness.reason}"]


def _timeout(values: dict, notices: list) -> float:
    """--timeout, else the configured lock_timeout_s (30 s by default, as the origin's); a
    problem in the configuration goes to `notices` (the defaults stand in meanwhile)."""
    if values["timeout"] is not None:
        return values["timeout"]
    from sessionward.config import load_config

    config = load_config()
    notices += [f"configuration: {problem}" for problem in config.problems]
    return config.lock_timeout_s


class StepWait:
    """A wait in short steps (`lock acquire --step K`), for a caller that cannot show a line
    while a command runs: Claude Code's TUI shows a Bash command's output only once it ended
    (2.1.112), or not at all (2.1.331), so /end's model runs one step at a time and tells
    its person, between steps, who holds the lock and for how long.

    The whole wait (`total`: --timeout, else lock_timeout_s) is cut into steps of
    WAIT_STEP_S: step 0 only tries (no wait); step K (1..count) waits up to WAIT_STEP_S, the
    last one what is left. No state is kept between steps: K says how far the wait is, and
    between two steps the caller is not in the lock's queue (it joins it again at the back)."""

    __slots__ = ("step", "total")

    def __init__(self, step: int, total: float) -> None:
        self.step = step
        self.total = total

    @property
    def count(self) -> int:
        return int(-(-self.total // WAIT_STEP_S))  # ceil: 30 s is 6 steps of 5 s

    @property
    def timeout(self) -> float:
        if self.step == 0 or self.step > self.count:
            return 0.0
        return min(WAIT_STEP_S, self.total - WAIT_STEP_S * (self.step - 1))

    @property
    def last(self) -> bool:
        return self.step >= self.count

    def waited(self) -> float:
        return min(self.total, WAIT_STEP_S * self.step)


def _step(values: dict, notices: list) -> StepWait | None:
    step = values.get("step")
    if step is None:
        return None
    from sessionward.errors import BadInput

    if not (step.isascii() and step.isdigit()) or int(step) > MAX_STEP:  # "²".isdigit(), int("²") fails
        raise BadInput(f"invalid step {step!r}: expected a whole number from 0 to {MAX_STEP}")
    return StepWait(int(step), _timeout(values, notices))


def run_acquire(values: dict) -> Output:
    owner = _owner(values)
    holder = locks.Holder.caller() if values["caller"] else locks.Holder.session_owner(owner)
    lock = _lock(values, holder, owner)
    notices: list = []
    wait = _step(values, notices)
    reporter = WaitReporter()
    try:
        if wait is None:
            acquired = lock.acquire(_timeout(values, notices), reporter)
        else:  # the step's own line says who holds it: no progress lines
            acquired = _acquire_step(lock, wait)
    finally:
        reporter.done()
    state = lock.status()
    data = {"lock": state.to_json(), "already_held": acquired.already_held, "waited_s": round(acquired.waited_s, 3),
            "took_over": acquired.took_over.to_json() if acquired.took_over else None}

    def lines(style):
        if values["quiet"]:
            return []
        if acquired.already_held:
            return [f"lock {lock.name} is already yours (pid {state.pid})"]
        waited = f" after {acquired.waited_s:.1f} s" if acquired.waited_s >= 0.1 else ""
        return [f"acquired lock {lock.name}{waited} (holder pid {state.pid}, {style.path(lock.path)})"]

    return Output("lock acquire", data, lines, EXIT_OK, notices + _took_over_notice(acquired))


def _acquire_step(lock: locks.NamedLock, wait: StepWait):
    try:
        return lock.acquire(wait.timeout)
    except locks.LockTimeout as timeout:
        if wait.last:  # the whole wait is over: the usual timeout, counting every step
            raise locks.LockTimeout(timeout.state, wait.total) from None
        from sessionward._humanize import short_path

        raise LockStillWaiting(timeout, wait, short_path) from None


def run_release(values: dict) -> Output:
    owner = _owner(values)
    holder = locks.Holder.caller() if values["caller"] else locks.Holder.session_owner(owner)
    # --caller (end_with_lock) frees the caller's own lock only, never a sibling's of the session
    released = _lock(values, holder, owner).release(force=values["force"], by_session=not values["caller"])
    state = released.state
    data = {"was": released.was, "lock": state.to_json()}
    text = {
        "held": f"released lock {released.name}",
        "free": f"lock {released.name} was not held; nothing to do",
        "orphaned": f"removed orphaned lock {released.name} ({state.liveness.reason if state.liveness is not None else 'no holder'})",
        "forced": f"forcibly released lock {released.name}, held by {state.describe()}; "
        + (state.liveness.reason if state.liveness is not None else "its holder was not judged"),
        "lost": f"lock {released.name} was no longer ours; left as it is",
    }[released.was]
    return Output("lock release", data, lambda style: [] if values["quiet"] else [text])


def run_status(values: dict) -> Output:
    if values["all"] and values["name"]:
        from sessionward.errors import UsageError

        raise UsageError("lock status: give a NAME or --all, not both")
    names = locks.known_lock_names() if values["all"] else [locks.validate_lock_name(values["name"] or locks.END_LOCK)]
    states = [locks.NamedLock(name).status() for name in names]

    def lines(style):
        if not states:
            return ["no locks"]
        out = []
        for state in states:
            if state.held:
                advice = f"; {state.advice('')}" if state.stopped else ""
                if not state.liveness.known:
                    advice = f"; {UNKNOWN_ADVICE} with 'sessionward lock release {state.name} --force'"
                out.append(f"{state.name}: held by {state.describe(style.path)}; {state.liveness.reason}{advice}")
            elif state.present:
                out.append(
                    f"{state.name}: orphaned ({state.describe(style.path)}; {state.liveness.reason}); "
                    "the next acquire takes it over, 'sessionward lock cleanup' removes it"
                )
            else:
                out.append(f"{state.name}: free")
        return out

    return Output("lock status", {"locks": [s.to_json() for s in states]}, lines)


def run_cleanup(values: dict) -> Output:
    cleaned = locks.cleanup_orphans(dry_run=values["dry_run"], name=values["name"])

    def lines(style):
        if not cleaned:
            return ["no orphaned locks"]
        return [f"{c.action} orphaned lock {c.state.name}: {c.state.describe(style.path)}; {c.state.liveness.reason}" for c in cleaned]

    data = {"dry_run": bool(values["dry_run"]), "cleaned": [dict(c.state.to_json(), action=c.action) for c in cleaned]}
    return Output("lock cleanup", data, lines)


def run_run(values: dict) -> Output:
    owner = _owner(values)
    lock = _lock(values, None, owner)
    reporter = WaitReporter()

    def acquired(result):
        reporter.done()
        for line in _took_over_notice(result):
            sys.stderr.write(f"sessionward: {line}\n")

    try:
        notices: list = []
        timeout = _timeout(values, notices)
        for line in notices:
            sys.stderr.write(f"sessionward: {line}\n")
        status = locks.run_locked(lock, values["command"], timeout, reporter, acquired)
    finally:
        reporter.done()
    return Output("lock run", {"exit_status": status}, None, status)


def run_check(values: dict) -> Output:
    owner = _owner(values)
    project = values["project"]
    if project is not None:
        from sessionward.registry import validate_project_name

        validate_project_name(project)
    state = _lock(values, locks.Holder.session_owner(owner), owner).status()
    session = (state.meta or {}).get("session") or {}
    mine = locks.Holder(owner, True).is_process(session.get("owner"))
    other_project = project is not None and session.get("project") not in (None, project)
    blocking = state.held and not mine and not other_project
    data = {"safe": not blocking, "lock": state.to_json()}

    def lines(style):
        if not state.held:
            return [f"lock {state.name} is free: safe to write"]
        if mine:
            return [f"lock {state.name} is yours: safe to write"]
        if other_project:
            return [f"lock {state.name} is held by a session of project {session.get('project')}: safe to write {project}'s notes"]
        return [
            f"not safe: lock {state.name} is held by {state.describe(style.path)}",
            f"  -> {state.advice('wait until it is released (sessionward lock status), then write')}",
        ]

    return Output("lock check", data, lines, EXIT_CONFLICT if blocking else EXIT_OK)
