"""`sessionward demo` runs the real commands on real (then killed) processes, and cleans up."""

import os
import re
import subprocess
import sys

from helpers import run_cli


def test_demo_shows_every_scenario_and_leaves_nothing(tmp_path):
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # piped, paths print in full: the intro must not promise ~
    root = re.search(r"^in a throw-away home, (\S+); nothing of yours is read or changed\.$", out, re.M).group(1)
    for expected in [
        "STRONG WARNING: 1 session works in this same worktree",
        "WARNING: 2 sessions work on this project in other worktrees",
        "info: 1 session works on another project",
        "(exit status 1)",
        "dry run: 'sessionward prune --apply' removes them",
    ]:
        assert expected in out, expected
    killed = re.search(r"kill -9 (\d+)", out).group(1)
    assert re.search(rf"^dead: session s-\w+ \(project webapp, worktree \S+webapp-feature, pid {killed}\): process {killed} is gone$", out, re.M)
    assert re.search(rf"^sessionward: swept dead session s-\w+ \(project webapp, pid {killed}\): process {killed} is gone$", out, re.M)
    # the final list: 4 live sessions, the killed one gone
    final = out.split("sessionward list")[-1]
    assert len(re.findall(r"^s-[0-9a-f]{8}\t", final, re.M)) == 4
    assert f"\t{killed}\t" not in final
    # the way on from here, for Claude Code
    assert "Use it in Claude Code: 'sessionward install' adds its hooks" in out
    # nothing left behind: no directory, no process, no state in the user's home
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
