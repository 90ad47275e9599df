"""Retrieval benchmark: latency, memory and build time of the experience index, vs the seed scan.

Why: the in-memory `RetrievalIndex` replaced the seed prototype's per-query directory scan, and
the issue sets targets for it: top-16 p50 <= 5 ms at 100k rows and <= 50 ms at 1M, >= 500x
faster than the scan at 100k, <= 1 KB of index per row. This script measures all of them in one
process run and prints a table plus a JSON summary:

1. deterministic synthetic shell-command rows (`random.Random(0)`): a few hundred command
   names, subcommands and flags plus a Zipf-tailed long tail of paths, identifiers and numbers,
   so the vocabulary grows with N; query column = `keywords_text(key + " " + value)`;
2. query latency (p50/p95, `extract_keywords` included) for jaccard and bm25 on an index built
   in memory with `RetrievalIndex.append`, with index memory and process RSS growth per row;
3. writing 100k rows with `Experience.append` and building the index from disk
   (`Experience.open`);
4. the naive scan (read every row's query file, Jaccard in Python, sort, top 16) on the same
   directories, warm page cache (which favours the scan), and the naive/indexed p50 ratio.

Run: `.venv/bin/python benchmarks/retrieval.py` (full, several minutes) or `--quick` (seconds).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np

from mcp_harness.experience.index import RetrievalIndex
from mcp_harness.experience.keywords import extract_keywords
from mcp_harness.experience.slots import find_slots, index_keywords, query_keywords
from mcp_harness.experience.store import Experience, Row
from mcp_harness.storage.layout import element_path, read_shape

K = 16
METHODS = ("jaccard", "bm25")
WORK = Path(__file__).resolve().parent / ".work"

# ---- synthetic rows ------------------------------------------------------------------------
_W = str.split
STEMS = _W(
    "api app auth cache cli client config core db deploy handler http io log main model parser "
    "routes schema server service settings storage sync task user utils views worker billing "
    "search index upload export metrics admin email queue scheduler"
)
NOUNS = _W(
    "request response session order payment invoice report job event message record buffer "
    "batch node cluster account profile widget rule policy snapshot"
)
DIRS = _W(
    "src tests lib app scripts docs tools pkg internal cmd src/core src/api tests/unit "
    "tests/integration web config deploy services frontend/src backend"
)
EXTS = _W(".py .ts .js .go .rs .yaml .json .md .sh .toml .sql .cfg")
PKGS = _W(
    "requests numpy pandas flask django fastapi pytest black ruff mypy torch scipy httpx "
    "pydantic sqlalchemy celery redis boto3 typer rich react express lodash axios typescript "
    "eslint prettier jest vite webpack"
)
IMAGES = _W("nginx postgres redis python node ubuntu alpine golang mysql mongo rabbitmq traefik")
SERVICES = _W("nginx postgresql redis docker ssh cron sshd apache2 mysql kubelet containerd")
HOSTS = _W("web db cache api worker build staging prod bastion gateway")
USERS = _W("root admin deploy ubuntu git www-data ci")
KINDS = _W("pods deployments services nodes configmaps secrets ingress jobs")

# (key, value) templates; slots: {f} source file, {t} test file, {d} dir, {i} identifier,
# {n} number, {b} branch, {h} host, {p} package, {img} image, {svc} service, {u} user, {k} kind.
TEMPLATES: list[tuple[str, str]] = [
    ("run the tests in {t} with verbose output", "python -m pytest -v {t}"),
    ("run only the test {i} in {t}", "pytest {t} -k {i}"),
    ("stop at the first failing test in {d}", "pytest -x {d}"),
    ("show which files changed in the git working tree", "git status --short"),
    ("see the last {n} commits on this branch one line each", "git log --oneline -{n}"),
    ("create a new branch {b} and switch to it", "git switch -c {b}"),
    ("show the staged diff for {f}", "git diff --cached {f}"),
    ("undo local changes to {f}", "git restore {f}"),
    ("commit all staged changes with a message about {i}", 'git commit -m "fix {i}"'),
    ("rebase {b} onto main interactively", "git rebase -i main {b}"),
    ("push branch {b} to origin and track it", "git push -u origin {b}"),
    ("who last changed line {n} of {f}", "git blame -L {n},{n} {f}"),
    ("search the source tree for {i} recursively with line numbers", "grep -rn {i} {d}"),
    ("find every file named {f} under {d}", "find {d} -name {f} -type f"),
    ("find files larger than {n} megabytes in {d}", "find {d} -type f -size +{n}M"),
    ("list all files including hidden ones with sizes in {d}", "ls -la {d}"),
    ("show disk usage of {d} human readable", "du -sh {d}"),
    ("count the lines of {f}", "wc -l {f}"),
    ("show the last {n} lines of {f} and follow it", "tail -n {n} -f {f}"),
    ("replace {i} with {i}_v2 in {f} in place", "sed -i 's/{i}/{i}_v2/g' {f}"),
    ("print the second column of {f}", "awk '{{print $2}}' {f}"),
    ("sort {f} numerically and remove duplicates", "sort -n -u {f}"),
    ("install the python package {p}", "pip install {p}"),
    ("upgrade {p} to the latest version", "pip install --upgrade {p}"),
    ("add {p} as a dev dependency", "npm install --save-dev {p}"),
    ("run the npm script {i}", "npm run {i}"),
    ("build the docker image {img} for service {i}", "docker build -t {img}:{i} ."),
    ("run {img} in the background on port {n}", "docker run -d -p {n}:{n} {img}"),
    ("show the logs of container {i}", "docker logs -f --tail {n} {i}"),
    ("open a shell inside container {i}", "docker exec -it {i} bash"),
    ("list running containers", "docker ps"),
    ("bring the compose stack up in the background", "docker compose up -d"),
    ("list {k} in namespace {i}", "kubectl get {k} -n {i}"),
    ("describe pod {i}", "kubectl describe pod {i}"),
    ("stream logs of deployment {i}", "kubectl logs -f deployment/{i}"),
    ("scale deployment {i} to {n} replicas", "kubectl scale deployment/{i} --replicas={n}"),
    ("restart the {svc} service", "sudo systemctl restart {svc}"),
    ("check the status of {svc}", "systemctl status {svc}"),
    ("show {svc} logs since boot", "journalctl -u {svc} -b"),
    ("ssh into {h} as {u}", "ssh {u}@{h}"),
    ("copy {f} to {h}", "scp {f} {u}@{h}:/tmp/"),
    ("sync {d} to {h} excluding git files", "rsync -avz --exclude .git {d} {u}@{h}:{d}"),
    ("download {f} from {h}", "curl -fsSL -o {f} https://{h}/{f}"),
    ("check which process listens on port {n}", "lsof -i :{n}"),
    ("kill process {n}", "kill -9 {n}"),
    ("show memory usage in human readable units", "free -h"),
    ("show the processes using the most cpu", "ps aux --sort=-%cpu | head"),
    ("make {f} executable", "chmod +x {f}"),
    ("change the owner of {d} to {u}", "sudo chown -R {u}:{u} {d}"),
    ("extract the archive {i}.tar.gz into {d}", "tar -xzf {i}.tar.gz -C {d}"),
    ("compress {d} into an archive", "tar -czf {i}.tar.gz {d}"),
    ("type check {d} strictly", "mypy --strict {d}"),
    ("lint {f} and fix what can be fixed", "ruff check --fix {f}"),
    ("format the code in {d}", "black {d}"),
    ("build the rust project in release mode", "cargo build --release"),
    ("run the go tests in {d} with the race detector", "go test -race ./{d}/..."),
    ("build target {i} with {n} jobs", "make -j{n} {i}"),
    ("create a python virtual environment in {d}", "python -m venv {d}"),
    ("pretty print the json in {f}", "jq . {f}"),
    ("show the environment variable {i}", "echo ${i}"),
]
_TEMPLATE_CW = list(accumulate(1 / (r + 1) ** 0.8 for r in range(len(TEMPLATES))))


def _zipf_cw(n: int, s: float = 1.0) -> list[float]:
    return list(accumulate(1 / (r + 1) ** s for r in range(n)))


class _Slots(dict[str, str]):
    """Slot values drawn on first use, so a slot repeated in key and value agrees."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, name: str) -> str:
        value = self[name] = _DRAW[name](self.rng)
        return value


