"""Shared fixtures. Configuration goes through environment variables that child processes
inherit (SESSIONWARD_HOME, HOME), never through module globals."""

import os
import shutil
import subprocess
import tempfile

import pytest


@pytest.fixture(autouse=True)
def _dev_null_stays_a_device():
    """/dev/null must still be the null device after each test: once, during a CI run, it
    became a regular file (and git, tmux and every later test failed); this names the test
    after which it happened, if a test (or a process it started) ever does it again."""
    yield
    import stat

    mode = os.stat("/dev/null").st_mode
    assert stat.S_ISCHR(mode), f"/dev/null is no longer a character device (mode {oct(mode)}) after this test"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Every test gets its own HOME and state directory, and no Claude Code environment."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SESSIONWARD_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("CLAUDE_PID", raising=False)
    monkeypatch.delenv("CLAUDE_CODE_SESSION_ID", raising=False)
    monkeypatch.delenv("SESSIONWARD_TEST_DISABLE_REGISTRY_LOCK", raising=False)
    monkeypatch.delenv("SESSIONWARD_STORE", raising=False)  # the local store unless a test chooses
    monkeypatch.setenv("NO_COLOR", "1")
    from sessionward import _notices

    _notices.found_here.clear()  # what an in-process call of an earlier test found is not this test's


STORE_BACKENDS = ("local", "redis")


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory):
    """One real redis-server for the session (AOF, appendfsync always, a private Unix
    socket: tests/store/redis_server.py), shared by the tests of the "redis" backend."""
    from store.redis_server import RedisServer, need_redis_server

    need_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("shared-redis"))
    try:
        yield server.start()
    finally:
        server.cleanup()


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request, monkeypatch):
    """Each test using it runs once per store backend, configured as a user would, through
    SESSIONWARD_STORE, which child processes inherit: "local" (the files), and "redis" (a
    real redis-server, emptied before each test: FLUSHDB). A suite takes it for all its
    tests with `pytestmark = pytest.mark.usefixtures("store_backend")`; a test about the
    local files alone says `@pytest.mark.local_store_only` and is skipped on the others."""
    if request.param != "local" and request.node.get_closest_marker("local_store_only"):
        pytest.skip("runs on the local store only (see the test)")
    if request.param == "local":
        monkeypatch.setenv("SESSIONWARD_STORE", "local")
        yield "local"
        return
    server = request.getfixturevalue("shared_redis")
    with server.connect() as conn:
        conn.call("FLUSHDB")
    monkeypatch.setenv("SESSIONWARD_STORE", server.url)
    try:
        yield "redis"
    finally:
        from sessionward.identity import life, process
        from sessionward.store import shared

        shared.disconnect()
        process.use_shared_lives(None)  # what this process learned of the server's leases
        life.renew_on_shared_store(None)  # watchers of later tests renew nothing there


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


@pytest.fixture
def registry_file(state_dir):
    return state_dir / "obsidian_sessions.json"


@pytest.fixture
def keeper():
    """A live process to own registry records for the length of a test."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def owners():
    """Factory of owners: each call starts a live `sleep` and resolves it; all killed after."""
    from sessionward.identity import resolve_owner

    procs = []

    def make():
        proc = subprocess.Popen(["sleep", "600"])
        procs.append(proc)
        return resolve_owner(proc.pid)

    yield make
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def other_user():
    """Another Unix user (uid 65534) with its own readable install of sessionward, whatever
    the clone's permissions: helpers.OtherUser (.argv(*args), .command(*args), .run(*args)).
    Skipped, saying why, when there can be none (not root, no interpreter it may run).
    Give it state in a directory it can traverse (tmp_path is under a 0700 directory)."""
    from helpers import install_for_other_user

    base = tempfile.mkdtemp(prefix="sessionward-other-user-")
    try:
        other = install_for_other_user(base)
        if isinstance(other, str):
            pytest.skip(other)
        yield other
    finally:
        shutil.rmtree(base, ignore_errors=True)
