"""The hooks' bytecode pack: every module of the package, compiled, in one file the hooks'
launcher imports from.

Why: a hook is a new interpreter on every tool call, and imports are half of what sessionward
adds to it. Through the usual import system each of the 25 to 30 modules a hook loads costs
a search of the path, two stats, an open and a read of its .pyc, and Python code to check
the cache: 0.7 to 1.7 ms in all of a hook's 20, outside Claude Code (docs/BENCHMARKS.md,
"The hooks' bytecode pack"). From the pack a module costs one stat of its source and one
pread: the index says where its code lies, so a hook reads only the modules it imports.

Who writes it: `sessionward install` (user scope), beside the hooks' launcher, as one of its
managed files (install/hook_launcher.py: bytecode_pack_file); uninstall removes it. Who
reads it: that launcher, which calls use_pack() before importing anything else of
sessionward. Nothing else imports from it: the CLI, the API and tests import as usual.

Format: one line naming the file (it holds install's managed-file marker), then the index's
length (4 bytes, little-endian), the index (marshal: format, the writer's bytecode magic and
optimisation level, the code's length in all, and per module its source's path, whether it
is a package, the source's st_mtime_ns and st_size, where its code lies and how long it is),
then each module's code object, marshalled, one after the other. Install writes it
atomically (temp file, rename), so a reader sees a whole pack or the one before.

What it does not change: which code runs. A module is served from the pack only while its
source file has the size and modification time it had when the pack was written (checked by
one stat at its import, as Python checks a .pyc). A changed source (sessionward upgraded or
edited since install) is imported from disk as usual, so old and new code never mix: a
module served from the pack is byte for byte the source beside it. A pack written by
another Python, or unreadable, corrupt, not a regular file of this user's, or writable by
others, is not used at all. Every failure means the usual, slower import, never an error:
`sessionward doctor` says when the pack is out of date, and `sessionward install` writes it
again. Modules keep their `__file__` (the source), so tracebacks and linecache read the
source as usual. Only the copy of the package the pack was written from is served: a
submodule whose package was imported from elsewhere (another copy first on PYTHONPATH) is
that copy's, imported as usual.
"""

import marshal
import os
import sys

PACK_FORMAT = 1
INDEX_LENGTH_BYTES = 4
_FIRST_READ_BYTES = 64 * 1024  # the first line, the length and the index, in one read most often


def _interpreter_magic() -> bytes:
    """The bytecode magic number of this interpreter (importlib's MAGIC_NUMBER), from the
    import system's own module: always loaded, so this imports nothing."""
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


class _PackFinder:
    """The meta path finder and loader serving the pack's modules (use_pack)."""

    def __init__(self, fd: int, base: int, modules: dict) -> None:
        self._fd = fd
        self._base = base
        self._modules = modules
        self._spec_type = type(sys.__spec__)  # importlib's ModuleSpec, without importing importlib

    def find_spec(self, name: str, path=None, target=None):
        entry = self._modules.get(name)
        if entry is None:
            return None
        origin, is_package, mtime_ns, size, offset, length = entry
        home = os.path.dirname(os.path.dirname(origin) if is_package else origin)  # the directory it is found in
        if path is not None and home not in path:
            return None  # a submodule of another copy of the package (PYTHONPATH's, say): not ours to serve
        try:
            if not _source_unchanged(origin, mtime_ns, size):
                raise ValueError("changed since the pack was written")
            data = os.pread(self._fd, length, self._base + offset)
            if len(data) != length:
                raise ValueError("the pack is shorter than its index says")
            code = marshal.loads(data)
        except (OSError, ValueError, EOFError, TypeError):
            del self._modules[name]  # imported from its source, as usual, now and next time
            return None
        spec = self._spec_type(name, self, origin=origin, is_package=is_package)  # type: ignore[arg-type]
        spec.has_location = True  # __file__ is the source's path
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        spec.loader_state = code
        return spec

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module) -> None:
        spec = module.__spec__
        code, spec.loader_state = spec.loader_state, None
        exec(code, module.__dict__)


def _source_unchanged(origin: str, mtime_ns: int, size: int) -> bool:
    """Whether the source at `origin` still has the st_mtime_ns and size the pack recorded for
    it (its code in the pack is then what the source compiles to). Raises OSError."""
    source = os.stat(origin)
    return source.st_mtime_ns == mtime_ns and source.st_size == size


