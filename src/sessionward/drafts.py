"""Drafts: a note's text handed to sessionward in a private file, never on a command line.

Purpose: every local user can read a process's arguments (ps, /proc/PID/cmdline) while it
runs. Stdin keeps a note's text out of sessionward's own arguments, but not inside Claude
Code: its Bash tool runs each command as `/bin/bash -c "source <snapshot> && eval '<command>'"`,
so that wrapper shell's arguments hold the whole command, a heredoc and its text included,
for as long as it runs. Claude Code's Write tool writes a file from inside its own process,
with no command line; so /end has the model write each note's text to a draft with it, then
run `sessionward note append NOTE --text-file DRAFT`, which reads the draft and removes it.

  paths.drafts_dir()       $XDG_STATE_HOME/sessionward/drafts (default
                           ~/.local/state/...). Not under ~/.claude: Claude Code refuses its
                           Write tool in any path with a `.claude` component ("a sensitive
                           file"), allow rules notwithstanding (seen with 2.1.331).
  ensure_drafts_dir()      create it 0700 (and vet it): install does, and the PreToolUse hook
                           before every Write into it, since the Write tool itself would
                           create a missing directory 0755 and the draft 0644.
  leftover_drafts()        the files still in it, oldest first: notes' text an /end wrote and
                           did not hand over (doctor lists them; uninstall keeps them)
  read_text_file(path, max_bytes) -> TextFile
                           the text, if the file may carry it (the rules below).
  deliver(path, write, max_bytes) -> (write's result, TextFile)
                           read it, write(text), then remove it if it is a draft. A write that
                           fails keeps the file, and its error says where the text is.

A text file must be (else BadInput, exit 2; nothing is written, the file stays):
- named itself: its last component is not a symlink (O_NOFOLLOW), so the file read, and the
  draft removed, is the one named. Links in the directories above are followed as the kernel
  follows them.
- a regular file: not a directory, nor a FIFO (it would block) or a device.
- the caller's own: a file another user wrote would put their words in your note (and its
  removal, as a draft, would delete their file).
- private, readable by no other user: its mode gives group and others nothing, or it has one
  name (st_nlink 1) and some directory on its way up to /, owned by the caller, gives group
  and others no search permission (the drafts directory is kept 0700 for that). With POSIX
  ACLs the group bits are the mask, so this holds for named users and groups too. Root reads
  everything; a bind mount showing the directory elsewhere is not seen. A text others could
  read is refused, not used: it leaked already, but a save that worked anyway would go on
  leaking every time; the message says how to make it private.

Only a file inside the drafts directory is removed, after the note holds its text, and only
if its name still holds the file that was read. Any other file is the caller's and stays.
"""

import errno
import os
import stat

from sessionward import paths
from sessionward.errors import BadInput, SessionwardError

DRAFTS_DIR_MODE = 0o700
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC  # follows links, as the kernel's own walk
_GROUP_OTHER = 0o077
_GROUP_OTHER_SEARCH = 0o011
MAX_DEPTH = 4096  # directories walked up to / (a path is at most PATH_MAX = 4096 bytes)


def ensure_drafts_dir() -> str:
    """Create the drafts directory (0700) and vet it like the private state directory; a
    mode opened since (the Write tool creates missing directories 0755) is closed again."""
    drafts = paths.drafts_dir()
    if _drafts_identity() is not None and stat.S_IMODE(os.lstat(drafts).st_mode) & _GROUP_OTHER:
        try:
            os.chmod(drafts, DRAFTS_DIR_MODE)  # ours, a directory, not a link: vetted just above
        except OSError:
            pass  # the vetting below says what is wrong
    return paths.ensure_private_dir(drafts)


