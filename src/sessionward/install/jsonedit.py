"""A format-preserving JSON editor: give a document new values, keep every other byte as it is.

install and uninstall edit the user's settings.json. Writing the whole document out again
would rewrite what the user wrote: indentation, key order, spacing, numbers as written (1e400,
1.0, -0), escapes as written (\\u00e9, a lone "\\ud83d"), CRLF line ends. So this module parses
the text once, records the span of every value, and rewrites only the spans whose value changed.

  parse(text) -> Node              strict parse; node.value is the Python value, node.start and
                                   node.end its span in `text` (str offsets)
  rewrite(text, value) -> str      `text` changed so that it parses to `value` (see Splicing)
  dumps(value, indent="  ") -> str a new document, laid out like json.dumps(value, indent=2)

Strict: RFC 8259 and nothing more, the language that JSON.parse (Claude Code is a node program)
and Python's json agree on: no NaN or Infinity, no comments, no trailing comma, no byte order
mark, no control character inside a string, only space, tab, LF and CR between tokens. Also
refused, though both readers take it (the last one wins): a duplicate key in any object, since
an edit could change which one counts; and nesting deeper than MAX_DEPTH. A refusal is a
ParseError (a ValueError) carrying msg, lineno and colno.

Values: object -> dict (key order kept), array -> list, string -> str (an escaped lone
surrogate stays a lone surrogate), true/false/null -> True/False/None, number -> int when
written without fraction or exponent (up to 4000 digits), else float (1e400 -> inf). Numbers
are only compared, never written back: a number the edit leaves alone keeps its text.

Splicing: rewrite compares the old parse with `value`, top down, and rebuilds only what differs.
  - A value equal to the old one (same types, same key order) keeps its bytes.
  - An object whose remaining keys keep their order, and any array, is edited entry by entry
    (array entries are aligned with a small edit distance, so an entry changed in place is
    edited in place, recursively):
      removed entry: goes with the separator before it (after it, when it is the first);
      added entry: goes in after the entry it follows, behind a copy of the separator found
        there (so with its indentation and line end), laid out like the container: over
        several lines with the document's indentation step, or on one line when the container
        is on one line; into an empty container: one step deeper than the container's line.
    Adding entries and removing them again gives back the original bytes. A container whose
    entries are all removed becomes {} or [] (whitespace it held when empty is not remembered).
  - Anything else (a scalar changed, keys reordered, a type changed) is replaced whole.
The result is parsed again and must give exactly `value`, or CannotEdit is raised. It is a bug
to pass a value JSON cannot hold: a float that is not finite or an object key that is not a
str raise CannotEdit; a lone surrogate in a new string is written as its \\u escape.
"""

import json.decoder
import json.encoder
import re
from typing import NoReturn

MAX_DEPTH = 200
_WS = " \t\n\r"
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = (("true", True), ("false", False), ("null", None))
_NOT_JSON = ("NaN", "Infinity", "-Infinity")
_MAX_INT_DIGITS = 4000  # int() refuses longer strings on Python >= 3.11
_SURROGATE = re.compile("[\ud800-\udfff]")


class ParseError(ValueError):
    """Text this module will not edit: where and why."""

    def __init__(self, msg: str, text: str, pos: int) -> None:
        self.msg = msg
        self.pos = pos
        self.lineno = text.count("\n", 0, pos) + 1
        self.colno = pos - text.rfind("\n", 0, pos)
        super().__init__(f"{msg} at line {self.lineno} column {self.colno}")


class CannotEdit(ValueError):
    """The edit would not give exactly the value asked for; the text is not to be replaced."""


class Node:
    """One value of the parsed text. Containers list their entries' nodes in `children`;
    objects also their keys, and where each key starts and ends (an entry spans from its key)."""

    __slots__ = ("start", "end", "value", "children", "keys", "key_starts", "key_ends")

    def __init__(self, start: int, end: int, value, children=None, keys=None) -> None:
        self.start = start
        self.end = end
        self.value = value
        self.children = children
        self.keys = keys
        self.key_starts: list[int] = []
        self.key_ends: list[int] = []

    def entry_start(self, i: int) -> int:
        return self.key_starts[i] if self.keys is not None else self.children[i].start


# --- parsing ---------------------------------------------------------------------------------


def parse(text: str) -> Node:
    """The one JSON value in `text` (whitespace around it allowed); ParseError for anything else."""
    parser = _Parser(text)
    node = parser.value(parser.skip(0), 0)
    end = parser.skip(node.end)
    if end != len(text):
        parser.fail("Extra data", end)
    return node


