"""calculator: arithmetic by walking a parsed AST with a whitelist; never eval.

Only numbers, + - * / // % **, unary signs, parentheses and a few named functions and
constants are accepted. Sizes are checked before the work that would make them: the
exponent and the result's digit count before ``**``, the operands' digits before ``*``,
``round``'s digit count before rounding (``round(1, -10**7)`` builds a 10-million-digit
number), and every intermediate result after; a result that is not a real number (a
negative number to a fractional power) is refused. So ``9**9**9`` is refused at once, and
the tool process's own limits (tools/sandbox.py) stand behind these checks.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from tools.registry import ToolError, register

MAX_LENGTH = 500
MAX_EXPONENT = 1000
MAX_RESULT_DIGITS = 1000

BINARY: dict[type, Callable] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
UNARY: dict[type, Callable] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
MAX_RESULT_BITS = int(MAX_RESULT_DIGITS * 3.33)


def _round(number: float | int, ndigits: float | int | None = None) -> float | int:
    if ndigits is None:
        return round(number)
    if not isinstance(ndigits, int):
        raise ToolError("round()'s second argument must be a whole number")
    if abs(ndigits) > MAX_RESULT_DIGITS:
        raise ToolError(f"round() to more than {MAX_RESULT_DIGITS} digits is not supported")
    return round(number, ndigits)


FUNCTIONS: dict[str, Callable] = {
    "sqrt": math.sqrt, "abs": abs, "round": _round, "min": min, "max": max, "floor": math.floor,
    "ceil": math.ceil, "log": math.log, "log10": math.log10, "exp": math.exp,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
OPERATOR_NAMES = {ast.BitXor: "^ (use ** for powers)", ast.BitAnd: "&", ast.BitOr: "|", ast.LShift: "<<",
                  ast.RShift: ">>", ast.MatMult: "@", ast.Invert: "~", ast.Not: "not"}


class CalculatorArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expression: str = Field(min_length=1, max_length=MAX_LENGTH,
                            description="Arithmetic such as '(12.5 + 7) * 3 / 2', 'sqrt(2)' or '2 ** 10'.")


def _check_size(value: float | int) -> float | int:
    if isinstance(value, complex):
        raise ToolError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        raise ToolError(f"intermediate result has more than {MAX_RESULT_DIGITS} digits")
    if isinstance(value, float) and math.isinf(value):
        raise ToolError("result is too large")
    return value


def _power(base: float | int, exponent: float | int) -> float | int:
    if base < 0 and isinstance(exponent, float) and not exponent.is_integer():
        raise ToolError(f"{base} ** {exponent} is not a real number (a negative number to a fractional power)")
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponent {exponent} is larger than {MAX_EXPONENT}")
    if base not in (0, 1, -1) and abs(exponent) * math.log10(max(abs(base), 1e-300)) > MAX_RESULT_DIGITS:
        raise ToolError(f"result of {base} ** {exponent} would have more than {MAX_RESULT_DIGITS} digits")
    return base**exponent


def _evaluate(node: ast.AST) -> float | int:  # noqa: C901 - one branch per accepted node type
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.BinOp):
        if type(node.op) not in BINARY:
            raise ToolError(f"operator {OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)} is not allowed")
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        if isinstance(node.op, ast.Mult) and isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_RESULT_BITS + 1:
            raise ToolError(f"intermediate result has more than {MAX_RESULT_DIGITS} digits")
        return _check_size(BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in UNARY:
            raise ToolError(f"operator {OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)} is not allowed")
        return UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise ToolError(f"unknown name '{node.id}' (allowed: {', '.join(sorted(CONSTANTS))})")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else "this"
            raise ToolError(f"function '{name}' is not allowed (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords or not node.args or len(node.args) > 50:
            raise ToolError(f"{node.func.id}() takes 1 to 50 positional numbers")
        return _check_size(FUNCTIONS[node.func.id](*[_evaluate(arg) for arg in node.args]))
    raise ToolError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def calculate(expression: str) -> float | int:
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise ToolError(f"not a valid expression: {error.msg}") from None
    except (RecursionError, MemoryError):
        raise ToolError("the expression is nested too deeply") from None
    try:
        value = _evaluate(tree)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (OverflowError, ValueError, TypeError) as error:
        raise ToolError(f"cannot compute: {error}") from None
    except RecursionError:
        raise ToolError("the expression is nested too deeply") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


# Pure: runs in a tool process (tools/sandbox.py), killed at its timeout whatever the input.
@register(name="calculator", args=CalculatorArgs, timeout_s=5.0, pure=True,
          description="Evaluate an arithmetic expression exactly: + - * / // % **, parentheses, "
                      "sqrt, abs, round, min, max, floor, ceil, log, log10, exp, pi, e.")
def calculator(arguments: CalculatorArgs, context: object) -> dict:
    return {"expression": arguments.expression, "result": calculate(arguments.expression)}
