"""The person's notes: the vaults Obsidian knows, and adding them to what sessionward protects.

Obsidian keeps the list of vaults it opened in obsidian.json, in its own configuration
directory, shaped {"vaults": {"<id>": {"path": "/home/me/Notes", "ts": <ms>, "open": true}}}:
  Linux    $XDG_CONFIG_HOME/obsidian/ (~/.config/obsidian/); the Flatpak's
           ~/.var/app/md.obsidian.Obsidian/config/obsidian/; the Snap's
           ~/snap/obsidian/current/.config/obsidian/
  macOS    ~/Library/Application Support/obsidian/
find_obsidian_vaults() reads every one of those that exists (Obsidian writes it; we only read)
and returns the vaults whose directory exists, most recently opened first, with one line per
problem (a file that is not JSON or not that shape, a vault whose directory is gone): never
an exception, the caller shows the lines.

protect_paths(paths) adds directories to `vaults` and files to `shared_paths` of
sessionward.toml (sessionward.config), keeping every other byte of the file; the result is
parsed again before it replaces the file, and a file it cannot edit safely is left as it is
(ConfigError naming it). `install` asks the person first (or takes --yes / --vault PATH);
`doctor` reports vaults found but not protected.
"""

import os
import sys

from sessionward.config import PATH_LISTS, ConfigError, config_path

OBSIDIAN_LIST = "obsidian.json"


class FoundVaults:
    __slots__ = ("vaults", "problems", "files")

    def __init__(self) -> None:
        self.vaults: list = []  # real paths of existing directories, most recently opened first
        self.problems: list = []  # one line each
        self.files: list = []  # the obsidian.json files read


def obsidian_lists(environ=None) -> list[str]:
    """Where Obsidian's list of vaults may be, for this platform (existing or not)."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or os.path.expanduser("~")
    if sys.platform == "darwin":
        return [os.path.join(home, "Library", "Application Support", "obsidian", OBSIDIAN_LIST)]
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return list(dict.fromkeys([
        os.path.join(config_home, "obsidian", OBSIDIAN_LIST),
        os.path.join(home, ".var", "app", "md.obsidian.Obsidian", "config", "obsidian", OBSIDIAN_LIST),
        os.path.join(home, "snap", "obsidian", "current", ".config", "obsidian", OBSIDIAN_LIST),
    ]))


def find_obsidian_vaults(environ=None) -> FoundVaults:
    import json

    found = FoundVaults()
    stamped = []
    for path in obsidian_lists(environ):
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read(4 * 1024 * 1024))
        except FileNotFoundError:
            continue
        except OSError as exc:
            found.problems.append(f"{path}: cannot read it ({exc.strerror}); its vaults are not known here")
            continue
        except ValueError:
            found.problems.append(f"{path}: not valid JSON; its vaults are not known here")
            continue
        found.files.append(path)
        vaults = doc.get("vaults") if type(doc) is dict else None
        if type(vaults) is not dict:
            found.problems.append(f"{path}: no \"vaults\" object; its vaults are not known here")
            continue
        for entry in vaults.values():
            where = entry.get("path") if type(entry) is dict else None
            if not isinstance(where, str) or not where or "\0" in where:
                found.problems.append(f"{path}: a vault without a path; skipped")
                continue
            real = os.path.realpath(os.path.expanduser(where))
            if not os.path.isdir(real):
                found.problems.append(f"{path}: vault {where} does not exist (any more); skipped")
                continue
            ts = entry.get("ts")
            stamped.append((ts if type(ts) in (int, float) else 0, real))
    stamped.sort(key=lambda pair: -pair[0])
    found.vaults = list(dict.fromkeys(real for _, real in stamped))
    return found


def protect_paths(paths: list[str]) -> tuple[str, list[str]]:
    """Add `paths` (existing real paths) to sessionward.toml: directories to `vaults`, files to
    `shared_paths`. Returns (the file, the paths added); ConfigError when it cannot."""
    from sessionward._atomic import write_file_atomic
    from sessionward.config import parse_file

    path = config_path()
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc}); nothing was changed") from None
    current = parse_file(path) if text else {}
    wanted = {key: list(current.get(key) or []) for key in PATH_LISTS}
    known = {os.path.realpath(os.path.expanduser(p)) for key in PATH_LISTS for p in wanted[key]}
    added = []
    for real in paths:
        if real not in known:
            wanted["vaults" if os.path.isdir(real) else "shared_paths"].append(real)
            known.add(real)
            added.append(real)
    if not added:
        return path, []
    for key in PATH_LISTS:
        if wanted[key] != list(current.get(key) or []):
            text = _set_list(text, key, wanted[key], path)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)  # ~/.claude, before Claude Code made it
    write_file_atomic(path, text.encode("utf-8"))
    check = parse_file(path)
    if any(list(check.get(key) or []) != wanted[key] for key in PATH_LISTS):  # pragma: no cover - a bug here
        raise ConfigError(f"{path}: rewritten, but it does not read back as intended; check it")
    return path, added


def _set_list(text: str, key: str, values: list, path: str) -> str:
    """`text` with `key = [values]` replacing its one-line definition, or added at the end."""
    import json

    line = f"{key} = [{', '.join(json.dumps(v) for v in values)}]"  # a JSON string is a TOML basic string
    lines = text.splitlines(keepends=True)
    defined = [i for i, old in enumerate(lines) if old.split("=", 1)[0].strip() == key]
    if not defined:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        return "".join(lines) + f"# protected by sessionward install: edits here wait while another session saves\n{line}\n"
    index = defined[0]
    if len(defined) > 1 or not lines[index].rstrip().endswith("]"):
        raise ConfigError(f"{path}: {key} spans several lines; add the paths to it by hand (nothing was changed)")
    lines[index] = line + "\n"
    return "".join(lines)
