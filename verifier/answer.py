"""Parsing: one answer's text -> an Answer (cleaned text, kind, label, unit, values, elements).

Kinds: number | set | tuple | union | matrix | based | choice | word | time | expr | invalid. A tuple with
brackets such as `[)` is also an interval; an inequality in one variable is classified as one. What
two Answers have to be to count as equal is decided in judge.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from . import limits
from .cleaning import clean_text
from .numeric import DECIMAL, MIXED_SPACED, PLAIN_INT, number
from .structures import (
    bracketed,
    chain_end,
    conjunction,
    has_relation,
    inequality,
    matrix,
    split_label,
    split_top,
    split_word,
    top_level_split,
)

_MALFORMED = re.compile(r"^(?:[=<>,;*/^_]|\\(?:le|ge|leq|geq|in)\b)|(?:[=<>,;+\-*/^_]|\\(?:le|ge|leq|geq|in))$")
_BASED = re.compile(r"(?P<digits>[0-9A-Za-z]{1,40})_\s*\{?\s*(?:\\text\s*\{\s*)?(?P<base>\d{1,2})\s*\}?\s*\}?")
_CHOICE = re.compile(r"\(\s*([A-Za-z])\s*\)|([A-Z])")
_CHOICE_EXPLAINED = re.compile(r"\(?([A-E])\)?[.:]\s+\S.{0,100}")  # "C. x = 42": choice C, then its content
_WORD = re.compile(r"[A-Za-z][A-Za-z' \-]*[A-Za-z]")


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer, cleaned and classified."""

    kind: str
    text: str = ""  # the cleaned answer (what math-verify sees), label included
    body: str = ""  # text without a leading "x =" label
    label: str | None = None  # what the answer names: "x" of "x = 5", "(a,b)" of "(a,b) = (4,1)", spaces removed
    unit: str | None = None  # canonical unit, e.g. "cm^2", "%", "$"
    values: frozenset | None = None  # number: {value}; set: the values when every element is a plain number
    elements: tuple = ()  # set, tuple, union: the elements as text; matrix: the rows
    brackets: str = ""  # tuple: its opening and closing bracket, e.g. "(]"
    based: tuple[str, int] | None = None  # (digits, base)
    word: str | None = None  # a choice letter or a word, case-folded


INVALID = Answer("invalid")


def clean(answer: str) -> str:
    """The answer as the verifier reads it (decorations, box and unit removed), for display and tests.

    >>> clean("$\\\\boxed{90^\\\\circ}$"), clean("\\\\$32,\\\\!348"), clean("\\\\left( 3, \\\\dfrac{\\\\pi}{2} \\\\right)")
    ('90', '32,348', '(3, \\\\frac{\\\\pi}{2})')
    """
    return classify(answer).text if isinstance(answer, str) else ""


def parse_number(answer) -> Fraction | None:
    """The exact value of an answer written as one plain number, or None.

    Accepts integers, decimals, scientific notation with a small exponent, thousands separators,
    a/b, \\frac{a}{b}, mixed numbers, with what cleaning removes (box, $, units, "x ="). Anything
    else (an expression, several numbers, a number in a base, nan, inf, 1/0) is None.

    >>> parse_number("$\\\\boxed{1,000}$"), parse_number("\\\\frac{1}{2}"), parse_number("34 or 35")
    (Fraction(1000, 1), Fraction(1, 2), None)
    """
    if not isinstance(answer, str) or len(answer) > limits.MAX_ANSWER_CHARS:
        return None
    return _value(answer)


@lru_cache(maxsize=65536)
def _value(answer: str) -> Fraction | None:
    parsed = classify(answer)
    return Fraction(next(iter(parsed.values))) if parsed.kind == "number" else None


@lru_cache(maxsize=65536)  # the same answers and references recur across a group and the four rewards
def classify(raw: str) -> Answer:
    s = raw.strip()
    if PLAIN_INT.fullmatch(s):  # the common case in training: a bare integer (an int equals its Fraction)
        return Answer("number", s, s, values=frozenset([int(s)]))
    if len(s) > limits.MAX_ANSWER_CHARS:
        return INVALID
    fast = _fast_path(s)
    if fast is not None:
        return fast
    cleaned = clean_text(s)
    if cleaned is None:
        return INVALID
    s, unit, was_text = cleaned
    if unit == "conflict" or not s or _MALFORMED.search(s):
        return INVALID
    return _classify_clean(s, unit, was_text)


