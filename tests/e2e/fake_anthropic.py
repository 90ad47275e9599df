"""A loopback fake of the Anthropic Messages API that plays a fixed script to Claude Code.

Reimplemented from reference `claude-code.md` section 10. Claude Code always streams, so replies
are Server-Sent Events. A request whose `tools` include `Bash` (or, for an agent with file tools
only, `Write` or `Edit`) is the main agent loop and gets
script step `k`, where `k` is the number of assistant messages already in `messages`; any other
request (title generation and other side calls) gets a single text block `"ok"`. Every request is
logged, so a test can read the tool_results Claude Code sent back in the last user message.

Script steps: `{"tool": NAME, "input": {...}}`, `{"text": "..."}`, `{"multi": [step, ...]}`.
Past the end of the script the reply is `{"text": "done"}`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "claude-opus-4-8"
USAGE = {"input_tokens": 10, "output_tokens": 5}


@dataclass
class Logged:
    """One request as the fake saw it."""

    method: str
    path: str
    body: dict[str, Any]
    main_loop: bool
    step: int | None = None

    @property
    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools") or [] if isinstance(t, dict)]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])


@dataclass
class FakeAnthropic:
    """Start with `start()` (binds 127.0.0.1 on a free port), stop with `stop()`."""

    script: list[dict[str, Any]]
    requests: list[Logged] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAnthropic:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests read -----------------------------------------------------------------
    def main_requests(self) -> list[Logged]:
        with self._lock:
            return [r for r in self.requests if r.main_loop]

    def tool_results(self) -> dict[str, dict[str, Any]]:
        """tool_use_id -> the tool_result block Claude Code sent back (from every main request)."""
        found: dict[str, dict[str, Any]] = {}
        for request in self.main_requests():
            for message in request.messages:
                if message.get("role") != "user" or not isinstance(message.get("content"), list):
                    continue
                for block in message["content"]:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        found.setdefault(str(block.get("tool_use_id")), block)
        return found

    # ---- replies -------------------------------------------------------------------------
    def _log(self, entry: Logged) -> None:
        with self._lock:
            self.requests.append(entry)

    def reply_blocks(self, step: int) -> list[dict[str, Any]]:
        """The content blocks of the reply at `step` (tool_use ids `toolu_<step><j>`)."""
        spec = self.script[step] if step < len(self.script) else {"text": "done"}
        parts = spec.get("multi", [spec])
        blocks = []
        for j, part in enumerate(parts):
            if "tool" in part:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": f"toolu_{step:02d}{j}",
                        "name": part["tool"],
                        "input": part.get("input", {}),
                    }
                )
            else:
                blocks.append({"type": "text", "text": str(part.get("text", ""))})
        return blocks


def text_of(block: dict[str, Any]) -> str:
    """The text of a tool_result's content (a string, or a list of text blocks)."""
    content = block.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict)
        )  # images etc. carry no text
    return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeAnthropic

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; the request log is in `owner.requests`

    # ---- helpers -------------------------------------------------------------------------
    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self) -> None:
        error = {"type": "not_found_error", "message": self.path}
        self._json(404, {"type": "error", "error": error})

    def _read_body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return {}
        return body if isinstance(body, dict) else {}

    # ---- methods -------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.owner._log(Logged("GET", self.path, {}, False))
        self._not_found()

    def do_POST(self) -> None:
        body = self._read_body()
        if "count_tokens" in self.path:
            self.owner._log(Logged("POST", self.path, body, False))
            self._json(200, {"input_tokens": 100})
            return
        if not self.path.split("?")[0].endswith("/v1/messages"):
            self.owner._log(Logged("POST", self.path, body, False))
            self._not_found()
            return
        tools = [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]
        main = bool({"Bash", "Write", "Edit"} & set(tools))
        step = None
        if main:
            step = sum(1 for m in body.get("messages") or [] if m.get("role") == "assistant")
        # Logged before replying, so a reply can depend on the tool results this request carries.
        self.owner._log(Logged("POST", self.path, body, main, step))
        if main:
            blocks = self.owner.reply_blocks(step)
            message_id = f"msg_{step}"
        else:
            blocks = [{"type": "text", "text": "ok"}]
            message_id = "msg_side"
        if body.get("stream"):
            self._stream(message_id, blocks)
        else:
            self._json(200, _message(message_id, blocks))

    def _stream(self, message_id: str, blocks: list[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        start = _message(message_id, [])
        start.update(stop_reason=None)
        self._event("message_start", {"message": start})
        for index, block in enumerate(blocks):
            if block["type"] == "tool_use":
                opening = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            else:
                opening = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            self._event("content_block_start", {"index": index, "content_block": opening})
            self._event("content_block_delta", {"index": index, "delta": delta})
            self._event("content_block_stop", {"index": index})
        stop = _stop_reason(blocks)
        self._event(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": 5}},
        )
        self._event("message_stop", {})
        self.wfile.flush()

    def _event(self, name: str, data: dict[str, Any]) -> None:
        payload = json.dumps({"type": name, **data})
        self.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
        self.wfile.flush()


def _stop_reason(blocks: list[dict[str, Any]]) -> str:
    return "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"


def _message(message_id: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": blocks,
        "stop_reason": _stop_reason(blocks) if blocks else None,
        "stop_sequence": None,
        "usage": dict(USAGE),
    }
