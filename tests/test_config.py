"""Configuration: defaults, the TOML file, environment overrides, errors that name the file
and key, the vault path, where the file is looked for, and the parse cache."""

import json
import os
import subprocess
import sys

import pytest

from sessionward import config as config_mod
from sessionward.config import Config, ConfigError, config_path, load_config
from sessionward.errors import EXIT_USAGE, BadInput


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def toml(home):
    """Write ~/.claude/sessionward.toml; returns its path (a str)."""
    path = home / ".claude" / "sessionward.toml"

    def write(text: str) -> str:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return str(path)

    return write


def cache_file(state_dir) -> str:
    return str(state_dir / "sessionward" / "config.cache.json")


# -- defaults, file, environment ---------------------------------------------------------------


def test_defaults_without_a_file(home):
    config = load_config({})
    assert config.path is None
    assert config.to_json() == {
        "file": None,
        "vault": None,
        "vaults": [],
        "shared_paths": [],
        "protected": [],
        "edit_policy": "deny",
        "claim_ttl_minutes": 30.0,
        "git_guard": True,
        "lock_timeout_s": 30.0,
        "store": "local",
        "sources": {k: "default" for k in ("vault", "vaults", "shared_paths", "edit_policy", "claim_ttl_minutes",
                                           "git_guard", "lock_timeout_s", "store")},
    }
    assert config.claim_ttl_s == 1800.0
    assert config_path({}) == str(home / ".claude" / "sessionward.toml")


def test_file_values(toml, home):
    (home / "Vault").mkdir()
    path = toml(
        'vault = "~/Vault"\n'
        'edit_policy = "deny"\n'
        "claim_ttl_minutes = 5\n"
        "git_guard = false\n"
        "lock_timeout_s = 12.5\n"
        'vaults = ["~/Work", "/srv/notes/"]\n'
        'shared_paths = ["~/resume.md"]\n'
        'store = "local"\n'
    )
    config = load_config({})
    assert config.path == path
    assert (config.vault, config.edit_policy, config.claim_ttl_s, config.git_guard, config.lock_timeout_s, config.store) == (
        str(home / "Vault"), "deny", 300.0, False, 12.5, "local",
    )
    assert (config.vaults, config.shared_paths) == ([str(home / "Work"), "/srv/notes"], [str(home / "resume.md")])
    assert set(config.sources.values()) == {"file"}


def test_a_partial_file_keeps_the_other_defaults(toml):
    toml('edit_policy = "warn"\n')
    config = load_config({})
    assert config.edit_policy == "warn" and config.git_guard is True and config.claim_ttl_s == 1800.0
    assert config.sources == {
        "vault": "default", "vaults": "default", "shared_paths": "default", "edit_policy": "file", "claim_ttl_minutes": "default",
        "git_guard": "default", "lock_timeout_s": "default", "store": "default",
    }


def test_environment_wins_over_the_file(toml, home, tmp_path):
    toml('edit_policy = "deny"\nclaim_ttl_minutes = 5\ngit_guard = true\nlock_timeout_s = 1\nvault = "/v1"\n'
         'vaults = ["/v2"]\nshared_paths = ["/v3"]\n'
         'store = "redis://127.0.0.1:6379/0"\n')
    config = load_config({
        "SESSIONWARD_EDIT_POLICY": "warn",
        "SESSIONWARD_CLAIM_TTL_MINUTES": "2.5",
        "SESSIONWARD_GIT_GUARD": "off",
        "SESSIONWARD_LOCK_TIMEOUT_S": "7",
        "SESSIONWARD_VAULT": str(tmp_path),
        "SESSIONWARD_VAULTS": "/e1:/e2",
        "SESSIONWARD_SHARED_PATHS": "/e3",
        "SESSIONWARD_STORE": "local",
    })
    assert (config.edit_policy, config.claim_ttl_s, config.git_guard, config.lock_timeout_s, config.vault, config.store) == (
        "warn", 150.0, False, 7.0, str(tmp_path), "local",
    )
    assert (config.vaults, config.shared_paths) == (["/e1", "/e2"], ["/e3"])
    assert set(config.sources.values()) == {"env"}


@pytest.mark.parametrize("text,expected", [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("false", False), ("No", False), ("off", False),
])
def test_git_guard_from_the_environment(text, expected):
    assert load_config({"SESSIONWARD_GIT_GUARD": text}).git_guard is expected


