"""Element outcomes as floats, as in the seed: `+v` confident (v in [0, 1]), `-v` failed with
self-confidence v (v in [1e-10, 1]), -2 confidence not bounded, -3 context overflow.

Whether an element was computed is tracked apart from this value (the seed's overloaded 0 left
`confidence(0)` elements pending forever), and values stay float32 (bfloat16 turned 0.9 into
0.898).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

_MIN_FAILED = 1e-10


class Kind(Enum):
    CONFIDENCE = "confidence"
    FAILED = "failed"
    NOT_BOUNDED = "not_bounded"
    CONTEXT_OVERFLOW = "context_overflow"


@dataclass(frozen=True)
class Status:
    kind: Kind
    value: float = 0.0

    @staticmethod
    def confidence(value: float) -> Status:
        return Status(Kind.CONFIDENCE, min(max(float(value), 0.0), 1.0))

    @staticmethod
    def failed(self_confidence: float) -> Status:
        return Status(Kind.FAILED, min(max(float(self_confidence), _MIN_FAILED), 1.0))

    @property
    def ok(self) -> bool:
        return self.kind is Kind.CONFIDENCE

    def encode(self) -> float:
        if self.kind is Kind.CONFIDENCE:
            return self.value
        if self.kind is Kind.FAILED:
            return -self.value
        return -2.0 if self.kind is Kind.NOT_BOUNDED else -3.0

    @staticmethod
    def decode(value: float) -> Status:
        if value >= 0:
            return Status.confidence(value)
        if value == -2.0:
            return NOT_BOUNDED
        if value == -3.0:
            return CONTEXT_OVERFLOW
        return Status.failed(-value)

    def __str__(self) -> str:
        if self.kind in (Kind.CONFIDENCE, Kind.FAILED):
            return f"{self.kind.value}({self.value:g})"
        return self.kind.value


NOT_BOUNDED = Status(Kind.NOT_BOUNDED)
CONTEXT_OVERFLOW = Status(Kind.CONTEXT_OVERFLOW)
