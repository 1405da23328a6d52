"""A corrupt registry reached first by a hook is told to the person, once in Claude Code and
once on the command line (sessionward._notices).

The hook that keeps it aside answers with a systemMessage naming what happened and where the
copy is kept; the next hook says nothing more of it; the next command prints it on stderr
(one line, exit 3, its own output still following); the command after that is quiet.
"""

import json
import os

import pytest

from helpers import run_cli

GARBAGE = b'{"schema": "sessionward/1", "sessions": {"torn'


def corrupt(state_dir) -> None:
    (state_dir / "obsidian_sessions.json").write_bytes(GARBAGE)


def kept_copies(state_dir) -> list:
    return sorted(n for n in os.listdir(state_dir) if n.startswith("obsidian_sessions.json.corrupt-"))


def notice_in(text: str, state_dir) -> bool:
    [kept] = kept_copies(state_dir)
    return "obsidian_sessions.json was corrupt" in text and f"kept as {state_dir / kept}" in text


FIRST = {
    "SessionStart": lambda s: s.start(source="resume"),
    "PreToolUse": lambda s: s.pre_bash("git checkout -b other"),  # the git guard reads the registry
    "Stop": lambda s: s.stop(),
}


@pytest.mark.parametrize("first", list(FIRST))
def test_the_hook_that_finds_it_tells_once_then_the_next_command_once(sessions, state_dir, first):
    a = sessions(0)
    assert a.start().rc == 0
    corrupt(state_dir)

    ran = FIRST[first](a)
    assert (ran.rc, ran.stderr) == (0, ""), ran
    answer = json.loads(ran.stdout)
    assert notice_in(answer["systemMessage"], state_dir), answer
    assert (state_dir / kept_copies(state_dir)[0]).read_bytes() == GARBAGE  # kept, byte for byte

    for again in (a.prompt(), a.pre_bash("git checkout -b other2"), a.stop()):  # never again in Claude Code
        assert again.rc == 0 and "corrupt" not in again.stdout + again.stderr, again

    listed = run_cli("list")
    assert listed.returncode == 3, listed
    [line] = listed.stderr.splitlines()
    assert line.startswith("sessionward: ") and notice_in(line, state_dir), listed.stderr
    assert f"\n{a.session_id[:8]}\tproj\t" in listed.stdout  # the command's own output follows (the hooks re-registered it)

    quiet = run_cli("list")
    assert (quiet.returncode, quiet.stderr) == (0, ""), quiet


@pytest.mark.parametrize("command", [["lock", "status"], ["check", "--cwd", "/"], ["doctor"], ["list", "--json"]])
def test_any_command_tells_it_once(sessions, state_dir, command):
    a = sessions(0)
    assert a.start().rc == 0
    corrupt(state_dir)
    assert "systemMessage" in a.stop().stdout
    first = run_cli(*command)
    if command[-1] == "--json":
        envelope = json.loads(first.stdout)
        assert first.returncode == 3 and envelope["exit_code"] == 3, first
        assert len(envelope["notices"]) == 1 and notice_in(envelope["notices"][0], state_dir), envelope
    else:
        # exit 3, unless the command has a failing status of its own (doctor here: no install)
        assert first.returncode == (1 if command == ["doctor"] else 3), first
        [line] = [x for x in first.stderr.splitlines() if "corrupt" in x]
        assert notice_in(line, state_dir), first.stderr
    if command == ["doctor"]:
        assert kept_copies(state_dir)[0] in first.stdout  # and doctor still lists the copy
    second = run_cli(*command)
    assert "was corrupt" not in second.stderr + (second.stdout if command != ["doctor"] else ""), second


def test_a_command_that_finds_it_itself_tells_it_once_and_the_next_hook_once(sessions, state_dir):
    a = sessions(0)
    assert a.start().rc == 0
    corrupt(state_dir)
    listed = run_cli("list")
    assert listed.returncode == 3 and listed.stderr.count("was corrupt") == 1, listed
    assert run_cli("list").stderr == ""  # not told twice on the command line
    stop = a.stop()
    assert notice_in(json.loads(stop.stdout)["systemMessage"], state_dir), stop  # once in Claude Code
    assert "corrupt" not in a.stop().stdout