_SIMPLE_WRAP = re.compile(r"\$\s*(?P<a>[^$\\{}]*?)\s*\$|\\boxed\s*\{\s*(?P<b>[^$\\{}]*?)\s*\}")
_SIMPLE_LABEL = re.compile(r"(?P<var>[A-Za-z])\s*=\s*(?P<rest>[+-]?\d[\d.]*)")
_SIMPLE_LIST = re.compile(r"[+-]?\d{1,20}(?:\s*,\s+[+-]?\d{1,20})+")


def _fast_path(s: str) -> Answer | None:
    """The shapes a model writes most ("34.0", "$34$", "\\boxed{34}", "x = 34", "33, 34"), classified
    without the full cleaning (the same result, a few times faster); None for anything else."""
    match = _SIMPLE_WRAP.fullmatch(s)
    if match:
        s = match.group("a") if match.group("a") is not None else match.group("b")
        if PLAIN_INT.fullmatch(s):
            return Answer("number", s, s, values=frozenset([int(s)]))
    if DECIMAL.fullmatch(s):
        value = number(s)
        return Answer("number", s, s, values=frozenset([value])) if value is not None else None
    match = _SIMPLE_LABEL.fullmatch(s)
    if match and DECIMAL.fullmatch(match.group("rest")):
        rest = match.group("rest")
        return Answer("number", s, rest, match.group("var"), values=frozenset([number(rest)]))
    if _SIMPLE_LIST.fullmatch(s):
        items = [item.strip() for item in s.split(",")]
        return Answer("set", s, s, values=frozenset(int(i) for i in items), elements=tuple(items))
    return None


def _classify_clean(s: str, unit: str | None, was_text: bool) -> Answer:
    compact = s.replace(" ", "")
    match = _BASED.fullmatch(compact)
    if match:
        digits, base = match.group("digits").upper().lstrip("0") or "0", int(match.group("base"))
        if 2 <= base <= 36 and all(int(d, 36) < base for d in digits):
            return Answer("based", s, s, unit=unit, based=(digits, base))
        return INVALID
    match = _CHOICE.fullmatch(s) or _CHOICE_EXPLAINED.fullmatch(s)
    if match:
        return Answer("choice", s, s, unit=unit, word=(match.group(1) or match.group(2)).upper())
    if was_text and _WORD.fullmatch(s):
        return Answer("word", s, s, unit=unit, word=" ".join(s.casefold().split()))
    label, body = split_label(s)
    clock = _CLOCK.fullmatch(body)
    if clock and (clock.group("m") or clock.group("half")):  # 20:34, 9 pm; a bare 9 is a number
        seconds = _seconds(clock)
        return Answer("time", s, body, label, unit, word=str(seconds)) if seconds is not None else INVALID
    s = chain_end(s)
    solutions = _labelled_solutions(s)
    if solutions is not None:
        label, tuples = solutions
        return _set(s, ", ".join(tuples), label, unit, tuples)
    label, body = split_label(s)
    value = number(body)
    if value is not None:
        return Answer("number", s, body, label, unit, frozenset([value]))
    if body.startswith("\\{") and body.endswith("\\}"):
        return _set(s, body, label, unit, split_top(body[2:-2]))
    items = split_top(body)
    if len(items) > 1:
        union = _union_of_inequalities(items) if label is None else None
        if union is not None:
            label, parts = union
            return Answer("union", s, ", ".join(parts), label, unit, elements=tuple(parts))
        return _set(s, body, label, unit, items)
    tuple_ = bracketed(body)
    if tuple_:
        return Answer("tuple", s, body, label, unit, elements=tuple(tuple_[1]), brackets=tuple_[0] + tuple_[2])
    if label is None and "\\land" in body:  # x > 2 and x < 5: both hold
        both = conjunction(body)
        if both is None:
            return INVALID
        variable, (opening, low, high, closing) = both
        text = f"{opening}{low}, {high}{closing}"
        return Answer("tuple", s, text, variable, unit, elements=(low, high), brackets=opening + closing)
    if label is None and has_relation(body):
        found = inequality(body)
        if found is not None:  # 1 \\le |z| \\le 2, 2x < 4, x^2 \\le 9: the intervals of the variable
            variable, parts = found
            texts = tuple(f"{opening}{low}, {high}{closing}" for opening, low, high, closing in parts)
            if len(parts) > 1:
                return Answer("union", s, " \\cup ".join(texts), variable, unit, elements=texts)
            opening, low, high, closing = parts[0]
            return Answer("tuple", s, texts[0], variable, unit, elements=(low, high), brackets=opening + closing)
    rows = matrix(body)
    if rows:
        return Answer("matrix", s, body, label, unit, elements=rows)
    if "\\cup" in body:
        parts = split_word(body, "\\cup")
        if len(parts) > 1 and all(parts):
            return Answer("union", s, body, label, unit, elements=tuple(parts))
    for sign in ("\\pm", "\\mp"):
        if body.count(sign) == 1:  # 1 \pm \sqrt{19}: two answers
            plus, minus = ("+", "-") if sign == "\\pm" else ("-", "+")
            return _set(s, body, label, unit, [body.replace(sign, plus), body.replace(sign, minus)])
    if MIXED_SPACED.search(body):
        return INVALID  # "1 3/2", "x + 1 1/2": not a mixed number alone, and math-verify would read 13/2
    return Answer("expr", s, body, label, unit)


