"""Torture, part 3: environment faults (issue 5).

Each fault is applied to the real CLI (register, list, check, unregister, prune, lock
acquire/release/status/run) and to real hook calls (`sessionward hook ...` run by a
FakeClaude owner) as separate processes, every one bounded by a timeout (a FIFO must never
block anyone). What counts as a problem:
  tracebacks      a Python traceback, or "internal error", in any output
  lost updates    a record, lock or claim committed before the fault missing afterwards
  torn files      a state file that no longer parses
  double holders  a lock (or the registry's flock) held by two processes at once (fork)
A refusal must be exactly one line naming the path, exit 3 (hooks: exit 1, failing open).

Decisions recorded here:
  - A registry (or claims shard) owned by another user is refused, read and write alike:
    promise 7 says state files are the user's own 0600 files; one that is not was put there
    by someone else (or by a `sudo sessionward ...`), so it is neither trusted nor replaced.
    The line names the owner's uid and the fix (chown it back, or remove it).
  - The state directory itself may be a symlink (dotfile setups link ~/.claude; paths.py):
    followed, but only to a directory group and others cannot write.
  - Clock jumps: sessions and locks registered, listed and pruned under libfaketime (Debian:
    faketime) preloaded into the CLI, its offset re-read from a file on every call
    (FAKETIME_NO_CACHE), the monotonic clock left real (FAKETIME_DONT_FAKE_MONOTONIC), as a
    real `date -s` leaves it. Waits are moved mid-wait by a sitecustomize shim on the wall
    clock instead (see the wall_clock fixture: libfaketime 0.9.10 breaks time.sleep there).
"""

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from helpers import NOBODY, SESSIONWARD, hold_flock, skip_or_fail

PART = "environment faults"
STEP_TIMEOUT_S = 20.0  # every process is bounded: reaching this is a hang (a FIFO opened blind)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mounts tmpfs, chowns, runs as uid 65534")



# -- running processes, counting what they show ------------------------------------------------


