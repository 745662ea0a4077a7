"""Is an answer equal to the reference? The one verifier behind the answer rewards and the evaluation.

    >>> answers_equal("\\\\boxed{\\\\dfrac{1}{2}}", "0.5"), answers_equal("6 - 5", "6 - 5i")
    (True, False)

A wrong verdict is a wrong training signal, and a wrong answer that is paid is the worse of the two
(GRPO learns to exploit it), so every rule below refuses when in doubt. README.md ("Rewards") has the
same rules as a table; tests/test_rewards.py has a table of cases for each.

1. Cleaning removes only what cannot change a value, from closed lists: `$...$`, `\\boxed{}` (several
   boxes are several answers), spacing (`\\!`, `\\,`, `~`, `\\quad`), `\\left`/`\\right`,
   `\\dfrac`/`\\cfrac` -> `\\frac`, `bmatrix` -> `pmatrix`, `{,}`, a `\\text{}` around the whole
   answer, a full stop, what follows `\\approx`, and the units in UNITS. Never "any trailing word":
   `6 - 5i`, `2k` and `3+2x` keep their letters, and `5 apples` is not 5.
2. A unit may be left out, not changed: `15\\text{ cm}^2` equals `15`, not `15\\text{ cm}^3` or
   `15 m^2`; `90^\\circ` equals `90`, not `\\pi/2`. A percentage may be read either way:
   `20\\%` equals `20` and `0.2`.
3. Plain numbers are compared exactly, as fractions: `0.5` = `1/2` = `\\frac12`, `0.33` != `\\frac13`,
   `2\\frac{1}{2}` is the mixed number 2.5.
4. A comma never marks decimals: `1,5` is the list 1 and 5; digits grouped by three (`10,080`,
   `10{,}080`, `10,\\!080`) are one number.
5. A bare list (`1, -2`, `1 and -2`, `1; -2`, `\\{1, -2\\}`, several boxes, `1 \\pm \\sqrt2`) is a set:
   order and repeats do not matter, so the hedge `34 or 35` equals neither 34 nor 35. A bracketed list
   is a tuple or an interval (`;` or `,` inside): `(1, 2)` != `(2, 1)`, `(1, 2)` != `[1, 2]`, and a set
   never equals a tuple. Matrices are equal cell by cell.
6. A number in a base (`52_8`, `4210_{5}`) equals the same digits in the same base, with or without the
   subscript; never another base, never its decimal value (`42` != `52_8`).
7. `x = 5` equals `5` and `x \\in [1, 2]` equals `[1, 2]`, but `x = 5` != `y = 5`. A relation answering a
   reference that is not one is wrong (`x + 1 = 34` for `34`). Equations equal up to rearrangement or a
   nonzero factor are equal (`y = 2x + 3`, `2x - y + 3 = 0`, `2y = 4x + 6`).
8. Choice letters: `(C)`, `\\text{(C)}`, `C` and `(c)` are the same choice. Words (`\\text{Evelyn}`)
   compare without case.
9. Anything else (radicals, pi, complex numbers with `i`, polynomials, equations, the elements of sets,
   tuples and matrices) is judged by math-verify: symbolic equality, or agreement to FLOAT_ROUNDING
   decimal places when one side is a decimal (`3.14159` != `\\pi`).

How a judgement is made and bounded:

- Rules 1-8 run here, in microseconds: regexes, fractions, and the structure of lists, tuples and
  matrices, which are split here and compared element by element (math-verify's LaTeX grammar takes
  50 ms to a second to parse a bracketed list, a few ms per element).
- math-verify runs in one persistent worker process (`python verifier.py --serve`), started on the
  first answer that needs it (about a second, once), warm from then on. Each answers_equal call may
  use SYMBOLIC_DEADLINE_S of the worker's time; past it the answer is judged wrong and the timeout is
  counted (`stats()`). A judgement may finish late (up to SYMBOLIC_JOB_LIMIT_S) and its verdict is kept
  for the next time; a worker still busy SYMBOLIC_GRACE_S after that is killed and restarted. Inputs
  that make sympy build huge numbers (power towers, big factorials, 1e100000) never reach it.
- The worker keeps each answer's parse and this process keeps each verdict, so a reference is parsed
  once for a whole group and all four rewards. Callers in any thread share the worker through a lock;
  a forked child starts its own; the worker exits with its parent. On a 2-core machine it costs about
  70 MB of memory and CPU only while it judges (the caller waits meanwhile): it does not run beside
  training, except for its start and a second of warm-up parsing when it is idle after a start.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

# ----------------------------------------------------------------------------- limits
MAX_ANSWER_CHARS = 300  # a longer "final answer" is not an answer; it is judged wrong unread
MAX_SYMBOLIC_CHARS = 200  # longest cleaned answer handed to math-verify
MAX_DIGITS = 40  # longest digit run accepted anywhere in an answer
MAX_EXPONENT = 10_000  # largest number in an exponent: 2^{100} fine, 2^{100000000} not (towers never)
SYMBOLIC_DEADLINE_S = 0.08  # per math-verify judgement; past it: wrong, and counted. Calls stay < 100 ms
SYMBOLIC_GRACE_S = 2.0  # a judgement still running this long after its deadline: kill the worker
SYMBOLIC_JOB_LIMIT_S = 0.25  # a late judgement may run this long (its verdict is kept for next time)
WORKER_START_TIMEOUT_S = 60.0  # the first start (Python + sympy + math-verify imports) may take this
WORKER_RETRY_S = 30.0  # after a failed start, judge symbolic answers wrong for this long, then retry
LOCK_TIMEOUT_S = 30.0  # a caller waiting this long for other threads' judgements gives up (wrong)
FLOAT_ROUNDING = 12  # decimal places to which a decimal must agree with an exact irrational value

_log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- units
def _unit_words(*words: str) -> str:
    return "|".join(words)


# Canonical unit -> the ways it is written (regex alternatives; plurals listed). Only these are removed.
# Single letters (m, s, g, h, L) count as units only inside \text{}, \mbox{} or \mathrm{}: bare, they
# are variables. A power after the unit (^2, ^{3}) is part of it; "square"/"cubic" give the same.
UNITS = {
    "%": r"\\%|%|percent|per\s*cent|pct",
    "deg": r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|degrees?|deg",
    "$": r"\\\$|dollars?|USD",
    "cent": r"cents?|\\cent|\\textcent",
    "rad": r"radians?|rad",
    "mm": _unit_words("mm", "millimet(?:er|re)s?"),
    "cm": _unit_words("cm", "centimet(?:er|re)s?"),
    "m": _unit_words("met(?:er|re)s?"),
    "km": _unit_words("km", "kilomet(?:er|re)s?"),
    "in": _unit_words("inch(?:es)?"),
    "ft": _unit_words("ft", "feet", "foot"),
    "yd": _unit_words("yd", "yards?"),
    "mi": _unit_words("miles?"),
    "g": _unit_words("grams?"),
    "kg": _unit_words("kg", "kilograms?"),
    "mg": _unit_words("mg", "milligrams?"),
    "lb": _unit_words("lbs?", "pounds?"),
    "oz": _unit_words("oz", "ounces?"),
    "s": _unit_words("sec", "secs", "seconds?"),
    "min": _unit_words("min", "mins", "minutes?"),
    "h": _unit_words("hr", "hrs", "hours?"),
    "day": _unit_words("days?"),
    "week": _unit_words("weeks?"),
    "month": _unit_words("months?"),
    "year": _unit_words("years?", "yrs?"),
    "L": _unit_words("liters?", "litres?"),
    "mL": _unit_words("ml", "mL", "millilit(?:er|re)s?"),
    "gal": _unit_words("gal", "gallons?"),
    "mph": _unit_words("mph", "miles per hour"),
    "km/h": _unit_words("km/h", "kph", "kilomet(?:er|re)s per hour"),
    "m/s": _unit_words("m/s", "met(?:er|re)s per second"),
    "unit": _unit_words("units?"),
}
_TEXT_ONLY_UNITS = {"m": "m", "s": "s", "g": "g", "h": "h", "L": "L", "in": "in"}  # only inside \text{}
_POWER = r"(?:\s*\^\s*\{?\s*(?P<power>[23])\s*\}?)?"
_UNIT_NAME = {}


def _unit_alternation(text_only: bool) -> str:
    parts = []
    for i, (canonical, pattern) in enumerate(UNITS.items()):
        alternatives = pattern
        if text_only and canonical in _TEXT_ONLY_UNITS:
            alternatives += "|" + re.escape(_TEXT_ONLY_UNITS[canonical])
        _UNIT_NAME[f"u{i}"] = canonical
        parts.append(f"(?P<u{i}>{alternatives})")
    return "|".join(parts)


_SQUARE = r"(?:(?P<square>square|sq\.?)\s+|(?P<cubic>cubic|cu\.?)\s+)?"
# "\text{ cm}^2", "\mbox{ square inches}", "\mathrm{m}"
_UNIT_IN_TEXT = re.compile(
    rf"\\(?:text|mbox|mathrm|textrm|textbf|textnormal|rm)\s*\{{\s*{_SQUARE}(?:{_unit_alternation(True)})\s*\.?\s*\}}{_POWER}\s*$"
)
# bare "cm^2", "dollars", "\%", "^\circ"; a unit written in letters must follow a digit, space, brace or parenthesis
_UNIT_BARE = re.compile(rf"{_SQUARE}(?:{_unit_alternation(False)}){_POWER}\s*$")
_CURRENCY_PREFIX = re.compile(r"^(?:\\\$|USD\s*)\s*(?=[\d.\-+\\])")


def _strip_unit(s: str) -> tuple[str, str | None]:
    """(answer without its trailing unit, canonical unit with power) - or (s, None) without a unit."""
    unit = None
    match = _CURRENCY_PREFIX.match(s)
    if match:
        s, unit = s[match.end() :], "$"
    last = s[-1:]
    patterns = [_UNIT_IN_TEXT] if "\\" in s else []
    if last.isalpha() or last in "%}$." or (last in "23" and "^" in s):
        patterns.append(_UNIT_BARE)
    for pattern in patterns:
        match = pattern.search(s)
        if not match or match.start() == 0:
            continue  # no unit, or nothing but a unit
        if pattern is _UNIT_BARE and match.group(0)[0].isalpha() and s[match.start() - 1] not in "0123456789 })":
            continue  # "2k", "5x cm"... letters glued to a variable are not a unit
        rest = s[: match.start()].strip()
        if not rest or rest.endswith(("^", "_", "\\")):
            continue
        groups = match.groupdict()
        name = next(_UNIT_NAME[k] for k, v in groups.items() if k.startswith("u") and v is not None)
        power = groups.get("power") or ("2" if groups.get("square") else "3" if groups.get("cubic") else None)
        found = f"{name}^{power}" if power else name
        if unit is not None and unit != found:
            return s, "conflict"  # "\$5 cm": two different units
        return rest, found
    return s, unit


# ----------------------------------------------------------------------------- cleaning
_UNICODE = str.maketrans(
    {
        "\u2212": "-",
        "\u2013": "-",
        "\u00d7": "\\times ",
        "\u22c5": "\\cdot ",
        "\u00b7": "\\cdot ",
        "\u03c0": "\\pi ",
        "\u221e": "\\infty ",
        "\u00b0": "^\\circ",
        "\u2264": "\\le ",
        "\u2265": "\\ge ",
        "\u2260": "\\ne ",
        "\u2248": "\\approx ",
        "\u221a": "\\sqrt",
        "\u00b2": "^2",
        "\u00b3": "^3",
        "\u00a2": "\\cent",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\uff0c": ",",
        "\n": " ",
        "\t": " ",
    }
)
_DELIMITERS = re.compile(r"(?<!\\)\$+|\\\(|\\\)|(?<!\\)\\\[|(?<!\\)\\\]")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*(?=\{)")
_THIN_THOUSANDS = re.compile(r"(?<=\d),?\s*(?:\\[,!]|\{,\})\s*(?=\d{3}(?!\d))")  # 10\,080, 10,\!080, 10{,}080
_SPACING = re.compile(r"(?<!\\)\\(?:[,;:> ]|q?quad\b|hspace\s*\{[^{}]*\}|enspace\b|thinspace\b)|~")
_SIZING = re.compile(
    r"(?<!\\)\\(?:left|right|[bB]igg?[lr]?|middle)\s*(?:\.|(?=[\\(\[|)\]]))|\\(?:displaystyle|textstyle|scriptstyle)\b"
)
_FRACS = re.compile(r"\\[dtc]frac\b")
_MATRIX = re.compile(r"\{[bB]matrix\}")
_BRACKETED_MATRIX = re.compile(
    r"^[(\[]\s*\\begin\s*\{(?:matrix|array)\}(?:\s*\{[lcr|]*\})?(?P<body>.*)\\end\s*\{(?:matrix|array)\}\s*[)\]]$",
    re.DOTALL,
)
_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|textsf|mathrm|mathbf|mathit|mathsf|mbox|emph|rm)\s*\{"
)
_INNER_SPACE = re.compile(r"(?<=[(\[])\s+|\s+(?=[)\]])")  # "( 3, 4 )" -> "(3, 4)"
_APPROX = re.compile(r"\\approx|\\simeq|\\sim\b|\\doteq")
_SEPARATOR_WORDS = re.compile(r"\\text\s*\{\s*(?:,?\s*(?:and|or)\s*|,)\}|,?\s*\b(?:and|or)\b\s*")
_LABEL = re.compile(r"^(?P<var>[A-Za-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?)\s*(?:=|\\in\b)\s*(?P<rest>[^=]+)$")
_LABEL_RIGHT = re.compile(r"^(?P<rest>[^=]+?)\s*=\s*(?P<var>[A-Za-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?)$")
_RELATION = re.compile(r"=|<|>|\\(?:le|ge|leq|geq|neq|ne|lt|gt|in)\b")
_MALFORMED = re.compile(r"^(?:[=<>,;*/^_]|\\(?:le|ge|leq|geq|in)\b)|(?:[=<>,;+\-*/^_]|\\(?:le|ge|leq|geq|in))$")

_DECIMAL = re.compile(
    rf"[+-]?(?:\d{{1,{MAX_DIGITS}}}(?:\.\d{{0,{MAX_DIGITS}}})?|\.\d{{1,{MAX_DIGITS}}})(?:[eE][+-]?\d{{1,3}})?"
)
_PLAIN_INT = re.compile(rf"-?\d{{1,{MAX_DIGITS}}}")
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+)(?!\d|,\d)")
_SLASH = re.compile(rf"([+-]?\d{{1,{MAX_DIGITS}}})\s*/\s*(\d{{1,{MAX_DIGITS}}})")
_FRAC_ARGS = re.compile(
    rf"\\frac\s*(?:\{{\s*(-?\d{{1,{MAX_DIGITS}}})\s*\}}|(\d))\s*(?:\{{\s*(\d{{1,{MAX_DIGITS}}})\s*\}}|(\d))"
)
_SCIENTIFIC = re.compile(r"(?P<mantissa>.+?)\s*(?:\\times|\\cdot|\*)\s*10\s*\^\s*\{?\s*(?P<exp>[+-]?\d{1,3})\s*\}?")
_BASED = re.compile(r"(?P<digits>[0-9A-Za-z]{1,40})_\s*\{?\s*(?:\\text\s*\{\s*)?(?P<base>\d{1,2})\s*\}?\s*\}?")
_DIGIT_SUBSCRIPT = re.compile(r"[0-9]\s*_")
_CHOICE = re.compile(r"\(\s*([A-Za-z])\s*\)|([A-Z])")
_WORD = re.compile(r"[A-Za-z][A-Za-z' \-]*[A-Za-z]")


def _closing(s: str, i: int) -> int:
    """Index of the brace that closes the one at s[i], or -1."""
    depth = 0
    for j in range(i, len(s)):
        c = s[j]
        if c == "\\" and j + 1 < len(s) and s[j + 1] in "{}":
            continue
        if c == "{" and (j == 0 or s[j - 1] != "\\"):
            depth += 1
        elif c == "}" and (j == 0 or s[j - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return j
    return -1


def _unbox(s: str) -> str | None:
    """The contents of every \\boxed{} in s, joined by commas (several boxes: several answers);
    s itself without a box; None when a box never closes."""
    for _ in range(3):  # nested boxes: \boxed{\boxed{34}}
        if "box" not in s:
            return s
        parts, i = [], 0
        for match in _BOX.finditer(s):
            if match.start() < i:
                continue  # inside a box already taken
            end = _closing(s, match.end())
            if end < 0:
                return None
            content = s[match.end() + 1 : end].strip()
            if not parts or parts[-1] != content:
                parts.append(content)
            i = end + 1
        if not parts:
            return s
        s = ", ".join(parts)
    return s


def _unwrap(s: str) -> tuple[str, bool]:
    """Remove \\text{...}-like wrappers and braces that span the whole answer; (s, whether text was removed)."""
    was_text = False
    for _ in range(4):
        if s.startswith("{") and _closing(s, 0) == len(s) - 1:
            s = s[1:-1].strip()
            continue
        match = _WRAPPER.match(s)
        if match and _closing(s, match.end() - 1) == len(s) - 1:
            s, was_text = s[match.end() : -1].strip(), True
            continue
        if s.startswith("(") and s.endswith(")") and _grouping(s) and not _CHOICE.fullmatch(s):
            s = s[1:-1].strip()  # ((3)): parentheses around one answer group it, they add nothing
            continue
        break
    return s, was_text


def _grouping(s: str) -> bool:
    """True when s is one pair of parentheses around something without a top-level comma or semicolon."""
    depth = 0
    for i, c in enumerate(s):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and i < len(s) - 1:
            return False
        if depth == 1 and c in ",;":
            return False
    return True


def _cut_approximation(s: str) -> str:
    """`\\frac{\\sqrt3}{3} \\approx 0.577` -> the exact part; `\\approx 0.577` or `x \\approx 0.577` -> 0.577."""
    match = _APPROX.search(s)
    if not match:
        return s
    left, right = s[: match.start()].strip(), s[match.end() :].strip()
    if not left or re.fullmatch(r"[A-Za-z]\s*=?", left):
        return right
    return left


def _split_top(s: str) -> list[str]:
    """s split at the commas and semicolons outside every bracket."""
    items, depth, start = [], 0, 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            depth += 1 if s[i + 1] == "{" else -1
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c in ",;" and depth == 0:
            items.append(s[start:i].strip())
            start = i + 1
        elif c == "\\" and s.startswith("\\\\", i) and depth == 0:
            return [s]  # a matrix row separator outside an environment: not a list
        i += 1
    items.append(s[start:].strip())
    return items


def _bracketed(s: str) -> tuple[str, list[str], str] | None:
    """(opening, elements, closing) for a tuple or interval such as (1, 2], [a; b], or None."""
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        return None
    depth = 0
    for i, c in enumerate(s):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and i < len(s) - 1:
            return None  # (1, 2) \cup (3, 4), (a+b)(c+d)
    elements = _split_top(s[1:-1])
    return (s[0], elements, s[-1]) if len(elements) >= 2 and all(elements) else None


def _split_word(s: str, separator: str) -> list[str]:
    """s split at a LaTeX command (\\cup, \\pm) outside every bracket."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and s.startswith(separator, i) and not s[i + len(separator) : i + len(separator) + 1].isalpha():
            parts.append(s[start:i].strip())
            start = i = i + len(separator)
            continue
        i += 1
    parts.append(s[start:].strip())
    return parts


