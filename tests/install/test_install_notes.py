"""install and doctor find the person's Obsidian vaults in Obsidian's own list (a fake HOME
holding obsidian.json and real directories) and protect them only with the person's word."""

import json
import os
import pty
import subprocess

import pytest

from sessionward.vaults import find_obsidian_vaults

from helpers import SESSIONWARD, run_cli


@pytest.fixture
def home():
    return os.environ["HOME"]


def obsidian_list(home: str, vaults: dict, where=(".config", "obsidian")) -> str:
    """Write obsidian.json as Obsidian does: {"vaults": {id: {"path", "ts", "open"}}}."""
    directory = os.path.join(home, *where)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "obsidian.json")
    doc = {"vaults": {f"id{i}": {"path": p, "ts": ts, "open": i == 0} for i, (p, ts) in enumerate(vaults.items())}}
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def vault(home: str, name: str) -> str:
    path = os.path.join(home, name)
    os.makedirs(os.path.join(path, ".obsidian"), exist_ok=True)
    return path


def config_text(home: str) -> str:
    path = os.path.join(home, ".claude", "sessionward.toml")
    return open(path).read() if os.path.exists(path) else ""


def protected(home: str) -> list:
    return json.loads(run_cli("doctor", "--json").stdout)["result"]["checks"]


def test_vaults_are_read_from_every_place_obsidian_keeps_its_list(home):
    notes, work, flat, snap = (vault(home, n) for n in ("Notes", "Work", "Flat", "Snap"))
    obsidian_list(home, {notes: 1, work: 3, os.path.join(home, "Gone"): 2})
    obsidian_list(home, {flat: 5}, (".var", "app", "md.obsidian.Obsidian", "config", "obsidian"))
    obsidian_list(home, {snap: 4}, ("snap", "obsidian", "current", ".config", "obsidian"))
    found = find_obsidian_vaults()
    assert found.vaults == [flat, snap, work, notes]  # most recently opened first
    assert found.problems == [f"{home}/.config/obsidian/obsidian.json: vault {home}/Gone does not exist (any more); skipped"]


@pytest.mark.parametrize("content,problem", [
    ("{not json", "not valid JSON"),
    ('["a"]', 'no "vaults" object'),
    ('{"vaults": {"x": {"ts": 1}}}', "a vault without a path"),
])
def test_a_bad_obsidian_list_is_one_line_never_a_traceback(home, content, problem):
    os.makedirs(os.path.join(home, ".config", "obsidian"))
    with open(os.path.join(home, ".config", "obsidian", "obsidian.json"), "w") as f:
        f.write(content)
    assert find_obsidian_vaults().problems == [f"{home}/.config/obsidian/obsidian.json: " + problem
                                               + ("; skipped" if "without" in problem else "; its vaults are not known here")]
    done = run_cli("install")
    assert done.returncode == 0 and "Traceback" not in done.stderr + done.stdout
    assert [line for line in done.stdout.splitlines() if line.startswith("notes: ")] == [
        f"notes: {find_obsidian_vaults().problems[0]}"]
    done = run_cli("doctor")
    assert "Traceback" not in done.stderr + done.stdout and problem in done.stdout


def test_install_without_a_terminal_says_what_it_found_and_writes_nothing(home):
    notes = vault(home, "Notes")
    obsidian_list(home, {notes: 1})
    done = run_cli("install", input="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"found Obsidian vault(s) not protected: {notes}; to protect them: sessionward install --yes "
        "(or --vault PATH for each path to protect)")
    assert config_text(home) == ""
    check = next(c for c in protected(home) if c["name"] == "notes")
    assert (check["status"], check["detail"]) == ("warn", "Obsidian vault(s) not protected: ~/Notes")


