"""`sessionward uninstall` removes what install created and the user did not change since, and
says for everything it keeps why; real files in a temporary HOME, the real CLI, real bash and zsh
reading their startup files. (The settings.json merge itself: test_install_cli.py.)"""

import json
import os
import shutil
import subprocess

import pytest

from helpers import cli_json, run_cli

SHELLS = [sh for sh in ("bash", "zsh") if shutil.which(sh)]
# what a shell's startup file says to have the origin's helpers, as the origin's guide writes it
SOURCE_LINES = {
    "bash": "source ~/.claude/shell-config/end-lock-helpers.sh\n",
    "zsh": "source ~/.claude/shell-config/end-lock-helpers.sh\n",
}
RC = {"bash": ".bashrc", "zsh": ".zshrc"}


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def claude(home):
    return home / ".claude"


def tree(root):
    """Every path under root (relative), directories marked with a trailing /."""
    found = []
    for directory, dirs, files in os.walk(root):
        rel = os.path.relpath(directory, root)
        found += [os.path.normpath(os.path.join(rel, d)) + "/" for d in dirs]
        found += [os.path.normpath(os.path.join(rel, f)) for f in files]
    return sorted(found)


def lines(result):
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout.splitlines()


def drafts(home):
    return home / ".local" / "state" / "sessionward" / "drafts"


# --- everything install created goes -------------------------------------------------------


def test_install_then_uninstall_leaves_the_home_as_it_was(home, claude):
    """The new user's report: the origin's script, the shell helpers, an empty commands/, the
    drafts directory and a {} settings.json were all left behind."""
    (home / "notes.txt").write_text("mine\n")
    before = tree(home)
    run_cli("install", check=True)
    out = lines(run_cli("uninstall"))
    assert out[0] == f"removed {claude / 'settings.json'} (install created it; nothing else was left in it)"
    assert out[-1].startswith("removed the directories install made, now empty: ")
    assert tree(home) == before


def test_a_settings_json_install_created_keeps_what_was_added_to_it_since(claude):
    run_cli("install", check=True)
    path = claude / "settings.json"
    doc = json.loads(path.read_text())
    # Claude Code adds a permission the person granted, writing the file its own way
    path.write_text(json.dumps({"permissions": {"allow": ["Bash(ls:*)"]}, **doc}, indent=2) + "\n")
    out = lines(run_cli("uninstall"))
    assert out[0].startswith(f"updated {path} (removed 8 hooks, statusLine; backup ")
    assert path.read_text() == '{\n  "permissions": {\n    "allow": [\n      "Bash(ls:*)"\n    ]\n  }\n}\n'


@pytest.mark.parametrize("original", [
    b"{}\n",                                                     # an empty file of the user's: stays
    b'{\r\n\t"model": "opus",\r\n\t"env": {"A": "1"}\r\n}',      # CRLF, tabs, no final newline
    b'{"model":"opus"}',                                         # one line, no spaces
])
def test_a_settings_json_that_was_there_gets_its_bytes_back(claude, original):
    claude.mkdir()
    (claude / "settings.json").write_bytes(original)
    run_cli("install", check=True)
    assert (claude / "settings.json").read_bytes() != original
    run_cli("uninstall", check=True)
    assert (claude / "settings.json").read_bytes() == original


def test_the_origins_files_install_put_at_the_guides_paths_are_removed_with_install_seed_paths_too(home, claude):
    run_cli("install", "--seed-paths", check=True)
    assert (home / "scripts" / "obsidian_session_manager.py").exists()
    out = lines(run_cli("uninstall"))
    assert f"removed {home / 'scripts' / 'obsidian_session_manager.py'}" in out
    assert not (home / "scripts").exists() and not (claude / "shell-config").exists()


# --- what the user changed, or owns, is kept, and the report says why ------------------------


def test_files_changed_since_install_are_kept_and_the_report_says_why(home, claude):
    run_cli("install", check=True)
    script = home / "scripts" / "obsidian_session_manager.py"
    end = claude / "commands" / "end.md"
    script.write_bytes(script.read_bytes() + b"# my tweak\n")
    end.write_bytes(end.read_bytes() + b"4. also push the notes repo\n")
    (home / "scripts" / "backup.sh").write_text("#!/bin/sh\n")  # the user's own, in the directory install made
    out = lines(run_cli("uninstall"))
    assert f"kept {end}: changed since install" in out
    assert f"removed {claude / 'commands' / 'start.md'}" in out
    assert f"kept {script}: changed since install" in out
    assert f"kept {home / 'scripts'}/: not empty: backup.sh" in out  # not obsidian_session_manager.py: said above
    assert not any(line.startswith(f"kept {claude / 'commands'}/:") for line in out)  # kept for end.md alone
    assert script.read_bytes().endswith(b"# my tweak\n") and end.read_bytes().endswith(b"push the notes repo\n")
    # the user puts the file back as install wrote it: the next uninstall removes it
    script.write_bytes(script.read_bytes()[: -len(b"# my tweak\n")])
    out = lines(run_cli("uninstall"))
    assert f"removed {script}" in out and f"kept {end}: changed since install" in out


