"""The branch condition language: what it evaluates, what it refuses, and that it is safe."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlroom.graphs.authoring.conditions import ConditionError, compile_condition

CTX: dict[str, Any] = {
    "input": "please refund order 42",
    "output": None,
    "vars": {"priority": "high", "n": 3, "tags": ["a", "b"], "flag": True},
    "has_tool_calls": True,
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("vars.priority == 'high'", True),
        ("vars.priority != 'high'", False),
        ("vars['priority'] == 'high'", True),
        ("vars.priority == 'high' and has_tool_calls", True),
        ("vars.priority == 'low' or not has_tool_calls", False),
        ("not (vars.priority == 'low')", True),
        ("'refund' in input", True),
        ("'refund' not in input", False),
        ("1 < vars.n <= 5", True),
        ("1 < vars.n < 3", False),
        ("-1 < vars.n", True),
        ("vars.n >= 3.0", True),
        ("vars.n in [1, 2, 3]", True),
        ("vars.n in (4, 5)", False),
        ("vars.tags == ['a', 'b']", True),
        ("vars.missing == none", True),
        ("vars.missing == None", True),
        ("output == none", True),
        ("vars.flag == true", True),
        ("vars.flag == True and not false", True),
        ("has_tool_calls", True),
        ("output", False),
        ("'x' in vars", False),
        ("'priority' in vars", True),
    ],
)
def test_evaluates(expr: str, expected: bool) -> None:
    assert compile_condition(expr)(CTX) is expected


@pytest.mark.parametrize(
    "expr",
    [
        "output < 3",  # None < int
        "vars.missing > 0",
        "vars.n < 'a'",
        "3 in input",  # int in str
        "'a' in output",  # in None
        "'a' not in output",
        "vars.tags < 3",
    ],
)
def test_mismatched_types_are_false_not_errors(expr: str) -> None:
    assert compile_condition(expr)(CTX) is False


def test_missing_context_keys_read_as_empty() -> None:
    cond = compile_condition("vars.x == none and output == none and not has_tool_calls")
    assert cond({}) is True
    assert compile_condition("vars.x == 1")({"vars": None}) is False


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("len(input) > 3", "function calls are not allowed"),
        ("vars.__class__", "dunder name `__class__` is not allowed"),
        ("vars['__class__']", "dunder name `__class__` is not allowed"),
        ("input.upper", "attribute access (other than vars.NAME) is not allowed"),
        ("().__class__", "attribute access (other than vars.NAME) is not allowed"),
        ("vars.a.b == 1", "attribute access (other than vars.NAME) is not allowed"),
        ("input[0] == 'p'", "indexing (other than vars['NAME']) is not allowed"),
        ("vars[0]", "key other than a quoted string is not allowed"),
        ("lambda: 1", "lambdas are not allowed"),
        ("vars.n + 1 > 2", "arithmetic is not allowed"),
        ("1 if input else 2", "`x if c else y` expressions are not allowed"),
        ("output is none", "`is` / `is not` are not allowed"),
        ("[x for x in input]", "comprehensions are not allowed"),
        ("{'a': 1}", "dict literals are not allowed"),
        ("f'{input}'", "f-strings are not allowed"),
        ("vars.n in [vars.m]", "list items other than constants are not allowed"),
        ("[[1]]", "list items other than constants are not allowed"),
        ("~vars.n", "the `~` operator is not allowed"),
        ("-input", "a sign (+/-) on anything but a number is not allowed"),
        ("b'x' == input", "the constant b'x' is not allowed"),
        ("os == 1", "the name `os` is not allowed"),
        ("input ==", "is not a valid expression"),
        ("x = 1", "is not a valid expression"),
        ("", "the condition is empty"),
        ("not " * 60 + "input", "nesting deeper than"),
        ("(" * 300 + "1" + ")" * 300, "not a valid expression"),
        ("1 == 1 " + " and 1 == 1" * 300, "longer than"),
    ],
)
def test_rejects_with_a_message_showing_allowed_forms(expr: str, says: str) -> None:
    with pytest.raises(ValueError, match="Allowed forms: comparisons") as info:
        compile_condition(expr)
    assert says in str(info.value)
    assert isinstance(info.value, ConditionError)
    assert says in info.value.problem


def test_column_of_the_problem_is_shown() -> None:
    with pytest.raises(ValueError, match=r"function calls are not allowed \(column 17\)"):
        compile_condition("vars.n == 1 and x()")
    with pytest.raises(ValueError, match=r"function calls are not allowed \(column 19\)"):
        compile_condition("  vars.n == 1 and x()")
    with pytest.raises(ValueError, match=r"function calls are not allowed \(line 2\)"):
        compile_condition("(vars.n == 1\n and x())")


def test_source_is_kept() -> None:
    cond = compile_condition("vars.n == 3")
    assert "vars.n == 3" in repr(cond)


# -- properties -------------------------------------------------------------------------

TOKENS = [
    "vars", "input", "output", "has_tool_calls", "true", "none", "os", "x", ".", "__class__",
    "__globals__", "upper", "(", ")", "[", "]", ",", "'a'", "1", "-", "+", "==", "<", " in ",
    " not ", " and ", " or ", " is ", "lambda", ":", "*", "**", "{", "}", "'__import__'",
    "f'", "import", ";", "=", " if ", " else ",
]  # fmt: skip


def _safe_ast(expr: str) -> None:
    """What a compiled condition may contain: no calls, no dunders, no non-vars attributes."""
    for node in ast.walk(ast.parse(expr.strip(), mode="eval")):
        assert not isinstance(node, ast.Call | ast.Lambda | ast.BinOp | ast.Starred)
        if isinstance(node, ast.Attribute):
            assert not node.attr.startswith("__")
            assert isinstance(node.value, ast.Name)
            assert node.value.id == "vars"
        if isinstance(node, ast.Subscript):
            assert isinstance(node.value, ast.Name)
            assert node.value.id == "vars"
        if isinstance(node, ast.Name):
            assert node.id in {"vars", "input", "output", "has_tool_calls", "true", "false", "none"}


def _check(expr: str) -> None:
    error: ValueError | None = None
    try:
        cond = compile_condition(expr)
    except ValueError as exc:  # anything else fails the test
        error = exc
    if error is not None:
        assert type(error) is ConditionError
        assert "Allowed forms:" in str(error)
        return
    _safe_ast(expr)
    for ctx in (CTX, {}, {"vars": {"a": object(), "__class__": 1}, "output": "a"}):
        assert cond(ctx) in (True, False)


@given(st.text(max_size=200))
@settings(max_examples=400, deadline=None)
def test_any_text_compiles_or_raises_value_error(expr: str) -> None:
    _check(expr)


@given(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join))
@settings(max_examples=1500, deadline=None)
def test_token_soup_never_yields_calls_or_dunders(expr: str) -> None:
    _check(expr)


def test_evaluation_never_calls_values_from_vars() -> None:
    calls: list[str] = []

    class Loud:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            raise AttributeError(name)

        def __call__(self) -> bool:
            calls.append("call")
            return True

    ctx = {"vars": {"obj": Loud()}}
    assert compile_condition("vars.obj != none")(ctx) is True
    assert compile_condition("vars.obj == 1")(ctx) is False
    assert calls == []