_MATRIX_ENV = re.compile(r"\\begin\s*\{pmatrix\}(?P<body>.*)\\end\s*\{pmatrix\}", re.DOTALL)


def _matrix(s: str) -> tuple[tuple[str, ...], ...] | None:
    """The rows of \\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix} (bmatrix was made pmatrix), or None."""
    match = _MATRIX_ENV.fullmatch(s)
    if not match or "pmatrix" in match.group("body"):
        return None
    rows = [row.strip() for row in match.group("body").split("\\\\")]
    while rows and not rows[-1]:
        rows.pop()
    cells = tuple(tuple(cell.strip() for cell in row.split("&")) for row in rows)
    if not cells or len({len(row) for row in cells}) != 1 or not all(all(row) for row in cells):
        return None
    return cells


def _number(s: str) -> Fraction | None:
    """The exact value of s written as one plain number (decimal, a/b, \\frac, mixed, a x 10^k), or None."""
    s = s.strip()
    if _PLAIN_INT.fullmatch(s):
        return Fraction(int(s))
    if s.startswith("+"):
        s = s[1:].lstrip()
    if _THOUSANDS.fullmatch(s.lstrip("-")):
        s = s.replace(",", "")
    try:
        if _DECIMAL.fullmatch(s):
            return Fraction(s)
        match = _SLASH.fullmatch(s)
        if match:
            numerator, denominator = int(match.group(1)), int(match.group(2))
            return Fraction(numerator, denominator) if denominator else None
        negative = s.startswith("-")
        body = s[1:].lstrip() if negative else s
        whole = None
        mixed = re.match(r"(\d{1,20})\s*(?=\\frac)", body)
        if mixed:
            whole, body = int(mixed.group(1)), body[mixed.end() :]
        match = _FRAC_ARGS.fullmatch(body)
        if match:
            numerator = int(match.group(1) or match.group(2))
            denominator = int(match.group(3) or match.group(4))
            if denominator == 0:
                return None
            value = Fraction(numerator, denominator)
            if whole is not None:  # 2\frac{1}{2} is two and a half (MATH's convention), only as a proper fraction
                if not 0 < value < 1:
                    return None
                value += whole
            return -value if negative else value
        match = _SCIENTIFIC.fullmatch(s)
        if match and _DECIMAL.fullmatch(match.group("mantissa").strip()):
            return Fraction(match.group("mantissa").strip()) * Fraction(10) ** int(match.group("exp"))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


