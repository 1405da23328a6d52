"""`sessionward install` and `uninstall`, through the real CLI in an isolated HOME (and, where
said, CLAUDE_CONFIG_DIR); the re-read-before-replace loop and the lock through the Python API,
with a seam that plays Claude Code rewriting settings.json between our read and our write."""

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import sessionward
from sessionward.errors import Refused
from sessionward.install import settings

from helpers import SESSIONWARD, cli_json, hold_flock, make_git_repo, run_cli

L = shlex.quote(SESSIONWARD)  # the launcher beside the interpreter running the CLI
STAMP = r"\d{8}T\d{6}Z(-\d+)?"


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def claude(home):
    return home / ".claude"


def hl(claude) -> str:
    """The launcher a user-scope install points the hooks and the status line at (install.hook_launcher)."""
    return shlex.quote(str(claude / "hooks" / "sessionward"))


def hooks_doc(launcher: str):
    def group(event, matcher=None, timeout=10):
        handler = {"type": "command", "command": f"{launcher} hook {event}"} | ({"timeout": timeout} if timeout else {})
        return ({"matcher": matcher} if matcher else {}) | {"hooks": [handler]}

    return {
        "SessionStart": [group("SessionStart")],
        "UserPromptSubmit": [group("UserPromptSubmit")],
        "PreToolUse": [group("PreToolUse", "Edit|Write|MultiEdit|NotebookEdit|Bash")],
        "PostToolUse": [group("PostToolUse", "Edit|Write|MultiEdit|NotebookEdit|Read|Bash")],
        "PermissionRequest": [group("PermissionRequest")],
        "Notification": [group("Notification")],
        "Stop": [group("Stop")],
        "SessionEnd": [group("SessionEnd", timeout=None)],
    }


FAST_PATH = str(Path(sessionward.__file__).parent / "install" / "status_line.sh")
def status_doc(launcher: str) -> dict:
    return {"type": "command", "command": f"sh {FAST_PATH} {launcher}", "padding": 0, "refreshInterval": 3}

START_MD = f"""---
description: Register this session and show who else is working on this project (sessionward)
allowed-tools: Bash({L} register:*), Bash(sessionward register:*)
---
<!-- sessionward: managed file -->
!`{L} register --exit-zero`

The report above comes from sessionward. Tell the user in two or three lines which other sessions work on this project or in this worktree, and what each warning means. On a STRONG WARNING (another session works in this same worktree), recommend moving this work to a separate git worktree (`git worktree add`). When there is no other session, say nothing more.

$ARGUMENTS
"""

END_TOOLS = (f"allowed-tools: Bash({L} lock acquire:*), Bash(sessionward lock acquire:*), "
             f"Bash({L} lock release:*), Bash(sessionward lock release:*), "
             f"Bash({L} unregister:*), Bash(sessionward unregister:*), "
             f"Bash({L} note:*), Bash(sessionward note:*), "
             "Edit(/{drafts}/**)")  # the drafts directory: /end's Write tool calls
END_MD_HEAD = f"""---
description: "End this session: save notes, memory and resume under the /end lock (sessionward)"
argument-hint: "[what to save]"
{END_TOOLS}
---
<!-- sessionward: managed file -->
!`{L} lock acquire end --step 0 --exit-zero --purpose "/end save"`
"""


def seed_paths(home, claude):
    """The files a user-scope install writes beside settings.json, in its order."""
    return [home / "scripts" / "obsidian_session_manager.py",
            claude / "shell-config" / "end-lock-helpers.sh",
            claude / "shell-config" / "obsidian-session-helpers.sh",
            claude / "hooks" / "sessionward",
            claude / "hooks" / "sessionward.bytecode"]


def drafts_dir(home):
    return home / ".local" / "state" / "sessionward" / "drafts"


def header(home, verb="writing"):
    """The line a user-scope install starts with when it writes into ~/scripts."""
    return (f"{verb} outside {home / '.claude'} too: {home / 'scripts' / 'obsidian_session_manager.py'}, "
            "where the origin's guide runs it")


def report(result, home, verb="writing"):
    """install's lines after its first, which must say that it writes into ~/scripts."""
    lines = result.stdout.splitlines()
    assert lines[0] == header(home, verb)
    return lines[1:]


