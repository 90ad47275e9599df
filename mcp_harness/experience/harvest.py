"""Harvest captured Bash calls into two experience tensors per project.

For every project (see `project_slug`) harvest writes, under `experience_home()` or `out_dir`:

- `<slug>.decision` — "what to do next here": key = the task, a blank line, then the last
  `SCREEN_LINES` non-empty lines of the terminal before the call (`screen_before`; when the
  wrapper recorded no screen, the previous call's output in the same session); value = the call's
  description (the model's statement of its decision). Calls without a description add no row.
- `<slug>.command` — "how to do it": key = the description (the task when there is none);
  value = the command the model ran.

The query column is `keywords_text(key)` of the redacted key (so a secret split into several
keywords cannot slip past redaction; the `[REDACTED]` marker itself is no keyword). Every row has
source `"harvest"` and provenance fields `session_id`, `tool_use_id`, `call_id`, `wrapper_id`,
`exit_code`, `cwd`, `ts` (when the call ran), `project` and `sources`.

Weights: successful calls get 1.0, failed ones (known non-zero exit code, signal,
PostToolUseFailure) 0.5 — a failure is still experience (it shows what was tried in that
situation) but should rank below what worked, and the optimizer can still move either weight.
Calls whose outcome is unknown keep 1.0. Calls the user denied never ran and are not harvested.

Re-running is idempotent: a call whose `call_id` (or tool_use_id / wrapper id) is already in the
provenance of a row of the tensor is skipped, and so is a (key, value) pair the tensor already
holds (compared after redaction, as stored) — so harvesting twice adds nothing. Rows are written
with `Experience.append`, which redacts secrets.

With `to` (a pool database, `postgresql://…`), every tensor the run touched is then pushed to the
experience of the same name in the pool, in one transaction per tensor: rows the pool holds are
skipped, so a push that failed is made up by the next harvest. Pushed rows carry the sending
`user` and `host` beside the fields above.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from mcp_harness.capture import join
from mcp_harness.capture.join import Call
from mcp_harness.errors import HarnessError
from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.store import Experience, Row
from mcp_harness.paths import experience_home
from mcp_harness.redaction import REDACTED, redact
from mcp_harness.storage import layout

SCREEN_LINES = 40
SUCCESS_WEIGHT = 1.0
FAILURE_WEIGHT = 0.5
SOURCE = "harvest"
EXIT_STATUSES = ("any", "success", "failure")
DECISION = "decision"
COMMAND = "command"
_ID_FIELDS = ("call_id", "tool_use_id", "wrapper_id")


@dataclass
class TensorReport:
    """What one harvest did to one tensor."""

    added: int = 0
    skipped_duplicates: int = 0

    def to_json(self) -> dict[str, int]:
        return {"added": self.added, "skipped_duplicates": self.skipped_duplicates}


@dataclass
class HarvestReport:
    """Calls seen (in the date window) and filtered out, and per tensor path rows added/skipped."""

    calls_seen: int = 0
    calls_filtered: int = 0
    tensors: dict[Path, TensorReport] = field(default_factory=dict)
    imported: Any = None  # the transcript importer's ImportReport, when it ran
    pushed: dict[str, TensorReport] = field(default_factory=dict)  # pool address -> rows

    @property
    def rows_added(self) -> int:
        return sum(t.added for t in self.tensors.values())

    def to_json(self) -> dict[str, Any]:
        imported = self.imported
        if dataclasses.is_dataclass(imported) and not isinstance(imported, type):
            imported = dataclasses.asdict(imported)
        elif imported is not None and hasattr(imported, "__dict__"):
            imported = dict(vars(imported))
        return {
            "calls_seen": self.calls_seen,
            "calls_filtered": self.calls_filtered,
            "rows_added": self.rows_added,
            "tensors": {str(path): t.to_json() for path, t in self.tensors.items()},
            "imported": imported,
            "pushed": {address: t.to_json() for address, t in self.pushed.items()},
        }


def project_slug(cwd: str | None) -> str:
    """The tensor name of a project: its directory's last two path components joined with `-`,
    lowercased, every run of non-alphanumerics turned into one `-` (ends trimmed).

    `/home/ana/src/My_App` -> `src-my-app`; `/` or no cwd -> `unknown`.
    """
    if not cwd:
        return "unknown"
    parts = [p for p in PurePosixPath(cwd.replace("\\", "/")).parts if p not in ("/", "")]
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(parts[-2:]).lower()).strip("-")
    return slug or "unknown"


def harvest(
    *,
    import_transcripts: bool = True,
    projects_root: Path | None = None,
    exit_status: str = "any",
    project: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    out_dir: Path | None = None,
    to: str | None = None,
) -> HarvestReport:
    """Turn captured calls into `<slug>.decision` and `<slug>.command` experience rows.

    `exit_status`: "any", "success" (exit code 0) or "failure" (known to have failed).
    `project`: a slug (`project_slug`) or a directory; a directory keeps calls whose project or
    cwd is that directory or below it. `since` / `until`: `since <= ts < until` (naive = UTC).
    `to`: a pool database the touched tensors are pushed to (see the module docstring).
    """
    if exit_status not in EXIT_STATUSES:
        raise HarnessError(
            f"unknown exit status filter {exit_status!r}", f"use one of {', '.join(EXIT_STATUSES)}"
        )
    if to is not None:
        to = _pool_database(to)
    report = HarvestReport()
    if import_transcripts:
        from mcp_harness.capture.transcripts import import_transcripts as run_import

        report.imported = run_import(projects_root)

    every_call = join.calls()
    context = _previous_outputs(every_call)  # also from calls before `since`
    if since is not None or until is not None:
        all_calls = [c for c in every_call if join.in_window(c.ts, since, until)]
    else:
        all_calls = every_call
    report.calls_seen = len(all_calls)
    base = Path(out_dir).expanduser().absolute() if out_dir is not None else experience_home()

    per_project: dict[str, list[Call]] = {}
    for call in all_calls:
        if call.denied or not _status_ok(call, exit_status) or not project_matches(call, project):
            report.calls_filtered += 1
            continue
        per_project.setdefault(project_slug(call.project), []).append(call)

    for slug, project_calls in per_project.items():
        decision_rows = []
        command_rows = []
        for call in project_calls:
            decision_rows.append((call, _decision_pair(call, context.get(call.call_id))))
            command_rows.append((call, _command_pair(call)))
        for kind, pairs in ((DECISION, decision_rows), (COMMAND, command_rows)):
            path = base / f"{slug}.{kind}"
            report.tensors[path] = _append_new(path, slug, pairs)
    if to is not None:
        for path in report.tensors:
            report.pushed[f"{to}#{path.name}"] = _push(path, f"{to}#{path.name}")
    return report


def _pool_database(to: str) -> str:
    from mcp_harness.experience.backend import hide_passwords, parse_database

    if "#" in to:
        raise HarnessError(
            f"{hide_passwords(to)}: harvest names the pool's experiences itself "
            "(<project>.decision, <project>.command)",
            "drop the #NAME part: --to postgresql://USER@HOST:PORT/DBNAME",
        )
    return parse_database(to)


def _push(path: Path, address: str) -> TensorReport:
    from mcp_harness.experience import transfer
    from mcp_harness.experience.backend import ENSURE, opened

    with opened(address, ENSURE) as pool:
        copied = transfer.push(Experience.open(path).rows(), pool)
    return TensorReport(copied.added, copied.skipped)


# ---- internals ---------------------------------------------------------------------------------
def _status_ok(call: Call, exit_status: str) -> bool:
    if exit_status == "success":
        return call.succeeded
    if exit_status == "failure":
        return call.failed
    return True


def project_matches(call: Call, wanted: str | None) -> bool:
    if not wanted:
        return True
    if wanted == project_slug(call.project):
        return True
    if "/" not in wanted and not wanted.startswith((".", "~")):
        return False  # a slug that did not match
    prefix = PurePosixPath(str(Path(wanted).expanduser().absolute()))
    for directory in (call.project, call.cwd):
        if directory and PurePosixPath(directory).is_relative_to(prefix):
            return True
    return False


def _previous_outputs(calls: list[Call]) -> dict[str, str]:
    """call_id -> output of the previous call of the same session (calls are in ts order)."""
    last: dict[str, str] = {}
    found: dict[str, str] = {}
    for call in calls:
        if not call.session_id:
            continue
        if call.session_id in last:
            found[call.call_id] = last[call.session_id]
        if call.output is not None:
            last[call.session_id] = call.output
    return found


def _tail(text: str | None, count: int = SCREEN_LINES) -> str:
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    return "\n".join(lines[-count:])


def _decision_pair(call: Call, previous_output: str | None) -> tuple[str, str] | None:
    description = (call.description or "").strip()
    if not description:
        return None
    screen = call.screen_before if (call.screen_before or "").strip() else previous_output
    key = "\n\n".join(part for part in ((call.task or "").strip(), _tail(screen)) if part)
    return (key, description) if key else None


def _command_pair(call: Call) -> tuple[str, str] | None:
    key = (call.description or "").strip() or (call.task or "").strip()
    command = call.command or ""
    return (key, command) if key and command.strip() else None


def _provenance(call: Call, slug: str) -> dict[str, Any]:
    return {
        "session_id": call.session_id,
        "tool_use_id": call.tool_use_id,
        "call_id": call.call_id,
        "wrapper_id": call.wrapper_id,
        "exit_code": call.exit_code,
        "cwd": call.cwd,
        "ts": call.ts.isoformat() if call.ts else None,
        "project": slug,
        "sources": list(call.sources),
    }


def _open_or_create(path: Path) -> Experience:
    if (path / layout.SHAPE_FILE).exists():
        return Experience.open(path)
    return Experience.create(path)


def _append_new(
    path: Path, slug: str, pairs: list[tuple[Call, tuple[str, str] | None]]
) -> TensorReport:
    """Append the rows not harvested before, holding the tensor's lock so that two harvests
    running at once cannot both add the same call."""
    result = TensorReport()
    experience = _open_or_create(path)
    with experience.locked():
        known_ids: set[str] = set()
        known_pairs: set[tuple[str, str]] = set()
        for stored in experience.rows():
            known_pairs.add((stored.key, stored.value))
            for name in _ID_FIELDS:
                value = stored.provenance.get(name)
                if value:
                    known_ids.add(str(value))
        rows = []
        for call, pair in pairs:
            if pair is None:
                continue
            ids = {str(v) for v in (call.call_id, call.tool_use_id, call.wrapper_id) if v}
            key, value = stored_pair = (redact(pair[0]), redact(pair[1]))
            if ids & known_ids or stored_pair in known_pairs:
                result.skipped_duplicates += 1
                continue
            known_ids |= ids
            known_pairs.add(stored_pair)
            weight = FAILURE_WEIGHT if call.failed else SUCCESS_WEIGHT
            rows.append(
                Row(
                    keywords_text(key.replace(REDACTED, " ")),
                    key,
                    value,
                    weight,
                    SOURCE,
                    _provenance(call, slug),
                )
            )
        result.added = len(experience.append(rows))
    return result
