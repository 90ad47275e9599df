"""Pool benchmark: an experience on PostgreSQL against the file layout, at 100k rows.

Why: issue 16 asks what the pool costs against the file backend: search latency, push and
pull throughput. In one run, on a private PostgreSQL server this script starts (loopback,
`tests/pg_fixtures.private_server`), with the synthetic shell rows of `retrieval.py`:

0. the per-row preparation both backends share (redaction, `rows.clean`, and slot finding,
   `rows.meta_for`), timed on 2,000 fresh rows: at a few ms a row it bounds every write path,
   so below rows come with their slots (read from the file experience) and `clean` is the
   identity (the synthetic rows hold no secrets), to measure what each store itself costs;
1. write: a file experience of N rows (`retrieval.py`'s, reused from its work dir; built once
   if missing, which takes many minutes); appending a sample of it to a new file experience;
   all N in one commit to a new pool experience (`append`, COPY); `push` of the file's rows into
   another (rows matched by digest) and the same push again (everything skipped); `pull` of
   that pool into a third pool experience, and reading every row of a pool;
2. open: a new file experience object (persisted index) against a new pool object (index
   built from the table);
3. search: top-16 p50/p95 over the same queries on both (the hits' rows included), jaccard and
   bm25, and whether both backends return the same rows and scores (first 100 queries);
4. follow: another connection appends one row; the next search's latency, which reads that
   row only.

Run: `.venv/bin/python benchmarks/pool.py` (100k rows; about three minutes with
the file experience cached) or `--quick` (10k).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.pg_fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent))  # retrieval
from retrieval import WORK, experience_at, make_queries, make_rows, timed

from mcp_harness.experience import pg_store, transfer
from mcp_harness.experience import rows as rows_module
from mcp_harness.experience import store as store_module
from mcp_harness.experience.backend import NEW, opened
from mcp_harness.experience.rows import meta_for
from mcp_harness.experience.store import Experience, Row
from tests.pg_fixtures import private_server

K = 16


def clock(action) -> tuple[Any, float]:
    start = time.perf_counter()
    result = action()
    return result, time.perf_counter() - start


def same_results(a, b, queries: list[str], method: str) -> bool:
    for text in queries:
        left = [(h.row.index, round(h.score, 9), h.row.value) for h in a.search(text, K, method)]
        right = [(h.row.index, round(h.score, 9), h.row.value) for h in b.search(text, K, method)]
        if left != right:
            return False
    return True


def preparation_ms(rows: list[Row]) -> float:
    """Milliseconds per row of redaction and slot finding (what every write does first)."""
    start = time.perf_counter()
    for row in rows:
        meta_for(rows_module.clean(row))
    return (time.perf_counter() - start) / len(rows) * 1e3


def run(n: int, n_queries: int, sample: int) -> dict[str, Any]:
    made = make_rows(n)
    result: dict[str, Any] = {"rows": n, "queries": n_queries, "file_sample": sample}
    fresh = [Row("\n".join(kws), key, value, source="bench") for key, value, kws in made[:2000]]
    result["prepare_ms_per_row"] = preparation_ms(fresh)
    file_path, _ = experience_at(WORK, made)  # reused when the work dir holds it
    file_exp = Experience.open(file_path)
    stored = list(file_exp.rows())  # rows with their slots: no slot finding below
    rows = [transfer.as_row(r) for r in stored]
    queries = make_queries(n_queries)
    scratch = Path(tempfile.mkdtemp(prefix="mh-pool-bench-"))
    store_module.clean = pg_store.clean = _as_is  # measured above; see the docstring
    try:
        with private_server() as server:
            _, seconds = clock(lambda: Experience.create(scratch / "f").append(rows[:sample]))
            result["file_append_rows_per_s"] = sample / seconds
            with opened(server.uri("appended"), NEW) as pool:
                _, seconds = clock(lambda: pool.append(rows))
                result["pool_append_rows_per_s"] = n / seconds
            with opened(server.uri("pushed"), NEW) as pool:
                copied, seconds = clock(lambda: transfer.push(stored, pool))
                result["push_rows_per_s"] = n / seconds
                result["push_added"] = copied.added
                again, seconds = clock(lambda: transfer.push(stored, pool))
                assert again.added == 0
                result["push_again_s"] = seconds
                with opened(server.uri("pulled"), NEW) as target:
                    copied, seconds = clock(lambda: transfer.pull(pool, target))
                result["pull_rows_per_s"] = copied.added / seconds
                read, seconds = clock(lambda: sum(1 for _ in pool.rows()))
                result["pool_read_rows_per_s"] = read / seconds
            _, seconds = clock(lambda: Experience.open(file_path))
            result["file_open_s"] = seconds
            _, seconds = clock(lambda: _open_close(server.uri("appended")))
            result["pool_open_s"] = seconds
            with opened(server.uri("appended")) as pool, opened(server.uri("appended")) as other:
                for m in ("jaccard", "bm25"):
                    result[f"file_{m}"] = timed(lambda q, m=m: file_exp.search(q, K, m), queries)
                    result[f"pool_{m}"] = timed(lambda q, m=m: pool.search(q, K, m), queries)
                    result[f"same_{m}"] = same_results(file_exp, pool, queries[:100], m)
                other.append([Row("brand\nnew", "brand new row", "true")])
                _, seconds = clock(lambda: pool.search("brand new", K))
                result["follow_one_row_ms"] = seconds * 1e3
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def _as_is(row: Row) -> Row:
    return row


def _open_close(address: str) -> None:
    with opened(address):
        pass


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['rows']:,} rows, {result['queries']} queries; redaction + slots "
        f"{result['prepare_ms_per_row']:.2f} ms/row on either backend (excluded below)",
        f"write rows/s   file append {result['file_append_rows_per_s']:,.0f} "
        f"({result['file_sample']:,} rows)   pool append {result['pool_append_rows_per_s']:,.0f}"
        f"   push {result['push_rows_per_s']:,.0f}   pull (pool to pool) "
        f"{result['pull_rows_per_s']:,.0f}   push again (all skipped) "
        f"{result['push_again_s']:.2f} s   pool read {result['pool_read_rows_per_s']:,.0f}",
        f"open           file {result['file_open_s']:.2f} s   pool {result['pool_open_s']:.2f} s",
    ]
    for method in ("jaccard", "bm25"):
        f, p = result[f"file_{method}"], result[f"pool_{method}"]
        lines.append(
            f"search {method:7} file p50 {f['p50_ms']:.2f} ms p95 {f['p95_ms']:.2f} ms   "
            f"pool p50 {p['p50_ms']:.2f} ms p95 {p['p95_ms']:.2f} ms   "
            f"same results: {result[f'same_{method}']}"
        )
    follow = result["follow_one_row_ms"]
    lines.append(f"follow         first search after another's append {follow:.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k rows instead of 100k")
    args = parser.parse_args(argv)
    result = run(10_000 if args.quick else 100_000, 200, 1000 if args.quick else 5000)
    result["machine"] = f"{platform.machine()} {platform.python_version()}"
    result["load_average"] = os.getloadavg()
    result["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(table(result))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
