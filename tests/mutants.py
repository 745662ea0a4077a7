"""A small mutation check: one edit to a module, the quick tests that cover it, red (killed) or green
(survived). Not run by CI (minutes a module); tests/README.md keeps the last record and what each survivor
means.

    python tests/mutants.py [--per-module N] [--seed S] [--only MODULE ...] [--out FILE.json]

Each mutant is one of: a comparison turned around (== and !=, < and <=, > and >=, in and not in, is and is
not), `and` and `or` swapped, a `not` dropped, True and False swapped, a whole number moved by one, a
`raise` or an augmented assignment (`problems += ...`) replaced by `pass`, a `return` of a value replaced by
`return None`. Mutants are listed in source order; N of them per module are drawn with the seed. Each runs
in a copy of the tree (the working tree is never touched) with `pytest -m "not slow" -x -n 0` on the
module's covering tests, under a time limit of five times what the unmutated tests took just before (a
mutant that makes a test hang counts as killed: a user would see it). The copy also holds the tests, so a mutant is judged by today's tests.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COVERING = {  # module: the quick tests that exercise it
    "recipe/settings.py": ["tests/test_settings.py", "tests/test_check.py"],
    "recipe/check.py": ["tests/test_check.py"],
    "recipe/runs.py": ["tests/test_runs.py", "tests/test_wiring.py", "tests/test_ranks.py"],
    "recipe/export.py": ["tests/test_gguf.py", "tests/test_wiring.py"],
    "recipe/evaluate.py": ["tests/test_evaluate.py", "tests/test_wiring.py"],
    "verifier/judge.py": ["tests/test_verifier.py", "tests/test_rewards.py"],
}
SWAP = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}  # fmt: skip


def docstring_nodes(tree) -> set[int]:
    """ids of the docstring constants (never mutated)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def mutations(tree) -> list[tuple[int, str]]:
    """(index of the node in ast.walk order, what the edit is) for every mutant of the module."""
    skip, found = docstring_nodes(tree), []
    for index, node in enumerate(ast.walk(tree)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP:
            found.append((index, f"line {line}: {type(node.ops[0]).__name__} -> {SWAP[type(node.ops[0])].__name__}"))
        elif isinstance(node, ast.BoolOp):
            found.append((index, f"line {line}: {type(node.op).__name__.lower()} swapped"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append((index, f"line {line}: `not` dropped"))
        elif isinstance(node, ast.Constant) and id(node) not in skip:
            if isinstance(node.value, bool):
                found.append((index, f"line {line}: {node.value} -> {not node.value}"))
            elif isinstance(node.value, int):
                found.append((index, f"line {line}: {node.value} -> {node.value + 1}"))
        elif isinstance(node, (ast.Raise, ast.AugAssign)):
            found.append((index, f"line {line}: {type(node).__name__} -> pass"))
        elif isinstance(node, ast.Return) and node.value is not None:
            found.append((index, f"line {line}: return value -> None"))
    return found


class Mutate(ast.NodeTransformer):
    def __init__(self, target: int, order: dict[int, int]):
        self.target, self.order = target, order

    def generic_visit(self, node):
        node = super().generic_visit(node)
        if self.order.get(id(node)) != self.target:
            return node
        if isinstance(node, ast.Compare):
            node.ops[0] = SWAP[type(node.ops[0])]()
        elif isinstance(node, ast.BoolOp):
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node, ast.Constant):
            node.value = (not node.value) if isinstance(node.value, bool) else node.value + 1
        elif isinstance(node, (ast.Raise, ast.AugAssign)):
            return ast.copy_location(ast.Pass(), node)
        elif isinstance(node, ast.Return):
            node.value = ast.Constant(None)
        return node


def mutant_source(source: str, target: int) -> str:
    tree = ast.parse(source)
    order = {id(node): index for index, node in enumerate(ast.walk(tree))}
    return ast.unparse(ast.fix_missing_locations(Mutate(target, order).visit(tree)))


def run_tests(copy: Path, tests: list[str], limit: float) -> str:
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-m", "not slow", "-p", "no:randomly", *tests]
    try:
        done = subprocess.run(command, cwd=copy, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return "killed (time limit)"
    return {0: "survived", 1: "killed"}.get(done.returncode, f"error (exit {done.returncode})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-module", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=list(COVERING))
    parser.add_argument("--limit", type=float, default=300.0, help="seconds a mutant's tests may take at least")
    parser.add_argument("--out", default="mutants.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "tree"
        ignore = shutil.ignore_patterns(".git", ".venv*", "outputs", "__pycache__", ".pytest_cache", ".hypothesis")
        shutil.copytree(ROOT, copy, ignore=ignore)
        for module in args.only:
            began = time.monotonic()
            baseline = run_tests(copy, COVERING[module], 4 * args.limit)  # right before its mutants: same load
            if baseline != "survived":
                print(f"{module}: its covering tests fail without any mutation ({baseline}); skipped", flush=True)
                continue
            limit = max(args.limit, 5 * (time.monotonic() - began))  # a mutant may take 5x the unmutated run
            source = (ROOT / module).read_text()
            found = mutations(ast.parse(source))
            chosen = sorted(random.Random(args.seed).sample(found, min(args.per_module, len(found))))
            for index, what in chosen:
                began = time.monotonic()
                (copy / module).write_text(mutant_source(source, index))
                outcome = run_tests(copy, COVERING[module], limit)
                (copy / module).write_text(source)
                results.append(dict(module=module, mutant=what, outcome=outcome, seconds=round(time.monotonic() - began)))
                print(f"{module:22} {what:45} {outcome}", flush=True)
            total = [r for r in results if r["module"] == module]
            killed = sum(r["outcome"].startswith("killed") for r in total)
            print(f"{module}: {killed} of {len(total)} killed ({len(found)} mutants in all)", flush=True)
            Path(args.out).write_text(json.dumps(results, indent=1) + "\n")  # after each module: a stop keeps it
    return 0


if __name__ == "__main__":
    sys.exit(main())
