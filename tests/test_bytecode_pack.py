"""The hooks' bytecode pack (sessionward._bytecode_pack), read by the launcher install writes.

* Through the installed launcher, every hook of a captured session (Claude Code 2.1.331's
  payloads) and the status line import every module of sessionward from the pack but the two
  the launcher needs to open it (`python -v` names each module read from a file).
* A module whose source changed since the pack was written is imported from its source (the
  new code runs), the others from the pack; a module added since is imported as usual; so is
  every module of another copy of the package imported first.
* A pack this process must not trust or cannot use is not used at all, and imports go on as
  usual: writable by others, another user's, a symlink, a FIFO, truncated, garbage, written by
  another Python. Nothing is printed, nothing fails.
* stale_modules (doctor's view) names changed, added and removed modules; doctor warns with
  them, and install writes the pack again.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sessionward
from sessionward import _bytecode_pack
from sessionward.install.hook_launcher import render_bytecode_pack

from helpers import make_git_repo, run_cli

PACKAGE_DIR = os.path.dirname(os.path.abspath(sessionward.__file__))
PAYLOADS = Path(__file__).parent / "hooks" / "payloads" / "2.1.331"
READ_FROM_A_FILE = re.compile(r"^# code object from '?(.*?)'?$", re.M)  # what `python -v` prints per .pyc or .py read


def read_from_files(stderr: str) -> set:
    """The sessionward modules (paths relative to the package) a `python -v` run read from files."""
    found = set()
    for path in READ_FROM_A_FILE.findall(stderr):
        source = path.replace("/__pycache__", "").split(".cpython-")[0].removesuffix(".py")
        if source.startswith(PACKAGE_DIR + os.sep):
            found.add(os.path.relpath(source, PACKAGE_DIR))
    return found


def captured_session(root: Path) -> list:
    """[(event, payload)] of the captured basic session, its /tmp/rc/<run> paths moved to root."""
    directory = PAYLOADS / "basic"
    calls = []
    for name in sorted(os.listdir(directory)):
        text = re.sub(r"/tmp/rc/[^/\"]+", str(root), (directory / name).read_text())
        payload = json.loads(text)["stdin_payload"]
        if isinstance(payload, dict):  # not a capture of a Bash tool's environment
            calls.append((payload["hook_event_name"], payload))
    return calls


def test_every_hook_and_the_status_line_import_sessionward_from_the_pack(tmp_path):
    run_cli("install", check=True)
    home = Path(os.environ["HOME"])
    launcher = home / ".claude" / "hooks" / "sessionward"
    assert (home / ".claude" / "hooks" / "sessionward.bytecode").is_file()
    make_git_repo(tmp_path / "proj")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for name in ("CLAUDE_PID", "PYTHONPYCACHEPREFIX"):  # the bytecode read from files is told by its path
        env.pop(name, None)
    events = {}
    for event, payload in captured_session(tmp_path):
        done = subprocess.run([sys.executable, "-v", "-S", str(launcher), "hook", event], input=json.dumps(payload),
                              capture_output=True, text=True, env=env, cwd=tmp_path / "proj", timeout=60)
        assert done.returncode == 0, (event, done.stderr[-2000:])
        assert read_from_files(done.stderr) == {"__init__", "_bytecode_pack"}, event
        events[event] = payload
    assert set(events) >= {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"}
    status = (PAYLOADS / "statusline" / "01-startup.json").read_text().replace("/tmp/rc/statusline", str(tmp_path))
    done = subprocess.run([sys.executable, "-v", "-S", str(launcher), "status-line"], input=status,
                          capture_output=True, text=True, env=env, cwd=tmp_path / "proj", timeout=60)
    assert done.returncode == 0 and done.stdout, done.stderr[-2000:]
    assert read_from_files(done.stderr) == {"__init__", "_bytecode_pack"}
    # The negative control: without the pack the same hook reads its modules from files.
    (home / ".claude" / "hooks" / "sessionward.bytecode").unlink()
    done = subprocess.run([sys.executable, "-v", "-S", str(launcher), "hook", "Stop"], input=json.dumps(events["Stop"]),
                          capture_output=True, text=True, env=env, cwd=tmp_path / "proj", timeout=60)
    assert done.returncode == 0 and {"hooks/__init__", "errors", "registry"} <= read_from_files(done.stderr)


@pytest.fixture
def package_copy(tmp_path):
    """A copy of the package (tmp/src/sessionward) and a pack of it (tmp/pack)."""
    src = tmp_path / "src"
    shutil.copytree(PACKAGE_DIR, src / "sessionward", ignore=shutil.ignore_patterns("__pycache__"))
    pack = tmp_path / "pack"
    pack.write_bytes(_bytecode_pack.render_pack(str(src / "sessionward"), "# a test's pack"))
    return src, pack


def import_through(src: Path, pack: Path, *modules: str) -> dict:
    """In a new interpreter: use_pack(pack), then import `modules` of the copy at src. Returns
    {"used": what use_pack said, module: [its loader's class, its __file__]}."""
    program = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(src)!r})\n"
        "from sessionward._bytecode_pack import use_pack\n"
        f"result = {{'used': use_pack({str(pack)!r})}}\n"
        f"for name in {list(modules)!r}:\n"
        "    module = __import__(name, fromlist=['_'])\n"
        "    result[name] = [type(module.__loader__).__name__, module.__file__, getattr(module, 'PACK_TEST_MARK', None)]\n"
        "print(json.dumps(result))\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", program], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert (done.returncode, done.stderr) == (0, ""), done
    return json.loads(done.stdout)


