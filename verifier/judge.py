"""The dispatcher: answers_equal decides whether two parsed answers are equal, one small rule per
kind (numbers, sets, tuples and intervals, matrices, bases, letters and words, the rest by math-verify).
A new kind of answer is parsed in answer.py (with structures.py) and compared here.
"""

from __future__ import annotations

import logging
import re
from fractions import Fraction

from . import limits
from .answer import Answer, classify
from .numeric import equation_identity, identity, number
from .shape import bounded
from .structures import has_relation, labels_match, split_label
from .symbolic import WORKER, Undecided

_log = logging.getLogger("verifier")
_DIGIT_SUBSCRIPT = re.compile(r"[0-9]\s*_")
_WORD = re.compile(r"[A-Za-z][A-Za-z' \-]*[A-Za-z]")


def answers_equal(pred: str | None, gold: str | None) -> bool | None:
    """True when the answer `pred` is mathematically equal to the reference `gold`, False when it is not,
    None when undecided: math-verify gave no verdict within limits.SYMBOLIC_CPU_S of its CPU time or the
    wall-clock backstop, or no worker could start (real answers do not get there: the shape screen
    keeps sympy's work small). None is falsy, so `if answers_equal(...)` never pays an undecided answer.

    Never raises. Microseconds unless math-verify is needed; threads queue for the one worker.

    >>> answers_equal("x = 34", "34"), answers_equal("34 or 35", "34"), answers_equal("52_9", "52_8")
    (True, False, False)
    """
    if not isinstance(pred, str) or not isinstance(gold, str) or len(pred) > limits.MAX_ANSWER_CHARS:
        return False
    try:
        p, g = classify(pred), classify(gold)
        if p.values is not None and g.values is not None:
            return _numbers_equal(p, g)
        return _equal(p, g, [limits.SYMBOLIC_CPU_S])
    except Undecided:
        WORKER.counts["undecided"] += 1
        return None
    except Exception:  # noqa: BLE001 - a bug here must cost one verdict (the same each time), not a run
        _log.debug("answers_equal failed on %r vs %r", pred, gold, exc_info=True)
        return False


_COMMAND = re.compile(r"\\[A-Za-z]+")
_FUNCTION = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc|ln|log|exp)(?![A-Za-z])")
_HAS_VARIABLE = re.compile(r"[A-DF-HJ-Za-df-hj-z]")  # a letter other than e and i, which are constants
_SEVERAL = ("set", "tuple", "union", "matrix")


def _numbers_equal(p: Answer, g: Answer) -> bool:
    """Plain numbers, or sets of them, exactly. A unit may be left out, not changed; x = 5 is not y = 5.
    A percentage on one side only may be read either way: 20% equals 20 and 0.2."""
    if not labels_match(p.label, g.label):
        return False
    named = _named_values(p), _named_values(g)
    if None not in named and named[0] != named[1]:
        return False  # x = 1, y = 2 is not x = 2, y = 1 (nor x = 1, z = 2), though both are {1, 2}
    if p.unit is None or g.unit is None or p.unit == g.unit:
        if p.values == g.values:
            return True
        if (p.unit == "%") != (g.unit == "%"):
            percent, other = (p, g) if p.unit == "%" else (g, p)
            return frozenset(Fraction(v) / 100 for v in percent.values) == other.values
    return False


def _named_values(a: Answer) -> dict | None:
    """{label: value} of a list whose every element names its own variable (`x = 1, y = 2`); None for
    anything else (then the values are compared as a set: `AB = 4, CD = 5` equals `4, 5`)."""
    if a.kind != "set":
        return None
    pairs = [split_label(element) for element in a.elements]
    if any(label is None for label, _ in pairs) or len({label for label, _ in pairs}) != len(pairs):
        return None
    return {label: number(value) for label, value in pairs}


