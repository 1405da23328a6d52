"""`sessionward doctor`: every check can pass and can fail, and each problem says its fix."""

import json
import os
import stat
import subprocess
import sys

import pytest

from helpers import kill_watcher_pair, run_cli, watchers_once


def doctor(*args, env=None):
    result = run_cli("doctor", "--json", *args, env=env)
    envelope = json.loads(result.stdout)
    return result.returncode, {c["name"]: c for c in envelope["result"]["checks"]}


@pytest.fixture
def path_env(tmp_path):
    """PATH without any real `claude`, plus a bin directory the test may fill."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    return dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin"), bin_dir


def test_fresh_home_fails_with_the_fix(path_env):
    env, _ = path_env
    code, checks = doctor(env=env)
    assert code == 1
    assert checks["settings"]["status"] == "fail"
    assert checks["settings"]["detail"].endswith("settings.json does not exist: no hooks are installed")
    assert checks["settings"]["fix"] == "sessionward install"
    assert checks["/start and /end"]["status"] == "warn"
    assert checks["Claude Code"]["status"] == "info"


def test_after_install_everything_that_install_places_is_ok(path_env):
    env, _ = path_env
    run_cli("install", env=env, check=True)
    code, checks = doctor(env=env)
    assert checks["settings"]["status"] == "ok"
    assert checks["hooks"]["status"] == "ok" and checks["hooks"]["detail"].startswith("8 of 8 events hooked, via ")
    assert checks["status line"]["status"] == "ok"
    assert checks["/start and /end"]["status"] == "ok"
    assert all(c["status"] in ("ok", "info", "warn") for c in checks.values())
    assert code == 0


def install_and_edit(env, edit) -> None:
    """`sessionward install`, then `edit(settings document)` written back, as a user would."""
    run_cli("install", env=env, check=True)
    settings = os.path.join(os.environ["HOME"], ".claude", "settings.json")
    with open(settings) as f:
        doc = json.load(f)
    edit(doc)
    with open(settings, "w") as f:
        json.dump(doc, f)


def test_a_hook_pointing_at_a_missing_program_fails(path_env):
    env, _ = path_env

    def point_elsewhere(doc):
        for groups in doc["hooks"].values():
            for group in groups:
                for handler in group["hooks"]:
                    handler["command"] = handler["command"].replace(handler["command"].split()[0], "/gone/bin/sessionward")

    install_and_edit(env, point_elsewhere)
    code, checks = doctor(env=env)
    assert code == 1
    assert checks["hooks"]["status"] == "fail"
    assert "pointing at no program: SessionStart -> /gone/bin/sessionward" in checks["hooks"]["detail"]
    assert checks["hooks"]["fix"] == "sessionward install"


def test_hand_edited_hooks_are_checked_through_the_launcher_they_run(path_env):
    env, bin_dir = path_env
    launcher = os.path.join(os.path.dirname(sys.executable), "sessionward")
    os.symlink(launcher, bin_dir / "sessionward")
    edits = {"SessionStart": f"timeout 5 {launcher} hook SessionStart", "Stop": f"{launcher} hook Stop 2>>/tmp/hook.log",
             "PreToolUse": "sessionward hook PreToolUse"}  # the last from PATH

    def edit(doc):
        for event, command in edits.items():
            doc["hooks"][event][0]["hooks"][0]["command"] = command

    install_and_edit(env, edit)
    code, checks = doctor(env=env)
    assert checks["hooks"]["status"] == "ok", checks["hooks"]
    hooks_launcher = os.path.join(os.environ["HOME"], ".claude", "hooks", "sessionward")  # the unedited events'
    via = ", ".join(sorted([str(bin_dir / "sessionward"), launcher, hooks_launcher]))  # sorted, wherever the clone is
    assert checks["hooks"]["detail"] == f"8 of 8 events hooked, via {via}"


def test_an_install_from_before_the_permission_request_hook_is_told_and_install_adds_it(path_env):
    # Without it a permission dialog shows as "waiting" only ~6 s late (sessionward.activity).
    env, _ = path_env
    install_and_edit(env, lambda doc: doc["hooks"].pop("PermissionRequest"))
    code, checks = doctor(env=env)
    assert code == 1 and checks["hooks"]["status"] == "fail", checks["hooks"]
    assert checks["hooks"]["detail"].endswith("missing: PermissionRequest") and checks["hooks"]["fix"] == "sessionward install"
    installed = run_cli("install", env=env, check=True).stdout
    assert "settings.json (1 hook; backup " in installed, installed
    code, checks = doctor(env=env)
    assert checks["hooks"]["status"] == "ok" and checks["hooks"]["detail"].startswith("8 of 8 events hooked, via ")


def test_missing_hook_events_are_named(path_env):
    env, _ = path_env
    settings = os.path.join(os.environ["HOME"], ".claude", "settings.json")
    os.makedirs(os.path.dirname(settings))
    with open(settings, "w") as f:
        json.dump({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo hi"}]}]}}, f)
    code, checks = doctor(env=env)
    assert code == 1
    assert checks["hooks"]["detail"].endswith(
        "missing: SessionStart, UserPromptSubmit, PreToolUse, PostToolUse, PermissionRequest, Notification, Stop, SessionEnd")
    assert checks["status line"]["status"] == "info"


def test_invalid_settings_json_fails_with_line_and_column(path_env):
    env, _ = path_env
    settings = os.path.join(os.environ["HOME"], ".claude", "settings.json")
    os.makedirs(os.path.dirname(settings))
    with open(settings, "w") as f:
        f.write('{"hooks": {,}}')
    code, checks = doctor(env=env)
    assert code == 1
    assert checks["settings"]["status"] == "fail"
    assert "not valid JSON" in checks["settings"]["detail"] and "line 1 column 12" in checks["settings"]["detail"]
    assert "hooks" not in checks


def test_state_directory_writable_by_others_fails(path_env, state_dir):
    env, _ = path_env
    state_dir.mkdir()
    os.chmod(state_dir, 0o777)
    code, checks = doctor(env=env)
    assert code == 1
    assert checks["state directory"] == {
        "name": "state directory", "status": "fail",
        "detail": f"{state_dir} is writable by group or others", "fix": f"chmod 700 {state_dir}",
    }


def test_corrupt_files_kept_aside_and_dead_sessions_are_reported(path_env, state_dir, registry_file):
    env, _ = path_env
    state_dir.mkdir(mode=0o700)
    registry_file.write_text("{not json")
    run_cli("list", env=env)  # keeps the corrupt registry aside
    proc = subprocess.Popen(["sleep", "60"])
    run_cli("register", "p", str(state_dir), "--pid", str(proc.pid), env=env, check=True)
    proc.kill()
    proc.wait()
    _, checks = doctor(env=env)
    assert checks["kept aside"]["status"] == "warn"
    assert checks["kept aside"]["detail"].startswith(f"1 corrupt file(s) kept aside in {state_dir}: obsidian_sessions.json.corrupt-")
    assert checks["registry"]["status"] == "info"
    assert checks["registry"]["detail"] == "1 dead session(s) recorded (swept by the next command)"


def test_an_invalid_configuration_fails(path_env):
    env, _ = path_env
    config = os.path.join(os.environ["HOME"], ".claude", "sessionward.toml")
    os.makedirs(os.path.dirname(config), exist_ok=True)
    with open(config, "w") as f:
        f.write('edit_policy = "sometimes"\n')
    code, checks = doctor(env=env)
    assert code == 1
    assert checks["configuration"]["status"] == "fail"
    assert checks["configuration"]["detail"] == (f"{config}: edit_policy: expected one of ask, deny, warn, not "
                                                 "'sometimes'; the file is ignored until it is fixed (defaults meanwhile)")
    assert checks["configuration"]["fix"] == "fix it; the hooks guard with edit policy deny (the defaults) until then"


@pytest.mark.parametrize("version, status, says", [
    ("2.1.331 (Claude Code)", "ok", "2.1.331 at {claude}; provides CLAUDE_PID"),
    ("2.1.112 (Claude Code)", "info", "2.1.112 at {claude}; no CLAUDE_PID before 2.1.214"),
    ("garbage", "warn", "{claude}: cannot read its version ('garbage')"),
])
def test_claude_code_version_and_claude_pid(path_env, version, status, says):
    env, bin_dir = path_env
    claude = bin_dir / "claude"
    claude.write_text(f"#!/bin/sh\necho '{version}'\n")
    claude.chmod(claude.stat().st_mode | stat.S_IXUSR)
    _, checks = doctor(env=env)
    assert checks["Claude Code"]["status"] == status
    assert checks["Claude Code"]["detail"].startswith(says.format(claude=claude))


def test_text_output_pairs_each_problem_with_its_fix(path_env):
    env, _ = path_env
    result = run_cli("doctor", env=env)
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FAIL  settings"))
    assert lines[at + 1].strip() == "fix: sessionward install"
    assert lines[-1].endswith("problem(s) found")
    assert result.returncode == 1


def test_drafts_left_by_an_unfinished_end_are_reported_with_the_fix(tmp_path, path_env):
    env, _ = path_env
    drafts = tmp_path / "home" / ".local" / "state" / "sessionward" / "drafts"
    _, checks = doctor(env=env)
    assert (checks["drafts"]["status"], checks["drafts"]["detail"]) == ("ok", "no drafts left by an unfinished /end")
    drafts.mkdir(parents=True, mode=0o700)
    for name, age_s in (("a.md", 7200), ("b.md", 60)):  # what /end's Write tool left; its note write never ran
        (drafts / name).write_text("the note's text\n")
        os.utime(drafts / name, (os.path.getmtime(drafts / name) - age_s,) * 2)
    _, checks = doctor(env=env)
    assert checks["drafts"]["status"] == "warn"
    assert checks["drafts"]["detail"] == (
        "2 left by an /end that did not finish (oldest 2h00m ago): "
        "~/.local/state/sessionward/drafts/a.md, ~/.local/state/sessionward/drafts/b.md")
    assert checks["drafts"]["fix"] == ("each holds a note's text: save it (sessionward note append NOTE --text-file DRAFT), "
                                       "or delete it (rm DRAFT)")
    text = run_cli("doctor", env=env).stdout.splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("WARN  drafts"))
    assert text[at + 1].strip() == "fix: " + checks["drafts"]["fix"]


def test_the_status_line_check_reports_and_checks_the_command_install_wrote(path_env, tmp_path):
    """doctor shows the statusLine command as settings.json holds it (install writes the shell
    fast path, refreshed while idle), and fails when what it runs is gone."""
    from sessionward._humanize import short_path

    env, _ = path_env
    run_cli("install", env=env, check=True)
    settings = os.path.join(os.environ["HOME"], ".claude", "settings.json")
    with open(settings) as f:
        written = json.load(f)["statusLine"]
    script, launcher = written["command"].split(" ")[1:]
    assert written["command"] == f"sh {script} {launcher}" and script.endswith("/status_line.sh")
    code, checks = doctor(env=env)
    line = checks["status line"]
    assert (line["status"], line["detail"]) == (
        "ok", f"sh {script} {launcher} (refreshed every {written['refreshInterval']} s)")  # as written

    moved = str(tmp_path / "gone" / "status_line.sh")
    install_and_edit(env, lambda doc: doc["statusLine"].update(command=f"sh {moved} {launcher}"))
    code, checks = doctor(env=env)
    assert (checks["status line"]["status"], checks["status line"]["fix"]) == ("fail", "sessionward install")
    assert checks["status line"]["detail"].endswith(f": no script {short_path(moved)}")
    assert code == 1

    def older_install(doc):  # what installs before the fast path wrote
        doc["statusLine"] = {"type": "command", "command": f"{launcher} status-line", "padding": 0}

    install_and_edit(env, older_install)
    code, checks = doctor(env=env)
    assert checks["status line"]["status"] == "warn"
    assert checks["status line"]["detail"] == (f"{launcher} status-line (not refreshed while idle "
                                               f"(no refreshInterval)): an older install's")


@pytest.mark.parametrize("where", ["local", "shared"])
def test_a_live_owner_whose_watcher_pair_was_killed_is_told_with_the_fix(path_env, state_dir, keeper, tmp_path, where):
    """Both of a pair killed by hand (or stopped): the owner lives, its PID says so here, but
    its leases on the shared store lapse, and other PID namespaces take it for dead. doctor
    says which owner and how to start a pair again; the fix it gives does."""
    env, _ = path_env
    if where == "shared":
        from store.redis_server import RedisServer, need_redis_server

        need_redis_server()
        (tmp_path / "redis").mkdir()
        server = RedisServer(tmp_path / "redis").start()
        env = dict(env, SESSIONWARD_STORE=server.url)
    try:
        run_cli("register", "p", str(tmp_path), "--pid", str(keeper), "--quiet", env=env, check=True)
        _, checks = doctor(env=env)
        assert checks["watchers"]["status"] == "ok", checks["watchers"]
        if where == "shared":  # another state directory on this machine sees the record, not the pair's life file
            _, checks = doctor(env=dict(env, SESSIONWARD_HOME=str(tmp_path / "another-state")))
            assert checks["watchers"]["status"] == "ok", checks["watchers"]
        kill_watcher_pair(state_dir)
        _, checks = doctor(env=env)
        watchers = checks["watchers"]
        assert watchers["status"] == "warn" and f"no watcher for live pid {keeper} " in watchers["detail"], watchers
        assert ("leases on the shared store lapse" if where == "shared" else "other PID namespaces") in watchers["detail"]
        assert watchers["fix"].startswith(f"sessionward heartbeat --pid {keeper} starts one again")
        run_cli("heartbeat", "--pid", str(keeper), env=env, check=True)
        watchers_once(state_dir, lambda pids: len(pids) == 2)
        _, checks = doctor(env=env)
        assert checks["watchers"]["status"] == "ok", checks["watchers"]
    finally:
        if where == "shared":
            server.cleanup()


