"""JSON for the hot path: the C accelerator `_json` driven directly.

`import json` pulls in `re` and `enum`, about as long as a bare interpreter start on a slow
machine; every hook and the status line pay for it. `_json` is the same C code `json` uses,
so results are identical. Where it is missing or its signature differs (another Python
implementation), we fall back to the `json` package: slower, same behaviour.
"""

try:
    import _json

    class _ScanContext:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        memo: dict = {}

        @staticmethod
        def parse_constant(name: str) -> float:
            # NaN, Infinity, -Infinity are not JSON: refuse them, as dumps does.
            raise ValueError(f"invalid JSON constant {name}")

    # parse_float may see "1e999" (a valid JSON number that does not fit a float): keep it
    # from becoming infinity, which nothing downstream can encode again.
    def _finite_float(text: str) -> float:
        value = float(text)
        if value - value != 0:
            raise ValueError(f"number {text} is out of range")
        return value

    _ScanContext.parse_float = staticmethod(_finite_float)  # type: ignore[assignment]
    _scan_once = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]
    _encode_compact = _json.make_encoder(
        {}, None, _json.encode_basestring, None, ":", ",", False, False, False  # type: ignore[arg-type]
    )
    _FAST = True
except Exception:  # pragma: no cover - exercised only on interpreters without _json
    import json as _stdjson

    _FAST = False

_WS = " \t\n\r"


def loads(text: str | bytes):
    """Parse one JSON document; raise ValueError on anything else (trailing garbage too)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if not _FAST:  # pragma: no cover
        return _stdjson.loads(text)
    start = 0
    length = len(text)
    while start < length and text[start] in _WS:
        start += 1
    try:
        value, end = _scan_once(text, start)
    except StopIteration as exc:
        raise ValueError(f"expected a JSON value at offset {exc.value}") from None
    except SystemError:
        # The scanner builds its JSONDecodeError from an already-imported json.decoder and
        # fails bare without it: bad input only, so pay for the import and let json explain.
        import json

        json.loads(text)
        raise ValueError("invalid JSON") from None  # pragma: no cover - json raised above
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    finally:
        _ScanContext.memo.clear()
    while end < length and text[end] in _WS:
        end += 1
    if end != length:
        raise ValueError(f"extra data after the JSON value at offset {end}")
    return value


def dumps(value) -> str:
    """Compact JSON, UTF-8 kept as is; raise ValueError for values JSON cannot hold."""
    if not _FAST:  # pragma: no cover
        return _stdjson.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return "".join(_encode_compact(value, 0))
    except (TypeError, RecursionError) as exc:
        raise ValueError(f"cannot encode as JSON: {exc}") from None


def dumps_line(value) -> str:
    """One JSON line (no newline) that is valid UTF-8 whatever it holds: a lone surrogate
    (from undecodable bytes in argv, or a "\\ud800" escape in a hook's input) becomes its JSON
    escape again, inside its string. What the CLI's --json and the hooks' answers print."""
    return dumps(value).encode("utf-8", "backslashreplace").decode("utf-8")


def require_utf8(text: str, what: str) -> None:
    """BadInput unless `text` can be stored as UTF-8 JSON: names and purposes from the command
    line or the file system may hold undecodable bytes (lone surrogates) that could be neither
    written nor printed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        from sessionward.errors import BadInput

        raise BadInput(f"{what} {text.encode('utf-8', 'backslashreplace').decode()!r} is not valid UTF-8") from None