def _equal(p: Answer, g: Answer, budget: list) -> bool:
    """p equals g; budget[0] is the worker time this judgement may still spend (seconds)."""
    if p.values is not None and g.values is not None:
        return _numbers_equal(p, g)
    if p.kind == "invalid" or g.kind == "invalid":
        return False
    if p.unit and g.unit and p.unit != g.unit:
        return False  # a unit may be left out, not changed
    if p.kind == g.kind == "time":  # a clock time equals only the same time: 20:34 = 20:34:00 = 8:34 pm
        return p.word == g.word and labels_match(p.label, g.label)
    # one clock-like side only: judged as any other answer below (3:10 may be the ratio 0.3)
    if "based" in (p.kind, g.kind):
        return _based_equal(p, g)
    if "choice" in (p.kind, g.kind) or "word" in (p.kind, g.kind):
        return p.word is not None and p.word == g.word or _same_word(p, g)
    if (
        g.kind == "number"
        and p.kind == "expr"
        and not _FUNCTION.search(p.body)  # \\sin(x)^2 + \\cos(x)^2 is 1
        and (_HAS_VARIABLE.search(_COMMAND.sub(" ", p.body)) or not any(c.isdigit() or c == "\\" for c in p.body))
    ):
        return False  # a rational number is not "x", "none" or "34x" ("3+5i^2" and "2\\ln e" may be one)
    if p.kind in _SEVERAL or g.kind in _SEVERAL:
        return _equal_structures(p, g, budget)
    if p.body.count("=") > 1 or g.body.count("=") > 1:
        return p.text.replace(" ", "") == g.text.replace(" ", "")  # a chain that is not plain arithmetic
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
    same = identity(pred, gold) if "=" not in pred + gold else equation_identity(pred, gold)  # exact, in-process
    if same is not None:
        return same
    if not (bounded(pred) and bounded(gold)):
        return False
    return WORKER.judge(gold, pred, budget)


def _element_equal(pred: str, gold: str, budget: list) -> bool:
    return _equal(classify(pred), classify(gold), budget)


def _equal_structures(p: Answer, g: Answer, budget: list) -> bool:
    """Sets, tuples, intervals, unions and matrices, element by element. (math-verify's grammar needs
    50 ms to seconds to parse a bracketed list, but a few ms per element.)"""
    if not labels_match(p.label, g.label):
        return False  # (a,b) = (4,1) is not (b,a) = (4,1); x \in [1, 2] is not y \in [1, 2]
    if "set" in (p.kind, g.kind):
        if p.kind in ("tuple", "union", "matrix") or g.kind in ("tuple", "union", "matrix"):
            return False  # a set of answers is not a tuple, an interval or a matrix
        return _same_set(_elements(p), _elements(g), budget)
    if p.kind != g.kind:
        return False  # a tuple is not a matrix, an interval is not a number
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


def _elements(a: Answer) -> tuple[str, ...]:
    """The answers in a set (nested \\pm expanded); a single answer is a set of one."""
    if a.kind != "set":
        return (a.body if a.label else a.text,)
    out = []
    for element in a.elements:
        inner = classify(element)
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


def _texts_to_compare(p: Answer, g: Answer) -> tuple[str, str | None]:
    """(gold, pred) as math-verify should see them, or (gold, None) when the prediction is wrong already.

    Labels ("y =", "x \\in") are decoration when both sides name the same variable or one names none;
    equations go to math-verify whole (rearranged or scaled ones are equal). A relation in the answer
    to a reference that has none is wrong: math-verify would read "x + 1 = 34" as its right side, 34."""
    gold_relation, pred_relation = has_relation(g.body), has_relation(p.body)
    if gold_relation or (g.label and pred_relation) or not labels_match(p.label, g.label):
        return g.text, p.text
    if pred_relation:
        return g.text, None
    return g.body, p.body


def _same_word(p: Answer, g: Answer) -> bool:
    """A word such as \\text{Evelyn} against a prediction written without \\text{} (or the other way)."""
    if p.kind == "choice" or g.kind == "choice":
        return False
    words = [a.word if a.word is not None else " ".join(a.text.casefold().split()) for a in (p, g)]
    return all(_WORD.fullmatch(a.text) for a in (p, g)) and words[0] == words[1]


def _based_equal(p: Answer, g: Answer) -> bool:
    """52_8 equals 52_8, 52_{8} and (the question named the base) bare 52; never 52_9 or 42. An answer
    in a base other than ten never equals a reference written without one (52_8 is not 52)."""
    if p.kind == "based" and g.kind == "based":
        return p.based == g.based
    if p.kind == "based" and p.based[1] != 10:
        return False
    based, other = (g, p) if g.kind == "based" else (p, g)
    digits = other.body.replace(" ", "").upper().lstrip("0") or "0"
    return other.kind == "number" and other.label is None and digits == based.based[0]