class _Parser:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, msg: str, pos: int) -> NoReturn:
        raise ParseError(msg, self.text, pos)

    def skip(self, pos: int) -> int:
        text, length = self.text, len(self.text)
        while pos < length and text[pos] in _WS:
            pos += 1
        return pos

    def value(self, pos: int, depth: int) -> Node:
        text = self.text
        char = text[pos] if pos < len(text) else ""
        if char == "{" or char == "[":
            if depth >= MAX_DEPTH:
                self.fail(f"nested deeper than {MAX_DEPTH} levels", pos)
            return self.container(pos, depth + 1)
        if char == '"':
            string, end = self.string(pos)
            return Node(pos, end, string)
        match = _NUMBER.match(text, pos)
        if match:
            token = match.group()
            integral = match.group(1) is None and match.group(2) is None
            number = int(token) if integral and len(token) <= _MAX_INT_DIGITS else float(token)
            return Node(pos, match.end(), number)
        for word, literal in _LITERALS:
            if text.startswith(word, pos):
                return Node(pos, pos + len(word), literal)
        for word in _NOT_JSON:
            if text.startswith(word, pos):
                self.fail(f"{word} is not a JSON value", pos)
        self.fail("Expecting value", pos)

    def string(self, pos: int) -> tuple[str, int]:
        try:
            # the stdlib's own scanner: escapes, surrogate pairs, control characters refused
            return json.decoder.scanstring(self.text, pos + 1, True)  # type: ignore[attr-defined]
        except json.JSONDecodeError as exc:
            self.fail(exc.msg.removesuffix(" at"), exc.pos)

    def container(self, start: int, depth: int) -> Node:
        text, length = self.text, len(self.text)
        is_object = text[start] == "{"
        closer = "}" if is_object else "]"
        value: dict | list = {} if is_object else []
        node = Node(start, -1, value, [], [] if is_object else None)
        pos = self.skip(start + 1)
        if pos < length and text[pos] == closer:
            node.end = pos + 1
            return node
        while True:
            if is_object:
                if pos >= length or text[pos] != '"':
                    self.fail("Expecting property name enclosed in double quotes", pos)
                key, key_end = self.string(pos)
                if key in value:
                    self.fail(f"duplicate key {json.encoder.encode_basestring_ascii(key)}", pos)
                node.keys.append(key)
                node.key_starts.append(pos)
                node.key_ends.append(key_end)
                pos = self.skip(key_end)
                if pos >= length or text[pos] != ":":
                    self.fail("Expecting ':' delimiter", pos)
                pos = self.skip(pos + 1)
            child = self.value(pos, depth)
            node.children.append(child)
            if is_object:
                value[key] = child.value  # type: ignore[call-overload]
            else:
                value.append(child.value)  # type: ignore[union-attr]
            pos = self.skip(child.end)
            if pos < length and text[pos] == ",":
                pos = self.skip(pos + 1)
                continue
            if pos < length and text[pos] == closer:
                node.end = pos + 1
                return node
            self.fail("Expecting ',' delimiter", pos)


# --- writing ---------------------------------------------------------------------------------


def dumps(value, indent: str = "  ") -> str:
    """`value` as a new document: json.dumps(value, indent=len(indent)) for what JSON can hold."""
    return _dump(value, "", _Layout(indent, "\n", ": ", " "), True)


def rewrite(text: str, value) -> str:
    """`text` with `value` in place of the value it holds, changed only where they differ."""
    root = parse(text)
    editor = _Editor(text, root)
    new = text[: root.start] + editor.render(root, value, editor.multiline) + text[root.end :]
    try:
        check = parse(new)
    except ParseError as exc:  # pragma: no cover - a bug here, reported, never written
        raise CannotEdit(f"the edited text would not be valid JSON ({exc})") from None
    if not same(check.value, value):  # pragma: no cover - as above
        raise CannotEdit("the edited text would not hold the values asked for")
    return new


