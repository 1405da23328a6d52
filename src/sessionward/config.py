"""Configuration: one small TOML file, environment variables over it, defaults without either.

File: ~/.claude/sessionward.toml ($CLAUDE_CONFIG_DIR/sessionward.toml; SESSIONWARD_CONFIG
names another file). Every key is optional:

  vault = "~/Notes/Vault"        # the notes (Obsidian) vault: edits there wait while another
                                 # session holds the end lock (its /end save)
  vaults = ["~/Notes/Work", "~/Notes/Home"]   # more vaults, guarded the same way
  shared_paths = ["~/resume.md", "~/memory"]  # other shared notes (files or directories):
                                 # a resume file, a memory export; guarded the same way
  edit_policy = "deny"           # deny | ask | warn: another live session edited the file
                                 # within claim_ttl_minutes
  claim_ttl_minutes = 30         # how long an edit by another session counts
  git_guard = true               # ask before git commands that move HEAD or rewrite the index
                                 # or tree while another session shares the worktree
  lock_timeout_s = 30            # how long /end waits for the end lock
  store = "local"                # where the shared state lives (sessionward.store decides
                                 # what a value means: only "local" is built)

`sessionward install` offers to fill `vaults` from Obsidian's own list (sessionward.vaults).
The protected paths are vault + vaults + shared_paths, all of them (Config.protected).

Environment (wins over the file): SESSIONWARD_VAULT, SESSIONWARD_VAULTS and
SESSIONWARD_SHARED_PATHS (paths separated by ':'), SESSIONWARD_EDIT_POLICY,
SESSIONWARD_CLAIM_TTL_MINUTES, SESSIONWARD_GIT_GUARD (1/0, true/false, on/off),
SESSIONWARD_LOCK_TIMEOUT_S, SESSIONWARD_STORE.

Why a cache: every hook reads the configuration, and importing a TOML parser (tomllib pulls
in `re`, `typing` and `datetime`) costs as much as starting the interpreter. The parsed file
is kept in STATE/sessionward/config.cache.json with the file's identity (inode, size, mtime,
ctime); a hook re-parses only when the file changed (a file that does not parse is cached
too, with its error).

Errors name the file (and line, or key) or the variable. load_config never raises for them:
a file with an error is left out as a whole, a bad variable alone, and the defaults stand in
meanwhile; each problem is in Config.problems (one line each). All but the store: the `store`
such a file names still counts, and one that cannot be read refuses (_keep_store). So the
hooks keep guarding on the defaults, and the problem is told where the person looks, once:
SessionStart's systemMessage (hooks.with_config_problems), `sessionward doctor`, and any
command that uses the configuration (a notice on stderr). load_config(strict=True) raises
ConfigError (exit 2) at the first problem instead.
"""

import os
import stat

from sessionward import _jsoncodec as jsoncodec, paths
from sessionward._atomic import read_file_nofollow, write_file_atomic
from sessionward.errors import ConfigError

CONFIG_NAME = paths.CONFIG_NAME
EDIT_POLICIES = ("ask", "deny", "warn")
DEFAULT_EDIT_POLICY = "deny"  # README, "Edits another session made": an ask's reason is unseen in the TUI
DEFAULT_CLAIM_TTL_MINUTES = 30.0
DEFAULT_LOCK_TIMEOUT_S = 30.0
MAX_CLAIM_TTL_MINUTES = 7 * 24 * 60.0
MAX_LOCK_TIMEOUT_S = 3600.0
_CACHE_SCHEMA = "sessionward-config/2"  # 2: the values as parsed, checked on use

_ENV = {
    "vault": "SESSIONWARD_VAULT",
    "vaults": "SESSIONWARD_VAULTS",
    "shared_paths": "SESSIONWARD_SHARED_PATHS",
    "edit_policy": "SESSIONWARD_EDIT_POLICY",
    "claim_ttl_minutes": "SESSIONWARD_CLAIM_TTL_MINUTES",
    "git_guard": "SESSIONWARD_GIT_GUARD",
    "lock_timeout_s": "SESSIONWARD_LOCK_TIMEOUT_S",
    "store": "SESSIONWARD_STORE",
}
KNOWN_KEYS = tuple(_ENV)
PATH_LISTS = ("vaults", "shared_paths")  # keys whose value is a list of paths


