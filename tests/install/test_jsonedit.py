"""settings.json edited in place: random documents (random whitespace, escapes, numbers, CRLF)
through install and uninstall, checked byte for byte and by the readers that matter: Python's
json and node's JSON.parse (Claude Code is a node program)."""

import json
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from sessionward.errors import SettingsInvalid
from sessionward.install.hook_commands import status_line_command
from sessionward.install.settings import HOOKS, merge_settings, parse_settings, render_settings, unmerge_settings

L = "/opt/sw/bin/sessionward"
OUR_EVENTS = [event for event, _, _ in HOOKS]

# --- node as the second reader: one process for the whole module ------------------------------

NODE_READER = r"""
const rl = require("readline").createInterface({input: process.stdin});
rl.on("line", (line) => {
  const text = JSON.parse(line);
  let answer;
  try {
    const doc = JSON.parse(text);
    const hooks = {};
    for (const [event, groups] of Object.entries((doc && doc.hooks) || {}))
      hooks[event] = (Array.isArray(groups) ? groups : []).flatMap(
        (g) => (g && Array.isArray(g.hooks) ? g.hooks.map((h) => (h ? h.command : null)) : []));
    answer = {ok: true, hooks, statusLine: doc && doc.statusLine ? doc.statusLine.command || null : null};
  } catch (e) {
    answer = {ok: false, error: String(e.message)};
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
"""


class NodeReader:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", "-e", NODE_READER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, encoding="utf-8")

    def read(self, text: str) -> dict:
        # ensure_ascii: a line of pure ASCII whatever the text holds (lone surrogates included)
        self.proc.stdin.write(json.dumps(text) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def node():
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    reader = NodeReader()
    yield reader
    reader.close()


# --- random documents, as text -----------------------------------------------------------------

WS = st.text(alphabet=" \t\n\r", max_size=3)
ESCAPES = st.sampled_from(['\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"])
HEX_ESCAPE = st.integers(0, 0xFFFF).flatmap(
    lambda n: st.sampled_from([f"\\u{n:04x}", f"\\u{n:04X}"]))  # lone surrogates included
PLAIN = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\',
                              min_codepoint=0x20), min_size=1, max_size=4)
STRING = st.lists(st.one_of(PLAIN, ESCAPES, HEX_ESCAPE), max_size=4).map(lambda parts: '"' + "".join(parts) + '"')
DIGITS = st.text("0123456789", min_size=1, max_size=3)
NUMBER = st.builds(
    lambda sign, whole, frac, exp: sign + whole + frac + exp,
    st.sampled_from(["", "-"]), st.one_of(st.just("0"), st.builds(str, st.integers(1, 99999))),
    st.one_of(st.just(""), DIGITS.map(lambda d: "." + d)),
    st.one_of(st.just(""), st.builds(lambda e, s, d: e + s + d, st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), DIGITS)),
)
SCALAR = st.one_of(STRING, NUMBER, st.sampled_from(["true", "false", "null", "1e400", "-0", "1.0", '"\\ud83d"']))


def container(opener: str, closer: str, entries: list[str], spaces: list[str]) -> str:
    """`entries` joined with commas, whitespace drawn around every token."""
    if not entries:
        return opener + spaces[0] + closer
    out = [opener, spaces[0]]
    for n, entry in enumerate(entries):
        if n:
            out += [spaces[2 * n - 1 if 2 * n - 1 < len(spaces) else 0], ",", spaces[2 * n % len(spaces)]]
        out.append(entry)
    out += [spaces[-1], closer]
    return "".join(out)


@st.composite
def array(draw, items, min_size=0):
    entries = draw(st.lists(items, min_size=min_size, max_size=4))
    return container("[", "]", entries, draw(st.lists(WS, min_size=2 * len(entries) + 1, max_size=2 * len(entries) + 1)))


@st.composite
def obj(draw, values, keys=STRING, required=(), extra=4):
    """An object: `required` members, then up to `extra` drawn ones; keys unique as decoded
    (a "\\u0061" and an "a" are the same key)."""
    members, seen = [], set()
    for key, value in list(required) + draw(st.lists(st.tuples(keys, values), max_size=extra)):
        decoded = json.loads(key)
        if decoded in seen:
            continue
        seen.add(decoded)
        members.append(key + draw(WS) + ":" + draw(WS) + value)
    return container("{", "}", members, draw(st.lists(WS, min_size=2 * len(members) + 1, max_size=2 * len(members) + 1)))


