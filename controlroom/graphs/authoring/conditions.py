"""A tiny, safe condition language for branch steps.

A condition is a Python-like expression that is parsed with :mod:`ast` and evaluated by
walking a whitelist of node types; nothing is ever passed to ``eval`` or ``exec``, and no
function, method or dunder attribute can be reached. Examples::

    vars.priority == 'high' and not has_tool_calls
    'refund' in input or vars.amount >= 1000
    output != none and (vars['retries'] < 3 or vars.force == true)
    vars.status in ['open', 'pending']

Names: ``input`` (str), ``output`` (str or None), ``vars`` (a dict; ``vars.x`` and
``vars['x']`` read key ``x``, a missing key reads as ``none``), ``has_tool_calls`` (bool),
and the constants ``true``/``false``/``none`` (or ``True``/``False``/``None``).
Comparisons between values of mismatched types (``none < 3``) are false, never errors.
"""

from __future__ import annotations

import ast
import operator
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["ALLOWED_FORMS", "CompiledCondition", "ConditionError", "compile_condition"]

ALLOWED_FORMS = (
    "comparisons (==, !=, <, <=, >, >=, in, not in, chains like 1 < vars.n <= 5), "
    "`and`/`or`/`not`, parentheses, string/number constants, true/false/none, "
    "lists of constants like ['a', 'b'], and the names input, output, has_tool_calls, "
    "vars.NAME and vars['NAME']"
)

MAX_LENGTH = 2000

_Eval = Callable[[Mapping[str, Any]], Any]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}

_CONSTANT_NAMES: dict[str, Any] = {"true": True, "false": False, "none": None}
_CONTEXT_NAMES = ("input", "output", "has_tool_calls", "vars")

MAX_DEPTH = 50

_DESCRIBE: dict[type[ast.AST], str] = {
    ast.Call: "function calls are",
    ast.Lambda: "lambdas are",
    ast.Subscript: "indexing (other than vars['NAME']) is",
    ast.Attribute: "attribute access (other than vars.NAME) is",
    ast.BinOp: "arithmetic is",
    ast.IfExp: "`x if c else y` expressions are",
    ast.NamedExpr: "assignments are",
    ast.Dict: "dict literals are",
    ast.Set: "set literals are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are",
    ast.JoinedStr: "f-strings are",
    ast.Starred: "`*` unpacking is",
    ast.Await: "`await` is",
    ast.Yield: "`yield` is",
    ast.YieldFrom: "`yield` is",
    ast.Slice: "slices are",
}


