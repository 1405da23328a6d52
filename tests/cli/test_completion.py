"""`sessionward completion SHELL`: each script loaded in the real shell, asked what it completes.

bash: the completion function called with COMP_WORDS/COMP_CWORD as readline sets them (a word
split at "=", as COMP_WORDBREAKS does). zsh: an interactive zsh on a pseudo-terminal, after
compinit, typing a line and TAB, with compadd wrapped to write what it was given to match.
fish: `complete -C LINE`. Every command of the table must complete in all three.
"""

import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from sessionward.cli.main import COMMANDS

from helpers import SESSIONWARD, VENV_BIN, run_cli, skip_or_fail

SHELLS = ("bash", "zsh", "fish")
END = "__sessionward_test_end__"


def _env(tmp_path) -> dict:
    # the scripts run `sessionward completion --values KIND`: the launcher under test, by PATH
    return dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ["PATH"], ZDOTDIR=str(tmp_path))


def _script(shell: str, tmp_path) -> str:
    path = tmp_path / f"completion.{shell}"
    done = run_cli("completion", shell)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    path.write_text(done.stdout)
    return str(path)


def _need(shell: str) -> None:
    if shutil.which(shell) is None:  # scripts/test installs all three from Debian's packages
        skip_or_fail(f"{shell} is not installed (Debian: apt-get install {shell})")


def _bash_words(line: str) -> list[str]:
    """The words bash's readline gives a completion function: split at blanks, and around
    "=" (in COMP_WORDBREAKS); a line ending in a blank has an empty word last."""
    words = []
    for word in line.split(" "):
        if "=" in word and word.startswith("-"):
            name, _, value = word.partition("=")
            words += [name, "="] + ([value] if value else [])
        else:
            words.append(word)
    return words