def test_a_module_is_served_from_the_pack_with_its_own_file_name(package_copy):
    src, pack = package_copy
    result = import_through(src, pack, "sessionward.errors", "sessionward.hooks", "sessionward.identity.life")
    assert result["used"] is True
    assert result["sessionward.errors"][:2] == ["_PackFinder", str(src / "sessionward" / "errors.py")]
    assert result["sessionward.hooks"][:2] == ["_PackFinder", str(src / "sessionward" / "hooks" / "__init__.py")]
    assert result["sessionward.identity.life"][0] == "_PackFinder"


def test_a_module_changed_since_is_imported_from_its_source(package_copy):
    src, pack = package_copy
    with open(src / "sessionward" / "_humanize.py", "a") as f:
        f.write("\nPACK_TEST_MARK = 'the source as it is now'\n")
    (src / "sessionward" / "added_since.py").write_text("PACK_TEST_MARK = 'added'\n")
    result = import_through(src, pack, "sessionward._humanize", "sessionward.added_since", "sessionward.errors")
    assert result["sessionward._humanize"] == ["SourceFileLoader", str(src / "sessionward" / "_humanize.py"),
                                               "the source as it is now"]
    assert result["sessionward.added_since"][0::2] == ["SourceFileLoader", "added"]
    assert result["sessionward.errors"][0] == "_PackFinder"  # unchanged: still from the pack
    assert _bytecode_pack.stale_modules(str(pack), str(src / "sessionward")) == [
        "sessionward._humanize", "sessionward.added_since"]
    (src / "sessionward" / "drafts.py").unlink()
    assert "sessionward.drafts" in _bytecode_pack.stale_modules(str(pack), str(src / "sessionward"))


def test_another_copy_of_the_package_imported_first_is_not_served_from_the_pack(package_copy, tmp_path):
    # The pack names its modules' sources: a package imported from another directory (a second
    # copy first on sys.path, as with PYTHONPATH) keeps its own submodules.
    src, pack = package_copy
    other = tmp_path / "other"
    shutil.copytree(src, other)
    with open(other / "sessionward" / "errors.py", "a") as f:
        f.write("\nPACK_TEST_MARK = 'the other copy'\n")
    result = import_through(other, pack, "sessionward.errors")
    assert result["used"] is True
    assert result["sessionward.errors"] == ["SourceFileLoader", str(other / "sessionward" / "errors.py"), "the other copy"]


