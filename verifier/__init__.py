"""Is an answer equal to the reference? The one verifier behind the answer rewards and the evaluation.

    >>> answers_equal("\\\\boxed{\\\\dfrac{1}{2}}", "0.5"), answers_equal("6 - 5", "6 - 5i")
    (True, False)

A wrong verdict is a wrong training signal, and a wrong answer that is paid is the worse of the two
(GRPO learns to exploit it), so every rule below refuses when in doubt. docs/rewards.md ("What counts as
equal") has the same rules as a table; tests/test_verifier.py has a table of cases for each kind.

1. Cleaning removes only what cannot change a value, from closed lists: `$...$`, `\\boxed{}` (several
   boxes are several answers when symbols, a comma, "and" or "or" stand between them; other words
   between them make the answer malformed; words around them are not read), spacing, `\\left`/`\\right`,
   `\\dfrac`/`\\cfrac` -> `\\frac`, `bmatrix` -> `pmatrix`, `{,}`, a `\\text{}` around the whole answer, a
   full stop, what follows `\\approx`, and the units in UNITS. Never "any trailing word": `6 - 5i`, `2k`
   and `3+2x` keep their letters, and `5 apples` is not 5.
2. A unit may be left out, not changed: `15\\text{ cm}^2` equals `15`, not `15\\text{ cm}^3`;
   `90^\\circ` equals `90`, not `\\pi/2`. A percentage may be read either way: `20\\%` = 20 = 0.2.
3. Plain numbers are compared exactly, as fractions: `0.5` = `1/2` = `\\frac12`, `0.33` != `\\frac13`,
   `2\\frac{1}{2}` is the mixed number 2.5. Plain arithmetic (`17 \\cdot 2`) is evaluated exactly.
4. A comma never marks decimals: `1,5` is the list 1 and 5; digits grouped by three (`10,080`,
   `12,345.5`, `10{,}080`, `10,\\!080`) are one number.
5. A bare list (`1, -2`, `1 and -2`, `1, and -2`, `1; -2`, `\\{1, -2\\}`, several boxes, `1 \\pm \\sqrt2`,
   and `{1, -2}`: bare braces only group) is a set: order and repeats do not matter, so the hedge
   `34 or 35` equals neither 34 nor 35. A bracketed list is a tuple or an interval: `(1, 2)` != `(2, 1)`,
   `(1, 2)` != `[1, 2]`, and a set never equals a tuple (`1, 2` may be the endpoints of the interval
   `(1, 2)`; Math-Verify compares them in written order). Matrices are equal cell by cell.
6. An inequality in one variable is an interval: `1 \\le y \\le 4` = `y \\in [1, 4]` = `[1, 4]`,
   `2 < t < 9` = `(2, 9)`, `x \\ge 3` = `[3, \\infty)`; inequalities joined by "or" are a union. One in
   `|x|` with number bounds is the intervals of x: `1 \\le |z| \\le 2` = `[-2, -1] \\cup [1, 2]`.
7. A number in a base (`52_8`) equals the same digits in the same base, with or without the subscript;
   never another base, never its decimal value (`42` != `52_8`).
8. A label names what the answer gives and may be left out: `x = 5`, `(a, b) = (4, 1)`,
   `\\frac{AM}{MB} = \\frac23`, `[ABC]:[ABD] = 3:5`, `(x, y) = (1, 6) and (6, 1)`, `m=3, n=1; m=5, n=1`
   (the solutions (3, 1) and (5, 1)). Two different labels are not equal (`x = 5` != `y = 5`). A label
   has no digits and no arithmetic, so `x + 1 = 34` is an equation, not 34. A chain (two or more `=`,
   ending in a value) is its last member with its label, as in Math-Verify: `x = 2 + 3 + 4 = 9` is
   `x = 9`, and `x = 5 + 5 + 1 = 7 = 11` is `x = 11` (the steps are not graded; one value is, so no
   hedge). A line's `\\frac{x-1}{2} = \\frac{y}{3} = \\frac{z+1}{4}` ends in a variable: no chain.
   Equations equal up to rearrangement or a nonzero factor are equal (`3x + 6y - 2 = 0`,
   `y = -\\frac12 x + \\frac13`).
9. Choice letters: `(C)`, `\\text{(C)}`, `C`, `(c)` and `C. x = 42` are the same choice. Words
   (`\\text{Evelyn}`) compare without case.
10. Anything else (radicals, pi, complex numbers with `i`, polynomials, equations, the elements of sets,
   tuples and matrices) is judged by math-verify: symbolic equality, or agreement to FLOAT_ROUNDING
   decimal places when one side is a decimal (`3.14159` != `\\pi`).

How a judgement is made and bounded (one concern per module):

- cleaning.py (decorations, units), numeric.py (exact values, plain arithmetic), structures.py (lists,
  tuples, intervals, inequalities, matrices, labels) and answer.py (text -> Answer) parse in-process, in
  microseconds; judge.py compares two Answers, one rule per kind.
- shape.py decides what may reach sympy at all: power towers, big factorials, 1e100000, hundreds of
  operators are judged by their text. What passes goes to math-verify in one worker process
  (symbolic.py, serve.py), started by `start()` before training, warm from then on.
- A verdict depends on (answer, reference) alone: each call may use limits.SYMBOLIC_CPU_S of the
  worker's CPU time, which a busy machine does not change. If that runs out, the worker does not reply
  within the wall-clock backstop, or cannot start, the verdict is undecided: answers_equal returns None,
  the answer rewards give None (TRL leaves the sample out), the evaluation counts it apart, and
  stats()["undecided"] counts it. Real answers do not get there (bench/verifier.py measures it).
- The worker keeps each answer's parse and this process keeps each verdict, so a reference is parsed
  once for a whole group and all four rewards. Callers in any thread share the worker through a lock; a
  forked child starts its own; the worker exits with its parent.
"""

from __future__ import annotations

import contextlib

from . import limits
from .answer import INVALID, Answer, classify, clean, parse_number
from .cleaning import UNITS
from .judge import answers_equal
from .limits import FLOAT_ROUNDING, MAX_ANSWER_CHARS, MAX_DIGITS
from .symbolic import WORKER, Undecided, start, stats, stop

__all__ = [
    "FLOAT_ROUNDING",
    "INVALID",
    "MAX_ANSWER_CHARS",
    "MAX_DIGITS",
    "UNITS",
    "Answer",
    "Undecided",
    "answers_equal",
    "classify",
    "clean",
    "clear_caches",
    "cpu_budget",
    "limits",
    "parse_number",
    "start",
    "stats",
    "stop",
]


def clear_caches() -> None:
    """Forget every answer and verdict seen so far, here and in the worker (for benchmarks)."""
    from . import answer

    answer.classify.cache_clear()
    answer._value.cache_clear()
    WORKER.clear()


@contextlib.contextmanager
def cpu_budget(seconds: float):
    """Within this block each call may use `seconds` of the worker's CPU time (tests and benchmarks;
    the rewards and the evaluation keep limits.SYMBOLIC_CPU_S, so their verdicts are the same)."""
    before, limits.SYMBOLIC_CPU_S = limits.SYMBOLIC_CPU_S, seconds
    try:
        yield
    finally:
        limits.SYMBOLIC_CPU_S = before
