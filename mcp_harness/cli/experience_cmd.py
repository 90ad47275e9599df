"""`mcp-harness experience …`: create, fill, search and inspect experience tensors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mcp_harness.errors import HarnessError


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("experience", help="create, fill, search and inspect experience")
    sub = parser.add_subparsers(dest="experience_command", metavar="ACTION")
    sub.required = True
    where = (
        "experience name (under the data dir, or a [stores] name in config.toml), a path, "
        "or postgresql://USER@HOST:PORT/DBNAME#EXPERIENCE"
    )

    new = sub.add_parser("new", help="create an empty experience tensor")
    new.add_argument("experience", help=where)
    new.set_defaults(run=_new)

    add = sub.add_parser("add", help="append one row (query keywords default to the key's)")
    add.add_argument("experience", help=where)
    add.add_argument("key", help="source text: the situation or task")
    add.add_argument("value", help="target text: what to do")
    add.add_argument("--query", help="retrieval keywords, one per line (default: from the key)")
    add.add_argument("--weight", type=float, default=1.0, help="row weight (default 1.0)")
    add.add_argument("--source", default="manual", help="provenance source (default manual)")
    add.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra provenance field; repeatable",
    )
    _json_flag(add)
    add.set_defaults(run=_add)

    imp = sub.add_parser("import-jsonl", help="append rows from a JSON Lines file")
    imp.add_argument("experience", help=where)
    imp.add_argument("file", type=Path, help='lines of {"key", "value", ["query", "weight", …]}')
    imp.add_argument("--source", default=None, help="provenance source (default: the file name)")
    _json_flag(imp)
    imp.set_defaults(run=_import)

    search = sub.add_parser("search", help="top-k rows for a text")
    search.add_argument("experience", help=where)
    search.add_argument("text", help="what to look for (keywords are extracted)")
    search.add_argument("-k", type=int, default=5, help="rows to return (default 5)")
    search.add_argument("--method", choices=("jaccard", "bm25"), default="jaccard")
    search.add_argument("--noise", type=float, default=0.0, help="exploration noise (needs --seed)")
    search.add_argument("--seed", type=int, default=None)
    search.add_argument(
        "--others-weight",
        type=float,
        default=None,
        metavar="W",
        help="pool only: factor on other users' rows, 0 hides them "
        "(default: [pool] others_weight in config.toml, else 1)",
    )
    _json_flag(search)
    search.set_defaults(run=_search)

    show = sub.add_parser("show", help="print rows with provenance")
    show.add_argument("experience", help=where)
    show.add_argument("rows", nargs="*", type=int, help="row indices (default: the first --limit)")
    show.add_argument("--limit", type=int, default=20)
    _json_flag(show)
    show.set_defaults(run=_show)

    stats = sub.add_parser("stats", help="row count, sources, weights")
    stats.add_argument("experience", help=where)
    _json_flag(stats)
    stats.set_defaults(run=_stats)

    edit = sub.add_parser("edit", help="change one row's cells or weight")
    edit.add_argument("experience", help=where)
    edit.add_argument("row", type=int)
    edit.add_argument("--query")
    edit.add_argument("--key")
    edit.add_argument("--value")
    edit.add_argument("--weight", type=float)
    _json_flag(edit)
    edit.set_defaults(run=_edit)

    delete = sub.add_parser("delete", help="delete rows (later rows move up)")
    delete.add_argument("experience", help=where)
    delete.add_argument("rows", nargs="+", type=int)
    delete.set_defaults(run=_delete)

    push = sub.add_parser("push", help="copy a local experience's rows into a pool")
    push.add_argument("experience", help=where)
    push.add_argument("pool", help="postgresql://USER@HOST:PORT/DBNAME#EXPERIENCE (made if new)")
    _json_flag(push)
    push.set_defaults(run=_push)

    pull = sub.add_parser("pull", help="copy a pool's rows into a local experience")
    pull.add_argument("pool", help="postgresql://USER@HOST:PORT/DBNAME#EXPERIENCE")
    pull.add_argument("experience", help=where + " (made if new)")
    _json_flag(pull)
    pull.set_defaults(run=_pull)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _open(name: str, mode: str = "open", **options: Any):  # -> a context manager
    from mcp_harness.experience.backend import opened  # lazily: start-up stays light

    return opened(name, mode, **options)


def _new(args: argparse.Namespace) -> int:
    with _open(args.experience, "new") as experience:
        print(f"created empty experience {experience.path}")
    return 0


def _pool_or_error(name: str) -> None:
    from mcp_harness.experience.backend import PoolAddress, resolve_store

    if not isinstance(resolve_store(name), PoolAddress):
        raise HarnessError(
            f"{name!r} is not a pool",
            "give postgresql://USER@HOST:PORT/DBNAME#EXPERIENCE or a [stores] name for one",
        )


def _push(args: argparse.Namespace) -> int:
    from mcp_harness.experience import transfer

    _pool_or_error(args.pool)
    with _open(args.experience) as local, _open(args.pool, "ensure") as pool:
        copied = transfer.push(local.rows(), pool)
        summary = {"added": copied.added, "skipped": copied.skipped, "rows": len(pool)}
        text = (
            f"pushed {copied.added} rows to {pool.path} ({copied.skipped} already there, "
            f"{len(pool)} rows now)"
        )
    _emit(args, summary, text)
    return 0


def _pull(args: argparse.Namespace) -> int:
    from mcp_harness.experience import transfer

    _pool_or_error(args.pool)
    with _open(args.pool) as pool, _open(args.experience, "ensure") as local:
        copied = transfer.pull(pool, local)
        summary = {"added": copied.added, "skipped": copied.skipped, "rows": len(local)}
        text = (
            f"pulled {copied.added} rows into {local.path} ({copied.skipped} already there, "
            f"{len(local)} rows now)"
        )
    _emit(args, summary, text)
    return 0


def _add(args: argparse.Namespace) -> int:
    from mcp_harness.experience.keywords import keywords_text
    from mcp_harness.experience.store import Row

    fields: dict[str, Any] = {}
    for item in args.field:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise HarnessError(f"--field {item!r} is not NAME=VALUE", "write e.g. --field exit=0")
        fields[name] = value
    query = args.query if args.query is not None else keywords_text(args.key)
    with _open(args.experience) as experience:
        indices = experience.append(
            [Row(query, args.key, args.value, args.weight, args.source, fields)]
        )
        row = experience.row(indices[0])
        _emit(args, row.to_json(), f"added row {row.index} to {experience.path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from mcp_harness.experience.importer import read_rows_jsonl

    rows = read_rows_jsonl(args.file, source=args.source or args.file.name)
    with _open(args.experience) as experience:
        added = experience.append(rows)
        summary = {"added": len(added), "first_row": added.start, "rows": len(experience)}
        _emit(
            args,
            summary,
            f"imported {len(added)} rows from {args.file} into {experience.path} "
            f"({len(experience)} rows now)",
        )
    return 0


def _search(args: argparse.Namespace) -> int:
    found = None
    if not args.noise and args.others_weight is None:  # one query: straight from index.bin
        from mcp_harness.experience import cold

        found = cold.search_named(args.experience, args.text, args.k, args.method)
    if found is not None:
        hits, empty = found[0], found[1] == 0
    else:
        with _open(args.experience, others_weight=args.others_weight) as experience:
            hits = experience.search(args.text, args.k, args.method, args.noise, args.seed)
            empty = len(experience) == 0
    if args.json:
        print(
            json.dumps(
                {"query": args.text, "empty": not hits, "hits": [h.to_json() for h in hits]},
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    if not hits:
        print(f"no results: {'the experience is empty' if empty else 'no row matches'}")
        return 0
    for hit in hits:
        author = hit.row.provenance.get("author")
        print(f"[{hit.row.index}] score {hit.score:.3f}" + (f"  (by {author})" if author else ""))
        print(_indent("key", hit.row.key))
        print(_indent("value", hit.row.value))
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args.experience) as experience:
        indices = args.rows or range(min(args.limit, len(experience)))
        rows = [experience.row(i) for i in indices]
        header = f"{experience.path}: {len(experience)} rows"
    if args.json:
        print(json.dumps([r.to_json() for r in rows], ensure_ascii=False, indent=2))
        return 0
    print(header)
    for row in rows:
        print(f"[{row.index}] weight {row.weight:g}  {json.dumps(row.provenance)}")
        print(_indent("query", row.query))
        print(_indent("key", row.key))
        print(_indent("value", row.value))
    return 0


def _stats(args: argparse.Namespace) -> int:
    with _open(args.experience) as experience:
        stats = experience.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        for name, value in stats.items():
            print(f"{name:12} {value}")
    return 0


def _edit(args: argparse.Namespace) -> int:
    if all(v is None for v in (args.query, args.key, args.value, args.weight)):
        raise HarnessError("nothing to change", "give --query, --key, --value or --weight")
    with _open(args.experience) as experience:
        row = experience.patch(
            args.row, query=args.query, key=args.key, value=args.value, weight=args.weight
        )
        _emit(args, row.to_json(), f"updated row {row.index} of {experience.path}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    with _open(args.experience) as experience:
        count = experience.delete(args.rows)
        print(f"deleted {count} rows from {experience.path} ({len(experience)} left)")
    return 0


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, ensure_ascii=False, indent=2) if args.json else text)


def _indent(label: str, text: str) -> str:
    lines = text.splitlines() or [""]
    pad = " " * (len(label) + 4)
    return f"  {label}: {lines[0]}" + "".join(f"\n{pad}{line}" for line in lines[1:])
