"""The exception table: every exception sessionward raises on purpose is defined in
sessionward.errors, and its exit code follows the documented table."""

import importlib
import pkgutil

import sessionward
from sessionward import errors
from sessionward.cli.entry import OUT_OF_MEMORY_CLI

SCRIPTS = ("sessionward.__main__", "sessionward.seed.obsidian_session_manager", "sessionward.identity._watcher",
           "sessionward.identity._watching")  # they run on import


def all_errors() -> list:
    for module in pkgutil.walk_packages(sessionward.__path__, "sessionward."):
        if module.name not in SCRIPTS:
            importlib.import_module(module.name)
    found, todo = [], [errors.SessionwardError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_sessionward_error_is_defined_in_errors():
    elsewhere = sorted(f"{c.__module__}.{c.__qualname__}" for c in all_errors() if c.__module__ != "sessionward.errors")
    assert elsewhere == []


def test_every_timeout_is_a_conflict_exit_1():
    timeouts = [c for c in all_errors() if issubclass(c, TimeoutError)]
    assert {c.__name__ for c in timeouts} >= {"LockTimeout", "ClaimsLockTimeout", "NoteLockTimeout", "RegistryLockTimeout", "GuardTimeout"}
    assert {c.__name__: c.exit_code for c in timeouts} == {c.__name__: errors.EXIT_CONFLICT for c in timeouts}


def test_every_exit_code_is_in_the_table():
    assert {c.exit_code for c in all_errors()} <= set(errors.EXIT_CODES)


# -- out of memory ------------------------------------------------------------------------------
# CPython now and then fails an allocation without setting MemoryError; its caller then raises
# SystemError ("error return without exception set"). Seen once in a few hundred runs of
# `sessionward list` under `ulimit -v` at the interpreter's edge (tests/torture/
# test_memory_limits.py): a traceback. Here the SystemError is raised on purpose, at the same
# place (an import), under a limit high enough for everything else to work.

ROOMY_LIMIT_KIB = 8 * 1024 * 1024  # a limit is set, and nothing runs short under it
RAISE_SYSTEM_ERROR_ON_IMPORT = '''
import sys

class Fails:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise SystemError("error return without exception set")

sys.meta_path.insert(0, Fails())
'''


def _run_with_import_failing(tmp_path, module: str, argv: list, limited: bool, stdin: bytes = b""):
    import os
    import subprocess

    from helpers import SESSIONWARD

    (tmp_path / "sitecustomize.py").write_text(RAISE_SYSTEM_ERROR_ON_IMPORT.format(module=module))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)}
    env.pop("SESSIONWARD_DEBUG", None)
    limit = f"ulimit -v {ROOMY_LIMIT_KIB}; " if limited else ""
    return subprocess.run(["bash", "-c", limit + 'exec "$@"', "-", SESSIONWARD, *argv], input=stdin,
                          capture_output=True, env=env, timeout=60)


def test_a_bare_system_error_under_a_memory_limit_is_out_of_memory(tmp_path):
    done = _run_with_import_failing(tmp_path, "sessionward.cli.main", ["list"], limited=True)
    assert done.returncode == errors.EXIT_ENVIRONMENT, done
    assert done.stderr.startswith(b"sessionward: out of memory") and done.stderr.count(b"\n") == 1, done.stderr
    hook = _run_with_import_failing(tmp_path, "sessionward.hooks.pre_tool_use", ["hook", "PreToolUse"], limited=True,
                                    stdin=b'{"session_id": "s", "cwd": "/tmp", "hook_event_name": "PreToolUse", '
                                          b'"tool_name": "Read", "tool_input": {}}')
    assert hook.returncode == 1 and b"out of memory" in hook.stderr and hook.stderr.count(b"\n") == 1, hook
    # the launcher's own first import (it cannot import errors.py to ask: it says so outright)
    first = _run_with_import_failing(tmp_path, "sessionward.cli.entry", ["list"], limited=True)
    assert (first.returncode, first.stderr) == (3, OUT_OF_MEMORY_CLI)


def test_a_system_error_without_a_memory_limit_is_a_bug_and_says_so(tmp_path):
    """The control: the same failure with no limit set is not called out of memory."""
    done = _run_with_import_failing(tmp_path, "sessionward.cli.main", ["list"], limited=False)
    assert b"out of memory" not in done.stderr and b"SystemError" in done.stderr, done
    hook = _run_with_import_failing(tmp_path, "sessionward.hooks.pre_tool_use", ["hook", "PreToolUse"], limited=False,
                                    stdin=b'{"session_id": "s", "cwd": "/tmp", "hook_event_name": "PreToolUse", '
                                          b'"tool_name": "Read", "tool_input": {}}')
    assert hook.returncode == 1 and b"internal error: SystemError" in hook.stderr, hook


def test_memory_is_limited_reads_the_process_limits():
    import resource
    import subprocess
    import sys

    probe = ("import resource, sys; from sessionward.errors import memory_is_limited, is_out_of_memory; "
             "print(memory_is_limited(), is_out_of_memory(SystemError()))")
    free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    limited = subprocess.run(["bash", "-c", f"ulimit -v {ROOMY_LIMIT_KIB}; exec \"$@\"", "-", sys.executable, "-c", probe],
                             capture_output=True, text=True, check=True)
    unlimited_here = all(resource.getrlimit(r)[0] == resource.RLIM_INFINITY for r in (resource.RLIMIT_AS, resource.RLIMIT_DATA))
    assert limited.stdout.split() == ["True", "True"]
    if unlimited_here:
        assert free.stdout.split() == ["False", "False"]
    assert errors.is_out_of_memory(MemoryError()) and errors.is_out_of_memory(OSError(12, "Cannot allocate memory"))
    assert not errors.is_out_of_memory(OSError(2, "No such file")) and not errors.is_out_of_memory(ValueError())