def test_a_permission_request_answers_nothing_and_leaves_the_notice_to_the_next_hook(sessions, payloads, state_dir):
    # Its answer is read as a decision on a permission dialog: it stays empty, whatever is
    # pending (the payload is the one Claude Code 2.1.331 sent as its dialog opened).
    a = sessions(0)
    assert a.start().rc == 0
    corrupt(state_dir)
    assert run_cli("list").returncode == 3  # kept aside by a command: pending for Claude Code
    asked = dict(payloads.get("2.1.331", "permission", "04-PermissionRequest"), session_id=a.session_id, cwd=a.cwd)
    ran = a.hook("PermissionRequest", asked)
    assert (ran.rc, ran.stdout, ran.stderr) == (0, "", ""), ran
    stop = a.stop()
    assert notice_in(json.loads(stop.stdout)["systemMessage"], state_dir), stop  # told at the next hook


def test_nothing_pending_leaves_no_file(sessions, state_dir):
    a = sessions(0)
    assert a.start().rc == 0 and a.stop().rc == 0
    assert not (state_dir / "sessionward" / "notices.json").exists()
    assert run_cli("list").returncode == 0


@pytest.mark.parametrize("garbage", [b'{"schema": "sessionward/1", "files": {"torn', b"[1, 2]", b'{"schema": "other/1"}'])
def test_a_corrupt_claims_shard_is_kept_aside_and_told_not_reset_in_silence(sessions, state_dir, tmp_path, garbage):
    from sessionward.store.local_claims import claims_dir, shard_name

    a = sessions(0)
    assert a.start().rc == 0
    target = tmp_path / "x.txt"
    assert a.write(str(target)).rc == 0  # the claims directory and its lock exist
    shard = os.path.join(claims_dir(str(state_dir)), shard_name(os.path.realpath(target)))
    with open(shard, "wb") as f:
        f.write(garbage)

    ran = a.write(str(target), "again\n")  # PostToolUse rewrites the shard under its lock
    assert (ran.rc, ran.stderr) == (0, ""), ran
    [kept] = [n for n in os.listdir(os.path.dirname(shard)) if n.startswith(os.path.basename(shard) + ".corrupt-")]
    with open(os.path.join(os.path.dirname(shard), kept), "rb") as f:
        assert f.read() == garbage  # kept, byte for byte
    assert f"{shard} was corrupt" in json.loads(ran.stdout)["systemMessage"], ran
    assert "corrupt" not in a.write(str(target), "third\n").stdout  # told once in Claude Code

    doctor = run_cli("doctor")
    assert f"sessionward/claims/{kept}" in doctor.stdout, doctor.stdout  # listed with the others
    assert doctor.stderr.count("was corrupt") == 1, doctor.stderr  # and told once on the command line


def test_a_claims_shard_of_a_newer_sessionward_is_left_untouched(sessions, state_dir, tmp_path):
    from sessionward.store.local_claims import claims_dir, shard_name

    a = sessions(0)
    assert a.start().rc == 0
    target = tmp_path / "x.txt"
    assert a.write(str(target)).rc == 0
    shard = os.path.join(claims_dir(str(state_dir)), shard_name(os.path.realpath(target)))
    newer = b'{"schema": "sessionward/2", "files": {}}'
    with open(shard, "wb") as f:
        f.write(newer)
    ran = a.write(str(target), "again\n")
    assert ran.rc == 1 and "newer than this sessionward understands" in ran.stderr, ran  # fails open, visibly
    with open(shard, "rb") as f:
        assert f.read() == newer
    assert not [n for n in os.listdir(os.path.dirname(shard)) if ".corrupt-" in n]