class Run:
    """Runs sessionward processes for one test: counts operations, looks for tracebacks."""

    def __init__(self, t, cwd: str) -> None:
        self.t = t
        self.cwd = cwd
        self.env = dict(os.environ)

    def __call__(self, *args, env=None, user=None, timeout=STEP_TIMEOUT_S, input=None):
        """`user`: a helpers.OtherUser (the other_user fixture) to run the command as."""
        argv = user.argv(*args) if user else [SESSIONWARD, *args]
        self.t.operations += 1
        try:
            done = subprocess.run(argv, cwd=self.cwd, env={**self.env, **(env or {})}, input=input,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as late:
            pytest.fail(f"sessionward {' '.join(args)} hung for {timeout} s (blocked on a FIFO or a lock?): {late.stderr!r}")
        self.look(" ".join(args), done.stdout + done.stderr)
        return done

    def look(self, what: str, text: str) -> None:
        self.t.saw_output(what, text)
        if "internal error" in text:
            self.t.problem("tracebacks", f"{what}: {text.strip()}")


def one_line(t, what: str, done, code: int, *fragments: str) -> None:
    """`done` failed with exit `code` and exactly one stderr line holding every fragment."""
    stderr = done.stderr if isinstance(done.stderr, str) else done.stderr.decode()
    rc = done.returncode if hasattr(done, "returncode") else done.rc
    assert rc == code, f"{what}: exit {rc}, expected {code}: {stderr!r}"
    assert stderr.endswith("\n") and stderr.count("\n") == 1, f"{what}: not one line: {stderr!r}"
    for fragment in fragments:
        assert fragment in stderr, f"{what}: {fragment!r} not in {stderr!r}"


@pytest.fixture
def keepers():
    """Live processes to own sessions and locks: keepers(n) -> [pid, ...]."""
    procs = []

    def make(n):
        new = [subprocess.Popen(["sleep", "600"]) for _ in range(n)]
        procs.extend(new)
        return [p.pid for p in new]

    yield make
    for proc in procs:
        proc.kill()
        proc.wait()


def hook_payload(event: str, session_id: str, cwd: str, **more) -> dict:
    payload = {"session_id": session_id, "transcript_path": f"{cwd}/{session_id}.jsonl", "cwd": cwd,
               "hook_event_name": event}
    payload.update(more)
    return payload


def run_hook(t, run: Run, fake, event: str, session_id: str, cwd: str, user=None, **more):
    payload = json.dumps(hook_payload(event, session_id, cwd, **more))
    command = user.command("hook", event) if user else f"{SESSIONWARD} hook {event}"
    t.operations += 1
    done = fake.run(command, payload, cwd=cwd, session_id=session_id, env={"SESSIONWARD_HOME": run.env["SESSIONWARD_HOME"]},
                    timeout=STEP_TIMEOUT_S)
    assert not done.timed_out, f"hook {event} hung: {done!r}"
    run.look(f"hook {event}", done.stdout + done.stderr)
    assert done.rc in (0, 1), f"hook {event} exited {done.rc} (a hook exits 0 or 1, never 2): {done!r}"
    return done


# -- the state: seeding it, and checking nothing committed was lost or torn --------------------


class World:
    """The committed state one test builds before its faults: two sessions of live keepers
    (one registered by a hook of a FakeClaude), the end lock held by the first, and a claim."""

    def __init__(self, t, run: Run, state: str, work: str, keepers, fake) -> None:
        self.t, self.run, self.state, self.work, self.fake = t, run, state, work, fake
        self.k1, self.k2 = keepers
        self.file = os.path.join(work, "notes.md")
        with open(self.file, "w") as f:
            f.write("hello\n")

    def seed(self) -> None:
        run = self.run
        assert run("register", "alpha", self.work, "--pid", str(self.k1)).returncode == 0
        assert run("lock", "acquire", "end", "--pid", str(self.k1), "--timeout", "2").returncode == 0
        assert run_hook(self.t, run, self.fake, "SessionStart", "sess-claude", self.work, source="startup").rc == 0
        done = run_hook(self.t, run, self.fake, "PostToolUse", "sess-claude", self.work, tool_name="Write",
                        tool_input={"file_path": self.file, "content": "hello\n"}, tool_response={})
        assert done.rc == 0, done
        self.committed = self.snapshot()
        assert len(self.committed["sessions"]) == 2 and self.committed["end"] == f"{self.k1}\n"
        assert self.committed["claims"], "the PostToolUse hook recorded no claim"

    def snapshot(self) -> dict:
        """What is committed now: session ids, the end lock's content, the claimed paths."""
        reg = os.path.join(self.state, "obsidian_sessions.json")
        try:
            with open(reg, "rb") as f:
                sessions = json.loads(f.read())["sessions"]
        except (ValueError, KeyError) as exc:
            self.t.problem("torn_files", f"{reg}: {exc}")
            sessions = {}
        try:
            with open(os.path.join(self.state, "end.lock")) as f:
                end = f.read()
        except FileNotFoundError:
            end = None
        claims = set()
        claims_dir = os.path.join(self.state, "sessionward", "claims")
        for name in sorted(os.listdir(claims_dir)) if os.path.isdir(claims_dir) else ():
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(claims_dir, name), "rb") as f:
                    doc = json.loads(f.read())
            except ValueError as exc:
                self.t.problem("torn_files", f"{name}: {exc}")
                continue
            claims.update(doc.get("files", {}))
        return {"sessions": set(sessions), "end": end, "claims": claims}

    def check_nothing_lost(self, allowed_gone=(), end_may_be_free=False) -> None:
        now = self.snapshot()
        for sid in self.committed["sessions"] - now["sessions"] - set(allowed_gone):
            self.t.problem("lost_updates", f"session {sid} vanished")
        if now["end"] != self.committed["end"] and not (end_may_be_free and now["end"] is None):
            self.t.problem("lost_updates", f"end.lock was {self.committed['end']!r}, now {now['end']!r}")
        for path in self.committed["claims"] - now["claims"]:
            self.t.problem("lost_updates", f"the claim on {path} vanished")
        strays = [os.path.join(d, n) for d, _, names in os.walk(self.state) for n in names if n.endswith(".tmp")]
        assert not strays, f"stray temp files left: {strays}"
        corrupt = [n for n in os.listdir(self.state) if ".corrupt-" in n]
        assert not corrupt, f"state files were declared corrupt: {corrupt}"

    def session_of(self, pid: int) -> str:
        for sid in self.snapshot()["sessions"]:
            with open(os.path.join(self.state, "obsidian_sessions.json")) as f:
                rec = json.load(f)["sessions"][sid]
            if rec["owner"]["pid"] == pid:
                return sid
        raise KeyError(pid)


