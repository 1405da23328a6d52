"""The exception table: every exception sessionward raises on purpose is defined in
sessionward.errors, and its exit code follows the documented table."""

import importlib
import pkgutil

import sessionward
from sessionward import errors

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
