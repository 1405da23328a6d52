"""watch: a live view of every session (sessionward.overview), in the whole terminal.

On a terminal it draws with curses, the standard library's binding of ncurses, imported here
and nowhere else. Why curses rather than textual, urwid or prompt_toolkit: it adds no
dependency; ncurses reads terminfo, so it draws right in tmux, screen and over SSH, and sends
only the cells that changed (cheap on a slow link); and the idle loop is ours: a getch that
waits in C for a key up to POLL_S, then a few stat() calls (overview.change_token; on the
shared store also one small script: the change counter every shared write bumps), with no
event loop or timers of a framework's own. A snapshot is taken only when that token changed
(or every FULL_REFRESH_S, for a branch switched in a worktree), the screen is redrawn once a
second for the ages, so 50 idle sessions cost next to nothing (docs/BENCHMARKS.md).

The header names the store viewed: "local store", or "shared store URL" (no password). On
the shared store every host's sessions, locks and claims show; activity (busy, waiting,
idle) is kept per host, so another host's sessions show none beyond what the registry has.

Keys: q quit · s next sort (attention, project, age, last activity) · p next project (all,
then each) · up/down (k/j) select · enter details of the selected session (esc, enter or
backspace back) · r refresh now.

Colour unless NO_COLOR is set, TERM is dumb or the terminal has none: waiting rows yellow,
a shared worktree red, a shared project yellow, ended rows dim. Without colour the same rows
are bold, and the conflict cell says it in words anyway. On a terminal too narrow, columns go
from the least useful (where, up, branch) on; too short, the rows that fit and how many more.

The shared store going away while it runs does not end it: the title line says so, the rows
stay as last seen, and it tries again every second until the store answers (a store that
cannot be reached at the start is one line and exit 3, as for any command).

When stdout is not a terminal: the same table as text, printed again whenever something
changed (or one line when the shared store stops answering, and again once it answers),
until interrupted; `--once` prints one snapshot and exits (with --json, the
versioned envelope).
"""

import os
import sys
import time

from sessionward.cli.render import Output, Style

TYPE_CHECKING = False  # mypy reads the block as true; at run time nothing more is imported
if TYPE_CHECKING:
    from sessionward.overview import Snapshot

POLL_S = 0.25  # how long a key is waited for before the change token is looked at again
FULL_REFRESH_S = 5.0  # a snapshot at least this often (a branch switched shows no token change)
RETRY_S = 1.0  # how often a shared store that stopped answering is tried again
HEADERS = ("ID", "PROJECT", "WORKTREE", "BRANCH", "WHERE", "ACTIVITY", "UP", "LAST", "LOCKS", "FILES", "CONFLICT")
# Columns a narrow terminal drops first, in order; the others always stay.
DROP_ORDER = ("WHERE", "UP", "BRANCH", "LAST", "FILES", "LOCKS", "WORKTREE")
MAX_CELL = {"WORKTREE": 40, "ACTIVITY": 48, "CONFLICT": 36}


def run_watch(values: dict) -> Output:
    project = values.get("project")
    if values.get("once") or values.get("json") or not sys.stdout.isatty():
        if values.get("once") or values.get("json"):
            return snapshot_output(project)
        return _plain_loop(project)
    if not sys.stdin.isatty():
        from sessionward.errors import BadInput

        raise BadInput("watch: the live view reads keys from a terminal; use --once for a snapshot")
    import curses  # only here: no other command pays for it

    os.environ.setdefault("ESCDELAY", "25")  # Esc answers at once, not after ncurses' default 1 s
    # The terminal's own size, never LINES/COLUMNS from the environment: an exported COLUMNS
    # (some shells and tools set it) is stale once the window is resized, and while either is
    # set ncurses ignores resizes. (use_env(False) would also stop it from following resizes.)
    os.environ.pop("LINES", None)
    os.environ.pop("COLUMNS", None)
    try:
        curses.wrapper(lambda screen: _Screen(screen, curses, project).run())
    except KeyboardInterrupt:
        pass
    return Output("watch", {})


def down_line(exc) -> str:
    """What watch shows while the shared store does not answer (exc: StoreUnavailable)."""
    return f"{exc.message}; trying again every {RETRY_S:g} s; {exc.hint}"  # the hint names what set the store


# -- the table, as text ---------------------------------------------------------------------------


def cells(row, now: float, style: Style) -> list[str]:
    from sessionward._humanize import format_age

    def ago(when):
        return format_age(now - when) if isinstance(when, (int, float)) and when else "-"

    conflict = ""
    if row.conflict in ("strong", "warning"):
        what = "worktree" if row.conflict == "strong" else "project"
        conflict = f"{what} with {', '.join(row.conflicts_with)}"
    return [
        row.label, row.project or "-", style.path(row.worktree) if row.worktree else "-", row.branch or "-",
        row.where or "-", row.activity_text, ago(row.started_at), ago(row.last_at),
        ", ".join(row.locks) or "-", str(len(row.claims)) if row.claims else "-", conflict or "-",
    ]


