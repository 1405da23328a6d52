"""The shell helpers under bats-core, in bash and zsh (see helpers.bats)."""

import os
import shutil
import subprocess
import sys

from helpers import SESSIONWARD, run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
BATS = os.path.join(os.path.dirname(sys.executable), "bats")
SHELLS = [sh for sh in ("bash", "zsh") if shutil.which(sh)]


def test_both_shells_are_here():
    # scripts/test installs zsh; without it half of what the helpers promise goes untested.
    assert SHELLS == ["bash", "zsh"]


def test_helpers_under_bats(tmp_path):
    run_cli("install", "--seed-paths", check=True)
    env = dict(os.environ, SW=SESSIONWARD, SHELLS=" ".join(SHELLS), PATH=os.path.dirname(SESSIONWARD) + os.pathsep + os.environ["PATH"])
    result = subprocess.run([BATS, "--tap", os.path.join(HERE, "helpers.bats")], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not ok" not in result.stdout
    assert result.stdout.count("\nok ") + result.stdout.startswith("ok ") >= 13, result.stdout