VALUE = st.recursive(SCALAR, lambda inner: st.one_of(array(inner), obj(inner)), max_leaves=12)
# Never the name of an event install writes: only the HOOK_GROUPS below may say that.
USER_EVENT = st.sampled_from(['"Notification"', '"PreCompact"', '"SubagentStop"', '"Notific\\u0061tion"'])
COMMAND = STRING.filter(lambda s: "sessionward" not in json.loads(s))


@st.composite
def handler(draw):
    timeout = draw(st.lists(st.tuples(st.just('"timeout"'), NUMBER), max_size=1))
    required = [('"type"', '"command"'), ('"command"', draw(COMMAND))] + timeout
    return draw(obj(SCALAR, keys=st.just('"x"'), required=required))


@st.composite
def group(draw):
    handlers = draw(array(handler()))
    matcher = draw(st.lists(st.tuples(st.just('"matcher"'), STRING), max_size=1))
    return draw(obj(SCALAR, keys=st.just('"x"'), required=matcher + [('"hooks"', handlers)]))


@st.composite
def hooks_object(draw):
    """A user's "hooks": never empty, and an event of ours, when there, never an empty list
    (uninstall removes what its removal emptied: documented, and not a byte-exact round trip)."""
    events = draw(st.lists(st.one_of(USER_EVENT, st.sampled_from([f'"{e}"' for e in OUR_EVENTS])), min_size=1, max_size=3))
    members = []
    for event in events:
        groups = draw(array(group(), min_size=1 if json.loads(event) in OUR_EVENTS else 0))
        members.append((event, groups))
    return draw(obj(SCALAR, required=members, extra=0))


@st.composite
def settings_text(draw):
    required = []
    if draw(st.booleans()):
        required.append(('"hooks"', draw(hooks_object())))
    if draw(st.booleans()):
        required.append(('"statusLine"', draw(obj(SCALAR, required=[('"command"', draw(COMMAND))]))))
    reserved = {"hooks", "statusLine"}
    body = draw(obj(VALUE, keys=STRING.filter(lambda k: json.loads(k) not in reserved), required=required))
    if body[0] == "{" and not body[1:-1].strip(" \t\r\n") and body != "{}":
        body = "{}"  # an empty root's inner whitespace is not remembered (documented)
    text = draw(WS) + body + draw(WS)
    return text.replace("\n", "\r\n") if draw(st.booleans()) else text


class DuplicateKey(Exception):
    pass