def snapshot(root):
    """Every path under root with its bytes and mode: to prove nothing changed."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            body = open(path, "rb").read() if stat.S_ISREG(info.st_mode) else os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
            found[path] = (stat.S_IMODE(info.st_mode), body)
    return found


@pytest.fixture
def strict_umask():
    """umask 077, inherited by the CLI: modes we keep must not depend on the umask."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def backups(directory, name="settings.json"):
    return sorted(p for p in os.listdir(directory) if p.startswith(name + ".bak-"))


def two_space(doc) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


# --- install on a fresh HOME ----------------------------------------------------------------


def test_install_on_a_fresh_home(home, claude):
    result = run_cli("install")
    settings_json = claude / "settings.json"
    assert (result.returncode, result.stderr) == (0, "")
    assert report(result, home) == [
        f"created {settings_json} (8 hooks, statusLine)",
        f"created {claude / 'commands' / 'start.md'}",
        f"created {claude / 'commands' / 'end.md'}",
    ] + [f"created {p}" for p in seed_paths(home, claude)] + [
        f"created {drafts_dir(home)}/ (private: /end writes each note's text there first)"]
    assert settings_json.read_bytes() == two_space({"hooks": hooks_doc(hl(claude)), "statusLine": status_doc(hl(claude))})
    assert stat.S_IMODE(settings_json.stat().st_mode) == 0o600
    assert (claude / "commands" / "start.md").read_text() == START_MD
    end = (claude / "commands" / "end.md").read_text()
    drafts = home / ".local" / "state" / "sessionward" / "drafts"
    assert end.startswith(END_MD_HEAD.format(drafts=drafts))
    assert stat.S_IMODE(drafts.stat().st_mode) == 0o700  # private before the model writes a draft
    assert f"Then run `{L} lock release end`, then `{L} unregister`: " in end
    assert [stat.S_IMODE((claude / "commands" / n).stat().st_mode) for n in ("start.md", "end.md")] == [0o644, 0o644]
    assert backups(claude) == []


def test_install_twice_changes_nothing_the_second_time(home, claude):
    run_cli("install", check=True)
    before = snapshot(home)
    result = run_cli("install", check=True)
    assert result.stdout.splitlines() == [
        f"unchanged {claude / 'settings.json'}",
        f"unchanged {claude / 'commands' / 'start.md'}",
        f"unchanged {claude / 'commands' / 'end.md'}",
    ] + [f"unchanged {p}" for p in seed_paths(home, claude)] + [f"unchanged {drafts_dir(home)}/"]
    assert snapshot(home) == before  # no backup, no rewrite


def test_install_honours_claude_config_dir(tmp_path, home, monkeypatch):
    config = tmp_path / "config"
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config))
    run_cli("install", check=True)
    assert json.loads((config / "settings.json").read_text())["hooks"] == hooks_doc(hl(config))
    assert (config / "commands" / "start.md").read_text() == START_MD
    assert (config / "shell-config" / "end-lock-helpers.sh").exists()
    assert not (home / ".claude").exists()


def test_install_json_envelope_lists_every_file(claude):
    envelope = cli_json("install")
    assert envelope["ok"] is True and set(envelope["result"]) == {"dry_run", "actions", "notes"}
    first, start, end, *seeds, drafts = envelope["result"]["actions"]
    assert first == {
        "what": "settings", "path": str(claude / "settings.json"), "action": "create", "backup": None,
        "hooks": {"added": list(hooks_doc(hl(claude))), "updated": [], "removed": []}, "status_line": "added",
        "edited": [], "left_alone": [],
    }
    assert start == {"what": "command", "path": str(claude / "commands" / "start.md"), "action": "create",
                     "backup": None, "lines_to_add": [], "why": ""}
    assert end["action"] == "create"
    assert [(s["what"], s["action"]) for s in seeds] == [("seed", "create")] * 5
    assert drafts == {"what": "dir", "path": str(drafts_dir(claude.parent)), "action": "create", "why": ""}


# --- an existing settings.json ---------------------------------------------------------------

USER_SETTINGS = {
    "model": "opus",
    "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/audit"}]}]},
    "permissions": {"allow": ["Bash(ls:*)"]},
}


