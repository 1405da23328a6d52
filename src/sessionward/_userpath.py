"""A user's path, resolved the way the kernel resolves it: for writing a file the user names
(a note) by replacing it, without resolving links in user space.

Why not os.path.realpath: it follows every symlink blindly, so the kernel's own protection
(fs.protected_symlinks: in a sticky world-writable directory such as /tmp or a shared 1777
notes directory, a link is followed only by its owner, or when the directory's owner owns
it) never applies, and the path that is finally replaced is a plain string that may name
something else by the time it is used. Another user's link `standup.md -> ~you/.bashrc` in
a shared directory would have you replace your own .bashrc, where the shell's `>>` is
refused.

resolve_for_replace(path) -> Target: walks `path` one component at a time, each directory
opened relative to the previous one (dir_fd, O_NOFOLLOW), each symlink read and spliced in
as the kernel does ("/" restarts at the root, ".." is the physical parent), and applies the
protected_symlinks rule at every link followed, whatever the sysctl says: a link in a sticky
world-writable directory, owned neither by the caller nor by the directory's owner, is
refused (ForeignLink). It ends at the directory that holds the final file, opened for
reading (its descriptor is what the caller locks and replaces relative to), and the name
there. A dangling link at the end is refused (DanglingLink): creating its target would
create a file the path does not name yet. At most MAX_LINK_HOPS links, like the kernel.

open_as_given(path): the kernel's own open of the path, O_RDWR without O_CREAT or O_TRUNC,
non-blocking (a FIFO must not hang us), no controlling terminal: the kernel applies its
symlink protections and the caller's write permission. The caller compares the inode it got
with the one at the Target (Target.holds), so that only a file the caller could have written
through the path it gave is ever replaced.

It is a bug to replace anything at a Target without holding its directory's descriptor open:
the name is only meaningful relative to it.
"""

import os
import stat

from sessionward.errors import BadInput, DanglingLink, DirectoryUnreadable, ForeignLink, StateUnwritable

MAX_LINK_HOPS = 40  # the kernel's own limit (ELOOP beyond it)
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FLAGS = os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # never O_CREAT, never O_TRUNC


class Target:
    """Where a path ends: `dir_fd` (the holding directory, open O_RDONLY; the caller closes
    it), `name` in it, `real` (the path with every link expanded, for messages), and `exists`
    (a regular file is there now)."""

    __slots__ = ("dir_fd", "name", "real", "exists")

    def __init__(self, dir_fd: int, name: str, real: str, exists: bool) -> None:
        self.dir_fd = dir_fd
        self.name = name
        self.real = real
        self.exists = exists

    def holds(self, opened: int | None) -> bool:
        """Is the file at `name` now the one `opened` (the kernel's open of the given path),
        or still absent when the kernel found nothing (opened is None)?"""
        try:
            here = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return opened is None
        except OSError:
            return False
        if opened is None or not stat.S_ISREG(here.st_mode):
            return False
        there = os.fstat(opened)
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def open_as_given(path: str) -> int | None:
    """The kernel's open of `path` for reading and writing, or None when nothing is there.
    OSErrors (EACCES from the kernel's protections or permissions, ENXIO from a FIFO with no
    reader, ELOOP, EISDIR) are the caller's to report."""
    try:
        return os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None


def same_directory(path: str, dir_fd: int) -> bool:
    """Does the kernel, resolving `path` itself, reach the directory open as `dir_fd`?"""
    try:
        fd = os.open(path or ".", _PATH_FLAGS & ~os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        a, b = os.fstat(fd), os.fstat(dir_fd)
    finally:
        os.close(fd)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def resolve_for_replace(path: str) -> Target:
    """Walk `path` as the kernel would (see the module docstring). Raises BadInput when the
    path cannot name a regular file (a directory, a missing directory on the way, a loop),
    ForeignLink, DanglingLink, StateUnwritable for other OSErrors."""
    if path.endswith("/") or os.path.basename(path) in (".", ".."):
        raise BadInput(f"cannot write {path}: it is not a regular file")
    absolute = path.startswith("/")
    fd = _open_dir(path, "/" if absolute else ".", None)
    real = "/" if absolute else _cwd(path)
    pending = [c for c in path.split("/") if c]
    pending.reverse()  # a stack: the next component last
    hops = 0
    last_from_link = False
    try:
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                fd = _step(fd, _open_dir(path, "..", fd))
                real = os.path.dirname(real)
                continue
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if pending:
                    raise BadInput(f"cannot write {path}: no directory {os.path.join(real, part)}") from None
                if last_from_link:
                    raise DanglingLink(path, os.path.join(real, part)) from None
                return _target(path, fd, real, part, exists=False)
            except OSError as exc:
                raise StateUnwritable(os.path.join(real, part), exc) from None
            if stat.S_ISLNK(info.st_mode):
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise BadInput(f"cannot write {path}: too many levels of symbolic links")
                _refuse_foreign_link(path, fd, os.path.join(real, part), info)
                last_from_link = last_from_link or not pending
                link = os.readlink(part, dir_fd=fd)
                if not link:
                    raise BadInput(f"cannot write {path}: {os.path.join(real, part)} is an empty symlink")
                if link.startswith("/"):
                    fd = _step(fd, _open_dir(path, "/", None))
                    real = "/"
                # A target ending in "/" needs no check of its own: its last part is a directory
                # (refused below as not a regular file) or missing (a dangling link).
                pending.extend(reversed([c for c in link.split("/") if c]))
                continue
            if not pending:
                if not stat.S_ISREG(info.st_mode):
                    raise BadInput(f"cannot write {path}: it is not a regular file")
                return _target(path, fd, real, part, exists=True)
            if not stat.S_ISDIR(info.st_mode):
                raise BadInput(f"cannot write {path}: {os.path.join(real, part)} is not a directory")
            fd = _step(fd, _open_dir(path, part, fd))
            real = os.path.join(real, part)
        raise BadInput(f"cannot write {path}: it is not a regular file")  # it named a directory
    finally:
        if fd >= 0:
            os.close(fd)


# -- internals --------------------------------------------------------------------------------


def _cwd(path: str) -> str:
    try:
        return os.getcwd()
    except OSError as exc:
        raise StateUnwritable(path, exc) from None


def _open_dir(path: str, name: str, dir_fd: int | None) -> int:
    try:
        return os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        # ENOTDIR/ELOOP here: the component turned into something else since we looked.
        raise StateUnwritable(path, exc) from None


def _step(old: int, new: int) -> int:
    os.close(old)
    return new


def _refuse_foreign_link(path: str, dir_fd: int, link: str, info: os.stat_result) -> None:
    """The kernel's may_follow_link() (fs.protected_symlinks=1), applied even when it is 0."""
    if info.st_uid == os.geteuid():
        return
    parent = os.fstat(dir_fd)
    sticky_and_shared = parent.st_mode & stat.S_ISVTX and parent.st_mode & stat.S_IWOTH
    if sticky_and_shared and parent.st_uid != info.st_uid:
        raise ForeignLink(path, link, info.st_uid)


def _target(path: str, fd: int, directory: str, name: str, exists: bool) -> Target:
    """The holding directory reopened for reading: a flock needs a real open file (not
    O_PATH), and reading it is what the caller needs permission for."""
    try:
        readable = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
    except OSError as exc:
        raise DirectoryUnreadable(path, directory, exc) from None
    return Target(readable, name, os.path.join(directory, name), exists)
