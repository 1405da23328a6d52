"""A scripted stand-in for the Anthropic Messages API, on 127.0.0.1, for driving the real
Claude Code CLI offline (see shared/claude-code/FACTS.md, "Running the real CLI in tests").

Each session is given a script: a list of steps, each the whole of one model turn, either
tool calls (`tool_use(...)`, several in one step for parallel calls) or a final `text(...)`.
The stub is stateless per request: it finds the script by a marker word in the last prompt
the person typed (the last user message with a marker in its own text, not in a tool result:
the `-p` prompt, or in the TUI the latest of several typed prompts; the harness puts a unique
marker there) and the step by the number of assistant messages after that prompt. So one
interactive session runs several scripted turns, one script per prompt, the stub serves
several sessions at once, and a retried request gets the same answer.

Every request is recorded (`api.requests`), so a test can assert on what the CLI sent: the
additionalContext of a SessionStart hook in the first request, the `is_error` tool_result
carrying a PreToolUse hook's deny reason, and so on.

A step made with `hold=True` is not answered until the test calls `api.release(marker)`:
the session is then alive and waiting on the model mid-turn, which is how a test keeps one
session running while another acts (`api.wait_held(marker)` tells when it got there).

Standard library only; usable on its own: `python mock_messages_api.py` serves a default
script and logs every request (how the endpoints the CLI calls were found).
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MODEL_FALLBACK = "claude-sonnet-4-5"


# --- scripts -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict


@dataclass(frozen=True)
class Step:
    """One model turn: text and/or tool calls. With tool calls the stop reason is tool_use."""
    blocks: tuple  # of str (a text block) and ToolUse
    hold: bool = False

    @property
    def stop_reason(self) -> str:
        return "tool_use" if any(isinstance(b, ToolUse) for b in self.blocks) else "end_turn"


def text(message: str, *, hold: bool = False) -> Step:
    """A final answer: ends the turn (stop_reason end_turn), so a `-p` run exits."""
    return Step((message,), hold=hold)


def tool_use(name: str, input: dict, *, hold: bool = False) -> Step:
    """One tool call, e.g. tool_use("Write", {"file_path": "/abs/x.txt", "content": "hi"})."""
    return Step((ToolUse(name, dict(input)),), hold=hold)


def tool_uses(*calls: tuple[str, dict], hold: bool = False) -> Step:
    """Several tool calls in one turn (Claude Code runs them, and their hooks, concurrently)."""
    return Step(tuple(ToolUse(name, dict(inp)) for name, inp in calls), hold=hold)


def bash(command: str, *, description: str = "run a command", timeout_ms: int | None = None,
         hold: bool = False) -> Step:
    """A Bash tool call (needs `--allowedTools Bash`, which the harness passes)."""
    inp: dict[str, Any] = {"command": command, "description": description}
    if timeout_ms is not None:
        inp["timeout"] = timeout_ms
    return tool_use("Bash", inp, hold=hold)


def read(file_path: str, *, hold: bool = False) -> Step:
    """A Read: Claude Code refuses an Edit, or a Write over an existing file, not read first."""
    return tool_use("Read", {"file_path": str(file_path)}, hold=hold)


def write(file_path: str, content: str, *, hold: bool = False) -> Step:
    return tool_use("Write", {"file_path": str(file_path), "content": content}, hold=hold)


def edit(file_path: str, old: str, new: str, *, hold: bool = False) -> Step:
    return tool_use("Edit", {"file_path": str(file_path), "old_string": old, "new_string": new},
                    hold=hold)


DEFAULT_FINAL = text("Done.")


# --- what was received ---------------------------------------------------------------------

@dataclass
class Recorded:
    """One request as received. `body` is the parsed JSON (None if not JSON)."""
    method: str
    path: str
    headers: dict
    body: Any
    at: float
    marker: str | None = None   # the script it was matched to (messages requests only)
    step: int | None = None     # index into that script; len(script) and up = past its end
    kind: str = "other"         # "main" (answered from the script), "side", "other"

    @property
    def messages(self) -> list:
        return (self.body or {}).get("messages", []) if isinstance(self.body, dict) else []

    @property
    def session_id(self) -> str | None:
        """Claude Code's session id, from the X-Claude-Code-Session-Id header (2.1.331) or
        the request's metadata.user_id JSON."""
        for key, value in self.headers.items():
            if key.lower() == "x-claude-code-session-id":
                return value
        try:
            return json.loads(self.body["metadata"]["user_id"])["session_id"]
        except (TypeError, KeyError, ValueError):
            return None

    def text(self) -> str:
        """All text of the request (system, messages, tool results) as one string."""
        return flatten_text(self.body)

    def tool_results(self) -> list[dict]:
        """The tool_result blocks of the request, in order."""
        out = []
        for msg in self.messages:
            content = msg.get("content")
            if isinstance(content, list):
                out.extend(b for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
        return out


def flatten_text(value: Any) -> str:
    """Every string inside a JSON value, joined by newlines (for `in` assertions)."""
    parts: list[str] = []

    def walk(v):
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, dict):
            for item in v.values():
                walk(item)
        elif isinstance(v, list):
            for item in v:
                walk(item)

    walk(value)
    return "\n".join(parts)