class Config:
    """The effective settings. `sources` says where each came from (file, env, default)."""

    __slots__ = ("vault", "vaults", "shared_paths", "edit_policy", "claim_ttl_s", "git_guard", "lock_timeout_s", "store",
                 "store_problem", "path", "sources", "problems")

    def __init__(self) -> None:
        self.vault: str | None = None
        self.vaults: list = []  # real paths, like vault
        self.shared_paths: list = []
        self.edit_policy = DEFAULT_EDIT_POLICY
        self.claim_ttl_s = DEFAULT_CLAIM_TTL_MINUTES * 60
        self.git_guard = True
        self.lock_timeout_s = DEFAULT_LOCK_TIMEOUT_S
        self.store = "local"  # the setting as written; sessionward.store.current() judges it
        # Why the store the file names cannot be known (the file is not TOML, or its `store`
        # is no string): sessionward.store refuses then, never the local files instead.
        self.store_problem: str | None = None
        self.path: str | None = None  # the file read, if any
        self.sources: dict = {key: "default" for key in KNOWN_KEYS}
        self.problems: list = []  # one line each: what was left out, and why (see the module doc)

    def to_json(self) -> dict:
        return {
            "file": self.path,
            "vault": self.vault,
            "vaults": list(self.vaults),
            "shared_paths": list(self.shared_paths),
            "protected": self.protected,
            "edit_policy": self.edit_policy,
            "claim_ttl_minutes": self.claim_ttl_s / 60,
            "git_guard": self.git_guard,
            "lock_timeout_s": self.lock_timeout_s,
            "store": self.store,
            "sources": dict(self.sources),
        }

    @property
    def protected(self) -> list:
        """Every protected path, once: vault, vaults, shared_paths (real paths)."""
        return list(dict.fromkeys(([self.vault] if self.vault else []) + self.vaults + self.shared_paths))

    def in_vault(self, path: str) -> bool:
        """Is `path` one of the protected paths or inside one (a vault, or a shared note)?"""
        for top in self.protected:
            if path == top or path.startswith(top.rstrip("/") + "/"):
                return True
        return False


config_path = paths.config_path  # where the file is: paths owns it (store.setting() asks it without importing this module)


def load_config(environ=None, strict: bool = False) -> Config:
    """The effective configuration: defaults, then the file, then the environment. A file
    with an error is left out whole, a bad variable alone; each is in `problems` (strict:
    ConfigError at the first)."""
    env = os.environ if environ is None else environ
    config = Config()
    path = config_path(env)
    doc = None
    try:
        doc = _file_values(path)
        if doc is not None:
            _check_keys(path, doc)
            trial = Config()  # all of the file or none of it: half a file is a surprise
            for key, value in doc.items():
                _apply(trial, key, value, f"{path}: {key}")
                trial.sources[key] = "file"
            config = trial
            config.path = path
    except ConfigError as error:
        if strict:
            raise
        _keep_store(config, path, doc, error)
        if config.store_problem is not None:  # nothing runs on defaults: every command and hook refuses (store)
            config.problems.append(f"{error}; which store to use cannot be known until it is fixed")
        else:
            ignored = "all of it but its store is ignored" if config.sources["store"] == "file" else "the file is ignored"
            config.problems.append(f"{error}; {ignored} until it is fixed (defaults meanwhile)")
    for key, var in _ENV.items():
        text = env.get(var)
        if text is not None and text != "":
            try:
                _apply(config, key, _from_env(key, text, var), var)
            except ConfigError as error:
                if strict:
                    raise
                config.problems.append(f"{error}; ignored")
                continue
            config.sources[key] = "env"
    return config


def _apply(config: Config, key: str, value, where: str) -> None:
    if key == "vault":
        if not isinstance(value, str) or not value or "\0" in value:
            raise ConfigError(f"{where}: expected a directory path")
        config.vault = os.path.realpath(os.path.expanduser(value))
    elif key in PATH_LISTS:
        if type(value) is not list or not all(isinstance(v, str) and v and "\0" not in v for v in value):
            raise ConfigError(f"{where}: expected a list of paths, such as [\"~/Notes\"]")
        setattr(config, key, list(dict.fromkeys(os.path.realpath(os.path.expanduser(v)) for v in value)))
    elif key == "edit_policy":
        if value not in EDIT_POLICIES:
            raise ConfigError(f"{where}: expected one of {', '.join(EDIT_POLICIES)}, not {value!r}")
        config.edit_policy = value
    elif key == "claim_ttl_minutes":
        config.claim_ttl_s = _number(value, 0, MAX_CLAIM_TTL_MINUTES, where) * 60
    elif key == "git_guard":
        if type(value) is not bool:
            raise ConfigError(f"{where}: expected true or false, not {value!r}")
        config.git_guard = value
    elif key == "lock_timeout_s":
        config.lock_timeout_s = _number(value, 0, MAX_LOCK_TIMEOUT_S, where)
    elif key == "store":
        # Only the type here: a value the store cannot use is refused by store.current(), not
        # left out, so that no process falls back to the local files while others would not.
        if not isinstance(value, str) or "\0" in value:
            shown = f"a TOML {value['toml']}" if isinstance(value, dict) and "toml" in value else repr(value)
            raise ConfigError(f"{where}: expected \"local\" or a store URL, not {shown}")
        config.store = value.strip() or "local"


def _keep_store(config: Config, path: str, doc: dict | None, error: ConfigError) -> None:
    """The store is the exception to leaving a bad file out: every process must use the same
    one, or sessions split between two registries. So the `store` a file names is used even
    when another key left the file out; and when which store it names cannot be known (the
    file is not TOML, or its `store` is no string), store_problem says why and sessionward.store
    refuses, as for a store it does not have. A file that names no store stays out whole."""
    if doc is not None:
        if "store" not in doc:
            return
        try:
            _apply(config, "store", doc["store"], f"{path}: store")
        except ConfigError as bad:
            config.store_problem = str(bad)
            return
        config.sources["store"] = "file"
        return
    if _names_a_store(path):
        # the words that matter first: Claude Code cuts a hook's line, a status line is narrow
        config.store_problem = f"which store to use cannot be read until this is fixed: {error}"


