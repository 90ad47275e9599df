"""Framing between a client (`client.py`) and a pane's runner; the prefix wrapper and the
capture mirror use the same frames (`capture/prefix.c`, `capture/mirror.py`).

A frame is one type byte, a 4-byte big-endian payload length, then the payload.

client -> runner: `J` job (JSON: cmd, cwd, merged, pid), `V` environment (NUL-separated
`KEY=VALUE` bytes, sent right after `J`), `K` kill (ASCII signal number).
runner -> client: `O` stdout bytes, `E` stderr bytes, `X` exit (JSON: code, signal).
prefix wrapper -> mirror: `C` the composite, `D` the cwd, `V` environment, `B` begin (JSON, with
descriptors attached), `F` finish (JSON); the wrapper's C source sends the same bytes.
"""

from __future__ import annotations

import socket
import struct

HEADER = struct.Struct(">cI")
JOB, ENV, KILL, STDOUT, STDERR, EXIT = b"J", b"V", b"K", b"O", b"E", b"X"
COMPOSITE, CWD, BEGIN, FINISH = b"C", b"D", b"B", b"F"
MAX_FRAME = 64 * 1024 * 1024


def pack(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def send(sock: socket.socket, kind: bytes, payload: bytes) -> None:
    sock.sendall(pack(kind, payload))


class FrameReader:
    """Incremental frame parser over bytes arriving in arbitrary chunks."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes exceeds the {MAX_FRAME} limit")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((kind, bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return frames


def encode_env(env: dict[bytes, bytes]) -> bytes:
    return b"\0".join(k + b"=" + v for k, v in env.items())


def decode_env(blob: bytes) -> dict[bytes, bytes]:
    env: dict[bytes, bytes] = {}
    for item in blob.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            env[key] = value
    return env