def same(a, b) -> bool:
    """Equal as JSON values, and written alike: same types (1 is not 1.0 nor true), same key order."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return len(a) == len(b) and all(ka == kb and same(a[ka], b[kb]) for ka, kb in zip(a, b))
    if type(a) is list:
        return len(a) == len(b) and all(map(same, a, b))
    return a == b


class _Layout:
    __slots__ = ("unit", "newline", "colon", "space")

    def __init__(self, unit: str, newline: str, colon: str, space: str) -> None:
        self.unit = unit  # one indentation step
        self.newline = newline
        self.colon = colon  # between a key and its value, e.g. ": "
        self.space = space  # after a comma, on one line


def _dump(value, indent: str, layout: _Layout, multiline: bool) -> str:
    if isinstance(value, (dict, list)):
        if not value:
            return "{}" if isinstance(value, dict) else "[]"
        inner = indent + layout.unit if multiline else indent
        if isinstance(value, dict):
            parts = [_key(k) + layout.colon + _dump(v, inner, layout, multiline) for k, v in value.items()]
            opener, closer = "{", "}"
        else:
            parts = [_dump(v, inner, layout, multiline) for v in value]
            opener, closer = "[", "]"
        if not multiline:
            return opener + ("," + layout.space).join(parts) + closer
        line = layout.newline + inner
        return opener + line + ("," + line).join(parts) + layout.newline + indent + closer
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and value - value == 0:
        return float.__repr__(value)
    raise CannotEdit(f"{value!r} is not a value JSON can hold")


def _key(key) -> str:
    if not isinstance(key, str):
        raise CannotEdit(f"object key {key!r} is not a string")
    return _string(key)


def _string(text: str) -> str:
    encoded = json.encoder.encode_basestring(text)  # non-ASCII kept as is, like the file's own
    # A lone surrogate cannot be written as UTF-8; its escape means the same to a JSON reader.
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


class _Editor:
    """The layout found in one text, and the rendering of new values into it."""

    def __init__(self, text: str, root: Node) -> None:
        self.text = text
        first_newline = text.find("\n")
        newline = "\r\n" if first_newline > 0 and text[first_newline - 1] == "\r" else "\n"
        colon = _first_colon(text, root)
        self.layout = _Layout(_indent_unit(text, root), newline, colon, " " if colon.endswith(" ") else "")
        # an empty root is laid out over several lines, like a new file
        self.multiline = not root.children or "\n" in text[root.start : root.end]

    def line_indent(self, pos: int) -> str:
        start = self.text.rfind("\n", 0, pos) + 1
        return _leading_blanks(self.text[start:pos])

    def render(self, node: Node, value, multiline: bool) -> str:
        """The new text of `node`'s span. `multiline`: the layout of the container around it."""
        old = node.value
        if same(old, value):
            return self.text[node.start : node.end]
        if isinstance(old, dict) and isinstance(value, dict):
            entries = self._object_entries(node, value)
            if entries is not None:
                return self._assemble(node, entries, multiline)
        elif isinstance(old, list) and isinstance(value, list):
            return self._assemble(node, self._array_entries(node, value), multiline)
        if node.children:  # a container replaced whole keeps its own layout
            multiline = "\n" in self.text[node.start : node.end]
        return _dump(value, self.line_indent(node.start), self.layout, multiline)

    def _inner_multiline(self, node: Node) -> bool:
        return "\n" in self.text[node.start + 1 : node.entry_start(0)]

    def _object_entries(self, node: Node, value: dict) -> list | None:
        index = {key: i for i, key in enumerate(node.keys)}
        if [k for k in node.keys if k in value] != [k for k in value if k in index]:
            return None  # keys reordered: not an edit this module makes
        inner = self._inner_multiline(node) if node.children else False
        entries: list = []
        for key, item in value.items():
            i = index.get(key)
            if i is None:
                entries.append((None, key, item))
                continue
            child = node.children[i]
            head = self.text[node.key_starts[i] : child.start]  # key, colon and spacing as written
            entries.append((i, None, head + self.render(child, item, inner)))
        return entries

    def _array_entries(self, node: Node, value: list) -> list:
        inner = self._inner_multiline(node) if node.children else False
        entries: list = []
        for i, j in _align([c.value for c in node.children], value):
            if i is None:
                entries.append((None, None, value[j]))  # type: ignore[index]  # _align pairs no None with None
            elif j is not None:
                entries.append((i, None, self.render(node.children[i], value[j], inner)))
        return entries

    def _assemble(self, node: Node, entries: list, multiline: bool) -> str:
        """The container from `entries`: (old index, None, its new text) for an entry kept,
        (None, key or None, value) for an entry added, in their new order."""
        text, layout = self.text, self.layout
        opener, closer = text[node.start], text[node.end - 1]
        count = len(node.children)
        if not entries:
            return opener + closer
        if count == 0:
            own = self.line_indent(node.start)
            inner = own + layout.unit if multiline else own
            parts = [self._new_entry(key, item, inner, multiline) for _, key, item in entries]
            if not multiline:
                return opener + ("," + layout.space).join(parts) + closer
            line = layout.newline + inner
            return opener + line + ("," + line).join(parts) + layout.newline + own + closer
        starts = [node.entry_start(i) for i in range(count)]
        ends = [child.end for child in node.children]
        lead = text[node.start + 1 : starts[0]]
        seps = [text[ends[i] : starts[i + 1]] for i in range(count - 1)]
        tail = text[ends[-1] : node.end - 1]

        def separator_after(i: int) -> str:
            """What goes before an entry added after old entry i (-1: before all of them)."""
            if i >= 1:
                return seps[i - 1]
            if seps:
                return seps[0]
            return "," + (lead or layout.space)

        out = [opener, lead]
        last_old = -1
        for n, (i, key, item) in enumerate(entries):
            if i is not None:
                if n:
                    out.append(seps[i - 1] if i >= 1 else separator_after(-1))
                out.append(item)
                last_old = i
                continue
            before = separator_after(last_old) if n else lead
            if n:
                out.append(before)
            blank = before.rsplit("\n", 1)[-1] if "\n" in before else ""
            out.append(self._new_entry(key, item, _leading_blanks(blank), "\n" in before))
        out += [tail, closer]
        return "".join(out)

    def _new_entry(self, key, item, indent: str, multiline: bool) -> str:
        head = "" if key is None else _key(key) + self.layout.colon
        return head + _dump(item, indent, self.layout, multiline)


