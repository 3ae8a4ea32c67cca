"""Regular expressions of checks, refused when their shape is known to take exponential time.

What bounds a check's time is its check process (evals.bounded): a regex or JSON Schema
check that has not answered within EVAL_CHECK_TIMEOUT_SECONDS is stopped and is an error.
This guard only refuses, when the check is saved, the common shapes that backtrack
catastrophically, so their author learns at once why rather than from a timed-out run:

1. a variable-length quantifier inside a group that is itself repeated without bound
   (``(a+)+``, ``(\\w*\\s?)*``; ``(\\d{3}-)+`` is fine: its inner count is fixed);
2. an alternation of multi-character branches inside an unbounded repeat (``(a|ab)*``;
   ``(a|b)+`` is fine: it is ``[ab]+``);
3. back-references.

It is not complete (``(.|\\s)*x``, ``(a+){1,50}b`` or ``a*a*a*a*b`` pass it); the timeout
is the bound. Patterns are also capped at 300 characters and matched against at most
100,000 characters.
"""

from __future__ import annotations

import re

# The parser behind re.compile; it is the only way to see a pattern's structure, and its
# output shape (opcodes) has been stable since Python 3.0. Checked by evals/tests/test_checks.py.
from re import _constants as sre_constants
from re import _parser as sre_parse

MAX_PATTERN = 300
MAX_TEXT = 100_000
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)}
_SINGLE = {sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.IN, sre_constants.ANY,
           sre_constants.CATEGORY}
UNBOUNDED = sre_constants.MAXREPEAT


class RiskyPattern(ValueError):
    pass


def _single_char(branch) -> bool:
    return len(branch) == 1 and branch[0][0] in _SINGLE


def _walk(pattern, under_unbounded: bool) -> None:
    for op, value in pattern:
        if op in _REPEATS:
            low, high, inner = value
            if under_unbounded and low != high:
                raise RiskyPattern("a quantifier inside a repeated group (like (a+)+) can take exponential time")
            _walk(inner, under_unbounded or high == UNBOUNDED)
        elif op == sre_constants.BRANCH:
            branches = value[1]
            if under_unbounded and not all(_single_char(branch) for branch in branches):
                raise RiskyPattern("an alternation inside a repeated group (like (a|ab)*) can take exponential time")
            for branch in branches:
                _walk(branch, under_unbounded)
        elif op == sre_constants.SUBPATTERN:
            _walk(value[-1], under_unbounded)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            _walk(value[1], under_unbounded)
        elif op == getattr(sre_constants, "ATOMIC_GROUP", None):
            _walk(value, under_unbounded)
        elif op in (sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS):
            raise RiskyPattern("back-references are not allowed in checks")


def regex_problem(pattern: object) -> str | None:
    """Why ``pattern`` is refused, or None."""
    if not isinstance(pattern, str) or not pattern:
        return "the pattern must be a non-empty string"
    if len(pattern) > MAX_PATTERN:
        return f"the pattern is longer than {MAX_PATTERN} characters"
    try:
        re.compile(pattern)
        _walk(sre_parse.parse(pattern), False)
    except re.error as error:
        return f"invalid regular expression: {error}"
    except RiskyPattern as error:
        return f"refused: {error}"
    return None


def safe_search(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """``re.search`` of a pattern :func:`regex_problem` accepted, on at most MAX_TEXT characters."""
    problem = regex_problem(pattern)
    if problem:
        raise ValueError(problem)
    return re.search(pattern, text[:MAX_TEXT], re.IGNORECASE if ignore_case else 0) is not None