def _group_writable(pack):
    pack.chmod(0o664)


def _another_users(pack):
    os.chown(pack, 65534, 65534)  # nobody's: its code would run as us


def _a_symlink(pack):
    target = pack.with_name("real-pack")
    pack.rename(target)
    pack.symlink_to(target)


def _a_fifo(pack):
    pack.unlink()
    os.mkfifo(pack)  # opened without O_NONBLOCK, it would hang the hook


def _truncated(pack):
    data = pack.read_bytes()
    pack.write_bytes(data[: len(data) // 2])


def _garbage(pack):
    pack.write_bytes(b"# a pack\n\xff\xff\x00\x00" + os.urandom(4096))


def _another_pythons(pack):
    data = pack.read_bytes()
    magic = _bytecode_pack._interpreter_magic()
    head = data.index(b"\n") + 1 + _bytecode_pack.INDEX_LENGTH_BYTES
    assert data.count(magic, head) >= 1
    pack.write_bytes(data[:head] + data[head:].replace(magic, b"\x00\x00\r\n", 1))


@pytest.mark.parametrize("spoil", [_group_writable, _another_users, _a_symlink, _a_fifo, _truncated, _garbage, _another_pythons],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_pack_it_must_not_trust_or_cannot_use_is_not_used(package_copy, spoil):
    src, pack = package_copy
    if spoil is _another_users and os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    assert import_through(src, pack, "sessionward.errors")["sessionward.errors"][0] == "_PackFinder"  # as written: used
    spoil(pack)
    result = import_through(src, pack, "sessionward.errors", "sessionward.hooks")
    assert result["used"] is False
    assert result["sessionward.errors"][0] == "SourceFileLoader"
    assert _bytecode_pack.stale_modules(str(pack), str(src / "sessionward")) is None


def test_doctor_names_what_is_out_of_date_and_install_writes_it_again(tmp_path):
    run_cli("install", check=True)
    home = Path(os.environ["HOME"])
    pack = home / ".claude" / "hooks" / "sessionward.bytecode"

    def hooks_check() -> dict:
        result = run_cli("doctor", "--json")
        [hooks] = [c for c in json.loads(result.stdout)["result"]["checks"] if c["name"] == "hooks"]
        return hooks

    assert hooks_check()["status"] == "ok"
    data = pack.read_bytes()
    pack.write_bytes(data.replace(b"sessionward.errors", b"sessionward.errorz", 1))  # as if errors.py were new
    hooks = hooks_check()
    assert hooks["status"] == "warn"
    assert re.search(r"its bytecode pack \S+sessionward\.bytecode is out of date for 2 module\(s\) "
                     r"\(sessionward\.errors, sessionward\.errorz\): each hook imports those the slow way", hooks["detail"])
    assert hooks["fix"] == "sessionward install (writes it again)"
    assert f"updated {pack}" in run_cli("install", check=True).stdout.splitlines()
    assert hooks_check()["status"] == "ok"
    pack.unlink()
    hooks = hooks_check()
    assert hooks["status"] == "warn" and "is missing or unusable: each hook imports sessionward the slow way" in hooks["detail"]


def test_install_writes_the_same_pack_twice_and_uninstall_removes_it():
    run_cli("install", check=True)
    pack = Path(os.environ["HOME"]) / ".claude" / "hooks" / "sessionward.bytecode"
    assert pack.read_bytes() == render_bytecode_pack()
    assert f"unchanged {pack}" in run_cli("install", check=True).stdout.splitlines()
    assert f"removed {pack}" in run_cli("uninstall", check=True).stdout.splitlines()
    assert not pack.exists()