@dataclass(frozen=True, slots=True)
class _Answer:
    """One answer, cleaned and classified.

    kind: number | set | tuple | union | matrix | based | choice | word | expr | invalid."""

    kind: str
    text: str = ""  # the cleaned answer (what math-verify sees), label included
    body: str = ""  # text without a leading "x =" label
    label: str | None = None  # the variable of "x = ..." or "x \\in ...", if any
    unit: str | None = None  # canonical unit, e.g. "cm^2", "%", "$"
    values: frozenset | None = None  # number: {value}; set: the values when every element is a plain number
    elements: tuple = ()  # set, tuple, union: the elements as text; matrix: the rows
    brackets: str = ""  # tuple: its opening and closing bracket, e.g. "(]"
    based: tuple[str, int] | None = None  # (digits, base)
    word: str | None = None  # a choice letter or a word, case-folded


_INVALID = _Answer("invalid")


def _split_label(s: str) -> tuple[str | None, str]:
    match = _LABEL.match(s) or _LABEL_RIGHT.match(s)
    if match and not _RELATION.search(match.group("rest")):
        var, rest = match.group("var"), match.group("rest").strip()
        if not re.search(rf"(?<![A-Za-z\\]){re.escape(var[0])}(?![A-Za-z])", rest):
            return var.replace("{", "").replace("}", ""), rest
    return None, s


