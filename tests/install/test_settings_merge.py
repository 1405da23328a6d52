"""The settings merge as a pure function: document in, document out, nothing else touched."""

import copy
import json
from pathlib import Path

import pytest

import sessionward
from sessionward.errors import SettingsInvalid
from sessionward.install import settings
from sessionward.install.settings import merge_settings, parse_settings, render_settings, unmerge_settings

L = "/opt/sw/bin/sessionward"
OLD = "/old/venv/bin/sessionward"


def group(event, matcher=None, timeout=10, launcher=L):
    handler = {"type": "command", "command": f"{launcher} hook {event}"}
    if timeout is not None:
        handler["timeout"] = timeout
    return ({"matcher": matcher} if matcher else {}) | {"hooks": [handler]}


# Written out by hand, not derived from settings.HOOKS: this is the contract the hooks rely on.
OURS = {
    "SessionStart": [group("SessionStart")],
    "UserPromptSubmit": [group("UserPromptSubmit")],
    "PreToolUse": [group("PreToolUse", "Edit|Write|MultiEdit|NotebookEdit|Bash")],
    "PostToolUse": [group("PostToolUse", "Edit|Write|MultiEdit|NotebookEdit|Read|Bash")],
    "PermissionRequest": [group("PermissionRequest")],  # every tool's dialog: "waiting" as it opens
    "Notification": [group("Notification")],
    "Stop": [group("Stop")],
    "SessionEnd": [group("SessionEnd", timeout=None)],
}
# The shell fast path (install/status_line.sh) with the launcher, redrawn every 3 s while idle.
FAST_PATH = str(Path(sessionward.__file__).parent / "install" / "status_line.sh")
OUR_STATUS = {"type": "command", "command": f"sh {FAST_PATH} {L}", "padding": 0, "refreshInterval": 3}
USER_BASH = {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/audit-bash"}]}
USER_NOTIFY = {"hooks": [{"type": "command", "command": "notify-send claude"}]}


def ordered(doc) -> str:
    """Key order matters here, and dict equality ignores it: compare the JSON text."""
    return json.dumps(doc)


def user_doc():
    return {
        "model": "opus",
        "hooks": {"PreToolUse": [USER_BASH], "Notification": [USER_NOTIFY]},
        "env": {"FOO": "1"},
        "permissions": {"allow": ["Bash(ls:*)"]},
    }


def test_empty_document_gets_exactly_our_hooks_and_status_line():
    new, changes = merge_settings({}, L)
    assert ordered(new) == ordered({"hooks": OURS, "statusLine": OUR_STATUS})
    assert changes.added == ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PermissionRequest", "Notification", "Stop", "SessionEnd"]
    assert changes.summary() == "8 hooks, statusLine"


def test_session_end_keeps_claude_codes_default_timeout():
    new, _ = merge_settings({}, L)
    assert new["hooks"]["SessionEnd"] == [{"hooks": [{"type": "command", "command": f"{L} hook SessionEnd"}]}]


def test_user_keys_and_hooks_are_kept_in_order_and_input_is_not_mutated():
    doc = user_doc()
    before = copy.deepcopy(doc)
    new, changes = merge_settings(doc, L)
    assert ordered(doc) == ordered(before)
    assert list(new) == ["model", "hooks", "env", "permissions", "statusLine"]
    assert list(new["hooks"]) == ["PreToolUse", "Notification", "SessionStart", "UserPromptSubmit",
                                  "PostToolUse", "PermissionRequest", "Stop", "SessionEnd"]
    assert new["hooks"]["PreToolUse"] == [USER_BASH, OURS["PreToolUse"][0]]
    assert new["hooks"]["Notification"] == [USER_NOTIFY, OURS["Notification"][0]]
    assert (new["model"], new["env"], new["permissions"]) == ("opus", {"FOO": "1"}, {"allow": ["Bash(ls:*)"]})
    assert changes.added == ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PermissionRequest", "Notification", "Stop", "SessionEnd"]


def test_install_twice_is_install_once():
    once, _ = merge_settings(user_doc(), L)
    twice, changes = merge_settings(once, L)
    assert ordered(twice) == ordered(once)
    assert (changes.added, changes.updated, changes.status_line, changes.summary()) == ([], [], None, "")


def test_uninstall_removes_exactly_ours_and_restores_the_original():
    original = user_doc()
    installed, _ = merge_settings(original, L)
    restored, changes = unmerge_settings(installed)
    assert ordered(restored) == ordered(original)
    assert changes.removed == ["PreToolUse", "Notification", "SessionStart", "UserPromptSubmit", "PostToolUse", "PermissionRequest", "Stop", "SessionEnd"]
    assert changes.status_line == "removed"
    assert changes.summary() == "removed 8 hooks, statusLine"


def test_uninstall_of_an_empty_document_changes_nothing():
    new, changes = unmerge_settings({"model": "opus"})
    assert new == {"model": "opus"} and changes.removed == [] and changes.status_line is None


LOOKALIKES = [
    ("sessionward-wrapper hook Stop", "sessionward is not the program it runs"),
    ("echo sessionward hook Stop", "sessionward is not the program it runs"),
    (f"bash -c '{L} hook Stop'", "sessionward is not the program it runs"),
    (f"{L} hook SessionEnd", "it runs sessionward with other arguments than `hook Stop`"),  # another event
    (f"{L} hook Stop --verbose", "it runs sessionward with other arguments than `hook Stop`"),
    (f"{L} hook Stop | tee -a /tmp/log", "it is part of a longer shell command"),
    (f"{L} hook Stop; say done", "it is part of a longer shell command"),
    (f"{L} hook Stop &", "it is part of a longer shell command"),
    (f"({L} hook Stop)", "it is part of a longer shell command"),
    (f"{L} hook Stop $(date)", "it is part of a longer shell command"),
    (f"{L} hook Stop\nrm -f x", "it is part of a longer shell command"),
    (f"'{L} hook Stop", "it is part of a longer shell command"),  # unbalanced quote
]


def test_lookalike_handlers_are_not_ours_and_are_reported():
    doc = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": c}]} for c, _ in LOOKALIKES]}}
    installed, changes = merge_settings(doc, L)
    assert installed["hooks"]["Stop"] == doc["hooks"]["Stop"] + [group("Stop")]
    assert changes.added[-2:] == ["Stop", "SessionEnd"] and changes.edited == []
    assert changes.left_alone == [("Stop", c, why) for c, why in LOOKALIKES]
    restored, changes = unmerge_settings(installed)
    assert ordered(restored) == ordered(doc)
    assert changes.left_alone == [("Stop", c, why) for c, why in LOOKALIKES]


EDITED = [
    f"{L} hook Stop 2>>~/hook.log",
    f"{L} hook Stop >/dev/null 2>&1",
    f"{L} 2>/dev/null hook Stop",
    "sessionward hook Stop",                      # from PATH
    "~/.local/bin/sessionward hook Stop",
    '"$HOME/.local/bin/sessionward" hook Stop',
    f"timeout 5 {L} hook Stop",
    f"/usr/bin/env SESSIONWARD_EDIT_POLICY=deny {L} hook Stop",
    f"FOO=1 nice -n 5 {L} hook Stop",
    f"'{L}' hook Stop",                           # quoted though it need not be
    f"{L}  hook Stop",                            # two spaces
    f"{OLD} hook  Stop",                          # an old launcher, edited: still the user's edit
]


@pytest.mark.parametrize("command", EDITED)
def test_an_edited_hook_of_ours_counts_as_installed_and_uninstall_removes_it(command):
    user = {"type": "command", "command": "say done"}
    doc = {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": command, "timeout": 3}, user]}]}}
    new, changes = merge_settings(doc, L)
    assert new["hooks"]["Stop"] == doc["hooks"]["Stop"]  # kept exactly: no copy added, nothing rewritten
    assert "Stop" not in changes.added + changes.updated
    assert (changes.edited, changes.left_alone) == ([("Stop", command)], [])
    restored, changes = unmerge_settings(new)
    assert restored == {"hooks": {"Stop": [{"hooks": [user]}]}}
    assert changes.removed == ["Stop", "SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PermissionRequest", "Notification",
                               "SessionEnd"]
    assert changes.edited == [("Stop", command)]


@pytest.mark.parametrize("command", [f"{L} status-line 2>/dev/null", "sessionward status-line",
                                     f"timeout 2 {L} status-line"])
def test_an_edited_status_line_of_ours_is_kept_then_removed(command):
    line = {"type": "command", "command": command, "padding": 1}
    new, changes = merge_settings({"statusLine": line}, L)
    assert new["statusLine"] == line and changes.status_line is None
    assert changes.edited == [("statusLine", command)] and changes.summary() == "8 hooks"
    restored, changes = unmerge_settings(new)
    assert restored == {} and changes.status_line == "removed" and changes.edited == [("statusLine", command)]


def test_a_status_line_that_only_mentions_sessionward_is_the_users():
    line = {"type": "command", "command": f"~/bin/git-status; {L} status-line"}
    new, changes = merge_settings({"statusLine": line}, L)
    assert new["statusLine"] == line and changes.status_line == "theirs"
    assert changes.left_alone == [("statusLine", line["command"], "it is part of a longer shell command")]
    restored, changes = unmerge_settings(new)
    assert restored == {"statusLine": line} and changes.status_line is None
    assert changes.left_alone == [("statusLine", line["command"], "it is part of a longer shell command")]


def test_pristine_copies_beside_an_edited_one_are_duplicates():
    edited = {"hooks": [{"type": "command", "command": f"timeout 5 {L} hook Stop"}]}
    doc = {"hooks": {"Stop": [group("Stop", launcher=OLD), edited, group("Stop")]}}
    new, changes = merge_settings(doc, L)
    assert new["hooks"]["Stop"] == [edited] and changes.updated == ["Stop"]


def test_stale_launcher_is_replaced_in_place_not_duplicated():
    stale = {"matcher": "Edit|Write", "hooks": [{"type": "command", "command": f"{OLD} hook PreToolUse", "timeout": 5}]}
    doc = {"hooks": {"PreToolUse": [stale, USER_BASH]}, "statusLine": {"type": "command", "command": f"{OLD} status-line", "padding": 0, "refreshInterval": 5}}
    new, changes = merge_settings(doc, L)
    assert new["hooks"]["PreToolUse"] == [OURS["PreToolUse"][0], USER_BASH]
    # An older install's plain `sessionward status-line` gets the fast path; the user's interval stays.
    assert new["statusLine"] == {"type": "command", "command": f"sh {FAST_PATH} {L}", "padding": 0, "refreshInterval": 5}
    assert changes.updated == ["PreToolUse"] and changes.status_line == "updated"
    assert changes.summary() == "7 hooks, updated 1 hook, updated statusLine"


def test_duplicates_of_ours_are_removed_and_user_handlers_beside_them_kept():
    mixed = {"hooks": [{"type": "command", "command": f"{OLD} hook Stop"}, {"type": "command", "command": "say done"}]}
    doc = {"hooks": {"Stop": [group("Stop", launcher=OLD), mixed, group("Stop")]}}
    new, changes = merge_settings(doc, L)
    assert new["hooks"]["Stop"] == [group("Stop"), {"hooks": [{"type": "command", "command": "say done"}]}]
    assert changes.updated == ["Stop"]


def test_ours_placed_by_hand_in_a_user_group_keeps_its_place_and_matcher():
    by_hand = {"matcher": "Write", "hooks": [{"type": "command", "command": "fmt"},
                                             {"type": "command", "command": f"{OLD} hook PreToolUse", "timeout": 3}]}
    new, changes = merge_settings({"hooks": {"PreToolUse": [by_hand]}}, L)
    assert new["hooks"]["PreToolUse"] == [{"matcher": "Write", "hooks": [
        {"type": "command", "command": "fmt"}, {"type": "command", "command": f"{L} hook PreToolUse", "timeout": 3}]}]
    assert changes.updated == ["PreToolUse"]
    restored, _ = unmerge_settings(new)
    assert restored["hooks"]["PreToolUse"] == [{"matcher": "Write", "hooks": [{"type": "command", "command": "fmt"}]}]


def test_a_users_status_line_is_kept_by_install_and_uninstall():
    mine = {"type": "command", "command": "~/bin/my-status", "padding": 2}
    new, changes = merge_settings({"statusLine": mine}, L)
    assert new["statusLine"] == mine and changes.status_line == "theirs"
    assert changes.summary() == "8 hooks, your statusLine kept"
    restored, changes = unmerge_settings(new)
    assert ordered(restored) == ordered({"statusLine": mine}) and changes.status_line is None


def test_uninstall_removes_only_containers_it_emptied():
    doc = {"hooks": {"PreCompact": [], "Stop": [{"matcher": "", "hooks": []}]}}
    installed, _ = merge_settings(doc, L)
    restored, _ = unmerge_settings(installed)
    assert ordered(restored) == ordered(doc)  # the user's empty list and empty group stay
    # A user's own empty event list that install appended to goes with our entry (documented).
    restored, _ = unmerge_settings(merge_settings({"hooks": {"Stop": []}}, L)[0])
    assert restored == {}


def test_odd_groups_are_left_exactly_as_found():
    odd = ["not a group", {"matcher": "x"}, {"hooks": "nope"}]
    new, _ = merge_settings({"hooks": {"Stop": list(odd)}}, L)
    assert new["hooks"]["Stop"] == odd + [group("Stop")]
    assert unmerge_settings(new)[0] == {"hooks": {"Stop": odd}}


def test_launcher_with_a_space_is_quoted_and_still_recognised(monkeypatch):
    monkeypatch.setattr(settings, "launcher_paths", lambda: ("/home/me/my venv/bin/sessionward", "/x/python"))
    launcher = settings.launcher_command()
    assert launcher == "'/home/me/my venv/bin/sessionward'"
    once, _ = merge_settings({}, launcher)
    assert once["hooks"]["Stop"][0]["hooks"][0]["command"] == "'/home/me/my venv/bin/sessionward' hook Stop"
    twice, changes = merge_settings(once, launcher)
    assert twice == once and changes.updated == []
    assert unmerge_settings(once)[0] == {}


def test_plain_launcher_is_not_quoted(monkeypatch):
    monkeypatch.setattr(settings, "launcher_paths", lambda: ("/opt/sw/bin/sessionward", "/x/python"))
    assert settings.launcher_command() == "/opt/sw/bin/sessionward"


@pytest.mark.parametrize("raw, problem", [
    (b'{\n  "model": "opus",\n  "hooks": \n}\n', "not valid JSON: Expecting value at line 4 column 1"),
    (b'{"a": 1,}', "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 9"),
    (b'[1, 2]', "the top level is a list, not an object"),
    (b'"text"', "the top level is a string, not an object"),
    (b'{"hooks": []}', '"hooks" is a list, not an object'),
    (b'{"hooks": null}', '"hooks" is null, not an object'),
    (b'{"hooks": {"Stop": {"hooks": []}}}', '"hooks"."Stop" is an object, not a list'),
    (b'{"a": NaN}', "not valid JSON: NaN is not a JSON value at line 1 column 7"),
    (b'{"a": -Infinity}', "not valid JSON: -Infinity is not a JSON value at line 1 column 7"),
    (b'{"hooks": {}, "model": 1,\n "hook\\u0073": {}}', 'not valid JSON: duplicate key "hooks" at line 2 column 2'),
    (b'{"a": 1} // mine', "not valid JSON: Extra data at line 1 column 10"),
    (b'{"a": "tab\there"}', "not valid JSON: Invalid control character at line 1 column 11"),
    (b'{"a": 01}', "not valid JSON: Expecting ',' delimiter at line 1 column 8"),
    (b'{"a":\x0c1}', "not valid JSON: Expecting value at line 1 column 6"),
    (b'[' * 201 + b']' * 201, "not valid JSON: nested deeper than 200 levels at line 1 column 201"),
    (b'\xef\xbb\xbf{}', "not valid JSON: it starts with a byte order mark (U+FEFF)"),
    (b'{"a": "\xff"}', "not UTF-8 text (byte 7)"),
])
def test_documents_we_cannot_merge_into_are_refused_with_the_problem(raw, problem):
    with pytest.raises(SettingsInvalid) as info:
        parse_settings(raw, "/p/settings.json")
    assert str(info.value) == (
        f"/p/settings.json: {problem}; fix it (or move it aside) and run the command again; nothing was changed"
    )
    assert info.value.exit_code == 2 and info.value.code == "settings_invalid"


@pytest.mark.parametrize("raw", [None, b"", b"  \n"])
def test_missing_or_blank_file_is_the_empty_document(raw):
    assert parse_settings(raw, "/p") == {}


@pytest.mark.parametrize("like, expected", [
    (None, b'{\n  "a": [\n    1\n  ]\n}\n'),
    (b"", b'{\n  "a": [\n    1\n  ]\n}\n'),
    (b"{}", b'{\n  "a": [\n    1\n  ]\n}'),
    (b'{\n  "x": 1\n}\n', b'{\n  "a": [\n    1\n  ]\n}\n'),
    (b'{\n    "x": 1\n}', b'{\n    "a": [\n        1\n    ]\n}'),
    (b'{\n\t"x": 1\n}\n', b'{\n\t"a": [\n\t\t1\n\t]\n}\n'),
    (b'{"x": 1}', b'{"a": [1]}'),
    (b'{"x":1}', b'{"a":[1]}'),
    (b'{\r\n  "x": 1\r\n}\r\n', b'{\r\n  "a": [\r\n    1\r\n  ]\r\n}\r\n'),
])
def test_render_lays_new_entries_out_like_the_file(like, expected):
    assert render_settings({"a": [1]}, like) == expected


def test_render_keeps_non_ascii_as_is():
    assert render_settings({"name": "café ✓"}, None) == '{\n  "name": "café ✓"\n}\n'.encode()


def test_a_backup_writer_killed_mid_write_leaves_no_temp_file_behind(tmp_path):
    # Regression: remove_stray_temps(settings.json) read the PID right after the file name,
    # so the temp of a killed backup write (.settings.json.bak-STAMP.PID.RAND.tmp) stayed.
    import os
    import subprocess
    import sys

    path = tmp_path / "settings.json"
    path.write_text('{"model": "opus"}\n')
    code = ("from sessionward.install.settings import apply_settings, merge_settings\n"
            f"apply_settings({str(path)!r}, lambda d: merge_settings(d, '/bin/sessionward'))\n")
    env = dict(os.environ, SESSIONWARD_TEST_CRASH_AT="temp-written")
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 91
    assert [e for e in os.listdir(tmp_path) if e.endswith(".tmp")]
    settings.apply_settings(str(path), lambda d: merge_settings(d, "/bin/sessionward"))
    assert not [e for e in os.listdir(tmp_path) if e.endswith(".tmp")]
    assert json.loads(path.read_text())["model"] == "opus"
