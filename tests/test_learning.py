"""Learning that transfers: parameterized rows, adaptation, retries that explore, a loss the
gate can use, and training that cannot pollute (real coder module, real tmux)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcp_harness.experience.keywords import keywords_text
from mcp_harness.experience.slots import adapt, find_slots, operation, siblings
from mcp_harness.experience.store import Experience, Row
from mcp_harness.kernels.base import Example as Shown
from mcp_harness.kernels.base import KernelRequest
from mcp_harness.kernels.config import make_kernel
from mcp_harness.kernels.offline import DEFAULT_THRESHOLD, OfflineKernel
from mcp_harness.runtime import module as modules
from mcp_harness.training.losses import task_outcome
from mcp_harness.training.trainer import Example, Trainer
from tests.test_kernels_meaning import example


# ---- slots and adaptation -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "new_input", "adapted"),
    [
        ("Make run.sh executable", "chmod +x run.sh", "Make deploy.sh executable",
         "chmod +x deploy.sh"),
        ("Count the lines in notes.txt into count.txt", "wc -l < notes.txt > count.txt",
         "Count the lines in todo.md into total.txt", "wc -l < todo.md > total.txt"),
        ("Create a directory called build", "mkdir -p build", "Create a directory called logs",
         "mkdir -p logs"),
        ("Show the last 50 lines of app.log", "tail -n 50 app.log",
         "Show the last 7 lines of db.log", "tail -n 7 db.log"),
        ("Write 'hello world' into greeting.txt", "echo 'hello world' > greeting.txt",
         'Write "good bye" into farewell.txt', "echo 'good bye' > farewell.txt"),
        ("Use xz to compress the data.csv file", "xz -k data.csv", "Compress report.txt with xz",
         "xz -k report.txt"),
        ("Replace foo with bar in config.ini", "sed -i 's/foo/bar/g' config.ini",
         "Replace red with blue in colors.txt", "sed -i 's/red/blue/g' colors.txt"),
        ("Extract column 2 of scores.csv into second.txt", "cut -d, -f2 scores.csv > second.txt",
         "Extract column 4 of grades.csv into fourth.txt", "cut -d, -f4 grades.csv > fourth.txt"),
        ("Print lines 2-5 of a.txt", "sed -n '2,5p' a.txt", "Print lines 7-19 of b.txt",
         "sed -n '7,19p' b.txt"),
        ("Set the time of a.md to 2019-03-14 09:30", "touch -d '2019-03-14 09:30' a.md",
         "Set the time of b.md to 2018-07-26 13:55", "touch -d '2018-07-26 13:55' b.md"),
        ("Pad the numbers in a.txt to 3 digits into b.txt",
         "awk '{printf \"%03d\\n\", $1}' a.txt > b.txt",
         "Pad the numbers in c.txt to 6 digits into d.txt",
         "awk '{printf \"%06d\\n\", $1}' c.txt > d.txt"),
        ("Write the maximum of column 2 of a.csv to m.txt",
         "cut -d, -f2 a.csv | sort -n | tail -n 1 > m.txt",
         "Write the maximum of the 4th column of b.csv to n.txt",
         "cut -d, -f4 b.csv | sort -n | tail -n 1 > n.txt"),
        ("Count how many times each line occurs in a.txt and write the counts (ordered by "
         "the line) to counts.txt",
         "sort a.txt | uniq -c > counts.txt",
         "occurrences per line of browsers.txt -> browser_hist.txt",
         "sort browsers.txt | uniq -c > browser_hist.txt"),
        ("Create release.tar.gz containing exactly the files named in manifest.txt",
         "tar -czf release.tar.gz -T manifest.txt",
         "Package only the paths that files.lst names into bundle.tgz, gzip-compressed",
         "tar -czf bundle.tgz -T files.lst"),
        ("Remove the third column from users.csv into slim.csv",
         "cut -d, -f3 --complement users.csv > slim.csv",
         "Remove the first column from ledger.csv into rest.csv",
         "cut -d, -f1 --complement ledger.csv > rest.csv"),
        # A word's place takes a number; a long extension is a file's; a dot the sentence
        # goes on after belongs to the word.
        ("Write the lines of a.txt that are exactly ok to b.txt", "grep -x 'ok' a.txt > b.txt",
         "Write the lines of c.txt that are exactly 80 to d.txt", "grep -x '80' c.txt > d.txt"),
        ("Print the setting port in app.conf", "sed -n 's/^port=//p' app.conf",
         "Print the setting font in theme.properties", "sed -n 's/^font=//p' theme.properties"),
        ("Add web- to the start of every line of a.txt", "sed 's/^/web-/' a.txt",
         "Add tmp. to the start of every line of b.txt", "sed 's/^/tmp./' b.txt"),
        # A path's place takes a number too, and a separator of spaces is one.
        ("Print field 1 of the lines of a.txt whose field 7 is /bin/bash (separator ':')",
         "awk -F: '$7 == \"/bin/bash\" {print $1}' a.txt",
         "Print field 2 of the lines of b.txt whose field 3 is 401 (separator ' ')",
         "awk -F' ' '$3 == \"401\" {print $2}' b.txt"),
    ],
)  # fmt: skip
def test_slots_are_filled_from_the_aligned_spans(key, value, new_input, adapted) -> None:
    slots = find_slots(key, value)
    assert slots, "key and value share a parameter"
    result = adapt(key, value, slots, new_input)
    assert result.text == adapted and result.unfilled == []


def test_one_number_of_a_date_does_not_fill_a_lone_number() -> None:
    """A Unix timestamp is one number; the year of a date is one part of another parameter."""
    key = "Write the UTC date of Unix timestamp 1700000000 to day.txt"
    value = "date -u -d @1700000000 +%F > day.txt"
    new = "Write the Unix timestamp of UTC midnight on 2024-01-01 to epoch.txt"
    adapted = _adapted(key, value, new)
    assert adapted.unfilled == ["1700000000"] and adapted.fit < 0.2
    same = adapt(
        key, value, find_slots(key, value), "Write the UTC date of Unix timestamp 5 to a.txt"
    )
    assert same.text == "date -u -d @5 +%F > a.txt"


def test_the_command_a_value_runs_is_not_a_slot() -> None:
    assert find_slots("Initialize a git repository", "git init -q") == []
    assert find_slots("Compress data.csv with xz", "xz -k data.csv") == [
        {"text": "data.csv", "kind": "file"}
    ]


def test_a_slot_spelled_apart_from_a_word_of_the_key_is_that_spelling() -> None:
    """ "the version in VERSION": the file is VERSION, not the word before it."""
    key = "Bump the patch number of the version in VERSION"
    value = "awk -F. -v OFS=. '{$3++; print}' VERSION > VERSION.tmp && mv VERSION.tmp VERSION"
    slots = find_slots(key, value)
    assert slots == [{"text": "VERSION", "kind": "word"}]
    adapted = adapt(key, value, slots, "Bump the patch number of the version in release.txt")
    assert adapted.text == value.replace("VERSION", "release.txt")
    reordered = adapt(key, value, slots, "In app_version, bump the patch number of the version")
    assert reordered.fills.get("VERSION") != "version"  # that "version" is the key's word


def test_a_name_spelled_apart_is_placed_by_its_own_neighbours() -> None:
    """ "VERSION" in "the version in VERSION" is the word after "in", not whatever follows
    "the" as "version" does."""
    key = "Bump the patch number of the version in VERSION"
    value = "Add one to the third dot-separated field of VERSION, written back over VERSION"
    new = "Bump the minor number of the version in chart_version, resetting the patch number to 0"
    adapted = adapt(key, value, [{"text": "VERSION", "kind": "name"}], new)
    assert adapted.fills == {"VERSION": "chart_version"}


def test_the_numbers_of_a_flag_are_parameters() -> None:
    """ "-k1,1" in the key is "-k6,6" in the input: the command's keys follow."""
    key = "Sort a.csv with sort -t, on key -k1,1 first and then on key -k3,3nr, into b.csv"
    value = "sort -t, -k1,1 -k3,3nr a.csv > b.csv"
    new = "Sort c.csv with sort -t, on key -k6,6 first and then on key -k5,5nr, into d.csv"
    assert _adapted(key, value, new).text == ("sort -t, -k6,6 -k5,5nr c.csv > d.csv")


