"""The bundled task sets (`mcp_harness/data/tasks/*.jsonl`): every check fails on a fresh
workspace and passes after the task's command target; splits and parameters are as the
learning benchmark needs them. Real bash in temporary directories, no tmux."""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest

from mcp_harness.training.trainer import load_dataset

TASKS = resources.files("mcp_harness.data").joinpath("tasks")
SETS = sorted(p.name for p in TASKS.iterdir() if p.name.endswith(".jsonl"))
TRAINED_SPLITS = ["train", "train", "val", "heldout", "heldout"]
TOKEN = re.compile(r"[\w.+=-]+")
# Plausible wrong commands of sibling families, made by rewriting a target (regex, replacement;
# the first that matches): the check must still fail after it.
SIBLINGS = [
    (r"^mkdir -p ", "touch "),
    (r"^touch ", "mkdir -p "),
    (r"^cp --parents ", "cp "),
    (r"^cp ", "ln -s "),
    (r"^mv ", "cp "),
    (r"^ln -s ", "cp -r "),
    (r"^wc -l ", "wc -w "),
    (r"^wc -w ", "wc -l "),
    (r"^grep -rl ", "grep -rL "),
    (r"^grep -rL ", "grep -rl "),
    (r"^head ", "tail "),
    (r"^tail ", "head "),
    (r"^sort -u ", "sort "),
    (r"^xz -k ", "xz "),
    (r"^chmod \+x ", "chmod 644 "),
    (r"^chmod 600 ", "chmod go-w "),
    (r"^rm -r ", "rm -rf * "),
    (r"^git init -q -b \S+$", "git init -q"),
    (r"^git init -q \S+$", "git init -q"),
    (r"^tar -czf (\S+) -C (\S+) \.$", r"tar -czf \1 \2"),
    (r"^tar -czf (\S+) -T (\S+)", r"tar -czf \1 \2"),
    (r"^tar -czf ", "tar -cf "),
    (r"^sed -E 's/\\b\(\.\)/\\u\\1/g' ", r"sed -E 's/^(.)/\\u\\1/' "),
    (r"^sed -i\.bak ", "sed -i "),
    (r"^sed -E 's/\(\[a-z0-9\]\)\(\[A-Z\]\)/\\1_\\L\\2/g' ", r"sed -E 's/_([a-z0-9])/\\U\\1/g' "),
    (r"^sed -E 's/_\(\[a-z0-9\]\)/\\U\\1/g' ", r"sed -E 's/([a-z0-9])([A-Z])/\\1_\\L\\2/g' "),
    (
        r"^sed 's/&/\\&amp;/g; (s/</\\&lt;/g; s/>/\\&gt;/g)' ",
        r"sed '\1; s/&/\\&amp;/g' ",
    ),
    (r"/g' ", "' "),
    (r"^find \S+ ", "find . "),
    (r"^sort -V ", "sort "),
    (r"^sort -h ", "sort -n "),
    (r"^grep -w ", "grep "),
    (r"^grep -vw ", "grep -w "),
    (r"^grep -m 1 ", "grep "),
    (r"^grep (\S+ \S+) \| tail -n 1 ", r"grep -m 1 \1 "),
    (r"^grep -ow (\S+ \S+) \| wc -l ", r"grep -cw \1 "),
    (r"^grep -A ", "grep -B "),
    (r"^rev ", "tac "),
    (r"^tr -s ' ' ", "tr -d ' ' "),
    (r"^sed -i '(/[^']*/)a ", r"sed -i '\1i "),
    (r"^sed -i 's/\^([^=/]+)=\.\*/", r"sed -i 's/\1=/"),
    (r"^sed -i '1s/\^\\xEF\\xBB\\xBF//' ", "sed -i '1d' "),
    (r"^sed -i '\d+s/", "sed -i 's/"),
    (r"^awk '\{print \$2, \$1\}' ", "cut -d' ' -f2,1 "),
    (r"^xargs rm < (\S+)", r"rm \1"),
    (r"^install -m \d+ ", "cp "),
    (r"^ln (?!-)", "ln -s "),
    (r"^ls -S ", "ls "),
    (r"^ls (\S+) ", r"ls -l \1 "),
    (r"^printf '%x\\n' ", r"printf '%d\\n' "),
    (r"^printf '%d\\n' 0x", r"printf '%x\\n' 0x"),
    (r"^zip -q ", "tar -czf "),
    (r"^patch -s ", "patch -s -R -f "),
    (r"^grep -i ", "grep "),
    (r"^grep -n ", "grep "),
    (r"^grep -E ", "grep "),
    (r"^sort -r ", "sort "),
    (r"^wc -L ", "wc -c "),
    (r"^wc -c ", "wc -L "),
    (r"^base32 ", "base64 "),
    (r"^sha256sum -c ", "sha256sum "),
    (r"^cut -c", "cut -f"),
    (r"^(cut -d\S+ -f\d+ \S+ \| sort) -u ", r"\1 "),
    (r"^awk '\{print \$NF\}' ", "awk '{print $1}' "),
    (r"^awk 'length > ", "awk 'length >= "),
    (r"^awk -F, '\{s\[\$1\]\+=\$2\} [^']*' ", "awk -F, '{s+=$2} END {print s}' "),
    (r"^sed 's/\^/", "sed 's/$/"),
    (r"^sed 's/\$/", "sed 's/^/"),
    (r"^sed -i '(\d+)d' ", r"sed -i '1,\1d' "),
    (r"^tr -d '\[:digit:\]' ", "tr -s '[:digit:]' "),
    (r"^tr -cd ", "tr -d "),
    (
        r"^git init -q (\S+) && git -C \S+ config user\.name ",
        r"git init -q \1 && git -C \1 config user.email ",
    ),
    (r"^(sort \S+ \| uniq -c \| sort -)rn ", r"\1n "),
    (r"^numfmt --to=iec ", "numfmt --to=si "),
    (r"^numfmt --from=iec ", "numfmt --from=si "),
    (r"^uniq ", "sort -u "),
    (r"^mkdir -m \d+ ", "mkdir "),
    (r"^chmod -R ", "chmod "),
    (r"^ln -sf ", "ln -s "),
    (r"^comm -23 ", "comm -13 "),
    (r"^comm -13 ", "comm -23 "),
    (r"^(date -u -d '[\d-]+) \+(\d+) days'", r"\1 -\2 days'"),
    (r"^(date -u -d '[\d-]+) -(\d+) days'", r"\1 +\2 days'"),
    (r"^sed -n '2~2p' ", "sed -n '1~2p' "),
    (r"^sed -n '1~2p' ", "sed -n '2~2p' "),
    (r"^(cut -d, -f\d+ \S+ \| sort -n) \| tail -n 1 ", r"\1 | head -n 1 "),
    (r"^(cut -d, -f\d+ \S+ \| sort -n) \| head -n 1 ", r"\1 | tail -n 1 "),
    (r"^cat -s (\S+) ", r"sed '/^$/d' \1 "),
    (r"^grep -F ", "grep "),
    (r"^grep -oE ", "grep -E "),
    (r"^sed -i '(/[^/']*/),/[^/']*/d' ", r"sed -i '\1d' "),
    (r"^tar -cjf ", "tar -czf "),
    (r"^awk -F(\S+) 'NR==1\{print NF\}' ", r"awk -F\1 'END{print NR}' "),
    (r"^awk '\{print length\}' (\S+) ", r"wc -L < \1 "),
    (r"^sed 's/\.\*/\"&\"/' ", "sed 's/^/\"/' "),
    (r"^LC_ALL=C sort -f ", "LC_ALL=C sort "),
    (r"^grep -x ", "grep "),
    (r"^sort -m (\S+) (\S+) ", r"cat \1 \2 "),
    (r"^(date -u -d @\d+) \+%F ", r"\1 +%s "),
    (r"^(date -u -d [\d-]+) \+%s ", r"\1 +%F "),
    (r"^(LC_ALL=C date -u -d \S+) \+%A ", r"\1 +%a "),
    (r"^sed 's/\^\[\[:space:\]\]\*//' ", "sed 's/[[:space:]]*$//' "),
    (r"^sed -n 's/\^([^=/]+)=//p' ", r"grep '^\1=' "),
    (r"^sed -i '/\^([^=/]+)=/d' ", r"sed -i 's/^\1=.*/\1=/' "),
    (r"^paste -d, - - < (\S+) ", r"paste -sd, \1 "),
    (r"^xargs -n \d+ ", "xargs "),
    (r"^truncate -s -1 (\S+)$", r"tr -d '\\n' < \1 > \1.tmp && mv \1.tmp \1"),
    (r"^echo >> ", "echo > "),
    (r"^cut -d(\S+) -f(\d+) --complement ", r"cut -d\1 -f\2 "),
    (r"^awk '\{print NF\}' ", "awk '{print length}' "),
    (r"^sort -o (\S+) (\S+)$", r"sort \2"),
    (r"^yes (.+) \| head -n (\d+) ", r"echo \1 | head -n \2 "),
    (r"^sed -n '(/[^/']*/),(/[^/']*/)p' ", r"sed '\1,\2d' "),
    (r"^xargs mkdir -p ", "xargs touch "),
    (r"^xargs touch ", "xargs mkdir -p "),
    (r"^sed 's/\\\.\[\^\.\]\*\$//' ", r"sed 's/.*\\.//' "),
    (r"^sed 's/\.\*\\\.//' ", r"sed 's/\\.[^.]*$//' "),
    (r"^awk '\{print \$1\*9/5\+32\}' ", "awk '{print ($1-32)*5/9}' "),
    (r"^awk '\{print \(\$1-32\)\*5/9\}' ", "awk '{print $1*9/5+32}' "),
    (r"^grep -vxFf (\S+) (\S+) ", r"grep -xFf \1 \2 "),
    (r"^grep -xFf (\S+) (\S+) ", r"grep -vxFf \1 \2 "),
    (r"^python3 -c \"import json; print\(len\(json\.load\(open\('([^']+)'\)+\" ", r"wc -l < \1 "),
    (r"^python3 -m json\.tool --compact ", "python3 -m json.tool "),
    (r"^echo \$\(\((\d+) \* (\d+)\)\) ", r"echo $((\1 + \2)) "),
    (r"^tr 'A-Za-z' 'N-ZA-Mn-za-m' ", "tr '[:lower:]' '[:upper:]' "),
    (r"^grep -v '\^#' ", "grep '^#' "),
    (r"^python3 -m json\.tool --sort-keys ", "python3 -m json.tool "),
    (r"^(date -u -d @\d+) \+%T ", r"\1 +%F "),
    (r"^awk -F\. -v OFS=\. '\{\$3\+\+; print\}' ", "awk -F. -v OFS=. '{$2++; $3=0; print}' "),
    (r"^awk -F\. -v OFS=\. '\{\$2\+\+; \$3=0; print\}' ", "awk -F. -v OFS=. '{$3++; print}' "),
    (r"^(python3 -c \"import sys, urllib\.parse; print\(urllib\.parse\.)unquote\(", r"\1quote("),
    (r"^(python3 -c \"import sys, urllib\.parse; print\(urllib\.parse\.)quote\(", r"\1unquote("),
    (r"^\(head -n 1 (\S+) && tail -n \+2 \S+ \| sort\) ", r"sort \1 "),
    (r"^awk -F, 'NF != (\d+)' ", r"awk -F, 'NF == \1' "),
    (
        r"^echo \$\(\( \(\$\(date -u -d (\S+) \+%s\) - \$\(date -u -d (\S+) \+%s\)\) ",
        r"echo $(( ($(date -u -d \2 +%s) - $(date -u -d \1 +%s)) ",
    ),
    (r"^sed G ", "sed '/^$/d' "),
    (r"^paste -d'\\n' ", "paste "),
    (r"^awk 'FNR==1 && NR!=1 \{next\} 1' ", "cat "),
    (
        r"^python3 -c \"[^\"]*json\.loads\(line\) for line in open\('([^']+)'\)[^\"]*\" ",
        r"python3 -m json.tool --json-lines \1 ",
    ),
    (r"(; d = json\.load\([^;]*\); )d\['([^']+)'\] = '[^']*'; ", r"\1del d['\2']; "),
    (r"(; d = json\.load\([^;]*\); )del d\['([^']+)'\]; ", r"\1d['\2'] = ''; "),
    (r"^(date -u -d [\d-]+) \+%j ", r"\1 +%V "),
    (r"^(date -u -d [\d-]+) \+%V ", r"\1 +%j "),
    (r"^(date -u -d '[\d-]+) \+1 month -1 day' ", r"\1 +1 month' "),
    (r"^seq -f '[^']*' ", "seq "),
    (r"(print\(statistics\.)median\(", r"\1mode("),
    (r"(print\(statistics\.)mode\(", r"\1median("),
    (r"\"\$\{f// /_\}\"", r'"${f/ /_}"'),
    (r"^(csplit .*) '\{\*\}'$", r"\1"),
    (r"^awk -F, '!seen\[\$\d+\]\+\+' ", "awk '!seen[$0]++' "),
    (r"^awk '\{print length, \$0\}' (\S+) \| sort -n \| cut -d' ' -f2- ", r"sort \1 "),
    (r"^awk '\{printf \"%\.2f\\n\", \$1\}' ", r"""awk '{printf "%d\\n", $1}' """),
    (r"^(sed -E 's#[^#]+#)\\3-\\2-\\1#", r"\1\\3-\\1-\\2#"),
    (r"^(sed -E 's#[^#]+#)\\3-\\1-\\2#", r"\1\\3-\\2-\\1#"),
    (r"^awk '\{for \(i = NF; i > 0; i--\) [^']*' ", "rev "),
    (
        r"json\.load\(open\('([^']+)'\)\); d\.update\(json\.load\(open\('([^']+)'\)\)\)",
        r"json.load(open('\2')); d.update(json.load(open('\1')))",
    ),
    (r"\.split\('=', 1\)", ".split('=')"),
    (
        r"^python3 -c \"import json; print\('\\n'\.join\(f'\{k\}=\{v\}' for k, v in "
        r"json\.load\(open\('([^']+)'\)\)\.items\(\)\)\)\" ",
        r"""python3 -c "import json; print(json.dumps(dict(line.rstrip('\\n').split('=', 1) """
        r"""for line in open('\1'))))" """,
    ),
    (r"^sed '0,/([^/']+)/s//([^/']*)/' ", r"sed 's/\1/\2/' "),
    (r"^tac (\S+) \| (sed '0,[^']*') \| tac ", r"\2 \1 "),
    (r"^(awk -F, -v OFS=, '\{)\$\d+ = toupper\(\$\d+\)", r"\1$0 = toupper($0)"),
    (r"^tar --transform '[^']*' ", "tar "),
    (r"^awk '\{s \+= \$1; print s\}' ", "awk '{s += $1} END {print s}' "),
    (r"^awk 'NR > 1 \{print \$1 - p\} ", "awk '{print $1 - p} "),
    (r"^(git init -q && git add -A) && .*$", r"\1"),
    (r"f'\{int\(x\):,\}'", "f'{int(x)}'"),
    (r"writerows\(zip\(\*(csv\.reader\(open\('[^']+'\)\))\)\)", r"writerows(\1)"),
    (r"^awk -F, '\{s = 0; for ", "awk -F, '{for "),
    (r"^realpath --relative-to=(\S+) (\S+) ", r"realpath --relative-to=\2 \1 "),
    (r'(do mv "\$f" ")[^"$/]+/', r"\1"),
    (r"^LC_ALL=C sort -M ", "LC_ALL=C sort "),
    (r"^sort -t, (-k\d+,\d+) -k\d+,\d+nr ", r"sort -t, \1 "),
    (r'(\$d \+1) day" ', r'\1 month" '),
    (r'(\$d \+1) month" ', r'\1 day" '),
    (r"^sed 's/([^/']+)/([^/']*)/\d+' ", r"sed 's/\1/\2/' "),
    (r"^sed -E 's/\(\.\*\)([^/']+)/\\1([^/']*)/' ", r"sed 's/\1/\2/' "),
    (r"^\(cd (\S+) && find \. -type d -exec mkdir -p \.\./(\S+)/\{\} \\;\)$", r"cp -r \1 \2"),
    (r"^jq -c 'select\(\.\w+ == (\"[^\"]*\")\)' ", r"grep -F '\1' "),
    (
        r"print\(sum\(item\['\w+'\] for item in (json\.load\(open\('[^']+'\)\))\)\)",
        r"print(len(\1))",
    ),
    (r"^awk '\{print FILENAME \":\" \$0\}' ", "cat "),
    (r"^TZ=\S+ date ", "date -u "),
    (r"^(awk -F, -v OFS=, '\{print \$0, \$\d+) \* ", r"\1 + "),
    (r"^grep (\S+) (\S+) \| grep (\S+) ", r"grep -E '\1|\3' \2 "),
    (r"^grep -rn --include='[^']*' ", "grep -rn "),
    (r"^awk -v RS= ", "awk "),
    (r"\+%u\) - 1 \)\)", "+%w) ))"),
    (r'^for d in (\S+)/\*/; do cp (\S+) "\$d"; done$', r"cp \2 \1/"),
    (r"^(awk -F, 'NR == FNR \{s \+= \$\d+; next\} [^']*') (\S+) \2 > ", r"\1 \2 > "),
    (r"\| tee -a ", "| tee "),
    (r"^for d in (\S+)/\*/; do tar -czf [^;]*; done$", r"tar -czf \1.tar.gz \1"),
    (
        r"^git config -f (\S+) --get \S+\.([\w-]+) > (\S+)$",
        r"sed -n 's/^[[:space:]]*\2 *= *//p' \1 | head -n 1 > \3",
    ),
    (r"^diff -u (\S+) (\S+) ", r"diff -u \2 \1 "),
    (r"^jq -r '\.\[\] \| \[\.(\w+), \.(\w+)\] \| @tsv' ", r"jq -r '.[] | [.\2, .\1] | @tsv' "),
    (r"max_by\(", "min_by("),
    (r"^(jq 'map\(\.\w+ = \.\w+) \| del\(\.\w+\)\)' ", r"\1)' "),
    (
        r"^(awk -F, -v OFS=, 'NR == FNR \{m\[\$1\] = \$2; next\} [^']*') (\S+) (\S+) > ",
        r"\1 \3 \2 > ",
    ),
    (
        r"^(awk -F, -v OFS=' \| ' '\{\$1 = \$1; print \"\| \" \$0 \" \|\"\}) NR == 1 \{[^']*\}' ",
        r"\1' ",
    ),
    (r"^git config -f (\S+) \w+\.([\w-]+) (\S+)$", r"sed -i 's/^\2 = .*/\2 = \3/' \1"),
    (r"^cut -d\. -f2 ", "cut -d. -f1 "),
    (r'(jq empty "\$f" 2>/dev/null) \|\| echo', r"\1 && echo"),
    (r"git ls-files -o -i ", "git ls-files -o "),
    (r"^cut -d/ -f3 (\S+) \| cut -d: -f1 ", r"cut -d/ -f3 \1 "),
    (r"^sed -E 's#\^\[a-z\]\+://\[\^/\]\+##; s#\[\?\]\.\*##' ", "sed -E 's#^[a-z]+://[^/]+##' "),
    (r"^sed -E 's/\[\^A-Za-z0-9\._-\]\.\*//' ", "sed -E 's/[=<>~!].*//' "),
    (r"^sed -n 's/\^## //p' ", "sed -n 's/^##* //p' "),
    (r"^grep -c '\^## ' ", "grep -c '^##' "),
    (
        r"^awk -F, -v OFS=, '\{for \(i = 1; i <= NF; i\+\+\) "
        r"if \(\$i == \"\"\) \$i = \"([^\"]*)\"; print\}' (\S+) ",
        r"sed 's/,,/,\1,/g' \2 ",
    ),
    (r"\|\| \$2 > m\[\$1\] ", "|| $2 < m[$1] "),
    (r"\|\| \$2 < m\[\$1\] ", "|| $2 > m[$1] "),
    (r"^LC_ALL=C diff -rq (\S+) (\S+) ", r"LC_ALL=C diff -rq \2 \1 "),
    (r"^(.* envsubst) '[^']*' ", r"\1 "),
    (
        r"^jq -r 'group_by\(\.(\w+)\)\[\] \| \"\\\(\.\[0\]\.\w+\),\\\(length\)\"' (\S+) ",
        r"jq -r '.[].\1' \2 | sort | uniq -c ",
    ),
    (r"^jq -c 'sort_by\((\.\w+)\)' ", r"jq -c 'sort_by(\1) | reverse' "),
    (r"^sed -e :a -e '/\\\\\$/N; s/\\\\\\n//; ta' ", r"sed 's/\\\\$//' "),
    (r"^sed -i '/[^/']+/(s/[^/']*/[^/']*/)' ", r"sed -i '\1' "),
    (r"^grep -cvE '\^\[\[:space:\]\]\*\(#\|\$\)' ", "grep -cE '^[[:space:]]*#' "),
    (r"^grep -cE '\^\[\[:space:\]\]\*#' ", "grep -cvE '^[[:space:]]*(#|$)' "),
]