class ConditionError(ValueError):
    """A condition that does not parse or uses something outside the whitelist."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"{problem}. Allowed forms: {ALLOWED_FORMS}.")
        self.problem = problem


class _Rejected(Exception):
    """What is wrong, as a full phrase, and the node where it is."""

    def __init__(self, what: str, node: ast.AST) -> None:
        super().__init__(what)
        self.what = what
        self.line: int = getattr(node, "lineno", 1)
        self.col: int = getattr(node, "col_offset", 0)


class CompiledCondition:
    """A checked condition; call it with a mapping of input/output/vars/has_tool_calls."""

    __slots__ = ("_eval", "source")

    def __init__(self, source: str, evaluate: _Eval) -> None:
        self.source = source
        self._eval = evaluate

    def __call__(self, context: Mapping[str, Any]) -> bool:
        return bool(self._eval(context))

    def __repr__(self) -> str:
        return f"CompiledCondition({self.source!r})"


def compile_condition(expr: str) -> Callable[[Mapping[str, Any]], bool]:
    """Parse and check ``expr``; raise ``ValueError`` naming what is not allowed."""
    if not isinstance(expr, str):
        raise ConditionError(f"a condition must be a string, not {type(expr).__name__}")
    shown = expr if len(expr) <= 120 else expr[:117] + "..."
    if not expr.strip():
        raise ConditionError("the condition is empty")
    if len(expr) > MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {MAX_LENGTH} characters")
    source = expr.strip()
    lead = len(expr) - len(expr.lstrip())
    try:
        with warnings.catch_warnings():  # e.g. a SyntaxWarning for an invalid escape
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
        evaluate = _compile(tree.body, 0)
    except _Rejected as exc:
        where = f"column {exc.col + 1 + lead}" if exc.line == 1 else f"line {exc.line}"
        raise ConditionError(f"condition `{shown}`: {exc.what} ({where})") from None
    except SyntaxError as exc:
        raise ConditionError(f"condition `{shown}` is not a valid expression ({exc.msg})") from None
    except (RecursionError, MemoryError):
        raise ConditionError(f"condition `{shown}` is nested too deeply") from None
    except ValueError as exc:  # e.g. null bytes in the source on some Python versions
        raise ConditionError(f"condition {shown!r} is not valid ({exc})") from None
    return CompiledCondition(expr, evaluate)


def _compile(node: ast.expr, depth: int) -> _Eval:
    if depth > MAX_DEPTH:
        raise _Rejected(f"nesting deeper than {MAX_DEPTH} levels is not allowed", node)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, depth + 1) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda ctx: all(bool(p(ctx)) for p in parts)
        return lambda ctx: any(bool(p(ctx)) for p in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _compile(node.operand, depth + 1)
        return lambda ctx: not inner(ctx)
    if isinstance(node, ast.Compare):
        return _compile_compare(node, depth)
    if isinstance(node, ast.Constant | ast.UnaryOp | ast.List | ast.Tuple):
        value = _literal(node, allow_sequence=True)
        return lambda _ctx: value
    if isinstance(node, ast.Name):
        return _compile_name(node)
    if isinstance(node, ast.Attribute | ast.Subscript):
        key = _vars_key(node)
        return lambda ctx: _vars(ctx).get(key)
    what = _DESCRIBE.get(type(node), f"{type(node).__name__} expressions are")
    raise _Rejected(f"{what} not allowed", node)


def _compile_compare(node: ast.Compare, depth: int) -> _Eval:
    for op in node.ops:
        if type(op) not in _COMPARE:
            raise _Rejected("`is` / `is not` are not allowed (use == or !=)", node)
    left = _compile(node.left, depth + 1)
    rights = [_compile(c, depth + 1) for c in node.comparators]
    ops = [_COMPARE[type(op)] for op in node.ops]

    def compare(ctx: Mapping[str, Any]) -> bool:
        a = left(ctx)
        for op, right in zip(ops, rights, strict=True):
            b = right(ctx)
            try:
                if not op(a, b):
                    return False
            except TypeError:  # mismatched types, e.g. none < 3 or 3 in 'abc'
                return False
            a = b
        return True

    return compare


def _compile_name(node: ast.Name) -> _Eval:
    name = node.id
    if name in _CONSTANT_NAMES:
        value = _CONSTANT_NAMES[name]
        return lambda _ctx: value
    if name == "vars":
        return _vars
    if name == "has_tool_calls":
        return lambda ctx: bool(ctx.get("has_tool_calls", False))
    if name in _CONTEXT_NAMES:
        return lambda ctx: ctx.get(name)
    known = ", ".join([*_CONTEXT_NAMES, *_CONSTANT_NAMES])
    raise _Rejected(f"the name `{name}` is not allowed (known names: {known})", node)


def _vars(ctx: Mapping[str, Any]) -> Mapping[str, Any]:
    value = ctx.get("vars")
    return value if isinstance(value, Mapping) else {}


def _vars_key(node: ast.Attribute | ast.Subscript) -> str:
    if not (isinstance(node.value, ast.Name) and node.value.id == "vars"):
        raise _Rejected(f"{_DESCRIBE[type(node)]} not allowed", node)
    if isinstance(node, ast.Attribute):
        key = node.attr
    elif isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        key = node.slice.value
    else:
        raise _Rejected("a vars[...] key other than a quoted string is not allowed", node)
    if key.startswith("__"):
        raise _Rejected(f"the dunder name `{key}` is not allowed", node)
    return key


def _literal(node: ast.expr, *, allow_sequence: bool = False) -> Any:
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise _Rejected(f"the constant {value!r:.40} is not allowed", node)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        if isinstance(node.operand, ast.Constant):
            value = node.operand.value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value if isinstance(node.op, ast.USub) else value
        raise _Rejected("a sign (+/-) on anything but a number is not allowed", node)
    if isinstance(node, ast.UnaryOp):
        raise _Rejected("the `~` operator is not allowed", node)
    if allow_sequence and isinstance(node, ast.List | ast.Tuple):
        items = [_literal(element) for element in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Name) and node.id in _CONSTANT_NAMES:
        return _CONSTANT_NAMES[node.id]
    raise _Rejected("list items other than constants are not allowed", node)
