"""Loopback HTTP stubs of the Anthropic Messages API and OpenAI chat completions.

The kernel tests drive the real `anthropic` / `openai` SDKs (and the real `claude` CLI) against
these, so request encoding, response parsing, error classes and headers are the real ones.
A stub counts requests and the most requests in flight at once, can fail the first requests
with given HTTP statuses, and can hold every request until the test releases it (for timeout
and concurrency tests; `stop()` releases everything so no handler thread is left waiting).
Anthropic streaming (`stream: true`, what Claude Code sends) is answered with SSE events.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Flavor = Literal["anthropic", "openai"]
HOLD_LIMIT_S = 30.0  # a held request gives up after this, should a test forget to release it

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message (string content or text blocks), for reply functions."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


class ApiStub:
    """One fake endpoint. Use as a context manager; `base_url` is what the SDK needs."""

    def __init__(
        self,
        flavor: Flavor,
        *,
        text: str | Callable[[dict[str, Any]], str] = "stub answer",
        usage: tuple[int, int] = (10, 5),
        failures: Sequence[int] = (),
        hold: bool = False,
        model: str = "stub-model",
    ) -> None:
        self.flavor = flavor
        self.text = text
        self.usage = usage
        self.failures = list(failures)
        self.hold = hold
        self.model = model
        self.release = threading.Event()
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        root = f"http://127.0.0.1:{self.port}"
        return f"{root}/v1" if self.flavor == "openai" else root

    def start(self) -> ApiStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ApiStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests read --------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Requests that reached the API endpoint (failed ones included)."""
        with self._cond:
            return len(self.statuses)

    def wait_in_flight(self, n: int, timeout: float = 10.0) -> bool:
        """Block until at least `n` requests are in flight at once (run it in a thread)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.in_flight >= n, timeout)

    # ---- called by the handler --------------------------------------------------------------
    def _enter(self, body: dict[str, Any]) -> int:
        """Record a request; the HTTP status to answer with (a scripted failure, or 200)."""
        with self._cond:
            self.bodies.append(body)
            status = self.failures.pop(0) if self.failures else 200
            self.statuses.append(status)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify_all()
        return status

    def _leave(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def reply_text(self, body: dict[str, Any]) -> str:
        return self.text(body) if callable(self.text) else self.text


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: ApiStub

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            body = {}
        path = self.path.split("?")[0]
        stub = self.owner
        if stub.flavor == "anthropic" and path.endswith("/count_tokens"):
            self._send_json(200, {"input_tokens": stub.usage[0]})
            return
        expected = "/v1/messages" if stub.flavor == "anthropic" else "/v1/chat/completions"
        if path != expected:
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error"}})
            return
        status = stub._enter(body)
        try:
            if stub.hold:
                stub.release.wait(HOLD_LIMIT_S)
            if status != 200:
                self._error(status)
            elif stub.flavor == "openai":
                self._send_json(200, self._openai(body))
            elif body.get("stream"):
                self._anthropic_stream(body)
            else:
                self._send_json(200, self._anthropic(body))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to answer
        finally:
            stub._leave()

    # ---- bodies -------------------------------------------------------------------------------
    def _error(self, status: int) -> None:
        kind = _ERROR_TYPES.get(status, "api_error")
        message = f"stub failure {status}"
        if self.owner.flavor == "anthropic":
            payload = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            payload = {"error": {"message": message, "type": kind, "code": None, "param": None}}
        self._send_json(status, payload)

    def _anthropic(self, body: dict[str, Any]) -> dict[str, Any]:
        stub = self.owner
        return {
            "id": f"msg_{stub.count}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", stub.model),
            "content": [{"type": "text", "text": stub.reply_text(body)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": stub.usage[0], "output_tokens": stub.usage[1]},
        }

    def _openai(self, body: dict[str, Any]) -> dict[str, Any]:
        stub = self.owner
        prompt, completion = stub.usage
        return {
            "id": f"chatcmpl-{stub.count}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", stub.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": stub.reply_text(body)},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }

    def _anthropic_stream(self, body: dict[str, Any]) -> None:
        message = self._anthropic(body)
        text = message["content"][0]["text"]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        start = {**message, "content": [], "stop_reason": None}
        self._event("message_start", {"message": start})
        self._event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        delta = {"type": "text_delta", "text": text}
        self._event("content_block_delta", {"index": 0, "delta": delta})
        self._event("content_block_stop", {"index": 0})
        self._event(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": self.owner.usage[1]},
            },
        )
        self._event("message_stop", {})

    def _event(self, name: str, data: dict[str, Any]) -> None:
        payload = json.dumps({"type": name, **data})
        self.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
        self.wfile.flush()