def test_a_fill_in_a_sed_substitution_is_escaped_for_its_place() -> None:
    """ "'/' with '&'" means those characters: in the replacement `&` is the match and `/`
    the delimiter; a plain pattern's fill is plain text too, a regex pattern's stays a regex."""
    key = "On each line of a.csv, replace occurrence number 2 of ',' with ';' into b.csv"
    value = "sed 's/,/;/2' a.csv > b.csv"
    new = "On each line of c.txt, replace occurrence number 2 of '.' with '&/' into d.txt"
    assert _adapted(key, value, new).text == (r"sed 's/\./\&\//2' c.txt > d.txt")
    key, value = "Delete the lines of a.txt matching '^#'", "sed -i '/x/d; s/^#//' a.txt"
    new = "Delete the lines of b.txt matching '^;'"
    assert _adapted(key, value, new).text == "sed -i '/x/d; s/^;//' b.txt"


def test_a_short_flags_argument_is_a_slot_quoted_as_the_shell_needs() -> None:
    """ "-F:" takes its separator from the input, quoted when the shell would read it."""
    key = "Split a.txt on ':' with awk -F and print $1 of the lines where $7 == \"bash\", to b.txt"
    value = "awk -F: '$7 == \"bash\" {print $1}' a.txt > b.txt"
    new = "Split c.psv on '|' with awk -F and print $3 of the lines where $2 == \"Lyon\", to d.txt"
    assert _adapted(key, value, new).text == ("awk -F'|' '$2 == \"Lyon\" {print $3}' c.psv > d.txt")


def test_names_built_on_a_stem_and_counted_nouns_are_parameters() -> None:
    """ "named guestpart_aa, guestpart_ab" says the prefix guestpart_, and "2-line" the
    number 2: both follow the input."""
    key = "Split guests.txt into pieces of 2 lines each, named guestpart_aa, guestpart_ab"
    value = "Split guests.txt into 2-line pieces with prefix guestpart_"
    new = "Split chorus.txt into pieces of 5 lines each, named verse_aa, verse_ab"
    assert _adapted(key, value, new).text == (
        "Split chorus.txt into 5-line pieces with prefix verse_"
    )
    key, value = value, "split -l 2 guests.txt guestpart_"
    new = "Split chorus.txt into 5-line pieces with prefix verse_"
    assert _adapted(key, value, new).text == "split -l 5 chorus.txt verse_"


def test_the_one_slot_left_takes_the_one_parameter_left() -> None:
    """A reworded request moves its parameters where no alignment finds them: the one slot
    left takes the one span left that reads as a parameter, and only then."""
    key, value = "Create an empty file called .env", "touch .env"
    new = "I need an empty file LICENSE in this folder"
    assert _adapted(key, value, new).text == "touch LICENSE"
    key = "Save the first line of server.log that contains ERROR to first_error.txt"
    value = "grep -m 1 ERROR server.log > first_error.txt"
    new = "The first matching line only: search audit.log for DENIED, store it in denied.txt"
    assert _adapted(key, value, new).text == ("grep -m 1 DENIED audit.log > denied.txt")
    new = "The first matching line only: search audit.log for DENIED or WARN, into denied.txt"
    assert _adapted(key, value, new).unfilled[0] == "ERROR"


def test_a_stem_that_starts_several_names_is_not_their_source() -> None:
    """config.patch is named like config_old.yaml and config_new.yaml, not made from one."""
    key = "Create a unified diff from config_old.yaml to config_new.yaml, save it as config.patch"
    value = "diff -u config_old.yaml config_new.yaml > config.patch"
    new = "compare draft.md (before) with final.md (after), save the unified diff as edits.diff"
    assert _adapted(key, value, new).text == ("diff -u draft.md final.md > edits.diff")


