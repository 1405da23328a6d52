"""The --json envelope and each command's result keys are a contract: pinned here."""

import json

import pytest

from helpers import cli_json

ENVELOPE = {"schema", "command", "ok", "exit_code", "result", "notices"}
RECORD = {
    "id", "session_id", "kind", "project", "project_key", "project_explicit", "worktree",
    "branch", "cwd", "owner", "started_at", "last_seen", "holds",
}
OWNER = {"pid", "start_time", "host", "boot_id", "pidns", "comm", "life"}
# Where the owner runs and how its liveness was told: added to each session shown, never stored.
VIEW = RECORD | {"where", "liveness"}
LIVENESS = {"alive", "known", "how", "reason"}
LOCK = {"name", "path", "held", "orphaned", "pid", "since", "alive_reason", "holder", "where", "liveness", "fence", "lease_left_s"}


@pytest.fixture
def registered(tmp_path, keeper):
    return cli_json("register", "proj", str(tmp_path), "--pid", str(keeper))


def test_register(registered):
    assert set(registered) == ENVELOPE
    assert registered["schema"] == "sessionward/1" and registered["command"] == "register"
    assert set(registered["result"]) == {"session", "created", "conflicts", "swept"}
    assert set(registered["result"]["session"]) == VIEW
    assert set(registered["result"]["session"]["owner"]) == OWNER
    assert registered["result"]["session"]["where"] == "here"
    assert registered["result"]["session"]["liveness"] == {
        "alive": True, "known": True, "how": "pid", "reason": f"process {registered['result']['session']['owner']['pid']} is running"
    }


def test_list(registered, state_dir):
    env = cli_json("list")
    assert set(env) == ENVELOPE and set(env["result"]) == {"sessions", "swept"}
    assert [set(r) for r in env["result"]["sessions"]] == [VIEW | {"activity"}]  # activity: added (null: no hook yet)
    assert [set(r["liveness"]) for r in env["result"]["sessions"]] == [LIVENESS]
    stored = json.loads((state_dir / "obsidian_sessions.json").read_text())["sessions"]
    assert [set(r) for r in stored.values()] == [RECORD]  # never stored


def test_check(registered, tmp_path, keeper):
    other = tmp_path / "x"
    other.mkdir()
    env = cli_json("check", "proj", "--cwd", str(other))
    assert env["exit_code"] == 1 and env["ok"] is False
    assert set(env["result"]) == {"project", "worktree", "branch", "level", "conflict", "conflicts", "swept"}
    [conflict] = env["result"]["conflicts"]
    assert set(conflict) == {"level", "shares", "session"}
    assert set(conflict["session"]) == VIEW and set(conflict["session"]["liveness"]) == LIVENESS
    assert (conflict["level"], conflict["shares"]) == ("warning", "project")


def test_prune_unregister_heartbeat_whoami_install(registered, keeper):
    assert set(cli_json("prune")["result"]) == {"applied", "dead", "unknown", "life_files", "forced"}
    assert set(cli_json("heartbeat", "--pid", str(keeper))["result"]) == {"sessions"}
    assert set(cli_json("whoami")["result"]) == {
        "owner", "resolved_via", "kind", "cwd", "project", "project_key", "worktree", "branch"
    }
    assert set(cli_json("install", "--seed-paths", "--dry-run")["result"]) == {"dry_run", "actions"}
    install = cli_json("install", "--dry-run")["result"]
    assert set(install) == {"dry_run", "actions", "notes"}
    assert set(install["notes"]) == {"found", "protected", "to_add", "added", "confirmed", "skipped", "problems", "file"}
    assert set(install["actions"][0]) == {"what", "path", "action", "backup", "hooks", "status_line", "edited", "left_alone",
                                           "diff"}
    assert set(install["actions"][1]) == {"what", "path", "action", "backup", "lines_to_add", "why", "diff"}
    assert set(install["actions"][-2]) == {"what", "path", "action", "backup", "why", "diff"}
    assert set(install["actions"][-1]) == {"what", "path", "action", "why"}  # the drafts directory
    uninstall = cli_json("uninstall", "--dry-run")["result"]
    assert set(uninstall) == {"dry_run", "actions"}
    assert [a["what"] for a in uninstall["actions"]] == ["settings"]  # nothing installed: nothing else
    env = cli_json("unregister", str(keeper))
    assert set(env["result"]) == {"removed", "swept"} and len(env["result"]["removed"]) == 1


def test_lock_status(tmp_path, keeper):
    cli_json("lock", "acquire", "end", "--pid", str(keeper), "--timeout", "0")
    [lock] = cli_json("lock", "status")["result"]["locks"]
    assert set(lock) == LOCK and lock["where"] == "here"
    assert set(lock["liveness"]) == LIVENESS and lock["liveness"]["how"] == "pid"


def test_prune_force(registered):
    env = cli_json("prune", "--force", registered["result"]["session"]["id"])
    assert env["exit_code"] == 1 and env["error"]["code"] == "refused"  # its owner lives
