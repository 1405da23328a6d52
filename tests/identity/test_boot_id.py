"""A boot id that cannot be read means unknown, never "another boot" (real mount namespaces).

Each "masked" sessionward below runs under `unshare -m` (a mount namespace of its own, the
same PID namespace and hostname as the test), with /proc/sys/kernel/random/boot_id hidden
(an empty tmpfs over its directory: the file is missing) or emptied (an empty file bound over
it). Beside it, ordinary sessionward processes read the real boot id. Neither may sweep the
other's live session or take the other's live lock; the dead are still swept either way. A
boot id that is known on both sides and differs still means "rebooted".
"""

import json
import os
import shutil
import subprocess

import pytest

from helpers import SESSIONWARD, run_cli

pytestmark = pytest.mark.slow

BOOT_ID = "/proc/sys/kernel/random/boot_id"
OTHER_BOOT = "0badb007-0000-4000-8000-000000000001"


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_unshare = pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -m")


def _masking(how: str, tmp_path) -> str:
    """Shell lines that replace what this mount namespace sees at BOOT_ID."""
    if how == "missing":
        return f"mount -t tmpfs none {os.path.dirname(BOOT_ID)}"
    source = tmp_path / f"boot_id.{how}"
    source.write_text({"empty": "", "other": OTHER_BOOT + "\n"}[how])
    return f"mount --bind {source} {BOOT_ID}"


def masked_cli(how: str, tmp_path, *args):
    """`sessionward ARGS` in a mount namespace where the boot id is `how` (missing, empty, other)."""
    script = f'{_masking(how, tmp_path)} && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", SESSIONWARD, *args],
                          capture_output=True, text=True, timeout=60)


def _json(result) -> dict:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)["result"]


def _live_pids(result) -> set:
    return {s["owner"]["pid"] for s in _json(result)["sessions"]}


@pytest.fixture
def sleepers():
    procs = []

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(["sleep", "600"])
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@needs_unshare
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_unknown_boot_id_sweeps_nobody_alive_and_still_sweeps_the_dead(how, tmp_path, sleepers):
    work = tmp_path / "work"
    work.mkdir()
    plain, hidden, doomed_plain, doomed_hidden = (sleepers() for _ in range(4))
    run_cli("register", "p", str(work), "--pid", str(plain.pid), check=True)
    run_cli("register", "p", str(work), "--pid", str(doomed_plain.pid), check=True)
    for proc in (hidden, doomed_hidden):
        done = masked_cli(how, tmp_path, "register", "p", str(work), "--pid", str(proc.pid))
        assert done.returncode == 0, done.stderr
    everyone = {plain.pid, hidden.pid, doomed_plain.pid, doomed_hidden.pid}
    assert _live_pids(masked_cli(how, tmp_path, "list", "--json")) == everyone
    assert _live_pids(run_cli("list", "--json")) == everyone
    recorded = json.loads((tmp_path / "state" / "obsidian_sessions.json").read_text())["sessions"]
    assert {r["owner"]["boot_id"] for r in recorded.values() if r["owner"]["pid"] == hidden.pid} == {"unknown"}

    # The dead are still swept, whichever side registered them and whichever side looks.
    doomed_hidden.kill()
    doomed_hidden.wait()
    doomed_plain.kill()
    doomed_plain.wait()
    swept = _json(run_cli("prune", "--apply", "--json"))  # the plain side sweeps the masked side's dead
    assert {d["session"]["owner"]["pid"]: d["reason"] for d in swept["dead"]} == {
        doomed_hidden.pid: f"process {doomed_hidden.pid} is gone",
        doomed_plain.pid: f"process {doomed_plain.pid} is gone",
    }
    assert _live_pids(masked_cli(how, tmp_path, "list", "--json")) == {plain.pid, hidden.pid}


@needs_unshare
@pytest.mark.parametrize("how", ["missing", "empty"])
def test_unknown_boot_id_never_takes_a_live_lock_nor_loses_its_own(how, tmp_path, sleepers):
    plain, hidden = sleepers(), sleepers()
    taken = masked_cli(how, tmp_path, "lock", "acquire", "end", "--pid", str(hidden.pid), "--timeout", "0")
    assert taken.returncode == 0, taken.stderr
    refused = run_cli("lock", "acquire", "end", "--pid", str(plain.pid), "--timeout", "1")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"still held after 1.0 s by pid {hidden.pid} (sleep)" in refused.stderr
    assert (tmp_path / "state" / "end.lock").read_text() == f"{hidden.pid}\n"
    released = masked_cli(how, tmp_path, "lock", "release", "end", "--pid", str(hidden.pid))
    assert released.stdout == "released lock end\n", released.stderr

    run_cli("lock", "acquire", "end", "--pid", str(plain.pid), "--timeout", "0", check=True)
    refused = masked_cli(how, tmp_path, "lock", "acquire", "end", "--pid", str(hidden.pid), "--timeout", "1")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"still held after 1.0 s by pid {plain.pid} (sleep)" in refused.stderr
    assert (tmp_path / "state" / "end.lock").read_text() == f"{plain.pid}\n"

    # A dead holder is still taken over from the masked side.
    plain.kill()
    plain.wait()
    taken = masked_cli(how, tmp_path, "lock", "acquire", "end", "--pid", str(hidden.pid), "--timeout", "0")
    assert taken.returncode == 0, taken.stderr
    assert f"took over orphaned lock end from pid {plain.pid}" in taken.stderr
    assert f"process {plain.pid} is gone" in taken.stderr


@needs_unshare
def test_another_known_boot_id_on_this_hostname_still_means_rebooted(tmp_path, sleepers):
    work = tmp_path / "work"
    work.mkdir()
    alive = sleepers()
    done = masked_cli("other", tmp_path, "register", "p", str(work), "--pid", str(alive.pid))
    assert done.returncode == 0, done.stderr
    recorded = json.loads((tmp_path / "state" / "obsidian_sessions.json").read_text())["sessions"]
    assert [r["owner"]["boot_id"] for r in recorded.values()] == [OTHER_BOOT]
    swept = _json(run_cli("prune", "--apply", "--json"))
    assert [(d["session"]["owner"]["pid"], d["reason"]) for d in swept["dead"]] == [
        (alive.pid, "recorded before this machine rebooted")
    ]
