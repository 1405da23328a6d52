"""The store interface: the backend is chosen from SESSIONWARD_STORE, or `store` in
sessionward.toml when the variable is unset (local by default); a shared store that is down
is told in one line (exit 3; a hook fails open), never a hang; the registry's operations
through open_store(), for every backend."""

import json
import os
import time

import pytest

from sessionward import store
from sessionward.config import load_config
from sessionward.errors import EXIT_ENVIRONMENT, StoreNotBuilt

from helpers import run_cli
from store.test_local_store import record


@pytest.mark.parametrize("value", ["", "local"])
def test_the_default_backend_is_the_local_files(value, monkeypatch, registry_file, keeper):
    monkeypatch.setenv("SESSIONWARD_STORE", value)
    assert store.current() == "local"
    assert run_cli("register", "p", "/tmp", "--pid", str(keeper), "--quiet").returncode == 0
    assert registry_file.exists()  # the origin's path, as before


def _closed_port() -> int:
    from store.redis_server import free_loopback_port

    return free_loopback_port()  # nothing listens there once the probe socket closed


@pytest.mark.parametrize("scheme", ["redis", "rediss", "unix"])
def test_a_shared_store_that_is_down_is_one_line_exit_3_and_nothing_shared_is_written(scheme, state_dir, keeper, tmp_path):
    value = {"redis": f"redis://127.0.0.1:{_closed_port()}/0", "rediss": f"rediss://u:p@127.0.0.1:{_closed_port()}/1",
             "unix": f"unix://{tmp_path}/no.sock"}[scheme]
    env = dict(os.environ, SESSIONWARD_STORE=value)
    why = f"no socket file {tmp_path}/no.sock" if scheme == "unix" else "Connection refused"
    for args in (["register", "p", "/tmp", "--pid", str(keeper)], ["lock", "acquire", "end", "--pid", str(keeper)], ["list"]):
        started = time.monotonic()
        result = run_cli(*args, env=env)
        assert time.monotonic() - started < 5  # never a hang
        assert (result.returncode, result.stdout) == (EXIT_ENVIRONMENT, ""), (args, result)
        shown = value.replace("u:p@", "u@").replace("/no.sock", "/no.sock")
        assert result.stderr == (f"sessionward: shared store {shown} unavailable: {why}; start it, or check "
                                 "SESSIONWARD_STORE (unset it to use the local store)\n")
    assert not (state_dir / "obsidian_sessions.json").exists() and not (state_dir / "end.lock").exists()


def test_a_hook_with_a_shared_store_that_is_down_fails_open_in_one_line(state_dir):
    env = dict(os.environ, SESSIONWARD_STORE=f"redis://127.0.0.1:{_closed_port()}/0")
    result = run_cli("hook", "SessionStart", env=env, input='{"session_id": "s", "cwd": "/tmp", "hook_event_name": "SessionStart"}')
    assert (result.returncode, result.stdout) == (1, "")
    # what matters first (Claude Code cuts a hook's line): nothing is guarded now, and why
    assert result.stderr.startswith("sessionward hook SessionStart: not guarding: shared store redis://127.0.0.1:")
    assert "unavailable (Connection refused); start it, or check SESSIONWARD_STORE" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (state_dir / "obsidian_sessions.json").exists()


def test_a_paused_shared_store_never_hangs_a_hook_or_a_command(redis_server, keeper):
    """A server that accepts but does not answer (SIGSTOP: a stalled VM) costs a fraction of
    a second: the hook fails open in one line, the command exits 3 in one line."""
    env = dict(os.environ, SESSIONWARD_STORE=redis_server.url)
    assert run_cli("register", "p", "/tmp", "--pid", str(keeper), "--quiet", env=env).returncode == 0
    redis_server.pause()
    try:
        started = time.monotonic()
        hook = run_cli("hook", "UserPromptSubmit", env=env,
                       input='{"session_id": "s", "cwd": "/tmp", "hook_event_name": "UserPromptSubmit"}')
        command = run_cli("list", env=env)
        took = time.monotonic() - started
    finally:
        redis_server.resume()
    assert (hook.returncode, hook.stdout, hook.stderr.count("\n")) == (1, "", 1), hook
    assert "not guarding: shared store" in hook.stderr and "unavailable (no reply within 0.25 s); " in hook.stderr
    assert (command.returncode, command.stdout) == (EXIT_ENVIRONMENT, "")
    assert command.stderr == (f"sessionward: shared store {redis_server.url} unavailable: no reply within 0.25 s; start it, "
                              "or check SESSIONWARD_STORE (unset it to use the local store)\n")
    assert took < 5, took  # two interpreter starts and two 0.25 s deadlines, on a busy machine