def test_an_empty_variable_is_ignored(toml):
    toml('edit_policy = "deny"\n')
    config = load_config({"SESSIONWARD_EDIT_POLICY": "", "SESSIONWARD_GIT_GUARD": ""})
    assert config.edit_policy == "deny" and config.sources["edit_policy"] == "file"
    assert config.git_guard is True and config.sources["git_guard"] == "default"


def test_load_config_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("SESSIONWARD_EDIT_POLICY", "deny")
    assert load_config().edit_policy == "deny"


# -- errors ------------------------------------------------------------------------------------


FILE_ERRORS = [
    ("vault = 5", "vault: expected a directory path"),
    ('vault = ""', "vault: expected a directory path"),
    ('edit_policy = "maybe"', "edit_policy: expected one of ask, deny, warn, not 'maybe'"),
    ('edit_policy = "ASK"', "edit_policy: expected one of ask, deny, warn, not 'ASK'"),
    ("claim_ttl_minutes = -1", "claim_ttl_minutes: expected a number from 0 to 10080, not -1"),
    ("claim_ttl_minutes = 10081", "claim_ttl_minutes: expected a number from 0 to 10080, not 10081"),
    ('claim_ttl_minutes = "30"', "claim_ttl_minutes: expected a number from 0 to 10080, not '30'"),
    ("claim_ttl_minutes = true", "claim_ttl_minutes: expected a number from 0 to 10080, not True"),
    ("claim_ttl_minutes = nan", "claim_ttl_minutes: expected a number from 0 to 10080, not nan"),
    ('git_guard = "yes"', "git_guard: expected true or false, not 'yes'"),
    ("git_guard = 1", "git_guard: expected true or false, not 1"),
    ("lock_timeout_s = 3601", "lock_timeout_s: expected a number from 0 to 3600, not 3601"),
    ("lock_timeout_s = inf", "lock_timeout_s: expected a number from 0 to 3600, not inf"),
    ('vault = ["a"]', "vault: expected a string, number or true/false"),
    ("vault = { path = 'a' }", "vault: expected a string, number or true/false"),
    ("vault = 1979-05-27", "vault: expected a string, number or true/false"),
    ("[vault]\npath = 'a'", "vault: expected a string, number or true/false"),
]


