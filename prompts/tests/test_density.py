import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompts.density import Part, _compact_full, compact_plain, compact_text, fit_to_budget, truncate_to_tokens
from prompts.tokens import count_tokens

SEPARATOR_WORD = re.compile(r"^[-=*_~]+$")


def words(text: str) -> list[str]:
    """The meaning-bearing words: everything but whitespace and separator rules."""
    return [word for word in text.split() if not SEPARATOR_WORD.match(word)]


def test_compact_text_removes_whitespace_blank_lines_and_repeated_separators():
    text = "Title  \n\n\n\n  - item   one\t\t here\n-----\n\n-----\n=====\nNext   part.\n\n\n"
    compacted, before, after = compact_text(text)
    assert compacted == "Title\n\n  - item one here\n-----\nNext part."
    assert (before, after) == (count_tokens(text), count_tokens(compacted))
    assert after < before


def test_compact_text_keeps_fenced_code_spacing():
    text = "Example:\n```\nx  =  1\n\n\n\ny = 2   \n```\n"
    compacted, _, _ = compact_text(text)
    assert compacted == "Example:\n```\nx  =  1\n\n\n\ny = 2\n```"


def test_compact_text_keeps_single_separator_and_setext_heading():
    text = "Heading\n=======\ntext\n---\nmore"
    assert compact_text(text)[0] == text


# Text built from the things compaction touches: words, punctuation, odd whitespace,
# separators and fences.
_pieces = st.sampled_from([
    "word", "Ünïcode", "数据", "x=1", "a.b", "-", "--", "---", "===", "* * *", "```", "~~~", "#", "|", "—",
    " ", "  ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\u00a0", "\u3000", "\x0b", "\x0c", "\x1c",
])
texts = st.lists(st.one_of(_pieces, st.text(max_size=8)), max_size=60).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_compact_text_never_changes_the_words(text):
    compacted, before, after = compact_text(text)
    assert words(compacted) == words(text)
    assert after <= before
    assert compact_text(compacted)[0] == compacted  # idempotent


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_the_quick_check_returns_what_the_full_pass_returns(text):
    # compact_plain returns a text as it is when a few scans find nothing to change; that
    # shortcut must agree with the line-by-line pass on every text.
    assert compact_plain(text) == _compact_full(text)


@pytest.mark.parametrize("text", [
    "plain prose, one space between words.\nNext line.\n\nA paragraph.", "  indented\n    deeper\nback",
    "a\tb", "a  b", "x \ny", "end \u00a0", "\nstart", "end\n", "a\n\n\nb", "---\ntext\n---", "---\n\n===",
    "* * *\n- - -", "```\na  b\n```", "a\x0bb", "Heading\n=======\ntext", "caf\u00e9  bar", "caf\u00e9\u00a0bar",
    "a \nb", "a\u3000", "x\x1fy",
])
def test_the_quick_check_on_edge_cases(text):
    assert compact_plain(text) == _compact_full(text)


@pytest.mark.parametrize("text", [
    "The cat sat on the mat.", "  indented\n\tand tabbed  \n", "a\n\n\n\n\nb", "---\n---\n---", "",
    "line one\r\nline two\rline three", "x\u00a0\u00a0y", "```\n  code  here  \n```", "~~~\nkeep   this\n~~~\n---\n---",
    "1.  First\n2.  Second\n\n\n\n3.  Third", "| a | b |\n|---|---|\n| 1 | 2 |",
])
def test_compact_text_cases_keep_words(text):
    compacted, before, after = compact_text(text)
    assert words(compacted) == words(text)
    assert after <= before


def test_truncate_cuts_at_sentence_or_line_boundary():
    text = "First sentence here. Second sentence here. Third one.\nA new line follows."
    cut = truncate_to_tokens(text, count_tokens("First sentence here. Second sentence here.") + 1)
    assert cut == "First sentence here. Second sentence here."
    assert truncate_to_tokens(text, 1) == ""
    assert truncate_to_tokens(text, 1000) == text


def test_fit_to_budget_trims_least_important_first_and_reports_tokens():
    parts = [
        Part("Instructions: answer briefly.", priority=10, name="instructions"),
        Part("Fact one. Fact two. Fact three. Fact four.", priority=5, name="facts"),
        Part("Old chatter that matters little. More chatter.", priority=0, name="chatter"),
    ]
    full = "\n\n".join(part.text for part in parts)
    budget = count_tokens("Instructions: answer briefly.\n\nFact one. Fact two.")
    fit = fit_to_budget(parts, budget)
    assert fit.tokens_before == count_tokens(full)
    assert fit.text == "Instructions: answer briefly.\n\nFact one. Fact two."
    assert fit.tokens_after == count_tokens(fit.text) <= budget and fit.fits
    assert fit.dropped == ["chatter"] and fit.truncated == ["facts"]


def test_fit_to_budget_leaves_text_alone_when_it_fits_and_ties_trim_later_parts():
    parts = [Part("Alpha one."), Part("Beta two."), Part("Gamma three.")]
    assert fit_to_budget(parts, 100).text == "Alpha one.\n\nBeta two.\n\nGamma three."
    fit = fit_to_budget(parts, count_tokens("Alpha one.\n\nBeta two."))
    assert fit.text == "Alpha one.\n\nBeta two." and fit.dropped == ["part 2"]


def test_fit_to_budget_compacts_before_cutting():
    parts = [Part("Keep   all\n\n\n\nof   these words.", priority=1)]
    fit = fit_to_budget(parts, count_tokens("Keep all\n\nof these words."))
    assert fit.text == "Keep all\n\nof these words." and fit.dropped == fit.truncated == []
    assert fit.tokens_before > fit.tokens_after


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(alphabet="abc .\n", max_size=80), st.integers(0, 3)), max_size=6),
       st.integers(0, 60))
def test_fit_to_budget_always_fits_and_keeps_prefixes(raw_parts, budget):
    parts = [Part(text, priority) for text, priority in raw_parts]
    fit = fit_to_budget(parts, budget)
    assert fit.tokens_after == count_tokens(fit.text) <= budget
    # Whatever survives of a part is a prefix of its compacted text, and the parts keep their order.
    for part, kept in zip(parts, fit.part_texts, strict=True):
        assert compact_text(part.text)[0].startswith(kept)
    assert fit.text == "\n\n".join(kept for kept in fit.part_texts if kept)
