"""The launcher Claude Code's hooks and status line run: ~/.claude/hooks/sessionward.

`sessionward install` (user scope) writes it beside the other files it manages and points
every hook and the status line at it; the commands it writes are still `<launcher> hook
<Event>`. It is the package's own launcher (scripts/launcher/sessionward) with two changes:

  - Python starts without `site` (`-S` on its first line). site scans site-packages and runs
    every .pth file there on each start, about a millisecond of a hook's 10 to 15; a hook
    runs on every tool call (docs/BENCHMARKS.md). The package's launcher cannot say `-S`:
    pip and uv write its first line themselves, without flags. (An interpreter path with a
    space, or too long for a #! line, gets pip's /bin/sh preamble instead: see shebang().)
  - So sessionward is imported from the directories install found it and its dependencies
    in (IMPORT_DIRS_OF), appended after the standard library. Should that fail (the
    environment moved or was upgraded since), site is run after all and the import tried
    again: slower, never broken; `sessionward install` writes the file again, and `doctor`
    says when it is out of date.

Beside it install writes the bytecode pack it imports sessionward's modules from
(sessionward._bytecode_pack: every module compiled into one file, one stat and one read a
module instead of the import system's search and cache checks, 0.7 to 1.7 ms of a hook's 20).
A module whose source changed since is imported from its source; doctor says when the pack is
out of date, and install writes it again.

Project scope (a repository's .claude/settings.json) keeps the package's launcher: the file
lives in the user's ~/.claude. Both files are SeedFiles: planned, written, recorded in the
manifest and removed by uninstall as the origin's files are (install.seed_paths).
"""

import os
import sys

from sessionward import paths
from sessionward.install.seed_paths import MANAGED_MARKER, SeedFile

HOOK_LAUNCHER_DIR = "hooks"  # under ~/.claude, where Claude Code's users keep their hook scripts
HOOK_LAUNCHER_NAME = "sessionward"  # the name install.hook_commands recognises as ours
BYTECODE_PACK_SUFFIX = ".bytecode"  # the pack beside it: HOOK_LAUNCHER_NAME + this
# The modules whose directories the launcher puts on sys.path: sessionward and its runtime
# dependencies (pyproject.toml), where this interpreter finds them.
IMPORT_DIRS_OF = ("sessionward", "tomli", "psutil")

TEMPLATE = '''{shebang}
# {marker}: the launcher of Claude Code's hooks and status line, written by
# `sessionward install` (sessionward/install/hook_launcher.py says why it exists). Python
# starts without `site` (-S): sessionward is imported from where install found it.
import sys

if not getattr(sys.flags, "safe_path", False):  # PYTHONSAFEPATH (3.11+) left this directory out
    del sys.path[0]  # this directory: a hook script named like a module must not shadow one
sys.path.extend({dirs!r})
try:
    bytes(16777216)  # room to run, mapped and given back untouched (cli/entry.py: HEADROOM_BYTES)
    try:
        from sessionward._bytecode_pack import use_pack

        use_pack({pack!r})  # the package's modules from one file: faster imports (sessionward/_bytecode_pack.py)
        from sessionward.cli.entry import finish, main
    except ImportError:  # moved or upgraded since `sessionward install`: found as usual
        import site

        site.main()
        from sessionward.cli.entry import finish, main
except (MemoryError, OSError, SystemError) as error:  # out of memory while importing: one line, no traceback
    if isinstance(error, OSError) and error.errno != 12:  # not ENOMEM (a SystemError: an allocation failed bare)
        raise
    import os
    hook = sys.argv[1:2] == ["hook"]  # cli/entry.py's lines: OUT_OF_MEMORY_HOOK, OUT_OF_MEMORY_CLI
    os.write(2, b"sessionward hook: out of memory (a memory limit such as ulimit -v?); the action goes on unguarded\\n"
             if hook else b"sessionward: out of memory (a memory limit such as ulimit -v?); the command stopped "
             b"(state files are replaced whole or not at all)\\n")
    sys.exit(1 if hook else 3)
finish(main())  # a hook ends without the interpreter's teardown (cli/entry.py)
'''


def hook_launcher_path() -> str:
    """~/.claude/hooks/sessionward ($CLAUDE_CONFIG_DIR/hooks/... when that is set)."""
    return os.path.join(paths.claude_dir(), HOOK_LAUNCHER_DIR, HOOK_LAUNCHER_NAME)


def import_dirs() -> list[str]:
    """Where this interpreter imports sessionward and its dependencies from, in that order."""
    import importlib.util

    dirs = []
    for name in IMPORT_DIRS_OF:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue  # not installed here: tomli is needed only before 3.11, psutil only off Linux
        package_dir = os.path.dirname(os.path.abspath(spec.origin))
        top = os.path.dirname(package_dir) if spec.submodule_search_locations else package_dir
        if top not in dirs:
            dirs.append(top)
    return dirs


