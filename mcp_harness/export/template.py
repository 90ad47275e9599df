"""The export's text templates (`templates/`), filled by plain substitution.

`@NAME@` in a template is replaced by its value; a line that holds only `#: @NAME@` (a bash
comment, so `templates/run.sh` stays valid bash for `bash -n`) is replaced, newline included,
by the value, which brings its own lines. Substitution is one pass: values are never rescanned.
"""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates"
_PLACEHOLDER = re.compile(r"^ *#: @([A-Z_]+)@\n|@([A-Z_]+)@", re.MULTILINE)


def fill_template(template: str, **values: str) -> str:
    """`templates/<template>` with every placeholder replaced (KeyError for one not given)."""
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1) or m.group(2)], text)