def clean(answer: str) -> str:
    """The answer as the verifier reads it (decorations, box and unit removed), for display and tests.

    >>> clean("$\\\\boxed{90^\\\\circ}$"), clean("\\\\$32,\\\\!348"), clean("\\\\left( 3, \\\\dfrac{\\\\pi}{2} \\\\right)")
    ('90', '32,348', '(3, \\\\frac{\\\\pi}{2})')
    """
    return _classify(answer).text if isinstance(answer, str) else ""


@lru_cache(maxsize=65536)  # the same answers and references recur across a group and the four rewards
def _classify(raw: str) -> _Answer:
    s = raw.strip()
    if _PLAIN_INT.fullmatch(s):  # the common case in training: a bare integer (an int equals its Fraction)
        return _Answer("number", s, s, values=frozenset([int(s)]))
    if len(s) > MAX_ANSWER_CHARS:
        return _INVALID
    fast = _fast_path(s)
    if fast is not None:
        return fast
    s = s.translate(_UNICODE)
    s = _DELIMITERS.sub(" ", s)
    s = _unbox(s)
    if s is None:
        return _INVALID
    s = _THIN_THOUSANDS.sub(",", s).replace("\\!", "")
    s = _SIZING.sub("", _SPACING.sub(" ", s))
    s = _MATRIX.sub("{pmatrix}", _FRACS.sub("\\\\frac", s))
    s = s.replace("{,}", ",")
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    if "matrix" in s or "array" in s:  # [\begin{matrix} ... \end{matrix}] is a pmatrix
        s = _BRACKETED_MATRIX.sub(r"\\begin{pmatrix}\g<body>\\end{pmatrix}", s)
    s, was_text = _unwrap(s)
    s = _cut_approximation(s)
    if any(c.isdigit() or c == "\\" for c in s):
        s = _SEPARATOR_WORDS.sub(", ", s).strip(" ,")
    s, unit = _strip_unit(s.rstrip(".").strip())
    s, inner_text = _unwrap(s)
    s = _INNER_SPACE.sub("", re.sub(r"\s+", " ", s)).strip()
    if unit == "conflict" or not s or _MALFORMED.search(s):
        return _INVALID
    return _classify_clean(s, unit, was_text or inner_text)


_SIMPLE_WRAP = re.compile(r"\$\s*(?P<a>[^$\\{}]*?)\s*\$|\\boxed\s*\{\s*(?P<b>[^$\\{}]*?)\s*\}")
_SIMPLE_LABEL = re.compile(r"(?P<var>[A-Za-z])\s*=\s*(?P<rest>[+-]?\d[\d.]*)")
_SIMPLE_LIST = re.compile(r"[+-]?\d{1,20}(?:\s*,\s+[+-]?\d{1,20})+")


def _fast_path(s: str) -> _Answer | None:
    """The shapes a model writes most ("34.0", "$34$", "\\boxed{34}", "x = 34", "33, 34"), classified
    without the full cleaning (the same result, a few times faster); None for anything else."""
    match = _SIMPLE_WRAP.fullmatch(s)
    if match:
        s = match.group("a") if match.group("a") is not None else match.group("b")
        if _PLAIN_INT.fullmatch(s):
            return _Answer("number", s, s, values=frozenset([int(s)]))
    if _DECIMAL.fullmatch(s):
        value = _number(s)
        return _Answer("number", s, s, values=frozenset([value])) if value is not None else None
    match = _SIMPLE_LABEL.fullmatch(s)
    if match and _DECIMAL.fullmatch(match.group("rest")):
        rest = match.group("rest")
        return _Answer("number", s, rest, match.group("var"), values=frozenset([_number(rest)]))
    if _SIMPLE_LIST.fullmatch(s):
        items = [item.strip() for item in s.split(",")]
        return _Answer("set", s, s, values=frozenset(int(i) for i in items), elements=tuple(items))
    return None


def _classify_clean(s: str, unit: str | None, was_text: bool) -> _Answer:
    compact = s.replace(" ", "")
    match = _BASED.fullmatch(compact)
    if match:
        digits, base = match.group("digits").upper().lstrip("0") or "0", int(match.group("base"))
        if 2 <= base <= 36 and all(int(d, 36) < base for d in digits):
            return _Answer("based", s, s, unit=unit, based=(digits, base))
        return _INVALID
    match = _CHOICE.fullmatch(s)
    if match:
        return _Answer("choice", s, s, unit=unit, word=(match.group(1) or match.group(2)).upper())
    if was_text and _WORD.fullmatch(s):
        return _Answer("word", s, s, unit=unit, word=" ".join(s.casefold().split()))
    label, body = _split_label(s)
    value = _number(body)
    if value is not None:
        return _Answer("number", s, body, label, unit, frozenset([value]))
    if body.startswith("\\{") and body.endswith("\\}"):
        return _set(s, body, label, unit, _split_top(body[2:-2]))
    items = _split_top(body)
    if len(items) > 1:
        return _set(s, body, label, unit, items)
    tuple_ = _bracketed(body)
    if tuple_:
        return _Answer("tuple", s, body, label, unit, elements=tuple(tuple_[1]), brackets=tuple_[0] + tuple_[2])
    rows = _matrix(body)
    if rows:
        return _Answer("matrix", s, body, label, unit, elements=rows)
    if "\\cup" in body:
        parts = _split_word(body, "\\cup")
        if len(parts) > 1 and all(parts):
            return _Answer("union", s, body, label, unit, elements=tuple(parts))
    for sign in ("\\pm", "\\mp"):
        if body.count(sign) == 1:  # 1 \pm \sqrt{19}: two answers
            plus, minus = ("+", "-") if sign == "\\pm" else ("-", "+")
            return _set(s, body, label, unit, [body.replace(sign, plus), body.replace(sign, minus)])
    return _Answer("expr", s, body, label, unit)


