"""The `replay` kernel: recorded replies keyed by request hash, for reproducible runs and tests.

`record` mode calls the wrapped kernel and appends one JSON line per reply to a cassette file
(`append_lines`: one write + fsync, so a crash can only cut the last line, which loading then
skips). `replay` mode answers from the cassette alone and never calls anything; a request that
was not recorded is an error naming its hash and the cassette. The hash is the sha256 of a
canonical JSON of the request (sorted keys, no whitespace, versioned), so it is stable across
processes and Python versions. Replayed replies report zero usage: nothing was spent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from mcp_harness.errors import HarnessError
from mcp_harness.kernels.base import Kernel, KernelReply, KernelRequest
from mcp_harness.storage.atomic import append_lines

Mode = Literal["replay", "record"]
HASH_VERSION = 2  # 2: requests carry adapted examples and tried outputs


def canonical_request(request: KernelRequest) -> str:
    """The canonical JSON the hash is taken of (`candidates` only when more than one, so
    cassettes recorded before it existed still match)."""
    payload = {"v": HASH_VERSION, **asdict(request)}
    if payload["candidates"] == 1:
        del payload["candidates"]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_hash(request: KernelRequest) -> str:
    return hashlib.sha256(canonical_request(request).encode("utf-8")).hexdigest()


def load_cassette(path: Path) -> dict[str, KernelReply]:
    """hash -> reply (a later line wins). A cut last line (a crash while appending) is skipped."""
    try:
        # split on "\n" only: str.splitlines() would also split inside a reply at U+2028 etc.
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise HarnessError(
            f"replay cassette {path} does not exist",
            "record it first (replay mode `record` with an inner kernel), "
            "or point MCP_HARNESS_CASSETTE at an existing cassette",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"cannot read replay cassette {path}: {exc}", "check the file") from exc
    replies: dict[str, KernelReply] = {}
    last = max((i for i, line in enumerate(lines, start=1) if line.strip()), default=0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            replies[str(entry["hash"])] = _reply_from_json(entry["reply"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if number == last:
                continue  # the tail of an interrupted append
            raise HarnessError(
                f"replay cassette {path} line {number} is not a recorded reply ({exc})",
                "delete that line (or re-record the cassette)",
            ) from exc
    return replies


def _reply_from_json(data: dict[str, Any]) -> KernelReply:
    return KernelReply(
        text=str(data["text"]),
        ok=bool(data["ok"]),
        confidence=float(data["confidence"]),
        reason=str(data.get("reason", "")),
        alternatives=tuple(_reply_from_json(a) for a in data.get("alternatives", ())),
    )


def _reply_to_json(reply: KernelReply) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": reply.text,
        "ok": reply.ok,
        "confidence": reply.confidence,
        "reason": reply.reason,
    }
    if reply.alternatives:
        data["alternatives"] = [_reply_to_json(a) for a in reply.alternatives]
    return data


class ReplayKernel:
    """Replay from `cassette`, or (mode "record") call `inner` and record its replies there."""

    name = "replay"

    def __init__(self, cassette: Path, *, mode: Mode = "replay", inner: Kernel | None = None):
        if mode not in ("replay", "record"):
            raise HarnessError(
                f"unknown replay mode {mode!r}", 'use mode = "replay" or mode = "record"'
            )
        if mode == "record" and inner is None:
            raise HarnessError(
                "replay kernel in record mode needs a kernel to record",
                'set `inner` under [kernels.replay] (e.g. inner = "openai")',
            )
        self.cassette = Path(cassette)
        self.mode: Mode = mode
        self.inner = inner
        self._write_lock = threading.Lock()
        self._replies: dict[str, KernelReply] = (
            load_cassette(self.cassette) if mode == "replay" else {}
        )

    @property
    def model(self) -> str | None:
        return getattr(self.inner, "model", None) if self.mode == "record" else None

    @property
    def billable(self) -> bool:
        return self.mode == "record" and bool(getattr(self.inner, "billable", True))

    @property
    def base_url(self) -> str | None:
        return getattr(self.inner, "base_url", None) if self.mode == "record" else None

    def _append(self, line: str) -> None:
        with self._write_lock:  # one append at a time
            append_lines(self.cassette, [line])

    async def complete(self, request: KernelRequest) -> KernelReply:
        key = request_hash(request)
        if self.mode == "replay":
            reply = self._replies.get(key)
            if reply is None:
                raise HarnessError(
                    f"replay: request {key} is not recorded in {self.cassette}",
                    "record this run again (replay mode `record`), or use another kernel",
                )
            return reply
        assert self.inner is not None
        reply = await self.inner.complete(request)
        entry = {
            "hash": key,
            "kernel": self.inner.name,
            "model": getattr(self.inner, "model", None),
            "request": json.loads(canonical_request(request)),
            "reply": {**_reply_to_json(reply), "usage": asdict(reply.usage)},
        }
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False)
        await asyncio.to_thread(self._append, line)  # the fsync runs off the event loop
        self._replies[key] = _reply_from_json(entry["reply"])
        return reply