def complete_bash(lines: list[str], tmp_path) -> list[list[str]]:
    script = [f"source {_script('bash', tmp_path)}"]
    for line in lines:
        words = _bash_words(line)
        quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
        script += [f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; COMP_POINT={len(line)}",
                   "COMPREPLY=(); _sessionward", "printf '%s\\n' \"${COMPREPLY[@]}\"", f"echo {END}"]
    done = subprocess.run(["bash", "--norc", "-c", "\n".join(script)], capture_output=True, text=True,
                          env=_env(tmp_path), timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return _split(done.stdout, len(lines))


def complete_fish(lines: list[str], tmp_path) -> list[list[str]]:
    script = [f"source {_script('fish', tmp_path)}"]
    for line in lines:
        script += [f"complete -C '{line}'", f"echo {END}"]
    done = subprocess.run(["fish", "--no-config", "-c", "\n".join(script)], capture_output=True, text=True,
                          env=_env(tmp_path), timeout=120, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [[hit.split("\t")[0] for hit in hits] for hits in _split(done.stdout, len(lines))]


def _split(output: str, count: int) -> list[list[str]]:
    blocks = output.split(END + "\n")
    assert len(blocks) == count + 1 and blocks[-1] == "", output
    return [[hit for hit in block.splitlines() if hit] for block in blocks[:-1]]


def complete_zsh(lines: list[str], tmp_path) -> list[list[str]]:
    """One interactive zsh on a pseudo-terminal: each line typed with TAB, what compadd was
    asked to add (after matching) written to a file, the line killed (^U) after."""
    hits, ready = tmp_path / "zsh-hits", tmp_path / "zsh-ready"
    (tmp_path / ".zshrc").write_text(f"""
autoload -U compinit && compinit -u -d {tmp_path}/zcompdump
source {_script('zsh', tmp_path)}
zstyle ':completion:*' list-grouped false
compadd() {{
    if [[ ${{@[1,(i)(-|--)]}} == *-(O|A|D)\\ * ]]; then builtin compadd "$@"; return; fi
    local -a matched
    builtin compadd -A matched "$@"
    (( $#matched )) && print -rl -- $matched >> {hits}
    builtin compadd "$@"
}}
_sessionward_test_tab() {{ zle complete-word; print -r -- {END} >> {hits} }}
zle -N _sessionward_test_tab
bindkey '^I' _sessionward_test_tab
print -r -- ready > {ready}
""")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(tmp_path)
        os.execvpe("zsh", ["zsh", "-i"], _env(tmp_path))
    results = []
    try:
        _drain_until(fd, ready.exists)
        for line in lines:
            hits.write_text("")
            os.write(fd, (line + "\t").encode())
            _drain_until(fd, lambda: END in hits.read_text())
            results.append([hit for hit in hits.read_text().splitlines() if hit != END])
            os.write(fd, b"\x15")  # kill the line for the next one
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    return results


def _drain_until(fd: int, done, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "zsh did not answer"
        if select.select([fd], [], [], 0.05)[0]:
            os.read(fd, 65536)


COMPLETE = {"bash": complete_bash, "zsh": complete_zsh, "fish": complete_fish}


def complete(shell: str, lines: list[str], tmp_path) -> list[list[str]]:
    _need(shell)
    return COMPLETE[shell](lines, tmp_path)


@pytest.mark.parametrize("shell", SHELLS)
def test_every_command_of_the_table_completes(shell, tmp_path):
    """A command added to the table completes, with its subcommand and every option, in
    every shell; nothing else is offered as a command."""
    lines, wanted = [], []
    for command in COMMANDS:
        words = command.name.split()
        lines.append(f"sessionward {words[0][:-1]}")  # its first word, from all but one letter
        wanted.append({words[0]})
        if len(words) == 2:
            lines.append(f"sessionward {words[0]} {words[1][:-1]}")
            wanted.append({words[1]})
        lines.append(f"sessionward {command.name} --")
        wanted.append({o.name for o in command.opts} | {"--help"})
    lines.append("sessionward ")
    got = complete(shell, lines, tmp_path)
    for line, want, hits in zip(lines, wanted, got):
        assert want <= set(hits), f"{shell}: {line!r} offers {hits}, not all of {sorted(want)}"
    first_words = {c.name.split()[0] for c in COMMANDS}
    assert first_words <= set(got[-1]) <= first_words | {"--help", "--version"}, got[-1]


@pytest.mark.parametrize("shell", SHELLS)
def test_values_words_files_and_commands(shell, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes.md").write_text("x\n")
    lines = [
        "sessionward install --scope ",
        "sessionward install --scope=p",
        "sessionward completion ",
        "sessionward hook Pre",
        "sessionward note append note",
        "sessionward note write --text-file notes.",
        "sessionward register proj note",
        "sessionward lock run end -- sessionwar",
        "sessionward lock acquire --timeout 5 ",
    ]
    got = complete(shell, lines, tmp_path)
    assert set(got[0]) == {"user", "project"}
    assert [h.rpartition("=")[2] for h in got[1]] == ["project"]  # fish shows --scope=project
    assert set(got[2]) == {"bash", "zsh", "fish"}
    assert set(got[3]) == {"PreToolUse"}
    assert {h.rstrip("/") for h in got[4]} == {"notes", "notes.md"}  # a file argument: files and directories
    assert got[5] == ["notes.md"]
    assert {h.rstrip("/") for h in got[6]} == {"notes"}  # a directory argument: directories only
    assert "sessionward" in got[7]  # after `--`: a command
    assert got[8] == ["end"]  # the option's value was skipped: the lock name is next


@pytest.mark.parametrize("shell", SHELLS)
def test_dynamic_values_come_from_the_state(shell, tmp_path, keeper):
    session = run_cli("register", "proj-completion", str(tmp_path), "--pid", str(keeper), "--session",
                      "sess-completion-1", "--json")
    assert session.returncode == 0, session.stderr
    assert run_cli("lock", "acquire", "build-lock", "--pid", str(keeper)).returncode == 0
    got = complete(shell, [
        "sessionward unregister --session sess-",
        "sessionward check proj-",
        "sessionward lock status ",
        "sessionward unregister ",
        "sessionward prune --force sess-completion-1 sess",
    ], tmp_path)
    assert got[0] == ["sess-completion-1"]
    assert got[1] == ["proj-completion"]
    assert set(got[2]) == {"end", "build-lock"}
    assert got[3] == [str(keeper)]
    assert got[4] == ["sess-completion-1"]


def test_values_read_without_changing_anything(tmp_path, keeper):
    assert run_cli("completion", "--values", "session").stdout == ""
    assert run_cli("completion", "--values", "lock").stdout == "end\n"
    run_cli("register", "p", str(tmp_path), "--pid", str(keeper), "--session", "s-1", check=True)
    assert run_cli("completion", "--values", "session").stdout == "s-1\n"
    assert run_cli("completion", "--values", "pid").stdout == f"{keeper}\n"


@pytest.mark.parametrize("args", [("tcsh",), ("--values", "colour"), ()])
def test_bad_shell_or_kind_one_line_exit_2(args):
    done = run_cli("completion", *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("sessionward: completion: "), done.stderr


def test_shell_given_as_a_path():
    done = subprocess.run([SESSIONWARD, "completion", "/usr/bin/zsh"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("#compdef sessionward\n")
