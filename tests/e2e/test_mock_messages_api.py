"""The Messages API stub on its own (no CLI, quick): SSE framing, script and step choice,
side requests, holds, and the other endpoints."""

import http.client
import json
import threading

import pytest

from e2e.mock_messages_api import MockMessagesAPI, bash, text, tool_uses, write


@pytest.fixture
def api():
    api = MockMessagesAPI().start()
    yield api
    api.stop()


def post(api, body, path="/v1/messages?beta=true"):
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read().decode()
    conn.close()
    return resp, data


def sse(data: str) -> list[tuple[str, dict]]:
    events = []
    for frame in data.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def request(marker, assistant_turns=0, tools=True, stream=True):
    messages = [{"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"},
                                             {"type": "text", "text": f"{marker} do it"}]}]
    for i in range(assistant_turns):
        messages += [{"role": "assistant", "content": [{"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{i}",
                                                   "content": f"result {i}", "is_error": i == 1}]}]
    body = {"model": "m", "messages": messages, "stream": stream, "max_tokens": 100}
    if tools:
        body["tools"] = [{"name": "Bash"}]
    return body


def test_stream_follows_the_script_by_assistant_turns(api):
    marker = api.script([write("/p/x.txt", "hi\n"), tool_uses(("Bash", {"command": "a"}), ("Bash", {"command": "b"})),
                         text("bye")])
    resp, data = post(api, request(marker, 0))
    assert resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream"
    events = sse(data)
    assert [e for e, _ in events] == ["message_start", "content_block_start", "content_block_delta",
                                      "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert all(d["type"] == e for e, d in events)
    start = events[1][1]["content_block"]
    assert (start["type"], start["name"], start["input"]) == ("tool_use", "Write", {})
    joined = "".join(d["delta"]["partial_json"] for e, d in events if e == "content_block_delta")
    assert json.loads(joined) == {"file_path": "/p/x.txt", "content": "hi\n"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"

    events = sse(post(api, request(marker, 1))[1])
    assert [d["content_block"]["input"] for e, d in events if e == "content_block_start"] == [{}, {}]
    assert [d["index"] for e, d in events if e == "content_block_stop"] == [0, 1]

    events = sse(post(api, request(marker, 2))[1])
    assert events[2][1]["delta"] == {"type": "text_delta", "text": "bye"}
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"

    events = sse(post(api, request(marker, 3))[1])  # past the end: a final "Done."
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"

    assert [r.step for r in api.requests_for(marker)] == [0, 1, 2, 3]
    assert [tool_result_ids["tool_use_id"] for tool_result_ids in api.tool_results(marker)] == ["t0", "t1", "t2"]
    assert api.tool_results(marker)[1]["is_error"] is True


def test_the_last_typed_prompt_picks_the_script(api):
    """One interactive session, two typed prompts: the second turn follows the second script
    from its first step, and a marker quoted only in a tool result picks nothing."""
    first = api.script([bash("echo one"), text("first done")])
    second = api.script([write("/p/y.txt", "y\n"), text("second done")])
    body = request(first, 1)
    body["messages"] += [{"role": "assistant", "content": [{"type": "text", "text": "first done"}]},
                         {"role": "user", "content": [{"type": "text", "text": f"{second} next"}]}]
    events = sse(post(api, body)[1])
    assert events[1][1]["content_block"]["name"] == "Write"
    body["messages"] += [{"role": "assistant", "content": [{"type": "tool_use", "id": "w", "name": "Write", "input": {}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "w",
                                                       "content": f"quoted {first}"}]}]
    events = sse(post(api, body)[1])
    assert events[2][1]["delta"]["text"] == "second done"
    assert [r.step for r in api.requests_for(second)] == [0, 1]
    assert api.requests_for(first) == []


def test_requests_without_tools_or_marker_are_side_requests(api):
    marker = api.script([bash("true")])
    resp, data = post(api, request(marker, tools=False, stream=False))
    body = json.loads(data)
    assert body["content"] == [{"type": "text", "text": "OK"}] and body["stop_reason"] == "end_turn"
    post(api, request("nomarker"))
    assert [r.kind for r in api.requests] == ["side", "side"]
    assert api.requests_for(marker) == []


def test_held_step_waits_for_release(api):
    marker = api.script([text("late", hold=True)])
    out = {}
    thread = threading.Thread(target=lambda: out.update(data=post(api, request(marker))[1]))
    thread.start()
    assert api.wait_held(marker, timeout=10) == 0
    thread.join(0.3)
    assert thread.is_alive()
    api.release(marker)
    thread.join(10)
    assert "late" in out["data"]


def test_other_endpoints(api):
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    conn.request("HEAD", "/api/hello")
    assert conn.getresponse().status == 200
    conn.close()
    resp, data = post(api, request("x"), path="/v1/messages/count_tokens?beta=true")
    assert resp.status == 200 and json.loads(data)["input_tokens"] > 0
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=10)
    conn.request("GET", "/v1/models")
    assert json.loads(conn.getresponse().read())["data"]
    conn.close()
    resp, _ = post(api, {}, path="/v1/elsewhere")
    assert resp.status == 404
    assert api.paths()[-1] == "POST /v1/elsewhere"