def header_line(snapshot, project, sort: str) -> str:
    count = sum(1 for row in snapshot.rows if row.record is not None)  # live: in the registry
    ended = len(snapshot.rows) - count  # shown a while after they ended, not counted as sessions
    waiting = snapshot.waiting_count()
    parts = [f"{count} session{'s' if count != 1 else ''}", f"{waiting} waiting for their person"]
    if ended:
        parts.append(f"{ended} ended lately")
    if project:
        parts.append(f"project {project}")
    if sort != "attention":
        parts.append(f"sorted by {sort}")
    from sessionward import store

    return "sessionward watch: " + ", ".join(parts) + " · " + store.description()


def snapshot_output(project: str | None) -> Output:
    from sessionward.overview import take_snapshot

    snapshot = take_snapshot(project=project)

    def lines(style: Style) -> list[str]:
        out = [header_line(snapshot, project, "attention")]
        if snapshot.rows:
            out += style.table(list(HEADERS), [cells(r, snapshot.taken_at, style) for r in snapshot.rows])
        return out

    data = {"taken_at": snapshot.taken_at, "sessions": [r.to_json() for r in snapshot.rows]}
    return Output("watch", data, lines, notices=snapshot.notices)


def _plain_loop(project: str | None) -> Output:
    """Not a terminal: print the table again whenever something changed, until interrupted."""
    import signal

    from sessionward.errors import StoreUnavailable
    from sessionward.overview import change_token, take_snapshot, transcript_token

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    style = Style.for_stream(sys.stdout)
    token = written = None
    transcripts: list = []
    down = None  # the shared store's error while it does not answer
    taken = 0.0
    try:
        while True:
            current = change_token()
            changed = current != token or transcript_token(transcripts) != written or down
            # Also every FULL_REFRESH_S, printed only if it changed: a shared store that stopped
            # answering changes no local token.
            if changed or time.monotonic() - taken >= FULL_REFRESH_S:
                token = current
                taken = time.monotonic()
                try:
                    snapshot = take_snapshot(project=project)
                except StoreUnavailable as exc:
                    if written is None:
                        raise  # unreachable from the start: one line and exit 3
                    if str(exc) != down:
                        down = str(exc)
                        sys.stdout.write(f"{time.strftime('%H:%M:%S')} sessionward: {down_line(exc)}\n\n")
                        sys.stdout.flush()
                    time.sleep(RETRY_S)
                    continue
                down = None
                if not changed:
                    time.sleep(POLL_S)
                    continue
                transcripts = snapshot.transcripts
                written = transcript_token(transcripts)
                lines = [f"{time.strftime('%H:%M:%S')} {header_line(snapshot, project, 'attention')}"]
                if snapshot.rows:
                    lines += style.table(list(HEADERS), [cells(r, snapshot.taken_at, style) for r in snapshot.rows])
                sys.stdout.write("\n".join(lines) + "\n\n")
                sys.stdout.flush()
            time.sleep(POLL_S)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    return Output("watch", {})


def fit_columns(rows: list[list[str]], width: int) -> tuple[list[int], list[int]]:
    """(indexes of the columns shown, their widths) for a screen `width` cells wide."""
    shown = list(range(len(HEADERS)))
    widths = []
    for i, name in enumerate(HEADERS):
        longest = max([len(name)] + [len(r[i]) for r in rows])
        widths.append(min(longest, MAX_CELL.get(name, longest)))
    for name in DROP_ORDER:
        if sum(widths[i] + 2 for i in shown) <= width:
            break
        shown.remove(HEADERS.index(name))
    return shown, [widths[i] for i in shown]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


# -- the live view ----------------------------------------------------------------------------------


