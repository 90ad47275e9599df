"""Module directories: a portable harness is a folder.

```
<module>/
  module.json            the graph spec (see runtime.graph)
  README.md              what it does and how to run it
  experience/<name>/     its experience tensors (the trainable weights)
```
`module.json` names each experience by a path relative to the module, or by any address an
experience argument takes elsewhere (`experience.backend`): a pool address
`postgresql://USER@HOST:PORT/DBNAME#NAME` or a `[stores]` name from `config.toml`.
Built-in modules (`mcp_harness/modules/<name>/`) are templates: the first use copies one into
`<data home>/modules/<name>` and fills its experience from the template's `seed/<name>.jsonl`,
so training and edits never touch the installed package.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_harness.errors import HarnessError
from mcp_harness.experience.backend import (
    STORES,
    PoolAddress,
    close_store,
    is_store_name,
    open_at,
    resolve_store,
)
from mcp_harness.experience.store import Experience
from mcp_harness.paths import data_home
from mcp_harness.runtime.future import Element, Run
from mcp_harness.runtime.graph import Graph, build, load_spec
from mcp_harness.runtime.module_dirs import SPEC, builtin_names, modules_home

if TYPE_CHECKING:
    from mcp_harness.experience.pg_store import PoolExperience


def resolve(name_or_path: str) -> Path:
    """A path, a module under the data home, or a built-in (copied there on first use)."""
    candidate = Path(name_or_path).expanduser()
    if "/" in name_or_path or name_or_path.startswith("."):
        if not (candidate / SPEC).is_file():
            raise HarnessError(
                f"{candidate.absolute()}: not a module (no {SPEC})",
                "point at a module directory, or create one: mcp-harness module new",
            )
        return candidate.absolute()
    home = modules_home() / name_or_path
    if (home / SPEC).is_file():
        return home
    if name_or_path in builtin_names():
        return new(name_or_path, template=name_or_path)
    known = sorted(
        {*builtin_names(), *(p.name for p in modules_home().glob("*/") if (p / SPEC).is_file())}
    )
    raise HarnessError(
        f"unknown module {name_or_path!r}",
        f"use one of: {', '.join(known)}, or a path to a module directory",
    )


def new(name: str, template: str = "coder", target: Path | None = None) -> Path:
    """Create a module from a built-in template, with its seed experience imported."""
    from mcp_harness.experience.importer import read_rows_jsonl

    if template not in builtin_names():
        raise HarnessError(
            f"unknown template {template!r}", f"use one of: {', '.join(builtin_names())}"
        )
    destination = (target or modules_home() / name).absolute()
    if destination.exists() and any(destination.iterdir()):
        raise HarnessError(f"{destination}: already exists", "choose another name or directory")
    source = resources.files("mcp_harness.modules").joinpath(template)
    destination.mkdir(parents=True, exist_ok=True)
    spec = json.loads(source.joinpath(SPEC).read_text(encoding="utf-8"))
    spec["name"] = name
    (destination / SPEC).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    readme = source.joinpath("README.md")
    if readme.is_file():
        (destination / "README.md").write_text(readme.read_text(encoding="utf-8"))
    for exp_name, relative in spec.get("experience", {}).items():
        experience = Experience.create(destination / relative)
        seed = source.joinpath("seed", f"{exp_name}.jsonl")
        if seed.is_file():
            with resources.as_file(seed) as seed_path:
                experience.append(read_rows_jsonl(seed_path, source=f"seed:{template}"))
    return destination


@dataclass
class Module:
    path: Path
    spec: dict[str, Any]
    experience: dict[str, Experience | PoolExperience] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec.get("name", self.path.name))

    def close(self) -> None:
        """Close the connections of its pool experiences (file ones hold nothing open)."""
        for store in self.experience.values():
            close_store(store)

    def graph(self, dims: dict[str, int] | None = None) -> Graph:
        return build(self.spec, dims, set(self.experience))

    def summary(self) -> dict[str, Any]:
        """What the module is, for `module show` and the server's `module_show`: name, path,
        description, dims, inputs, output, nodes and each experience's statistics."""
        graph = self.graph()
        return {
            "name": self.name,
            "path": str(self.path),
            "description": str(self.spec.get("description", "")),
            "dims": graph.dims,
            "inputs": self.spec.get("inputs", {}),
            "output": graph.output.name,
            "nodes": graph.describe(),
            "experience": {name: tensor.stats() for name, tensor in self.experience.items()},
        }