def test_an_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv("SESSIONWARD_STORE", "sqlite:///x")
    with pytest.raises(StoreNotBuilt, match="expected 'local' or a redis://"):
        store.current()
    # refused by every command and hook (never the local files instead: the sessions would
    # split between two registries), but doctor still reports, with that as its store's FAIL
    listed = run_cli("list")
    assert (listed.returncode, listed.stdout) == (EXIT_ENVIRONMENT, "") and len(listed.stderr.splitlines()) == 1
    doctor = run_cli("doctor")
    assert doctor.returncode == 1, doctor.stderr
    assert "FAIL  store            SESSIONWARD_STORE='sqlite:///x': expected 'local' or a redis://" in doctor.stdout
    assert "fix: unset SESSIONWARD_STORE (or set it to 'local') to use the local store" in doctor.stdout
    assert "info  registry         not checked: the store cannot be used (see store)" in doctor.stdout


@pytest.mark.parametrize("url, why", [
    ("redis://127.0.0.1:notaport/0", "port 'notaport' is not a port number"),
    ("unix://relative/sock", "a unix:// URL names an absolute socket path (unix:///run/redis.sock)"),
])
def test_a_store_url_that_does_not_parse_is_the_settings_fault_exit_3(monkeypatch, state_dir, url, why):
    """Like a store sessionward does not have: one line naming the variable, exit 3 and the
    fix (README), not a usage error; a hook fails open with that line."""
    monkeypatch.setenv("SESSIONWARD_STORE", url)
    listed = run_cli("list")
    assert (listed.returncode, listed.stdout, listed.stderr.count("\n")) == (EXIT_ENVIRONMENT, "", 1), listed
    assert listed.stderr == f"sessionward: SESSIONWARD_STORE: store URL {url}: {why}; fix it, or unset it to use the local store\n"
    hook = run_cli("hook", "Stop", input='{"session_id": "s", "cwd": "/tmp", "hook_event_name": "Stop"}')
    assert (hook.returncode, hook.stdout) == (1, "") and why in hook.stderr, hook
    doctor = run_cli("doctor")
    assert f"FAIL  store            SESSIONWARD_STORE: store URL {url}: {why}" in doctor.stdout, doctor.stdout


def _write_config(tmp_path, text: str) -> str:
    path = tmp_path / "home" / ".claude" / "sessionward.toml"  # the default place: HOME is the test's
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_a_shared_store_named_in_the_configuration_file_is_used(tmp_path, state_dir, keeper):
    """`store = "..."` chooses the shared store as SESSIONWARD_STORE does: down, it is told in
    one line (exit 3) without the password, and a hook fails open."""
    port = _closed_port()
    config = _write_config(tmp_path, f'store = "redis://sw:hunter2@127.0.0.1:{port}/0"\n')
    result = run_cli("register", "p", "/tmp", "--pid", str(keeper))
    assert (result.returncode, result.stdout) == (EXIT_ENVIRONMENT, "")
    assert result.stderr.startswith(f"sessionward: shared store redis://sw@127.0.0.1:{port}/0 unavailable: ")
    assert "hunter2" not in result.stderr
    # the file named it: the fix is there, not in a variable nobody set
    assert result.stderr.rstrip().endswith(f"; start it, or check `store` in {config} (remove it to use the local store)")
    hook = run_cli("hook", "UserPromptSubmit", input='{"session_id": "s", "cwd": "/tmp", "hook_event_name": "UserPromptSubmit"}')
    assert (hook.returncode, hook.stdout) == (1, "")
    assert hook.stderr.startswith(f"sessionward hook UserPromptSubmit: not guarding: shared store redis://sw@127.0.0.1:{port}/0 "
                                  "unavailable")
    assert not (state_dir / "obsidian_sessions.json").exists()


def test_the_variable_wins_over_the_configuration_file(tmp_path, monkeypatch, registry_file, keeper):
    _write_config(tmp_path, 'store = "redis://127.0.0.1:6379/0"\n')
    monkeypatch.setenv("SESSIONWARD_STORE", "local")
    assert store.setting() == ("local", "SESSIONWARD_STORE", None)
    assert run_cli("register", "p", "/tmp", "--pid", str(keeper), "--quiet").returncode == 0
    assert registry_file.exists()