class _Screen:
    def __init__(self, screen, curses, project: str | None) -> None:
        from sessionward.overview import SORT_KEYS

        self.screen = screen
        self.curses = curses
        self.project = project
        self.sorts = SORT_KEYS
        self.sort = SORT_KEYS[0]
        self.snapshot: Snapshot = None  # type: ignore[assignment]  # the loop takes one before drawing
        self.token: tuple | None = None
        self.written: tuple | None = None  # transcript_token of the snapshot's waiting sessions
        self.taken = 0.0
        self.down: str | None = None  # the shared store's error while it does not answer
        self.down_since = 0.0
        self.selected = None  # the selected session's id: selection follows it across refreshes
        self.details = False
        self.scroll = 0
        self.style = Style(tty=True, color=False)
        self.attrs = self._attributes()

    def _attributes(self) -> dict:
        curses = self.curses
        use_color = ("NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb" and curses.has_colors())
        attrs = {"waiting": curses.A_BOLD, "strong": curses.A_BOLD, "warning": curses.A_BOLD, "ended": curses.A_DIM,
                 "header": curses.A_BOLD, "selected": curses.A_REVERSE, "plain": curses.A_NORMAL}
        if use_color:
            curses.start_color()
            try:
                curses.use_default_colors()
                background = -1
            except curses.error:
                background = curses.COLOR_BLACK
            curses.init_pair(1, curses.COLOR_YELLOW, background)
            curses.init_pair(2, curses.COLOR_RED, background)
            attrs["waiting"] = curses.color_pair(1) | curses.A_BOLD
            attrs["warning"] = curses.color_pair(1)
            attrs["strong"] = curses.color_pair(2) | curses.A_BOLD
        return attrs

    def run(self) -> None:
        curses = self.curses
        try:
            curses.curs_set(0)
        except curses.error:
            pass  # a terminal that cannot hide its cursor
        self.screen.timeout(int(POLL_S * 1000))
        shown_second = None
        while True:
            now = time.time()
            token = _change_token()
            dirty = False
            if (token != self.token or now - self.taken >= (RETRY_S if self.down else FULL_REFRESH_S)
                    or self.snapshot is None
                    or _transcript_token(self.snapshot.transcripts) != self.written):
                self.token = token  # read before the snapshot: a change made meanwhile is seen next time
                self._take(now)
                self.written = _transcript_token(self.snapshot.transcripts)
                dirty = True
            if dirty or int(now) != shown_second:
                shown_second = int(now)
                self._draw(now)
            key = self.screen.getch()
            if key == -1:
                continue
            if not self._key(key):
                return

    def _take(self, now: float) -> None:
        from sessionward.errors import StoreUnavailable
        from sessionward.overview import sort_rows, take_snapshot

        try:
            snapshot = take_snapshot(now=now, project=self.project)
        except StoreUnavailable as exc:
            if self.snapshot is None:
                raise  # unreachable from the start: one line and exit 3
            if not self.down:
                self.down_since = now
            self.down = down_line(exc)
            self.taken = now  # the rows stay as last seen; tried again in RETRY_S
            return
        self.down = None
        self.snapshot = snapshot
        if self.sort != "attention":
            self.snapshot.rows = sort_rows(self.snapshot.rows, self.sort)
        self.taken = now
        ids = [r.id for r in self.snapshot.rows]
        if self.selected not in ids:
            self.selected = ids[0] if ids else None

    def _key(self, key: int) -> bool:
        """Act on a key; False to quit."""
        curses = self.curses
        char = chr(key) if 0 <= key < 256 else ""
        if char in ("q", "Q"):
            return False
        if self.details:
            if key in (27, curses.KEY_BACKSPACE, 127, 8, 10, 13, curses.KEY_ENTER) or char == "h":
                self.details, self.scroll = False, 0
            elif key in (curses.KEY_DOWN,) or char == "j":
                self.scroll += 1
            elif key in (curses.KEY_UP,) or char == "k":
                self.scroll = max(0, self.scroll - 1)
        elif key == 27:
            return False
        elif char == "s":
            self.sort = self.sorts[(self.sorts.index(self.sort) + 1) % len(self.sorts)]
            self.token = None
        elif char == "p":
            projects = [None] + (self.snapshot.projects if self.project is None else self._all_projects())
            at = projects.index(self.project) if self.project in projects else 0
            self.project = projects[(at + 1) % len(projects)]
            self.token = None
        elif char == "r":
            self.token = None
        elif key in (curses.KEY_DOWN, curses.KEY_UP) or char in ("j", "k"):
            ids = [r.id for r in self.snapshot.rows]
            if ids:
                at = ids.index(self.selected) if self.selected in ids else 0
                at += 1 if key == curses.KEY_DOWN or char == "j" else -1
                self.selected = ids[max(0, min(len(ids) - 1, at))]
        elif key in (10, 13, curses.KEY_ENTER) or char == "d":
            self.details = self.selected is not None
        elif key == curses.KEY_RESIZE:
            pass
        self._draw(time.time())
        return True

    def _all_projects(self) -> list:
        from sessionward.overview import take_snapshot

        return take_snapshot().projects

    # -- drawing --

    def _put(self, y: int, x: int, text: str, attr=0) -> None:
        height, width = self.screen.getmaxyx()
        if 0 <= y < height and x < width:
            try:
                self.screen.addnstr(y, x, text, width - x, attr)
            except self.curses.error:
                pass  # the bottom-right cell: curses cannot move the cursor past it

    def _draw(self, now: float) -> None:
        self.screen.erase()
        if self.details:
            self._draw_details(now)
        else:
            self._draw_table(now)
        self.screen.refresh()

    def _draw_table(self, now: float) -> None:
        height, width = self.screen.getmaxyx()
        snapshot = self.snapshot
        title = header_line(snapshot, self.project, self.sort)
        if self.down:
            since = time.strftime("%H:%M:%S", time.localtime(self.down_since))
            title = f"{self.down}; the rows are as of {since}"
        self._put(0, 0, _fit(title, width), self.attrs["strong" if self.down else "header"])
        if height < 4:
            return
        rows = [cells(r, now, self.style) for r in snapshot.rows]
        shown, widths = fit_columns(rows, width)

        def line(values):
            return "  ".join(_fit(values[i], w).ljust(w) for i, w in zip(shown, widths)).rstrip()

        self._put(1, 0, line(HEADERS), self.attrs["header"] | self.curses.A_UNDERLINE)
        room = height - 3  # title, headers, keys line
        if not rows:
            self._put(2, 0, "no live session" + (f" on project {self.project}" if self.project else ""))
        ids = [r.id for r in snapshot.rows]
        at = ids.index(self.selected) if self.selected in ids else 0
        first = max(0, at - room + 1) if len(rows) > room else 0
        visible = snapshot.rows[first:first + room]
        for offset, (row, values) in enumerate(zip(visible, rows[first:first + room])):
            attr = self._row_attr(row)
            if row.id == self.selected:
                attr |= self.attrs["selected"]
            self._put(2 + offset, 0, line(values).ljust(min(width, sum(widths) + 2 * len(widths))), attr)
        more = len(rows) - first - len(visible)
        keys = "q quit  s sort  p project  ↑↓ select  enter details"
        if more > 0 or first:
            keys = f"{first} above, {max(more, 0)} below · " + keys
        self._put(height - 1, 0, _fit(keys, width), self.attrs["plain"])

    def _row_attr(self, row) -> int:
        if row.waiting:
            return self.attrs["waiting"]
        if row.state == "ended":
            return self.attrs["ended"]
        if row.conflict in ("strong", "warning"):
            return self.attrs[row.conflict]
        return self.attrs["plain"]

    def _draw_details(self, now: float) -> None:
        height, width = self.screen.getmaxyx()
        row = next((r for r in self.snapshot.rows if r.id == self.selected), None)
        lines = details_lines(row, now, self.style) if row else ["that session is gone"]
        self.scroll = min(self.scroll, max(0, len(lines) - (height - 1)))
        for y, text in enumerate(lines[self.scroll:self.scroll + height - 1]):
            self._put(y, 0, _fit(text, width), self.attrs["header"] if y == 0 and not self.scroll else 0)
        self._put(height - 1, 0, _fit("esc back  ↑↓ scroll  q quit", width))