def _pick(pool: list[str]) -> Callable[[random.Random], str]:
    cw = _zipf_cw(len(pool))
    return lambda rng: rng.choices(pool, cum_weights=cw)[0]


def _tail(rng: random.Random) -> int:
    """Heavy-tailed integer (Pareto, P(X >= x) = x^-0.6): new values keep appearing with N."""
    return min(int(rng.paretovariate(0.6)), 10**8)


def _ident(rng: random.Random) -> str:
    base = f"{_pick_stem(rng)}_{_pick_noun(rng)}"
    return f"{base}{_tail(rng)}" if rng.random() < 0.5 else base


def _file(rng: random.Random, ext: str | None = None) -> str:
    stem = _ident(rng) if rng.random() < 0.6 else _pick_stem(rng)
    return f"{_pick_dir(rng)}/{stem}{ext or _pick_ext(rng)}"


_pick_stem, _pick_noun, _pick_dir, _pick_ext = _pick(STEMS), _pick(NOUNS), _pick(DIRS), _pick(EXTS)
_DRAW: dict[str, Callable[[random.Random], str]] = {
    "f": _file,
    "t": lambda rng: (
        _file(rng, ".py").replace("/", "/test_", 1)
        if rng.random() < 0.9
        else f"tests/test_{_pick_stem(rng)}.py"
    ),
    "d": lambda rng: _pick_dir(rng) if rng.random() < 0.7 else f"{_pick_dir(rng)}/{_ident(rng)}",
    "i": _ident,
    "n": lambda rng: str(_tail(rng)),
    "b": lambda rng: f"{rng.choice(('feature', 'fix', 'chore'))}/{_ident(rng)}",
    "h": lambda rng: f"{_pick(HOSTS)(rng)}-{_tail(rng)}.internal",
    "p": _pick(PKGS),
    "img": _pick(IMAGES),
    "svc": _pick(SERVICES),
    "u": _pick(USERS),
    "k": _pick(KINDS),
}


