"""Arithmetic, evaluated safely: the expression is parsed with ``ast`` and only numbers and
arithmetic operators are walked; nothing is ever passed to eval."""

from __future__ import annotations

import ast
import math
import operator
import re
from typing import Any

from ..errors import ToolArgumentsError
from .base import Tool, ToolContext, ToolResult

MAX_EXPONENT = 1000  # 9**9**9 would take the machine's memory: refuse big powers
MAX_LENGTH = 200
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"sqrt": math.sqrt, "abs": abs, "round": round, "sin": math.sin, "cos": math.cos}
_CONSTANTS = {"pi": math.pi, "e": math.e}
_WORDS = (
    (r"\bmultiplied by\b", "*"), (r"\bdivided by\b", "/"), (r"\bto the power of\b", "**"),
    (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\btimes\b", "*"), (r"\bover\b", "/"),
    (r"\s*\bsquared\b", "**2"), (r"(?<=\d)\s*x\s*(?=\d)", "*"), (r"\^", "**"),
)  # fmt: skip


def spoken_to_expression(text: str) -> str:
    """ "12 times 7" -> "12 * 7": the words people say for operators."""
    out = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())  # 1,000
    for word, symbol in _WORDS:
        out = re.sub(word, f" {symbol} " if symbol != "**2" else symbol, out)
    return out.strip().rstrip("?.").strip()


def evaluate(expression: str) -> float | int:
    """The value of an arithmetic expression; ToolArgumentsError for anything else."""
    if len(expression) > MAX_LENGTH:
        raise ToolArgumentsError(
            f"calculate: the expression is longer than {MAX_LENGTH} characters"
        )
    try:
        tree = ast.parse(spoken_to_expression(expression), mode="eval")
    except SyntaxError:
        raise ToolArgumentsError(f"calculate: cannot read {expression!r} as arithmetic") from None
    try:
        return _walk(tree.body)
    except ZeroDivisionError:
        raise ToolArgumentsError("calculate: division by zero") from None
    except (OverflowError, ValueError) as exc:
        raise ToolArgumentsError(f"calculate: {exc}") from None


def _walk(node: ast.AST) -> float | int:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponents above {MAX_EXPONENT} are not computed")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_walk(node.operand))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*[_walk(a) for a in node.args])
    raise ToolArgumentsError("calculate: only numbers and + - * / ** % and sqrt, abs, round")


def spoken_number(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class CalculatorTool(Tool):
    name = "calculate"
    description = "Evaluate an arithmetic expression, e.g. '12 * (3 + 4)' or 'sqrt(2)'."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "the arithmetic"}},
        "required": ["expression"],
    }

    async def run(self, args: dict[str, Any]) -> ToolResult:
        value = evaluate(args["expression"])
        return ToolResult(f"{args['expression']} = {spoken_number(value)}", {"value": value})


def tools(context: ToolContext) -> list[Tool]:
    return [CalculatorTool()]
