"""The launcher the hooks and the status line run (install.hook_launcher): ~/.claude/hooks/sessionward.

* A user-scope install writes it (0755, the managed-file marker) and points every hook and
  the status line at it; a project-scope install keeps the package's launcher.
* It starts Python without `site`: a sitecustomize module on PYTHONPATH, which site imports
  on every start, is not imported through it, and is through the package's launcher (the
  negative control); the hook still answers.
* A module of the user's beside it (~/.claude/hooks/_json.py) does not shadow the standard
  library's: its directory is not on sys.path.
* Out of date (sessionward moved: its import directory gone), it still works through its
  fallback, and doctor says so (warn) with the fix; install writes it again.
* An interpreter whose path a #! line cannot hold (a space in it, or too long for the
  kernel) is run through /bin/sh, still without site.
* Uninstall removes it.
"""

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from helpers import SESSIONWARD, run_cli

MARKER_MODULE = "import os\nopen(os.environ['SITE_MARKER'], 'a').write('site ran\\n')\n"


def hooks_launcher(home) -> str:
    return str(home / ".claude" / "hooks" / "sessionward")


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"  # HOME (tests/conftest.py)


def settings_commands(home) -> list:
    doc = json.loads((home / ".claude" / "settings.json").read_text())
    commands = [h["command"] for groups in doc["hooks"].values() for g in groups for h in g["hooks"]]
    return commands + [doc["statusLine"]["command"]]


def test_a_user_install_points_every_hook_and_the_status_line_at_it(home):
    run_cli("install", check=True)
    launcher = hooks_launcher(home)
    info = os.stat(launcher)
    assert stat.S_IMODE(info.st_mode) == 0o755
    with open(launcher) as f:
        first, second = f.readline(), f.readline()
    assert first == f"#!{sys.executable} -S\n"
    assert "sessionward: managed file" in second
    commands = settings_commands(home)
    assert len(commands) == 9 and all(f" {launcher} " in f" {c} " for c in commands), commands
    assert subprocess.run([launcher, "--version"], capture_output=True, text=True).stdout.startswith("sessionward ")


def test_a_project_install_keeps_the_package_launcher(tmp_path, home):
    repo = tmp_path / "repo"
    repo.mkdir()
    run_cli("install", "--scope", "project", cwd=repo, check=True)
    doc = json.loads((repo / ".claude" / "settings.json").read_text())
    assert doc["hooks"]["Stop"][0]["hooks"][0]["command"] == f"{SESSIONWARD} hook Stop"
    assert not os.path.exists(hooks_launcher(home))


def run_hook(argv: list, env: dict, cwd) -> subprocess.CompletedProcess:
    payload = {"session_id": "7c0ffee0-0000-4000-8000-000000000001", "transcript_path": "/nonexistent.jsonl",
               "cwd": str(cwd), "hook_event_name": "Notification", "message": "Claude needs your permission",
               "notification_type": "permission_prompt"}
    return subprocess.run([*argv, "hook", "Notification"], input=json.dumps(payload), capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=60)


