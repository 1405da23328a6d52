"""Torture: notes shared across state directories and Unix users (sessionward.notes).

Two promises, tested with real processes of real second users:
  - Writers of one note exclude each other whatever their state directory
    (CLAUDE_CONFIG_DIR) or Unix user: 30+30 concurrent `note append` from two state
    directories, and from two users on a shared directory, all land; two concurrent
    `note write --expect-sha256 H` of one note: exactly one wins, every round. The negative
    control (SESSIONWARD_TEST_DISABLE_LOCKS=1) shows the appends test catches lost writes.
  - A note's path is opened the way the kernel would open it: another user's symlink in a
    sticky world-writable directory is refused (with fs.protected_symlinks at 1 and at 0),
    a file the caller could not write through the path is never replaced, a note the sticky
    bit protects is refused in one line.

Running as another user: the clone (and its virtualenv) may sit in a 0700 directory, so
the other users run one world-readable copy of the package and the real launcher
(helpers.install_for_other_user, one OtherUser per user over the same copy); the tests skip,
saying why, when no interpreter is usable by them. Processes are released together by a
gate: each waits for a shared flock(1) on a file the test holds exclusively until all of
them wait; flock(1) runs as the user too, between setpriv and the launcher.
"""

import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from helpers import SESSIONWARD, OtherUser, install_for_other_user

PART = "shared notes"
STEP_TIMEOUT_S = 120.0
PROTECTED_SYMLINKS = "/proc/sys/fs/protected_symlinks"
PREFIX = "swn"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates users, chowns, writes sysctls")
pytestmark = needs_root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the world: two users and their shared group, one world-readable install for both ----------


class World:
    def __init__(self, base: str, users: dict[str, OtherUser], group: int) -> None:
        self.base = base
        self.users = users  # name -> its helpers.OtherUser (.uid, .gid)
        self.group = group
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONWARD_", "CLAUDE_"))}
        self.env.update(NO_COLOR="1")

    def argv(self, *args, user: str | None = None, via=()) -> list[str]:
        """`sessionward ARGS` as `user` (None: this process's user), through `via` if given."""
        return [*via, SESSIONWARD, *args] if user is None else self.users[user].argv(*args, via=via)

    def run(self, *args, user=None, input=None, env=None):
        own = {} if user is None else {"SESSIONWARD_HOME": self.homes[user], "HOME": self.homes[user]}
        return subprocess.run(self.argv(*args, user=user), env={**self.env, **own, **(env or {})}, input=input,
                              capture_output=True, timeout=STEP_TIMEOUT_S, cwd=self.base)

    def as_user(self, user: str, *argv: str):
        return subprocess.run([*self.users[user].prefix(), *argv], capture_output=True, timeout=STEP_TIMEOUT_S,
                              cwd=self.base)

    def ids(self, user: str) -> tuple[int, int]:
        return self.users[user].uid, self.users[user].gid

    def mkdir(self, name: str, mode: int, owner: str | None = None, group: int | None = None) -> str:
        path = os.path.join(self.base, name)
        os.mkdir(path)
        uid, gid = self.ids(owner) if owner else (0, 0)
        os.chown(path, uid, group if group is not None else gid)
        os.chmod(path, mode)
        return path

    def state_dir(self, name: str, owner: str | None = None) -> str:
        return self.mkdir(name, 0o700, owner)