def test_the_sentence_says_which_file_is_read_and_which_written() -> None:
    """ "into openapi.json" says the result, whatever the names' stems; "Rename a to b" keeps
    its order (names alone never move what the alignment placed)."""
    key = "Pretty-print response.json with 4-space indentation and save it as response_pretty.json"
    value = "Pretty-print response.json with 4-space indent into response_pretty.json"
    new = "Format the JSON in openapi_raw.json nicely (indent 4) into openapi.json"
    assert _adapted(key, value, new).text == (
        "Pretty-print openapi_raw.json with 4-space indent into openapi.json"
    )
    key, value = "Rename notes.txt to notes_old.txt", "mv notes.txt notes_old.txt"
    new = "Rename report-v2.txt to report.txt"
    assert _adapted(key, value, new).text == "mv report-v2.txt report.txt"
    # One verb of writing, one destination: the last file it reaches ("in scores.json" is
    # where the player is found, "to top_player.txt" where it goes).
    key = "Write the player with the highest score in scores.json to top_player.txt"
    value = "jq -r 'max_by(.score) | .player' scores.json > top_player.txt"
    new = "Which entry in hills.json has the highest score? Its name should go into best.txt"
    assert _adapted(key, value, new).text.endswith("hills.json > best.txt")


def test_a_parameter_the_row_has_no_place_for_lowers_its_fit() -> None:
    """ "then set the build number to 0" asks for more than a row that only bumps the patch."""
    key = "Bump the patch number of the version in version.txt"
    value = "Add one to the third dot-separated field of version.txt and write it back"
    plain = _adapted(key, value, key.replace("version.txt", "chart.txt"))
    new = "Bump the patch number of the version in chart.txt, then set the build number to 0"
    more = _adapted(key, value, new)
    assert more.fit < DEFAULT_THRESHOLD < plain.fit


def test_a_parameter_the_row_has_no_place_for_stops_meaning_too() -> None:
    """A reworded input giving a parameter the row would ignore ("... to 0") may not be
    answered by that row through meaning; a string the value holds (':') or a standard's
    number ("ISO 8601") is no such parameter."""
    key = "Bump the patch number of the version in version.txt"
    value = "Add one to the third dot-separated field of version.txt with awk and write it back"
    slots = find_slots(key, value)
    plain = adapt(key, value, slots, "Increment the last part of the version kept in chart.txt")
    more = "Increment the minor part of the version kept in chart.txt, resetting the patch to 0"
    assert adapt(key, value, slots, more).rescue < 0.5 <= plain.rescue
    key, value = (
        "Prefix each line of a.txt with its file name",
        "awk '{print FILENAME \":\" $0}' a.txt",
    )
    new = "Put the lines of b.txt, each one preceded by its file name and ':', on screen"
    assert _adapted(key, value, new).rescue == 1.0
    key = "Write the date 30 days after 2024-01-10 to due.txt"
    value = "date -u -d '2024-01-10 +30 days' +%F > due.txt"
    new = "Write the date 90 days after 2024-11-05 to exp.txt in {} form"
    iso, bare = (_adapted(key, value, new.format(f)) for f in ("ISO 8601", "8601"))
    assert iso.fit > DEFAULT_THRESHOLD > bare.fit


def test_a_field_the_value_reads_is_a_parameter_the_input_must_give() -> None:
    """`sort_by(.age)` reads the field "age": a request naming another field fills it, and
    one naming none is told the row's field has no counterpart (no silent `.age`)."""
    key = "Sort the array in people.json by the age field into people_sorted.json"
    value = "jq -c 'sort_by(.age)' people.json > people_sorted.json"
    slots = find_slots(key, value)
    new = "Sort the array in jobs.json by the weight field into jobs_sorted.json"
    assert (
        adapt(key, value, slots, new).text
        == "jq -c 'sort_by(.weight)' jobs.json > jobs_sorted.json"
    )
    assert adapt(
        key, value, slots, "Sort the array in jobs.json into jobs_sorted.json"
    ).unfilled == ["age"]
    key, value = "Add up the qty of cart.json", "python3 -c \"print(sum(i['qty'] for i in x))\""
    assert _adapted(key, value, "Add up cart.json").unfilled == ["qty"]


def test_a_version_number_is_a_number_not_a_file() -> None:
    """ "1.5.0" takes a number, never the input's file name in its place."""
    key = "Load a.json with json, set its version key to the string 1.5.0, write it back to a.json"
    value = "python3 -c \"import json; d = json.load(open('a.json')); d['version'] = '1.5.0'\""
    new = "Load t.json with json, set its accent key to the string teal, write it back to t.json"
    result = _adapted(key, value, new)
    assert "'1.5.0'" in result.text and result.unfilled == ["1.5.0"]
    new = "Load b.json with json, set its version key to the string 2.10.3, write it back to b.json"
    assert "'2.10.3'" in _adapted(key, value, new).text


def test_a_parameter_without_counterpart_is_reported() -> None:
    key, value = "Make run.sh executable", "chmod +x run.sh"
    result = _adapted(key, value, "Make it executable")
    assert result.text == value and result.unfilled == ["run.sh"]