@pytest.mark.parametrize("text,problem", FILE_ERRORS, ids=[t for t, _ in FILE_ERRORS])
def test_each_invalid_value_in_the_file_names_the_file_and_key(toml, text, problem):
    path = toml(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_config({}, strict=True)
    assert str(info.value) == f"{path}: {problem}"


def test_config_error_is_bad_input_with_exit_code_2(toml):
    toml('edit_policy = "maybe"\n')
    with pytest.raises(ConfigError) as info:
        load_config({}, strict=True)
    assert isinstance(info.value, BadInput) and isinstance(info.value, ValueError)
    assert info.value.exit_code == EXIT_USAGE == 2


def test_an_unknown_key_is_named(toml):
    path = toml('edit_policy = "ask"\neditpolicy = "deny"\n')
    with pytest.raises(ConfigError) as info:
        load_config({}, strict=True)
    assert str(info.value) == (
        f"{path}: unknown key 'editpolicy' (known: vault, vaults, shared_paths, edit_policy, claim_ttl_minutes, git_guard, "
        "lock_timeout_s, store)"
    )


@pytest.mark.parametrize("text,where", [
    ("edit_policy = ask\n", "(at line 1, column 15)"),
    ('git_guard = true\nvault = "unterminated\n', "(at line 2, column 22)"),
    ('edit_policy = "a"\nedit_policy = "b"\n', "(at line 2, column 18)"),
])
def test_invalid_toml_names_the_file_and_line(toml, text, where):
    path = toml(text)
    with pytest.raises(ConfigError) as info:
        load_config({}, strict=True)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid TOML: ") and message.endswith(where), message


def test_undecodable_bytes_are_invalid_toml(toml):
    path = toml("")
    with open(path, "wb") as f:
        f.write(b'vault = "\xff\xfe"\n')
    with pytest.raises(ConfigError, match=f"^{path}: not valid TOML: "):
        load_config({}, strict=True)


def test_a_directory_at_the_config_path_is_an_error(home):
    (home / ".claude" / "sessionward.toml").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        load_config({}, strict=True)
    assert str(info.value) == f"{home}/.claude/sessionward.toml: not a regular file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_an_error(toml):
    path = toml('edit_policy = "ask"\n')
    os.chmod(path, 0)
    with pytest.raises(ConfigError, match=f"^{path}: cannot read it \\(Permission denied\\)$"):
        load_config({}, strict=True)


def test_a_config_path_that_cannot_be_stat_is_an_error(tmp_path):
    (tmp_path / "plain").write_text("")
    named = str(tmp_path / "plain" / "sessionward.toml")
    with pytest.raises(ConfigError) as info:
        load_config({"SESSIONWARD_CONFIG": named}, strict=True)
    assert str(info.value) == f"{named}: cannot read it (Not a directory)"


ENV_ERRORS = [
    ("SESSIONWARD_EDIT_POLICY", "maybe", "SESSIONWARD_EDIT_POLICY: expected one of ask, deny, warn, not 'maybe'"),
    ("SESSIONWARD_GIT_GUARD", "maybe", "SESSIONWARD_GIT_GUARD: expected 1 or 0 (true/false, on/off), not 'maybe'"),
    ("SESSIONWARD_CLAIM_TTL_MINUTES", "ten", "SESSIONWARD_CLAIM_TTL_MINUTES: expected a number, not 'ten'"),
    ("SESSIONWARD_CLAIM_TTL_MINUTES", "-5", "SESSIONWARD_CLAIM_TTL_MINUTES: expected a number from 0 to 10080, not -5.0"),
    ("SESSIONWARD_CLAIM_TTL_MINUTES", "nan", "SESSIONWARD_CLAIM_TTL_MINUTES: expected a number from 0 to 10080, not nan"),
    ("SESSIONWARD_LOCK_TIMEOUT_S", "inf", "SESSIONWARD_LOCK_TIMEOUT_S: expected a number from 0 to 3600, not inf"),
    ("SESSIONWARD_LOCK_TIMEOUT_S", "1e9", "SESSIONWARD_LOCK_TIMEOUT_S: expected a number from 0 to 3600, not 1000000000.0"),
    ("SESSIONWARD_VAULT", "a\0b", "SESSIONWARD_VAULT: expected a directory path"),
]


@pytest.mark.parametrize("var,text,message", ENV_ERRORS, ids=[f"{v}={t!r}" for v, t, _ in ENV_ERRORS])
def test_each_invalid_variable_is_named(var, text, message):
    with pytest.raises(ConfigError) as info:
        load_config({var: text}, strict=True)
    assert str(info.value) == message


# -- the vault ---------------------------------------------------------------------------------


def test_vault_tilde_is_expanded_and_symlinks_resolved(toml, home, tmp_path):
    real = tmp_path / "real-vault"
    real.mkdir()
    os.symlink(real, home / "Vault")
    toml('vault = "~/Vault/"\n')
    assert load_config({}).vault == str(real)
    assert load_config({"SESSIONWARD_VAULT": "~/Vault"}).vault == str(real)


def test_in_vault():
    config = Config()
    assert config.in_vault("/v/a.md") is False  # no vault configured
    config.vault = "/v"
    assert config.in_vault("/v") and config.in_vault("/v/a.md") and config.in_vault("/v/sub/b.md")
    assert not config.in_vault("/v2/a.md") and not config.in_vault("/") and not config.in_vault("/x/v/a.md")
    config.vault = "/"
    assert config.in_vault("/anything")


# -- where the file is -------------------------------------------------------------------------


def test_sessionward_config_names_another_file(toml, tmp_path, home):
    toml('edit_policy = "deny"\n')
    other = tmp_path / "other.toml"
    other.write_text('edit_policy = "warn"\n')
    config = load_config({"SESSIONWARD_CONFIG": str(other)})
    assert (config.path, config.edit_policy) == (str(other), "warn")
    (home / "mine.toml").write_text("git_guard = false\n")
    config = load_config({"SESSIONWARD_CONFIG": "~/mine.toml"})
    assert (config.path, config.git_guard) == (str(home / "mine.toml"), False)
    missing = load_config({"SESSIONWARD_CONFIG": str(tmp_path / "missing.toml")})
    assert missing.path is None and missing.edit_policy == "deny"  # not the default file either


def test_claude_config_dir_moves_the_file(toml, tmp_path, monkeypatch):
    toml('edit_policy = "deny"\n')  # in ~/.claude: no longer read
    moved = tmp_path / "claude-config"
    moved.mkdir()
    (moved / "sessionward.toml").write_text('edit_policy = "warn"\n')
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(moved))
    config = load_config({})
    assert (config.path, config.edit_policy) == (str(moved / "sessionward.toml"), "warn")


# -- the cache ---------------------------------------------------------------------------------