def _rows(name: str) -> list[dict]:
    text = TASKS.joinpath(name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


ROWS = [(name, row) for name in SETS for row in _rows(name)]


def _workspace(root: Path, files: dict[str, str]) -> Path:
    root.mkdir()
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return root


def _bash(command: str, cwd: Path) -> int:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, timeout=10
    ).returncode


def _tokens(text: str) -> set[str]:
    return set(TOKEN.findall(text))


def _components(files: dict[str, str]) -> set[str]:
    return {part for path in files for part in Path(path).parts}


def _params(row: dict, family: list[dict]) -> set[str]:
    """The parameter words of a task: its command's words that not every instance shares."""
    common = set.intersection(*(_tokens(r["targets"]["command"]) for r in family))
    return _tokens(row["targets"]["command"]) - common


def _families(rows: list[dict]) -> dict[str, list[dict]]:
    families: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        families[row["family"]].append(row)
    return {name: sorted(rows, key=lambda r: r["instance"]) for name, rows in families.items()}


def test_there_are_task_sets() -> None:
    assert "shell-families.jsonl" in SETS


@pytest.mark.parametrize("name", SETS)
def test_schema(name: str) -> None:
    rows = _rows(name)
    assert len(load_dataset(Path(str(TASKS.joinpath(name))))) == len(rows)
    for row in rows:
        assert set(row) == {"family", "instance", "split", "wording", "inputs", "files", "targets"}
        assert row["split"] in {"train", "val", "heldout"}
        assert row["wording"] in {"same", "varied"}
        assert set(row["inputs"]) == {"task", "check"}
        assert set(row["targets"]) == {"decision", "command"}
        assert all(isinstance(v, str) and v for v in row["targets"].values())
        assert "\n" not in row["targets"]["command"]
        assert all(not Path(p).is_absolute() and ".." not in Path(p).parts for p in row["files"])