def make_row(rng: random.Random) -> tuple[str, str]:
    key, value = rng.choices(TEMPLATES, cum_weights=_TEMPLATE_CW)[0]
    slots = _Slots(rng)
    return key.format_map(slots), value.format_map(slots)


def make_rows(n: int, seed: int = 0) -> list[tuple[str, str, list[str]]]:
    """(key, value, keywords) rows; the query column is '\\n'.join(keywords)."""
    rng = random.Random(seed)
    cache: dict[str, list[str]] = {}  # about half the rows repeat an earlier one, as in a history
    rows = []
    for _ in range(n):
        key, value = make_row(rng)
        text = f"{key} {value}"
        words = cache.get(text)
        if words is None:
            words = cache[text] = extract_keywords(text)
        rows.append((key, value, words))
    return rows


def make_queries(n: int, seed: int = 1) -> list[str]:
    """Query texts of 2-8 keywords sampled from fresh rows (common words and rare tail terms)."""
    rng = random.Random(seed)
    queries = []
    while len(queries) < n:
        key, value = make_row(rng)
        words = extract_keywords(f"{key} {value}")
        if len(words) < 2:
            continue
        pick = sorted(rng.sample(range(len(words)), min(len(words), rng.randint(2, 8))))
        prefix = rng.choice(("", "", "how do I ", "what is the command to "))
        queries.append(prefix + " ".join(words[i] for i in pick))
    return queries


# ---- measurements --------------------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3  # ms


def time_queries(search: Callable[[str], object], queries: list[str]) -> list[float]:
    times = []
    for text in queries:
        start = time.perf_counter()
        search(text)
        times.append(time.perf_counter() - start)
    return times


def indexed(index: RetrievalIndex, method: str) -> Callable[[str], list[int]]:
    return lambda text: [m.row for m in index.search(extract_keywords(text), K, method)]


