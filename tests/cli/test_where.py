"""Where each session runs and how its liveness was told, as people and --json see it, with
real PID namespaces (`unshare -fp --mount-proc`, `-u` for a container's own hostname) and a
fake other kernel (another hostname and a boot id bound over /proc/sys/kernel/random/boot_id
in a mount namespace); and clearing by hand (`prune --force`, `lock release --force`).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from helpers import SESSIONWARD, make_git_repo, run_cli, run_on_a_terminal

pytestmark = pytest.mark.slow

BOOT_ID = "/proc/sys/kernel/random/boot_id"
OTHER_BOOT = "0badb007-0000-4000-8000-000000000002"


def _can_unshare() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-fpmu", "--mount-proc", "true"], capture_output=True).returncode == 0


needs_unshare = pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare -fpmu")


@pytest.fixture
def namespaces():
    """start(work, hostname=None, then="") -> (process, pid inside): a session registered from
    a new PID namespace (its own hostname too when given), owned by a `sleep` there."""
    started = []

    def start(work, hostname=None, extra=""):
        name = f"hostname {hostname}; " if hostname else ""
        script = (f"{name}sleep 600 & {SESSIONWARD} register webapp {work} --pid $! --quiet {extra} "
                  "&& echo $!; wait")
        proc = subprocess.Popen(["unshare", "-fp", "--mount-proc", *(["-u"] if hostname else []), "sh", "-c", script],
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        started.append(proc)
        line = proc.stdout.readline()
        assert line.strip().isdigit(), line
        return proc, int(line)

    yield start
    for proc in started:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def sleepers():
    procs = []

    def start() -> int:
        proc = subprocess.Popen(["sleep", "600"])
        procs.append(proc)
        return proc.pid

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def other_kernel(tmp_path, *args):
    """`sessionward ARGS` as if on another kernel: hostname devvm, another boot id."""
    fake = tmp_path / "boot_id.other"
    fake.write_text(OTHER_BOOT + "\n")
    script = f'hostname devvm && mount --bind {fake} {BOOT_ID} && exec "$@"'
    return subprocess.run(["unshare", "-mu", "sh", "-c", script, "sh", SESSIONWARD, *args],
                          capture_output=True, text=True, timeout=60)


def on_a_terminal(*args) -> str:
    """What `sessionward ARGS` prints on a terminal (a pty: the table, its notes)."""
    return run_on_a_terminal(*args)[1]


def piped_rows() -> dict:
    """`sessionward list` piped: {owner pid: {column: value}}."""
    header, *rows = run_cli("list", check=True).stdout.splitlines()
    columns = header.split("\t")
    return {int(r["PID"].split()[0]): r for r in (dict(zip(columns, row.split("\t"))) for row in rows)}


def listed() -> dict:
    return {s["owner"]["pid"]: s for s in json.loads(run_cli("list", "--json", check=True).stdout)["result"]["sessions"]}


@needs_unshare
def test_list_check_json_and_hooks_say_where_each_session_runs(tmp_path, namespaces, sleepers):
    work = make_git_repo(tmp_path / "webapp")
    host = sleepers()
    run_cli("register", "webapp", str(work), "--pid", str(host), "--quiet", check=True)
    _, in_sandbox = namespaces(work)
    _, in_container = namespaces(work, hostname="devbox")

    sessions = listed()
    sandbox_ns = sessions[in_sandbox]["owner"]["pidns"]
    assert sandbox_ns != sessions[host]["owner"]["pidns"]
    assert {pid: s["where"] for pid, s in sessions.items()} == {
        host: "here", in_sandbox: f"sandbox {sandbox_ns}", in_container: "container devbox"}
    assert sessions[host]["liveness"] == {"alive": True, "known": True, "how": "pid", "reason": f"process {host} is running"}
    assert sessions[in_container]["liveness"] == {
        "alive": True, "known": True, "how": "life lock",
        "reason": f"process {in_container} in container devbox is running (its watcher holds its life lock)"}

    rows = piped_rows()
    assert list(rows[host])[-2:] == ["WHERE", "ACTIVITY"]  # appended last: the older columns keep their places
    assert {pid: r["WHERE"] for pid, r in rows.items()} == {
        host: "here", in_sandbox: f"sandbox {sandbox_ns}", in_container: "container devbox"}

    shown = on_a_terminal("list")
    assert re.search(r"^\s+ID\s+PROJECT\s+WORKTREE\s+BRANCH\s+PID\s+WHERE\s+KIND\s+UP\s+SEEN\s+ACTIVITY\s+WITH YOU$", shown, re.M), shown
    assert re.search(rf"\s{in_container}\s+container devbox\s+other\s", shown), shown
    assert "\nliveness: 1 by PID, 2 by life lock\n" in shown, shown

    check = run_cli("check", "webapp", "--pid", str(host))
    assert check.returncode == 1
    assert f"  pid {in_container} in container devbox  alive by its life lock  up " in check.stdout, check.stdout
    assert f"  pid {in_sandbox} in a sandbox (PID namespace {sandbox_ns})  alive by its life lock  up " in check.stdout

    # The hooks name where, only when it is not here.
    start = subprocess.run(
        ["sh", "-c", f"CLAUDE_PID=$$ {SESSIONWARD} hook SessionStart; true"], cwd=work, text=True, capture_output=True,
        input=json.dumps({"session_id": str(uuid.uuid4()), "cwd": str(work), "hook_event_name": "SessionStart",
                          "source": "startup"}), timeout=60)
    answer = json.loads(start.stdout)
    head, _, named = answer["systemMessage"].partition(": s-")
    assert head == "sessionward: 3 other sessions in this worktree", answer["systemMessage"]
    wheres = sorted(re.fullmatch(r"[0-9a-f]{8} \(branch main, started \d+s ago(.*)\)", one).group(1)
                    for one in named.split(", s-"))
    assert wheres == ["", f", in a sandbox (PID namespace {sandbox_ns})", ", in container devbox"], answer["systemMessage"]
    context = answer["hookSpecificOutput"]["additionalContext"]
    assert f"pid {host}, up" in context and f"pid {in_container} in container devbox, up" in context, context
    git = subprocess.run(
        ["sh", "-c", f"CLAUDE_PID=$$ {SESSIONWARD} hook PreToolUse; true"], cwd=work, text=True, capture_output=True,
        input=json.dumps({"session_id": "s1", "cwd": str(work), "hook_event_name": "PreToolUse", "tool_name": "Bash",
                          "tool_input": {"command": "git stash"}}), timeout=60)
    reason = json.loads(git.stdout)["hookSpecificOutput"]["permissionDecisionReason"]
    assert f"pid {in_container} in container devbox" in reason or "and 1 more" in reason, reason
    assert f"pid {host}," in reason and f"pid {host} here" not in reason, reason


@needs_unshare
def test_prune_force_refuses_a_live_owner_in_a_container_and_removes_it_once_dead(tmp_path, namespaces):
    work = tmp_path / "work"
    work.mkdir()
    proc, in_container = namespaces(work, hostname="devbox")
    [sid] = [s["id"] for s in listed().values()]

    refused = run_cli("prune", "--force", sid)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"sessionward: refused, nothing removed: session {sid} (project webapp) is alive: process {in_container} in "
        f"container devbox is running (its watcher holds its life lock); stop it first (end that session, or kill "
        f"{in_container} where it runs): then it goes by itself\n")
    assert list(listed()) == [in_container]

    os.killpg(proc.pid, signal.SIGKILL)  # the whole namespace goes, its watchers with it
    proc.wait()
    deadline = time.monotonic() + 5
    while not json.loads(run_cli("prune", "--json").stdout)["result"]["dead"]:
        assert time.monotonic() < deadline, "the container's death was never noticed"
        time.sleep(0.05)
    removed = run_cli("prune", "--force", sid)
    assert (removed.returncode, removed.stderr) == (0, "")
    assert removed.stdout == (
        f"removed by hand: session {sid} (project webapp, worktree {work}, pid {in_container} in container devbox): "
        f"process {in_container} in container devbox has exited (its watcher is gone)\n")
    assert listed() == {}


@needs_unshare
def test_another_kernel_is_unknown_kept_by_prune_and_cleared_by_hand(tmp_path, sleepers):
    work = tmp_path / "work"
    work.mkdir()
    owner = sleepers()
    sid = str(uuid.uuid4())
    done = other_kernel(tmp_path, "register", "webapp", str(work), "--pid", str(owner), "--session", sid, "--quiet")
    assert done.returncode == 0, done.stderr
    done = other_kernel(tmp_path, "lock", "acquire", "end", "--pid", str(owner), "--timeout", "0", "--quiet")
    assert done.returncode == 0, done.stderr
    short = sid[:8]
    unknown = re.escape("unknown: on another kernel (devvm); last sign of life ") + r"\d+s ago"

    [session] = listed().values()
    assert session["where"] == "host devvm"
    assert session["liveness"]["known"] is False and session["liveness"]["alive"] is True
    assert session["liveness"]["how"] == "unknown" and re.fullmatch(unknown, session["liveness"]["reason"])
    assert piped_rows()[owner]["WHERE"] == "host devvm (unknown)"
    shown = on_a_terminal("list")
    assert re.search(rf"^   {short}  webapp .* host devvm \(unknown\) ", shown, re.M), shown
    assert re.search(rf"^{short}: {unknown}; never swept on age: once its owner is gone, clear it by hand with "
                     rf"'sessionward prune --force {short}'$", shown, re.M), shown

    for args in (("prune",), ("prune", "--apply")):
        out = run_cli(*args, check=True).stdout
        assert re.fullmatch(
            rf"no dead sessions\nunknown, kept: session {short} \(project webapp, worktree {work}, pid {owner} on devvm\): "
            rf"{unknown}; never swept on age: once its owner is gone, clear it by hand with "
            rf"'sessionward prune --force {short}'\n", out), out
    assert list(listed()) == [owner]

    doctor = {c["name"]: c for c in json.loads(run_cli("doctor", "--json").stdout)["result"]["checks"]}
    assert doctor["other kernels"]["status"] == "warn"
    assert re.fullmatch(rf"2 record\(s\) whose owner's liveness is unknown: session {short}: {unknown}; "
                        rf"lock end held by pid {owner}: {re.escape('unknown: on another kernel (devvm)')}; .*",
                        doctor["other kernels"]["detail"]), doctor["other kernels"]["detail"]
    assert "prune --force ID" in doctor["other kernels"]["fix"] and "Redis" in doctor["other kernels"]["fix"]

    status = run_cli("lock", "status", check=True).stdout
    assert re.fullmatch(rf"end: held by pid {owner} \(sleep\) on devvm, session [0-9a-f]{{8}}, project webapp, .*; "
                        rf"unknown: on another kernel \(devvm\); last sign of life \d+s ago; never swept on age: "
                        rf"once its owner is gone, clear it by hand with 'sessionward lock release end --force'\n",
                        status), status
    released = run_cli("lock", "release", "end", "--force", check=True).stdout
    assert re.fullmatch(rf"forcibly released lock end, held by pid {owner} \(sleep\) on devvm, session [0-9a-f]{{8}}, project webapp, .*; "
                        rf"unknown: on another kernel \(devvm\); last sign of life \d+s ago\n", released), released

    removed = run_cli("prune", "--force", short)
    assert removed.returncode == 0, removed.stderr
    assert re.fullmatch(rf"removed by hand: session {short} \(project webapp, worktree {work}, pid {owner} on devvm\): "
                        rf"{unknown}\n", removed.stdout), removed.stdout
    assert listed() == {}


def test_prune_force_ids_short_full_ambiguous_and_unknown(tmp_path, sleepers):
    work = tmp_path / "work"
    work.mkdir()
    ids = ["0123abcd-0000-4000-8000-000000000001", "0123abcd-0000-4000-8000-000000000002"]
    for sid in ids:
        run_cli("register", "p", str(work), "--pid", str(sleepers()), "--session", sid, "--quiet", check=True)
    ambiguous = run_cli("prune", "--force", "0123abcd")
    assert (ambiguous.returncode, ambiguous.stderr) == (
        2, f"sessionward: session id '0123abcd' names 2 sessions ({ids[0]}, {ids[1]}): give the full id\n")
    missing = run_cli("prune", "--force", "nosuch")
    assert (missing.returncode, missing.stderr) == (
        2, "sessionward: no session 'nosuch' is registered; 'sessionward list' shows the ids\n")
    for args in (("prune", "0123abcd"), ("prune", "--force"), ("prune", "--force", "--apply", ids[0])):
        usage = run_cli(*args)
        assert usage.returncode == 2 and usage.stderr.count("\n") == 1, usage.stderr
    # Alive here: refused by its full id too, nothing removed.
    refused = run_cli("prune", "--force", ids[0], ids[1])
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert len(listed()) == 2