def _typed_text(content: Any) -> str:
    """The text of a user message less its tool results (a marker quoted by a command's output
    or a hook's reason is no typed prompt)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(flatten_text(b) for b in content
                         if not (isinstance(b, dict) and b.get("type") == "tool_result"))
    return ""


def tool_result_text(block: dict) -> str:
    return flatten_text(block.get("content"))


# --- the server ----------------------------------------------------------------------------

class MockMessagesAPI:
    """Start with `start()` (or as a context manager); `base_url` is then http://127.0.0.1:PORT."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, log=None):
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._scripts: dict[str, list[Step]] = {}
        self._held: set[tuple[str, int]] = set()       # (marker, step) waiting now
        self._released: set[tuple[str, int]] = set()   # (marker, step) let through
        self._ids = itertools.count(1)
        self.requests: list[Recorded] = []
        self.log = log  # a callable taking one line, or None
        self.hold_timeout = 120.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> "MockMessagesAPI":
        handler = type("Handler", (_Handler,), {"api": self})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="mock-messages-api",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._released.update(self._held)  # let every held request go
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # scripts
    def script(self, steps: list[Step], marker: str | None = None) -> str:
        """Register a script; returns its marker (a new unique word unless given). The marker
        must appear in the session's prompt."""
        marker = marker or f"swmark{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._scripts[marker] = list(steps)
        return marker

    def _find_marker(self, body: dict) -> tuple[str | None, int]:
        """The marker of the last typed prompt, and the number of assistant messages after it."""
        messages = body.get("messages") or []
        with self._lock:
            markers = list(self._scripts)
        after = 0
        for message in reversed(messages):
            if message.get("role") == "assistant":
                after += 1
            elif message.get("role") == "user":
                found = [m for m in markers if m in _typed_text(message.get("content"))]
                if found:
                    return max(found, key=len), after
        return None, 0

    # holds
    def wait_held(self, marker: str, step: int | None = None, timeout: float = 60.0) -> int:
        """Block until a held step of `marker`'s script (that step, if given) is waiting;
        returns its index."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                waiting = sorted(s for (m, s) in self._held if m == marker and (step is None or s == step))
                if waiting:
                    return waiting[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no held request for {marker} (step {step}) within {timeout}s")
                self._cond.wait(left)

    def release(self, marker: str, step: int | None = None) -> None:
        """Let the held step (all held steps of the script if step is None) be answered, now
        or when it arrives."""
        with self._cond:
            steps = range(len(self._scripts.get(marker, []))) if step is None else [step]
            self._released.update((marker, s) for s in steps)
            self._cond.notify_all()

    def _hold(self, marker: str, step: int) -> None:
        key = (marker, step)
        deadline = time.monotonic() + self.hold_timeout
        with self._cond:
            self._held.add(key)
            self._cond.notify_all()
            try:
                while key not in self._released:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break  # answer anyway: a forgotten release must not hang a test forever
                    self._cond.wait(left)
            finally:
                self._held.discard(key)

    # queries
    def requests_for(self, marker: str, kind: str | None = "main") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.marker == marker and (kind is None or r.kind == kind)]

    def first_request(self, marker: str) -> Recorded:
        reqs = self.requests_for(marker)
        assert reqs, f"no model request for {marker}; paths seen: {self.paths()}"
        return reqs[0]

    def tool_results(self, marker: str) -> list[dict]:
        """The tool_result blocks the session sent, each once, in order of arrival."""
        seen, out = set(), []
        for req in self.requests_for(marker):
            for block in req.tool_results():
                key = block.get("tool_use_id")
                if key not in seen:
                    seen.add(key)
                    out.append(block)
        return out

    def paths(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    # answering (called by the handler)
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)
        if self.log:
            extra = f" marker={rec.marker} step={rec.step} kind={rec.kind}" if rec.marker or rec.kind != "other" else ""
            self.log(f"{rec.method} {rec.path}{extra}")

    def _choose(self, body: dict) -> tuple[str | None, int | None, str, Step]:
        marker, n_assistant = self._find_marker(body)
        if marker is None:
            return None, None, "side", text("OK")
        with self._lock:
            script = self._scripts[marker]
        step = script[n_assistant] if n_assistant < len(script) else DEFAULT_FINAL
        if not body.get("tools") and step.stop_reason == "tool_use":
            # A side request that quotes the prompt (title, summary, classification): it
            # cannot call tools, so it gets a plain answer and does not take the step.
            return marker, n_assistant, "side", text("OK")
        return marker, n_assistant, "main", step

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_mock_{next(self._ids):06d}{uuid.uuid4().hex[:12]}"


def _message_json(api: MockMessagesAPI, model: str, step: Step) -> dict:
    content = []
    for b in step.blocks:
        if isinstance(b, ToolUse):
            content.append({"type": "tool_use", "id": api._next_id("toolu"), "name": b.name, "input": b.input})
        else:
            content.append({"type": "text", "text": b})
    return {
        "id": api._next_id("msg"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": step.stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 10,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def _sse_events(api: MockMessagesAPI, model: str, step: Step):
    msg = _message_json(api, model, step)
    start = dict(msg, content=[], stop_reason=None, usage=dict(msg["usage"], output_tokens=1))
    yield "message_start", {"type": "message_start", "message": start}
    for i, block in enumerate(msg["content"]):
        if block["type"] == "text":
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "text", "text": ""}}
            yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                          "delta": {"type": "text_delta", "text": block["text"]}}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": i,
                                          "content_block": {"type": "tool_use", "id": block["id"],
                                                            "name": block["name"], "input": {}}}
            raw = json.dumps(block["input"])
            cut = len(raw) // 2  # two deltas: the client must join partial JSON
            for piece in (raw[:cut], raw[cut:]):
                yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                              "delta": {"type": "input_json_delta", "partial_json": piece}}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
                            "usage": {"output_tokens": msg["usage"]["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: MockMessagesAPI  # set on the subclass made by start()

    def log_message(self, fmt, *args):  # quiet; the API's log callable says what matters
        pass

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def _send_json(self, status: int, obj, head: bool = False) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", self.api._next_id("req"))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _record(self, body, **kw) -> Recorded:
        rec = Recorded(self.command, self.path, dict(self.headers.items()), body, time.time(), **kw)
        self.api._record(rec)
        return rec

    def do_HEAD(self):
        self._record(None)
        self._send_json(200, {}, head=True)

    def do_GET(self):
        self._record(None)
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/v1/models":
            self._send_json(200, {"data": [{"type": "model", "id": MODEL_FALLBACK,
                                            "display_name": "Mock", "created_at": "2025-01-01T00:00:00Z"}],
                                  "has_more": False, "first_id": MODEL_FALLBACK, "last_id": MODEL_FALLBACK})
        elif path.startswith("/v1/models/"):
            mid = path.rsplit("/", 1)[1]
            self._send_json(200, {"type": "model", "id": mid, "display_name": mid,
                                  "created_at": "2025-01-01T00:00:00Z"})
        elif path in ("", "/"):
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                             "message": f"mock: no {path}"}})

    def do_POST(self):
        body = self._read_body()
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/v1/messages/count_tokens":
            self._record(body)
            self._send_json(200, {"input_tokens": max(1, len(flatten_text(body)) // 4)})
            return
        if path != "/v1/messages" or not isinstance(body, dict):
            self._record(body)
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                             "message": f"mock: no POST {path}"}})
            return
        marker, step_no, kind, step = self.api._choose(body)
        self._record(body, marker=marker, step=step_no, kind=kind)
        if kind == "main" and step.hold:
            self.api._hold(marker, step_no)
        model = body.get("model") or MODEL_FALLBACK
        if not body.get("stream"):
            self._send_json(200, _message_json(self.api, model, step))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", self.api._next_id("req"))
        self.end_headers()
        try:
            for event, data in _sse_events(self.api, model, step):
                chunk = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (killed session)


if __name__ == "__main__":
    # Serve a default script (a Write into the cwd, then "Done.") to any prompt with "demo"
    # in it, and log every request: for finding out what a CLI version asks for.
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    api = MockMessagesAPI(port=port, log=lambda line: print(line, flush=True)).start()
    import os
    api.script([write(os.path.abspath("demo.txt"), "demo\n")], marker="demo")
    print(f"listening on {api.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()
