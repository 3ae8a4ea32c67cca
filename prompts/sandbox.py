"""Jinja2's immutable sandbox, bounded in time, size and steps.

Jinja2's sandbox keeps a template away from Python's internals, not from using up the
process that renders it: ``{{ "a" * 10**10 }}``, ``{{ "%0999999999d" % 1 }}``, two nested loops
over ``range(100000)`` or a macro that calls itself would freeze the web process or the
worker, or get it killed for its memory. Here every rendering runs against a
:class:`Budget`:

- no value the template builds (a string, a list counted with everything in it, a
  number's digits), and not the output, may be longer than ``max_chars``. Whatever makes
  a value longer than its operands (``*``, ``**``, ``%``, ``+``, ``~``, list and dict
  literals, ``center``, ``indent``, ``replace``, ``join``, ``format``, ``wordwrap``,
  ``batch``, ...) is checked *before* it runs;
- everything built in one rendering together may not exceed ``BUILT_PER_CHAR`` times
  ``max_chars`` (a loop that keeps building strings, or text written inside a macro);
- loop iterations, calls and filter calls together are capped at ``max_steps``, and the
  whole rendering at ``max_seconds``, checked at each of them.

Operators, calls and ``str.format`` go through the sandbox's own hooks (``call_binop``,
``call``, ``wrap_str_format``), and every filter through a wrapper. Loops, ``~``, literals
and slices have none: :class:`BoundedSandbox` compiles a body from its parsed tree after
routing those nodes through internal filters (``agentos.*``, names a template cannot
write). The text a macro or a block gathers is counted when ``Environment.concat`` joins
it, output that is no string yet by the finalize function. A refusal raises
:class:`RenderLimitExceeded`.
"""

from __future__ import annotations

import re
import time
import types
from contextvars import ContextVar
from functools import update_wrapper
from typing import Any

from jinja2 import Template, nodes, pass_context, pass_environment, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Cycler, Joiner, Namespace, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

DEFAULT_MAX_CHARS = 1_000_000
DEFAULT_MAX_STEPS = 1_000_000
DEFAULT_MAX_SECONDS = 2.0
# All that one rendering builds, as a multiple of the longest value.
BUILT_PER_CHAR = 10

_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))
_CONTAINERS = (list, tuple, set, frozenset, *_VIEWS)
_SEQUENCES = (str, bytes, list, tuple)


class RenderLimitExceeded(SecurityError):
    """The template went past one of the sandbox's limits; the message says which."""


