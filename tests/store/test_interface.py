"""The store interface: the backend is chosen from SESSIONWARD_STORE, or `store` in
sessionward.toml when the variable is unset (local by default); a shared store's URL, not
built yet, is refused in one line before any state is touched; the registry's operations
through open_store(), for every backend."""

import json
import os

import pytest

from sessionward import store
from sessionward.errors import EXIT_ENVIRONMENT, StoreNotBuilt

from helpers import run_cli
from store.test_local_store import record


@pytest.mark.parametrize("value", ["", "local"])
def test_the_default_backend_is_the_local_files(value, monkeypatch, registry_file, keeper):
    monkeypatch.setenv("SESSIONWARD_STORE", value)
    assert store.current() == "local"
    assert run_cli("register", "p", "/tmp", "--pid", str(keeper), "--quiet").returncode == 0
    assert registry_file.exists()  # the origin's path, as before


@pytest.mark.parametrize("value", ["redis://127.0.0.1:6379/0", "rediss://u:p@127.0.0.1:6380/1", "unix:///run/redis.sock"])
def test_a_shared_store_url_is_refused_in_one_line_exit_3_and_nothing_is_written(value, state_dir, keeper):
    env = dict(os.environ, SESSIONWARD_STORE=value)
    for args in (["register", "p", "/tmp", "--pid", str(keeper)], ["lock", "acquire", "end", "--pid", str(keeper)], ["list"]):
        result = run_cli(*args, env=env)
        assert (result.returncode, result.stdout) == (EXIT_ENVIRONMENT, ""), (args, result)
        assert result.stderr == (f"sessionward: SESSIONWARD_STORE={store.shown(value)!r}: the shared (Redis) store is not built yet; "
                                 "this sessionward has the local store only; unset SESSIONWARD_STORE (or set it to "
                                 "'local') to use the local store\n")
    assert not state_dir.exists()  # not a byte on the local files others would not see


def test_a_hook_with_a_shared_store_url_fails_open_in_one_line(state_dir):
    env = dict(os.environ, SESSIONWARD_STORE="redis://127.0.0.1:6379/0")
    result = run_cli("hook", "SessionStart", env=env, input='{"session_id": "s", "cwd": "/tmp", "hook_event_name": "SessionStart"}')
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("sessionward hook SessionStart: SESSIONWARD_STORE='redis://127.0.0.1:6379/0': ")
    assert result.stderr.count("\n") == 1
    assert not state_dir.exists()


def test_an_unknown_backend_is_refused(monkeypatch):
    monkeypatch.setenv("SESSIONWARD_STORE", "sqlite:///x")
    with pytest.raises(StoreNotBuilt, match="expected 'local' or a redis://"):
        store.current()


def _write_config(tmp_path, text: str) -> str:
    path = tmp_path / "home" / ".claude" / "sessionward.toml"  # the default place: HOME is the test's
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_a_shared_store_named_in_the_configuration_file_is_refused_naming_the_file(tmp_path, state_dir, keeper):
    config = _write_config(tmp_path, 'store = "redis://sw:hunter2@127.0.0.1:6379/0"\n')
    result = run_cli("register", "p", "/tmp", "--pid", str(keeper))
    assert (result.returncode, result.stdout) == (EXIT_ENVIRONMENT, "")
    assert result.stderr == (f"sessionward: {config}: store = 'redis://sw:***@127.0.0.1:6379/0': the shared (Redis) store "
                             "is not built yet; this sessionward has the local store only; remove `store` from "
                             f'{config} (or set it to "local") to use the local store\n')
    assert only_the_config_cache(state_dir)
    hook = run_cli("hook", "UserPromptSubmit", input='{"session_id": "s", "cwd": "/tmp", "hook_event_name": "UserPromptSubmit"}')
    assert (hook.returncode, hook.stdout) == (1, "")
    assert hook.stderr.startswith(f"sessionward hook UserPromptSubmit: {config}: store = 'redis://sw:***@")
    assert only_the_config_cache(state_dir)


def only_the_config_cache(state_dir) -> bool:
    """Nothing of the shared state was written: the configuration's parse cache, kept per
    machine whatever the store, is all there is."""
    found = {str(p.relative_to(state_dir)) for p in state_dir.rglob("*")}
    return found <= {"sessionward", "sessionward/config.cache.json"}


def test_the_variable_wins_over_the_configuration_file(tmp_path, monkeypatch, registry_file, keeper):
    _write_config(tmp_path, 'store = "redis://127.0.0.1:6379/0"\n')
    monkeypatch.setenv("SESSIONWARD_STORE", "local")
    assert store.setting() == ("local", "SESSIONWARD_STORE")
    assert run_cli("register", "p", "/tmp", "--pid", str(keeper), "--quiet").returncode == 0
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


def test_a_url_password_is_never_shown():
    assert store.shown("rediss://u:p%40ss@10.0.0.1:6380/1") == "rediss://u:***@10.0.0.1:6380/1"
    assert store.shown("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert store.shown("unix:///run/redis.sock") == "unix:///run/redis.sock"


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
