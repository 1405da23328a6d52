"""sessionward.transcript: a tool call's result found in a real Claude Code transcript."""

import os
from datetime import datetime

import pytest

from sessionward.transcript import find_tool_result, utc_epoch

REFUSAL_LINES = os.path.join(os.path.dirname(__file__), "hooks", "payloads", "2.1.331", "permission",
                             "transcript-after-refusal.jsonl")
REFUSED_ID = "toolu_mock_0000074ff86c2c2db6"  # the Bash call refused in that run


@pytest.mark.parametrize("text", ["2026-12-06T04:14:14.077Z", "1970-01-01T00:00:00.000Z", "2000-02-29T23:59:59.999Z",
                                  "2100-03-01T12:30:00Z", "1969-12-31T23:59:59.500Z"])
def test_utc_epoch_agrees_with_datetime(text):
    assert utc_epoch(text) == pytest.approx(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp(), abs=1e-6)


@pytest.mark.parametrize("text", [None, 12, "", "2026-12-06 04:14:14Z", "2026-13-06T04:14:14.077Z", "2026-12-06T04:14:14",
                                  "yyyy-12-06T04:14:14.077Z"])
def test_utc_epoch_refuses_what_is_not_such_a_time(text):
    assert utc_epoch(text) is None


def test_the_real_refusal_is_found_with_its_time_and_others_are_not(tmp_path):
    path = tmp_path / "t.jsonl"
    with open(REFUSAL_LINES, encoding="utf-8") as f:
        path.write_text("x" * 100 + "\n" + f.read())  # a cut first line, as a tail read may see
    found = find_tool_result(str(path), REFUSED_ID)
    assert found is not None and found.refused and found.at == utc_epoch("2026-12-06T04:14:14.077Z")
    assert find_tool_result(str(path), "toolu_other") is None
    assert find_tool_result(str(path), REFUSED_ID, not_before=os.stat(path).st_mtime + 60) is None  # not written since
    assert find_tool_result(str(tmp_path / "missing.jsonl"), REFUSED_ID) is None
    assert find_tool_result("relative.jsonl", REFUSED_ID) is None
    os.symlink(path, tmp_path / "link.jsonl")
    assert find_tool_result(str(tmp_path / "link.jsonl"), REFUSED_ID) is None  # O_NOFOLLOW


def test_a_result_followed_by_a_large_record_is_found_and_the_call_itself_ends_the_search(tmp_path):
    """2.1.331 writes a ~100 KB "attachment" record right after a refusal (seen in the TUI):
    the search reads back past it; it stops at the call's own tool_use record."""
    path = tmp_path / "t.jsonl"
    call = '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"%s","name":"Bash"}]}}\n' % REFUSED_ID
    big = '{"type":"attachment","blob":"%s"}\n' % ("x" * 300_000)
    with open(REFUSAL_LINES, encoding="utf-8") as f:
        refusal = f.read()
    path.write_text(big + call + refusal + big + big)
    found = find_tool_result(str(path), REFUSED_ID)
    assert found is not None and found.refused
    path.write_text(refusal + call + big)  # an older result before the call (cannot happen): not looked at
    assert find_tool_result(str(path), REFUSED_ID) is None