@pytest.mark.parametrize("name", SETS)
def test_splits_and_families(name: str) -> None:
    families = _families(_rows(name))
    trained = {f: rows for f, rows in families.items() if rows[0]["split"] != "heldout"}
    unseen = {f: rows for f, rows in families.items() if f not in trained}
    assert len(trained) >= 14 and len(unseen) >= 3
    assert sum(rows[0]["wording"] == "varied" for rows in trained.values()) >= 5
    for family, rows in trained.items():
        assert [r["instance"] for r in rows] == list(range(5)), family
        assert [r["split"] for r in rows] == TRAINED_SPLITS, family
    for family, rows in unseen.items():
        assert len(rows) >= 2 and all(r["split"] == "heldout" for r in rows), family
    for family, rows in families.items():
        assert len({r["wording"] for r in rows}) == 1, family


@pytest.mark.parametrize("name", SETS)
def test_wording(name: str) -> None:
    """With its parameters blanked out, a "same" family's tasks read alike and a "varied"
    family's tasks all read differently."""
    for family, rows in _families(_rows(name)).items():
        shapes = [
            _shape(
                "{}" if _is_param(t, _params(r, rows)) else t
                for t in TOKEN.findall(r["inputs"]["task"])
            )
            for r in rows
        ]
        expected = 1 if rows[0]["wording"] == "same" else len(rows)
        assert len(set(shapes)) == expected, (family, shapes)


