"""Prompt density: spend tokens only on text that carries meaning.

``compact_text`` removes what costs tokens and says nothing (runs of spaces, trailing
blanks, runs of blank lines, a separator line repeated) and never touches a word.
``fit_to_budget`` fits several pieces of variable content (memory hits, tool results,
transcripts) into a token budget by cutting the least important pieces first, at a
sentence or line boundary, and says what it cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prompts.tokens import count_tokens

# A line made of one repeated separator character (---, ====, * * *, ~~~~~~).
SEPARATOR_LINE = re.compile(r"^\s*([-=*_~])(?:\s*\1){2,}\s*$")
# Fenced code keeps its inner spacing: alignment there can matter to the reader.
FENCE = re.compile(r"^\s*(```|~~~)")
_INNER_SPACE = re.compile(r"(?<=\S)[^\S\n]+(?=\S)")
# Where a text may be cut: after a line break, or after . ! ? (and closing quotes or
# brackets) followed by whitespace.
_CUT_POINT = re.compile(r"\n|(?<=[.!?])[\"')\]]*(?=\s)")


def _compact_lines(lines: list[str]) -> list[str]:
    kept: list[str] = []
    in_fence = False
    last_content_is_separator = False
    for raw in lines:
        line = raw.rstrip()
        is_fence = bool(FENCE.match(line))
        if is_fence:
            in_fence = not in_fence
        elif in_fence:
            kept.append(line)
            continue
        if not line.strip():
            # One blank line at most, and none at the start.
            if kept and kept[-1] != "":
                kept.append("")
            continue
        is_separator = not is_fence and bool(SEPARATOR_LINE.match(line))
        if is_separator and last_content_is_separator:
            # A repeated separator, possibly with blank lines between: drop it and them.
            while kept and kept[-1] == "":
                kept.pop()
            continue
        indent = line[: len(line) - len(line.lstrip())]
        kept.append(indent + _INNER_SPACE.sub(" ", line.lstrip()))
        last_content_is_separator = is_separator
    while kept and kept[-1] == "":
        kept.pop()
    return kept


# What compact_plain changes, looked for with a few scans of the whole text: a carriage
# return, a blank line at the start or the end, a run of blank lines, whitespace at a
# line's end, whitespace other than a space or a newline, a run of spaces between words,
# a second separator line. (Conservative: inside a fenced block these are kept, and the
# full pass then returns the text unchanged.)
_ODD_ASCII_SPACE = "\t\x0b\x0c\x1c\x1d\x1e\x1f"
_ODD_SPACE = re.compile(r"[^\S\n ]")
# SEPARATOR_LINE for one line of a whole text: only a second separator line can be dropped.
# The first line is matched at the start; every other one after its "\n", a literal the
# regex engine finds quickly (a pattern anchored with ^ in MULTILINE mode is tried at
# every character, several times slower on a prompt of a few KB).
_SEPARATOR = r"[^\S\n]*([-=*_~])(?:[^\S\n]*\1){2,}[^\S\n]*(?=\n|\Z)"
_FIRST_SEPARATOR_LINE = re.compile(_SEPARATOR)
_NEXT_SEPARATOR_LINES = re.compile("\n" + _SEPARATOR)


def _space_run_between_words(text: str) -> bool:
    """Whether two or more spaces stand between two non-blank characters (other
    whitespace is looked for separately). Runs after a line break are indentation."""
    start = text.find("  ")
    while start != -1:
        end = start + 2
        while end < len(text) and text[end] == " ":
            end += 1
        if start > 0 and not text[start - 1].isspace() and end < len(text) and not text[end].isspace():
            return True
        start = text.find("  ", end)
    return False


def _is_compact(text: str) -> bool:
    if "\r" in text or "\n\n\n" in text or " \n" in text or text[:1] == "\n" or text[-1:].isspace():
        return False
    if text.isascii():
        if any(space in text for space in _ODD_ASCII_SPACE):
            return False
    elif _ODD_SPACE.search(text):
        return False
    if _space_run_between_words(text):
        return False
    found = 1 if _FIRST_SEPARATOR_LINE.match(text) else 0
    for _line in _NEXT_SEPARATOR_LINES.finditer(text):
        found += 1
        if found == 2:
            return False
    return True


def _compact_full(text: str) -> str:
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(_compact_lines(normalized.split("\n")))


def compact_plain(text: str) -> str:
    """``text`` without whitespace runs, blank-line runs and repeated separator lines.

    A prompt is rendered for every LLM call and is usually compact already: a few scans
    find that, and the text comes back as it is; otherwise it is compacted line by line."""
    return text if _is_compact(text) else _compact_full(text)


def compact_text(text: str) -> tuple[str, int, int]:
    """(compacted text, tokens before, tokens after). The sequence of words is unchanged,
    except that a separator line directly repeating another one is removed."""
    compacted = compact_plain(text)
    return compacted, count_tokens(text), count_tokens(compacted)


@dataclass(frozen=True)
class Part:
    """A piece of variable content; a higher ``priority`` is kept longer."""

    text: str
    priority: int = 0
    name: str = ""


@dataclass(frozen=True)
class Fit:
    text: str
    tokens_before: int
    tokens_after: int
    budget_tokens: int
    dropped: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    # What is left of each part, in the order given ("" for a dropped part).
    part_texts: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.tokens_after <= self.budget_tokens


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that ends at a sentence or line boundary and has at
    most ``max_tokens`` tokens; "" when not even the first sentence fits."""
    if count_tokens(text) <= max_tokens:
        return text
    cuts = sorted({match.end() for match in _CUT_POINT.finditer(text)} - {0, len(text)})
    best = ""
    low, high = 0, len(cuts) - 1
    # Binary search over the cut points: the token count of a prefix grows with its length.
    while low <= high:
        middle = (low + high) // 2
        prefix = text[: cuts[middle]].rstrip()
        if count_tokens(prefix) <= max_tokens:
            best, low = prefix, middle + 1
        else:
            high = middle - 1
    return best


def fit_to_budget(parts: list[Part], budget_tokens: int, *, separator: str = "\n\n",
                  compact: bool = True) -> Fit:
    """Join ``parts`` (in their order) within ``budget_tokens``.

    Each part is compacted first (when ``compact``). While over budget, the least
    important part (lowest priority; among equals the later one) is cut to the largest
    sentence/line-bounded prefix that fits, or dropped when none does.
    """
    texts = [part.text for part in parts]

    def joined() -> str:
        return separator.join(text for text in texts if text)

    tokens_before = count_tokens(joined())
    if compact:
        texts = [compact_plain(text) for text in texts]
    dropped: list[str] = []
    truncated: list[str] = []
    order = sorted(range(len(parts)), key=lambda index: (parts[index].priority, -index))
    for index in order:
        label = parts[index].name or f"part {index}"
        over = count_tokens(joined()) - budget_tokens
        if over <= 0:
            break
        # Separators make totals not quite additive, so cut again until it fits or is gone.
        while over > 0 and texts[index]:
            keep = count_tokens(texts[index]) - over
            texts[index] = truncate_to_tokens(texts[index], keep) if keep > 0 else ""
            over = count_tokens(joined()) - budget_tokens
        if not texts[index]:
            dropped.append(label)
        else:
            truncated.append(label)
    text = joined()
    return Fit(text, tokens_before, count_tokens(text), budget_tokens, dropped, truncated, texts)