@pytest.mark.parametrize(
    ("key", "value", "other", "same"),
    [
        ("Convert the contents of a.txt to uppercase into b.txt",
         "tr a-z A-Z < a.txt > b.txt",
         "Convert the contents of c.txt to lowercase into d.txt",
         "Convert the contents of c.txt to uppercase into d.txt"),
        ("Write the files under src that contain TODO to t.txt", "grep -rl TODO src > t.txt",
         "Write the files under lib that do not contain FIXME to f.txt",
         "Write the files under lib that contain FIXME to f.txt"),
        ("Make the run.sh script executable", "chmod +x run.sh",
         "Make the go.sh script non-executable", "Make the go.sh script executable"),
        ("Create a directory called build", "mkdir -p build",
         "Delete the directory called dist", "Create a directory called dist"),
        ("Count the lines of a.txt into n.txt", "wc -l < a.txt > n.txt",
         "Count the words of b.txt into m.txt", "Count the lines of b.txt into m.txt"),
        ("Convert run.cmd from CRLF to LF line endings", "sed -i 's/\\r$//' run.cmd",
         "Convert go.cmd from LF to CRLF line endings",
         "Convert go.cmd from CRLF to LF line endings"),
        ("Sort a.csv by column 2, smallest first, into b.csv", "sort -t, -n -k2,2 a.csv > b.csv",
         "Sort c.csv by column 3, largest first, into d.csv",
         "Sort c.csv by column 3, smallest first, into d.csv"),
        ("Write the basename of each path in p.txt to n.txt", "xargs basename -a < p.txt > n.txt",
         "Write the dirname of each path in q.txt to m.txt",
         "Write the basename of each path in q.txt to m.txt"),
        ("Convert the comma-separated file a.csv to tab-separated and save it as a.tsv",
         "tr ',' '\\t' < a.csv > a.tsv",
         "Convert the tab-separated file b.tsv to comma-separated and save it as b.csv",
         "Convert the comma-separated file c.csv to tab-separated and save it as c.tsv"),
        ("Write each line that appears more than once in a.txt to b.txt", "uniq -d a.txt > b.txt",
         "Write each line that appears exactly once in c.txt to d.txt",
         "Write each line that appears more than once in c.txt to d.txt"),
        ("List the files changed before the tag v1 into a.txt", "git diff --name-only v1 > a.txt",
         "List the files changed after the tag v2 into b.txt",
         "List the files changed before the tag v2 into b.txt"),
        ("Convert the KEY=value lines of a.env into a JSON object in a.json",
         "python3 env2json.py a.env > a.json",
         "Convert the JSON object in b.json into KEY=value lines in b.env",
         "Convert the KEY=value lines of c.env into a JSON object in c.json"),
        ("Reorder each DD/MM/YYYY date of a.txt into year-month-day with a sed -E "
         "substitution (\\3-\\2-\\1), writing the result to b.txt",
         "sed -E 's#(..)/(..)/(....)#\\3-\\2-\\1#g' a.txt > b.txt",
         "Reorder each MM/DD/YYYY date of c.txt into year-month-day with a sed -E "
         "substitution (\\3-\\2-\\1), writing the result to d.txt",
         "Reorder each DD/MM/YYYY date of e.txt into year-month-day with a sed -E "
         "substitution (\\3-\\2-\\1), writing the result to f.txt"),
    ],
)  # fmt: skip
def test_another_operation_in_the_same_words_does_not_fit(key, value, other, same) -> None:
    """An opposite, a negation or another word in the operation's place: not confident; the
    same operation with other parameters: confident."""
    slots = find_slots(key, value)
    assert adapt(key, value, slots, other).fit < DEFAULT_THRESHOLD
    assert adapt(key, value, slots, same).fit >= DEFAULT_THRESHOLD


def test_a_near_miss_leaves_no_row_to_guess_from() -> None:
    """ "The last line of x that contains y" is the first-line row's sentence saying another
    thing: no row was taught it, so the row that shares some words ("lines ... mention ...
    save") may not answer, though it would without the near miss, until the near miss's own
    answer was tried and failed; the near miss's operation still answers an input it fits."""
    first = (
        "Save the first line of server.log that contains ERROR to first_error.txt",
        "Write the first line of server.log matching ERROR to first_error.txt",
    )
    word, sibling = (
        (f"Which lines in {a} mention {w} as a separate word? Save them in {b}",
         f"Write the lines of {a} containing the whole word {w} to {b}")
        for a, w, b in (("inventory.csv", "bolt", "bolt_rows.csv"),
                        ("parts.txt", "nut", "nut_rows.txt"))
    )  # fmt: skip
    slots = siblings([(v, find_slots(k, v)) for k, v in (word, sibling)])[0]
    new = "Save the last line of cron.log that contains ABORTED to last_abort.txt"
    kernel = OfflineKernel()
    near, other = example(*first, new, 1), example(*word, new, 2, slots)
    assert near.near_miss and not other.near_miss
    alone = kernel.answer(KernelRequest("t", new, (other,)))
    assert alone.ok and alone.text == (
        "Write the lines of cron.log containing the whole word ABORTED to last_abort.txt"
    )
    reply = kernel.answer(KernelRequest("t", new, (near, other)))
    assert not reply.ok and "row 1's sentence saying another thing (a near miss)" in reply.reason
    retried = kernel.answer(KernelRequest("t", new, (near, other), tried=(near.answer,)))
    assert retried.ok and retried.text == alone.text  # its answer failed: explore the rest
    same = "Save the first line of app.log that contains WARN to warn.txt"
    assert kernel.answer(KernelRequest("t", same, (example(*first, same, 1),))).ok


@pytest.mark.parametrize(
    ("key", "value", "reworded"),
    [
        ("Write the SHA-256 checksum of a.bin into a.sum", "sha256sum a.bin > a.sum",
         "Save the sha256 digest of b.jar; put it in b.jar.sha256"),
        ("Reverse the order of the lines in h.log and save it as r.log", "tac h.log > r.log",
         "Create back.lst containing the lines of fwd.lst in the opposite order"),
        ("Base64-encode s.txt into s.b64", "base64 s.txt > s.b64",
         "Encode k.pem as base64 and write it to k.pem.b64"),
        ("Count the lines in a.txt and write the number to b.txt", "wc -l < a.txt > b.txt",
         "Put the number of lines of c.txt in d.txt"),  # built another way, not turned around
    ],
)  # fmt: skip
def test_inflections_synonyms_and_compounds_meet(key, value, reworded) -> None:
    """Other inflections (`converted`), synonyms (`digest` for `hash`), `sha-256` for `sha256`
    and the parts of `base64-encode` count as the key's words."""
    assert _adapted(key, value, reworded).fit >= DEFAULT_THRESHOLD


def test_a_tool_name_the_key_does_not_say_lowers_the_fit() -> None:
    key, value = "Convert the contents of t.txt to uppercase and save it as h.txt", "tr a-z A-Z"
    plain = "Convert the contents of u.txt and save it as v.txt"
    named = "Convert the contents of u.txt to base64 and save it as v.txt"
    slots = find_slots(key, value)
    assert adapt(key, value, slots, named).fit < adapt(key, value, slots, plain).fit / 1.9