def _leading_blanks(text: str) -> str:
    return text[: len(text) - len(text.lstrip(" \t"))]


def _indent_unit(text: str, root: Node) -> str:
    """The indentation of the first indented line inside the root when it is all spaces or
    all tabs, else two spaces."""
    for line in text[root.start : root.end].split("\n")[1:]:
        lead = _leading_blanks(line)
        if not lead or lead == line.rstrip("\r"):
            continue
        if lead == " " * len(lead) or lead == "\t" * len(lead):
            return lead
        break
    return "  "


def _first_colon(text: str, root: Node) -> str:
    """What separates the first key in the document from its value, when on one line."""
    pending = [root]
    while pending:
        node = pending.pop(0)
        if node.keys:
            colon = text[node.key_ends[0] : node.children[0].start]
            return colon if "\n" not in colon and "\r" not in colon else ": "
        pending.extend(node.children or ())
    return ": "


# --- aligning array entries ------------------------------------------------------------------

_STEP = 100  # integer costs: deleting or inserting an entry costs _STEP


def _align(old: list, new: list) -> list[tuple[int | None, int | None]]:
    """Pairs (i, j): old[i] became new[j]; (i, None) removed; (None, j) added. In order; the
    cheapest by edit distance, where changing an entry in place costs less the more alike it
    stays (so a modified entry keeps its place instead of being removed and added again)."""
    n, m = len(old), len(new)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            if i == n or j == m:
                cost[i][j] = _STEP * ((n - i) + (m - j))
            else:
                cost[i][j] = min(_change_cost(old[i], new[j]) + cost[i + 1][j + 1],
                                 _STEP + cost[i + 1][j], _STEP + cost[i][j + 1])
    pairs: list[tuple[int | None, int | None]] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and cost[i][j] == _change_cost(old[i], new[j]) + cost[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif i < n and cost[i][j] == _STEP + cost[i + 1][j]:
            pairs.append((i, None))
            i += 1
        else:
            pairs.append((None, j))
            j += 1
    return pairs


def _change_cost(a, b) -> int:
    if same(a, b):
        return 0
    return _STEP - _STEP // 2 * _likeness(a, b) // _STEP  # between _STEP / 2 and _STEP


def _likeness(a, b) -> int:
    """0 (nothing alike) to _STEP (equal): the share of members two containers have in common."""
    if same(a, b):
        return _STEP
    if isinstance(a, dict) and isinstance(b, dict):
        shared = sum(_STEP if same(a[k], b[k]) else _likeness(a[k], b[k]) // 2 for k in a if k in b)
        return shared // max(len(a), len(b))
    if isinstance(a, list) and isinstance(b, list) and a and b:
        return _STEP * sum(1 for x in a if any(same(x, y) for y in b)) // max(len(a), len(b))
    return 0
