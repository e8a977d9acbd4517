"""Static checks of a code case's hidden tests against its reference solution.

A suite that fails every model (a test uses a name nothing defines), passes every model
(a test checks nothing) or cannot pass its own reference (the reference lacks the entry
point) is refused when it loads. A test whose verdict is taken inside the program's
process (the harness's own plan, ``evaluation.sandbox._shapes``, says which statements it
decides outside) is only flagged: a program written to game it can pass it.
"""

from __future__ import annotations

import ast
import builtins
import symtable

from evaluation.sandbox._shapes import shape_plan

BUILTINS = frozenset(dir(builtins))


def defined_names(source: str) -> set[str]:
    """The names a module defines at its top level (functions, classes, assignments,
    imports)."""
    table = symtable.symtable(source, "source", "exec")
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def free_names(test: str) -> set[str]:
    """The names a test reads without defining or importing them, builtins excluded (in
    comprehensions and nested functions too); none for a test with ``import *``."""
    if any(
        isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
        for node in ast.walk(ast.parse(test))
    ):
        return set()
    read: set[str] = set()

    def visit(table: symtable.SymbolTable) -> None:
        module = table.get_type() == "module"
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (module or symbol.is_global()):
                read.add(symbol.get_name())
        for child in table.get_children():
            visit(child)

    visit(symtable.symtable(test, "test", "exec"))
    return read - BUILTINS - defined_names(test)


def checks_nothing(test: str, solution_names: set[str]) -> bool:
    """Whether a test never reads a name the solution defines: then it passes or fails
    alike for every program (``pass``, ``assert True``, a comment)."""
    return not (_read_names(test) & solution_names)


def _read_names(test: str) -> set[str]:
    return {
        node.id
        for node in ast.walk(ast.parse(test))
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }


def checked_in_process(test: str) -> bool:
    """Whether some statement of the test checks something (an assert or a raise) in a
    form the harness does not decide itself outside the program's process (its plan,
    ``evaluation.sandbox._shapes.shape_plan``, leaves it to the program: an ``exec`` step)."""
    planned = shape_plan(test)
    for statement, (step, _) in zip(ast.parse(test).body, planned, strict=True):
        if "exec" not in step:
            continue
        if any(isinstance(node, ast.Assert | ast.Raise) for node in ast.walk(statement)):
            return True
    return False
