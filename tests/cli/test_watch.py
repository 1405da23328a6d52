"""`sessionward watch`: the snapshot (--once, --json), the plain table that refreshes when piped,
and (marked slow) the live curses view driven through a private tmux server: what it shows,
how fast a change reaches the screen, its keys, NO_COLOR and a small terminal.

Sessions are registered through the Python API, owned by live `sleep` processes; activity
reaches them through `sessionward hook` (a Notification payload as Claude Code's hooks
reference documents it: none was captured from the real CLI, see tests/hooks/test_activity.py)
or the activity API.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

from sessionward import activity, registry
from sessionward.cli.watch import FULL_REFRESH_S, RETRY_S, down_line
from sessionward.errors import StoreUnavailable

from helpers import SESSIONWARD, make_git_repo, run_cli

A1 = "a1a1a1a1-0000-4000-8000-000000000001"
A2 = "a2a2a2a2-0000-4000-8000-000000000002"
B1 = "b1b1b1b1-0000-4000-8000-000000000003"
PERMISSION = {"hook_event_name": "Notification", "message": "Claude needs your permission to use Bash",
              "title": "Permission needed", "notification_type": "permission_prompt", "permission_mode": "default"}


@pytest.fixture
def world(tmp_path, owners):
    """webapp: two sessions in one worktree (a shared worktree); notes: one session."""
    webapp = make_git_repo(tmp_path / "webapp")
    notes = make_git_repo(tmp_path / "notes")
    for sid, where in ((A1, webapp), (A2, webapp), (B1, notes)):
        registry.register_session(str(where), session_id=sid, owner=owners())
        activity.note_event("UserPromptSubmit", sid, {"cwd": str(where)})
    return {"webapp": str(webapp), "notes": str(notes)}


def hook(event: str, payload: dict):
    done = subprocess.run([SESSIONWARD, "hook", event], input=json.dumps(payload), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return done


def wait_for_permission(sid: str, cwd: str):
    hook("Notification", dict(PERMISSION, session_id=sid, cwd=cwd, transcript_path=f"/tmp/{sid}.jsonl"))


def test_once_puts_the_session_waiting_for_its_person_first(world):
    wait_for_permission(B1, world["notes"])
    out = run_cli("watch", "--once", check=True).stdout.splitlines()
    assert out[0] == "sessionward watch: 3 sessions, 1 waiting for their person · local store"
    header = out[1].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in out[2:]]
    assert [r["ID"] for r in rows] == ["b1b1b1b1", "a1a1a1a1", "a2a2a2a2"]
    assert rows[0]["ACTIVITY"].startswith("waiting: permission ") and rows[0]["CONFLICT"] == "-"
    assert rows[1]["CONFLICT"] == "worktree with a2a2a2a2" and rows[1]["ACTIVITY"].startswith("busy ")
    assert rows[0]["PROJECT"] == "notes" and rows[1]["PROJECT"] == "webapp" and rows[1]["BRANCH"] == "main"


def test_json_snapshot_names_locks_claims_and_conflicts(world, owners):
    from sessionward.locks import NamedLock

    holder = registry.load_live_sessions()[0]
    mine = [r for r in holder if r["session_id"] == A1][0]
    from sessionward.identity import resolve_owner
    owner = resolve_owner(mine["owner"]["pid"])
    NamedLock("end", owner=owner).acquire(timeout=1)
    from sessionward import claims
    target = os.path.join(world["webapp"], "README")
    claims.record_claim(target, owner=owner, session_id=A1, tool="Edit", checkout=None, now=time.time(),
                        state=claims.file_state(target))
    doc = json.loads(run_cli("watch", "--json", check=True).stdout)
    assert doc["command"] == "watch" and doc["ok"]
    by_id = {s["id"]: s for s in doc["result"]["sessions"]}
    assert by_id[A1]["locks"] == ["end"]
    assert [(c["path"], c["tool"], c["write"]) for c in by_id[A1]["claims"]] == [(target, "Edit", True)]
    assert by_id[A1]["conflict"] == "strong" and by_id[A1]["conflicts_with"] == ["a2a2a2a2"]
    assert by_id[B1]["conflict"] is None and by_id[B1]["activity"]["state"] == "busy"


def test_an_ended_session_is_shown_but_not_counted_as_a_session(world):
    registry.unregister_sessions(session_id=B1)
    activity.note_event("SessionEnd", B1, {"cwd": world["notes"], "reason": "prompt_input_exit"})
    out = run_cli("watch", "--once", check=True).stdout.splitlines()
    assert out[0] == "sessionward watch: 2 sessions, 0 waiting for their person, 1 ended lately · local store"
    rows = {line.split("\t")[0]: line for line in out[2:]}
    assert set(rows) == {"a1a1a1a1", "a2a2a2a2", "b1b1b1b1"} and "ended" in rows["b1b1b1b1"]


def test_project_filter(world):
    out = run_cli("watch", "--once", "--project", "notes", check=True).stdout.splitlines()
    assert out[0] == "sessionward watch: 1 session, 0 waiting for their person, project notes · local store"
    assert [line.split("\t")[0] for line in out[2:]] == ["b1b1b1b1"]


def test_piped_it_prints_the_table_again_within_a_second_of_a_change(world):
    proc = subprocess.Popen([SESSIONWARD, "watch"], stdout=subprocess.PIPE, bufsize=0)
    try:
        first = read_table(proc)
        assert "0 waiting for their person" in first[0]
        changed_at = time.monotonic()
        wait_for_permission(A2, world["webapp"])
        second = read_table(proc)
        took = time.monotonic() - changed_at
        assert "1 waiting for their person" in second[0]
        assert second[2].split("\t")[0] == "a2a2a2a2"
        assert took < 1.5, f"the change took {took:.2f} s to show"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


@pytest.fixture
def on_shared_store(shared_redis, monkeypatch):
    """SESSIONWARD_STORE at the suite's real redis-server, emptied (tests/conftest.py)."""
    from sessionward.store import shared

    with shared_redis.connect() as conn:
        conn.call("FLUSHDB")
    monkeypatch.setenv("SESSIONWARD_STORE", shared_redis.url)
    try:
        yield shared_redis
    finally:
        shared.disconnect()


