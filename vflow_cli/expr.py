"""expr: a safe expression over a packet's fields (`vflow select 'len(objects) >= 8'`).

    text ──ast.parse──> tree ──check(): only the node types and names below──> Expression
    Expression(packet) ──walks the tree itself (never eval or compile)──> a value

Python's own syntax, parsed with `ast`, but run by a small interpreter of its own that knows
a whitelist of nodes: constants, names (a packet's fields; comprehension variables), `a.b`
and `a["b"]` (a key of a map, an index of a list: never a Python attribute), comparisons,
and/or/not, arithmetic on numbers, `x if c else y`, list and tuple displays, generator
expressions and the functions in FUNCTIONS. Anything else (a lambda, an import, a name or
key that starts with "_", keyword arguments, `**`) is refused when the expression is read.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "any": any,
    "all": all,
    "min": min,
    "max": max,
    "abs": abs,
    "sum": sum,
    "round": round,
}
# a frame without detections has no objects field: len(objects) is 0 then
DEFAULTS: dict[str, list[Any]] = {"objects": []}
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
UNARY: dict[type, Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
ALLOWED = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.BinOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.List,
    ast.Tuple,
    ast.GeneratorExp,
    ast.ListComp,
    ast.comprehension,
    *COMPARE,
    *ARITHMETIC,
    *UNARY,
)
MAX_LENGTH = 2000  # characters of an expression


class Refused(ValueError):
    """The expression is not one this module runs; the message says what and why."""


class Undefined(Exception):
    """The packet lacks a field the expression needs, or a value has the wrong type: the
    expression is false for that packet."""


def _describe(node: ast.AST) -> str:
    try:
        return ast.unparse(node)[:60]
    except Exception:
        return type(node).__name__


def check(text: str) -> ast.Expression:
    """Parse and check an expression; Refused names the first thing not allowed."""
    if len(text) > MAX_LENGTH:
        raise Refused(f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise Refused(f"not an expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED):
            what = {ast.Lambda: "a lambda", ast.Pow: "**"}.get(type(node), type(node).__name__)
            raise Refused(f"{what} is not allowed ({_describe(node)})")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise Refused(f"names starting with _ are not allowed ({node.id})")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise Refused(f"fields starting with _ are not allowed (.{node.attr})")
        if isinstance(node, ast.Constant) and not isinstance(
            node.value, (int, float, str, bool, type(None))
        ):
            raise Refused(f"a constant of type {type(node.value).__name__} is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise Refused(f"only {', '.join(FUNCTIONS)} can be called ({_describe(node.func)})")
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise Refused(f"keyword and * arguments are not allowed ({_describe(node)})")
        if isinstance(node, ast.comprehension) and (node.is_async or not _plain(node.target)):
            raise Refused("a comprehension's variable must be a plain name")
    return tree


def _plain(target: ast.AST) -> bool:
    return isinstance(target, ast.Name)


class Expression:
    """A checked expression; call it on a packet for its value (Undefined when the packet
    lacks what it needs)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tree = check(text)

    def __call__(self, packet: dict[str, Any]) -> Any:
        try:
            return _eval(self.tree.body, packet, {})
        except Undefined:
            raise
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, IndexError) as exc:
            raise Undefined(str(exc)) from None
        except RecursionError:
            raise Undefined("nested too deep") from None

    def test(self, packet: dict[str, Any]) -> bool:
        """True or false for the packet; false when it lacks what the expression needs."""
        try:
            return bool(self(packet))
        except Undefined:
            return False


def _key(value: Any, key: Any) -> Any:
    """value[key] for maps and lists only (a Python object's attributes are never read)."""
    if isinstance(value, dict):
        if key not in value:
            raise Undefined(f"no field {key!r}")
        return value[key]
    if isinstance(value, (list, tuple, str)) and isinstance(key, (int, slice)):
        try:
            return value[key]
        except IndexError:
            raise Undefined(f"no item {key}") from None
    raise Undefined(f"{type(value).__name__} has no field {key!r}")


def _number(value: Any) -> Any:
    if isinstance(value, (int, float)):  # bool is an int
        return value
    raise Undefined(f"{type(value).__name__} is not a number")


def _eval(node: ast.AST, packet: dict[str, Any], names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        if node.id in packet:
            return packet[node.id]
        if node.id in DEFAULTS:
            return list(DEFAULTS[node.id])
        if node.id in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[node.id]
        raise Undefined(f"no field {node.id!r}")
    if isinstance(node, ast.Attribute):
        return _key(_eval(node.value, packet, names), node.attr)
    if isinstance(node, ast.Subscript):
        value = _eval(node.value, packet, names)
        if isinstance(node.slice, ast.Slice):
            parts = (node.slice.lower, node.slice.upper, node.slice.step)
            bounds = [None if p is None else _eval(p, packet, names) for p in parts]
            return _key(value, slice(*bounds))
        key = _eval(node.slice, packet, names)
        if isinstance(key, str) and key.startswith("_"):
            raise Undefined(f"no field {key!r}")
        return _key(value, key)
    if isinstance(node, ast.BoolOp):
        is_and = isinstance(node.op, ast.And)
        result: Any = is_and
        for item in node.values:
            result = _eval(item, packet, names)
            if bool(result) != is_and:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, packet, names)
        if not isinstance(node.op, ast.Not):
            operand = _number(operand)
        return UNARY[type(node.op)](operand)
    if isinstance(node, ast.BinOp):
        left = _number(_eval(node.left, packet, names))
        right = _number(_eval(node.right, packet, names))
        return ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, packet, names)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, packet, names)
            if not COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        test = _eval(node.test, packet, names)
        return _eval(node.body if test else node.orelse, packet, names)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(a, packet, names) for a in node.args]
        return FUNCTIONS[node.func.id](*args)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, packet, names) for e in node.elts]
    if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
        return list(_comprehend(node.elt, node.generators, packet, names))
    raise Undefined(f"cannot evaluate {type(node).__name__}")  # check() lets none through


def _comprehend(
    elt: ast.AST, generators: list[ast.comprehension], packet: dict[str, Any], names: dict
) -> Any:
    first, rest = generators[0], generators[1:]
    assert isinstance(first.target, ast.Name)
    items = _eval(first.iter, packet, names)
    if not isinstance(items, (list, tuple, dict, str)):
        raise Undefined(f"cannot go through a {type(items).__name__}")
    for item in items:
        inner = {**names, first.target.id: item}
        if all(_eval(cond, packet, inner) for cond in first.ifs):
            if rest:
                yield from _comprehend(elt, rest, packet, inner)
            else:
                yield _eval(elt, packet, inner)