def test_existing_settings_keep_everything_and_a_backup_is_kept(claude, strict_umask):
    claude.mkdir()
    original = two_space(USER_SETTINGS)
    (claude / "settings.json").write_bytes(original)
    os.chmod(claude / "settings.json", 0o640)
    first = report(run_cli("install", check=True), claude.parent)[0]
    [backup] = backups(claude)
    assert re.fullmatch(STAMP, backup[len("settings.json.bak-"):])
    assert first == f"updated {claude / 'settings.json'} (8 hooks, statusLine; backup {claude / backup})"
    assert (claude / backup).read_bytes() == original
    assert stat.S_IMODE((claude / backup).stat().st_mode) == 0o600
    assert stat.S_IMODE((claude / "commands" / "start.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((claude / "settings.json").stat().st_mode) == 0o640  # the file's mode is kept
    ours = hooks_doc(hl(claude))
    # the user's PreToolUse stays first among the events, with our group after the user's
    hooks = {"PreToolUse": USER_SETTINGS["hooks"]["PreToolUse"] + ours.pop("PreToolUse")} | ours
    expected = {"model": "opus", "hooks": hooks, "permissions": USER_SETTINGS["permissions"], "statusLine": status_doc(hl(claude))}
    assert (claude / "settings.json").read_bytes() == two_space(expected)


def test_uninstall_after_install_gives_back_the_original_bytes(home, claude):
    claude.mkdir()
    original = two_space(USER_SETTINGS | {"env": {"NAME": "café"}})
    (claude / "settings.json").write_bytes(original)
    run_cli("install", check=True)
    result = run_cli("uninstall", check=True)
    backup_names = backups(claude)
    assert len(backup_names) == 2  # the original, then the installed file: never one over the other
    assert result.stdout.splitlines() == [
        f"updated {claude / 'settings.json'} (removed 8 hooks, statusLine; backup {claude / backup_names[1]})",
        f"removed {claude / 'commands' / 'start.md'}",
        f"removed {claude / 'commands' / 'end.md'}",
    ] + [f"removed {p}" for p in seed_paths(home, claude)] + [
        "removed the directories install made, now empty: " + ", ".join(f"{d}/" for d in made_dirs(home))]
    assert (claude / "settings.json").read_bytes() == original
    assert (claude / backup_names[0]).read_bytes() == original
    # everything install created is gone: the commands, the origin's files, their directories
    assert sorted(os.listdir(home)) == [".claude"]
    assert sorted(os.listdir(claude)) == ["settings.json"] + backup_names


def made_dirs(home, claude_too=False):
    """The directories install makes in a HOME holding only ~/.claude (or nothing: claude_too),
    in uninstall's order: deepest first, then by name."""
    local = home / ".local" / "state"
    return [drafts_dir(home), local / "sessionward", home / ".claude" / "commands", home / ".claude" / "hooks",
            home / ".claude" / "shell-config", local] + [home / ".claude"] * claude_too + [
            home / ".local", home / "scripts"]


def test_uninstall_keeps_a_four_space_file_four_spaces_without_final_newline(claude):
    claude.mkdir()
    original = json.dumps(USER_SETTINGS, indent=4).encode()
    (claude / "settings.json").write_bytes(original)
    run_cli("install", check=True)
    assert (claude / "settings.json").read_bytes().startswith(b'{\n    "model": "opus",\n')
    run_cli("uninstall", check=True)
    assert (claude / "settings.json").read_bytes() == original


def test_uninstall_with_nothing_installed_changes_nothing(claude):
    claude.mkdir()
    (claude / "settings.json").write_bytes(two_space(USER_SETTINGS))
    before = snapshot(claude)
    result = run_cli("uninstall", check=True)
    assert result.stdout == f"unchanged {claude / 'settings.json'}\n"
    assert snapshot(claude) == before


def apply_diff(old: str, diff: list[str]) -> str:
    """Apply one file's unified diff (as printed) to `old`; the test's own small patch."""
    lines = old.split("\n")[:-1] if old else []
    out, at = [], 0
    for line in diff[2:]:
        if line.startswith("@@"):
            start = int(re.match(r"@@ -(\d+)", line).group(1))
            start = start - 1 if start else 0
            out += lines[at:start]
            at = start
        elif line.startswith((" ", "-")):
            assert lines[at] == line[1:]
            at += 1
            if line[0] == " ":
                out.append(line[1:])
        elif line.startswith("+"):
            out.append(line[1:])
    return "\n".join(out + lines[at:]) + "\n"


def test_dry_run_prints_the_diff_and_changes_nothing(home, claude):
    claude.mkdir()
    original = two_space(USER_SETTINGS)
    (claude / "settings.json").write_bytes(original)
    before = snapshot(home)
    result = run_cli("install", "--dry-run")
    assert (result.returncode, result.stderr) == (0, "")
    assert snapshot(home) == before
    out = report(result, home, "would write")
    path = claude / "settings.json"
    assert out[0] == f"would update {path} (8 hooks, statusLine)"
    assert out[1:3] == [f"--- {path}", f"+++ {path}"]
    ends = [i for i, line in enumerate(out) if line.startswith("would create ")]
    assert [out[i] for i in ends] == [f"would create {p}" for p in
                                      [claude / "commands" / "start.md", claude / "commands" / "end.md", *seed_paths(home, claude)]] + [
        f"would create {drafts_dir(home)}/ (private: /end writes each note's text there first)"]
    # The printed diffs, applied, give exactly what install then writes.
    settings_diff = out[1:ends[0]]
    start_diff = out[ends[0] + 1:ends[1]]
    assert start_diff[:3] == ["--- /dev/null", f"+++ {claude / 'commands' / 'start.md'}", "@@ -0,0 +1,10 @@"]
    pack = claude / "hooks" / "sessionward.bytecode"  # binary: diff's one line, not its bytes
    assert out[out.index(f"would create {pack}") + 1] == f"Binary files /dev/null and {pack} differ"
    run_cli("install", check=True)
    assert apply_diff(original.decode(), settings_diff).encode() == path.read_bytes()
    assert apply_diff("", start_diff) == START_MD


def test_uninstall_dry_run_prints_the_diff_and_changes_nothing(home, claude):
    run_cli("install", check=True)
    before = snapshot(home)
    out = run_cli("uninstall", "--dry-run", check=True).stdout.splitlines()
    assert snapshot(home) == before
    assert out[0] == f"would remove {claude / 'settings.json'} (install created it; nothing else was left in it)"
    assert out[1:3] == [f"--- {claude / 'settings.json'}", "+++ /dev/null"]
    removals = [line for line in out if line.startswith("would ")]
    assert removals == [out[0]] + [f"would remove {p}" for p in [
        claude / "commands" / "start.md", claude / "commands" / "end.md", *seed_paths(home, claude)]] + [
        "would remove the directories install made, now empty: " + ", ".join(f"{d}/" for d in made_dirs(home, True))]
    # each file's diff (to /dev/null) under its line
    seed = out.index(f"would remove {home / 'scripts' / 'obsidian_session_manager.py'}")
    assert out[seed + 1:seed + 3] == [f"--- {home / 'scripts' / 'obsidian_session_manager.py'}", "+++ /dev/null"]
    pack = claude / "hooks" / "sessionward.bytecode"
    assert out[out.index(f"would remove {pack}") + 1:out.index(f"would remove {pack}") + 3] == [
        f"Binary files {pack} and /dev/null differ", out[-1]]


# --- refusals: one line, a documented exit code, nothing changed -------------------------------

BROKEN = {
    "not json": (b'{\n  "model": "opus",\n  "hooks": \n}\n', "not valid JSON: Expecting value at line 4 column 1"),
    "top level list": (b"[]\n", "the top level is a list, not an object"),
    "hooks a list": (b'{"hooks": []}\n', '"hooks" is a list, not an object'),
    "event not a list": (b'{"hooks": {"Stop": "x"}}\n', '"hooks"."Stop" is a string, not a list'),
    # both readers take a duplicate key (the last wins); an edit could change which one counts
    "duplicate key": (b'{"model": "opus",\n "model": "sonnet"}\n', 'not valid JSON: duplicate key "model" at line 2 column 2'),
    "NaN": (b'{"n": NaN}\n', "not valid JSON: NaN is not a JSON value at line 1 column 7"),
    "comment": (b'{\n  // mine\n  "model": "opus"\n}\n', "not valid JSON: Expecting property name enclosed in double quotes at line 2 column 3"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("command", ["install", "uninstall"])
def test_a_settings_file_we_cannot_merge_into_is_refused(name, command, home, claude, monkeypatch):
    monkeypatch.delenv("SESSIONWARD_HOME")  # state in ~/.claude: not even a lock file may appear there
    raw, problem = BROKEN[name]
    claude.mkdir()
    (claude / "settings.json").write_bytes(raw)
    before = snapshot(home)
    result = run_cli(command)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"sessionward: {claude / 'settings.json'}: {problem}; "
        "fix it (or move it aside) and run the command again; nothing was changed\n"
    )
    assert snapshot(home) == before  # not even the command files or the origin's files


def node_reads(data: bytes) -> bool:
    """Whether Claude Code's reader, JSON.parse in node, takes `data`."""
    code = "JSON.parse(require('fs').readFileSync(0, 'utf8'))"
    return subprocess.run(["node", "-e", code], input=data, capture_output=True).returncode == 0


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("original", [
    b'{"big": 1e400}\n',  # was written back as the bare token Infinity: not JSON, the whole file ignored
    b'{"s": "\\ud83d"}\n',  # an escaped lone surrogate: was an internal error, exit 3
])
def test_values_install_does_not_understand_are_kept_as_written(claude, original):
    claude.mkdir()
    path = claude / "settings.json"
    path.write_bytes(original)
    result = run_cli("install")
    assert (result.returncode, result.stderr) == (0, "")
    installed = path.read_bytes()
    # a one-line file gets its new entries on that line, laid out like the rest of it
    assert installed == (original[:-2] + b', "hooks": ' + json.dumps(hooks_doc(hl(claude))).encode()
                         + b', "statusLine": ' + json.dumps(status_doc(hl(claude))).encode() + b"}\n")
    assert node_reads(installed)
    json.loads(installed)
    run_cli("uninstall", check=True)
    assert path.read_bytes() == original


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_formatting_numbers_escapes_and_crlf_are_kept_byte_for_byte(claude):
    claude.mkdir()
    path = claude / "settings.json"
    original = ('{\r\n    "n": [1.0, -0, 1E+2, 1e400],\r\n    "e": "\\u00e9 é \\/",\r\n'
                '    "hooks": {"PreCompact": [{"hooks": [{"type": "command", "command": "say hi"}]}]}\r\n}').encode()
    path.write_bytes(original)
    run_cli("install", check=True)
    installed = path.read_bytes()
    assert node_reads(installed)
    text = installed.decode()
    assert text.startswith(original.decode()[: original.decode().index('"hooks"')])
    assert text.count("\n") == text.count("\r\n") and not text.endswith("\n")
    assert text.endswith('\r\n    "statusLine": {\r\n        "type": "command",\r\n'
                         f'        "command": "sh {FAST_PATH} {hl(claude)}",\r\n        "padding": 0,\r\n'
                         '        "refreshInterval": 3\r\n    }\r\n}')
    # the user's one-line "hooks" object gets its new events on that line, too
    assert '"command": "say hi"}]}], "SessionStart": [{"hooks": [{"type": "command", ' in text
    run_cli("uninstall", check=True)
    assert path.read_bytes() == original


def test_refusal_as_json(claude):
    claude.mkdir()
    (claude / "settings.json").write_bytes(b"{,}")
    envelope = cli_json("install")
    assert (envelope["ok"], envelope["exit_code"], envelope["error"]["code"]) == (False, 2, "settings_invalid")


def test_bad_scope_is_a_usage_error():
    result = run_cli("install", "--scope", "global")
    assert (result.returncode, result.stderr) == (
        2, "sessionward: invalid scope 'global': expected one of user, project\n")


# --- symlinks, project scope, the user's own command files -------------------------------------


def test_a_symlinked_settings_file_is_written_through(tmp_path, claude):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "settings.json").write_bytes(two_space({"model": "opus"}))
    claude.mkdir()
    (claude / "settings.json").symlink_to(dotfiles / "settings.json")
    run_cli("install", check=True)
    assert os.readlink(claude / "settings.json") == str(dotfiles / "settings.json")
    assert json.loads((dotfiles / "settings.json").read_text()) == {"model": "opus", "hooks": hooks_doc(hl(claude)),
                                                                      "statusLine": status_doc(hl(claude))}
    assert len(backups(claude)) == 1 and os.listdir(dotfiles) == ["settings.json"]  # the backup is not in the repo
    run_cli("uninstall", check=True)
    assert (dotfiles / "settings.json").read_bytes() == two_space({"model": "opus"})
    assert os.path.islink(claude / "settings.json")


def test_scope_project_writes_the_repositorys_claude_dir(tmp_path, home):
    repo = make_git_repo(tmp_path / "repo")
    (repo / "src").mkdir()
    result = run_cli("install", "--scope", "project", cwd=repo / "src")
    project = repo / ".claude"
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"created {project / 'settings.json'} (8 hooks, statusLine)",
        f"created {project / 'commands' / 'start.md'}",
        f"created {project / 'commands' / 'end.md'}",
        f"created {drafts_dir(home)}/ (private: /end writes each note's text there first)",
    ]
    assert json.loads((project / "settings.json").read_text()) == {"hooks": hooks_doc(L), "statusLine": status_doc(L)}
    assert (project / "commands" / "start.md").read_text() == START_MD
    assert not (home / ".claude").exists() and not (home / "scripts").exists()
    result = run_cli("uninstall", "--scope", "project", cwd=repo)
    assert result.stdout.splitlines()[:3] == [
        f"removed {project / 'settings.json'} (install created it; nothing else was left in it)",
        f"removed {project / 'commands' / 'start.md'}",
        f"removed {project / 'commands' / 'end.md'}",
    ]
    assert not project.exists()  # the .claude install made, empty again, is gone


def test_scope_project_outside_git_uses_the_current_directory(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    run_cli("install", "--scope", "project", cwd=plain, check=True)
    assert (plain / ".claude" / "settings.json").exists()


def test_a_users_own_start_md_is_kept_and_the_lines_to_add_printed(claude):
    (claude / "commands").mkdir(parents=True)
    mine = "---\ndescription: my start\n---\nSay hello.\n"
    (claude / "commands" / "start.md").write_text(mine)
    out = report(run_cli("install", check=True), claude.parent)
    assert out[1:5] == [
        f"kept {claude / 'commands' / 'start.md'}: yours, not written by sessionward; to call sessionward from it, "
        "add (the first line to its frontmatter):",
        f"    allowed-tools: Bash({L} register:*), Bash(sessionward register:*)",
        f"    !`{L} register --exit-zero`",
        f"created {claude / 'commands' / 'end.md'}",
    ]
    assert (claude / "commands" / "start.md").read_text() == mine
    assert backups(claude / "commands", "start.md") == []
    envelope = cli_json("install", "--dry-run")
    assert envelope["result"]["actions"][1]["lines_to_add"] == [
        f"allowed-tools: Bash({L} register:*), Bash(sessionward register:*)", f"!`{L} register --exit-zero`"]
    # uninstall leaves it alone too
    out = run_cli("uninstall", check=True).stdout.splitlines()
    assert out[1] == f"kept {claude / 'commands' / 'start.md'}: yours, not written by sessionward"
    assert (claude / "commands" / "start.md").read_text() == mine


def test_a_users_own_end_md_gets_the_lock_lines(home, claude):
    (claude / "commands").mkdir(parents=True)
    (claude / "commands" / "end.md").write_text("Save my notes.\n")
    out = report(run_cli("install", check=True), home)
    drafts = home / ".local" / "state" / "sessionward" / "drafts"
    assert out[2:7] == [
        f"kept {claude / 'commands' / 'end.md'}: yours, not written by sessionward; to call sessionward from it, "
        "add (the first line to its frontmatter):",
        "    " + END_TOOLS.format(drafts=drafts),
        f'    !`{L} lock acquire end --step 0 --exit-zero --purpose "/end save"`',
        f"    save each note by writing its text with the Write tool to a new file DRAFT in {drafts}, then "
        f"`{L} note append FILE --text-file DRAFT` (never the text in a command)",
        f"    after the saves: run `{L} lock release end`, then `{L} unregister`",
    ]


def test_a_users_own_file_that_already_calls_sessionward_gets_no_lines(claude):
    (claude / "commands").mkdir(parents=True)
    (claude / "commands" / "start.md").write_text("!`sessionward register`\nThen greet.\n")
    out = report(run_cli("install", check=True), claude.parent)
    assert out[1] == f"kept {claude / 'commands' / 'start.md'}: yours, not written by sessionward"


def test_an_edited_managed_command_file_is_updated_with_a_backup(claude):
    run_cli("install", check=True)
    start = claude / "commands" / "start.md"
    edited = START_MD.replace("say nothing more", "say 'all clear'")
    start.write_text(edited)
    out = run_cli("install", check=True).stdout.splitlines()
    [backup] = backups(claude / "commands", "start.md")
    assert out[1] == f"updated {start} (previous content kept as {claude / 'commands' / backup})"
    assert start.read_text() == START_MD
    assert (claude / "commands" / backup).read_text() == edited
    # edited again, then uninstalled: the user's edits are kept where they are, and it says why
    start.write_text(edited)
    out = run_cli("uninstall", check=True).stdout.splitlines()
    assert out[1:3] == [f"kept {start}: changed since install", f"removed {claude / 'commands' / 'end.md'}"]
    assert start.read_text() == edited
    assert backups(claude / "commands", "start.md") == [backup]


def test_install_without_the_launcher_is_refused_before_any_change(tmp_path, home):
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.symlink_to(os.path.realpath(sys.executable))  # an interpreter with no launcher beside it
    result = subprocess.run([str(python), "-m", "sessionward", "install"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert result.returncode == 3
    assert result.stderr == (
        f"sessionward: no sessionward launcher at {tmp_path / 'bin' / 'sessionward'} (beside this Python); "
        "run the install from a sessionward installed with scripts/install or pip; nothing was changed\n"
    )
    assert os.listdir(home) == []


# --- the re-read before replace, and the lock (Python API, with the test seam) ------------------


def merge(doc):
    return settings.merge_settings(doc, "/opt/sw/bin/sessionward")


def test_a_file_rewritten_between_our_read_and_write_keeps_both_sides(tmp_path):
    path = tmp_path / "settings.json"
    path.write_bytes(two_space({"model": "opus"}))
    theirs = two_space({"model": "sonnet", "env": {"ADDED": "by claude code"}})
    calls = []

    def claude_code_writes():
        calls.append(1)
        if len(calls) == 1:
            path.write_bytes(theirs)  # Claude Code rewrote the file, taking no lock

    result = settings.apply_settings(str(path), merge, before_replace=claude_code_writes)
    assert len(calls) == 2
    written = json.loads(path.read_text())
    assert list(written) == ["model", "env", "hooks", "statusLine"]
    assert written["model"] == "sonnet" and written["env"] == {"ADDED": "by claude code"}
    assert written["hooks"] == merge({})[0]["hooks"]
    assert result.action == "update"
    assert (tmp_path / os.path.basename(result.backup)).read_bytes() == theirs  # what was really replaced
    assert backups(tmp_path) == [os.path.basename(result.backup)]


def test_a_file_created_between_our_read_and_write_is_merged_not_clobbered(tmp_path):
    path = tmp_path / "settings.json"
    calls = []

    def claude_code_creates():
        calls.append(1)
        if len(calls) == 1:
            path.write_bytes(two_space({"theme": "dark"}))

    result = settings.apply_settings(str(path), merge, before_replace=claude_code_creates)
    assert json.loads(path.read_text())["theme"] == "dark" and result.action == "update"


def test_a_file_that_never_stops_changing_is_refused_and_left_as_found(tmp_path):
    path = tmp_path / "settings.json"
    path.write_bytes(two_space({"n": 0}))
    count = [0]

    def keeps_writing():
        count[0] += 1
        path.write_bytes(two_space({"n": count[0]}))

    with pytest.raises(Refused) as info:
        settings.apply_settings(str(path), merge, before_replace=keeps_writing)
    assert str(info.value) == (
        f"{path} kept changing while sessionward merged into it (5 tries); "
        "run the command again when Claude Code is idle; nothing was changed"
    )
    assert count[0] == 5
    assert path.read_bytes() == two_space({"n": 5})
    assert backups(tmp_path) == []


def test_a_busy_settings_lock_is_waited_for_then_refused(tmp_path, state_dir, monkeypatch):
    path = tmp_path / "settings.json"
    path.write_bytes(b"{}\n")
    os.makedirs(state_dir / "sessionward", mode=0o700)
    holder = hold_flock(state_dir / "sessionward" / "settings.lock")
    try:
        monkeypatch.setattr(settings, "SETTINGS_LOCK_TIMEOUT_S", 0.2)
        with pytest.raises(Refused) as info:
            settings.apply_settings(str(path), merge)
        assert str(info.value).startswith(f"settings lock {state_dir / 'sessionward' / 'settings.lock'} still busy after 0 s")
    finally:
        holder.kill()
        holder.wait()
    assert path.read_bytes() == b"{}\n"
    assert settings.apply_settings(str(path), merge).action == "update"  # free again: goes through


def test_a_file_that_became_installed_meanwhile_is_left_alone_without_backup(tmp_path):
    path = tmp_path / "settings.json"
    path.write_bytes(b"{}\n")
    installed = two_space(merge({})[0])

    def someone_installs():
        path.write_bytes(installed)

    result = settings.apply_settings(str(path), merge, before_replace=someone_installs)
    assert (result.action, result.backup) == ("unchanged", None)
    assert path.read_bytes() == installed
    assert backups(tmp_path) == []


def test_concurrent_installs_and_uninstalls_never_duplicate_or_lose_keys(claude):
    claude.mkdir()
    (claude / "settings.json").write_bytes(two_space(USER_SETTINGS))
    procs = [subprocess.Popen([SESSIONWARD, "install" if i % 3 else "uninstall"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(8)]
    assert [(p.wait(timeout=60), p.stderr.read()) for p in procs] == [(0, "")] * 8
    run_cli("install", check=True)
    written = json.loads((claude / "settings.json").read_text())
    hooks = hooks_doc(hl(claude))
    hooks["PreToolUse"] = USER_SETTINGS["hooks"]["PreToolUse"] + hooks["PreToolUse"]
    assert written == {"model": "opus", "hooks": hooks, "permissions": USER_SETTINGS["permissions"], "statusLine": status_doc(hl(claude))}
    assert list(written) == ["model", "hooks", "permissions", "statusLine"]


# --- hand-edited hooks: recognised by what they run ----------------------------------------------

PIPELINE = f"{L} hook PostToolUse | tee -a /tmp/post.log"
EDITED_HOOKS = {
    "SessionStart": "sessionward hook SessionStart",           # the launcher from PATH
    "PreToolUse": f"timeout 5 {L} hook PreToolUse",            # wrapped
    "Stop": f"{L} hook Stop 2>>~/hook.log",                    # its errors kept
}
EDITED_STATUS = f"FOO=1 {L} status-line 2>/dev/null"


def edited_settings(claude):
    hooks = hooks_doc(hl(claude))
    for event, command in EDITED_HOOKS.items():
        hooks[event][0]["hooks"][0]["command"] = command
    return {
        "model": "opus",
        "hooks": {
            "SessionStart": hooks["SessionStart"],
            "PreToolUse": hooks["PreToolUse"],
            "Stop": hooks["Stop"],
            "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": PIPELINE}]}],
        },
        "statusLine": dict(status_doc(hl(claude)), command=EDITED_STATUS),
    }


def test_edited_hooks_count_as_installed_and_uninstall_removes_them(claude):
    claude.mkdir()
    path = claude / "settings.json"
    original = two_space(edited_settings(claude))
    path.write_bytes(original)
    kept = [f"kept your edited hook for {event}: {command}" for event, command in EDITED_HOOKS.items()]
    kept.append(f"kept your edited statusLine: {EDITED_STATUS}")
    left_alone = [f"left alone a hook for PostToolUse that mentions sessionward (it is part of a longer shell command): {PIPELINE}"]

    out = report(run_cli("install", check=True), claude.parent)
    [backup] = backups(claude)
    assert out[:6] == [f"updated {path} (5 hooks; backup {claude / backup})"] + kept + left_alone
    ours = hooks_doc(hl(claude))
    expected = edited_settings(claude)
    expected["hooks"]["PostToolUse"] += ours["PostToolUse"]  # the pipeline is not ours: ours beside it
    expected["hooks"] |= {"UserPromptSubmit": ours["UserPromptSubmit"], "PermissionRequest": ours["PermissionRequest"],
                          "Notification": ours["Notification"], "SessionEnd": ours["SessionEnd"]}
    assert path.read_bytes() == two_space(expected)

    out = run_cli("install", check=True).stdout.splitlines()
    assert out[:6] == [f"unchanged {path}"] + kept + left_alone
    assert path.read_bytes() == two_space(expected) and len(backups(claude)) == 1

    out = run_cli("uninstall", "--dry-run", check=True).stdout.splitlines()
    assert out[1:6] == [line.replace("kept", "would remove", 1) for line in kept] + left_alone

    out = run_cli("uninstall", check=True).stdout.splitlines()
    second = [b for b in backups(claude) if b != backup]
    assert out[:6] == [f"updated {path} (removed 8 hooks, statusLine; backup {claude / second[0]})"] + [
        line.replace("kept", "removed", 1) for line in kept] + left_alone
    assert path.read_bytes() == two_space({"model": "opus", "hooks": {
        "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": PIPELINE}]}]}})


def test_a_copy_the_old_install_added_beside_an_edited_hook_is_removed(claude):
    # What install did before it recognised edited hooks: a second, pristine copy.
    claude.mkdir()
    path = claude / "settings.json"
    doc = {"hooks": hooks_doc(hl(claude)), "statusLine": status_doc(hl(claude))}
    pristine_stop = doc["hooks"]["Stop"][0]
    doc["hooks"]["Stop"] = [{"hooks": [{"type": "command", "command": EDITED_HOOKS["Stop"], "timeout": 10}]}, pristine_stop]
    path.write_bytes(two_space(doc))
    out = report(run_cli("install", check=True), claude.parent)
    assert out[:2] == [f"updated {path} (updated 1 hook; backup {claude / backups(claude)[0]})",
                       f"kept your edited hook for Stop: {EDITED_HOOKS['Stop']}"]
    doc["hooks"]["Stop"] = doc["hooks"]["Stop"][:1]
    assert path.read_bytes() == two_space(doc)
