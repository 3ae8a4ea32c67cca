"""Text and schema helpers of the offline rule set: splitting, keywords, numbers, schema enums.

Plain string handling, no model: the same input always gives the same output.
"""

from __future__ import annotations

import json
import re
from typing import Any

RESEARCH_WORDS = {"research", "find", "history", "search", "look", "who", "what", "when", "where", "why", "which",
                  "explain", "describe", "learn", "background", "origin", "facts", "information", "about"}
ANALYSIS_WORDS = {"compute", "average", "calculate", "analyse", "analyze", "analysis", "statistics", "statistic",
                  "numbers", "mean", "median", "sum", "total", "percent", "percentage", "stdev", "deviation",
                  "quartile", "quartiles", "multiply", "divide", "count"}
SYNTHESIS_WORDS = {"summarise", "summarize", "summary", "combine", "write", "draft", "report", "compose", "conclude"}
STATS_WORDS = {"average", "mean", "median", "statistics", "statistic", "stdev", "deviation", "quartile",
               "quartiles", "analyse", "analyze", "analysis", "distribution", "spread", "describe"}
MEMORY_STORE_WORDS = {"remember", "store", "save", "memorise", "memorize", "record"}
TIME_WORDS = {"time", "date", "today", "now", "clock", "day"}
# Words that start a new clause: "find X and compute Y" is two subtasks, "3, 5 and 9" is not.
VERBS = RESEARCH_WORDS - {"who", "what", "when", "where", "why", "which", "about", "facts", "information",
                          "background", "origin", "history"} | {
    "compute", "calculate", "analyse", "analyze", "summarise", "summarize", "combine", "write", "draft",
    "compare", "list", "get", "fetch", "check", "store", "remember", "save", "tell", "give", "report",
    "estimate", "count", "ask", "confirm", "then", "show", "make", "create", "work", "figure", "add",
    "multiply", "divide", "convert", "evaluate", "determine", "identify", "read", "review", "average",
}
CONFIRM = re.compile(r"\b(confirm\w*|approv\w*|ask me|check with me|my (?:ok|okay|go-ahead|permission))\b", re.I)
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
URL = re.compile(r"https?://[^\s\"'<>)]+")
# Numbers joined by operators, e.g. "12 * (3 + 4)" or "2^10".
EXPRESSION = re.compile(r"[(\s]*-?\d+(?:\.\d+)?[)\s]*(?:(?:\*\*|[-+*/%^×x])[(\s]*-?\d+(?:\.\d+)?[)\s]*)+")
CLAUSE_SPLIT = re.compile(r"(?:,\s*and\s+|\s+and\s+then\s+|\s+and\s+|,\s*then\s+|;\s*|,\s+)", re.I)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def sentences(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"(?<=[.!?])\s+", text.strip()) if part.strip()]


def clauses(sentence: str) -> list[str]:
    """Split a sentence at " and ", commas and "then" only where the next part starts with a verb."""
    pieces = CLAUSE_SPLIT.split(sentence)
    separators = CLAUSE_SPLIT.findall(sentence)
    result = [pieces[0]]
    for separator, piece in zip(separators, pieces[1:], strict=False):
        first = (words(piece) or [""])[0]
        if first in VERBS:
            result.append(piece)
        else:
            result[-1] = result[-1] + separator + piece
    return [clean_clause(item) for item in result if clean_clause(item)]


def clean_clause(text: str) -> str:
    text = re.sub(r"^(?:then|also|and)\s+", "", text.strip(), flags=re.I).strip(" ,;")
    return text[:1].upper() + text[1:] if text else ""


def numbers(text: str) -> list[float]:
    values = [float(match) for match in NUMBER.findall(text)]
    return [int(value) if value.is_integer() else value for value in values]


_NUM = r"-?\d+(?:\.\d+)?"
# Arithmetic said in words, rewritten to the calculator's syntax before the expression is read.
SPOKEN = [
    (re.compile(rf"\b(?:the\s+)?(?:square\s+root|sqrt)\s+of\s+({_NUM})", re.I), r"sqrt(\1)"),
    (re.compile(rf"({_NUM})\s*(?:%|percent\b|per\s+cent\b)\s+of\s+({_NUM})", re.I), r"(\1 / 100 * \2)"),
    (re.compile(rf"({_NUM})\s+(?:to\s+the\s+power\s+of|raised\s+to(?:\s+the\s+power\s+of)?)\s+({_NUM})", re.I),
     r"\1 ** \2"),
    (re.compile(rf"({_NUM})\s+squared\b", re.I), r"\1 ** 2"),
    (re.compile(rf"({_NUM})\s+cubed\b", re.I), r"\1 ** 3"),
]
SPOKEN_OPERATORS = {"plus": "+", "added to": "+", "minus": "-", "less": "-", "times": "*", "multiplied by": "*",
                    "divided by": "/", "over": "/", "modulo": "%", "mod": "%"}