def test_python_starts_without_site_through_it_and_with_site_through_the_package_launcher(tmp_path, home):
    run_cli("install", check=True)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "sitecustomize.py").write_text(MARKER_MODULE)
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(extra), SITE_MARKER=str(marker))
    done = run_hook([hooks_launcher(home)], env, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert not marker.exists(), "site ran in a hook started through ~/.claude/hooks/sessionward"
    done = run_hook([SESSIONWARD], env, tmp_path)  # the negative control: the same hook, the usual start
    assert (done.returncode, done.stderr) == (0, "")
    assert marker.read_text() == "site ran\n"


@pytest.mark.parametrize("where", ["a space", "long"])
def test_an_interpreter_path_a_shebang_line_cannot_hold_still_runs_it_without_site(tmp_path, where):
    # The kernel splits a #! line at its first space and cuts it after 127 bytes (before Linux
    # 5.1; 255 since): a venv in "My Projects", or deep in a home directory. Such a launcher
    # starts with /bin/sh, which execs the interpreter (-S) on it. (With the plain line, these
    # two fail: no such file "/.../my", and an exec format error.)
    from sessionward.install.hook_launcher import import_dirs, render

    parts = ["my projects", "bin"] if where == "a space" else ["x" * 200, "y" * 100, "bin"]
    bindir = tmp_path.joinpath(*parts)
    bindir.mkdir(parents=True)
    python = bindir / "python"
    python.symlink_to(sys.executable)
    launcher = tmp_path / "sessionward"
    launcher.write_bytes(render(str(python), import_dirs(), str(tmp_path / "no-pack")))
    launcher.chmod(0o755)
    assert launcher.read_text().startswith("#!/bin/sh\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "sitecustomize.py").write_text(MARKER_MODULE)
    marker = tmp_path / "marker"
    done = run_hook([str(launcher)], dict(os.environ, PYTHONPATH=str(extra), SITE_MARKER=str(marker)), tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert not marker.exists(), "site ran"
    version = subprocess.run([str(launcher), "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("sessionward "), version


def test_an_interpreter_path_with_a_backslash_is_refused_in_one_line(tmp_path, home):
    # Inside the /bin/sh preamble the path is also part of a Python string, where a backslash
    # starts an escape ("\\N" does not even compile): install says so and writes nothing.
    from sessionward.errors import SessionwardError
    from sessionward.install.hook_launcher import render

    with pytest.raises(SessionwardError, match="backslash or a line break"):
        render("/opt/my env\\New/bin/python", [], "/nowhere")
    python = tmp_path / "my env\\New" / "python"
    python.parent.mkdir()
    python.symlink_to(sys.executable)
    shutil.copy(SESSIONWARD, python.parent / "sessionward")  # install looks for the package's launcher beside it
    src = os.path.dirname(os.path.dirname(os.path.abspath(__import__("sessionward").__file__)))
    done = subprocess.run([str(python), "-m", "sessionward", "install"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=src), timeout=60)
    assert done.returncode == 3 and done.stderr.count("\n") == 1, done
    assert "holds a backslash or a line break" in done.stderr and "Traceback" not in done.stderr
    assert not os.path.exists(hooks_launcher(home))


def test_a_module_beside_it_does_not_shadow_the_standard_library(tmp_path, home):
    # _json: every hook decodes its payload with it. Frozen and built-in modules cannot be
    # shadowed; an extension module in lib-dynload can.
    if "_json" in sys.builtin_module_names:
        pytest.skip("this Python has _json built in: no file beside the launcher could shadow it")
    run_cli("install", check=True)
    (home / ".claude" / "hooks" / "_json.py").write_text("raise SystemExit('the _json.py beside the launcher was imported')\n")
    done = run_hook([hooks_launcher(home)], dict(os.environ), tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_out_of_date_it_still_works_and_doctor_says_so(tmp_path, home):
    run_cli("install", check=True)
    launcher = hooks_launcher(home)
    with open(launcher) as f:
        text = f.read()
    start = text.index("sys.path.extend(") + len("sys.path.extend(")
    moved = text[:start] + repr([str(tmp_path / "moved-away")]) + text[text.index(")\n", start):]
    with open(launcher, "w") as f:
        f.write(moved)  # as after the package moved: the directory it names holds no sessionward
    done = run_hook([launcher], dict(os.environ), tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    assert subprocess.run([launcher, "--version"], capture_output=True, text=True).stdout.startswith("sessionward ")
    result = run_cli("doctor", "--json")
    [hooks] = [c for c in json.loads(result.stdout)["result"]["checks"] if c["name"] == "hooks"]
    assert hooks["status"] == "warn", hooks
    assert f"{launcher} was written for another interpreter or place" in hooks["detail"]
    assert hooks["fix"] == "sessionward install (writes it again)"
    assert run_cli("install", check=True).stdout.count(f"updated {launcher}") == 1
    result = run_cli("doctor", "--json")
    [hooks] = [c for c in json.loads(result.stdout)["result"]["checks"] if c["name"] == "hooks"]
    assert hooks["status"] == "ok", hooks


def test_uninstall_removes_it(home):
    run_cli("install", check=True)
    assert f"removed {hooks_launcher(home)}" in run_cli("uninstall", check=True).stdout.splitlines()
    assert not os.path.exists(hooks_launcher(home))