def slot_aware(rows: list[tuple[str, str, list[str]]]) -> Callable[[str], list[int]]:
    """Jaccard search in memory over the terms `Experience` indexes: distinctive slots as
    placeholders, words in canonical form (`experience.slots`)."""
    index = RetrievalIndex()
    terms = (index_keywords(kws, find_slots(key, value)) for key, value, kws in rows)
    index.append(terms, [1.0] * len(rows))
    return lambda text: [m.row for m in index.search(query_keywords(extract_keywords(text)), K)]


def naive_search(path: Path, text: str) -> list[int]:
    """The seed prototype's method: read every row's query file, Jaccard in Python, top 16."""
    query = set(extract_keywords(text))
    scored = []
    for row in range(read_shape(path)[0]):
        lines = set(element_path(path, 3 * row).read_text(encoding="utf-8").split("\n"))
        inter = len(query & lines)
        if inter:
            scored.append((-inter / len(query | lines), row))
    scored.sort()
    return [row for _, row in scored[:K]]


def write_experience(path: Path, rows: list[tuple[str, str, list[str]]]) -> float:
    shutil.rmtree(path, ignore_errors=True)
    batch = [Row("\n".join(kws), key, value, source="bench") for key, value, kws in rows]
    start = time.perf_counter()
    Experience.create(path).append(batch)
    return time.perf_counter() - start


def run(sizes: list[int], disk_n: int, naive_plan: dict[int, int], n_queries: int) -> dict:
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "k": K,
        "queries": n_queries,
        "latency": {},
        "disk": {},
        "naive": {},
    }
    start = time.perf_counter()
    rows = make_rows(max(sizes))
    result["generate_s"] = {"rows": max(sizes), "seconds": time.perf_counter() - start}
    queries = make_queries(n_queries)
    result["query_keywords_mean"] = float(np.mean([len(extract_keywords(q)) for q in queries]))
    jaccard_by_n: dict[int, RetrievalIndex] = {}

    for n in sizes:
        gc.collect()
        rss0 = rss_bytes()
        start = time.perf_counter()
        index = RetrievalIndex()
        index.append((kws for _, _, kws in rows[:n]), [1.0] * n)
        build = time.perf_counter() - start
        gc.collect()
        entry: dict[str, Any] = {
            "build_s": build,
            "vocabulary": index.vocabulary_size(),
            "index_bytes_per_row": index.memory_bytes() / n,
            "rss_bytes_per_row": (rss_bytes() - rss0) / n,
        }
        for method in METHODS:
            search = indexed(index, method)
            time_queries(search, queries[:20])  # warm-up
            times = time_queries(search, queries)
            entry[method] = {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95)}
        result["latency"][n] = entry
        if n in naive_plan:
            jaccard_by_n[n] = index
        del index

    for n in sorted(set(naive_plan) | {disk_n}):
        path = WORK / f"experience-{n}"
        written = write_experience(path, rows[:n])
        if n == disk_n:
            start = time.perf_counter()
            experience = Experience.open(path)
            opened = time.perf_counter() - start
            ref = slot_aware(rows[:n])  # the terms an experience indexes (slots, canonical)
            agree = all(
                [h.row.index for h in experience.search(q, K)] == ref(q) for q in queries[:20]
            )
            times = time_queries(lambda q, e=experience: e.search(q, K), queries)
            result["disk"] = {
                "rows": n,
                "write_s": written,
                "open_s": opened,
                "vocabulary": experience.stats()["vocabulary"],
                "agrees_with_memory": agree,
                "experience_search_p50_ms": pct(times, 50),
                "experience_search_p95_ms": pct(times, 95),
            }
            del experience
        if n in naive_plan:
            subset = queries[: naive_plan[n]]
            search = indexed(jaccard_by_n[n], "jaccard")
            time_queries(search, subset)  # warm-up
            fast = time_queries(search, subset)
            slow = time_queries(lambda q, p=path: naive_search(p, q), subset)
            result["naive"][n] = {
                "queries": len(subset),
                "naive_p50_ms": pct(slow, 50),
                "indexed_p50_ms": pct(fast, 50),
                "speedup": pct(slow, 50) / pct(fast, 50),
                "same_top16": all(naive_search(path, q) == search(q) for q in subset[:3]),
            }
    result["targets"] = targets(result)
    return result


