"""Promise 6: bad input gets one clear line and exit 2, never a traceback; state untouched."""

import json

import pytest

from helpers import run_cli


@pytest.fixture
def seeded(tmp_path, keeper, registry_file):
    """A registry holding one live session; returns a function telling if it is unchanged."""
    run_cli("register", "seed-project", str(tmp_path), "--pid", str(keeper), check=True)
    before = registry_file.read_bytes()
    return lambda: registry_file.read_bytes() == before


BAD = {
    "empty project": ["register", "", "/tmp"],
    "blank project": ["register", "   ", "/tmp"],
    "long project": ["register", "x" * 129, "/tmp"],
    "control char": ["register", "a\x01b", "/tmp"],
    "escape char": ["register", "a\x1b[31mred", "/tmp"],
    "slash": ["register", "a/b", "/tmp"],
    "backslash": ["register", "a\\b", "/tmp"],
    "dot-dot": ["register", "..", "/tmp"],
    "relative cwd": ["register", "p", "relative/dir"],
    "missing cwd": ["register", "p", "/no/such/dir"],
    "cwd is a file": ["register", "p", "/etc/hostname"],
    "extra argument": ["register", "p", "/tmp", "extra"],
    "unknown command": ["frobnicate"],
    "unknown option": ["list", "--frobnicate"],
    "short unknown option": ["list", "-x"],
    "garbage pid": ["register", "p", "/tmp", "--pid", "abc"],
    "negative pid": ["register", "p", "/tmp", "--pid=-4"],
    "zero pid": ["unregister", "0"],
    "pid without value": ["register", "--pid"],
    "flag with value": ["list", "--json=yes"],
    "bad session id": ["register", "p", "/tmp", "--session", "bad id!"],
    "long session id": ["heartbeat", "--session", "s" * 129],
    "garbage unregister pid": ["unregister", "12abc"],
    "check bad project": ["check", "a/b"],
    "check relative cwd": ["check", "--cwd", "rel"],
    "prune both": ["prune", "--apply", "--dry-run"],
    "install bad scope": ["install", "--scope", "global"],
    "uninstall bad scope": ["uninstall", "--scope="],
    "group without sub": ["help", "nope"],
    # argv's undecodable bytes arrive as lone surrogates: not storable as UTF-8 JSON
    "undecodable purpose": ["lock", "acquire", "--purpose", "a\udcff", "--timeout", "0"],
    "undecodable project": ["register", "a\udcff", "/tmp"],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(name, seeded):
    result = run_cli(*BAD[name])
    assert result.returncode == 2, (name, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("sessionward: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert seeded()


@pytest.mark.parametrize("name", ["empty project", "unknown command", "garbage pid", "prune both"])
def test_bad_input_with_json_is_a_json_envelope(name, seeded):
    result = run_cli(*BAD[name], "--json")
    assert result.returncode == 2
    envelope = json.loads(result.stdout)
    assert envelope["ok"] is False and envelope["exit_code"] == 2
    assert envelope["schema"] == "sessionward/1"
    assert envelope["error"]["code"] in ("bad_input", "usage")
    assert envelope["error"]["message"]
    assert result.stderr == ""
    assert seeded()


def test_exact_messages(tmp_path):
    assert run_cli("frobnicate").stderr == "sessionward: unknown command 'frobnicate'; see 'sessionward --help' for the list\n"
    assert run_cli("register", "a/b", "/tmp").stderr == (
        "sessionward: project name 'a/b' contains a path separator; give the name, not a path\n"
    )
    assert run_cli("register", "p", "rel").stderr == (
        "sessionward: working directory 'rel' is relative; give an absolute path (e.g. \"$PWD\")\n"
    )
    assert run_cli("list", "--frobnicate").stderr == (
        "sessionward: list: unknown option --frobnicate; see 'sessionward list --help'\n"
    )


def test_private_dir_that_is_a_file_is_one_line_exit_3(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "sessionward").write_text("not a dir")
    result = run_cli("register", "p", str(tmp_path))
    assert result.returncode == 3
    assert result.stderr == f"sessionward: refusing state path {state / 'sessionward'}: it is not a directory; move it away or set SESSIONWARD_HOME\n"


def test_unexpected_error_is_one_line_naming_the_log(monkeypatch, capsys, state_dir):
    from sessionward.cli import main as cli_main, sessions

    def broken(values):
        raise RuntimeError("boom")

    monkeypatch.setattr(sessions, "run_list", broken)
    monkeypatch.delenv("SESSIONWARD_DEBUG", raising=False)
    assert cli_main.main(["list"]) == 3
    err = capsys.readouterr().err
    log = state_dir / "sessionward" / "errors.log"
    assert err == f"sessionward: internal error in 'list': RuntimeError: boom (traceback in {log})\n"
    assert "Traceback (most recent call last)" in log.read_text() and "RuntimeError: boom" in log.read_text()
    monkeypatch.setenv("SESSIONWARD_DEBUG", "1")  # the switch that keeps bugs loud in tests
    with pytest.raises(RuntimeError):
        cli_main.main(["list"])


def test_lock_acquire_waits_the_configured_lock_timeout(tmp_path):
    """No --timeout: lock_timeout_s of sessionward.toml (the /end command relies on it)."""
    import os
    import subprocess

    holder = subprocess.Popen(["sleep", "60"])
    try:
        run_cli("lock", "acquire", "end", "--pid", str(holder.pid), check=True)
        config = os.path.join(os.environ["HOME"], ".claude", "sessionward.toml")
        os.makedirs(os.path.dirname(config), exist_ok=True)
        with open(config, "w") as f:
            f.write("lock_timeout_s = 0.3\n")
        result = run_cli("lock", "acquire", "end")
        assert result.returncode == 1
        assert f"lock end still held after 0.3 s by pid {holder.pid}" in result.stderr
    finally:
        holder.kill()
        holder.wait()


# -- found by tests/torture/test_hostile_input.py ------------------------------------------------


@pytest.mark.parametrize("odd", ["\n", "\x85", "\u2028", "\x1b[2J"])
def test_a_message_quoting_a_control_character_stays_one_line(odd, tmp_path):
    result = run_cli("register", "p", f"/no/such{odd}dir")
    escaped = repr(odd)[1:-1]
    assert result.returncode == 2
    assert result.stderr == f"sessionward: working directory /no/such{escaped}dir does not exist or is not a directory\n"
    result = run_cli("list", f"-{odd}")
    assert result.returncode == 2
    assert result.stderr == f"sessionward: list: unknown option -{escaped}; see 'sessionward list --help'\n"


@pytest.mark.parametrize("errors", ["strict", "surrogateescape"])  # en_US.UTF-8, C.UTF-8
def test_undecodable_bytes_in_argv_give_a_utf8_json_envelope(errors, tmp_path):
    import os
    import subprocess

    from helpers import SESSIONWARD

    env = dict(os.environ, PYTHONIOENCODING=f"utf-8:{errors}")
    for argv in ([b"list", b"-\xff", b"--json"], [b"x\xff", b"--json"], [b"lock", b"status", b"a\xff", b"--json"]):
        done = subprocess.run([SESSIONWARD.encode(), *argv], capture_output=True, env=env, timeout=60)
        assert done.returncode == 2, done.stderr
        envelope = json.loads(done.stdout.decode("utf-8"))  # strict: valid UTF-8
        assert envelope["ok"] is False and envelope["exit_code"] == 2
        assert "udcff" in ascii(envelope["error"]["message"] + envelope["command"])  # the byte, escaped
        assert done.stderr == b""
    done = subprocess.run([SESSIONWARD.encode(), b"x\xff"], capture_output=True, env=env, timeout=60)
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr == b"sessionward: unknown command 'x\\udcff'; see 'sessionward --help' for the list\n"


def test_output_lines_escape_what_is_not_printable_but_keep_tabs_and_colours():
    from sessionward.cli.render import _shown

    assert _shown("a\tb\nc") == "a\tb\\nc"
    assert _shown("\033[1;31mSTRONG\033[0m /x\udcff\n") == "\033[1;31mSTRONG\033[0m /x\\udcff\\n"
    assert _shown("\033]0;title\007") == "\\x1b]0;title\\x07"  # not a colour code: shown, not sent