def strict_json(text: str):
    """Python's json, made as strict as the editor: NaN and friends refused (ValueError), a
    duplicate key refused (DuplicateKey: both readers take it, the last one winning)."""
    def pairs(items):
        if len({k for k, _ in items}) != len(items):
            raise DuplicateKey(items)
        return dict(items)

    def constant(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


def our_commands(event: str) -> str:
    return f"{L} hook {event}"


# --- the properties ------------------------------------------------------------------------------

# A hundred examples each in the quick tier (about 7 s), a thousand under the slow marker.
QUICK, MANY = 100, 1000


def given_examples(examples: int, *strategies):
    return lambda test: hsettings(max_examples=examples, deadline=None,
                                  suppress_health_check=[HealthCheck.too_slow])(given(*strategies)(test))


def install_round_trip(node, text):
    raw = text.encode()
    doc = parse_settings(raw, "settings.json")
    installed_doc, _ = merge_settings(doc, L)
    installed = render_settings(installed_doc, raw)

    # Both readers take the result, and see what the merge meant, the user's values included.
    as_python = strict_json(installed.decode())
    assert as_python == installed_doc
    seen = node.read(installed.decode())
    assert seen["ok"], seen
    for event in OUR_EVENTS:
        assert seen["hooks"][event].count(our_commands(event)) == 1
        assert as_python["hooks"][event][-1]["hooks"][0]["command"] == our_commands(event)
    if "statusLine" not in doc:
        assert seen["statusLine"] == status_line_command(L)

    # Installing again changes nothing; uninstalling gives back every byte.
    assert merge_settings(parse_settings(installed, "settings.json"), L)[0] == installed_doc
    removed_doc, _ = unmerge_settings(parse_settings(installed, "settings.json"))
    assert render_settings(removed_doc, installed) == raw


def test_install_then_uninstall_gives_back_the_exact_bytes_and_both_readers_see_the_hooks(node):
    given_examples(QUICK, settings_text())(install_round_trip)(node)


@pytest.mark.slow
def test_install_then_uninstall_gives_back_the_exact_bytes_many(node):
    given_examples(MANY, settings_text())(install_round_trip)(node)


# Things Claude Code's reader or ours refuses, dropped into valid documents at random places.
NOT_JSON = ["NaN", "-Infinity", "Infinity", ",", "//x", "/*x*/", "\ufeff", "\x00", "\x0b", "\x0c", "\xa0",
            "'a'", '"', "{", "}", "[", "]", ":", "1", '"k": 1', '"k":1,', "\\", "01", "-", "1.", ".5", "+1", "0x1",
            "tru", "nul", '"\\x"', '"\\u12"', '"\t"', "\u2028", "True", "None"]


def strictness(node, text, junk, where):
    at = where % (len(text) + 1)
    mutated = text[:at] + junk + text[at:]
    raw = mutated.encode()
    seen = node.read(mutated)
    try:
        doc = parse_settings(raw, "settings.json")
    except SettingsInvalid as exc:
        assert "\n" not in str(exc) and exc.exit_code == 2
        if "not valid JSON" in exc.problem:
            try:
                strict_json(mutated)
            except DuplicateKey:
                return  # both readers take it; we refuse: which of the two would an edit keep?
            except ValueError:
                assert not seen["ok"], (mutated, seen)  # refused by everyone
                return
            pytest.fail(f"refused {mutated!r}, which Python's json reads: {exc}")
        return  # valid JSON but not settings we can merge into (top level a list, ...)
    assert strict_json(mutated) == doc
    assert seen["ok"], (mutated, seen)
    installed = render_settings(merge_settings(doc, L)[0], raw)
    assert node.read(installed.decode())["ok"]


MUTATED = (settings_text(), st.sampled_from(NOT_JSON), st.integers(0, 10_000))


def test_what_we_accept_both_readers_read_alike_and_what_we_refuse_they_refuse(node):
    given_examples(QUICK, *MUTATED)(strictness)(node)


@pytest.mark.slow
def test_what_we_accept_both_readers_read_alike_many(node):
    given_examples(MANY, *MUTATED)(strictness)(node)


def test_a_duplicate_key_is_refused_though_both_readers_would_take_it(node):
    text = '{"model": "opus", "model": "sonnet"}'
    assert node.read(text)["ok"]
    with pytest.raises(SettingsInvalid) as info:
        parse_settings(text.encode(), "/p/settings.json")
    assert info.value.problem == 'not valid JSON: duplicate key "model" at line 1 column 19'


def test_the_reported_values_survive_install_and_uninstall_as_written(node):
    text = '{"big": 1e400, "one": 1.0, "neg": -0, "e": "\\u00e9", "\u00e9": "\\ud83d", "s": "\\/"}'
    installed = render_settings(merge_settings(parse_settings(text.encode(), "s"), L)[0], text.encode())
    assert installed.startswith(text[:-1].encode() + b', "hooks": {"SessionStart": [{"hooks": [{"type": "command"')
    assert node.read(installed.decode())["ok"]
    assert render_settings(unmerge_settings(parse_settings(installed, "s"))[0], installed) == text.encode()


def test_a_moved_launcher_changes_only_the_command_strings():
    old = "/old/venv/bin/sessionward"
    installed_by_old = json.dumps(merge_settings({"model": "opus"}, old)[0], indent="\t").replace("\n", "\r\n")
    text = installed_by_old.replace('"padding": 0,', '"padding":0  ,').replace('"refreshInterval": 3', '"refreshInterval": 5')
    updated = render_settings(merge_settings(parse_settings(text.encode(), "s"), L)[0], text.encode())
    assert updated == text.replace(old, L).encode()


def test_new_values_are_written_faithfully_or_not_at_all():
    from sessionward.install import jsonedit

    # a lone surrogate cannot be UTF-8: its escape means the same to both readers
    assert jsonedit.rewrite('{"b": 1}', {"b": 1, "a": "\udcff"}) == '{"b": 1, "a": "\\udcff"}'
    for bad in ({"a": float("inf")}, {"a": float("nan")}, {1: "x"}, {"a": object()}):
        with pytest.raises(jsonedit.CannotEdit):
            jsonedit.rewrite('{"b": 1}', dict(bad, b=1))
