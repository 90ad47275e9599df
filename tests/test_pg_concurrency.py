"""Several processes writing one pool experience, and a writer killed with SIGKILL mid-push."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from mcp_harness.experience.backend import NEW, opened
from mcp_harness.experience.store import Row

_WRITER = textwrap.dedent("""
    import sys
    from mcp_harness.experience.backend import opened
    from mcp_harness.experience.store import Row
    address, tag, how = sys.argv[1], sys.argv[2], sys.argv[5]
    batches, size = int(sys.argv[3]), int(sys.argv[4])
    with opened(address) as pool:
        write = pool.push if how == "push" else pool.append
        for b in range(batches):
            write([Row(f"{tag}\\nb{b}", f"{tag}-{b}-{i}", f"{tag}-{b}-{i}") for i in range(size)])
            print(b, flush=True)
""")


def _writer(address: str, tag: str, batches: int, size: int, how: str) -> subprocess.Popen:
    argv = [sys.executable, "-c", _WRITER, address, tag, str(batches), str(size), how]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def test_concurrent_writers_never_lose_or_duplicate_rows(pg_uri: str) -> None:
    with opened(pg_uri, NEW) as pool:
        follower_len = len(pool)
        procs = [_writer(pg_uri, f"p{n}", 10, 20, "append") for n in range(4)]
        procs += [_writer(pg_uri, "shared", 10, 20, "push") for _ in range(2)]
        for proc in procs:
            proc.communicate(timeout=300)
        assert [p.returncode for p in procs] == [0] * 6
        keys = [r.key for r in pool.rows()]  # this process followed the others' changes
    assert follower_len == 0
    appended = {f"p{n}-{b}-{i}" for n in range(4) for b in range(10) for i in range(20)}
    pushed = {f"shared-{b}-{i}" for b in range(10) for i in range(20)}  # both pushed these
    assert len(keys) == len(appended) + len(pushed)  # nothing lost, nothing twice
    assert set(keys) == appended | pushed
    with opened(pg_uri) as fresh:
        assert [r.key for r in fresh.rows()] == keys
        assert all(r.key == r.value for r in fresh.rows())
        hits = fresh.search("p3 b7", k=3)
        assert hits and hits[0].row.key.startswith("p3-7-")


def test_kill_9_mid_push_leaves_whole_batches(pg_uri: str) -> None:
    with opened(pg_uri, NEW):
        pass
    writer = _writer(pg_uri, "k", 1000, 500, "push")
    assert writer.stdout is not None
    for _ in range(3):  # wait for real progress (an event), then kill inside the next push
        writer.stdout.readline()
    writer.kill()
    writer.wait(timeout=30)
    with opened(pg_uri) as pool:
        count = len(pool)
        assert count % 500 == 0 and count >= 1500
        rows = list(pool.rows())
        assert all(r.key == r.value and r.key.startswith("k-") for r in rows)
        assert {r.key for r in rows} == {
            f"k-{b}-{i}" for b in range(count // 500) for i in range(500)
        }
        pool.append([Row("after\ncrash", "after crash", "ok")])  # the lock died with the writer
        assert pool.row(count).value == "ok"
