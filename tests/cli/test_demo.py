"""`sessionward demo` runs the real commands on real (then killed) processes, and cleans up."""

import os
import re
import subprocess

from helpers import run_cli


def test_demo_shows_every_scenario_and_leaves_nothing(tmp_path):
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    root = re.search(r"in a throw-away home, (\S+) \(~ below\)", out).group(1)
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
    assert re.search(rf"^swept dead session s-\w+ \(project webapp, pid {killed}\): process {killed} is gone$", out, re.M)
    # the final list: 4 live sessions, the killed one gone
    final = out.split("sessionward list")[-1]
    assert len(re.findall(r"^s-[0-9a-f]{8}\t", final, re.M)) == 4
    assert f"\t{killed}\t" not in final
    # nothing left behind: no directory, no process, no state in the user's home
    assert not os.path.exists(root)
    assert subprocess.run(["pgrep", "-f", root], capture_output=True).stdout == b""
    assert not (tmp_path / "home" / ".claude").exists()
    assert not (tmp_path / "state").exists()
