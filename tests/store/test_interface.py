"""The store interface: the backend is chosen from SESSIONWARD_STORE (local by default); a
shared store's URL, not built yet, is refused in one line before any state is touched; the
registry's operations through open_store(), for every backend."""

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
        assert result.stderr == (f"sessionward: SESSIONWARD_STORE={value!r}: the shared (Redis) store is not built yet; "
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