def _useradd(name: str, group: str) -> tuple[int, int]:
    subprocess.run(["useradd", "-M", "-N", "-g", group, "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="module")
def world():
    tag = f"{PREFIX}{os.getpid() % 100000}"
    group = f"{tag}g"
    names = [f"{tag}a", f"{tag}b"]
    base = tempfile.mkdtemp(prefix="sessionward-shared-notes-")
    created: list[str] = []
    try:
        subprocess.run(["groupadd", group], check=True, capture_output=True)
        ids = {}
        for name in names:
            ids[name] = _useradd(name, group)
            created.append(name)
        other = install_for_other_user(base, *ids[names[0]])  # one copy, run by both users
        users = {}
        for name in names:
            users[name] = other if isinstance(other, str) else other.for_user(*ids[name])
            if isinstance(users[name], str):
                pytest.skip(users[name])  # saying why: no interpreter they may run, or no setpriv
        here = World(base, users, grp.getgrnam(group).gr_gid)
        here.homes = {name: here.state_dir(f"home-{name}", owner=name) for name in names}  # their own state
        yield here
    finally:
        for name in created:
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh(world, request):
    """A per-test directory under the world's base (removed afterwards)."""
    sub = tempfile.mkdtemp(prefix=request.node.name[:40] + "-", dir=world.base)
    os.chmod(sub, 0o755)
    old = world.base
    world.base = sub
    try:
        yield world
    finally:
        world.base = old
        shutil.rmtree(sub, ignore_errors=True)


# -- a gate: start many processes, release them at once -------------------------------------------


def _waiters_on(path: str) -> int:
    inode = os.stat(path).st_ino
    with open("/proc/locks") as locks:
        return sum(1 for line in locks if "->" in line and f":{inode} " in line)


def run_together(world: World, commands: list[tuple[str | None, list[str], dict]]) -> list[subprocess.CompletedProcess]:
    """Run every `sessionward ARGS` given as (user, args, env) at the same instant (as near as
    the kernel allows); user None is this process's user."""
    gate = os.path.join(world.base, f"gate-{len(commands)}-{time.monotonic_ns()}")
    with open(gate, "w"):
        pass
    os.chmod(gate, 0o644)
    holder = os.open(gate, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    procs = []
    try:
        for user, args, env in commands:  # the gate goes inside setpriv: flock(1) runs as the user too
            procs.append(subprocess.Popen(world.argv(*args, user=user, via=("flock", "-s", gate)),
                                          env={**world.env, **env}, cwd=world.base,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        deadline = time.monotonic() + 30
        while _waiters_on(gate) < len(procs) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.close(holder)  # the gate opens
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=STEP_TIMEOUT_S)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


# -- many writers from two state directories, and from two users ----------------------------------

EACH = 30


def _append_commands(world: World, note: str, writers: list[tuple[str, str | None, dict]], extra: dict):
    commands = []
    for label, user, env in writers:
        for i in range(EACH):
            commands.append((user, ["note", "append", note, f"{label}-{i}", "--quiet"], {**env, **extra}))
    return commands


def _two_state_dirs(world: World) -> tuple[str, list]:
    vault = world.mkdir("vault", 0o755)
    work, personal = world.state_dir("claude-work"), world.state_dir("claude-personal")
    return vault, [("work", None, {"CLAUDE_CONFIG_DIR": work}), ("personal", None, {"CLAUDE_CONFIG_DIR": personal})]


def _two_users(world: World) -> tuple[str, list]:
    vault = world.mkdir("team-vault", 0o2770, group=world.group)  # shared by group, not sticky
    writers = []
    for name in world.users:
        home = world.state_dir(f"state-{name}", owner=name)
        writers.append((name, name, {"SESSIONWARD_HOME": home, "HOME": home}))
    return vault, writers


SETUPS = {"two-state-dirs": _two_state_dirs, "two-users": _two_users}


def _seed_note(world: World, vault: str, content: bytes) -> str:
    note = os.path.join(vault, "daily.md")
    with open(note, "wb") as f:
        f.write(content)
    os.chown(note, 0, world.group)
    os.chmod(note, 0o660)  # both users of the group may write it
    return note


def _appends(world: World, setup: str, extra: dict) -> tuple[list, list[str], list[str]]:
    vault, writers = SETUPS[setup](world)
    note = _seed_note(world, vault, b"")
    done = run_together(world, _append_commands(world, note, writers, extra))
    expected = sorted(f"{label}-{i}" for label, _, _ in writers for i in range(EACH))
    with open(note) as f:
        return done, expected, sorted(f.read().splitlines())


@pytest.mark.parametrize("setup", SETUPS)
def test_concurrent_appends_all_land(fresh, tally, setup):
    t = tally(PART)
    done, expected, lines = _appends(fresh, setup, {})
    t.operations += len(done)
    for result in done:
        t.saw_output("note append", (result.stdout + result.stderr).decode(errors="replace"))
        assert result.returncode == 0, result
    missing = sorted(set(expected) - set(lines))
    for line in missing:
        t.problem("lost_updates", f"{setup}: acknowledged append {line!r} missing")
    t.figures[f"appends ({setup})"] = len(done)
    assert set(lines) <= set(expected) and len(lines) == len(set(lines)), lines  # nothing extra or doubled
    t.check()


@pytest.mark.parametrize("setup", SETUPS)
def test_negative_control_unlocked_appends_lose_some(fresh, tally, setup):
    """The same appends with the lock switched off must lose some, or the test above could
    not catch a lock that fails to exclude."""
    t = tally(PART + " (negative control)")
    for _attempt in range(3):
        fresh.base = tempfile.mkdtemp(dir=fresh.base)
        os.chmod(fresh.base, 0o755)
        done, expected, lines = _appends(fresh, setup, {"SESSIONWARD_TEST_DISABLE_LOCKS": "1"})
        t.operations += len(done)
        if lines != expected:
            t.figures[f"lost unlocked ({setup})"] = len(set(expected) - set(lines))
            t.record()
            return
    pytest.fail("three unlocked runs lost no append: the test could not catch a broken lock")


ROUNDS = 15


@pytest.mark.parametrize("setup", SETUPS)
def test_two_writes_expecting_the_same_sha256_exactly_one_wins(fresh, tally, setup):
    t = tally(PART)
    vault, writers = SETUPS[setup](fresh)
    base = b"version 0\n"
    for round_ in range(ROUNDS):
        note = _seed_note(fresh, vault, base)
        commands = [(user, ["note", "write", note, f"{label} won round {round_}\n", "--expect-sha256", sha(base)], env)
                    for label, user, env in writers]
        done = run_together(fresh, commands)
        t.operations += len(done)
        codes = sorted(result.returncode for result in done)
        winners = [label for (label, _, _), result in zip(writers, done) if result.returncode == 0]
        if codes != [0, 1]:
            t.problem("double_holders", f"{setup} round {round_}: exit codes {codes}, expected one 0 and one 1")
            continue
        loser = next(result for result in done if result.returncode == 1)
        assert b"changed since it was read" in loser.stderr and loser.stderr.count(b"\n") == 1, loser
        with open(note, "rb") as f:
            assert f.read() == f"{winners[0]} won round {round_}\n".encode()
    t.figures[f"rounds with one winner ({setup})"] = ROUNDS - t.double_holders
    t.check()


# -- symlinks, sticky directories and permissions ----------------------------------------------


@pytest.fixture(params=[0, 1], ids=["protected_symlinks=0", "protected_symlinks=1"])
def protected_symlinks(request):
    try:
        with open(PROTECTED_SYMLINKS) as f:
            original = f.read().strip()
    except OSError as exc:
        pytest.skip(f"cannot read {PROTECTED_SYMLINKS}: {exc}")

    def put(value: str) -> None:
        with open(PROTECTED_SYMLINKS, "w") as f:
            f.write(value)

    try:
        try:
            put(str(request.param))
        except OSError as exc:
            pytest.skip(f"cannot set {PROTECTED_SYMLINKS}: {exc}")
        yield request.param
    finally:
        put(original)  # always: the setting is the whole machine's


def one_line(result, code: int, *fragments: str) -> None:
    err = result.stderr.decode(errors="replace")
    assert result.returncode == code, (result.returncode, err)
    assert err.endswith("\n") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def _victim_and_shared(world: World):
    victim, attacker = list(world.users)
    home = world.mkdir("home-victim", 0o755, owner=victim)
    bashrc = os.path.join(home, ".bashrc")
    with open(bashrc, "w") as f:
        f.write("original\n")
    os.chown(bashrc, *world.ids(victim))
    shared = world.mkdir("shared", 0o1777)  # root's, sticky, world-writable: like /tmp
    return victim, attacker, home, bashrc, shared


def _link_as(world: World, user: str, target: str, link: str) -> None:
    made = world.as_user(user, "ln", "-s", target, link)
    assert made.returncode == 0, made
    assert os.lstat(link).st_uid == world.users[user].uid


def test_another_users_link_in_a_sticky_directory_is_refused(fresh, tally, protected_symlinks):
    t = tally(PART)
    victim, attacker, home, bashrc, shared = _victim_and_shared(fresh)
    link = os.path.join(shared, "standup.md")
    _link_as(fresh, attacker, bashrc, link)
    for args, stdin in ((["note", "write", link], b"pwned\n"), (["note", "append", link], b"pwned\n")):
        t.operations += 1
        t.faults_injected += 1
        done = fresh.run(*args, user=victim, input=stdin)
        one_line(done, 1, f"refusing to follow {link}", f"owned by uid {fresh.users[attacker].uid}")
    with open(bashrc) as f:
        assert f.read() == "original\n"
    if protected_symlinks == 1:  # the rule mirrored is the kernel's: the shell's >> is refused too
        shell = fresh.as_user(victim, "sh", "-c", f"echo pwned >> {link}")
        assert shell.returncode != 0 and b"Permission denied" in shell.stderr, shell
    # Through a directory link too: shared/dot -> the victim's home; a new file in it.
    dot = os.path.join(shared, "dot")
    _link_as(fresh, attacker, home, dot)
    t.operations += 1
    done = fresh.run("note", "write", os.path.join(dot, "evil.md"), user=victim, input=b"x")
    one_line(done, 1, f"refusing to follow {dot}")
    assert not os.path.exists(os.path.join(home, "evil.md"))
    t.check()


def test_links_the_kernel_would_follow_are_followed(fresh, tally, protected_symlinks):
    """The caller's own link, and the directory owner's, in the sticky directory: followed,
    the target replaced, the link kept."""
    t = tally(PART)
    victim, _, home, bashrc, shared = _victim_and_shared(fresh)
    mine = os.path.join(shared, "mine.md")
    _link_as(fresh, victim, bashrc, mine)
    owners = os.path.join(shared, "owners.md")
    os.symlink(bashrc, owners)  # root's, and root owns the directory
    for link, text in ((mine, b"by my own link\n"), (owners, b"by the owner's link\n")):
        t.operations += 1
        done = fresh.run("note", "append", link, user=victim, input=text)
        assert done.returncode == 0, done
        assert os.path.islink(link)
    with open(bashrc, "rb") as f:
        assert f.read() == b"original\nby my own link\nby the owner's link\n"
    assert os.stat(bashrc).st_uid == fresh.users[victim].uid
    t.check()


def test_a_note_the_sticky_bit_protects_is_refused_in_one_line(fresh, tally):
    t = tally(PART)
    owner, other = list(fresh.users)
    shared = fresh.mkdir("shared", 0o1777)
    note = os.path.join(shared, "theirs.md")
    assert fresh.run("note", "write", note, user=owner, input=b"mine\n").returncode == 0
    os.chmod(note, 0o666)  # anyone may write its bytes, but only its owner may replace it
    t.operations += 2
    done = fresh.run("note", "append", note, user=other, input=b"more\n")
    one_line(done, 1, f"cannot replace note {note}: it belongs to uid {fresh.users[owner].uid}", "sticky")
    with open(note) as f:
        assert f.read() == "mine\n"
    t.check()


def test_a_file_the_caller_cannot_write_is_never_replaced(fresh, tally):
    """Its directory is writable (a rename would succeed), the file is not: refused."""
    t = tally(PART)
    user = list(fresh.users)[0]
    own = fresh.mkdir("own", 0o755, owner=user)
    note = os.path.join(own, "read-only.md")
    with open(note, "w") as f:
        f.write("keep\n")
    os.chown(note, *fresh.ids(user))
    os.chmod(note, 0o444)
    t.operations += 1
    done = fresh.run("note", "write", note, user=user, input=b"replaced\n")
    one_line(done, 3, f"cannot write {note}: Permission denied")
    with open(note) as f:
        assert f.read() == "keep\n"
    t.check()


def test_a_directory_that_cannot_be_read_is_one_line(fresh, tally):
    t = tally(PART)
    user = list(fresh.users)[0]
    blind = fresh.mkdir("blind", 0o333, owner=user)  # write and search, no read
    note = os.path.join(blind, "n.md")
    t.operations += 1
    done = fresh.run("note", "append", note, user=user, input=b"x\n")
    one_line(done, 3, f"its directory {blind} cannot be opened for reading")
    assert not os.path.exists(note)
    t.check()