_SPOKEN_BINARY = re.compile(rf"(?<=[\d)])\s+({'|'.join(sorted(SPOKEN_OPERATORS, key=len, reverse=True))})\s+"
                            rf"(?=-?\d|sqrt\()", re.I)
_TERM = rf"(?:sqrt\(\s*{_NUM}\s*\)|\(?\s*{_NUM}\s*\)?)"
SPOKEN_EXPRESSION = re.compile(rf"{_TERM}(?:\s*(?:\*\*|[-+*/%])\s*{_TERM})*")


def spoken_arithmetic(text: str) -> str | None:
    """A calculator expression for arithmetic said in words ("7 times 6", "12 % of 250",
    "square root of 81", "2 to the power of 10"), or None when the text has none."""
    rewritten = text
    for pattern, replacement in SPOKEN:
        rewritten = pattern.sub(replacement, rewritten)
    rewritten = _SPOKEN_BINARY.sub(lambda match: f" {SPOKEN_OPERATORS[match.group(1).lower()]} ", rewritten)
    if rewritten == text:
        return None
    for match in SPOKEN_EXPRESSION.finditer(rewritten):
        candidate = match.group(0).strip()
        if "sqrt(" in candidate or re.search(r"\d\s*\)?\s*(?:\*\*|[-+*/%])\s*\(?\s*(?:-?\d|sqrt)", candidate):
            if candidate.count("(") == candidate.count(")"):
                return candidate
    return None


def asks_for_arithmetic(text: str) -> bool:
    """Arithmetic in words, or an expression with an operator other than a dash ("1990-2000" is a range)."""
    expression = arithmetic_expression(text)
    return bool(expression and (spoken_arithmetic(text) or re.search(r"[+*/%]", expression)))


def arithmetic_expression(text: str) -> str | None:
    spoken = spoken_arithmetic(text)
    if spoken:
        return spoken
    for match in EXPRESSION.finditer(text):
        candidate = match.group(0).strip()
        if re.search(r"\d\s*(?:\*\*|[-+*/%^×x])\s*[(\s]*-?\d", candidate):
            return candidate.replace("^", "**").replace("×", "*").replace("x", "*")
    return None


def asks_confirmation(text: str) -> bool:
    return bool(CONFIRM.search(text))


def research_query(text: str) -> str:
    """The subtask without its leading instruction words, e.g. "Find the history of X" -> "history of X"."""
    query = re.sub(r"^(?:please\s+)?(?:research|find(?:\s+out)?|search(?:\s+for)?|look\s+up|tell\s+me|explain|"
                   r"describe|get|learn)\s+(?:about\s+)?(?:the\s+)?", "", text.strip(), flags=re.I)
    return (query or text).strip(" .?!")[:300] or text[:300]


def first_sentences(text: str, count: int = 3, limit: int = 800) -> str:
    joined = " ".join(sentences(" ".join(text.split()))[:count])
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def schema_values(schema: Any, key: str) -> list[str] | None:
    """Every enum/const value a schema allows for property ``key``, searched through nesting."""
    found: list[str] = []
    seen_any = False

    def visit(node: Any) -> None:
        nonlocal seen_any
        if isinstance(node, dict):
            prop = node.get("properties", {}).get(key) if isinstance(node.get("properties"), dict) else None
            if isinstance(prop, dict):
                if "enum" in prop:
                    seen_any = True
                    found.extend(v for v in prop["enum"] if v not in found)
                if "const" in prop:
                    seen_any = True
                    if prop["const"] not in found:
                        found.append(prop["const"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(schema)
    return found if seen_any else None


def example_for(schema: Any) -> Any:
    """A minimal instance of ``schema``; fills fields the rules do not know about."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        if schema.get(key):
            return example_for(schema[key][0])
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: example_for(props.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return [example_for(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    return {"integer": 0, "number": 0, "boolean": False, "null": None}.get(kind, "")


def compact_json(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