def test_install_yes_protects_them_and_the_guard_sees_them(home):
    notes, work = vault(home, "Notes"), vault(home, "Work")
    obsidian_list(home, {notes: 1, work: 2})
    os.makedirs(os.path.join(home, ".claude"))
    with open(os.path.join(home, ".claude", "sessionward.toml"), "w") as f:
        f.write('edit_policy = "ask"\n')
    done = run_cli("install", "--yes")
    assert done.returncode == 0, done.stderr
    toml = os.path.join(home, ".claude", "sessionward.toml")
    assert done.stdout.splitlines()[-3:] == [
        f"now protecting {work} (in {toml})", f"now protecting {notes} (in {toml})",
        f"notes protected: {work}, {notes}"]
    assert config_text(home) == ('edit_policy = "ask"\n# protected by sessionward install: edits here wait while '
                                 f'another session saves\nvaults = ["{work}", "{notes}"]\n')
    config = json.loads(run_cli("doctor", "--json").stdout)["result"]["checks"]
    assert next(c for c in config if c["name"] == "notes")["status"] == "ok"
    again = run_cli("install", "--yes")
    assert again.stdout.splitlines()[-1] == f"notes protected: {work}, {notes}"
    assert config_text(home).count("vaults") == 1


def test_install_vault_paths_replace_what_was_found(home, tmp_path):
    notes = vault(home, "Notes")
    obsidian_list(home, {notes: 1})
    resume = tmp_path / "resume.md"
    resume.write_text("next\n")
    other = vault(home, "Other")
    done = run_cli("install", "--vault", other, "--vault", str(resume))
    assert done.returncode == 0, done.stderr
    assert f'vaults = ["{other}"]\n' in config_text(home) and f'shared_paths = ["{resume}"]\n' in config_text(home)
    assert notes not in config_text(home)
    missing = run_cli("install", "--vault", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr == (
        f"sessionward: install: no such file or directory to protect: '{tmp_path}/nowhere'; nothing was changed\n")


def test_install_no_vaults_leaves_it_alone(home):
    obsidian_list(home, {vault(home, "Notes"): 1})
    done = run_cli("install", "--no-vaults")
    assert done.returncode == 0 and "Obsidian" not in done.stdout and config_text(home) == ""
    assert run_cli("install", "--no-vaults", "--yes").returncode == 2


def test_install_dry_run_writes_nothing(home):
    notes = vault(home, "Notes")
    obsidian_list(home, {notes: 1})
    done = run_cli("install", "--dry-run", "--yes")
    assert done.stdout.splitlines()[-1] == f"would protect {notes} (in {home}/.claude/sessionward.toml)"
    assert config_text(home) == ""


@pytest.mark.parametrize("answer,written", [("", "found"), ("n", None), ("{other}", "other")])
def test_install_on_a_terminal_asks(home, answer, written):
    notes, other = vault(home, "Notes"), vault(home, "Other")
    obsidian_list(home, {notes: 1})
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([SESSIONWARD, "install"], stdin=slave, stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        seen = b""
        while b"[Y/n" not in seen:
            seen += os.read(master, 4096)
        assert b"~/Notes" in seen
        os.write(master, answer.format(other=other).encode() + b"\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0
    wanted = {"found": notes, "other": other, None: None}[written]
    if wanted is None:
        assert config_text(home) == "" and b"protect" not in out  # the person said no: nothing more to say
    else:
        assert f'vaults = ["{wanted}"]' in config_text(home)
        assert out.decode().splitlines()[-1] == f"notes protected: {wanted}"


def test_a_vault_path_that_is_not_utf8_is_refused_in_one_line(home, tmp_path):
    """A directory whose name is not UTF-8 exists, but sessionward.toml (UTF-8) cannot name it."""
    odd = os.path.join(os.fsencode(tmp_path), b"notes-\xff")
    os.mkdir(odd)
    done = subprocess.run([SESSIONWARD, "install", "--vault", odd], capture_output=True)
    assert done.returncode == 2, done
    assert done.stderr.startswith(b"sessionward: install: a path to protect must be UTF-8 text") and done.stderr.count(b"\n") == 1
    assert not os.path.exists(os.path.join(home, ".claude", "sessionward.toml"))
