"""What install created, so that uninstall removes exactly that and nothing the user changed.

  <private>/installed.json   (0600; <private> is sessionward's private state directory)
    {"schema": "sessionward/1",
     "installs": {"<claude home>": {                 one per scope installed: ~/.claude, <repo>/.claude
        "settings_created": true,                    settings.json did not exist before install
        "files": {"/abs/path": {"sha256": HEX,        the bytes install left there
                                "restores": PATH}},   the user's own file install moved aside, or null
        "dirs": ["/abs/dir", ...]}}}                  directories install made (absent before it)

Install records, under its scope's claude home, every file it leaves holding sessionward's
bytes (created, updated, or found unchanged), every directory it had to make, and whether
settings.json was new. Uninstall removes a recorded file only while its bytes still hash to
the recorded SHA-256 (else: "changed since install", kept), removes a recorded directory only
when empty, and forgets what is gone. A file with no record (written by a sessionward older
than this manifest) is judged by its content: exactly what install writes today is ours.

Neither the state directory nor its private directory is ever recorded: they hold this file
and the live sessions' state, which uninstall leaves alone.

load() and save() run under the installer lock (settings.installer_lock). A manifest that
cannot be parsed is kept aside (installed.json.corrupt-STAMP-RAND) and read as empty, which
only makes uninstall more careful; one with a newer schema is refused (StateTooNew).
"""

import hashlib
import os

from sessionward import _jsoncodec as jsoncodec, paths
from sessionward._atomic import keep_aside, read_file_nofollow, unlink_if_present, unlink_quietly, write_file_atomic
from sessionward.errors import StateTooNew

MANIFEST_NAME = "installed.json"
SCHEMA = "sessionward/1"


def manifest_path() -> str:
    return os.path.join(paths.private_dir(), MANIFEST_NAME)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Install:
    """What one scope's install created (see the module docstring)."""

    __slots__ = ("settings_created", "files", "dirs")

    def __init__(self, entry: dict | None = None) -> None:
        entry = entry if isinstance(entry, dict) else {}
        self.settings_created = entry.get("settings_created") is True
        files = entry.get("files")
        self.files: dict[str, dict] = {
            path: {"sha256": rec.get("sha256"), "restores": rec.get("restores")}
            for path, rec in (files.items() if isinstance(files, dict) else ())
            if isinstance(path, str) and isinstance(rec, dict) and isinstance(rec.get("sha256"), str)
        }
        dirs = entry.get("dirs")
        self.dirs: list[str] = [d for d in (dirs if isinstance(dirs, list) else ()) if isinstance(d, str)]

    def record_file(self, path: str, content: bytes, restores: str | None = None) -> None:
        previous = self.files.get(path, {}).get("restores")
        self.files[path] = {"sha256": digest(content), "restores": restores or previous}

    def forget_file(self, path: str) -> None:
        self.files.pop(path, None)

    def unchanged_since_install(self, path: str, current: bytes) -> bool | None:
        """True/False: `current` is/is not what install left at `path`; None: no record."""
        record = self.files.get(path)
        return None if record is None else record["sha256"] == digest(current)

    def restores(self, path: str) -> str | None:
        return self.files.get(path, {}).get("restores")

    def record_dirs(self, made: list[str]) -> None:
        self.dirs += [d for d in made if d not in self.dirs]

    def forget_dir(self, path: str) -> None:
        self.dirs = [d for d in self.dirs if d != path]

    def is_empty(self) -> bool:
        return not (self.settings_created or self.files or self.dirs)

    def to_json(self) -> dict:
        return {"settings_created": self.settings_created, "files": self.files, "dirs": self.dirs}


class Manifest:
    """installed.json in memory: `installs` by claude home; `notice`: a line for the person
    when the file was corrupt and kept aside."""

    __slots__ = ("installs", "notice")

    def __init__(self, installs: dict | None = None, notice: str = "") -> None:
        self.installs: dict[str, Install] = installs or {}
        self.notice = notice

    def scope(self, claude_home: str) -> Install:
        return self.installs.setdefault(claude_home, Install())


def load(dry_run: bool = False) -> Manifest:
    """The manifest (empty when there is none). dry_run: a corrupt one is not kept aside."""
    path = manifest_path()
    try:
        raw = read_file_nofollow(path, must_own=True)
    except ValueError:
        raw = b"\0"  # larger than any manifest: corrupt
    if raw is None:
        return Manifest()
    try:
        doc = jsoncodec.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("installs", {}), dict):
            raise ValueError("not a manifest")
    except ValueError:
        if dry_run:
            return Manifest(notice=f"{path} is corrupt; files are judged by their content")
        kept = keep_aside(path)
        unlink_quietly(path)
        return Manifest(notice=f"{path} was corrupt; kept as {kept}; files are judged by their content")
    if doc.get("schema") != SCHEMA:
        raise StateTooNew(path, str(doc.get("schema")))
    return Manifest({home: Install(entry) for home, entry in doc.get("installs", {}).items() if isinstance(home, str)})


def save(manifest: Manifest) -> None:
    """Write it (atomically, 0600), without the scopes left empty; no scope left: no file."""
    installs = {home: entry.to_json() for home, entry in manifest.installs.items() if not entry.is_empty()}
    path = manifest_path()
    if not installs:
        unlink_if_present(path)
        return
    paths.ensure_private_dir()
    write_file_atomic(path, jsoncodec.dumps({"schema": SCHEMA, "installs": installs}).encode(), 0o600)


def missing_dirs(directory: str) -> list[str]:
    """The directories that making `directory` would create, outermost first: those on its
    way (itself included) that do not exist yet, less the state directory and its ancestors."""
    state = os.path.abspath(paths.state_dir())
    made = []
    directory = os.path.abspath(directory)
    while not os.path.lexists(directory):
        made.append(directory)
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return [d for d in reversed(made) if d != state and not state.startswith(d + os.sep)]