def test_piped_on_the_shared_store_shows_another_hosts_changes_within_a_second(on_shared_store, tmp_path):
    """Another host (its own state directory: no file here changes) registers a session,
    takes `end`, then its owner exits: each shows within a second (watch's full refresh is
    FULL_REFRESH_S; piped, only a change shows at all)."""
    other = tmp_path / "other-host"
    (other / "home").mkdir(parents=True)
    env = dict(os.environ, SESSIONWARD_HOME=str(other / "state"), HOME=str(other / "home"))
    repo = make_git_repo(tmp_path / "remote-repo")
    owner = subprocess.Popen(["sleep", "600"])
    proc = subprocess.Popen([SESSIONWARD, "watch"], stdout=subprocess.PIPE, bufsize=0)
    try:
        first = read_table(proc)
        assert "sessionward watch: 0 sessions" in first[0]
        assert first[0].endswith(f" · shared store {on_shared_store.url}")
        time.sleep(0.5)  # the next change lands between two of watch's polls
        for argv, seen in (
            (["register", "--pid", str(owner.pid), "--session", B1, "--quiet", "remote", str(repo)],
             # its activity is a file on its host: "-" here (docs/SHARED_STORE.md)
             lambda table: "1 session," in table[0] and table[2].split("\t")[0] == "b1b1b1b1"
             and table[2].split("\t")[5] == "-"),
            (["lock", "acquire", "end", "--pid", str(owner.pid), "--timeout", "5"],
             lambda table: table[2].split("\t")[8] == "end"),
        ):
            done = subprocess.run([SESSIONWARD, *argv], env=env, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            changed_at = time.monotonic()  # committed on the server by now
            while not seen(table := read_table(proc)):
                pass
            took = time.monotonic() - changed_at
            assert took < 1.5, f"{argv[0]} on another host took {took:.2f} s to show: {table}"
    finally:
        owner.kill()
        owner.wait()
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def read_table(proc, timeout: float = 3.0) -> list:
    """The next table watch printed (up to its blank line); fails after `timeout` seconds."""
    import select

    buffered = read_table.pending.setdefault(proc.pid, b"")
    deadline = time.monotonic() + timeout
    while b"\n\n" not in buffered:
        left = deadline - time.monotonic()
        assert left > 0 and select.select([proc.stdout], [], [], left)[0], f"no new table within {timeout} s"
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, "watch ended"
        buffered += chunk
    table, read_table.pending[proc.pid] = buffered.split(b"\n\n", 1)
    return table.decode().splitlines()


read_table.pending = {}


# -- the live view, in tmux ------------------------------------------------------------------------


class Pane:
    """`sessionward watch` in a private tmux server, read with capture-pane."""

    started = 0

    def __init__(self, base, width: int, height: int, env: dict) -> None:
        # A socket of its own: a server just killed may still hold the last one's name.
        Pane.started += 1
        self.socket = str(base / f"tmux{Pane.started}.sock")
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        # The tests' own NO_COLOR=1 (tests/conftest.py) is not the pane's: only `env` says.
        command = f"env -u NO_COLOR {exports} {SESSIONWARD} watch; echo WATCH-EXITED $?; sleep 600"
        self.tmux("new-session", "-d", "-s", "w", "-x", str(width), "-y", str(height), command)

    def tmux(self, *args) -> str:
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "w")

    def wait_for(self, predicate, timeout: float = 3.0) -> float:
        """Seconds until predicate(screen) held; fails showing the screen."""
        start = time.monotonic()
        while True:
            screen = self.screen()
            if predicate(screen):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(f"not shown within {timeout} s:\n{screen}")
            time.sleep(0.05)

    def keys(self, *keys) -> None:
        self.tmux("send-keys", "-t", "w", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def pane(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    made = []

    def start(width=150, height=30, **env):
        env = {"HOME": os.environ["HOME"], "SESSIONWARD_HOME": os.environ["SESSIONWARD_HOME"], "TERM": "tmux-256color",
               **env}
        made.append(Pane(tmp_path, width, height, env))
        return made[-1]

    yield start
    for p in made:
        p.close()


def table_rows(screen: str) -> list:
    lines = screen.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("ID "))
    return [line.split()[0] for line in lines[at + 1:] if line.strip() and not line.startswith("q quit")
            and "above," not in line]


@pytest.mark.slow
def test_live_view_shows_changes_within_a_second_and_answers_its_keys(world, pane):
    watch = pane(NO_COLOR="1")
    watch.wait_for(lambda s: "3 sessions, 0 waiting" in s)
    assert "worktree with a2a2a2a2" in watch.screen()

    changed = time.monotonic()
    wait_for_permission(B1, world["notes"])
    watch.wait_for(lambda s: "1 waiting for their person" in s and table_rows(s)[:1] == ["b1b1b1b1"])
    took = time.monotonic() - changed
    assert took < 1.5, f"a waiting session took {took:.2f} s to show"
    assert "waiting: permission" in watch.screen()

    changed = time.monotonic()
    activity.note_event("PreToolUse", A1, {"tool_name": "Bash", "tool_input": {"command": "pytest -q tests"},
                                           "tool_use_id": "t1"})
    watch.wait_for(lambda s: "busy: Bash pytest -q tests" in s)
    assert time.monotonic() - changed < 1.5

    watch.keys("p")  # first project: notes
    watch.wait_for(lambda s: "project notes" in s and table_rows(s) == ["b1b1b1b1"])
    watch.keys("p")  # webapp
    watch.wait_for(lambda s: "project webapp" in s and sorted(table_rows(s)) == ["a1a1a1a1", "a2a2a2a2"])
    watch.keys("p")  # all again
    watch.wait_for(lambda s: "3 sessions" in s and "project " not in s.splitlines()[0])
    watch.keys("s")
    watch.wait_for(lambda s: "sorted by project" in s and table_rows(s) == ["b1b1b1b1", "a1a1a1a1", "a2a2a2a2"])

    watch.keys("k", "k", "k", "j", "Enter")  # the top row, then one down: the second row's details
    watch.wait_for(lambda s: s.startswith(f"session {A1}") and "shares this worktree with a2a2a2a2" in s)
    assert "pytest -q tests" in watch.screen()
    watch.keys("Escape")
    watch.wait_for(lambda s: s.startswith("sessionward watch:"))
    watch.keys("q")
    watch.wait_for(lambda s: "WATCH-EXITED 0" in s)


@pytest.mark.slow
def test_live_view_fits_a_small_terminal(world, pane):
    watch = pane(NO_COLOR="1")
    watch.wait_for(lambda s: "sessionward watch: 3 sessions" in s)
    watch.tmux("resize-window", "-t", "w", "-x", "60", "-y", "5")  # the window shrinks under it
    watch.wait_for(lambda s: "1 below" in s and "WHERE" not in s)  # 3 rows, room for 2
    screen = watch.screen()
    assert all(len(line) <= 60 for line in screen.splitlines())
    head = screen.splitlines()[1].split()
    assert head[:2] == ["ID", "PROJECT"] and "ACTIVITY" in head and "WHERE" not in head
    watch.tmux("resize-window", "-t", "w", "-x", "150", "-y", "20")
    watch.wait_for(lambda s: "WHERE" in s and len(table_rows(s)) == 3)


@pytest.mark.slow
def test_colour_unless_no_color(world, pane):
    wait_for_permission(B1, world["notes"])
    coloured = pane(TERM="xterm-256color")
    coloured.wait_for(lambda s: "1 waiting" in s)
    escapes = coloured.tmux("capture-pane", "-p", "-e", "-t", "w")
    waiting_row = next(line for line in escapes.splitlines() if "b1b1b1b1" in line)
    assert "33m" in waiting_row  # yellow: waiting for its person
    coloured.close()
    plain = pane(NO_COLOR="1", TERM="xterm-256color")
    plain.wait_for(lambda s: "1 waiting" in s)
    escapes = plain.tmux("capture-pane", "-p", "-e", "-t", "w")
    assert "33m" not in escapes and "31m" not in escapes


@pytest.fixture
def down_store(tmp_path, owners, monkeypatch):
    """A real redis-server as the shared store, one session registered on it: the server
    (kill() and start() it again; AOF keeps the session)."""
    from sessionward.store import shared

    from store.redis_server import RedisServer, need_redis_server

    need_redis_server()
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    monkeypatch.setenv("SESSIONWARD_STORE", server.url)
    try:
        registry.register_session(str(make_git_repo(tmp_path / "webapp")), session_id=A1, owner=owners())
        shared.disconnect()
        yield server
    finally:
        shared.disconnect()
        server.cleanup()


@pytest.mark.slow
def test_live_view_outlives_the_shared_store_going_away(down_store, pane):
    """The store stops answering: the live view says so on its title line and keeps the rows
    (it used to print one line and exit); the store back, the view is as before."""
    watch = pane(NO_COLOR="1", SESSIONWARD_STORE=down_store.url)
    watch.wait_for(lambda s: s.startswith("sessionward watch: 1 session") and "a1a1a1a1" in s)
    down_store.kill()  # seen at the next full snapshot: a shared store's change moves no local token
    watch.wait_for(lambda s: "unavailable" in s.splitlines()[0] and "trying again every 1 s" in s,
                   timeout=FULL_REFRESH_S + 2)
    screen = watch.screen()
    assert "WATCH-EXITED" not in screen and "a1a1a1a1" in screen, screen
    down_store.start()
    watch.wait_for(lambda s: s.startswith("sessionward watch: 1 session") and "a1a1a1a1" in s, timeout=RETRY_S + 3)
    watch.keys("q")
    watch.wait_for(lambda s: "WATCH-EXITED 0" in s)


def test_its_line_for_a_store_down_names_what_set_the_store():
    named_by_file = StoreUnavailable("unix:///run/r.sock", "no reply within 0.25 s", setting="/home/u/.claude/sessionward.toml")
    assert down_line(named_by_file) == (
        "shared store unix:///run/r.sock unavailable: no reply within 0.25 s; trying again every 1 s; start it, or "
        "check `store` in /home/u/.claude/sessionward.toml (remove it to use the local store)")


@pytest.mark.slow
def test_piped_it_outlives_the_shared_store_going_away(down_store):
    env = dict(os.environ, SESSIONWARD_STORE=down_store.url)
    proc = subprocess.Popen([SESSIONWARD, "watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert "a1a1a1a1" in "".join(read_table(proc))
        down_store.kill()
        line = "".join(read_table(proc, timeout=FULL_REFRESH_S + 2))  # noticed at the next full snapshot
        assert "unavailable" in line and "trying again every 1 s; start it, or check SESSIONWARD_STORE (unset it " \
            "to use the local store)" in line, line
        time.sleep(1.5)
        assert proc.poll() is None, proc.stderr.read().decode()
        down_store.start()
        assert "a1a1a1a1" in "".join(read_table(proc, timeout=RETRY_S + 3))
    finally:
        proc.kill()
        proc.wait()
