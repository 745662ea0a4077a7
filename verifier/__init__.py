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
   full stop, markdown bold, what follows `\\approx`, and the units in UNITS. Never "any trailing word":
   `6 - 5i`, `2k` and `3+2x` keep their letters.
   Prose: a lead-in at the very start from a closed list ("The answer is", "Answer:", "So the final
   result is", "The value is", "The solution is"; also in `\\text{}`) is removed, and what follows must be
   the whole answer; so is the same said at the very end ("34 is the answer"). `The answer is 34` = 34,
   but `The answer is 34 or 35` is a hedge, `not 34`, `34 is not the answer` and `It is 34` are refused,
   and a number inside any other sentence is never read out of it.
2. A unit may be left out, not changed: `15\\text{ cm}^2` equals `15`, not `15\\text{ cm}^3`;
   `90^\\circ` equals `90`, not `\\pi/2`. A percentage may be read either way: `20\\%` = 20 = 0.2.
   A plain number followed by one to three words outside UNITS (in `\\text{}`, three letters or more; or
   bare, in lower case, the first of four letters or more with a vowel, so `5 abc` stays a product) has
   them as its unit: `12 \\text{ apples}` = `12 apples` = 12 != `12 \\text{ pears}`.
   Words that change, qualify or deny the value (cleaning.VALUE_WORDS: `is`, `not`, `or`, `more`,
   `dozen`, `million`, `halves`, ...) are never a unit: `34 \\text{ is wrong}`, `12 \\text{ dozen}` != 34, 12.
   Degrees inside a trigonometric function are an angle, not a unit: `\\sin(150^\\circ)` = `\\sin 30°` = 1/2,
   while `\\sin(150)` is in radians.
3. Plain numbers are compared exactly, as fractions: `0.5` = `1/2` = `\\frac12`, `0.33` != `\\frac13`,
   `2\\frac{1}{2}` and `2 1/2` are the mixed number 2.5 (`21/2` is not; `1 3/2` is no number and is
   refused). Plain arithmetic (`17 \\cdot 2`) is evaluated exactly.
4. A comma never marks decimals: `1,5` is the list 1 and 5; digits grouped by three (`10,080`,
   `12,345.5`, `10{,}080`, `10,\\!080`) are one number, also inside an expression next to an operator
   or a letter (`x+2,500` = `x+2500`, `2,500x`).
5. A bare list (`1, -2`, `1 and -2`, `1, and -2`, `1; -2`, `\\{1, -2\\}`, several boxes, `1 \\pm \\sqrt2`,
   and `{1, -2}`: bare braces only group) is a set: order and repeats do not matter, so the hedge
   `34 or 35` equals neither 34 nor 35. A bracketed list is a tuple or an interval: `(1, 2)` != `(2, 1)`,
   `(1, 2)` != `[1, 2]`, and a set never equals a tuple (`1, 2` may be the endpoints of the interval
   `(1, 2)`; Math-Verify compares them in written order). Matrices are equal cell by cell.
6. An inequality in one variable is an interval: `1 \\le y \\le 4` = `y \\in [1, 4]` = `[1, 4]`,
   `2 < t < 9` = `(2, 9)`, `x \\ge 3` = `[3, \\infty)`; inequalities joined by "or" are a union. One in
   `|x|` with number bounds is the intervals of x: `1 \\le |z| \\le 2` = `[-2, -1] \\cup [1, 2]`. A linear
   one is solved (`2x < 4` = `x < 2`; `-99 \\le 9-12r \\le 45` = `-3 \\le r \\le 9`: dividing by a negative
   number turns the relation round), and so is a quadratic one (`x^2 \\le 9` = `|x| \\le 3` = `[-3, 3]`,
   `x^2 < 2` = `-\\sqrt2 < x < \\sqrt2`); a changed end or a strict sign for a non-strict one is not equal.
   Inequalities joined by "and" both hold: `x > 2 \\text{ and } x < 5` = `(2, 5)`, never the union.
7. A number in a base (`52_8`) equals the same digits in the same base, with or without the subscript;
   never another base, never its decimal value (`42` != `52_8`).
8. A label names what the answer gives and may be left out: `x = 5`, `(a, b) = (4, 1)`,
   `\\frac{AM}{MB} = \\frac23`, `[ABC]:[ABD] = 3:5`, `(x, y) = (1, 6) and (6, 1)`, `m=3, n=1; m=5, n=1`
   (the solutions (3, 1) and (5, 1)), also when "and" joins the solutions. Values that each name their
   own variable keep their names: `x = 1, y = 2` = `y = 2, x = 1` = `1, 2`, but != `x = 2, y = 1`. Two different labels are not
   equal (`x = 5` != `y = 5`), but `y` and a function of one variable name the same graph
   (`f(x) = 2x + 3` = `y = 2x + 3` != `g(x) = 2x + 3`). A label
   has no digits and no arithmetic, so `x + 1 = 34` is an equation, not 34. A chain (two or more `=`,
   ending in a value) is its last member with its label, as in Math-Verify: `x = 2 + 3 + 4 = 9` is
   `x = 9`, and `x = 5 + 5 + 1 = 7 = 11` is `x = 11` (the steps are not graded; one value is, so no
   hedge). A line's `\\frac{x-1}{2} = \\frac{y}{3} = \\frac{z+1}{4}` ends in a variable: no chain.
   Equations equal up to rearrangement or a nonzero factor are equal (`3x + 6y - 2 = 0`,
   `y = -\\frac12 x + \\frac13`).
9. Choice letters: `(C)`, `\\text{(C)}`, `C`, `(c)` and `C. x = 42` are the same choice. Words
   (`\\text{Evelyn}`) compare without case. A clock time (`20:34`, `20:34:00`, `8:34 pm`, `9 \\text{ AM}`;
   minutes with two digits) equals only the same time of day: `20:34` != `20:43`, `8:30` != `20:30`.
10. Plain text is read as models and calculators write it (plaintext.py): `sqrt(`, `cbrt(`, `exp(`,
   `ln(`, `log(`, `abs(`, the trigonometric names, `^(...)`, `**`, `*`, `pi`, `inf` become LaTeX before
   anything else, so `2*cos(x)^2-1` = `\\cos(2x)`; nothing is evaluated as code.
11. Anything else (radicals, pi, complex numbers, polynomials, equations, the elements of sets, tuples
   and matrices) is judged by math-verify: symbolic equality, or agreement to FLOAT_ROUNDING decimal
   places when one side is a decimal (`3.14159` != `\\pi`). The letter `i` is the imaginary unit
   (`i(2-i)` = `1+2i`, `3+5i^2` = -2) and `e` Euler's number (`2\\ln e` = 2), so such an expression may
   equal a plain number; so may one with a function (`\\sin^2 x + \\cos^2 x` = 1). Rational expressions
   are first compared in-process at hashed points (numeric.identity), modulo a prime when a power is
   too big to evaluate: `(x-a)^{6000}` != `(x-a)^{5999}` is decided without expanding anything.

How a judgement is made and bounded (one concern per module):

- plaintext.py (plain-text math -> LaTeX), cleaning.py (decorations, units, lead-ins), numeric.py
  (exact values, plain arithmetic, identities), structures.py (lists, tuples, intervals, inequalities and
  their solving, matrices, labels) and answer.py (text -> Answer, clock times) parse in-process, in
  microseconds; judge.py compares two Answers, one rule per kind. verifier/README.md says where a new
  kind of answer goes.
- shape.py decides what may reach sympy at all: power towers, big factorials, 1e100000, hundreds of
  operators, a variable's power above limits.MAX_SYMBOLIC_EXPONENT are judged by their text. What passes goes to math-verify in one worker process
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
