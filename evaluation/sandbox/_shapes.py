"""Which hidden-test statements the harness decides itself, outside the program's process.

One text for both sides: the harness (``_programs.HARNESS``) runs this module's source
inside the sandbox to plan each test, and ``evaluation.suites`` classifies tests with it
when a suite loads, so what is flagged as forgeable is exactly what the harness leaves to
the program's process. Only ``ast`` and ``builtins``: it runs under ``python3 -I -S``.

An ``assert`` is decided outside only when it reduces to ``<call> <op> <literal>``, with
``<op>`` one of ``==``, ``!=``, ``is``, ``is not`` (``is`` only with True, False or None)
and ``<call>`` a call of a name that is neither a builtin nor bound by the test (so the
program's own function), or a method call on an object the test made with one such call
and binds nowhere else (``c = LRUCache(2)`` then ``c.get(1)``): the runner sends the
call's result as plain built-in data and the harness compares it. ``not``, ``bool(...)``
and comparing a comparison with True or False (``is``, ``is not``, ``==``, ``!=``) are
folded into the operator:
``(f(x) == 4) is True``, ``bool(f(x) == 4) == True`` and ``not (f(x) != 4)`` are all
``f(x) == 4``. Anything else (a chained comparison, ``in``, ``<``, an operator, builtin
or test helper applied to the program's result) runs inside the program's process.
"""

from __future__ import annotations

import ast
import builtins

SHAPE_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not"}
SHAPE_NEGATED = {"==": "!=", "!=": "==", "is": "is not", "is not": "is"}
SHAPE_BUILTINS = frozenset(dir(builtins))


def shape_literal(node: ast.AST | None) -> tuple[bool, object]:
    """(True, value) when the node is a literal, else (False, None)."""
    if node is None:
        return False, None
    try:
        return True, ast.literal_eval(node)
    except Exception:
        return False, None


def shape_objects(tree: ast.Module, bound: frozenset[str]) -> frozenset[str]:
    """The names the test binds once only, at its top level, to a call of the program's
    own function (``c = LRUCache(2)``): a method of theirs is the program's code."""
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            counts[node.id] = counts.get(node.id, 0) + 1
    return frozenset(
        stmt.targets[0].id
        for stmt in tree.body
        if isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and counts.get(stmt.targets[0].id) == 1
        and _is_plain_call(stmt.value, bound, frozenset())
    )


def shape_bound(tree: ast.Module) -> frozenset[str] | None:
    """The names a test binds anywhere (assigned, defined, imported); None when it has
    ``import *`` (then any name may be the test's)."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    return None
                bound.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return frozenset(bound)


def shape_holds(got: object, op: str, want: object) -> bool:
    """The harness's comparison of a plain value with the test's literal."""
    if op == "is":
        return got is want
    if op == "is not":
        return got is not want
    return (got == want) if op == "==" else (got != want)


def shape_assert(
    test: ast.expr, bound: frozenset[str], objects: frozenset[str]
) -> tuple[str, str, object] | None:
    """(call, op, literal) the harness checks for an assert's expression, or None when
    the assert runs inside the program's process."""
    return _reduce(test, True, bound, objects)


def _reduce(
    node: ast.expr, positive: bool, bound: frozenset[str], objects: frozenset[str]
) -> tuple[str, str, object] | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _reduce(node.operand, not positive, bound, objects)
    if _is_bool_call(node, bound):
        return _reduce(node.args[0], positive, bound, objects)  # type: ignore[attr-defined]
    if not (
        isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in SHAPE_OPS
    ):
        return None
    op = SHAPE_OPS[type(node.ops[0])]
    sides = (node.left, node.comparators[0])
    for known, other in (sides[::-1], sides):
        ok, want = shape_literal(known)
        if not ok:
            continue
        if type(want) is bool and _is_truth(other, bound):  # (f(x) == 4) is True, == False...
            same = want is (op in ("==", "is"))
            return _reduce(other, positive == same, bound, objects)
        if op in ("is", "is not") and not any(want is s for s in (True, False, None)):
            return None
        if _is_plain_call(other, bound, objects):
            return ast.unparse(other), op if positive else SHAPE_NEGATED[op], want
        return None
    return None


def _is_bool_call(node: ast.expr, bound: frozenset[str]) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "bool"
        and "bool" not in bound
        and len(node.args) == 1
        and not isinstance(node.args[0], ast.Starred)
        and not node.keywords
    )


def _is_truth(node: ast.expr, bound: frozenset[str]) -> bool:
    """Whether the node is itself a truth value to fold (a comparison, not, bool())."""
    negation = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
    return isinstance(node, ast.Compare) or negation or _is_bool_call(node, bound)


def _is_plain_call(node: ast.expr, bound: frozenset[str], objects: frozenset[str]) -> bool:
    """A call of the program's own function or of a method of an object it made: its
    result goes to the harness untouched."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id in objects
    return isinstance(func, ast.Name) and func.id not in SHAPE_BUILTINS and func.id not in bound


def shape_raises(stmt: ast.stmt) -> tuple[dict[str, str], tuple[str, str]] | None:
    """``try: <statements>; raise AssertionError(...) / except Name: pass``: the runner
    runs the statements and names the exception's classes, the harness checks the name.
    (step for the runner, (exception name, reason when nothing is raised)), or None."""
    if not (
        isinstance(stmt, ast.Try)
        and len(stmt.handlers) == 1
        and not stmt.orelse
        and not stmt.finalbody
        and len(stmt.body) >= 2
    ):
        return None
    handler, last = stmt.handlers[0], stmt.body[-1]
    if not (
        isinstance(handler.type, ast.Name)
        and handler.name is None
        and len(handler.body) == 1
        and isinstance(handler.body[0], ast.Pass)
        and isinstance(last, ast.Raise)
        and last.cause is None
    ):
        return None
    exc = last.exc.func if isinstance(last.exc, ast.Call) else last.exc
    if not (isinstance(exc, ast.Name) and exc.id == "AssertionError"):
        return None
    message = last.exc.args[0] if isinstance(last.exc, ast.Call) and last.exc.args else None
    ok, text = shape_literal(message)
    why = "AssertionError: " + text if ok and isinstance(text, str) else "AssertionError"
    body = ast.unparse(ast.Module(body=stmt.body[:-1], type_ignores=[]))
    return {"raises": body}, (handler.type.id, why)


def shape_plan(source: str) -> list[tuple[dict[str, str], tuple[str, object] | None]]:
    """The test's steps for the runner, each with what the harness checks its reply
    against (None: the step runs in the program's process and only must not raise)."""
    tree = ast.parse(source)
    bound = shape_bound(tree)
    objects = shape_objects(tree, bound) if bound is not None else frozenset()
    steps: list[tuple[dict[str, str], tuple[str, object] | None]] = []
    for stmt in tree.body:
        decided = None
        if isinstance(stmt, ast.Assert) and bound is not None:
            decided = shape_assert(stmt.test, bound, objects)
        if decided is not None:
            steps.append(({"value": decided[0]}, (decided[1], decided[2])))
        else:
            steps.append(shape_raises(stmt) or ({"exec": ast.unparse(stmt)}, None))
    return steps
