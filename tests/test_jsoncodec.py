"""The hot-path JSON codec agrees with the json package, and fails only with ValueError."""

import json
import math

from hypothesis import given, settings, strategies as st

from sessionward import _jsoncodec

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=200)
@given(values)
def test_round_trip_matches_json(value):
    encoded = _jsoncodec.dumps(value)
    assert json.loads(encoded) == value
    assert _jsoncodec.loads(encoded) == value
    assert _jsoncodec.loads(json.dumps(value, indent=2)) == value


@settings(max_examples=400)
@given(st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_parses_exactly_what_json_parses(text):
    try:
        expected = json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    except (ValueError, RecursionError):
        expected = ValueError
    try:
        got = _jsoncodec.loads(text)
    except ValueError:
        got = ValueError
    if expected is not ValueError and isinstance(expected, float) and math.isnan(expected):
        return
    assert got == expected


def test_rejects_nan_and_deep_nesting_with_value_error():
    for bad in ("NaN", "[Infinity]", "[" * 200_000, "{} extra", "", b"\xff\xfe"):
        try:
            _jsoncodec.loads(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r:.20}")
    for bad in (float("nan"), {"x": object()}, {1j: 2}):
        try:
            _jsoncodec.dumps(bad)
        except ValueError:
            continue
        raise AssertionError(f"encoded {bad!r}")
