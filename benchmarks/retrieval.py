"""Retrieval benchmark: our index against SQLite FTS5, tantivy and bm25s, warm and cold.

Why: issue 17 asks for a persisted index that makes a new process's search cheap, and an
in-memory top-k at least as fast as tantivy with our exact scores. Everything below runs in one
process run (the cold searches in child processes) and prints a table plus a JSON summary:

1. deterministic synthetic shell-command rows (`random.Random(0)`): a few hundred command
   names, subcommands and flags plus a Zipf-tailed long tail of paths, identifiers and numbers,
   so the vocabulary grows with N; each row's terms are what `Experience` indexes (query
   keywords, distinctive slots as placeholders, canonical words), queries are 2-8 keywords of
   fresh rows turned into query groups (`query_keywords`);
2. per N, in memory: build time, index bytes per row, top-16 p50/p95 (search call only, terms
   given) for our `jaccard` and `bm25` and for each peer over the same terms (`peers.py`), and
   each peer's top-16 overlap with our `bm25`;
3. cold: a new process answering one query from the stored index (ours:
   `mcp-harness experience search DIR TEXT -k 16 --json` on a real experience directory, which
   also prints the 16 rows; peers: open their file and query), interleaved rounds, medians;
   floors `python -c pass` and `python -c "import numpy"`;
4. the seed prototype's naive scan (read every row's query file, Jaccard in Python) against
   our index on the same directories, warm page cache.

Experience directories are reused from the work directory when they hold the right rows
(writing 1M rows takes many minutes). Run: `.venv/bin/python benchmarks/retrieval.py`
(10k/100k/1M; `--rows 100000` for fewer) or `--quick` (seconds); `--work DIR` puts the scratch
data elsewhere.
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Tokens, available

from mcp_harness.experience.index import RetrievalIndex
from mcp_harness.experience.keywords import extract_keywords
from mcp_harness.experience.slots import find_slots, index_keywords, query_keywords
from mcp_harness.experience.store import INDEX_FILE, Experience, Row
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
def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3  # ms


def timed(search: Callable[[Any], object], queries: list) -> dict[str, float]:
    for query in queries[:20]:  # warm-up
        search(query)
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - start)
    return {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95)}


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


def experience_at(work: Path, rows: list[tuple[str, str, list[str]]]) -> tuple[Path, float | None]:
    """An experience of exactly these rows: reused when the work dir has one of that size
    (rows are deterministic), else written (returns the write time)."""
    path = work / f"experience-{len(rows)}"
    try:
        if read_shape(path)[0] == len(rows) and (path / INDEX_FILE).exists():
            return path, None
    except Exception:
        pass
    shutil.rmtree(path, ignore_errors=True)
    batch = [Row("\n".join(kws), key, value, source="bench") for key, value, kws in rows]
    start = time.perf_counter()
    Experience.create(path).append(batch)
    return path, time.perf_counter() - start


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=_CHILD_ENV)
    return time.perf_counter() - start


_ROOT = str(Path(__file__).resolve().parents[1])
_CHILD_ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])),
}


def overlap(ours: list[int], theirs: list[int]) -> float:
    return len(set(ours) & set(theirs)) / len(ours) if ours else float(not theirs)


def run(
    sizes: list[int],
    cold_sizes: list[int],
    naive_plan: dict[int, int],
    n_queries: int,
    work: Path,
    rounds: int,
) -> dict:
    work.mkdir(parents=True, exist_ok=True)
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
        "memory": {},
        "cold": {},
        "naive": {},
    }
    start = time.perf_counter()
    rows = make_rows(max(sizes))
    terms = [index_keywords(kws, find_slots(key, value)) for key, value, kws in rows]
    result["generate_s"] = {"rows": len(rows), "seconds": time.perf_counter() - start}
    texts = make_queries(n_queries)
    groups = [query_keywords(extract_keywords(t)) for t in texts]
    result["query_groups_mean"] = float(np.mean([len(g) for g in groups]))
    tokens = Tokens(terms)
    engines = available(work)

    for n in sizes:
        gc.collect()
        start = time.perf_counter()
        index = RetrievalIndex()
        index.append(terms[:n], [1.0] * n)
        entry: dict[str, Any] = {
            "ours": {
                "build_s": time.perf_counter() - start,
                "bytes_per_row": index.memory_bytes() / n,
                "vocabulary": index.vocabulary_size(),
            }
        }
        for method in METHODS:
            entry["ours"][method] = timed(lambda q, m=method, ix=index: ix.search(q, K, m), groups)
        ours_bm25 = [[m.row for m in index.search(q, K, "bm25")] for q in groups]
        docs = [tokens.doc(t) for t in terms[:n]]
        query_tokens = [tokens.query(g) for g in groups]
        for engine in engines:
            start = time.perf_counter()
            engine.build(docs)
            built = time.perf_counter() - start
            fast = getattr(engine, "hits", engine.search)  # tantivy: no stored-field fetch
            entry[engine.name] = {
                "build_s": built,
                "bytes_per_row": engine.bytes() / n,
                "bm25": timed(lambda q, f=fast: f(q, K), query_tokens),
                "overlap_with_ours": float(
                    np.mean(
                        [
                            overlap(mine, engine.search(q, K))
                            for mine, q in zip(ours_bm25, query_tokens, strict=True)
                        ]
                    )
                ),
            }
        del docs
        result["memory"][n] = entry
        if n in cold_sizes:
            result["cold"][n] = cold(
                work, rows[:n], index, texts, groups, query_tokens, engines, rounds
            )
        if n in naive_plan:
            result["naive"][n] = naive(work, rows[:n], texts[: naive_plan[n]])
        del index
    result["targets"] = targets(result)
    return result


def cold(
    work: Path,
    rows: list,
    index: RetrievalIndex,
    texts: list[str],
    groups: list,
    query_tokens: list[list[str]],
    engines: list,
    rounds: int,
) -> dict[str, Any]:
    """New-process search times, interleaved: every round runs each engine once per query."""
    path, written = experience_at(work, rows)
    compileall.compile_dir(Path(_ROOT) / "mcp_harness", quiet=1)  # bytecode, as installed
    python = sys.executable
    commands: dict[str, Callable[[int], list[str]]] = {
        "python -c pass": lambda i: [python, "-c", "pass"],
        "python -c 'import numpy'": lambda i: [python, "-c", "import numpy"],
        "ours (mcp-harness experience search)": lambda i: [
            python,
            "-m",
            "mcp_harness",
            "experience",
            "search",
            str(path),
            texts[i],
            "-k",
            str(K),
            "--json",
        ],
    }
    for engine in engines:
        commands[engine.name] = lambda i, e=engine: e.cold(query_tokens[i], K)
    picks = list(range(min(rounds, len(texts))))
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in picks:
        for name, command in commands.items():
            times[name].append(wall(command(i)))
    out = subprocess.run(
        commands["ours (mcp-harness experience search)"](0),
        check=True,
        capture_output=True,
        text=True,
        env=_CHILD_ENV,
    )
    cold_rows = [hit["row"] for hit in json.loads(out.stdout)["hits"]]
    return {
        "rows": len(rows),
        "written_s": written,
        "index_file_bytes_per_row": (path / INDEX_FILE).stat().st_size / len(rows),
        "runs": len(picks),
        "median_ms": {name: statistics.median(t) * 1e3 for name, t in times.items()},
        "same_as_memory": cold_rows == [m.row for m in index.search(groups[0], K)],
    }


def naive(work: Path, rows: list, texts: list[str]) -> dict[str, Any]:
    """The seed scan vs an index of the same (raw) query lines, on the same directory."""
    path, _ = experience_at(work, rows)
    index = RetrievalIndex()
    index.append((kws for _, _, kws in rows), [1.0] * len(rows))
    fast = timed(lambda t: index.search(extract_keywords(t), K), texts)
    times = []
    for text in texts:
        start = time.perf_counter()
        naive_search(path, text)
        times.append(time.perf_counter() - start)
    slow = pct(times, 50)
    return {
        "queries": len(texts),
        "naive_p50_ms": slow,
        "indexed_p50_ms": fast["p50_ms"],
        "speedup": slow / fast["p50_ms"],
        "same_top16": all(
            naive_search(path, t) == [m.row for m in index.search(extract_keywords(t), K)]
            for t in texts[:3]
        ),
    }


def targets(result: dict) -> list[dict]:
    memory, cold_runs = result["memory"], result["cold"]
    out = []

    def add(target: str, measured: float | None, unit: str, ok: bool) -> None:
        out.append({"target": target, "measured": measured, "unit": unit, "pass": ok})

    for n in (100_000, 1_000_000):
        entry = memory.get(n, {})
        peer = entry.get("tantivy", {}).get("bm25", {}).get("p50_ms")
        for method in METHODS:
            got = entry.get("ours", {}).get(method, {}).get("p50_ms")
            ratio = got / peer if got is not None and peer else None
            add(
                f"{method} p50 / tantivy p50 @ {n:,} <= 1",
                ratio,
                "x",
                ratio is not None and ratio <= 1,
            )
    if 100_000 in cold_runs:
        med = cold_runs[100_000]["median_ms"]
        ratio = med["ours (mcp-harness experience search)"] / med.get("sqlite-fts5", float("nan"))
        add("cold search / FTS5 cold @ 100,000 <= 2", ratio, "x", ratio <= 2)
    if 1_000_000 in cold_runs:
        got = cold_runs[1_000_000]["median_ms"]["ours (mcp-harness experience search)"]
        add("cold search @ 1,000,000 <= 1000 ms", got, "ms", got <= 1000)
    if 100_000 in result["naive"]:
        got = result["naive"][100_000]["speedup"]
        add("naive/indexed p50 @ 100,000 >= 500x", got, "x", got >= 500)
    got = max(e["ours"]["bytes_per_row"] for e in memory.values())
    add("index memory <= 1024 B/row (worst N)", got, "B", got <= 1024)
    return out


# ---- report --------------------------------------------------------------------------------
def table(result: dict) -> str:
    m, gen = result["machine"], result["generate_s"]
    lines = [
        f"retrieval benchmark {result['date']} | {m['cores']} cores | Python {m['python']} | "
        f"numpy {m['numpy']}",
        f"generated {gen['rows']:,} rows (with slot-aware terms) in {gen['seconds']:.1f} s; "
        f"{result['queries']} queries, {result['query_groups_mean']:.1f} groups on average; "
        f"top-{result['k']}; search call only",
        "",
        f"{'rows':>10} {'engine':<12} {'build s':>8} {'B/row':>7} {'jaccard p50/p95 ms':>19} "
        f"{'bm25 p50/p95 ms':>17} {'top-16 overlap':>15}",
    ]
    for n, entry in result["memory"].items():
        for name, e in entry.items():
            j = e.get("jaccard")
            jac = f"{j['p50_ms']:>9.3f} /{j['p95_ms']:>8.3f}" if j else f"{'-':>19}"
            b = e["bm25"]
            agree = e.get("overlap_with_ours")
            lines.append(
                f"{n:>10,} {name:<12} {e['build_s']:>8.2f} {e['bytes_per_row']:>7.0f} {jac} "
                f"{b['p50_ms']:>8.3f} /{b['p95_ms']:>7.3f} "
                f"{'(ours)' if agree is None else f'{agree:.1%}':>15}"
            )
    for n, c in result["cold"].items():
        written = "reused" if c["written_s"] is None else f"written in {c['written_s']:.0f} s"
        lines += [
            "",
            f"cold search, new process, {n:,} rows (experience {written}; index.bin "
            f"{c['index_file_bytes_per_row']:.0f} B/row; {c['runs']} interleaved runs; same "
            f"rows as in memory: {c['same_as_memory']}):",
        ]
        lines += [f"  {name:<40} {ms:>8.1f} ms" for name, ms in c["median_ms"].items()]
    if result["naive"]:
        lines += [
            "",
            "naive scan (seed method, warm page cache) vs indexed jaccard, same queries:",
            f"{'rows':>10} {'queries':>8} {'naive p50 ms':>13} {'indexed p50 ms':>15} "
            f"{'speedup':>9} {'same top-16':>12}",
        ]
        for n, e in result["naive"].items():
            lines.append(
                f"{n:>10,} {e['queries']:>8} {e['naive_p50_ms']:>13.1f} "
                f"{e['indexed_p50_ms']:>15.3f} {e['speedup']:>8.0f}x {e['same_top16']!s:>12}"
            )
    lines += ["", f"{'target':<45} {'measured':>12}  result"]
    for t in result["targets"]:
        got = "not run" if t["measured"] is None else f"{t['measured']:.2f} {t['unit']}"
        verdict = "PASS" if t["pass"] else ("-" if t["measured"] is None else "MISS")
        lines.append(f"{t['target']:<45} {got:>12}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N smoke run (seconds)")
    parser.add_argument("--work", type=Path, default=WORK, help=f"scratch dir (default {WORK})")
    parser.add_argument(
        "--rows", default="10000,100000,1000000", help="row counts (comma-separated)"
    )
    parser.add_argument(
        "--cold", default="100000,1000000", help="row counts for cold searches (comma-separated)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        result = run([2_000, 10_000], [10_000], {2_000: 10}, 50, args.work, 3)
    else:
        sizes = [int(n) for n in args.rows.split(",") if n.strip()]
        cold_sizes = [int(n) for n in args.cold.split(",") if n.strip()]
        naive_plan = {n: q for n, q in {10_000: 20, 100_000: 5}.items() if n in sizes}
        result = run(sizes, cold_sizes, naive_plan, 200, args.work, 9)
    print(table(result))
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