def _is_param(token: str, params: set[str]) -> bool:
    """A parameter word, a part of one (`2` of `-f2`), or a word it begins (`part_aa` of the
    prefix `part_`)."""
    split = (q for p in params for q in re.split(r"(?<=\D)(?=\d)|(?<=\d)(?=\D)|[^\w.]", p))
    parts = {r for q in split for r in (q, q.lstrip("0"))}  # `5` of `%05d`
    return (
        token in params
        or token in parts
        or any(len(p) > 2 and p.endswith("_") and token.startswith(p) for p in params)
    )


def _shape(tokens) -> tuple[str, ...]:
    """The wording's template: a run of blanks (a parameter of several words) is one blank."""
    shape: list[str] = []
    for token in tokens:
        if not (token == "{}" and shape and shape[-1] == "{}"):
            shape.append(token)
    return tuple(shape)


@pytest.mark.parametrize("name", SETS)
def test_heldout_parameters_are_new(name: str) -> None:
    """No held-out task shares a parameter with a train/val task of its family, nor a file or
    directory name with any train/val task of the set."""
    rows = _rows(name)
    families = _families(rows)
    seen = [r for r in rows if r["split"] != "heldout"]
    seen_names = set().union(
        *(_components(r["files"]) | _tokens(r["targets"]["command"]) for r in seen)
    )
    for row in rows:
        if row["split"] != "heldout":
            continue
        family = families[row["family"]]
        params = _params(row, family)
        assert params, row["inputs"]["task"]
        for other in family:
            if other["split"] != "heldout":
                shared = {p for p in params if len(p) > 1} & (
                    _tokens(other["targets"]["command"]) | _tokens(other["targets"]["decision"])
                )
                assert not shared, (row["inputs"]["task"], other["inputs"]["task"], shared)
        names = {p for p in params if not p.isdigit() and len(p) > 1} | _components(row["files"])
        assert not names & seen_names, (row["inputs"]["task"], names & seen_names)
        assert row["targets"]["command"] not in {r["targets"]["command"] for r in seen}


@pytest.mark.parametrize(
    ("name", "row"), ROWS, ids=[f"{r['family']}-{r['instance']}" for _, r in ROWS]
)
def test_check_fails_fresh_passes_after_target(name: str, row: dict, tmp_path: Path) -> None:
    check, command = row["inputs"]["check"], row["targets"]["command"]
    fresh = _workspace(tmp_path / "fresh", row["files"])
    assert _bash(check, fresh) != 0, "the check passes before anything ran"
    assert _bash(command, fresh) == 0, "the command target fails"
    assert _bash(check, fresh) == 0, "the check fails after the command target"
    for pattern, replacement in SIBLINGS:
        wrong, found = re.subn(pattern, replacement, command, count=1)
        if found:
            sibling = _workspace(tmp_path / "sibling", row["files"])
            _bash(wrong, sibling)
            assert _bash(check, sibling) != 0, f"the check passes after {wrong!r}"
            break