def stores(path: Path, spec: Any) -> dict[str, Path | PoolAddress]:
    """Where each experience a module's spec declares lives (`resolve_store`, relative paths
    from the module directory `path`)."""
    declared = spec.get("experience", {}) if isinstance(spec, dict) else {}
    if not isinstance(declared, dict) or not all(
        isinstance(v, str) and v for v in declared.values()
    ):
        raise HarnessError(
            f"{path / SPEC}: 'experience' must map names to directories or pool addresses",
            "see the module README",
        )
    found = {}
    for name, where in declared.items():
        with _naming(path, name):
            found[name] = resolve_store(where, path)
    return found


def load(name_or_path: str, experience_overrides: dict[str, Path] | None = None) -> Module:
    """Load a module and open its experience (files or pool stores); the graph is checked
    before returning. An error names the module, the experience and its store."""
    path = resolve(name_or_path)
    spec = load_spec(path / SPEC)
    overrides = experience_overrides or {}
    where = {name: overrides.get(name, store) for name, store in stores(path, spec).items()}
    experience: dict[str, Experience | PoolExperience] = {}
    try:
        for exp_name, store in where.items():
            if isinstance(store, Path) and not (store / "shape").is_file():
                raise _missing(path, exp_name, spec["experience"][exp_name], store)
            with _naming(path, exp_name):
                experience[exp_name] = open_at(store)
        module = Module(path, spec, experience)
        module.graph()
    except BaseException:
        for store in experience.values():
            close_store(store)
        raise
    return module


@contextlib.contextmanager
def _naming(path: Path, exp_name: str) -> Iterator[None]:
    """Errors of one declared experience, prefixed with the module and experience names."""
    try:
        yield
    except HarnessError as exc:
        raise HarnessError(
            f"module {path.name!r}: experience {exp_name!r}: {exc.message}", exc.fix
        ) from None


def _missing(path: Path, exp_name: str, declared: str, where: Path) -> HarnessError:
    """A declared file experience that is not there (a bare word may be a mistyped store)."""
    fix = f"create it: mcp-harness experience new {where}"
    if not is_store_name(declared):
        return HarnessError(
            f"module {path.name!r}: experience {exp_name!r} is missing at {where}", fix
        )
    return HarnessError(
        f"module {path.name!r}: experience {exp_name!r}: {declared!r} is neither a store in "
        f"[{STORES}] of {data_home() / 'config.toml'} nor an experience at {where}",
        f'name a pool store: add {declared} = "postgresql://USER@HOST:PORT/DBNAME#NAME" under '
        f"[{STORES}]; or {fix}",
    )


@dataclass
class RunReport:
    run_dir: Path
    elements: list[Element]
    graph: Graph
    run: Run
    seconds: float


def prepare(
    module: Module,
    inputs: dict[str, Any],
    *,
    kernel: Any,
    dims: dict[str, int] | None = None,
    run_dir: Path | None = None,
    workdir: Path | None = None,
) -> tuple[Graph, Run]:
    """Check the inputs, bind `batch` to their size, check the graph, and make the run (in
    `<data home>/runs/<module>-<time>-<n>` unless `run_dir` is given); nothing runs yet."""
    declared = module.spec.get("inputs", {})
    missing = set(declared) - set(inputs)
    if missing:
        raise HarnessError(
            f"module {module.name!r} needs inputs {sorted(missing)}",
            f"give {', '.join(sorted(missing))}",
        )
    batch = {len(v) for v in inputs.values() if isinstance(v, list)}
    bound = dict(dims or {})
    if "batch" in module.spec.get("dims", {}) and len(batch) == 1 and "batch" not in bound:
        bound["batch"] = batch.pop()
    graph = module.graph(bound)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = run_dir or data_home() / "runs" / f"{module.name}-{stamp}-{time.time_ns() % 10**6}"
    forward = Run(
        target, kernel=kernel, inputs=inputs, experience=module.experience, workdir=workdir
    )
    return graph, forward


async def run(
    module: Module,
    inputs: dict[str, Any],
    *,
    kernel: Any,
    dims: dict[str, int] | None = None,
    run_dir: Path | None = None,
    workdir: Path | None = None,
    timeout: float | None = None,
) -> RunReport:
    """`prepare`, then run the output node; the run's sessions and runners end with it."""
    graph, forward = prepare(
        module, inputs, kernel=kernel, dims=dims, run_dir=run_dir, workdir=workdir
    )
    started = time.perf_counter()
    async with forward:
        elements = await forward.forward(graph.output, timeout=timeout)
    return RunReport(forward.run_dir, elements, graph, forward, time.perf_counter() - started)