class Budget:
    """What one rendering may still use; see the module docstring."""

    __slots__ = ("max_chars", "max_steps", "max_seconds", "deadline", "steps", "built", "max_built", "written",
                 "_known")

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS, max_steps: int = DEFAULT_MAX_STEPS,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.max_chars, self.max_steps, self.max_seconds = max_chars, max_steps, max_seconds
        self.deadline = time.monotonic() + max_seconds
        self.steps = self.built = self.written = 0
        self.max_built = BUILT_PER_CHAR * max_chars
        # id -> (list, tuple or dict, its size): the last few measured, held so that no other
        # object can take their id; a template cannot change them (immutable sandbox).
        self._known: dict[int, tuple[Any, int]] = {}

    def step(self) -> None:
        """One loop iteration, call or filter call."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise RenderLimitExceeded(f"more than {self.max_steps:,} loop iterations and calls "
                                      "(PROMPT_RENDER_MAX_STEPS)")
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"took longer than {self.max_seconds:g} seconds (PROMPT_RENDER_MAX_SECONDS)")

    def fits(self, size: int) -> None:
        """Refuse to build a value of ``size`` characters when that is over the limit."""
        if size > self.max_chars:
            raise RenderLimitExceeded(f"a value would be longer than {self.max_chars:,} characters "
                                      "(PROMPT_RENDER_MAX_CHARS)")

    def build(self, size: int) -> None:
        """Count a value of ``size`` characters (or items) that was just built."""
        self.built += size
        if size > self.max_chars or self.built > self.max_built:
            self.fits(size)
            raise RenderLimitExceeded(f"builds more than {self.max_built:,} characters in all "
                                      f"({BUILT_PER_CHAR} times PROMPT_RENDER_MAX_CHARS)")

    def built_value(self, value: Any) -> Any:
        """Count ``value`` when it is a string or a container; returns it."""
        if isinstance(value, (*_SEQUENCES, dict, set, frozenset)):
            self.build(len(value))
        return value

    def write(self, size: int) -> None:
        """Count ``size`` characters of the rendered text."""
        self.written += size
        if self.written > self.max_chars:
            raise RenderLimitExceeded(f"the text would be longer than {self.max_chars:,} characters "
                                      "(PROMPT_RENDER_MAX_CHARS)")

    def size(self, value: Any, per_depth: int = 0) -> int:
        """Characters of ``value`` written out (see :func:`expanded_size`), up to just past the limit."""
        return self.measure(value, per_depth)[0]

    def measure(self, value: Any, per_depth: int = 0) -> tuple[int, bool]:
        """(size, whether it can never change): a namespace inside may be given new values."""
        kind = type(value)
        if kind is str:
            return len(value), True
        if kind is int:
            return _digits(value), True
        if kind is float or kind is bool or value is None:
            return 24, True
        if per_depth:
            return _indented_size(value, self.max_chars, per_depth), False
        if not (kind is list or kind is tuple or kind is dict):
            return expanded_size(value, self.max_chars, self._known)
        known = self._known.get(id(value))
        if known is not None and known[0] is value:
            return known[1], True
        size, fixed = expanded_size(value, self.max_chars, self._known)
        if fixed:
            self.remember(value, size)
        return size, fixed

    def remember(self, value: Any, size: int) -> None:
        known = self._known
        if len(known) >= 16:
            del known[next(iter(known))]
        known[id(value)] = (value, size)


def _digits(number: int) -> int:
    return number.bit_length() * 30103 // 100000 + 1


def expanded_size(value: Any, limit: int, known: dict[int, tuple[Any, int]] | None = None) -> tuple[int, bool]:
    """About how many characters ``value`` takes written out (str(), JSON), nested values
    included however often they are referenced, and whether that can never change (no
    namespace inside); stops counting once past ``limit``.

    A list that holds the same list twice, 60 levels deep, takes a few objects in memory
    and 2**60 characters as text; that is what counts. ``known`` holds sizes measured
    before (see Budget.measure).
    """
    total, fixed = 0, True
    stack = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            total += 1 + len(item)
            continue
        total += 1
        if kind is int or kind is float or kind is bool or item is None:
            total += _digits(item) if kind is int else 24
        elif known and (hit := known.get(id(item))) is not None and hit[0] is item:
            total += hit[1]
        elif isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, _CONTAINERS):
            total += len(item)
            if total <= limit:
                extend(item)
        elif isinstance(item, dict):
            total += 2 * len(item)
            if total <= limit:
                extend(item.keys())
                extend(item.values())
        elif (inner := _held(item)) is not None:
            fixed = fixed and not isinstance(item, Namespace)
            push(inner)
        else:
            total += 24  # loop and macro objects and the like: short
        if total > limit:
            break
    return total, fixed


def _indented_size(value: Any, limit: int, per_depth: int) -> int:
    """expanded_size plus ``per_depth`` characters per nesting level for each item (the
    indentation of ``tojson(indent=...)``)."""
    total = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        total += 1 + per_depth * depth
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, int):
            total += _digits(item)
        elif isinstance(item, _CONTAINERS):
            total += len(item)
            if total <= limit:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            total += 2 * len(item)
            if total <= limit:
                stack.extend((child, depth + 1) for pair in item.items() for child in pair)
        elif (inner := _held(item)) is not None:
            stack.append((inner, depth))
        else:
            total += 24
        if total > limit:
            break
    return total


class HeldNamespace(Namespace):
    """jinja2's ``namespace()``, keeping a record of what it holds that the size checks can
    read (jinja2's own keeps it in a private attribute). Templates cannot reach the record:
    a namespace answers every attribute from what it holds."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: B902 - as Namespace: any keyword, even "self"
        self, rest = args[0], args[1:]
        Namespace.__init__(self, *rest, **kwargs)
        object.__setattr__(self, "held", dict(*rest, **kwargs))

    def __setitem__(self, name: str, value: Any) -> None:
        Namespace.__setitem__(self, name, value)
        object.__getattribute__(self, "held")[name] = value


def _held(item: Any) -> Any:
    """What a namespace (written out as "<Namespace {...}>"), cycler or joiner holds."""
    if isinstance(item, HeldNamespace):
        return object.__getattribute__(item, "held")
    if isinstance(item, Cycler):
        return item.items
    if isinstance(item, Joiner):
        return item.sep
    return None


_active: ContextVar[Budget | None] = ContextVar("prompt_render_budget", default=None)


def current() -> Budget:
    """The budget of the rendering under way (a fresh default one outside any, e.g. while
    the compiler folds a constant)."""
    return _active.get() or Budget()


def text_of(value: Any) -> str:
    """str(value), once it is known to fit (a ``default=`` for json.dumps)."""
    budget = current()
    budget.fits(budget.size(value))
    return str(value)


def _number(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _width(budget: Budget, value: Any, width: Any) -> None:
    budget.fits(max(budget.size(value), _number(width)))


# --- operators ------------------------------------------------------------------------

def _check_add(budget: Budget, left: Any, right: Any) -> tuple[int, bool] | None:
    if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        (left_size, left_fixed), (right_size, right_fixed) = budget.measure(left), budget.measure(right)
        budget.fits(left_size + right_size)
        return left_size + right_size, left_fixed and right_fixed
    return None


def _check_mul(budget: Budget, left: Any, right: Any) -> None:
    if isinstance(left, int) and not isinstance(right, int):
        left, right = right, left
    if not isinstance(right, int):
        return
    if isinstance(left, _SEQUENCES):
        budget.fits(max(right, 0) * budget.size(left))
    elif isinstance(left, int):
        budget.fits(_digits(left) + _digits(right))


def _check_pow(budget: Budget, base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        budget.fits((abs(base).bit_length() - 1) * exponent * 30103 // 100000)


# %(key)s, flags, width, .precision, length modifier, conversion
_PERCENT_FIELD = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)


def _check_percent(budget: Budget, text: Any, operand: Any) -> None:
    """``text % operand`` (and the ``format`` filter): the text, each field's width and
    precision and each value it writes, before formatting."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if not isinstance(text, str):
        return
    total = len(text)
    stars = named = False
    for key, width, precision, _ in _PERCENT_FIELD.findall(text):
        for number in (width, precision):
            if number == "*":
                stars = True
            elif number:
                total += int(number) if len(number) < 10 else budget.max_chars + 1
        if key and isinstance(operand, dict):  # "%(name)s" % {...}: a value may be named many times
            named = True
            total += budget.size(operand.get(key, ""))
        budget.fits(total)
    if not named:
        values = operand if isinstance(operand, tuple) else (operand,)
        total += sum(budget.size(value) for value in values)
        if stars:
            total += sum(max(_number(value), 0) for value in values)
    budget.fits(total)


_BINOP_CHECKS = {"+": _check_add, "*": _check_mul, "**": _check_pow, "%": _check_percent}


# --- methods of strings and numbers ----------------------------------------------------

def _joined(budget: Budget, separator: Any, items: Any) -> list:
    """``items`` as a list, once the text joining them with ``separator`` is known to fit."""
    items = list(items)
    total = len(separator) * max(len(items) - 1, 0) if isinstance(separator, (str, bytes)) else 0
    for item in items:
        total += budget.size(item)
        budget.fits(total)
    return items


def _replaced_size(text: Any, old: Any, new: Any, count: Any) -> int:
    if not (isinstance(text, (str, bytes)) and type(old) is type(text) and type(new) is type(text)):
        return 0
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _method_center(budget, text, width=0, *args, **kwargs):
    _width(budget, text, width)


def _method_zfill(budget, text, width=0):
    _width(budget, text, width)


def _method_expandtabs(budget, text, tabsize=8):
    tab = b"\t" if isinstance(text, bytes) else "\t"
    budget.fits(len(text) + text.count(tab) * max(_number(tabsize), 0))


def _method_replace(budget, text, old="", new="", count=-1):
    budget.fits(_replaced_size(text, old, new, count))


def _method_translate(budget, text, table=None, *args):
    values = table.values() if isinstance(table, dict) else table if isinstance(table, (list, tuple)) else ()
    longest = max((len(value) for value in values if isinstance(value, str)), default=1)
    budget.fits(len(text) * max(longest, 1))


def _method_to_bytes(budget, number, length=1, *args, **kwargs):
    budget.fits(_number(length))


def _call_lipsum(budget, *args, **kwargs):
    """lipsum(n=5, html=True, min=20, max=100): n paragraphs of at most max words."""
    paragraphs = args[0] if args else kwargs.get("n", 5)
    words = args[3] if len(args) > 3 else kwargs.get("max", 100)
    budget.fits(max(_number(paragraphs), 0) * (max(_number(words), 0) * 16 + 16))


_STRING_METHOD_CHECKS = {
    "center": _method_center, "ljust": _method_center, "rjust": _method_center, "zfill": _method_zfill,
    "expandtabs": _method_expandtabs, "replace": _method_replace, "translate": _method_translate,
}


# --- filters ---------------------------------------------------------------------------
# Each check takes the budget, the context and the filter's own arguments, and returns the
# value to filter (a generator it had to read becomes a list).

def _filter_center(budget, context, value, width=80):
    _width(budget, value, width)
    return value


def _filter_indent(budget, context, value, width=4, first=False, blank=False):
    indentation = len(width) if isinstance(width, str) else _number(width)
    lines = len(value.splitlines()) + 1 if isinstance(value, str) else 1
    budget.fits(budget.size(value) + lines * indentation)
    return value


def _filter_replace(budget, context, value, old, new, count=None):
    budget.fits(budget.size(value))
    text = value if isinstance(value, str) else str(value)
    budget.fits(_replaced_size(text, str(old), str(new), count))
    return value


def _filter_format(budget, context, value, *args, **kwargs):
    _check_percent(budget, value, kwargs or args)
    return value


def _filter_join(budget, context, value, d="", attribute=None):
    items = list(value)
    parts = items if attribute is None else map(make_attrgetter(context.environment, attribute), items)
    _joined(budget, str(d), parts)
    return items


def _filter_wordwrap(budget, context, value, width=79, break_long_words=True, wrapstring=None,
                     break_on_hyphens=True):
    size = budget.size(value)
    separator = len(wrapstring) if isinstance(wrapstring, str) else 1
    budget.fits(size + (size + 1) * separator)
    return value


def _filter_urlize(budget, context, value, trim_url_limit=None, nofollow=False, target=None, rel=None,
                   extra_schemes=None):
    size = budget.size(value)
    attributes = sum(len(text) for text in (target, rel) if isinstance(text, str))
    # Escaped text (at most 5 characters for one), and a link of 40 characters and the
    # attributes for each address (5 characters at the least).
    budget.fits(5 * size + (size // 5 + 1) * (40 + attributes))
    return value


def _filter_batch(budget, context, value, linecount, fill_with=None):
    if fill_with is not None:
        budget.fits(_number(linecount) * (budget.size(fill_with) + 1))
    return value


def _filter_slice(budget, context, value, slices, fill_with=None):
    budget.fits(_number(slices) * (1 if fill_with is None else budget.size(fill_with) + 1))
    return value


def _filter_sum(budget, context, value, attribute=None, start=0):
    if isinstance(start, (int, float)):
        return value
    # Adding lists copies the running total each time: count every copy.
    items = list(value)
    parts = items if attribute is None else map(make_attrgetter(context.environment, attribute), items)
    running = budget.size(start)
    for part in parts:
        running += budget.size(part)
        budget.build(running)
    return items


def _filter_round(budget, context, value, precision=0, method="common"):
    budget.fits(abs(_number(precision)))  # 10 ** precision
    return value


def _filter_tojson(budget, context, value, indent=None):
    if indent:  # each item on a line of its own, indented by its depth
        budget.fits(budget.size(value, per_depth=_number(indent)))
    return value


def _filter_pprint(budget, context, value):
    budget.fits(budget.size(value, per_depth=1))
    return value


_FILTER_CHECKS = {
    "center": _filter_center, "indent": _filter_indent, "replace": _filter_replace, "format": _filter_format,
    "join": _filter_join, "wordwrap": _filter_wordwrap, "urlize": _filter_urlize, "batch": _filter_batch,
    "slice": _filter_slice, "sum": _filter_sum, "round": _filter_round, "tojson": _filter_tojson,
    "pprint": _filter_pprint,
}

# Filters that never write their value out as text (tojson writes other objects than
# plain data through text_of); all others may, so a value that is not a string is measured
# first: a list of namespaces measured when it was built, whose attributes were set since.
_NO_TEXT_FILTERS = frozenset({
    "abs", "attr", "batch", "count", "d", "default", "dictsort", "first", "float", "groupby", "int", "items",
    "last", "length", "list", "map", "max", "min", "random", "reject", "rejectattr", "reverse", "round",
    "select", "selectattr", "slice", "sort", "sum", "tojson", "unique"})

_PASS_CONTEXT = pass_context(lambda: None).jinja_pass_arg
_PASS_EVAL_CONTEXT = pass_eval_context(lambda: None).jinja_pass_arg
_PASS_ENVIRONMENT = pass_environment(lambda: None).jinja_pass_arg


def _bounded_filter(name: str, func: Any) -> Any:
    """``func`` counted as a step, its arguments checked first and its result counted.

    Marked pass_context, so the compiler never runs it on constants ahead of time."""
    passes = getattr(func, "jinja_pass_arg", None)
    check = _FILTER_CHECKS.get(name)
    writes = name not in _NO_TEXT_FILTERS

    def bounded(context, value, *args, **kwargs):
        budget = current()
        budget.step()
        if writes and type(value) is not str:
            budget.fits(budget.size(value))
        if check is not None:
            value = check(budget, context, value, *args, **kwargs)
        if passes is _PASS_CONTEXT:
            result = func(context, value, *args, **kwargs)
        elif passes is _PASS_EVAL_CONTEXT:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif passes is _PASS_ENVIRONMENT:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        return budget.built_value(result)

    bounded.__name__ = bounded.__qualname__ = f"bounded_{name}"
    return pass_context(bounded)


def _measured_test(func: Any) -> Any:
    def measured(value: Any) -> bool:
        budget = current()
        budget.fits(budget.size(value))
        return func(value)

    return measured


# --- nodes without a sandbox hook --------------------------------------------------------

class _Steps:
    """A loop's iterable, one step per item."""

    __slots__ = ("_source", "_items", "_budget")

    def __init__(self, source: Any, budget: Budget) -> None:
        self._source, self._items, self._budget = source, iter(source), budget

    def __iter__(self) -> _Steps:
        return self

    def __next__(self) -> Any:
        self._budget.step()
        return next(self._items)

    def __len__(self) -> int:
        return len(self._source)  # TypeError when it has none: LoopContext then counts


@pass_context
def _internal_iterate(context, iterable):
    return _Steps(iterable, current())


@pass_context
def _internal_concat(context, parts):
    budget = current()
    budget.fits(sum(budget.size(part) for part in parts))
    return budget.built_value((markup_join if context.eval_ctx.autoescape else str_join)(parts))


@pass_context
def _internal_container(context, value):
    budget = current()
    budget.fits(budget.size(value))
    return budget.built_value(value)


@pass_context
def _internal_sliced(context, value):
    return current().built_value(value)


INTERNAL_FILTERS = {"agentos.iterate": _internal_iterate, "agentos.concat": _internal_concat,
                    "agentos.container": _internal_container, "agentos.sliced": _internal_sliced}


def _internal(name: str, node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, f"agentos.{name}", [], [], None, None, lineno=node.lineno)


def _constant(node: nodes.Node) -> bool:
    return all(isinstance(child, (nodes.Const, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair))
               for child in node.find_all(nodes.Node))


class _Guards(NodeTransformer):
    """Route loops, ``~``, literals and slices through the internal filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _internal("iterate", node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal("concat", nodes.List(node.nodes, lineno=node.lineno))

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load" or _constant(node):
            return node
        return _internal("container", node)

    visit_List = visit_Tuple = visit_Dict = _literal

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):  # compiled as obj[a:b], past the sandbox's getitem
            return _internal("sliced", node)
        return node


# --- the environment -------------------------------------------------------------------

def _finalize(value: Any) -> Any:
    """Every ``{{ ... }}`` output, before it becomes text: one that is no string yet becomes a
    new one (a loop writing out a long list), so it is counted."""
    if type(value) is not str:
        budget = _active.get() or Budget()
        budget.build(budget.size(value))
    return value


def _concat(parts: Any) -> str:
    """Environment.concat: joins what a macro, a call block, a filter block or a
    ``{% set %}`` block wrote, once it is known to fit."""
    parts = parts if isinstance(parts, list) else list(parts)
    (_active.get() or Budget()).build(sum(map(len, parts)))
    return "".join(parts)


class _FieldLimits:
    """str.format with each field measured before it is written, and the total counted."""

    def __init__(self, env: Any, budget: Budget, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._budget, self._written = budget, 0

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        obj, first = super().get_field(field_name, args, kwargs)
        self._budget.fits(self._budget.size(obj))  # before !r or !s writes it out
        return obj, first

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = self._budget
        numbers = re.findall(r"\d+", format_spec)
        if any(len(number) >= 10 for number in numbers):
            budget.fits(budget.max_chars + 1)
        budget.fits(self._written + budget.size(value) + sum(int(number) for number in numbers))
        text = super().format_field(value, format_spec)
        self._written += len(text)
        budget.fits(self._written)
        return text


class _BoundedFormatter(_FieldLimits, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_FieldLimits, SandboxedEscapeFormatter):
    pass


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the limits of the module docstring.

    Compile with :meth:`compile_body` and render with :meth:`render_bounded`; a template
    compiled otherwise misses the loop, ``~``, literal and slice guards.
    """

    intercepted_binops = frozenset({"+", "-", "*", "**", "%"})

    def __init__(self, *, filters: dict[str, Any] | None = None, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.concat = _concat
        self.filters.update(filters or {})
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}
        self.filters.update(INTERNAL_FILTERS)
        self.globals["namespace"] = HeldNamespace
        for name in ("lower", "upper"):  # str(value).islower()
            self.tests[name] = _measured_test(self.tests[name])

    def compile_body(self, body: str) -> Template:
        tree = _Guards().visit(self.parse(body))
        tree.set_environment(self)
        return self.from_string(tree)

    def render_bounded(self, template: Template, variables: dict[str, Any], budget: Budget) -> str:
        token = _active.set(budget)
        try:
            parts = list(template.generate(variables))
        finally:
            _active.reset(token)
        budget.write(sum(map(len, parts)))
        return "".join(parts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        check = _BINOP_CHECKS.get(operator)
        measured = check(budget, left, right) if check is not None else None
        result = budget.built_value(self.binop_table[operator](left, right))
        if measured is not None and measured[1] and type(result) in (list, tuple):
            budget.remember(result, measured[0])  # list + [item] in a loop: no need to measure it again
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, (str, bytes)):
            if name == "join" and args:
                args = (_joined(budget, owner, args[0]), *args[1:])
            elif name in _STRING_METHOD_CHECKS:
                _STRING_METHOD_CHECKS[name](budget, owner, *args, **kwargs)
        elif isinstance(owner, int) and name == "to_bytes":
            _method_to_bytes(budget, owner, *args, **kwargs)
        elif __obj is generate_lorem_ipsum:
            _call_lipsum(budget, *args, **kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if __obj is dict or __obj is HeldNamespace or __obj is Cycler or name == "fromkeys":
            budget.fits(budget.size(result))  # may hold one argument many times
        return budget.built_value(result)

    def wrap_str_format(self, value: Any) -> Any:
        """As the sandbox's, with a formatter that measures each field before writing it."""
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or value.__name__ not in (
                "format", "format_map"):
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            if isinstance(text, Markup):
                formatter = _BoundedEscapeFormatter(self, current(), escape=text.escape)
            else:
                formatter = _BoundedFormatter(self, current())
            return type(text)(formatter.vformat(text, args, kwargs))

        return update_wrapper(wrapper, value)