def battery(world: World, expect, user=None) -> dict:
    """Every command once, under the fault in force; `expect(what, done, writes)` judges each
    (writes: True when the command must write to succeed, "frees" when it only removes, which
    a full disk still allows, False for readers). Returns {what: result}."""
    t, run, k1, k2, work = world.t, world.run, world.k1, world.k2, world.work
    results = {}

    def cli(what, *args, writes):
        done = run(*args, user=user)
        results[what] = done
        expect(what, done, writes)

    def hook(what, event, sid, writes, **more):
        done = run_hook(t, run, world.fake, event, sid, work, user=user, **more)
        results[what] = done
        expect(what, done, writes)

    cli("register", "register", "beta", work, "--pid", str(k2), writes=True)
    cli("list", "list", writes=False)
    cli("check", "check", "alpha", "--cwd", work, "--pid", str(k2), writes=False)
    cli("prune", "prune", "--apply", writes=False)
    cli("lock status", "lock", "status", "end", writes=False)
    cli("lock acquire", "lock", "acquire", "other", "--pid", str(k2), "--timeout", "1", writes=True)
    cli("lock run", "lock", "run", "third", "--timeout", "1", "--", "true", writes=True)
    hook("SessionStart", "SessionStart", "sess-new", True, source="startup")
    hook("PreToolUse", "PreToolUse", "sess-claude", False, tool_name="Write",
         tool_input={"file_path": world.file, "content": "x\n"})
    hook("PostToolUse", "PostToolUse", "sess-claude", True, tool_name="Edit",
         tool_input={"file_path": os.path.join(work, "other.md"), "old_string": "a", "new_string": "b"},
         tool_response={})
    cli("unregister", "unregister", str(k1), writes="frees")
    cli("lock release", "lock", "release", "end", "--pid", str(k1), writes="frees")
    hook("SessionEnd", "SessionEnd", "sess-claude", "frees", reason="other")
    t.faults_injected += len(results)
    return results


def refusing(t, fragments, frees_fail=True):
    """An `expect` for battery(): writers fail with one line holding `fragments` (exit 3;
    hooks exit 1, failing open); removals too unless not frees_fail; readers succeed, or
    fail the same clean way."""

    def expect(what, done, writes):
        rc = done.returncode if hasattr(done, "returncode") else done.rc
        code = 3 if hasattr(done, "returncode") else 1
        if writes is True or (writes == "frees" and frees_fail) or rc not in (0, 1):
            one_line(t, what, done, code, *fragments)

    return expect


def all_well(t):
    def expect(what, done, writes):
        rc = done.returncode if hasattr(done, "returncode") else done.rc
        stderr = done.stderr
        assert rc == 0 or (what == "check" and rc == 1), f"{what} after the fault was lifted: exit {rc}: {stderr!r}"

    return expect


# -- mounts -------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: str, size: str):
    """A tmpfs of `size` mounted at `path` (0700), unmounted at the end whatever happens."""
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                          capture_output=True, text=True)
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs here (container without CAP_SYS_ADMIN?): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True)


def fill(directory: str) -> str:
    """Fill the filesystem of `directory` to the last byte; return the filler's path."""
    filler = os.path.join(directory, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 16, 4096, 1):  # down to the last byte of the last page
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * chunk):
                    pass
    finally:
        os.close(fd)
    return filler


# -- full disk, read-only, permission denied ----------------------------------------------------


@needs_root
def test_full_disk_refuses_cleanly_keeps_everything_and_recovers(tally, tmp_path, keepers, claude):
    t = tally(PART)
    state = str(tmp_path / "state")
    with tmpfs(state, "512k"):
        run = Run(t, str(tmp_path))
        world = World(t, run, state, str(tmp_path), keepers(2), claude())
        world.seed()
        filler = fill(state)
        results = battery(world, refusing(t, ["No space left on device", state], frees_fail=False))
        # Freeing (unregister, release) may still work on a full disk; everything else was refused.
        gone = [world.session_of(world.k1)] if results["unregister"].returncode == 0 else []
        world.check_nothing_lost(allowed_gone=gone + ["sess-claude"] * (results["SessionEnd"].rc == 0),
                                 end_may_be_free=results["lock release"].returncode == 0)
        assert results["list"].returncode == 0 and results["lock status"].returncode == 0
        os.unlink(filler)
        battery(world, all_well(t))
        world.session_of(world.k2)  # registered once there was room again
        assert world.snapshot()["end"] is None
        world.check_nothing_lost(allowed_gone=world.committed["sessions"], end_may_be_free=True)
    t.check()