# The kernel reads this much of a #! line (BINPRM_BUF_SIZE: 128 bytes before Linux 5.1, 256
# since; macOS 512): a longer one is cut, and the interpreter's path with it.
MAX_SHEBANG_BYTES = 127


def shebang(python: str) -> str:
    """`#!<python> -S`, or, when the kernel could not run that line (a path with a space, which
    it splits at, or a line longer than MAX_SHEBANG_BYTES: a venv deep in a home directory),
    pip's way round it: /bin/sh runs the file first and execs the interpreter on it, the same
    lines being a string Python skips. That costs a shell's start, only there. A path with a
    backslash or a line break is refused (SessionwardError, exit 3): inside that string
    Python would read its escapes."""
    line = f"#!{python} -S"
    if " " not in python and "\t" not in python and len(line.encode()) <= MAX_SHEBANG_BYTES:
        return line
    if "\\" in python or "\n" in python:  # Python would read escapes in it; sh, a second line
        from sessionward.errors import SessionwardError

        raise SessionwardError(f"the interpreter's path {python!r} holds a backslash or a line break, which the "
                               "hooks' launcher cannot carry", "install sessionward in an environment whose path has neither")
    import shlex

    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} -S \"$0\" \"$@\"\n' '''"


def render(python: str, dirs: list[str], pack: str) -> bytes:
    """The launcher for the interpreter `python`, importing from `dirs`, and from the bytecode
    pack at `pack` while it is current (bench/ writes one too)."""
    return TEMPLATE.format(shebang=shebang(python), marker=MANAGED_MARKER, dirs=dirs, pack=pack).encode()


def hook_launcher_file() -> SeedFile:
    return SeedFile(hook_launcher_path(), render(sys.executable, import_dirs(), bytecode_pack_path()), 0o755)


def bytecode_pack_path() -> str:
    """~/.claude/hooks/sessionward.bytecode: beside the launcher that reads it."""
    return hook_launcher_path() + BYTECODE_PACK_SUFFIX


# Marshal's bytes depend on the process as well as on the code (a string some module of the
# process also holds is written as a shared one), and before Python 3.11 a set's order on the
# hash seed: so the pack is compiled in a new interpreter that imports nothing else, with a
# fixed seed (given in its environment, which holds nothing else: not -I or -E, which would
# drop the seed too), and a second install finds it unchanged.
_RENDER_PACK = """import sys
sys.path.insert(0, sys.argv[1])
from sessionward._bytecode_pack import render_pack
sys.stdout.buffer.write(render_pack(sys.argv[2], sys.argv[3]))
"""


_rendered_packs: dict = {}  # the sources' paths, sizes and times -> their pack: one compile per process


def render_bytecode_pack() -> bytes:
    """The pack of the sessionward this interpreter imports (sessionward._bytecode_pack), its
    first line carrying install's managed-file marker: the same bytes for the same sources,
    compiled once per process for them (a plan is made more than once; tests install often)."""
    import sessionward
    from sessionward._bytecode_pack import package_sources

    package_dir = os.path.dirname(os.path.abspath(sessionward.__file__))
    try:
        key = tuple((path, info.st_size, info.st_mtime_ns)
                    for path in package_sources(package_dir).values() for info in [os.stat(path)])
    except OSError:
        return _compile_pack(package_dir)  # a source gone meanwhile: the compile says what is wrong
    if key not in _rendered_packs:
        _rendered_packs[key] = _compile_pack(package_dir)
    return _rendered_packs[key]


def _compile_pack(package_dir: str) -> bytes:
    import subprocess

    from sessionward.errors import SessionwardError

    first_line = (f"# {MANAGED_MARKER}: the bytecode of every sessionward module, which the hooks' launcher "
                  "imports from (sessionward/_bytecode_pack.py)")
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "")}
    try:
        done = subprocess.run([sys.executable, "-s", "-S", "-c", _RENDER_PACK, os.path.dirname(package_dir),
                               package_dir, first_line], capture_output=True, env=env, cwd=os.path.dirname(package_dir),
                              timeout=120)
    except (OSError, subprocess.SubprocessError) as error:  # no process to spare, or it hung
        last = str(error)
    else:
        if done.returncode == 0:
            return done.stdout
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
    raise SessionwardError(f"could not compile sessionward's modules for the hooks: {last}",
                           "check that every file of the package can be read; nothing was changed")


def bytecode_pack_file() -> SeedFile:
    """The pack as install writes it: read by the launcher only, so not executable."""
    return SeedFile(bytecode_pack_path(), render_bytecode_pack(), 0o644)