def _set(s: str, body: str, label: str | None, unit: str | None, items: list[str]) -> _Answer:
    """Several answers: order and repeats do not matter. Their values, when all are plain numbers."""
    if not all(items):
        return _INVALID  # "1,,2", "1,"
    values = []
    for item in items:
        item_label, item_body = _split_label(item)
        values.append(_number(item_body) if item_label in (None, label) or label is None else None)
    known = frozenset(values) if all(v is not None for v in values) else None
    return _Answer("set", s, body, label, unit, known, elements=tuple(items))


# ----------------------------------------------------------------------------- screening for sympy
_BIG_E = re.compile(r"\d\s*[eE]\s*[+-]?\s*\d{3}")  # 1e100000: sympy builds the whole number
_ALLOWED_CHARS = re.compile(r"^[0-9A-Za-z\\+\-*/^_().,;:{}\[\]=<>|&!' ]*$")
_GROWTH = re.compile(r"!|\\(?:sum|prod|int|iint|oint|lim|binom|choose|Gamma|zeta|operatorname)(?![A-Za-z])")


def _exponents(s: str):
    """Yield (exponent, text after it) for each ^ in a LaTeX string; an unbalanced brace yields None."""
    i = s.find("^")
    while i >= 0:
        j = i + 1
        while j < len(s) and s[j] == " ":
            j += 1
        if j < len(s) and s[j] == "{":
            k = _closing(s, j)
            if k < 0:
                yield None, ""
                return
            exponent, end = s[j + 1 : k], k + 1
        else:
            match = re.match(r"\\[A-Za-z]+|.", s[j:], re.DOTALL)
            exponent = match.group(0) if match else ""
            end = j + len(exponent)
        yield exponent, s[end:]
        i = s.find("^", i + 1)


def _bounded(s: str) -> bool:
    """False for what could make sympy build enormous numbers (power towers, big factorials, sums,
    1e100000) or is not an answer at all; those are judged by their text only."""
    if len(s) > MAX_SYMBOLIC_CHARS or "**" in s or _BIG_E.search(s) or not _ALLOWED_CHARS.match(s):
        return False
    runs = re.findall(r"\d+", s)
    if any(len(run) > MAX_DIGITS for run in runs):
        return False
    if _GROWTH.search(s) and ("^" in s or any(len(run) > 3 for run in runs)):
        return False
    for exponent, rest in _exponents(s):
        if exponent is None or "^" in exponent or rest.lstrip().startswith("^"):
            return False  # unbalanced, or a tower such as 9^{9^{9}} or 2^2^2
    return _power_growth(s) <= MAX_EXPONENT


def _power_growth(s: str) -> int:
    """The largest product of exponents along a chain of nested powers: 2^{100} -> 100,
    ((9^{99})^{99})^{99} -> 970299, (x^2 + 1)^2 -> 4. Bounds the digits of any power sympy may expand."""
    growth = 1
    for i, c in enumerate(s):
        if c != "^":
            continue
        exponent = next(_exponents(s[i:]))[0] or ""
        value = max([int(n) for n in re.findall(r"\d+", exponent)] or [1])
        j = i - 1
        while j >= 0 and s[j] == " ":
            j -= 1
        if j >= 0 and s[j] in ")]}":
            depth, k = 0, j
            for k in range(j, -1, -1):
                depth += (s[k] in ")]}") - (s[k] in "([{")
                if depth == 0:
                    break
            value *= _power_growth(s[k + 1 : j])
        growth = max(growth, value)
    return growth


# ----------------------------------------------------------------------------- the judgement
def answers_equal(pred: str | None, gold: str | None) -> bool:
    """True when the answer `pred` is mathematically equal to the reference `gold` (rules: module docstring).

    Never raises. Takes microseconds unless math-verify is needed, and then at most
    SYMBOLIC_DEADLINE_S of the worker's time (after its first start; threads queue for the worker).

    >>> answers_equal("x = 34", "34"), answers_equal("34 or 35", "34"), answers_equal("52_9", "52_8")
    (True, False, False)
    """
    if not isinstance(pred, str) or not isinstance(gold, str) or len(pred) > MAX_ANSWER_CHARS:
        return False
    try:
        p, g = _classify(pred), _classify(gold)
        if p.values is not None and g.values is not None:
            return _numbers_equal(p, g)
        return _equal(p, g, [SYMBOLIC_DEADLINE_S])
    except Exception:  # noqa: BLE001 - a bug here must cost one verdict, not a training run
        _log.debug("answers_equal failed on %r vs %r", pred, gold, exc_info=True)
        return False


def parse_number(answer) -> Fraction | None:
    """The exact value of an answer written as one plain number, or None.

    Accepts integers, decimals, scientific notation with a small exponent, thousands separators,
    a/b, \\frac{a}{b}, mixed numbers, with what cleaning removes (box, $, units, "x ="). Anything
    else (an expression, several numbers, a number in a base, nan, inf, 1/0) is None.

    >>> parse_number("$\\\\boxed{1,000}$"), parse_number("\\\\frac{1}{2}"), parse_number("34 or 35")
    (Fraction(1000, 1), Fraction(1, 2), None)
    """
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
        return None
    return _value(answer)


@lru_cache(maxsize=65536)
def _value(answer: str) -> Fraction | None:
    parsed = _classify(answer)
    return Fraction(next(iter(parsed.values))) if parsed.kind == "number" else None


_COMMAND = re.compile(r"\\[A-Za-z]+")
_HAS_LETTER = re.compile(r"[A-Za-z]")
_SEVERAL = ("set", "tuple", "union", "matrix")


def _numbers_equal(p: _Answer, g: _Answer) -> bool:
    """Plain numbers, or sets of them, exactly. A unit may be left out, not changed; x = 5 is not y = 5.
    A percentage on one side only may be read either way: 20% equals 20 and 0.2."""
    if p.label is not None and g.label is not None and p.label != g.label:
        return False
    if p.unit is None or g.unit is None or p.unit == g.unit:
        if p.values == g.values:
            return True
        if (p.unit == "%") != (g.unit == "%"):
            percent, other = (p, g) if p.unit == "%" else (g, p)
            return frozenset(Fraction(v) / 100 for v in percent.values) == other.values
    return False


def _equal(p: _Answer, g: _Answer, budget: list) -> bool:
    """p equals g; budget[0] is the worker time this judgement may still spend (seconds)."""
    if p.values is not None and g.values is not None:
        return _numbers_equal(p, g)
    if p.kind == "invalid" or g.kind == "invalid":
        return False
    if p.unit and g.unit and p.unit != g.unit:
        return False  # a unit may be left out, not changed
    if "based" in (p.kind, g.kind):
        return _based_equal(p, g)
    if "choice" in (p.kind, g.kind) or "word" in (p.kind, g.kind):
        return p.word is not None and p.word == g.word or _same_word(p, g)
    if (
        g.kind == "number"
        and p.kind == "expr"
        and (_HAS_LETTER.search(_COMMAND.sub(" ", p.body)) or not any(c.isdigit() or c == "\\" for c in p.body))
    ):
        return False  # a rational number is not "x", "none", "34x" or "6 - 5i"
    if p.kind in _SEVERAL or g.kind in _SEVERAL:
        return _equal_structures(p, g, budget)
    gold_text, pred_text = _texts_to_compare(p, g)
    if pred_text is None:
        return False
    return _expressions_equal(pred_text, gold_text, budget)