def test_retrieval_keys_on_the_operation_not_the_parameters(tmp_path: Path) -> None:
    experience = Experience.create(tmp_path / "e")
    experience.append(
        [
            Row(keywords_text(k), k, v)
            for k, v in [
                ("Make run.sh executable", "chmod +x run.sh"),
                ("Show the deploy.sh script", "cat deploy.sh"),
            ]
        ]
    )
    experience = Experience.open(tmp_path / "e")  # the slots come back from the sidecar
    assert experience.row(0).provenance["slots"] == [{"text": "run.sh", "kind": "file"}]
    hits = experience.search("Make deploy.sh executable", k=2)
    assert hits[0].row.value == "chmod +x run.sh"  # not the row that shares the file name


def test_sibling_rows_tell_a_name_from_a_word_of_the_operation() -> None:
    """Two rows whose values differ only at a slot: the word they fill differently is a name
    the input must give; the word both say is part of the operation and is never replaced."""
    rows = [
        ("Make a new folder named logs", "Create directory logs"),
        ("Create a directory called build", "Create directory build"),
        ("Remove the trailing whitespace from a.py", "Strip trailing whitespace from a.py"),
        ("strip the trailing blanks in b.html", "Strip trailing whitespace from b.html"),
    ]
    found = siblings([(v, find_slots(k, v)) for k, v in rows])
    assert {"text": "logs", "kind": "name"} in found[0]
    assert "trailing" not in {s["text"] for s in found[2]}
    assert "trailing" in {s["text"] for s in find_slots(*rows[2])}  # alone, it looks like one
    key, value = rows[2]
    reworded = "Makefile.am: kill the whitespace at line ends"
    assert (
        adapt(key, value, found[2], reworded).text == "Strip trailing whitespace from Makefile.am"
    )
    assert "kill" in _adapted(key, value, reworded).text


def test_a_name_is_placed_by_the_words_around_it_or_not_at_all() -> None:
    key, value = (
        "Make all the .sh files under scripts executable",
        "Make every .sh file under scripts executable",
    )
    slots = [{"text": "scripts", "kind": "name"}, {"text": ".sh", "kind": "file"}]
    placed = adapt(key, value, slots, "every *.run under installers (any depth) -> executable")
    assert placed.text == "Make every .run file under installers executable"
    unplaced = adapt(
        key, value, slots, "Please add execute permission to each .rb file found in tasks"
    )
    assert unplaced.unfilled == ["scripts"]  # no guess: any word could say where
    leftover = adapt(
        key, value, slots, "Please add execute permission to each .rb file found in rake_tasks"
    )
    assert leftover.text == "Make every .rb file under rake_tasks executable"  # the one name


def test_file_slots_follow_extension_and_derivation_not_order() -> None:
    key = "Pretty-print response.json with 4-space indentation and save it as response_pretty.json"
    value = "python3 -m json.tool response.json > response_pretty.json"
    new = "make event_readable.json: the same data as event.json but pretty printed"
    assert _adapted(key, value, new).text.endswith("event.json > event_readable.json")
    key, value = (
        "Join the lines of tags.txt into one line in tags.csv",
        "paste -sd, tags.txt > tags.csv",
    )
    new = "header_row.csv <- column_names.txt lines joined"
    assert _adapted(key, value, new).text == "paste -sd, column_names.txt > header_row.csv"


def test_slots_with_equal_evidence_pair_in_order() -> None:
    key = "Concatenate intro.md body.md outro.md into article.md"
    value = "cat intro.md body.md outro.md > article.md"
    new = "Concatenate cover.txt contents.txt epilogue.txt into booklet.txt"
    assert _adapted(key, value, new).text == "cat cover.txt contents.txt epilogue.txt > booklet.txt"
    key, value = "Write the integers from 1 to 20, one per line, into ids.txt", "seq 1 20 > ids.txt"
    new = "fill ports.txt with the port numbers 8080 through 8090 inclusive, one per line"
    assert _adapted(key, value, new).text == "seq 8080 8090 > ports.txt"
    # "up to 100" ~ "up to 275": a shared stop word before a number says which it is.
    key = "need a file steps.lst listing 10, 20, 30 and so on up to 100, each on its own line"
    value = "seq 10 10 100 > steps.lst"
    new = "Could you list the multiples of 25 from 25 up to 275 in quarters.txt?"
    assert _adapted(key, value, new).text == "seq 25 25 275 > quarters.txt"


def test_a_file_after_into_is_where_a_derived_name_goes() -> None:
    key, value = "Base64-encode secret.txt into secret.b64", "base64 secret.txt > secret.b64"
    new = "Produce cert.der.base64 holding the base64 encoding of cert.der"
    assert _adapted(key, value, new).text == "base64 cert.der > cert.der.base64"


def test_words_trading_places_around_others_turn_the_operation_around() -> None:
    key = (
        "uploads.txt has one file path per line; write only the final file name of each path "
        "(strip the directories) to names.txt"
    )
    value = "xargs basename -a < uploads.txt > names.txt"
    new = (
        "mounts.txt has one file path per line; write only the directory part of each path "
        "(strip the final file name) to dirs.txt"
    )
    turned = _adapted(key, value, new)
    assert turned.fit < DEFAULT_THRESHOLD and turned.contradicted
    # A clause moved to the front is the same request in other words.
    key, value = "Delete every file listed in stale.txt", "xargs rm -f < stale.txt"
    moved = _adapted(key, value, "Using the list in old.txt, delete each file")
    assert not moved.contradicted


def test_a_negation_counts_for_the_word_it_negates() -> None:
    key = "Write the lines of pets.txt that contain the word cat (a whole word, not part of one)"
    value = "grep -w cat pets.txt"
    slots = find_slots(key, value)
    negated = "Write the lines of recipes.txt that do not contain the word sugar"
    assert adapt(key, value, slots, negated).fit < DEFAULT_THRESHOLD
    same = (
        "Write the lines of recipes.txt that contain the word sugar (a whole word, not part of one)"
    )
    assert adapt(key, value, slots, same).fit >= DEFAULT_THRESHOLD


