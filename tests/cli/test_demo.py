"""`sessionward demo` runs the real commands on real (then killed) processes, and cleans up.

Each part of the tour is asserted on what the real code printed (not on the demo's own
sentences alone), so a part that disappears, or stops doing what it says, fails here."""

import os
import re
import subprocess
import sys

from helpers import run_cli
from store.redis_server import redis_server  # noqa: F401 - a fixture


def section(out: str, start: str, end: str) -> str:
    assert start in out and end in out, (start, end)
    return out.split(start, 1)[1].split(end, 1)[0]


def test_demo_shows_every_scenario_and_leaves_nothing(tmp_path):
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # piped, paths print in full: the intro must not promise ~
    root = re.search(r"^in a throw-away home, (\S+); nothing of yours is read or changed\.$", out, re.M).group(1)
    pids = dict(re.findall(r"^\S+ \$ sessionward register --pid (\d+) --session \S+ --quiet   # session (\w),", out, re.M))
    pids = {letter: pid for pid, letter in pids.items()}
    assert sorted(pids) == ["A", "B", "C", "D", "E"], out
    ids = {m.group(2): m.group(1)[:8] for m in re.finditer(r"--pid \d+ --session (\S+) --quiet   # session (\w)", out)}

    # the registry: the three scenarios, from A's point of view
    for expected in [
        "STRONG WARNING: 1 session works in this same worktree",
        "WARNING: 2 sessions work on this project in other worktrees",
        "info: 1 session works on another project",
        "(exit status 1)",
        "dry run: 'sessionward prune --apply' removes them",
    ]:
        assert expected in out, expected
    killed = re.search(r"kill -9 (\d+)", out).group(1)
    assert killed == pids["E"]
    assert re.search(rf"^dead: session {ids['E']} \(project webapp, worktree \S+webapp-feature, pid {killed}\): process {killed} is gone$", out, re.M)
    assert re.search(rf"^sessionward: swept dead session {ids['E']} \(project webapp, pid {killed}\): process {killed} is gone$", out, re.M)
    # the list after the sweep: 4 live sessions, the killed one gone
    final = section(out, "No human needed", "The guards")
    assert len(re.findall(r"^[0-9a-f]{8}\t", final, re.M)) == 4
    assert f"\t{killed}\t" not in final

    # the guards, through the real hook: C's edit recorded, A's edit of that file denied
    # naming C, A's git checkout in the shared worktree asked naming C
    guards = section(out, "The guards", "/end saves")
    assert "$ sessionward hook PostToolUse < ~/payloads/c-edited-app.json" in guards
    deny = re.search(r'^\{"hookSpecificOutput":\{"hookEventName":"PreToolUse","permissionDecision":"deny",'
                     r'"permissionDecisionReason":"(.*)"\}\}$', guards, re.M)
    assert deny, guards
    assert deny.group(1).startswith(f"sessionward: session {ids['C']} (project webapp, worktree ~/src/webapp, "
                                    f"branch main, pid {pids['C']}) edited ~/src/webapp/app.py")
    assert "so sessionward stopped this edit" in deny.group(1)
    ask = re.search(r'^\{"hookSpecificOutput":\{"hookEventName":"PreToolUse","permissionDecision":"ask",'
                    r'"permissionDecisionReason":"(.*)"\}\}$', guards, re.M)
    assert ask, guards
    assert ask.group(1).startswith("sessionward: 'git checkout -b fix' moves HEAD or rewrites the index or files "
                                   f"of ~/src/webapp, where another session also works: session {ids['C']} ")

    # /end: A's step 0 finds B's save holding end, step 1 waits for it and takes the lock
    end = section(out, "/end saves", "Use it in Claude Code")
    assert re.search(rf"^sessionward: waiting for lock end \(0 s of 30 s\), held by pid \d+ \(\w+\), session {ids['B']}, "
                     r"project webapp, worktree \S+webapp-feature \(feature\), purpose: /end save, held for \d+s; "
                     r"still waiting: run the next step, 'lock acquire end --step 1'$", end, re.M), end
    waited = re.search(rf"^acquired lock end after ([\d.]+) s \(holder pid {pids['A']}, {re.escape(root)}/\.claude/end\.lock\)$",
                       end, re.M)
    assert waited, end
    assert float(waited.group(1)) >= 0.5  # it did wait for B's save (1.5 s, some of it before step 1)
    assert re.search(rf"^end: held by pid {pids['A']} \(claude\), session {ids['A']}, ", end, re.M), end
    assert "released lock end" in end

    # the way on from here, for Claude Code
    assert "Use it in Claude Code: 'sessionward install' adds its hooks" in out
    # nothing left behind: no directory, no process (sessions, watchers, B's save), no state in the user's home
    assert not os.path.exists(root)
    assert subprocess.run(["pgrep", "-f", root], capture_output=True).stdout == b""
    assert not (tmp_path / "home" / ".claude").exists()
    assert not (tmp_path / "state").exists()


def test_demo_on_a_terminal_shows_paths_under_the_throw_away_home_as_tilde(tmp_path):
    """On a terminal (a real pty, through script(1)) the intro says paths show as ~, and they do."""
    launcher = os.path.join(os.path.dirname(sys.executable), "sessionward")
    done = subprocess.run(["script", "-qec", f"{launcher} demo", "/dev/null"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "160"})
    out = done.stdout.replace("\r", "")
    assert re.search(r"^in a throw-away home, /\S+ \(~ below\); nothing of yours is read or changed\.$", out, re.M), out
    assert "  ~/src/webapp-feature  " in out, out
    assert "(holder pid " in out and ", ~/.claude/end.lock)" in out, out


def test_demo_leaves_the_users_store_and_settings_alone(tmp_path, redis_server):  # noqa: F811 - the fixture
    """With SESSIONWARD_STORE naming a shared store others use (and a setting that would
    change the story), the demo runs on its own local store: its sessions and its `end` lock
    never reach the server, and /end still waits for B's save. A store sessionward cannot
    use does not stop it either."""
    env = dict(os.environ, SESSIONWARD_STORE=redis_server.url, SESSIONWARD_EDIT_POLICY="warn")
    result = run_cli("demo", env=env)
    assert result.returncode == 0, result.stderr
    assert "stopped this edit" in result.stdout  # deny, the default: the user's "warn" set aside
    assert re.search(r"^acquired lock end after [\d.]+ s \(holder pid \d+, \S+/\.claude/end\.lock\)$", result.stdout, re.M)
    with redis_server.connect() as conn:
        assert conn.call("DBSIZE") == 0, conn.call("KEYS", "*")
    bad = run_cli("demo", env=dict(os.environ, SESSIONWARD_STORE="sqlite:///x"))
    assert bad.returncode == 0 and "(exit status 3)" not in bad.stdout, bad