def targets(result: dict) -> list[dict]:
    lat, naive = result["latency"], result["naive"]
    out = []
    for n, limit in ((100_000, 5.0), (1_000_000, 50.0)):
        for method in METHODS:
            got = lat[n][method]["p50_ms"] if n in lat else None
            out.append(
                {
                    "target": f"{method} p50 @ {n:,} <= {limit:g} ms",
                    "measured": got,
                    "unit": "ms",
                    "pass": got is not None and got <= limit,
                }
            )
    got = naive[100_000]["speedup"] if 100_000 in naive else None
    out.append(
        {
            "target": "naive/indexed p50 @ 100,000 >= 500x",
            "measured": got,
            "unit": "x",
            "pass": got is not None and got >= 500,
        }
    )
    got = max(e["index_bytes_per_row"] for e in lat.values())
    out.append(
        {
            "target": "index memory <= 1024 B/row (worst N)",
            "measured": got,
            "unit": "B",
            "pass": got <= 1024,
        }
    )
    return out


# ---- report --------------------------------------------------------------------------------
def table(result: dict) -> str:
    m = result["machine"]
    gen = result["generate_s"]
    lines = [
        f"retrieval benchmark {result['date']} | {m['cores']} cores | Python {m['python']} | "
        f"numpy {m['numpy']}",
        f"generated {gen['rows']:,} rows in {gen['seconds']:.1f} s; {result['queries']} queries, "
        f"{result['query_keywords_mean']:.1f} keywords on average; top-{result['k']}; "
        "latency includes extract_keywords",
        "",
        f"{'rows':>10} {'vocab':>9} {'build s':>8} {'jaccard p50/p95 ms':>19} "
        f"{'bm25 p50/p95 ms':>16} {'index B/row':>12} {'RSS B/row':>10}",
    ]
    for n, e in result["latency"].items():
        j, b = e["jaccard"], e["bm25"]
        lines.append(
            f"{n:>10,} {e['vocabulary']:>9,} {e['build_s']:>8.2f} "
            f"{j['p50_ms']:>9.2f} /{j['p95_ms']:>8.2f} {b['p50_ms']:>7.2f} /{b['p95_ms']:>7.2f} "
            f"{e['index_bytes_per_row']:>12.0f} {e['rss_bytes_per_row']:>10.0f}"
        )
    d = result["disk"]
    lines += [
        "",
        f"write {d['rows']:,} rows (Experience.create + append): {d['write_s']:.1f} s",
        f"open {d['rows']:,} rows (read query files + build index): {d['open_s']:.1f} s "
        f"(vocabulary {d['vocabulary']:,}, same results as an in-memory index of the same terms: "
        f"{d['agrees_with_memory']})",
        f"Experience.search @ {d['rows']:,} (index + reading 16 result rows): "
        f"p50 {d['experience_search_p50_ms']:.2f} ms, p95 {d['experience_search_p95_ms']:.2f} ms",
        "",
        "naive scan (seed method, warm page cache) vs indexed jaccard, same queries:",
        f"{'rows':>10} {'queries':>8} {'naive p50 ms':>13} {'indexed p50 ms':>15} "
        f"{'speedup':>9} {'same top-16':>12}",
    ]
    for n, e in result["naive"].items():
        lines.append(
            f"{n:>10,} {e['queries']:>8} {e['naive_p50_ms']:>13.1f} {e['indexed_p50_ms']:>15.3f} "
            f"{e['speedup']:>8.0f}x {e['same_top16']!s:>12}"
        )
    lines += ["", f"{'target':<40} {'measured':>12}  result"]
    for t in result["targets"]:
        got = "not run" if t["measured"] is None else f"{t['measured']:.2f} {t['unit']}"
        verdict = "PASS" if t["pass"] else ("-" if t["measured"] is None else "MISS")
        lines.append(f"{t['target']:<40} {got:>12}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N smoke run (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        result = run([2_000, 10_000], 10_000, {2_000: 10, 10_000: 3}, 50)
    else:
        result = run([10_000, 100_000, 1_000_000], 100_000, {10_000: 20, 100_000: 5}, 200)
    print(table(result))
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