@pytest.mark.parametrize("rest", ['edit_policy = "sometimes"\n', 'edit_polcy = "deny"\n', "claim_ttl_minutes = -1\n"])
def test_a_file_left_out_for_another_key_still_names_the_store(tmp_path, state_dir, keeper, rest):
    """The store is the exception to a configuration file left out whole (README): a typo
    elsewhere in the file must not move this process to the local files while every other
    one uses the shared store. Here the shared store is down: each command says so, none
    registers in the local files."""
    port = _closed_port()
    config = _write_config(tmp_path, f'store = "redis://127.0.0.1:{port}/0"\n{rest}')
    assert store.setting() == (f"redis://127.0.0.1:{port}/0", config, None)
    assert store.current() == store.SHARED
    assert "; all of it but its store is ignored until it is fixed (defaults meanwhile)" in load_config().problems[0]
    result = run_cli("register", "p", "/tmp", "--pid", str(keeper))
    assert result.returncode == EXIT_ENVIRONMENT and f"redis://127.0.0.1:{port}/0 unavailable" in result.stderr, result
    assert not (state_dir / "obsidian_sessions.json").exists()
    doctor = run_cli("doctor")
    assert f"FAIL  configuration    {config}: " in doctor.stdout and f"shared: redis://127.0.0.1:{port}/0" in doctor.stdout


UNKNOWN_STORE = "which store to use cannot be read until this is fixed: {config}: not valid TOML: "


@pytest.mark.parametrize("text, why", [
    ('store = "redis://127.0.0.1:6379/0"\nvault = \n', UNKNOWN_STORE),  # which store: unknown
    ('\ufeffstore = "redis://127.0.0.1:6379/0"\nvault = \n', UNKNOWN_STORE),  # a BOM first
    ('"store" = "redis://127.0.0.1:6379/0"\nvault = \n', UNKNOWN_STORE),  # a quoted key
    ("store = 5\n", '{config}: store: expected "local" or a store URL, not 5'),
])
def test_a_store_the_file_names_but_that_cannot_be_read_is_refused(tmp_path, state_dir, keeper, text, why):
    config = _write_config(tmp_path, text)
    why = why.format(config=config)
    with pytest.raises(StoreNotBuilt) as refused:
        store.current()
    assert refused.value.message.startswith(why), refused.value
    result = run_cli("register", "p", "/tmp", "--pid", str(keeper))
    assert (result.returncode, result.stdout, result.stderr.count("\n")) == (EXIT_ENVIRONMENT, "", 1), result
    assert result.stderr.startswith(f"sessionward: {why}") and "Traceback" not in result.stderr
    hook = run_cli("hook", "UserPromptSubmit", input='{"session_id": "s", "cwd": "/tmp", "hook_event_name": "UserPromptSubmit"}')
    assert (hook.returncode, hook.stdout) == (1, "") and why in hook.stderr, hook
    assert not (state_dir / "obsidian_sessions.json").exists()
    # doctor does not promise the defaults' guarding: with the store refused, nothing guards
    checks = json.loads(run_cli("doctor", "--json").stdout)["result"]["checks"]
    configuration = next(c for c in checks if c["name"] == "configuration")
    assert configuration["fix"].startswith("fix it; until then nothing is guarded"), configuration
    assert configuration["detail"].endswith("; which store to use cannot be known until it is fixed"), configuration
    assert "defaults meanwhile" not in configuration["detail"]  # what its own fix says is not so


@pytest.mark.parametrize("text", ['store = "local"\nvault = \n', 'vault = \n', "store = 'local' # here\n[[x\n",
                                  'store = ""\nvault = \n'])
def test_a_broken_file_that_names_no_other_store_stays_on_the_local_files(tmp_path, registry_file, keeper, text):
    _write_config(tmp_path, text)
    assert store.current() == store.LOCAL
    assert run_cli("register", "p", "/tmp", "--pid", str(keeper), "--quiet").returncode == 0
    assert registry_file.exists()


def test_a_fifo_or_a_directory_in_the_files_place_names_no_store_and_hangs_nothing(tmp_path, registry_file, keeper):
    path = tmp_path / "home" / ".claude" / "sessionward.toml"
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for make in (os.mkfifo, os.mkdir):
        make(path)
        assert store.setting() == ("local", "default", None)  # a FIFO opened for reading would wait for a writer
        result = run_cli("register", "p", "/tmp", "--pid", str(keeper), "--quiet")
        assert result.returncode == 0, result
        os.rmdir(path) if path.is_dir() else os.unlink(path)
    assert registry_file.exists()


def test_doctor_says_which_store_is_in_use_and_what_chose_it(tmp_path, monkeypatch, state_dir):
    def store_check():
        checks = json.loads(run_cli("doctor", "--json").stdout)["result"]["checks"]
        return next((c["status"], c["detail"]) for c in checks if c["name"] == "store")

    assert store_check() == ("ok", f"local: the files in {state_dir} (the default)")
    config = _write_config(tmp_path, 'store = "local"\n')
    assert store_check() == ("ok", f"local: the files in {state_dir} ({config})")
    monkeypatch.setenv("SESSIONWARD_STORE", "local")
    assert store_check() == ("ok", f"local: the files in {state_dir} (SESSIONWARD_STORE)")