def test_a_negation_of_what_the_key_does_not_say_adds_a_detail() -> None:
    """ "(local config, not global)" says nothing the key says the other way; "do not
    contain" for "contain" does."""
    key = "Create a git repository in the ledger folder and set its user.name to Grace Hopper"
    value = "git init ledger && git -C ledger config user.name 'Grace Hopper'"
    new = "Make blogsite a repository whose git user.name is Linus Torvalds (local, not global)"
    assert not _adapted(key, value, new).contradicted
    key, value = "Write the lines of a.txt that contain ERROR to b.txt", "grep ERROR a.txt > b.txt"
    new = "Write the lines of c.txt that do not contain WARN to d.txt"
    assert _adapted(key, value, new).contradicted


def test_a_removal_verb_is_the_opposite_of_append() -> None:
    key = "secret.txt must not end with a newline character, so strip the last one"
    value = "truncate -s -1 secret.txt"
    new = "ledger.txt has no line break after its last line; append one"
    assert _adapted(key, value, new).contradicted


def test_a_word_said_in_another_form_keeps_the_value_spelling() -> None:
    """ "blank line" for "empty lines" is the operation's word, not a parameter: the value keeps
    "lines"."""
    key = "Delete all empty lines from config.ini"
    value = "Remove blank lines from config.ini in place"
    new = "Remove every blank line in queries.sql, modifying the file directly"
    adapted = _adapted(key, value, new)
    assert adapted.text == "Remove blank lines from queries.sql in place"


def test_everything_except_a_thing_negates_it() -> None:
    key = "Remove all digits from labels.txt and write the result to labels_clean.txt"
    value = "tr -d '[:digit:]' < labels.txt > labels_clean.txt"
    new = "Remove everything except the digits from refs.txt and write the result to nums.txt"
    assert _adapted(key, value, new).fit < DEFAULT_THRESHOLD


def test_other_words_in_the_same_frame_are_another_operation() -> None:
    key = "Sort the version numbers in releases.txt in version order and write them to out.txt"
    value = "sort -V releases.txt > out.txt"
    other = adapt(
        key,
        value,
        find_slots(key, value),
        "Sort the sizes in du.txt in human-readable size order and write them to s.txt",
    )
    assert other.fit < DEFAULT_THRESHOLD and other.rescue == 0  # meaning may not overrule it


def test_meaning_compares_operations() -> None:
    assert operation("Make run.sh executable, lines 2-5 of 'a b' in src/x") == (
        "Make file executable, lines number-number of text in folder"
    )


# ---- the offline kernel ---------------------------------------------------------------------
def test_offline_never_repeats_a_failed_answer_and_takes_the_next() -> None:
    kernel = OfflineKernel()
    examples = (
        Shown("make a marker", "touch a", 0.9, 0, adapted="touch a"),
        Shown("make a marker", "touch a", 0.8, 1, adapted="touch a"),
        Shown("make a marker file", "touch b", 0.7, 2, adapted="touch b"),
    )
    first = kernel.answer(KernelRequest("t", "make a marker", examples))
    assert (first.text, first.row) == ("touch a", 0)
    second = kernel.answer(KernelRequest("t", "make a marker", examples, tried=("touch a",)))
    assert (second.text, second.row) == ("touch b", 2)
    third = kernel.answer(KernelRequest("t", "x", examples, tried=("touch a", "touch b")))
    assert not third.ok and "already tried" in third.reason


def test_an_unfilled_parameter_lowers_confidence_below_the_threshold() -> None:
    kernel = OfflineKernel()
    shown = Shown("Make run.sh executable", "chmod +x run.sh", 0.3, 0, unfilled=("run.sh",))
    reply = kernel.answer(KernelRequest("t", "Make it executable", (shown,)))
    assert not reply.ok and "no counterpart for run.sh" in reply.reason


def test_the_loss_grades_outcomes() -> None:
    from mcp_harness.runtime.future import Element
    from mcp_harness.runtime.status import Status

    failed = Status.failed(0.5)
    assert task_outcome(Element("", Status.confidence(1.0), {"validated": True})) == 0
    ran_ok = task_outcome(Element("", failed, {"validated": False, "exit_code": 0}))
    ran_bad = task_outcome(Element("", failed, {"validated": False, "exit_code": 2}))
    nothing = task_outcome(Element("", failed, {"validated": False}))
    assert 0 < ran_ok < ran_bad < nothing == 1


# ---- the real coder --------------------------------------------------------------------------
def _adapted(key: str, value: str, new: str):
    """The row (key, value), its slots found as at its creation, adapted to `new`."""
    return adapt(key, value, find_slots(key, value), new)


def _coder(root: Path, rows: dict[str, list[tuple[str, str]]] | None = None) -> Trainer:
    """A fresh copy of the built-in coder (seed experience), optionally with extra rows."""
    directory = modules.new("c", template="coder", target=root / "module")
    module = modules.load(str(directory))
    for name, pairs in (rows or {}).items():
        module.experience[name].append([Row(keywords_text(k), k, v) for k, v in pairs])
    return Trainer(
        module, make_kernel("offline"), root / "work", dims={"steps": 3}, log=root / "s.jsonl"
    )


def _commands(report, index: int) -> list[str]:
    graph, run = report.graph, report.run
    steps = report.elements[index].meta.get("iterations", 0)
    found = [run.element(graph.nodes["command"], (index, s)) for s in range(steps)]
    return [c.text for c in found if c is not None and c.status.ok]


def test_retries_explore_the_next_candidate(tmp_path: Path, runtime: Path) -> None:
    task = "Leave a marker named done.flag"
    trainer = _coder(
        tmp_path,
        {
            "decision": [(task, "Leave the done.flag marker")],
            "command": [
                ("Leave the done.flag marker", "false"),
                ("Leave the done.flag marker", "touch done.flag"),
            ],
        },
    )
    example = Example({"task": task, "check": "test -f done.flag"})
    report = asyncio.run(trainer.forward([example]))
    assert report.elements[0].status.ok
    assert _commands(report, 0) == ["false", "touch done.flag"]