PARSER_LOADED = "('tomllib' in sys.modules or 'tomli' in sys.modules)"  # tomli: Python 3.10's
LOAD_AND_REPORT = (  # no `import json` here: it imports `re` itself
    "import sys\n"
    "from sessionward.config import load_config\n"
    "c = load_config()\n"
    f"print(c.edit_policy, {PARSER_LOADED}, 're' in sys.modules)\n"
)


def load_in_child() -> list:
    out = subprocess.run([sys.executable, "-c", LOAD_AND_REPORT], capture_output=True, text=True, check=True)
    policy, tomllib, re_ = out.stdout.split()
    return [policy, tomllib == "True", re_ == "True"]


def test_a_second_load_does_not_import_tomllib(toml, state_dir):
    toml('edit_policy = "deny"\n')
    assert load_in_child() == ["deny", True, True]  # first: parsed (the positive control)
    assert os.path.isfile(cache_file(state_dir))
    assert load_in_child() == ["deny", False, False]  # then: from the cache, no parser


def test_the_cache_is_used_while_the_file_is_unchanged(toml, state_dir):
    path = toml('edit_policy = "deny"\n')
    assert load_config({}).edit_policy == "deny"
    with open(cache_file(state_dir)) as f:
        doc = json.load(f)
    info = os.stat(path)
    assert doc == {
        "schema": "sessionward-config/2",
        "stamp": [path, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns],
        "values": {"edit_policy": "deny"},
    }
    doc["values"] = {"edit_policy": "warn"}  # a cached answer differing from the file...
    with open(cache_file(state_dir), "w") as f:
        json.dump(doc, f)
    assert load_config({}).edit_policy == "warn"  # ...is what a load returns: no re-parse


@pytest.mark.parametrize("text", ["vault = 2024-01-01\n", "claim_ttl_minutes = inf\n", "store = 07:32:00\n"])
def test_a_value_json_cannot_hold_is_cached_too_and_refused_the_same(toml, state_dir, text):
    """A TOML date, time or infinity: refused as before, and cached as {"toml": type}, so the
    next load (every hook) refuses it again without parsing the file."""
    toml(text)
    first = load_config({})
    assert first.problems and ("expected a string, number or true/false" in first.problems[0]
                               or "not inf" in first.problems[0]), first.problems
    with open(cache_file(state_dir)) as f:
        cached = json.load(f)["values"]
    assert list(cached.values())[0] in ({"toml": "date"}, {"toml": "float", "value": "inf"}, {"toml": "time"}), cached
    again = load_config({})
    assert (again.problems, again.store_problem) == (first.problems, first.store_problem)
    with open(cache_file(state_dir)) as f:  # and it is the cache that answers: a changed answer there is read
        doc = json.load(f)
    doc["values"] = {"edit_policy": "warn"}
    with open(cache_file(state_dir), "w") as f:
        json.dump(doc, f)
    assert load_config({}).edit_policy == "warn"


def test_a_changed_file_of_the_same_size_is_read_again(toml):
    path = toml('edit_policy = "deny"\n')
    assert load_config({}).edit_policy == "deny"
    before = os.stat(path)
    with open(path, "r+") as f:  # rewritten in place: same inode, same size
        f.write('edit_policy = "warn"\n')
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 2_000_000_000))
    after = os.stat(path)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    assert load_config({}).edit_policy == "warn"


def test_switching_files_does_not_reuse_the_other_files_cache(toml, tmp_path):
    toml('edit_policy = "deny"\n')
    other = tmp_path / "other.toml"
    other.write_text('edit_policy = "warn"\n')
    assert load_config({}).edit_policy == "deny"
    assert load_config({"SESSIONWARD_CONFIG": str(other)}).edit_policy == "warn"
    assert load_config({}).edit_policy == "deny"


@pytest.mark.parametrize("damage", ["garbage", "symlink", "directory", "wrong schema"])
def test_a_damaged_cache_only_costs_a_parse(toml, state_dir, tmp_path, damage):
    toml('edit_policy = "deny"\n')
    load_config({})
    cache = cache_file(state_dir)
    os.unlink(cache)
    if damage == "garbage":
        with open(cache, "wb") as f:
            f.write(b"\x00{{{")
    elif damage == "symlink":
        decoy = tmp_path / "decoy.json"
        decoy.write_text("{}")
        os.symlink(decoy, cache)
    elif damage == "directory":
        os.mkdir(cache)
    else:
        with open(cache, "w") as f:
            json.dump({"schema": "sessionward-config/0", "stamp": [], "values": {"edit_policy": "warn"}}, f)
    assert load_config({}).edit_policy == "deny"
    if damage == "symlink":
        assert (tmp_path / "decoy.json").read_text() == "{}"  # never written through