# A clock time: 20:34, 20:34:00, 8:34 pm, 9 am, 8:34 \\text{ P.M.} (two-digit minutes: 3:5 stays a ratio)
_CLOCK = re.compile(
    r"(?P<h>\d{1,2})(?::(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?)?(?:\s*(?:\\text\s*\{\s*)?(?P<half>[AaPp])\.?\s*[Mm]\.?\s*\}?)?"
)


def _seconds(clock: re.Match) -> int | None:
    """Seconds after midnight, or None for a time that does not exist (25:00, 13:00 pm)."""
    hours, minutes, seconds = (int(clock.group(k) or 0) for k in ("h", "m", "s"))
    half = (clock.group("half") or "").lower()
    if half:
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if half == "p" else 0)
    if hours > 24 or (hours == 24 and minutes + seconds > 0):
        return None
    return (hours % 24) * 3600 + minutes * 60 + seconds


def _set(s: str, body: str, label: str | None, unit: str | None, items: list[str]) -> Answer:
    """Several answers: order and repeats do not matter. Their values, when all are plain numbers."""
    if not all(items):
        return INVALID  # "1,,2", "1,"
    values = []
    for item in items:
        item_label, item_body = split_label(item)
        values.append(number(item_body) if item_label in (None, label) or label is None else None)
    known = frozenset(values) if all(v is not None for v in values) else None
    return Answer("set", s, body, label, unit, known, elements=tuple(items))


_SEMICOLON = re.compile(r";")


def _labelled_solutions(s: str) -> tuple[str, list[str]] | None:
    """`m=3, n=1; m=5, n=1` -> ("(m,n)", ["(3, 1)", "(5, 1)"]): solutions separated by semicolons, each
    naming the same variables in the same order; None for anything else."""
    if "=" not in s:
        return None
    groups = top_level_split(s, _SEMICOLON)[0] if ";" in s else _repeating_groups(s)
    if groups is None:
        return None
    names, tuples = None, []
    for group in groups:
        pairs = [split_label(item) for item in split_top(group)]
        if len(pairs) < 2 or any(label is None for label, _ in pairs):
            return None
        labels = [label for label, _ in pairs]
        if len(set(labels)) != len(labels) or (names is not None and labels != names):
            return None
        names = labels
        tuples.append("(" + ", ".join(value for _, value in pairs) + ")")
    return "(" + ",".join(names) + ")", tuples


def _repeating_groups(s: str) -> list[str] | None:
    """`m=3, n=1, m=5, n=1` (written with "and" between the solutions) -> ["m=3, n=1", "m=5, n=1"]: a list
    of labelled values whose names repeat in the same order; None for anything else."""
    items = split_top(s)
    labels = [split_label(item)[0] for item in items]
    if None in labels:
        return None
    for size in range(2, len(items) // 2 + 1):
        if (
            len(items) % size == 0
            and len(set(labels[:size])) == size
            and labels == labels[:size] * (len(items) // size)
        ):
            return [", ".join(items[i : i + size]) for i in range(0, len(items), size)]
    return None


def _union_of_inequalities(items: list[str]) -> tuple[str, list[str]] | None:
    """`x < -1, x > 2` (from "x < -1 or x > 2") -> ("x", ["(-\\infty, -1)", "(2, \\infty)"]), when every
    item is an inequality in the same variable; None otherwise."""
    found = [inequality(item) if has_relation(item) else None for item in items]
    if any(f is None for f in found) or len({f[0] for f in found}) != 1:
        return None
    return found[0][0], [
        f"{opening}{low}, {high}{closing}" for _, parts in found for opening, low, high, closing in parts
    ]
