"""The C prefix wrapper and the Python side agree on their shared constants: the frames the
wrapper sends the mirror, the composite marker, and where the runtime and capture dirs are."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mcp_harness.capture import composite
from mcp_harness.capture.records import capture_dir
from mcp_harness.paths import ENV_HOME, ENV_RUNTIME, runtime_dir
from mcp_harness.terminal import protocol

SOURCE = (Path(composite.__file__).parent / "prefix.c").read_text()


def c_function(name: str) -> str:
    start = SOURCE.index(f" {name}(")
    return SOURCE[start : SOURCE.index("\n}\n", start)]


def test_frames_the_wrapper_sends_are_the_mirrors() -> None:
    sent = set(re.findall(r"send_frame\(sock, '(.)'", SOURCE))
    sent |= set(re.findall(r"head\[5\] = \{'(.)'", SOURCE))  # the begin frame, built by hand
    expected = {protocol.COMPOSITE, protocol.CWD, protocol.ENV, protocol.BEGIN, protocol.FINISH}
    assert {kind.encode() for kind in sent} == expected


def test_composite_marker_is_the_same_in_c() -> None:
    assert f'extglob[] = "{composite.EXTGLOB}";' in SOURCE
    assert f'extglob_end[] = "{composite.EXTGLOB_END}";' in SOURCE


def test_runtime_dir_rule_is_the_same_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    assert f'getenv("{ENV_RUNTIME}")' in SOURCE
    [default] = re.findall(
        r'snprintf\(runtime, sizeof runtime, "([^"]+)", \(unsigned\)getuid', SOURCE
    )
    monkeypatch.delenv(ENV_RUNTIME, raising=False)
    assert default % os.getuid() == str(runtime_dir())


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({ENV_HOME: "/h", "XDG_DATA_HOME": "/x", "HOME": "/u"}, ENV_HOME),
        ({"XDG_DATA_HOME": "/x", "HOME": "/u"}, "XDG_DATA_HOME"),
        ({"HOME": "/u"}, "HOME"),
    ],
)
def test_capture_dir_rule_is_the_same_in_c(env: dict[str, str], variable: str) -> None:
    """Each branch of the C `capture_dir` formats the variable it reads as Python does."""
    body = c_function("capture_dir")
    formats = re.findall(r'snprintf\(dir, size, "([^"]+)"', body)
    assert len(formats) == 3 and f'getenv("{ENV_HOME}")' in body
    chosen = formats[[ENV_HOME, "XDG_DATA_HOME", "HOME"].index(variable)]
    assert chosen % env[variable] == str(capture_dir(env))