def test_an_unwritable_state_dir_only_costs_a_parse(toml, tmp_path, monkeypatch):
    toml('edit_policy = "deny"\n')
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("SESSIONWARD_HOME", str(blocker))
    assert load_config({}).edit_policy == "deny"
    assert load_config({}).edit_policy == "deny"


def test_a_file_that_does_not_parse_is_parsed_once_per_change(toml, state_dir):
    """Every hook loads the configuration: a broken file is cached with its error, so the
    hooks do not import tomllib again and again while it stays broken (issue 11)."""
    path = toml("edit_policy = \n")
    probe = ("import sys\nfrom sessionward.config import load_config\nc = load_config()\n"
             f"print(len(c.problems), c.edit_policy, {PARSER_LOADED})")
    ran = [subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
           for _ in range(2)]
    assert ran == ["1 deny True\n", "1 deny False\n"]
    problem = load_config({}).problems[0]
    assert problem.startswith(f"{path}: not valid TOML: ") and problem.endswith(
        "; the file is ignored until it is fixed (defaults meanwhile)")
    toml('edit_policy = "warn"\n')  # fixed: read at once (not the default, so it shows)
    fixed = load_config({})
    assert (fixed.edit_policy, fixed.problems) == ("warn", [])


def test_a_bad_file_is_left_out_whole_and_the_defaults_stand_in(toml):
    path = toml('claim_ttl_minutes = 5\nedit_policy = "sometimes"\ngit_guard = false\n')
    config = load_config({})
    assert (config.edit_policy, config.claim_ttl_s, config.git_guard, config.path) == ("deny", 1800.0, True, None)
    assert config.problems == [f"{path}: edit_policy: expected one of ask, deny, warn, not 'sometimes'; "
                               "the file is ignored until it is fixed (defaults meanwhile)"]


def test_a_bad_variable_is_left_out_alone(toml):
    toml('edit_policy = "deny"\n')
    config = load_config({"SESSIONWARD_GIT_GUARD": "maybe", "SESSIONWARD_CLAIM_TTL_MINUTES": "10"})
    assert (config.edit_policy, config.git_guard, config.claim_ttl_s) == ("deny", True, 600.0)
    assert config.sources["git_guard"] == "default"
    assert config.problems == ["SESSIONWARD_GIT_GUARD: expected 1 or 0 (true/false, on/off), not 'maybe'; ignored"]


def test_values_from_the_cache_are_still_validated(toml):
    path = toml('edit_policy = "never"\n')  # valid TOML, invalid value: cached raw, refused each time
    for _ in range(2):
        with pytest.raises(ConfigError, match=f"^{path}: edit_policy: "):
            load_config({}, strict=True)


def test_config_module_keeps_tomllib_out_of_its_import(monkeypatch):
    out = subprocess.run(
        [sys.executable, "-c", f"import sys, sessionward.config; print({PARSER_LOADED})"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout == "False\n"
    assert config_mod.KNOWN_KEYS == ("vault", "vaults", "shared_paths", "edit_policy", "claim_ttl_minutes", "git_guard",
                                     "lock_timeout_s", "store")


def test_every_protected_path_is_guarded_and_the_old_vault_key_still_is(toml, home):
    toml('vault = "/n/old"\nvaults = ["/n/a", "/n/b"]\nshared_paths = ["/n/resume.md"]\n')
    config = load_config({})
    assert config.protected == ["/n/old", "/n/a", "/n/b", "/n/resume.md"]
    for inside in ("/n/old/x.md", "/n/a", "/n/b/sub/y.md", "/n/resume.md"):
        assert config.in_vault(inside), inside
    for outside in ("/n/a2/x.md", "/n/resume.md.bak", "/n/c/x.md"):
        assert not config.in_vault(outside), outside
    assert load_config({"SESSIONWARD_VAULT": "/only"}).protected == ["/only", "/n/a", "/n/b", "/n/resume.md"]


@pytest.mark.parametrize("text", ['vaults = "/n/a"\n', "vaults = [1]\n", 'shared_paths = [""]\n'])
def test_a_path_list_that_is_not_one_is_named(toml, text):
    path = toml(text)
    problems = load_config({}).problems
    assert len(problems) == 1 and problems[0].startswith(f"{path}: ") and "expected a list of paths" in problems[0]
