"""Peer search engines for `retrieval.py`: SQLite FTS5, tantivy and bm25s over the same terms.

Every engine indexes each row's retrieval terms (the ones `Experience` indexes: slot-aware,
canonical) as opaque tokens `t<id>`, so no tokenizer splits or stems them, and answers a query
as a disjunction of its groups' tokens. They rank with their own BM25 variants, so agreement
with our `bm25` is an overlap, not an identity. Each engine keeps its index on disk under the
work directory (the cold runs open it from there); tantivy and bm25s are optional
(`pip install mcp-harness[bench]`), and an engine whose package is missing is left out.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np


class Tokens:
    """Term -> opaque token, shared by every engine of one run."""

    def __init__(self, docs: list[list[str]]) -> None:
        self.ids: dict[str, int] = {}
        for terms in docs:
            for term in terms:
                self.ids.setdefault(term, len(self.ids))

    def doc(self, terms: list[str]) -> list[str]:
        return [f"t{self.ids[t]}" for t in terms]

    def query(self, groups: list[tuple[str, ...]]) -> list[str]:
        return list(dict.fromkeys(f"t{self.ids[w]}" for g in groups for w in g if w in self.ids))


class Fts5:
    name = "sqlite-fts5"

    def __init__(self, work: Path) -> None:
        self.path = work / "fts5.db"

    def build(self, docs: list[list[str]]) -> None:
        self.path.unlink(missing_ok=True)
        con = sqlite3.connect(self.path)
        con.execute("CREATE VIRTUAL TABLE docs USING fts5(body, detail=none)")
        with con:
            con.executemany(
                "INSERT INTO docs(rowid, body) VALUES (?, ?)",
                ((row, " ".join(d)) for row, d in enumerate(docs)),
            )
        con.execute("INSERT INTO docs(docs) VALUES ('optimize')")
        con.commit()
        con.close()
        self.con = sqlite3.connect(self.path)

    def search(self, tokens: list[str], k: int) -> list[int]:
        if not tokens:
            return []
        sql = "SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?"
        return [r for (r,) in self.con.execute(sql, (" OR ".join(tokens), k))]

    def bytes(self) -> int:
        return self.path.stat().st_size

    def cold(self, tokens: list[str], k: int) -> list[str]:
        code = (
            "import sqlite3, sys; con = sqlite3.connect(sys.argv[1]); print(con.execute("
            "'SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY rank LIMIT ?', "
            "(sys.argv[2], int(sys.argv[3]))).fetchall())"
        )
        return [sys.executable, "-c", code, str(self.path), " OR ".join(tokens), str(k)]


class Tantivy:
    name = "tantivy"

    def __init__(self, work: Path) -> None:
        import tantivy

        self.tantivy = tantivy
        self.path = work / "tantivy"

    def build(self, docs: list[list[str]]) -> None:
        tv = self.tantivy
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        schema = tv.SchemaBuilder()
        schema.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
        schema.add_unsigned_field("row", stored=True)
        self.index = tv.Index(schema.build(), path=str(self.path))
        writer = self.index.writer(heap_size=200_000_000, num_threads=1)
        for row, d in enumerate(docs):
            writer.add_document(tv.Document(body=" ".join(d), row=row))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def _query(self, tokens: list[str]):
        return self.index.parse_query(" ".join(tokens), ["body"])

    def hits(self, tokens: list[str], k: int) -> list:
        return self.searcher.search(self._query(tokens), k).hits if tokens else []

    def search(self, tokens: list[str], k: int) -> list[int]:
        return [self.searcher.doc(addr)["row"][0] for _, addr in self.hits(tokens, k)]

    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def cold(self, tokens: list[str], k: int) -> list[str]:
        code = (
            "import sys, tantivy; ix = tantivy.Index.open(sys.argv[1]); s = ix.searcher(); "
            "print([s.doc(a)['row'][0] for _, a in "
            "s.search(ix.parse_query(sys.argv[2], ['body']), int(sys.argv[3])).hits])"
        )
        return [sys.executable, "-c", code, str(self.path), " ".join(tokens), str(k)]


class Bm25s:
    name = "bm25s"

    def __init__(self, work: Path) -> None:
        import bm25s

        self.bm25s = bm25s
        self.path = work / "bm25s"

    def build(self, docs: list[list[str]]) -> None:
        self.model = self.bm25s.BM25(k1=1.2, b=0.75, method="robertson")
        self.model.index(docs, show_progress=False)
        shutil.rmtree(self.path, ignore_errors=True)
        self.model.save(str(self.path))

    def search(self, tokens: list[str], k: int) -> list[int]:
        known = [t for t in tokens if t in self.model.vocab_dict]
        if not known:
            return []
        rows, scores = self.model.retrieve([known], k=k, show_progress=False, n_threads=1)
        return [int(r) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def bytes(self) -> int:
        return sum(int(np.asarray(a).nbytes) for a in self.model.scores.values())

    def cold(self, tokens: list[str], k: int) -> list[str]:
        code = (
            "import sys, bm25s; m = bm25s.BM25.load(sys.argv[1], mmap=True); "
            "q = [t for t in sys.argv[2].split() if t in m.vocab_dict]; "
            "print(m.retrieve([q], k=int(sys.argv[3]), show_progress=False)[0])"
        )
        return [sys.executable, "-c", code, str(self.path), " ".join(tokens), str(k)]


def available(work: Path) -> list:
    """The peers whose packages are installed, each with its own directory under `work`."""
    engines = []
    for make in (Fts5, Tantivy, Bm25s):
        directory = work / make.name
        directory.mkdir(parents=True, exist_ok=True)
        try:
            engines.append(make(directory))
        except ImportError:
            print(f"({make.name} not installed: left out)", file=sys.stderr)
    return engines