def _expressions_equal(pred: str, gold: str, budget: list) -> bool:
    """Two single expressions (or relations): by text, else by math-verify within the budget."""
    if pred.replace(" ", "") == gold.replace(" ", ""):
        return True
    if _DIGIT_SUBSCRIPT.search(pred) or _DIGIT_SUBSCRIPT.search(gold):
        return False  # math-verify drops subscripts (52_9 = 52_8 to it): such answers are judged by text
    if not (_bounded(pred) and _bounded(gold)):
        return False
    return _WORKER.judge(gold, pred, budget) is True


def _element_equal(pred: str, gold: str, budget: list) -> bool:
    return _equal(_classify(pred), _classify(gold), budget)


def _equal_structures(p: _Answer, g: _Answer, budget: list) -> bool:
    """Sets, tuples, intervals, unions and matrices, element by element. (math-verify's grammar needs
    50 ms to seconds to parse a bracketed list, but a few ms per element.)"""
    if "set" in (p.kind, g.kind):
        if p.kind in ("tuple", "union", "matrix") or g.kind in ("tuple", "union", "matrix"):
            return False  # a set of answers is not a tuple, an interval or a matrix
        return _same_set(_elements(p), _elements(g), budget)
    if p.kind != g.kind:
        return False  # a tuple is not a matrix, an interval is not a number
    if p.label and g.label and p.label != g.label:
        return False
    if p.kind == "union":
        return _same_set(p.elements, g.elements, budget)
    if p.kind == "tuple":
        return (
            p.brackets == g.brackets
            and len(p.elements) == len(g.elements)
            and all(_element_equal(a, b, budget) for a, b in zip(p.elements, g.elements, strict=True))
        )
    # matrices: same shape, equal cells
    if len(p.elements) != len(g.elements) or len(p.elements[0]) != len(g.elements[0]):
        return False
    return all(
        _element_equal(a, b, budget)
        for row_p, row_g in zip(p.elements, g.elements, strict=True)
        for a, b in zip(row_p, row_g, strict=True)
    )


def _elements(a: _Answer) -> tuple[str, ...]:
    """The answers in a set (nested \\pm expanded); a single answer is a set of one."""
    if a.kind != "set":
        return (a.body if a.label else a.text,)
    out = []
    for element in a.elements:
        inner = _classify(element)
        out.extend(inner.elements if inner.kind == "set" else (element,))
    return tuple(out)


def _same_set(pred: tuple[str, ...], gold: tuple[str, ...], budget: list) -> bool:
    """Every element of each side equals one of the other side (order and repeats do not matter)."""
    if len(set(pred)) > 3 * len(set(gold)) + 3:
        return False  # a long list of guesses
    unmatched_gold = list(dict.fromkeys(gold))
    for element in dict.fromkeys(pred):  # exact text first: no worker time for the common case
        if element in unmatched_gold:
            unmatched_gold.remove(element)
    for element in dict.fromkeys(pred):
        if element in gold:
            continue
        match = next((g for g in unmatched_gold if _element_equal(element, g, budget)), None)
        if match is None:
            match = next((g for g in gold if g not in unmatched_gold and _element_equal(element, g, budget)), None)
            if match is None:
                return False  # an element that is none of the answers
        else:
            unmatched_gold.remove(match)
    return not unmatched_gold


def _texts_to_compare(p: _Answer, g: _Answer) -> tuple[str, str | None]:
    """(gold, pred) as math-verify should see them, or (gold, None) when the prediction is wrong already.

    Labels ("y =", "x \\in") are decoration when both sides name the same variable or one names none;
    equations go to math-verify whole (rearranged or scaled ones are equal). A relation in the answer
    to a reference that has none is wrong: math-verify would read "x + 1 = 34" as its right side, 34."""
    gold_relation, pred_relation = _RELATION.search(g.body), _RELATION.search(p.body)
    if gold_relation or (g.label and pred_relation) or (p.label and g.label and p.label != g.label):
        return g.text, p.text
    if pred_relation:
        return g.text, None
    return g.body, p.body


def _same_word(p: _Answer, g: _Answer) -> bool:
    """A word such as \\text{Evelyn} against a prediction written without \\text{} (or the other way)."""
    if p.kind == "choice" or g.kind == "choice":
        return False
    words = [a.word if a.word is not None else " ".join(a.text.casefold().split()) for a in (p, g)]
    return all(_WORD.fullmatch(a.text) for a in (p, g)) and words[0] == words[1]


def _based_equal(p: _Answer, g: _Answer) -> bool:
    """52_8 equals 52_8, 52_{8} and (the question named the base) bare 52; never 52_9 or 42. An answer
    in a base other than ten never equals a reference written without one (52_8 is not 52)."""
    if p.kind == "based" and g.kind == "based":
        return p.based == g.based
    if p.kind == "based" and p.based[1] != 10:
        return False
    based, other = (g, p) if g.kind == "based" else (p, g)
    digits = other.body.replace(" ", "").upper().lstrip("0") or "0"
    return other.kind == "number" and other.label is None and digits == based.based[0]