@needs_root
def test_full_disk_under_a_note_keeps_the_committed_note_whole(tally, tmp_path):
    """A vault on a full disk: `note append` and `note write` refuse with one line, exit 3,
    leave the note as it was committed and no temp file behind, and work once there is room."""
    t = tally(PART)
    vault = str(tmp_path / "vault")
    with tmpfs(vault, "256k"):
        run = Run(t, vault)
        note = os.path.join(vault, "daily.md")
        assert run("note", "append", note, "committed").returncode == 0
        filler = fill(vault)
        t.faults_injected += 1
        for args in (["note", "append", note, "x" * 8192], ["note", "write", note, "y" * 8192]):
            one_line(t, " ".join(args[:2]), run(*args), 3, "No space left on device", note)
        with open(note) as f:
            if f.read() != "committed":
                t.problem("lost_updates", "the committed note changed on a full disk")
        strays = [n for n in os.listdir(vault) if n.endswith(".tmp")]
        if strays:
            t.problem("torn_files", f"temp files left beside the note: {strays}")
        os.unlink(filler)
        assert run("note", "append", note, "after").returncode == 0
        with open(note) as f:
            assert f.read() == "committed\nafter"
    t.check()


@needs_root
def test_read_only_state_dir_refuses_writes_and_serves_reads(tally, tmp_path, keepers, claude):
    t = tally(PART)
    state = str(tmp_path / "state")
    with tmpfs(state, "4m"):
        run = Run(t, str(tmp_path))
        world = World(t, run, state, str(tmp_path), keepers(2), claude())
        world.seed()
        # root ignores mode bits: only a read-only mount makes the directory unwritable to it
        subprocess.run(["mount", "-o", "remount,ro", state], check=True)
        results = battery(world, refusing(t, ["Read-only file system", state]))
        for reader in ("list", "lock status", "check"):
            assert results[reader].returncode in (0, 1), results[reader]
        assert str(world.k1) in results["list"].stdout
        world.check_nothing_lost()
        subprocess.run(["mount", "-o", "remount,rw", state], check=True)
        battery(world, all_well(t))
    t.check()


@contextlib.contextmanager
def shared_base():
    """A directory uid 65534 can traverse (pytest's tmp_path is under a 0700 root directory)."""
    base = tempfile.mkdtemp(prefix="sessionward-envfaults-")
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_permission_denied_as_another_user(tally, keepers, claude, other_user):
    """uid 65534 against root's 0700 state directory: one line, exit 3, root's state intact.
    It runs its own readable install (other_user): the clone may sit where it cannot read."""
    t = tally(PART)
    with shared_base() as base:
        state = os.path.join(base, "state")
        run = Run(t, base)
        run.env.update(SESSIONWARD_HOME=state, HOME=base)
        world = World(t, run, state, base, keepers(2), claude())
        world.seed()
        results = battery(world, refusing(t, ["Permission denied", state]), user=other_user)
        for what, done in results.items():  # nothing works for a stranger, readers included
            rc = done.returncode if hasattr(done, "returncode") else done.rc
            assert rc in (1, 3), f"{what} as uid {NOBODY}: exit {rc}"
        world.check_nothing_lost()
        battery(world, all_well(t))  # and root's own commands still work
    t.check()