def use_pack(path: str) -> bool:
    """Import sessionward's modules from the pack at `path` from now on, each while its source
    is unchanged. True when the pack is in use; False (nothing changed) when there is none, or
    it cannot be trusted or read, or another Python wrote it. Never raises."""
    opened = _open_pack(path)
    if opened is None:
        return False
    sys.meta_path.insert(0, _PackFinder(*opened))  # its descriptor stays open: the finder reads from it
    return True


def _open_pack(path: str) -> tuple[int, int, dict] | None:
    """(an open descriptor of the pack, where its code begins, its modules' entries), or None
    when this process may not use it (_read_index) or cannot open or read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO there: no wait
    except OSError:
        return None
    try:
        found = _read_index(fd)
    except Exception:  # noqa: BLE001 - whatever is wrong with it (or with this Python), the usual imports work
        found = None
    if found is None:
        os.close(fd)
        return None
    return fd, *found


def _read_index(fd: int) -> tuple[int, dict] | None:
    """(where the code begins, the modules' entries) of a pack this process may use; None when
    it may not: not a regular file owned by this user, writable by others, or written by
    another Python or at another optimisation level."""
    info = os.fstat(fd)
    if not (info.st_mode & 0o170000 == 0o100000 and info.st_uid == os.geteuid() and not info.st_mode & 0o022):
        return None  # its code would run as this user: only this user may have written it
    head = os.pread(fd, _FIRST_READ_BYTES, 0)
    start = head.index(b"\n") + 1 + INDEX_LENGTH_BYTES
    length = int.from_bytes(head[start - INDEX_LENGTH_BYTES:start], "little")
    if start + length > len(head):
        head = os.pread(fd, start + length, 0)
    index = marshal.loads(head[start:start + length])
    if (index["format"], index["magic"], index["optimize"]) != (PACK_FORMAT, _interpreter_magic(), sys.flags.optimize):
        return None
    if info.st_size != start + length + index["code_bytes"]:
        return None  # cut short (or grown): not the file install wrote
    return start + length, index["modules"]


# -- writing (install) and checking (doctor) -------------------------------------------------


def package_sources(package_dir: str, package: str = "sessionward") -> dict:
    """{module name: source path} of every module of the package at `package_dir`: each .py
    file in it and in its subpackages (directories with an __init__.py, reached through
    others that have one)."""
    found = {}
    for directory, subdirs, files in os.walk(package_dir):
        if "__init__.py" not in files:
            subdirs[:] = []  # not a package: nothing below it is importable as ours
            continue
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        relative = os.path.relpath(directory, package_dir)
        prefix = package if relative == os.curdir else f"{package}.{relative.replace(os.sep, '.')}"
        for name in sorted(files):
            if name.endswith(".py"):
                module = prefix if name == "__init__.py" else f"{prefix}.{name[:-3]}"
                found[module] = os.path.join(directory, name)
    return found


def render_pack(package_dir: str, first_line: str) -> bytes:
    """The pack of the package at `package_dir`, compiled by this interpreter as an import
    would (no optimisation beyond this process's -O). `first_line`: what the file says it is
    (without a line break)."""
    modules, chunks, offset = {}, [], 0
    for module, source_path in package_sources(package_dir).items():
        source = os.stat(source_path)  # before the read: a change meanwhile makes the entry stale, not wrong
        with open(source_path, "rb") as f:
            text = f.read()
        code = marshal.dumps(compile(text, source_path, "exec", dont_inherit=True))
        is_package = os.path.basename(source_path) == "__init__.py"
        modules[module] = (source_path, is_package, source.st_mtime_ns, source.st_size, offset, len(code))
        chunks.append(code)
        offset += len(code)
    index = marshal.dumps({"format": PACK_FORMAT, "magic": _interpreter_magic(), "optimize": sys.flags.optimize,
                           "code_bytes": offset, "modules": modules})
    if "\n" in first_line:
        raise ValueError("the pack's first line holds a line break")
    return first_line.encode() + b"\n" + len(index).to_bytes(INDEX_LENGTH_BYTES, "little") + index + b"".join(chunks)


def stale_modules(path: str, package_dir: str) -> list[str] | None:
    """The modules the pack at `path` would not serve (a source changed, added or removed
    since it was written), sorted; [] when it serves them all; None when it would not be used
    at all (missing, untrusted, unreadable, or another Python's)."""
    opened = _open_pack(path)
    if opened is None:
        return None
    fd, _, packed = opened
    os.close(fd)
    stale = set(package_sources(package_dir)) ^ set(packed)
    for module, (origin, _, mtime_ns, size, _, _) in packed.items():
        try:
            if not _source_unchanged(origin, mtime_ns, size):
                stale.add(module)
        except OSError:
            stale.add(module)
    return sorted(stale)