# ----------------------------------------------------------------------------- the worker process
class _Worker:
    """math-verify in a child process: started lazily, restarted when it dies or hangs, shared by all
    threads of this process (one lock), private to it (a fork starts its own), stopped at exit."""

    def __init__(self):
        self._lock = threading.Lock()
        self._verdicts: dict[tuple[str, str], bool] = {}  # (gold, pred) -> verdict; dict ops are atomic
        self.counts = dict.fromkeys(
            ["judged", "cached", "timeouts", "late", "restarts", "errors", "unavailable", "start_s"], 0
        )
        self._forget_process()
        self._started_ever = False
        os.register_at_fork(after_in_child=self._after_fork) if hasattr(os, "register_at_fork") else None
        atexit.register(self.stop)

    def _forget_process(self):
        self._proc = None
        self._buffer = b""
        self._ready = False
        self._warm = False
        self._pending: dict[int, tuple[float, str, str]] = {}  # job id -> (kill time, gold, pred)
        self._next_id = 0
        self._retry_at = 0.0

    def _after_fork(self):
        """A forked child must not talk to (or kill) its parent's worker; it starts its own on demand."""
        self._lock = threading.Lock()
        if self._proc is not None:  # our copies of the pipes only; the parent keeps its worker
            for stream in (self._proc.stdin, self._proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self._forget_process()
        self._started_ever = False

    # -- lifecycle
    def _start(self) -> None:
        command = [sys.executable, "-u", os.path.abspath(__file__), "--serve"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        started = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True
            )
        except OSError as error:
            _log.warning("verifier worker could not start (%s); symbolic answers are judged by text", error)
            self._retry_at = time.monotonic() + WORKER_RETRY_S
            return
        self._start_time = started
        self.counts["restarts"] += self._started_ever
        first = not self._started_ever
        self._started_ever = True
        if first:  # the first start may take seconds; every later judgement is bounded by its deadline
            self._wait_ready(time.monotonic() + WORKER_START_TIMEOUT_S)
            self.counts["start_s"] = round(time.monotonic() - started, 3)

    def _wait_ready(self, until: float) -> bool:
        while not self._ready:
            line = self._read_line(until)
            if line is None:
                return False
            self._handle(line)
        return True

    def _kill(self) -> None:
        """Kill the worker now; its pending judgements are lost (they were answered wrong already)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._forget_process()

    def stop(self) -> None:
        """Stop the worker (at exit, or to start the next judgement from a cold worker)."""
        proc = self._proc
        if proc is None:
            return
        try:
            proc.stdin.close()  # the worker exits on end of input...
            proc.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._kill()  # ...or is killed

    # -- protocol: one JSON line per message
    def _read_line(self, until: float) -> bytes | None:
        """The next line from the worker, or None at the deadline or when the worker is gone."""
        while b"\n" not in self._buffer:
            if self._proc is None:
                return None
            remaining = max(0.0, until - time.monotonic())  # 0: take only what is already there
            fd = self._proc.stdout.fileno()
            try:
                readable, _, _ = select.select([fd], [], [], remaining)
            except (OSError, ValueError):
                return None
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker died
                self.counts["errors"] += 1
                died_at_start = not self._ready
                self._kill()
                if died_at_start:  # it cannot start (math-verify missing?): do not respawn on every call
                    _log.warning(
                        "verifier worker exited at start; symbolic answers are judged by text for %.0f s",
                        WORKER_RETRY_S,
                    )
                    self._retry_at = time.monotonic() + WORKER_RETRY_S
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _handle(self, line: bytes):
        """Take in one reply; returns (job id, verdict) for a judgement, None for anything else."""
        try:
            message = json.loads(line)
        except ValueError:
            return None
        if isinstance(message, dict):
            self._ready = self._ready or "ready" in message
            self._warm = self._warm or "warm" in message
            return None
        job, verdict = message
        _, gold, pred = self._pending.pop(job, (0, "", ""))
        if isinstance(verdict, bool) and gold:
            self._remember(gold, pred, verdict)
        return job, verdict

    def _remember(self, gold: str, pred: str, verdict: bool) -> None:
        if len(self._verdicts) > 100_000:
            self._verdicts.clear()
        self._verdicts[(gold, pred)] = verdict

    # -- the judgement
    def judge(self, gold: str, pred: str, budget: list) -> bool | None:
        """math-verify's verdict, or None when there is none within budget[0] seconds of the worker's
        time (counted as a timeout). The time spent is taken off budget[0]."""
        cached = self._verdicts.get((gold, pred))
        if cached is not None:
            self.counts["cached"] += 1
            return cached
        if budget[0] <= 0:
            self.counts["timeouts"] += 1
            return None
        if not self._lock.acquire(timeout=LOCK_TIMEOUT_S):
            self.counts["timeouts"] += 1
            return None
        try:
            return self._judge_locked(gold, pred, budget)
        except Exception:  # noqa: BLE001 - a broken pipe or a bug: one wrong verdict, a fresh worker
            _log.debug("verifier worker failed", exc_info=True)
            self.counts["errors"] += 1
            self._kill()
            return None
        finally:
            self._lock.release()

    def _judge_locked(self, gold: str, pred: str, budget: list) -> bool | None:
        cached = self._verdicts.get((gold, pred))  # another thread may have judged it meanwhile
        if cached is not None:
            return cached
        for attempt in range(2):  # a worker that died before or during this judgement is replaced once
            restarts = self.counts["restarts"] + self.counts["errors"]
            verdict = self._send(gold, pred, budget)
            if verdict is not None or budget[0] <= 0 or self._proc is not None:
                return verdict
            if self.counts["restarts"] + self.counts["errors"] == restarts:
                return None  # unavailable
        return None

    def _send(self, gold: str, pred: str, budget: list) -> bool | None:
        now = time.monotonic()
        self._collect_late(now)
        if self._proc is None or self._proc.poll() is not None:
            if self._proc is not None:
                self.counts["errors"] += 1
                self._kill()
            if now < self._retry_at:
                self.counts["unavailable"] += 1
                return None
            self._start()
            if self._proc is None:
                self.counts["unavailable"] += 1
                return None
        sent = time.monotonic()
        expires = sent + budget[0]
        job = self._next_id = self._next_id + 1
        limit = max(budget[0], SYMBOLIC_JOB_LIMIT_S)  # it may finish late: the verdict is kept for next time
        self._pending[job] = (sent + limit + SYMBOLIC_GRACE_S, gold, pred)
        message = json.dumps([job, expires, limit, gold, pred]) + "\n"
        os.write(self._proc.stdin.fileno(), message.encode())
        self.counts["judged"] += 1
        try:
            return self._await(job, expires)
        finally:
            budget[0] -= time.monotonic() - sent

    def _await(self, job: int, expires: float) -> bool | None:
        while True:
            line = self._read_line(expires)
            if line is None:
                self.counts["timeouts"] += 1
                return None
            reply = self._handle(line)
            if reply is not None and reply[0] == job:
                verdict = reply[1]
                if not isinstance(verdict, bool):  # the worker gave up on it (its own limit) or failed
                    self.counts["timeouts" if verdict == "timeout" else "errors"] += 1
                    return None
                return verdict

    def _collect_late(self, now: float) -> None:
        """Read replies that came after their deadline (kept as verdicts); kill a worker stuck too long."""
        if self._proc is None or (not self._pending and self._ready):
            return
        while True:
            line = self._read_line(now)  # only what is already there
            if line is None:
                break
            reply = self._handle(line)
            if reply is not None and isinstance(reply[1], bool):
                self.counts["late"] += 1
        if self._proc is None:
            return
        if not self._ready:
            stuck = now - self._start_time > WORKER_START_TIMEOUT_S  # still importing: give it time
        else:
            stuck = bool(self._pending) and min(kill_at for kill_at, _, _ in self._pending.values()) < now
        if stuck:
            _log.info("verifier worker stuck on a judgement: restarting it")
            self._kill()

    def clear(self) -> None:
        """Forget every verdict, here and in the worker (for benchmarks that measure cold calls)."""
        self._verdicts.clear()
        with self._lock:
            if self._proc is not None and self._ready:
                try:
                    os.write(self._proc.stdin.fileno(), b'{"clear": true}\n')
                except OSError:
                    self._kill()


_WORKER = _Worker()


def start(warm: bool = False) -> None:
    """Start the worker now rather than on the first symbolic answer; block until it is ready (and,
    with warm=True, until it has parsed its warm-up shapes, as it does when idle after a start)."""
    with _WORKER._lock:
        if _WORKER._proc is None:
            _WORKER._start()
        until = time.monotonic() + WORKER_START_TIMEOUT_S
        while warm and _WORKER._proc is not None and not _WORKER._warm:
            line = _WORKER._read_line(until)
            if line is None:
                break
            _WORKER._handle(line)


@contextlib.contextmanager
def deadline(seconds: float):
    """Within this block each math-verify judgement may take `seconds` (evaluation, where a verdict
    matters more than time; training keeps SYMBOLIC_DEADLINE_S)."""
    global SYMBOLIC_DEADLINE_S
    before, SYMBOLIC_DEADLINE_S = SYMBOLIC_DEADLINE_S, seconds
    try:
        yield
    finally:
        SYMBOLIC_DEADLINE_S = before


def stop() -> None:
    """Stop the worker; the next symbolic judgement starts a fresh (cold) one."""
    with _WORKER._lock:
        _WORKER.stop()


def stats() -> dict:
    """Counters since import: judged (sent to math-verify), cached, timeouts (judged wrong for lack of
    time), late (verdicts that came after their deadline, kept for next time), restarts, errors,
    unavailable (no worker), start_s (seconds the first start took)."""
    return dict(_WORKER.counts)


def clear_caches() -> None:
    """Forget every answer and verdict seen so far, here and in the worker."""
    _classify.cache_clear()
    _value.cache_clear()
    _WORKER.clear()


# ----------------------------------------------------------------------------- the worker's side
# Judgements the worker makes after its start, so that the first real answers do not pay for sympy's
# lazy imports and the LaTeX parser's set-up (hundreds of ms the first time a shape is seen): the first
# _WARM_UP_BEFORE_READY before it says it is ready, the rest while idle. Written for this purpose; not
# taken from any benchmark.
_WARM_UP_BEFORE_READY = 10
_WARM_UP = [
    ("\\frac{\\sqrt{7}}{5}", "\\frac{7}{\\sqrt{5}}"),
    ("y = 3x - 7", "3x - y - 7 = 0"),
    ("3 - 4i", "-4i + 3"),
    ("x^4 + 2x^3 - x + 5", "5 - x + 2x^3 + x^4"),
    ("3\\sqrt{7}", "\\sqrt{63}"),
    ("\\frac{3 \\pi^2}{2}", "\\frac{3\\pi^2}{2}"),
    ("2 + 11i", "11i + 2"),
    ("2x + 3y - 6z + 9 = 0", "-4x - 6y + 12z - 18 = 0"),
    ("y = -4x", "4x + y = 0"),
    ("3t^2 + 5t - 2", "(3t - 1)(t + 2)"),
    ("(c - 3)(d + 4)", "cd + 4c - 3d - 12"),
    ("\\frac{7 + 3b}{12}", "\\frac{3b + 7}{12}"),
    ("\\tan \\theta", "\\frac{\\sin \\theta}{\\cos \\theta}"),
    ("\\sqrt{5 + 2\\sqrt{6}}", "\\sqrt{2} + \\sqrt{3}"),
    ("12 \\pi", "12\\pi"),
    ("\\frac{5000}{\\pi}", "\\frac{5000}{\\pi}"),
    ("7 + 3\\pi", "3\\pi + 7"),
    ("-\\infty", "-\\infty"),
    ("-\\frac{\\pi}{4}", "-\\frac{\\pi}{4}"),
    ("\\frac{2\\sqrt{5}}{7}", "\\frac{2}{7}\\sqrt{5}"),
    ("1.5\\pi", "\\frac{3\\pi}{2}"),
    ("e^{2}", "e^2"),
    ("\\log_2 5", "\\frac{\\ln 5}{\\ln 2}"),
    ("p + 2q", "2q + p"),
    ("\\pi", "3.14159"),
    ("2^{10}", "1024"),
    ("\\sqrt[3]{2}", "2^{1/3}"),
    ("\\cos x", "\\sin(\\frac{\\pi}{2} - x)"),
]


def _serve() -> None:
    """The worker: read [id, expires, limit, gold, pred] lines, write [id, verdict] lines.

    verdict: true / false, "timeout" (own limit hit), "expired" (the caller had already given up) or
    "error". Exits on end of input or when its parent is gone."""
    import signal

    out = os.fdopen(os.dup(1), "wb", buffering=0)  # replies go to the original stdout...
    os.dup2(2, 1)  # ...and anything printed by a library goes to stderr, not into the protocol
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; it ends us

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    import sympy
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    # math-verify's own unit list removes any trailing letter ("2c" -> "2"): units are removed here instead
    config = [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(
                basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
            ),
            boxed_match_priority=0,
        )
    ]

    class JobTimeout(BaseException):  # BaseException: math-verify's `except Exception` must not eat it
        pass

    def on_alarm(signum, frame):
        raise JobTimeout

    signal.signal(signal.SIGALRM, on_alarm)

    @lru_cache(maxsize=8192)
    def parsed(latex: str) -> tuple:
        return tuple(parse(f"${latex}$", extraction_config=config, parsing_timeout=None))

    def equations_equal(gold, pred):
        """Two equations equal up to rearrangement and a nonzero factor (9x^2 + 4y^2 = 36 and
        x^2/4 + y^2/9 = 1): True, False, or None to leave it to math-verify (whose own comparison
        solves both equations: 100+ ms for an ellipse)."""
        if not (isinstance(gold, sympy.Equality) and isinstance(pred, sympy.Equality)):
            return None
        gold_zero, pred_zero = gold.lhs - gold.rhs, pred.lhs - pred.rhs
        if gold_zero == 0 or pred_zero == 0:
            return None
        ratio = sympy.cancel(sympy.together(gold_zero / pred_zero))
        if ratio.is_number:
            return bool(ratio.is_finite and ratio != 0)
        if gold_zero.is_polynomial() and pred_zero.is_polynomial():
            return False  # polynomials that are not multiples of each other: different curves
        return None

    def judge(gold: str, pred: str, limit: float):
        signal.setitimer(signal.ITIMER_REAL, max(limit, 0.01))
        try:
            gold_parsed, pred_parsed = parsed(gold), parsed(pred)
            if not gold_parsed or not pred_parsed:
                return False
            same = equations_equal(gold_parsed[0], pred_parsed[0])
            if same is not None:
                return same
            return bool(
                verify(list(gold_parsed), list(pred_parsed), float_rounding=FLOAT_ROUNDING, timeout_seconds=None)
            )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def safe_judge(gold: str, pred: str, limit: float):
        try:
            return judge(gold, pred, limit)
        except JobTimeout:
            return "timeout"
        except Exception:  # noqa: BLE001
            return "error"

    parent = os.getppid()
    for pair in _WARM_UP[:_WARM_UP_BEFORE_READY]:  # sympy imports much of itself on first use
        safe_judge(*pair, limit=2.0)
    out.write(json.dumps({"ready": os.getpid()}).encode() + b"\n")
    warm_up, buffer = list(_WARM_UP[_WARM_UP_BEFORE_READY:]), b""
    while True:
        if b"\n" not in buffer:
            idle = 0 if warm_up else 1.0
            try:
                readable, _, _ = select.select([0], [], [], idle)
            except JobTimeout:
                continue
            if not readable:
                if os.getppid() != parent:
                    return  # orphaned
                if warm_up:
                    safe_judge(*warm_up.pop(0), limit=2.0)
                    if not warm_up:
                        out.write(b'{"warm": true}\n')
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return  # the parent closed our input: it is done or gone
            buffer += chunk
            continue
        line, buffer = buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            if message.get("clear"):
                parsed.cache_clear()
            continue
        job, expires, limit, gold, pred = message
        verdict = "expired" if time.monotonic() > expires else safe_judge(gold, pred, limit)
        out.write(json.dumps([job, verdict]).encode() + b"\n")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Judge one answer against a reference, as the rewards do.")
    parser.add_argument("pred", nargs="?", help="the answer, e.g. '\\frac{1}{2}'")
    parser.add_argument("gold", nargs="?", help="the reference, e.g. 0.5")
    parser.add_argument("--serve", action="store_true", help="run as the math-verify worker (internal)")
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
        return 0
    if args.pred is None or args.gold is None:
        parser.error("give an answer and a reference: python verifier.py '1/2' '0.5'")
    print(
        f"{clean(args.pred)!r} vs {clean(args.gold)!r}: {'equal' if answers_equal(args.pred, args.gold) else 'not equal'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
