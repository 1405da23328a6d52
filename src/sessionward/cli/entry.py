"""The launcher's entry point. `sessionward hook <Event>` goes straight to the hook runner
(and `sessionward status-line` to its renderer),
without importing the command table, parser and renderer: Claude Code runs it before and
after every tool call, and those imports would be most of its cost. Everything else goes
to cli.main.

Out of memory (a `ulimit -v`, a cgroup limit) at any point: one line and the documented code
(hooks 1, failing open; commands 3, the environment), never a traceback. The line is made
of bytes prepared before anything can fail, and written with os.write: building a message
or a traceback needs memory that is not there.

Nor a hang. Near a memory limit CPython 3.11 to 3.13 can spin for ever: a MemoryError that
unwinds through a `with` or a `finally` needs a new int to do so, and when that allocation
fails too it tries the same handler again (CPython gh-132508, fixed in 3.14). Under `ulimit
-v` 140 to 300 KiB above the interpreter's start, `sessionward check` spun so in importlib
now and then, before any of sessionward's code could catch anything. So each launcher (scripts/
launcher/sessionward, install.hook_launcher, __main__) first asks for HEADROOM_BYTES, mapped
and given back at once without a page touched (microseconds), and says "out of memory" in
one line when the limit leaves less: no command or hook then runs out. The most any needs
above the interpreter's start, measured as the lowest `ulimit -v` it succeeds under: 4.3 MiB
(SessionEnd; `check` 3.2 MiB). The launchers spell the number and the two lines out: they
import nothing first (tests/torture/test_memory_limits.py holds them to these).
"""

import os
import sys

OUT_OF_MEMORY_HOOK = b"sessionward hook: out of memory (a memory limit such as ulimit -v?); the action goes on unguarded\n"
OUT_OF_MEMORY_CLI = (b"sessionward: out of memory (a memory limit such as ulimit -v?); "
                     b"the command stopped (state files are replaced whole or not at all)\n")


HEADROOM_BYTES = 16 << 20


def is_hook_call(argv: list) -> bool:
    """`hook EVENT ...` without -h/--help: it goes to sessionward.hooks.main, the one way into
    the hooks, before any parsing (here, and in cli.main for a call that starts there)."""
    own = argv[: argv.index("--")] if "--" in argv else argv  # after `--`: not options
    return argv[:1] == ["hook"] and "-h" not in own and "--help" not in own


def main() -> int:
    argv = sys.argv[1:]
    hook = is_hook_call(argv)
    if hook or argv == ["status-line"]:
        # A process of a few milliseconds that builds no cycle it needs freed: the cyclic
        # collector would only run during its imports (a few passes, about 0.7 ms of a hook,
        # docs/BENCHMARKS.md). Reference counting still frees everything as usual.
        import gc

        gc.disable()
    try:
        if hook:
            from sessionward.hooks import main as hook_main

            return hook_main(argv[1:])
        if argv == ["status-line"]:  # run every few seconds when a row changed: no parser, no renderer
            from sessionward.hooks.status_line import main as status_line_main

            return status_line_main()
        from sessionward.cli.main import main as cli_main

        return cli_main(argv)
    except (MemoryError, OSError, SystemError) as error:
        if _is_out_of_memory(error):
            return out_of_memory(hook)
        raise


def finish(code: int):
    """End the process with `code`: the launcher's last call. A hook's process ends at once
    (os._exit) once its streams are flushed: the interpreter's teardown (freeing every module
    and object: a few milliseconds, about a third of what sessionward adds to a hook) would
    only make Claude Code wait. Nothing needs it: a hook's state went through the atomic
    writer, it keeps no buffered file and no atexit handler, and the kernel drops its
    descriptors and flocks. Commands exit normally (sys.exit)."""
    if is_hook_call(sys.argv[1:]):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # Claude Code went away, as hooks.main allows
        os._exit(code)
    sys.exit(code)


def _is_out_of_memory(error: BaseException) -> bool:
    """errors.is_out_of_memory, imported only now (errors.py is not on every path this module
    serves). Failing to import it under a memory limit answers the question."""
    try:
        from sessionward.errors import is_out_of_memory
    except Exception:  # noqa: BLE001
        return True
    return is_out_of_memory(error)


def out_of_memory(hook: bool) -> int:
    """Say so in one line (prepared bytes, os.write) and return the exit code."""
    try:
        os.write(2, OUT_OF_MEMORY_HOOK if hook else OUT_OF_MEMORY_CLI)
    except OSError:
        pass
    return 1 if hook else 3