def test_training_on_a_wrong_decision_does_not_pollute_the_seed(
    tmp_path: Path, runtime: Path
) -> None:
    """The upstream decision for the training task is wrong (a bad decision row answers it
    with a seed task, "Which process is listening on port 8080"); the new command must be keyed
    by the decision target, not by that wrong decision, so the seed task still runs its own
    command afterwards, and the seed's command row is not blamed for a wrong input."""
    task = "Set PORT to 8080 in the .env file"
    trainer = _coder(tmp_path, {"decision": [(task, "Which process is listening on port 8080")]})
    seed = Example({"task": "Which process is listening on port 8080", "check": "true"})
    files = {".env": "PORT=3000\n"}
    train = Example(
        {"task": task, "check": "grep -qx PORT=8080 .env"},
        {"decision": ["Set PORT=8080 in .env"], "command": ["sed -i 's/^PORT=.*/PORT=8080/' .env"]},
        files,
    )
    val = [
        Example(
            {"task": "Set PORT to 9090 in the .env file", "check": "grep -qx PORT=9090 .env"},
            files=files,
        )
    ]
    before = asyncio.run(trainer.forward([seed, train]))
    assert _commands(before, 0) == ["ss -ltnp 'sport = :8080'"]
    decided = before.run.element(before.graph.nodes["decision"], (1, 0)).text
    assert decided == "Which process is listening on port 8080"
    assert not before.elements[1].status.ok  # the wrong decision ran the wrong command
    _, report = asyncio.run(trainer.step([train], val))
    assert report.accepted, report.reason
    after = asyncio.run(trainer.forward([seed, train, *val]))
    assert _commands(after, 0) == ["ss -ltnp 'sport = :8080'"]
    assert after.elements[1].status.ok and after.elements[2].status.ok
    command = trainer.module.experience["command"]
    seed_row = next(r for r in command.rows() if r.key.startswith("Which process is listening"))
    assert seed_row.weight == 1.0  # it answered its own input right: no blame
    learned = [(r.key, r.value) for r in command.rows() if r.provenance["source"] == "training"]
    assert learned == [("Set PORT=8080 in .env", "sed -i 's/^PORT=.*/PORT=8080/' .env")]


def test_the_gate_rejects_a_polluting_step(tmp_path: Path, runtime: Path) -> None:
    """A mislabeled training task (a file where a directory is meant) would teach every
    "Create a directory called …" task to `touch`: the validation task catches it."""
    trainer = _coder(
        tmp_path,
        {
            "decision": [("Create a directory called dist", "Create the dist directory")],
            "command": [("Create the dist directory", "mkdir -p dist")],
        },
    )
    val = [Example({"task": "Create a directory called build", "check": "test -d build"})]
    assert asyncio.run(trainer.evaluate(val)).passed == [True]
    mislabeled = Example(
        {"task": "Create a directory called cache", "check": "test -e cache"},
        {"decision": ["Create the cache directory"], "command": ["touch cache"]},
    )
    rows = {name: len(e) for name, e in trainer.module.experience.items()}
    _, report = asyncio.run(trainer.step([mislabeled], val))
    assert not report.accepted and "validation loss would rise" in report.reason
    assert report.loss_after > report.loss_before
    assert {name: len(e) for name, e in trainer.module.experience.items()} == rows
    assert asyncio.run(trainer.evaluate(val)).passed == [True]


def test_a_rejected_step_keeps_the_rows_of_its_examples_that_do_not_pollute(
    tmp_path: Path, runtime: Path
) -> None:
    """The gate rejects a batch whose mislabeled task would break the val task; the other
    task of the batch still teaches its rows, each example's rows gated alone."""
    trainer = _coder(
        tmp_path,
        {
            "decision": [("Create a directory called dist", "Create the dist directory")],
            "command": [("Create the dist directory", "mkdir -p dist")],
        },
    )
    val = [Example({"task": "Create a directory called build", "check": "test -d build"})]
    mislabeled = Example(
        {"task": "Create a directory called cache", "check": "test -e cache"},
        {"decision": ["Create the cache directory"], "command": ["touch cache"]},
    )
    task = "Reverse the lines of notes.txt into backwards.txt"
    good = Example(
        {"task": task, "check": "test -s backwards.txt"},
        {"decision": [task], "command": ["tac notes.txt > backwards.txt"]},
        {"notes.txt": "a\nb\n"},
    )
    _, report = asyncio.run(trainer.step([mislabeled, good], val))
    print(report.reason, report.plan.describe())
    assert report.accepted and report.reason.startswith("accepted in part")
    assert report.loss_after <= report.loss_before
    command = trainer.module.experience["command"]
    learned = [r.value for r in command.rows() if r.provenance["source"] == "training"]
    assert learned == ["tac notes.txt > backwards.txt"]
    assert asyncio.run(trainer.evaluate(val)).passed == [True]


