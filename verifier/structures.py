"""Structures: lists, tuples, intervals, inequalities, matrices and labels, split by text in-process
(math-verify's grammar takes 50 ms to seconds to parse a bracketed list, a few ms per element).

- A bare list (`1, -2`, `1; -2`) is a set; a bracketed one (`(1, 2]`) a tuple or an interval.
- An inequality in one variable is an interval (`2 < t < 9` is `(2, 9)`, `x \\ge 1` is `[1, \\infty)`);
  several joined by "or" are a union; one in `|x|` is the intervals of x (`1 \\le |x| \\le 2` is
  `[-2, -1] \\cup [1, 2]`).
- A label is the name of what the answer gives: `x`, `(a, b)`, `\\frac{AM}{MB}`, `[ABC]:[ABD]`, `f(2)`.
  It holds letters only (digits only in subscripts), no arithmetic, and none of its letters appear in
  the value: `x + 1 = 34` and `y = 2x` keep their relation.
- A chain `x = 2 + 3 + 4 = 9` (two or more `=`, ending in a value) is its last member, with its label.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .numeric import arithmetic, number, polynomial


def split_top(s: str) -> list[str]:
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


def bracketed(s: str) -> tuple[str, list[str], str] | None:
    """(opening, elements, closing) for a tuple or interval such as (1, 2], [a; b], or None."""
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        return None
    depth = 0
    for i, c in enumerate(s):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and i < len(s) - 1:
            return None  # (1, 2) \cup (3, 4), (a+b)(c+d)
    elements = split_top(s[1:-1])
    return (s[0], elements, s[-1]) if len(elements) >= 2 and all(elements) else None


def split_word(s: str, separator: str) -> list[str]:
    """s split at a LaTeX command (\\cup, \\pm) outside every bracket, not where it begins a longer word."""
    return top_level_split(s, re.compile(re.escape(separator) + r"(?![^\W\d_])"))[0]


_MATRIX_ENV = re.compile(r"\\begin\s*\{pmatrix\}(?P<body>.*)\\end\s*\{pmatrix\}", re.DOTALL)


def matrix(s: str) -> tuple[tuple[str, ...], ...] | None:
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


# ----------------------------------------------------------------------------- relations
_RELATION = re.compile(r"=|<|>|\\(?:le|ge|leq|geq|neq|ne|lt|gt|in|leqslant|geqslant)\b")
_LESS = {"<=": "<=", "<": "<", "\\lt": "<", "\\le": "<=", "\\leq": "<=", "\\leqslant": "<="}
_MORE = {">=": ">=", ">": ">", "\\gt": ">", "\\ge": ">=", "\\geq": ">=", "\\geqslant": ">="}
_INEQUALITY = re.compile(r"\\(?:leqslant|geqslant|leq|geq|le|ge|lt|gt)(?![A-Za-z])|<=|>=|<|>")
_INFINITY = re.compile(r"^\+?\s*\\infty$")


def has_relation(s: str) -> bool:
    return bool(_RELATION.search(s))


def top_level_split(s: str, pattern: re.Pattern) -> tuple[list[str], list[str]]:
    """s split at the matches of pattern outside every bracket: (parts, separators)."""
    parts, separators, depth, start = [], [], 0, 0
    i = 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            match = pattern.match(s, i)
            if match and match.end() > i:
                parts.append(s[start:i].strip())
                separators.append(match.group(0))
                start = i = match.end()
                continue
        i += 1
    parts.append(s[start:].strip())
    return parts, separators


_COMMAND = re.compile(r"\\[A-Za-z]+")
_LABEL_COMMANDS = {
    "\\frac",
    "\\angle",
    "\\measuredangle",
    "\\triangle",
    "\\overline",
    "\\overrightarrow",
    "\\vec",
    "\\widehat",
    "\\hat",
    "\\text",
    "\\mathrm",
    "\\operatorname",
    "\\alpha",
    "\\beta",
    "\\gamma",
    "\\delta",
    "\\theta",
    "\\phi",
    "\\varphi",
    "\\lambda",
    "\\mu",
    "\\omega",
    "\\sigma",
    "\\rho",
    "\\tau",
    "\\epsilon",
    "\\varepsilon",
    "\\psi",
    "\\Delta",
    "\\Omega",
    "\\Phi",
    "\\Gamma",
    "\\Theta",
    "\\Lambda",
    "\\Sigma",
    "\\Psi",
}
_SUBSCRIPT = re.compile(r"_\s*(?:\{[^{}]*\}|[A-Za-z0-9])")
_LABEL_CHARS = re.compile(r"[A-Za-z\s{}()\[\],:|']*")


def is_label(s: str) -> bool:
    """True when s names a quantity: letters (digits only in subscripts), brackets, commas, colons and
    the commands in _LABEL_COMMANDS; no arithmetic, no powers, no numbers."""
    s = s.strip()
    if not s or len(s) > 40 or "\\\\" in s:
        return False
    bare = _SUBSCRIPT.sub("", s)
    for command in _COMMAND.findall(bare):
        if command not in _LABEL_COMMANDS:
            return False
    bare = _COMMAND.sub(" ", bare)
    return bool(re.search(r"[A-Za-z]", bare)) and bool(_LABEL_CHARS.fullmatch(bare))


def label_letters(label: str) -> set[str]:
    """The variable letters of a label (command names and subscripts left out)."""
    return set(re.findall(r"[A-Za-z]", _COMMAND.sub(" ", _SUBSCRIPT.sub("", label))))


def normal_label(label: str) -> str:
    return re.sub(r"[\s{}]", "", label)


def split_label(s: str) -> tuple[str | None, str]:
    """(label, value) for `label = value`, `label \\in value` or `value = x`, else (None, s)."""
    parts, separators = top_level_split(s, re.compile(r"=|\\in(?![A-Za-z])"))
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None, s
    left, right = parts
    if is_label(left) and not has_relation(right):
        label, rest = left, right
    elif (
        separators[0] == "=" and re.fullmatch(r"[A-Za-z](?:_\{?[A-Za-z0-9]{1,3}\}?)?", right) and not has_relation(left)
    ):
        label, rest = right, left  # "5 = x"
    else:
        return None, s
    function = _FUNCTION_LABEL.fullmatch(normal_label(label))
    letters = {function.group(1)} if function else label_letters(label)  # f(x) = x^2 names f(x); x may appear
    rest_letters = set(re.findall(r"(?<![A-Za-z\\])[A-Za-z](?![A-Za-z])", _COMMAND.sub(" ", rest)))
    if letters & rest_letters:
        return None, s  # y = 2y - 3, f(x) = f(-x): an equation, not a label
    return normal_label(label), rest


_FUNCTION_LABEL = re.compile(r"([A-Za-z])\(([A-Za-z])\)")


def labels_match(a: str | None, b: str | None) -> bool:
    """Whether two answers' labels allow them to be equal: the same label, or one of them has none
    (`x = 5` and 5), or `y` and a function of one variable (`y = 2x + 3` and `f(x) = 2x + 3` give the
    same graph). `x = 5` and `y = 5`, `f(x) = ...` and `g(x) = ...` do not match."""
    if a is None or b is None or a == b:
        return True
    return {a, b} & {"y"} != set() and any(_FUNCTION_LABEL.fullmatch(label) for label in (a, b))


def chain_end(s: str) -> str:
    """A chain is judged by its last member, with its label: `x = 5 + 5 + 1 = 11` -> `x = 11`,
    `1 = y = x = 0` -> `0` (Math-Verify's rule: the members before the last are working, and only the
    final answer is graded, so `x = 5 + 5 + 1 = 7 = 11` is 11 too). A chain has two or more `=` and ends
    in a value (no variable); one `=` between equal plain arithmetic (`\\frac{6}{4} = 1.5`) is its right
    side. Anything else is unchanged: a single equation (`x + 1 = 34`, `6/4 = 2`), a list (`x = 1, y = 2`),
    a chain with an inequality, equations such as a line's `\\frac{x-1}{2} = \\frac{y}{3} = \\frac{z+1}{4}`
    (its last member alone is not the line). Only one member is ever judged, so a chain cannot hedge."""
    if "=" not in s or any(r in s for r in ("<", ">", "\\le", "\\ge", "\\ne", "\\in")):
        return s
    members, _ = top_level_split(s, re.compile(r"="))
    if not all(members) or len(split_top(s)) > 1:
        return s
    if len(members) >= 3 and not re.search(r"[A-Za-z]", _COMMAND.sub(" ", members[-1])):
        label = members[0] if is_label(members[0]) else None
        return f"{label} = {members[-1]}" if label is not None else members[-1]
    evaluated = [arithmetic(v) for v in members]
    if len(members) == 2 and evaluated[0] is not None and evaluated[0] == evaluated[1]:
        return members[-1]
    return s


_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


def _negated(left: str, right: str) -> tuple[str, str] | None:
    """(x, -a) for `-x` against a plain number a: both sides times -1 (the relation turns round)."""
    if not left.startswith("-") or not is_label(left[1:]):
        return None
    value = number(right)
    if value is None:
        return None
    return left[1:].strip(), _fraction_text(-value)


def _fraction_text(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def interval(s: str) -> tuple[str | None, str, str, str] | None:
    """An inequality in one variable as (variable, opening bracket, low, high, closing bracket) text:
    `1 \\le y < 4` -> ("y", "[", "1", "4", ")"); `x > 3` -> ("x", "(", "3", "\\infty", ")"); else None."""
    parts, relations = top_level_split(s, _INEQUALITY)
    if not 1 <= len(relations) <= 2 or not all(parts):
        return None
    if len(relations) == 2:
        low, variable, high = parts
        kinds = [_LESS.get(r) or _MORE.get(r) for r in relations]
        if all(r in _LESS for r in relations):
            opening, closing = ("[" if kinds[0] == "<=" else "("), ("]" if kinds[1] == "<=" else ")")
        elif all(r in _MORE for r in relations):
            low, high = high, low
            opening, closing = ("[" if kinds[1] == ">=" else "("), ("]" if kinds[0] == ">=" else ")")
        else:
            return None
    else:
        left, right = parts
        relation = relations[0]
        negated = _negated(left, right)
        if negated is not None:  # -x >= -1 is x <= 1
            left, right = negated
            relation = _FLIPPED[_LESS.get(relation) or _MORE.get(relation)]
        if is_label(left) and not is_label(right):
            variable, bound, less = left, right, relation in _LESS
        elif is_label(right) and not is_label(left):
            variable, bound, less = right, left, relation in _MORE  # 3 > x is x < 3
        else:
            return None
        strict = (_LESS.get(relation) or _MORE.get(relation)) in ("<", ">")
        if less:
            low, high, opening, closing = "-\\infty", bound, "(", (")" if strict else "]")
        else:
            low, high, opening, closing = bound, "\\infty", ("(" if strict else "["), ")"
    if (
        not is_label(variable)
        or "|" in variable
        or label_letters(variable) & set(re.findall(r"[A-Za-z]", _COMMAND.sub(" ", low + high)))
    ):
        return None
    low, high = ("\\infty" if _INFINITY.match(x) else x for x in (low, high))
    return normal_label(variable), opening, low, high, closing


_MIRROR = {"(": ")", "[": "]", ")": "(", "]": "["}


def absolute_interval(s: str) -> tuple[str, list[tuple[str, str, str, str]]] | None:
    """An inequality in the absolute value of one variable, with plain-number bounds, as the intervals
    of the variable it allows: `1 \\le |z| \\le \\frac32` -> ("z", [("[", "-\\frac{3}{2}", "-1", "]"),
    ("[", "1", "\\frac{3}{2}", "]")]); `|x| < 2` -> ("x", [("(", "-2", "2", ")")]); None for anything
    else (a bound that is not a number, one that allows every value or none). The variable is taken
    as real: the statement is about z, so it is not the interval of |z| (`[1, \\frac32]` alone)."""
    if s.count("|") != 2:
        return None
    match = re.search(r"\|([^|]*)\|", s)
    inner = match.group(1).strip()
    if not is_label(inner) or not has_relation(s):
        return None
    found = interval(s[: match.start()] + " " + inner + " " + s[match.end() :])
    if found is None or found[0] != normal_label(inner):
        return None
    variable, opening, low, high, closing = found
    low_value = None if low == "-\\infty" else number(low)
    high_value = None if high == "\\infty" else number(high)
    if low_value is None and high_value is not None and high_value > 0:  # |x| < b: -b < x < b
        return variable, [(_MIRROR[closing], _fraction_text(-high_value), _fraction_text(high_value), closing)]
    if high_value is None and low_value is not None and low_value > 0:  # |x| > a: x < -a or x > a
        return variable, [
            ("(", "-\\infty", _fraction_text(-low_value), _MIRROR[opening]),
            (opening, _fraction_text(low_value), "\\infty", ")"),
        ]
    if low_value is not None and high_value is not None and 0 < low_value < high_value:  # both
        low_text, high_text = _fraction_text(low_value), _fraction_text(high_value)
        return variable, [
            (_MIRROR[closing], f"-{high_text}", f"-{low_text}", _MIRROR[opening]),
            (opening, low_text, high_text, closing),
        ]
    return None


def _constant(s: str) -> Fraction | None:
    """The exact value of a bound written as a number or plain arithmetic (`3\\frac18`, `3.125`, `-99`)."""
    value = number(s)
    return value if value is not None else arithmetic(s)


def solved_interval(s: str) -> tuple[str, list[tuple[str, str, str, str]]] | None:
    """An inequality that is an interval (or two) of one variable once solved: a linear one scaled or moved
    (`2x < 4`, `-99 \\le 9-12r \\le 45`, `x + 1 \\ge 3 - x`) or a quadratic one (`x^2 \\le 9`,
    `x^2 - 5x + 6 > 0`; `x^2 < 2` has the ends -\\sqrt{2} and \\sqrt{2}), with number bounds. Returns
    (variable, [(opening, low, high, closing), ...]) as absolute_interval does; None for anything else: a
    bound that is not a number, a quadratic with a double root or none (true for all values but one, or
    for none), more than one variable."""
    parts, relations = top_level_split(s, _INEQUALITY)
    if not 1 <= len(relations) <= 2 or not all(parts):
        return None
    kinds = [_LESS.get(r) or _MORE.get(r) for r in relations]
    if len(relations) == 2:  # low < a v + b < high
        if not (all(r in _LESS for r in relations) or all(r in _MORE for r in relations)):
            return None
        low, high = _constant(parts[0]), _constant(parts[2])
        found = polynomial(parts[1])
        if low is None or high is None or found is None or found[1][2] != 0 or found[1][1] == 0:
            return None
        variable, (b, a, _) = found
        ends = [(low - b) / a, (high - b) / a]
        strict = [k in ("<", ">") for k in kinds]
        if all(r in _MORE for r in relations):
            ends.reverse()
            strict.reverse()
        if a < 0:
            ends.reverse()
            strict.reverse()
        if ends[0] >= ends[1]:
            return None
        return variable, [_bracketed(ends[0], ends[1], strict[0], strict[1])]
    left, right = parts
    found = polynomial(f"{left}-({right})") if any(c.isalpha() for c in left + right) else None
    if found is None:
        return None
    variable, (c0, c1, c2) = found
    less = kinds[0] in ("<", "<=")  # c2 v^2 + c1 v + c0 < 0 (or <= 0)
    strict = kinds[0] in ("<", ">")
    if c2 == 0:
        if c1 == 0:
            return None
        root = -c0 / c1
        if (c1 > 0) == less:  # v < root
            return variable, [_bracketed(None, root, True, strict)]
        return variable, [_bracketed(root, None, strict, True)]
    discriminant = c1 * c1 - 4 * c2 * c0
    if discriminant <= 0:
        return None  # a double root or none: every value but one, one value, all or none
    root = _rational_sqrt(discriminant)
    if root is not None:
        low, high = sorted([(-c1 - root) / (2 * c2), (-c1 + root) / (2 * c2)])
    else:  # p -/+ sqrt(q): x^2 < 2 is -\\sqrt{2} < x < \\sqrt{2}
        middle, radicand = -c1 / (2 * c2), discriminant / (4 * c2 * c2)
        centre = f"{_fraction_text(middle)} " if middle else ""
        low, high = f"{centre}-\\sqrt{{{_fraction_text(radicand)}}}", f"{centre}+\\sqrt{{{_fraction_text(radicand)}}}"
        high = high.lstrip("+")
    if (c2 > 0) == less:  # between the roots
        return variable, [_bracketed(low, high, strict, strict)]
    return variable, [_bracketed(None, low, True, strict), _bracketed(high, None, strict, True)]


def _bracketed(low, high, low_strict: bool, high_strict: bool) -> tuple[str, str, str, str]:
    return (
        "(" if low is None or low_strict else "[",
        "-\\infty" if low is None else low if isinstance(low, str) else _fraction_text(low),
        "\\infty" if high is None else high if isinstance(high, str) else _fraction_text(high),
        ")" if high is None or high_strict else "]",
    )


def _rational_sqrt(value: Fraction) -> Fraction | None:
    if value < 0:
        return None
    numerator, denominator = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if numerator * numerator != value.numerator or denominator * denominator != value.denominator:
        return None
    return Fraction(numerator, denominator)


def inequality(s: str) -> tuple[str, list[tuple[str, str, str, str]]] | None:
    """The intervals of the one variable an inequality allows: in that variable directly (interval), in
    its absolute value (absolute_interval), or once solved (solved_interval); None for anything else."""
    absolute = absolute_interval(s)
    if absolute is not None:
        return absolute
    found = interval(s)
    if found is not None:
        variable, opening, low, high, closing = found
        return variable, [(opening, low, high, closing)]
    return solved_interval(s)


def conjunction(s: str) -> tuple[str, tuple[str, str, str, str]] | None:
    """`x > 2 \\land x < 5` (cleaning's mark for "and" between inequalities) -> ("x", ("(", "2", "5", ")")):
    both hold, so the answer is the intersection of two intervals of the same variable with number ends;
    None for anything else (different variables, an end that is not a number, an empty intersection)."""
    parts = top_level_split(s, re.compile(r"\\land(?![A-Za-z])"))[0]
    if len(parts) != 2:
        return None
    found = [inequality(part) for part in parts]
    if None in found or found[0][0] != found[1][0] or len(found[0][1]) != 1 or len(found[1][1]) != 1:
        return None
    (opening_a, low_a, high_a, closing_a), (opening_b, low_b, high_b, closing_b) = found[0][1][0], found[1][1][0]
    lows = [(_end_value(low_a, -1), opening_a == "(", low_a), (_end_value(low_b, -1), opening_b == "(", low_b)]
    highs = [(_end_value(high_a, 1), closing_a == ")", high_a), (_end_value(high_b, 1), closing_b == ")", high_b)]
    if any(value is None for value, _, _ in lows + highs):
        return None
    low = max(lows, key=lambda end: (end[0], end[1]))  # the larger low end; open beats closed at a tie
    high = min(highs, key=lambda end: (end[0], not end[1]))
    if not low[0] < high[0]:
        return None
    return found[0][0], ("(" if low[1] else "[", low[2], high[2], ")" if high[1] else "]")


def _end_value(text: str, infinite_sign: int) -> float | Fraction | None:
    """An interval end as a number to compare: +-infinity for the open ends, None when it is not a number."""
    if text in ("\\infty", "-\\infty"):
        return math.inf * infinite_sign
    return _constant(text)