def test_missing_state_dir_is_created_private(tally, tmp_path, keepers):
    t = tally(PART)
    state = tmp_path / "deep" / "er" / "state"
    run = Run(t, str(tmp_path))
    run.env["SESSIONWARD_HOME"] = str(state)
    (k1,) = keepers(1)
    t.faults_injected += 1
    for args in (["list"], ["lock", "status"], ["prune"]):  # readers of nothing: fine, create nothing
        done = run(*args)
        assert done.returncode == 0, done
    assert run("register", "alpha", str(tmp_path), "--pid", str(k1)).returncode == 0
    assert run("lock", "acquire", "end", "--pid", str(k1)).returncode == 0
    for directory in (state, state / "sessionward", state / "sessionward" / "locks"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    for path in (state / "obsidian_sessions.json", state / "end.lock", state / "sessionward" / "registry.lock"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    t.check()


def test_state_dir_that_is_a_file_is_refused(tally, tmp_path, keepers, claude):
    t = tally(PART)
    plant = tmp_path / "state-file"
    plant.write_text("precious\n")
    run = Run(t, str(tmp_path))
    run.env["SESSIONWARD_HOME"] = str(plant)
    world = World(t, run, str(plant), str(tmp_path), keepers(2), claude())
    battery(world, refusing(t, [f"refusing state path {plant}: it is not a directory", "SESSIONWARD_HOME"]))
    assert plant.read_text() == "precious\n"
    t.check()


# -- planted symlinks and FIFOs ------------------------------------------------------------------

# Each state path, and the commands that must notice a plant there (by reading or writing it).
PLANT_SITES = {
    "obsidian_sessions.json": ["register", "list", "SessionStart"],
    "sessionward/registry.lock": ["register", "unregister", "SessionStart"],
    "end.lock": ["lock status", "lock acquire end", "lock release"],
    "sessionward/locks/end.holder.json": ["lock acquire end"],
    "sessionward/locks/end.guard": ["lock acquire end", "lock release"],
    "sessionward/claims/{shard}": ["PostToolUse"],
    "sessionward/claims/claims.lock": ["PostToolUse"],
    "sessionward/claims/ended.json": ["SessionEnd"],
    "sessionward": ["register", "lock acquire end", "PostToolUse"],
    "sessionward/locks": ["lock acquire end"],
    "sessionward/claims": ["PostToolUse"],
}


def _plant_commands(world: World):
    t, run, k1, k2, work = world.t, world.run, world.k1, world.k2, world.work

    def hook(event, sid, **more):
        return lambda: run_hook(t, run, world.fake, event, sid, work, **more)

    return {
        "register": lambda: run("register", "beta", work, "--pid", str(k2)),
        "list": lambda: run("list"),
        "unregister": lambda: run("unregister", str(k1)),
        "lock status": lambda: run("lock", "status", "end"),
        "lock acquire end": lambda: run("lock", "acquire", "end", "--pid", str(k2), "--timeout", "1"),
        "lock release": lambda: run("lock", "release", "end", "--pid", str(k1)),
        "SessionStart": hook("SessionStart", "sess-new", source="startup"),
        "PostToolUse": hook("PostToolUse", "sess-claude", tool_name="Write",
                            tool_input={"file_path": world.file, "content": "x\n"}, tool_response={}),
        "SessionEnd": hook("SessionEnd", "sess-claude", reason="other"),
    }


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_planted_symlink_or_fifo_at_each_state_path_is_refused(kind, tally, tmp_path, keepers, claude):
    t = tally(PART)
    state = tmp_path / "state"
    run = Run(t, str(tmp_path))
    world = World(t, run, str(state), str(tmp_path), keepers(2), claude())
    commands = _plant_commands(world)
    from sessionward.store.local_claims import shard_name

    target = tmp_path / "target"
    for site, names in PLANT_SITES.items():
        # Fresh state for every site: the end lock free (held by k1 for the lock sites).
        shutil.rmtree(state, ignore_errors=True)
        world.seed()
        if site != "end.lock":  # a held lock would make acquire wait instead of writing
            assert run("lock", "release", "end", "--pid", str(world.k1)).returncode == 0
        path = state / site.format(shard=shard_name(world.file))
        moved = None
        if path.exists():
            moved = path.with_name(path.name + ".real")
            os.rename(path, moved)
        if kind == "symlink":
            target.write_text("precious\n") if not site.endswith(("sessionward", "locks", "claims")) else None
            if site.endswith(("sessionward", "locks", "claims")):
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
                target.mkdir(mode=0o700)
            os.symlink(target, path)
        else:
            os.mkfifo(path, 0o600)
        t.faults_injected += 1
        for name in names:
            done = commands[name]()
            code = 1 if name[0].isupper() else 3
            one_line(t, f"{kind} at {site}, {name}", done, code, str(path))
        if kind == "symlink":
            assert os.path.islink(path), f"{site}: the planted symlink was replaced or removed"
            if target.is_dir():
                assert os.listdir(target) == [], f"{site}: something was written through the symlink"
                target.rmdir()
            else:
                assert target.read_text() == "precious\n", f"{site}: the symlink was followed"
                target.unlink()
        else:
            assert stat.S_ISFIFO(os.lstat(path).st_mode), f"{site}: the FIFO was replaced"
        os.unlink(path)
        if moved is not None:
            os.rename(moved, path)
        # SessionEnd unregisters before it ends the claims (each step runs whatever the others do)
        world.check_nothing_lost(end_may_be_free=True, allowed_gone=["sess-claude"] * ("SessionEnd" in names))
    t.check()


def test_state_dir_symlink_is_followed_only_to_a_private_dir(tally, tmp_path, keepers):
    t = tally(PART)
    (k1,) = keepers(1)
    run = Run(t, str(tmp_path))
    real = tmp_path / "dotfiles" / "claude"
    real.mkdir(parents=True, mode=0o700)
    link = tmp_path / "state"
    link.symlink_to(real)
    assert run("register", "alpha", str(tmp_path), "--pid", str(k1)).returncode == 0  # dotfile setups
    assert (real / "obsidian_sessions.json").exists()
    link.unlink()
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    link.symlink_to(shared)
    t.faults_injected += 2
    for args in (["register", "alpha", str(tmp_path), "--pid", str(k1)], ["list"]):
        one_line(t, " ".join(args), run(*args), 3, f"refusing state path {link}", "writable by group or others")
    assert os.listdir(shared) == []
    link.unlink()
    fifo_state = tmp_path / "state"
    os.mkfifo(fifo_state)
    for args in (["register", "alpha", str(tmp_path), "--pid", str(k1)], ["list"], ["lock", "status"]):
        one_line(t, " ".join(args), run(*args), 3, f"refusing state path {fifo_state}", "not a directory")
    t.check()


# -- a registry owned by another user ------------------------------------------------------------


@needs_root
def test_registry_owned_by_another_user_is_refused_untouched(tally, tmp_path, keepers, claude):
    t = tally(PART)
    state = tmp_path / "state"
    run = Run(t, str(tmp_path))
    world = World(t, run, str(state), str(tmp_path), keepers(2), claude())
    world.seed()
    registry = state / "obsidian_sessions.json"
    before = registry.read_bytes()
    os.chown(registry, NOBODY, NOBODY)
    t.faults_injected += 1
    for args in (["list"], ["register", "beta", str(tmp_path), "--pid", str(world.k2)], ["unregister", str(world.k1)],
                 ["prune", "--apply"]):
        one_line(t, " ".join(args), run(*args), 3, f"refusing state path {registry}", f"belongs to uid {NOBODY}",
                 "chown")
    done = run_hook(t, run, world.fake, "SessionStart", "sess-new", str(tmp_path), source="startup")
    one_line(t, "SessionStart", done, 1, str(registry), f"belongs to uid {NOBODY}")
    assert registry.read_bytes() == before and os.stat(registry).st_uid == NOBODY
    os.chown(registry, 0, 0)  # the fix the line names
    assert run("register", "beta", str(tmp_path), "--pid", str(world.k2)).returncode == 0
    world.check_nothing_lost()
    t.check()


# -- clock jumps -----------------------------------------------------------------------------------


NEGATIVE_AGE = re.compile(r"(?<![\w-])-\d+(\.\d+)?\s*(s|m|h|d)\b|held for -|up -|ago -")


WALL_CLOCK_SHIM = r"""
# sitecustomize for the clock-jump tests: time.time() and time.time_ns() (the wall clock) are
# offset by the number of seconds in $SESSIONWARD_TEST_WALL_OFFSET_FILE, re-read on every call;
# time.monotonic() and sleeps stay real, as after a `date -s`.
import os, time
_file, _real, _real_ns = os.environ["SESSIONWARD_TEST_WALL_OFFSET_FILE"], time.time, time.time_ns
def _offset():
    try:
        with open(_file) as f:
            return float(f.read())
    except (OSError, ValueError):
        return 0.0
time.time = lambda: _real() + _offset()
time.time_ns = lambda: _real_ns() + int(_offset() * 1e9)
"""


@pytest.fixture
def wall_clock(tmp_path):
    """set(seconds) moves the wall clock of every process started with `env`, mid-run.

    Not libfaketime here: its 0.9.10 (Debian 12) fails clock_nanosleep(CLOCK_MONOTONIC,
    TIMER_ABSTIME), which is Python's time.sleep, with EINVAL under FAKETIME_DONT_FAKE_MONOTONIC,
    and without that option it moves the monotonic clock too, which a real jump never does."""
    shim = tmp_path / "wall-clock-shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(WALL_CLOCK_SHIM)
    offset_file = tmp_path / "wall-offset"
    offset_file.write_text("0")

    class Clock:
        env = {"PYTHONPATH": str(shim), "SESSIONWARD_TEST_WALL_OFFSET_FILE": str(offset_file)}

        def set(self, seconds: float) -> None:
            tmp = offset_file.with_suffix(".new")
            tmp.write_text(repr(float(seconds)))
            os.replace(tmp, offset_file)

    return Clock()


DAY_S = 86400.0
YEAR_S = 365 * DAY_S


def test_clock_jumps_neither_end_nor_prolong_waits(tally, tmp_path, keepers, wall_clock):
    t = tally(PART)
    run = Run(t, str(tmp_path))
    k1, k2 = keepers(2)
    assert run("lock", "acquire", "end", "--pid", str(k1)).returncode == 0
    waits = []
    for jumps in ([DAY_S, -DAY_S, 10 * YEAR_S], [-YEAR_S, 0, -30 * DAY_S]):
        started = time.monotonic()
        waiter = subprocess.Popen([SESSIONWARD, "lock", "acquire", "end", "--pid", str(k2), "--timeout", "2.5"],
                                  env={**run.env, **wall_clock.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=str(tmp_path))
        t.operations += 1
        for offset in jumps:  # the wall clock jumps while it waits
            time.sleep(0.6)
            wall_clock.set(offset)
            t.faults_injected += 1
        out, err = waiter.communicate(timeout=STEP_TIMEOUT_S)
        waited = time.monotonic() - started
        wall_clock.set(0)
        run.look("lock acquire under clock jumps", out + err)
        waits.append(round(waited, 2))
        assert waiter.returncode == 1, (out, err)
        assert 2.4 <= waited <= 6.0, f"a 2.5 s wait ended after {waited:.2f} s of monotonic time"
        assert "still held after 2.5 s" in err and not NEGATIVE_AGE.search(err), err
    # The registry's flock wait (a hook waits 2 s) is bounded the same way.
    lock_file = tmp_path / "state" / "sessionward" / "registry.lock"
    holder = hold_flock(lock_file)
    try:
        started = time.monotonic()
        hook = subprocess.Popen([SESSIONWARD, "hook", "SessionStart"], env={**run.env, **wall_clock.env, "CLAUDE_PID": str(k2)},
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        t.operations += 1
        hook.stdin.write(json.dumps(hook_payload("SessionStart", "sess-clock", str(tmp_path), source="startup")))
        hook.stdin.close()
        for offset in (-DAY_S, DAY_S):
            time.sleep(0.5)
            wall_clock.set(offset)
            t.faults_injected += 1
        hook.wait(timeout=STEP_TIMEOUT_S)
        waited = time.monotonic() - started
        err = hook.stderr.read()
        run.look("hook under clock jumps", err)
        assert hook.returncode == 1 and "still busy after 2.0 s" in err, err
        assert 1.9 <= waited <= 5.0, waited
        waits.append(round(waited, 2))
    finally:
        holder.kill()
        holder.wait()
        wall_clock.set(0)
    t.figures["monotonic waits s"] = "/".join(map(str, waits))
    t.check()


def test_clock_jumps_never_sweep_a_live_owner_nor_print_negative_ages(tally, tmp_path, keepers, faketime, claude):
    t = tally(PART)
    run = Run(t, str(tmp_path))
    pids = keepers(3)
    fake = claude()
    clocked = {**faketime.env}
    # Sessions registered at three very different wall-clock times, one by a hook.
    for pid, offset in zip(pids, ("-5y", "+0", "+5y")):
        faketime.set(offset)
        assert run("register", f"p{pid}", str(tmp_path), "--pid", str(pid), env=clocked).returncode == 0
    faketime.set("+3y")
    assert run("lock", "acquire", "end", "--pid", str(pids[0]), env=clocked).returncode == 0
    t.operations += 1
    done = fake.run(f"{SESSIONWARD} hook SessionStart", json.dumps(hook_payload("SessionStart", "sess-c", str(tmp_path),
                    source="startup")), env={**clocked, "SESSIONWARD_HOME": run.env["SESSIONWARD_HOME"]},
                    session_id="sess-c", cwd=str(tmp_path))
    assert done.rc == 0, done
    expected = {*map(str, pids), str(fake.pid)}
    for offset in ("-10y", "-1d", "+0", "+1d", "+10y", "-3y"):
        faketime.set(offset)
        t.faults_injected += 1
        for args in (["list"], ["prune", "--apply"], ["check", "zzz"], ["lock", "status", "end"], ["list", "--json"]):
            done = run(*args, env=clocked)
            assert done.returncode in (0, 1), (offset, args, done)
            text = done.stdout + done.stderr
            if args[-1] == "--json":
                doc = json.loads(done.stdout)["result"]
                assert {str(s["owner"]["pid"]) for s in doc["sessions"]} == expected, (offset, doc)
                assert all(s["last_seen"] > 0 for s in doc["sessions"]), doc
            else:
                assert not NEGATIVE_AGE.search(text), f"{offset} {args}: {text}"
            if args == ["prune", "--apply"]:
                assert "no dead sessions" in text, (offset, text)
    faketime.set("+0")
    state = tmp_path / "state"
    sessions = json.loads((state / "obsidian_sessions.json").read_text())["sessions"]
    if {str(r["owner"]["pid"]) for r in sessions.values()} != expected:
        t.problem("lost_updates", f"a live session was swept under a jumped clock: {sorted(sessions)}")
    assert (state / "end.lock").read_text() == f"{pids[0]}\n"
    t.check()


# -- fork while holding a lock ----------------------------------------------------------------------

FORK_LOCK_PROGRAM = r"""
import json, os, subprocess, sys
from sessionward.locks import NamedLock, LockTimeout

how = sys.argv[1]
parent = os.getpid()
lock_path = os.path.join(os.environ["SESSIONWARD_HOME"], "end.lock")
report = {}

def holder():
    try:
        with open(lock_path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None

with NamedLock("end", purpose="fork test") as lock:
    child = os.fork()
    if child == 0:
        if how == "release":
            print(json.dumps({"child_release": lock.release().was}), flush=True)
            os._exit(0)
        if how == "exit":
            sys.exit(0)  # SystemExit unwinds through the `with`: its __exit__ runs in the child
        if how == "acquire":
            try:
                NamedLock("end").acquire(timeout=0.3)
                print(json.dumps({"child_acquired": True}), flush=True)
            except LockTimeout:
                print(json.dumps({"child_acquired": False}), flush=True)
            os._exit(0)
        # how == "with": the child leaves the `with` block normally
    else:
        os.waitpid(child, 0)
        report["holder_after_child"] = holder()
        other = subprocess.run([sys.executable, "-c",
            "from sessionward.locks import NamedLock, LockTimeout\n"
            "try:\n NamedLock('end').acquire(timeout=0.3); print('got')\n"
            "except LockTimeout: print('busy')"], capture_output=True, text=True)
        report["other_process"] = other.stdout.strip() + other.stderr.strip()
if os.getpid() != parent:
    os._exit(0)  # the child of how == "with", after its __exit__
report["holder_after_release"] = holder()
report["parent"] = str(parent)
print(json.dumps(report), flush=True)
"""


FORK_STORE_PROGRAM = r"""
import fcntl, json, os, sys
from sessionward.errors import SessionwardError
from sessionward.store.local import LocalStore

how = sys.argv[1]
store = LocalStore()
lock_path = store.lock_path
parent = os.getpid()
report = {}

def flock_is_free():
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)

def change(sessions):
    child = os.fork()
    if child == 0:
        sessions["child"] = "written by the child"
        if how == "exit":
            os._exit(0)
        if how == "raise":
            raise SystemExit(0)
        return None, True  # how == "return": the child tries to commit the transaction
    os.waitpid(child, 0)
    report["flock_free_after_child"] = flock_is_free()
    return None, False

try:
    store.update_sessions(change)
except SessionwardError as error:
    if os.getpid() != parent:
        print(json.dumps({"child_refused": str(error)}), flush=True)
        os._exit(0)
    raise
if os.getpid() != parent:
    print(json.dumps({"child_committed": True}), flush=True)
    os._exit(0)
report["registry_after"] = open(store.registry_path).read() if os.path.exists(store.registry_path) else None
print(json.dumps(report), flush=True)
"""


def test_fork_while_holding_a_lock_never_frees_the_parents_lock(tally, tmp_path):
    t = tally(PART)
    run = Run(t, str(tmp_path))
    for how in ("release", "exit", "with", "acquire"):
        t.operations += 1
        t.faults_injected += 1
        done = subprocess.run([sys.executable, "-c", FORK_LOCK_PROGRAM, how], env=run.env, capture_output=True,
                              text=True, timeout=STEP_TIMEOUT_S, cwd=str(tmp_path))
        run.look(f"fork ({how})", done.stdout + done.stderr)
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        report = lines[-1]
        if report.get("holder_after_child") != report["parent"]:
            t.problem("double_holders", f"{how}: the child freed the parent's lock: {report}")
        if report.get("other_process") != "busy":
            t.problem("double_holders", f"{how}: another process took the parent's lock: {report}")
        if {"child_acquired": True} in lines:
            t.problem("double_holders", f"{how}: the child acquired its parent's lock")
        if how == "release":
            assert {"child_release": "lost"} in lines, lines
        assert report["holder_after_release"] is None, report  # the parent's own release works
    t.check()


def test_fork_inside_a_store_transaction_never_frees_nor_commits_it(tally, tmp_path):
    t = tally(PART)
    run = Run(t, str(tmp_path))
    for how in ("exit", "raise", "return"):
        t.operations += 1
        t.faults_injected += 1
        done = subprocess.run([sys.executable, "-c", FORK_STORE_PROGRAM, how], env=run.env, capture_output=True,
                              text=True, timeout=STEP_TIMEOUT_S, cwd=str(tmp_path))
        run.look(f"fork in a transaction ({how})", done.stdout + done.stderr if how != "raise" else done.stdout)
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        report = lines[-1]
        if report.get("flock_free_after_child"):
            t.problem("double_holders", f"{how}: the registry flock was free while the parent's transaction ran")
        if {"child_committed": True} in lines or "written by the child" in (report.get("registry_after") or ""):
            t.problem("double_holders", f"{how}: the forked child committed its parent's transaction")
    t.check()