def test_a_file_install_moved_aside_is_put_back(home):
    script = home / "scripts" / "obsidian_session_manager.py"
    script.parent.mkdir()
    script.write_text("# my own manager, from the origin setup\n")
    out = run_cli("install", check=True).stdout.splitlines()
    [backup] = [p for p in os.listdir(script.parent) if ".bak-" in p]
    assert f"replaced {script} (yours kept as {script.parent / backup}; uninstall puts it back)" in out
    out = lines(run_cli("uninstall"))
    assert f"restored {script} (yours, from {script.parent / backup})" in out
    assert os.listdir(script.parent) == ["obsidian_session_manager.py"]
    assert script.read_text() == "# my own manager, from the origin setup\n"


def test_drafts_an_unfinished_end_left_are_kept(home):
    run_cli("install", check=True)
    (drafts(home) / "note-1.md").write_text("text the /end did not hand over\n")
    out = lines(run_cli("uninstall"))
    assert f"kept {drafts(home)}/: holds 1 draft an /end did not finish (sessionward doctor lists them)" in out
    assert (drafts(home) / "note-1.md").read_text() == "text the /end did not hand over\n"
    assert not (home / "scripts").exists()


def test_without_a_manifest_files_holding_exactly_what_install_writes_are_removed(home, claude, state_dir):
    """Installed by a sessionward from before the manifest: judged by content, directories stay."""
    run_cli("install", check=True)
    os.unlink(state_dir / "sessionward" / "installed.json")
    (claude / "commands" / "start.md").write_text((claude / "commands" / "start.md").read_text() + "edited\n")
    out = lines(run_cli("uninstall"))
    assert f"removed {home / 'scripts' / 'obsidian_session_manager.py'}" in out
    assert f"kept {claude / 'commands' / 'start.md'}: changed since install" in out
    assert (home / "scripts").is_dir()  # nobody recorded that install made it


def test_a_corrupt_manifest_is_kept_aside_and_said(home, state_dir):
    run_cli("install", check=True)
    (state_dir / "sessionward" / "installed.json").write_text("{not json")
    result = run_cli("uninstall")
    assert result.returncode == 0
    [kept] = [p for p in os.listdir(state_dir / "sessionward") if p.startswith("installed.json.corrupt-")]
    assert result.stderr == (f"sessionward: {state_dir / 'sessionward' / 'installed.json'} was corrupt; kept as "
                             f"{state_dir / 'sessionward' / kept}; files are judged by their content\n")
    assert f"removed {home / 'scripts' / 'obsidian_session_manager.py'}" in result.stdout


def test_uninstall_dry_run_changes_nothing_and_json_says_why(home, claude):
    run_cli("install", check=True)
    (claude / "commands" / "end.md").write_text("---\n---\nmine now\n")
    snapshot = tree(home)
    envelope = cli_json("uninstall", "--dry-run")
    assert tree(home) == snapshot
    by_path = {a["path"]: a for a in envelope["result"]["actions"]}
    assert (by_path[str(claude / "commands" / "end.md")]["action"], by_path[str(claude / "commands" / "end.md")]["why"]) == (
        "keep", "yours, not written by sessionward")
    assert by_path[str(home / "scripts")] == {"what": "dir", "path": str(home / "scripts"), "action": "remove", "why": ""}


# --- the shells: a helper a startup file sources is kept, and the shell still starts -----------


def start_shell(shell, home):
    """An interactive shell reading its startup file, as a new terminal would: (status, stderr,
    whether end_lock_acquire is defined)."""
    done = subprocess.run([shell, "-i", "-c", "type end_lock_acquire >/dev/null 2>&1 && echo defined || echo missing"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30,
                          env={"HOME": str(home), "PATH": os.environ["PATH"], "TERM": "dumb"})
    noise = [line for line in done.stderr.splitlines() if "job control" not in line and "terminal process group" not in line]
    return done.returncode, noise, done.stdout.strip()


@pytest.mark.parametrize("shell", SHELLS)
def test_a_helper_a_shell_startup_file_sources_is_kept_and_the_shell_still_starts(shell, home, claude):
    run_cli("install", check=True)
    rc = home / RC[shell]
    rc.write_text("export EDITOR=vi\n" + SOURCE_LINES[shell])
    assert start_shell(shell, home) == (0, [], "defined")
    out = lines(run_cli("uninstall"))
    helper = claude / "shell-config" / "end-lock-helpers.sh"
    assert f"kept {helper}: ~/{RC[shell]} line 2 sources it; remove that line, then uninstall again" in out
    assert f"removed {claude / 'shell-config' / 'obsidian-session-helpers.sh'}" in out  # nobody sources it
    assert start_shell(shell, home) == (0, [], "defined")  # no "No such file or directory" in every new shell
    # the person removes the line: the next uninstall removes the helper and its directory
    rc.write_text("export EDITOR=vi\n")
    out = lines(run_cli("uninstall"))
    assert f"removed {helper}" in out and not (claude / "shell-config").exists()
    assert start_shell(shell, home) == (0, [], "missing")


@pytest.mark.parametrize("shell", SHELLS)
def test_a_commented_out_source_line_does_not_keep_the_helper(shell, home, claude):
    run_cli("install", check=True)
    (home / RC[shell]).write_text("# " + SOURCE_LINES[shell])
    out = lines(run_cli("uninstall"))
    assert f"removed {claude / 'shell-config' / 'end-lock-helpers.sh'}" in out
    assert start_shell(shell, home) == (0, [], "missing")