def test_doctor_on_the_shared_store_shows_the_url_the_key_prefix_and_pings(shared_store, monkeypatch):
    import pwd

    def store_check():
        checks = json.loads(run_cli("doctor", "--json").stdout)["result"]["checks"]
        return next((c["status"], c["detail"]) for c in checks if c["name"] == "store")

    user = pwd.getpwuid(os.geteuid()).pw_name
    assert store_check() == ("ok", f"shared: {shared_store.url}, keys sessionward:{{{user}}}:* (SESSIONWARD_STORE)")
    from store.redis_server import free_loopback_port

    port = free_loopback_port()  # nothing listens: the ping fails, the password stays hidden
    monkeypatch.setenv("SESSIONWARD_STORE", f"redis://sw:hunter2@127.0.0.1:{port}/0")
    status, detail = store_check()
    assert status == "fail" and detail.startswith(f"shared: redis://sw@127.0.0.1:{port}/0, keys sessionward:")
    assert "unavailable" in detail and "hunter2" not in detail
    # one cause, one FAIL: the checks that read the store say they could not look
    done = run_cli("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(done.stdout)["result"]["checks"]}
    assert [name for name, c in checks.items() if c["status"] == "fail" and "unavailable" in c["detail"]] == ["store"]
    for name in ("shared state", "registry", "other kernels", "locks", "kept aside"):
        assert (checks[name]["status"], checks[name]["detail"]) == ("info", "not checked: the store cannot be used (see store)")
    assert done.returncode == 1
    # and they do not try it: each try of a server that does not answer (paused) waits its
    # whole reply timeout, so doctor tries it once
    from sessionward import doctor
    from sessionward.store import resp, shared

    tried = []
    real_connect = resp.connect
    monkeypatch.setattr(resp, "connect", lambda *args, **kw: (tried.append(args[0].display), real_connect(*args, **kw))[1])
    shared.disconnect()
    statuses = {c.name: c.status for c in doctor.run_checks()}
    assert statuses["store"] == "fail" and tried == [f"redis://sw@127.0.0.1:{port}/0"], (statuses, tried)


def test_a_url_password_is_never_shown():
    # shown as every message of the store shows it (doctor's store line, `watch`, errors)
    assert store.shown("rediss://u:p%40ss@10.0.0.1:6380/1") == "rediss://u@10.0.0.1:6380/1"
    assert store.shown("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert store.shown("unix:///run/redis.sock") == "unix:///run/redis.sock"
    assert store.shown("unix://:pw@/run/redis.sock?db=2") == "unix:///run/redis.sock?db=2"
    assert store.shown("redis://:pw@") == "redis://:***@"  # not a URL it can use: masked all the same


def _put(st, rid, record):
    def change(sessions):
        sessions[rid] = record
        return rid, True
    return st.update_sessions(change)


def test_registry_round_trip_through_the_interface(store_backend, keeper):
    st = store.open_store()
    assert st.load_sessions() == {}
    assert _put(st, "a", record("a", keeper)) == "a"
    assert store.open_store().load_sessions()["a"]["project"] == "p"  # another handle sees it

    def unchanged(sessions):
        sessions["b"] = record("b", keeper)  # not written back: changed is False
        return len(sessions), False

    assert st.update_sessions(unchanged) == 2
    assert list(store.open_store().load_sessions()) == ["a"]


def test_an_update_knows_the_version_it_left_though_another_writes_right_after(store_backend, keeper):
    # heartbeat_memo keeps the version an update left (Store.version, taken while it still
    # excluded every other), not one read after it: a write by another process in between
    # must make the memo stale, not be taken as seen.
    st = store.open_store()
    assert st.version == ""  # no update yet
    _put(st, "a", record("a", keeper))
    mine = st.version
    assert mine and mine == store.registry_version() == store.registry_version(st)
    st.update_sessions(lambda sessions: (None, False))  # read, nothing written: the same version
    assert st.version == mine
    _put(store.open_store(), "b", record("b", keeper))  # another writer, right after
    assert store.registry_version() != mine
    assert store.registry_version(st) == mine  # what this store's update left, not what is there now

    def failing(sessions):
        raise RuntimeError("change failed")

    with pytest.raises(RuntimeError):
        st.update_sessions(failing)
    assert st.version == "" and store.registry_version(st) == store.registry_version()  # nothing known: read


def test_a_registry_read_on_the_local_store_says_nothing_of_the_locks(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONWARD_STORE", "local")
    st = store.open_store()
    st.load_sessions()
    assert st.locks_held_at_read is None  # a listdir is as cheap as a memo: locks_may_be_held looks