def leftover_drafts() -> list[str]:
    """The drafts still in the drafts directory, oldest first: each is a note's text that an
    /end wrote and did not hand over (a draft is removed once its note holds it)."""
    drafts = paths.drafts_dir()
    try:
        names = os.listdir(drafts)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(drafts, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        found.append((info.st_mtime, path))
    return [path for _, path in sorted(found)]


class TextFile:
    """A text file that was read: `path` as given, `data`, `is_draft` (inside the drafts
    directory), `removed` once remove_if_draft() removed it. close() when done."""

    __slots__ = ("path", "data", "is_draft", "removed", "_dir_fd", "_name", "_inode")

    def __init__(self, path: str, data: bytes, is_draft: bool, dir_fd: int, name: str, inode: tuple) -> None:
        self.path = path
        self.data = data
        self.is_draft = is_draft
        self.removed = False
        self._dir_fd = dir_fd
        self._name = name
        self._inode = inode

    def remove_if_draft(self) -> bool:
        """Remove a draft (never any other file) if its name still holds what was read."""
        if not self.is_draft:
            return False
        try:
            here = os.stat(self._name, dir_fd=self._dir_fd, follow_symlinks=False)
            if (here.st_dev, here.st_ino) == self._inode:
                os.unlink(self._name, dir_fd=self._dir_fd)
                self.removed = True
        except OSError:
            pass  # gone or replaced meanwhile: whatever is there now is not what we read
        return self.removed

    def close(self) -> None:
        if self._dir_fd >= 0:
            os.close(self._dir_fd)
            self._dir_fd = -1

    def to_json(self) -> dict:
        return {"path": self.path, "draft": self.is_draft, "removed": self.removed}


def deliver(path: str, write, max_bytes: int):
    """Read the text file at `path`, call write(text), and remove the file if it is a draft.
    Returns (what write returned, the TextFile). When write raises, the file stays and the
    error's hint says where the text is."""
    source = read_text_file(path, max_bytes)
    try:
        try:
            result = write(source.data)
        except SessionwardError as exc:
            kept = f"the text is still in {source.path}"
            exc.hint = f"{exc.hint}; {kept}" if exc.hint else kept
            raise
        source.remove_if_draft()
        return result, source
    finally:
        source.close()


def read_text_file(path: str, max_bytes: int) -> TextFile:
    """The text of the file at `path` (at most max_bytes + 1 bytes are read: the caller
    reports a larger one), if it may carry a note's text (see the module docstring)."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise BadInput("--text-file needs the path of a file")
    try:
        os.fsencode(path)  # argv's undecodable bytes survive (surrogate escapes); a lone surrogate cannot
    except UnicodeEncodeError:
        raise BadInput(f"--text-file {path[:80]!r} holds a lone surrogate: no file has that name") from None
    given = os.path.expanduser(path)
    head, name = os.path.split(given)
    if name in ("", ".", ".."):
        raise _refused(path, "it is not a regular file", "give a file's path")
    try:
        dir_fd = os.open(head or ".", _DIR_FLAGS)
    except OSError as exc:
        raise _unopenable(path, exc) from None
    try:
        try:
            fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise _unopenable(path, exc) from None
        try:
            info = os.fstat(fd)
            _vet(path, info)
            is_draft, closed = _walk_up(dir_fd)
            if info.st_mode & _GROUP_OTHER and not (closed and info.st_nlink == 1):
                raise _refused(
                    path, f"other users can read it (mode {stat.S_IMODE(info.st_mode):04o}, and no directory above it "
                    "is closed to them)", f"chmod 600 {path}, or write it in {paths.drafts_dir()}; nothing was written")
            data = _read(path, fd, max_bytes)
        finally:
            os.close(fd)
    except BaseException:
        os.close(dir_fd)
        raise
    return TextFile(path, data, is_draft, dir_fd, name, (info.st_dev, info.st_ino))


# -- internals --------------------------------------------------------------------------------


def _refused(path: str, why: str, hint: str) -> BadInput:
    return BadInput(f"refusing text file {path}: {why}", hint)


def _unopenable(path: str, exc: OSError) -> BadInput:
    if exc.errno == errno.ELOOP:
        return _refused(path, "it is a symlink", "give the file itself; nothing was written")
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return BadInput(f"no text file {path}", "write the text there first; nothing was written")
    return BadInput(f"cannot read text file {path}: {exc.strerror or exc}", "nothing was written")


def _vet(path: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise _refused(path, "it is a directory", "give a file's path; nothing was written")
    if not stat.S_ISREG(info.st_mode):
        raise _refused(path, "it is not a regular file", "give a file's path; nothing was written")
    if info.st_uid != os.geteuid():
        raise _refused(path, f"it belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})",
                       "write the text to a file of your own; nothing was written")


def _walk_up(dir_fd: int) -> tuple[bool, bool]:
    """Walk from the file's directory up to / by "..": (the drafts directory is on the way,
    some directory on the way is the caller's and closed to group and others)."""
    drafts = _drafts_identity()
    euid = os.geteuid()
    is_draft = closed = False
    current = dir_fd
    try:
        for _ in range(MAX_DEPTH):
            here = os.fstat(current)
            is_draft = is_draft or (here.st_dev, here.st_ino) == drafts
            closed = closed or (here.st_uid == euid and not here.st_mode & _GROUP_OTHER_SEARCH)
            try:
                parent = os.open("..", _DIR_FLAGS, dir_fd=current)
            except OSError:
                break  # cannot look further up: what was seen is what counts
            if current != dir_fd:
                os.close(current)
            current = parent
            up = os.fstat(current)
            if (up.st_dev, up.st_ino) == (here.st_dev, here.st_ino):
                break  # "/" is its own parent
    finally:
        if current != dir_fd:
            os.close(current)
    return is_draft, closed


def _drafts_identity() -> tuple | None:
    """(st_dev, st_ino) of the drafts directory, when it is one of the caller's (not a link)."""
    try:
        info = os.lstat(paths.drafts_dir())
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return None
    return info.st_dev, info.st_ino


def _read(path: str, fd: int, max_bytes: int) -> bytes:
    from sessionward._atomic import read_capped

    try:
        return read_capped(fd, max_bytes)
    except OSError as exc:
        raise SessionwardError(f"cannot read text file {path}: {exc.strerror or exc}", "nothing was written") from None