def test_llm_training_cost_per_step_is_bounded_and_logged(tmp_path: Path, runtime: Path) -> None:
    """On an LLM kernel (the real openai SDK against a loopback stub): at most 3 reflection
    calls per wrong element, and the gate runs the val set once per step after the first."""
    import json

    from mcp_harness.kernels.openai_api import OpenAIKernel
    from mcp_harness.kernels.runner import KernelRunner
    from tests.kernel_stubs import ApiStub, last_user_text

    def model(body: dict) -> str:
        prompt = last_user_text(body)
        if "WANTED OUTPUT" in prompt:
            return "Create the marker"
        return "echo not yet"  # every forward answer is wrong: every targeted element blamed

    tasks = [
        Example(
            {"task": f"Leave a marker named {name}", "check": f"test -f {name}"},
            {"decision": [f"Leave the {name} marker"], "command": [f"touch {name}"]},
        )
        for name in ("a.flag", "b.flag")
    ]
    val = [Example({"task": "Leave a marker named v.flag", "check": "test -f v.flag"})]
    with ApiStub("openai", text=model) as stub:
        directory = modules.new("c", template="coder", target=tmp_path / "module")
        kernel = KernelRunner(OpenAIKernel(api_key="sk-test", base_url=stub.base_url))
        trainer = Trainer(
            modules.load(str(directory)), kernel, tmp_path / "work", dims={"steps": 2},
            log=tmp_path / "steps.jsonl",
        )  # fmt: skip

        async def two_steps() -> None:  # one event loop: the SDK client is bound to it
            await trainer.step(tasks, val)
            await trainer.step(tasks, val)

        asyncio.run(two_steps())
    first, second = (json.loads(line)["kernel_calls"] for line in trainer.optimizer.log.open())
    wrong = 2 * len(tasks)  # decision and command of each task
    assert first["forward"] == second["forward"] == 2 * 2 * len(tasks)  # 2 experts x 2 steps
    assert 0 < first["backward"] <= 3 * wrong and second["backward"] <= 3 * wrong
    one_val_run = 2 * 2 * len(val)
    assert first["gate"] == 2 * one_val_run  # before and after the step
    assert second["gate"] == one_val_run  # "before" is carried over from the first step


def test_the_key_as_a_template_moves_a_parameter_of_several_words_whole() -> None:
    key = (
        "Delete the lines from the one matching BEGIN GEN through the one matching END in Makefile"
    )
    value = "sed -i '/BEGIN GEN/,/END/d' Makefile"
    new = (
        "Delete the lines from the one matching <!-- a --> through the one matching #end in x.html"
    )
    assert _adapted(key, value, new).text == "sed -i '/<!-- a -->/,/#end/d' x.html"
    key, value = "Replace the file a.json with a symbolic link to b.json", "ln -sf b.json a.json"
    new = "Replace the file Caddyfile with a symbolic link to Caddyfile.staging"
    assert adapt(key, value, [], new).text == "ln -sf Caddyfile.staging Caddyfile"


def test_a_template_gap_is_a_parameter_the_value_repeats() -> None:
    # Words added around a one-word parameter are not the parameter: the value stays as is.
    key, value = "Count the lines of notes.txt into count.txt", "wc -l < notes.txt > count.txt"
    new = "Count the lines of auth.log containing denied into n.txt"
    assert "containing" not in _adapted(key, value, new).text
    # Another word of the operation ("last" for "first") is not a parameter.
    key, value = "Write the first 3 lines of a.txt to b.txt", "head -n 3 a.txt > b.txt"
    other = _adapted(key, value, "Write the last 3 lines of c.txt to d.txt")
    assert other.fit < DEFAULT_THRESHOLD


def test_prior_to_is_not_after() -> None:
    """ "60 days prior to 2024-04-15" says the opposite of "60 days after 2024-03-01"."""
    key = "Write the date 30 days after 2024-03-01 to due.txt"
    value = "date -u -d '2024-03-01 +30 days' +%F > due.txt"
    new = "Write the date 60 days prior to 2024-04-15 into notice.txt"
    assert _adapted(key, value, new).contradicted


def test_b_instead_of_a_converts_from_a_to_b() -> None:
    """ "Windows line endings instead of Unix ones" converts to what "change them to Unix
    ones" converts from; "LF newlines instead of CRLF" is "from CRLF to LF"."""
    key = "data.csv has Windows line endings; change them to Unix ones in place"
    value = "Convert CRLF to LF in data.csv"
    new = "export.csv needs Windows (CRLF) line endings instead of Unix ones; change it in place"
    assert _adapted(key, value, new).contradicted
    key, value = "Convert script.sh from CRLF to LF line endings", "Convert CRLF to LF in script.sh"
    new = "Fix deploy.py so it uses LF newlines instead of CRLF"
    assert not _adapted(key, value, new).contradicted
    assert _adapted(key, value, "Convert a.cmd from LF to CRLF").contradicted


def test_two_words_that_trade_places_turn_the_row_around() -> None:
    """Slots filled with each other's words ("Fahrenheit ... to Celsius" for "Celsius ... to
    Fahrenheit") say the opposite conversion."""
    key = "Convert the Celsius temperatures in c.txt to Fahrenheit, in f.txt"
    value = "Compute C*9/5+32 for each line of c.txt and write the Fahrenheit values to f.txt"
    slots = [
        {"text": "Celsius", "kind": "name"},
        {"text": "Fahrenheit", "kind": "name"},
        {"text": "c.txt", "kind": "file"},
        {"text": "f.txt", "kind": "file"},
    ]
    new = "Convert the Fahrenheit temperatures in body_f.txt to Celsius, in body_c.txt"
    assert adapt(key, value, slots, new).contradicted
    same = adapt(
        key, value, slots, "Convert the Celsius temperatures in a.txt to Fahrenheit, in b.txt"
    )
    assert not same.contradicted and same.text.endswith("Fahrenheit values to b.txt")


def test_a_negated_parameter_is_compared_as_the_input_fills_it() -> None:
    """ "not public/" in the key is "not build_out/" once public is build_out."""
    key = "Create the tarball site.tar.gz from inside public, so its entries are not public/"
    value = "tar -czf site.tar.gz -C public ."
    new = "Create the tarball out.tgz from inside build_out, so its entries are not build_out/"
    adapted = _adapted(key, value, new)
    assert not adapted.contradicted and adapted.text == "tar -czf out.tgz -C build_out ."


def test_a_file_named_after_a_parameter_follows_its_fill() -> None:
    """ "saving the original as readme.txt.bak" says "chapter1.md.bak" for chapter1.md."""
    key = "Replace colour with color in readme.txt, saving the original as readme.txt.bak"
    value = "sed -i.bak 's/colour/color/g' readme.txt"
    new = "Replace Bob with Alice in chapter1.md, saving the original as chapter1.md.bak"
    adapted = _adapted(key, value, new)
    assert adapted.text == "sed -i.bak 's/Bob/Alice/g' chapter1.md" and adapted.fit > 0.5