def _change_token() -> tuple:
    from sessionward.overview import change_token

    return change_token()


def _transcript_token(transcripts) -> tuple:
    from sessionward.overview import transcript_token

    return transcript_token(transcripts)


def details_lines(row, now: float, style: Style) -> list[str]:
    """One session in full: where, what it does, what it holds, whom it is in the way of."""
    from sessionward._humanize import format_age

    record = row.record or {}
    doing = row.activity or {}
    owner = record.get("owner") or {}
    lines = [f"session {row.id}", ""]
    lines.append(f"  project   {row.project or '-'}")
    lines.append(f"  worktree  {style.path(row.worktree) if row.worktree else '-'}   branch {row.branch or '-'}")
    if record.get("cwd") and record.get("cwd") != row.worktree:
        lines.append(f"  cwd       {style.path(record['cwd'])}")
    if owner:
        lines.append(f"  owner     pid {owner.get('pid')} ({owner.get('comm') or '?'}), {row.where}, kind {record.get('kind')}")
    if row.started_at:
        lines.append(f"  up        {format_age(now - row.started_at)}")
    lines.append(f"  activity  {row.activity_text}")
    for key, label in (("target", "on"), ("message", "message"), ("reason", "reason")):
        if doing.get(key):
            lines.append(f"  {label:<9} {doing[key]}")
    lines.append(f"  locks     {', '.join(row.locks) or 'none'}")
    if row.conflicts_with:
        what = "this worktree" if row.conflict == "strong" else "this project"
        lines.append(f"  shares {what} with {', '.join(row.conflicts_with)}")
    lines += ["", f"  files ({len(row.claims)})"]
    for path, claim in row.claims:
        verb = "edited" if claim.get("write") else "read"
        lines.append(f"    {verb:<6} {format_age(now - claim['at']):>5} ago  {style.path(path)}")
    return lines