def _names_a_store(path: str) -> bool:
    """Does a file that is not TOML hold a `store = ...` line other than "local" (or could it:
    a file that cannot be read)? Read as text: plain string work, no parser (a hook runs this
    while the file stays broken). A `store` line in a table or a multi-line string counts too:
    refusing until the file is fixed is the safe side."""
    try:
        os.stat(path)
    except OSError:
        return False  # not even there to be seen (a directory this user may not search): as without a file
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens without waiting for a writer
    except OSError:
        return True  # there, and unreadable: which store it names cannot be known, so refused
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # a directory, a FIFO, a device: no settings there
        raw = os.read(fd, 1 << 20)
    except OSError:
        return True
    finally:
        os.close(fd)
    text = raw.decode("utf-8-sig", "replace")
    for line in text.splitlines():
        key, equals, value = line.partition("=")
        if equals and key.strip().strip("\"'") == "store":
            return value.split("#")[0].strip() not in ('"local"', "'local'", '""', "''")
    return False


def _number(value, low: float, high: float, where: str) -> float:
    if type(value) not in (int, float) or not low <= value <= high:
        raise ConfigError(f"{where}: expected a number from {low:g} to {high:g}, not {value!r}")
    return float(value)


def _from_env(key: str, text: str, var: str):
    if key == "git_guard":
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{var}: expected 1 or 0 (true/false, on/off), not {text!r}")
    if key in PATH_LISTS:
        return [part for part in text.split(":") if part]
    if key in ("claim_ttl_minutes", "lock_timeout_s"):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{var}: expected a number, not {text!r}") from None
    return text


# -- the file, parsed once per change -------------------------------------------------------


def _file_values(path: str) -> dict | None:
    """The file's keys and values as TOML gives them (load_config checks them), or None when
    there is no file. ConfigError when it cannot be read or is not TOML."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: not a regular file")
    stamp = [path, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    cached = _read_cache(stamp)
    if cached is not None:
        if "error" in cached:  # the file did not parse, and has not changed since
            raise ConfigError(cached["error"])
        return _from_json(cached["values"])
    try:
        values = _as_json(_read_toml(path))
    except ConfigError as error:
        _write_cache(stamp, {"error": str(error)})  # or every hook would import tomllib again
        raise
    _write_cache(stamp, {"values": values})
    return _from_json(values)  # as the cache gives it back: the same checks either way


def _as_json(value):
    """A TOML value as JSON can hold it, so that it is cached (or every hook would import
    tomllib again): a date or time becomes {"toml": "<type>"}, which no setting accepts; a
    float that is not finite, {"toml": "float", "value": "inf"} (_from_json: the float again)."""
    if isinstance(value, dict):
        return {key: _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, float) and value - value != 0:
        return {"toml": "float", "value": repr(value)}
    if isinstance(value, (str, bool, int, float)):
        return value
    return {"toml": type(value).__name__}


def _from_json(value):
    if isinstance(value, dict):
        if value.get("toml") == "float" and isinstance(value.get("value"), str):
            return float(value["value"])
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_json(item) for item in value]
    return value


def _cache_path() -> str:
    return os.path.join(paths.private_dir(), "config.cache.json")


def _read_cache(stamp: list) -> dict | None:
    try:
        raw = read_file_nofollow(_cache_path())
        doc = jsoncodec.loads(raw) if raw else None
    except (OSError, ValueError):
        return None
    if type(doc) is dict and doc.get("schema") == _CACHE_SCHEMA and doc.get("stamp") == stamp:
        if type(doc.get("values")) is dict:
            return {"values": doc["values"]}
        if type(doc.get("error")) is str:
            return {"error": doc["error"]}
    return None


def _write_cache(stamp: list, outcome: dict) -> None:
    try:
        paths.ensure_private_dir()
        data = jsoncodec.dumps(dict({"schema": _CACHE_SCHEMA, "stamp": stamp}, **outcome))
        write_file_atomic(_cache_path(), data.encode("utf-8"), durable=False)
    except Exception:  # noqa: BLE001 - a cache we cannot write only costs a re-parse
        pass


def parse_file(path: str) -> dict:
    """The keys and values of a configuration file, parsed and checked now, not cached (ConfigError)."""
    doc = _read_toml(path)
    _check_keys(path, doc)
    return doc


def _read_toml(path: str) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef,unused-ignore]
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return dict(doc)


def _check_keys(path: str, doc: dict) -> None:
    """Unknown keys and values of no setting's type (ConfigError); each value is checked by _apply."""
    unknown = [key for key in doc if key not in KNOWN_KEYS]
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(KNOWN_KEYS)})")
    for key, value in doc.items():
        if key in PATH_LISTS:
            continue  # a list: checked by _apply
        if not isinstance(value, (str, bool, int, float)):
            raise ConfigError(f"{path}: {key}: expected a string, number or true/false")
