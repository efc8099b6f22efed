"""The layout rules import-linter cannot state: no import cycles among controlroom's
modules at all, and no module over 500 lines.

Run it as ``python -m tests.layout.check_layout`` (``make contracts`` does); the test suite
runs the same checks (``tests/layout/test_layout.py``). Imports under ``TYPE_CHECKING`` and
inside functions count: a cycle hidden in either still couples the modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

MAX_LINES = 500
PACKAGE = Path(__file__).resolve().parents[2] / "controlroom"


def import_cycles(package: str = "controlroom") -> list[list[str]]:
    """Every group of modules that import each other, directly or around a loop (Tarjan)."""
    graph = grimp.build_graph(package, cache_dir=None)
    imports = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:  # iterative, so a deep import chain cannot overflow
        work = [(start, iter(imports[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(imports[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return sorted(groups)


def oversized_modules(root: Path = PACKAGE, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """Modules longer than ``limit`` lines, longest first."""
    sizes = [
        (str(path.relative_to(root.parent)), len(path.read_text(encoding="utf-8").splitlines()))
        for path in sorted(root.rglob("*.py"))
    ]
    return sorted(((p, n) for p, n in sizes if n > limit), key=lambda item: -item[1])


def main() -> int:
    problems = [f"import cycle: {' <-> '.join(group)}" for group in import_cycles()] + [
        f"{path}: {lines} lines (at most {MAX_LINES})" for path, lines in oversized_modules()
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("layout: no import cycles, every module at most 500 lines")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
