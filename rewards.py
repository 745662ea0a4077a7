"""Verifiable rewards for GRPO on math problems: the tags, the system prompt, one answer checker.

Everything here is deterministic and needs only the standard library and math-verify, so it can be
tested on a laptop without torch. The same `is_correct` scores the answer reward during training and
the accuracy in the evaluation, so the training signal and the reported number cannot drift apart.

A well-formed completion (the prompt already ends with REASONING_START) looks like:

    ...the working...<end_working_out><SOLUTION>34</SOLUTION>

Every reward follows TRL's contract: keyword arguments in (`completions`, the dataset's `answer`
column, and whatever else the trainer passes, which is ignored), one float per completion out, and
None where the reference answer is missing so the trainer skips that sample. No function raises or
hangs on any model output: anything that could reach sympy is bounded first (`_safe_for_sympy`).

    >>> answer = ["34"]
    >>> completions = [[{"role": "assistant", "content": "7*5-1 = 34<end_working_out><SOLUTION>34</SOLUTION>"}]]
    >>> [f(completions=completions, answer=answer)[0] for f in REWARD_FUNCS]
    [3.0, 1.5, 5.0, 3.5]
"""

from __future__ import annotations

import logging
import math
import re
from fractions import Fraction
from functools import lru_cache

from math_verify import LatexExtractionConfig, parse, verify

# ----------------------------------------------------------------------------- tags and prompt
REASONING_START = "<start_working_out>"
REASONING_END = "<end_working_out>"
SOLUTION_START = "<SOLUTION>"
SOLUTION_END = "</SOLUTION>"
TAGS = (REASONING_START, REASONING_END, SOLUTION_START, SOLUTION_END)

SYSTEM_PROMPT = (
    "You are given a math problem. Think it through step by step and show your working between "
    f"{REASONING_START} and {REASONING_END}. Then write only the final answer, as a single "
    f"number or expression, between {SOLUTION_START} and {SOLUTION_END}."
)

# ----------------------------------------------------------------------------- score table
# The recipe's scale; README.md has the same table. Maximum total: 3.0 + 1.5 + 5.0 + 3.5 = 13.0.
EXACT_FORMAT = 3.0  # match_format_exactly: working, then one final solution block at the very end
TAG_ONCE = 0.5  # match_format_approximately: per tag that appears exactly once...
TAG_NOT_ONCE = -1.0  # ...and per tag that is missing or repeated
ANSWER_CORRECT = 5.0  # check_answer: is_correct() says the answer equals the reference
ANSWER_WITHIN_10_PCT = 2.0  # wrong, but a number within 10 % of the reference (the recipe's band)
ANSWER_WITHIN_20_PCT = 1.5  # wrong, but a number within 20 % of the reference (the recipe's band)
ANSWER_WRONG_NUMBER = -2.5  # a number, further off
ANSWER_NOT_A_NUMBER = -4.5  # not a number, and not equal to the reference
ANSWER_MISSING = -2.0  # no closed solution block at all
NUMBER_EQUAL = 3.5  # check_numbers: the block's number equals the reference as a number
NUMBER_UNEQUAL = -1.5  # a number, but another one (or several numbers: a hedge)
NUMBER_MISSING = -2.5  # no number in the block, or no block
NUMBER_UNJUDGEABLE = 0.0  # the reference is not a plain number (e.g. LaTeX): left to check_answer
MAX_REWARD = EXACT_FORMAT + 3 * TAG_ONCE + ANSWER_CORRECT + NUMBER_EQUAL

# ----------------------------------------------------------------------------- limits
# Model output is hostile in practice. These bounds keep every call in the millisecond range.
MAX_ANSWER_CHARS = 300  # a longer "final answer" is not an answer; it is judged wrong unread
MAX_SYMBOLIC_CHARS = 80  # longest answer handed to math-verify / sympy
MAX_DIGITS = 40  # longest digit run accepted anywhere in an answer
# math-verify's LaTeX grammar is ambiguous: each level of nested brackets multiplies its parse time
# (measured cold: 10 ms at depth 1, ~100 ms at depth 2, 150-500 ms at depth 3-4). Depth 2 covers
# \frac{\sqrt{3}}{2} and \left(\frac{1}{2}, 3\right); deeper answers are judged by exact text only.
MAX_BRACKET_DEPTH = 2
MAX_EXPONENT_PRODUCT = 10_000  # product of the numeric exponents in one answer: 2^{100} fine, towers not

_log = logging.getLogger(__name__)
# math-verify warns once that its signal-based timeouts are off; that is deliberate here (they only
# work in the main thread, with 1 s resolution): inputs are bounded instead.
logging.getLogger("math_verify").setLevel(logging.ERROR)

# ----------------------------------------------------------------------------- extraction
_EOS_TAIL = re.compile(r"(?:\s*<\|[A-Za-z0-9_]{1,32}\|>)+\s*\Z")  # <|endoftext|>, <|im_end|>, ...


def completion_text(completion) -> str:
    """The text of one completion: a plain string, or the content of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and len(completion) == 1 and isinstance(completion[0], dict):
        content = completion[0].get("content")  # the usual case: one assistant message
        if isinstance(content, str):
            return content
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        parts = []
        for message in completion:
            content = message.get("content") if isinstance(message, dict) else message
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, (list, tuple)):  # multimodal style: [{"type": "text", "text": ...}]
                parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        return "".join(parts)
    return ""


def _strip_eos(text: str) -> str:
    """Drop trailing whitespace and special tokens such as <|endoftext|>."""
    text = text.rstrip()
    if text.endswith("|>"):
        match = _EOS_TAIL.search(text, max(0, len(text) - 400))
        if match:
            text = text[: match.start()]
    return text


def extract_answer(text: str) -> str | None:
    """The content of the last closed solution block, or None.

    None also when a solution block is opened after the last one closes: the response ends in an
    unfinished answer, so no answer is final.

    >>> extract_answer("work<end_working_out><SOLUTION> 34 </SOLUTION>")
    ' 34 '
    >>> extract_answer("<SOLUTION>34") is None
    True
    """
    if not isinstance(text, str):
        return None
    end = text.rfind(SOLUTION_END)
    if end < 0 or text.find(SOLUTION_START, end) >= 0:
        return None
    start = text.rfind(SOLUTION_START, 0, end)
    if start < 0:
        return None
    return text[start + len(SOLUTION_START) : end]


def has_exact_format(text: str) -> bool:
    """True when the working ends with REASONING_END and the text ends with one non-empty
    solution block (trailing whitespace and an end-of-sequence token allowed)."""
    text = _strip_eos(text)
    if not text.endswith(SOLUTION_END):
        return False
    answer = extract_answer(text)
    if answer is None or not answer.strip() or SOLUTION_END in answer:
        return False
    block_start = len(text) - len(SOLUTION_END) - len(answer) - len(SOLUTION_START)
    return text.rfind(REASONING_END, 0, block_start) >= 0


# ----------------------------------------------------------------------------- numbers
_DECORATION = re.compile(
    r"\\[,;:! ]|\\q?quad|\\(?:left|right|displaystyle|mathrm|textstyle)\b|~|\$|"
    r"\^\s*\{?\s*\\circ\s*\}?|°|\\%|%|\\!"
)
_WRAPPER = re.compile(r"^\\(?:boxed|fbox|text|textbf|mathbf|mathrm|mbox)\s*\{(.*)\}$", re.DOTALL)
_UNIT_TEXT = re.compile(r"\\(?:text|mbox|mathrm)\s*\{[^{}\d]*\}\s*$")  # "10\text{ cm}"
_UNIT_WORDS = re.compile(r"(?<=[\d.}])\s*[A-Za-z][A-Za-z\s.]{0,30}$")  # "10 cm", "5 apples."
_ASSIGNMENT = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*")  # "x = 34", "a_1 = 3"
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(
    rf"^[+-]?(?:\d{{1,{MAX_DIGITS}}}(?:\.\d{{0,{MAX_DIGITS}}})?|\.\d{{1,{MAX_DIGITS}}})(?:[eE][+-]?\d{{1,3}})?$"
)
_SLASH = re.compile(rf"^([+-]?\d{{1,{MAX_DIGITS}}})\s*/\s*(\d{{1,{MAX_DIGITS}}})$")
_LATEX_FRAC = re.compile(
    rf"^([+-]?)\\[dt]?frac\s*\{{\s*(-?\d{{1,{MAX_DIGITS}}})\s*\}}\s*\{{\s*(\d{{1,{MAX_DIGITS}}})\s*\}}$"
)
_SEVERAL = re.compile(r"[,;]|\\[pm]m\b|\b(?:or|and)\b")  # separators of several answers
_PLAIN_INT = re.compile(rf"^-?\d{{1,{MAX_DIGITS}}}$")
_NUMBER_TOKEN = re.compile(rf"-?\d{{1,{MAX_DIGITS}}}(?:,\d{{3}})*(?:\.\d+)?")


def _clean(answer: str) -> str:
    """Strip what does not change a number's value: $, \\boxed{}, spacing, degrees, units, 'x ='."""
    s = answer.strip().replace("\u2212", "-").replace("{,}", ",")
    s = _DECORATION.sub("", s).strip()
    for _ in range(3):  # nested wrappers: \boxed{\text{34}}
        match = _WRAPPER.match(s)
        if not match:
            break
        s = match.group(1).strip()
    s = _UNIT_TEXT.sub("", s).strip()
    s = _ASSIGNMENT.sub("", s)
    s = _UNIT_WORDS.sub("", s).strip()
    return s.rstrip(".").strip()


def parse_number(answer) -> Fraction | None:
    """The exact value of an answer written as a plain number, or None.

    Accepts integers, decimals, scientific notation with a small exponent, thousands separators,
    a/b and \\frac{a}{b}, with the decoration `_clean` removes. Anything else (an expression,
    several numbers, nan, inf, 1/0) is None.

    >>> parse_number("$\\\\boxed{1,000}$"), parse_number("\\\\frac{1}{2}"), parse_number("34 or 35")
    (Fraction(1000, 1), Fraction(1, 2), None)
    """
    if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
        return None
    return _parse_number(answer)


@lru_cache(maxsize=65536)  # the same answers and references recur across a group and the four rewards
def _parse_number(answer: str) -> Fraction | None:
    s = answer.strip()
    if _PLAIN_INT.match(s):
        return Fraction(int(s))
    s = _clean(s)
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    try:
        if _DECIMAL.match(s):
            return Fraction(s)
        match = _SLASH.match(s) or _LATEX_FRAC.match(s)
        if match:
            *sign, numerator, denominator = match.groups()
            if int(denominator) == 0:
                return None
            value = Fraction(int(numerator), int(denominator))
            return -value if sign == ["-"] else value
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


# ----------------------------------------------------------------------------- symbolic check
_BIG_E = re.compile(r"\d\s*[eE]\s*[+-]?\s*\d{3}")  # 1e100000: sympy builds the whole number
# What may reach math-verify: the commands of closed-form answers and nothing that does unbounded
# work (no factorial, sum, integral, limit, binomial, Gamma). Anything else is judged by text only.
_COMMANDS = frozenset(
    "frac dfrac tfrac sqrt pi cdot times div left right infty circ pm mp le leq ge geq neq lt gt in "
    "cup cap emptyset log ln exp sin cos tan cot sec csc arcsin arccos arctan text mathrm mathbf "
    "alpha beta gamma delta theta lambda mu sigma phi omega quad".split()
)
_ALLOWED_CHARS = re.compile(r"^[0-9A-Za-z\\+\-*/^_().,;:{}\[\]=<>| ]*$")
_COMMAND = re.compile(r"\\([A-Za-z]+)")


def _exponents(s: str):
    """Yield (exponent, text after it) for each ^ in a LaTeX string; an unbalanced brace yields None."""
    i = s.find("^")
    while i >= 0:
        j = i + 1
        while j < len(s) and s[j] == " ":
            j += 1
        if j < len(s) and s[j] == "{":
            depth, k = 0, j
            for k in range(j, len(s)):
                depth += (s[k] == "{") - (s[k] == "}")
                if depth == 0:
                    break
            if depth:
                yield None, ""
                return
            exponent, end = s[j + 1 : k], k + 1
        else:
            match = re.match(r"\\[A-Za-z]+|.", s[j:], re.DOTALL)
            exponent = match.group(0) if match else ""
            end = j + len(exponent)
        yield exponent, s[end:]
        i = s.find("^", i + 1)


def _safe_for_sympy(s: str) -> bool:
    """Refuse what sympy could spend seconds or minutes on: long text, unknown commands (factorials,
    sums, ...), deep nesting, huge numbers, power towers and big exponents."""
    if len(s) > MAX_SYMBOLIC_CHARS or "**" in s or _BIG_E.search(s) or not _ALLOWED_CHARS.match(s):
        return False
    if any(command not in _COMMANDS for command in _COMMAND.findall(s)):
        return False
    depth = 0
    for ch in s:
        depth += (ch in "([{") - (ch in ")]}")
        if depth > MAX_BRACKET_DEPTH:
            return False
    if any(len(run) > MAX_DIGITS for run in re.findall(r"\d+", s)):
        return False
    growth = 1  # product of all numeric exponents: bounds the digits of any power sympy may expand
    for exponent, rest in _exponents(s):
        if exponent is None or "^" in exponent or rest.lstrip().startswith("^"):
            return False  # unbalanced, or a tower such as 9^{9^{9}} or 2^2^2
        for number in re.findall(r"\d+", exponent):
            growth *= max(1, int(number))
        if growth > MAX_EXPONENT_PRODUCT:
            return False
    return True


_LATEX_ONLY = [LatexExtractionConfig()]


@lru_cache(maxsize=65536)
def _symbolic(latex: str):
    """math-verify's parse of one short, pre-screened answer (cached: answers repeat in a group)."""
    if not latex.startswith("$") and "\\boxed" not in latex:
        latex = f"${latex}$"
    # Timeouts off: they rely on signal.alarm, which fails outside the main thread.
    return parse(latex, extraction_config=_LATEX_ONLY, parsing_timeout=None)


@lru_cache(maxsize=65536)
def _symbolically_equal(gold: str, pred: str) -> bool:
    gold_parsed, pred_parsed = _symbolic(gold), _symbolic(pred)
    if not gold_parsed or not pred_parsed:
        return False
    return verify(gold_parsed, pred_parsed, timeout_seconds=None)  # gold first


def is_correct(response: str, answer) -> bool:
    """True when the last solution block of `response` is mathematically equal to `answer`.

    Plain numbers are compared exactly as fractions (fast, and "0.0" equals "0"); anything else goes
    to math-verify after `_safe_for_sympy` has screened both sides. Hedges and lists are wrong.

    >>> is_correct("<end_working_out><SOLUTION>\\\\frac{1}{2}</SOLUTION>", "0.5")
    True
    >>> is_correct("<end_working_out><SOLUTION>34 or 35</SOLUTION>", "34")
    False
    """
    return answers_equal(extract_answer(response), answer)


def answers_equal(pred: str | None, answer) -> bool:
    """True when an extracted answer equals the reference; the judgement behind is_correct()."""
    gold = _reference(answer)
    if not isinstance(pred, str) or gold is None or not pred.strip() or len(pred) > MAX_ANSWER_CHARS:
        return False
    try:
        return _answers_equal(pred, gold)
    except Exception:  # noqa: BLE001 - sympy can raise almost anything on odd input; wrong, not fatal
        _log.debug("answers_equal failed on %r vs %r", pred, gold, exc_info=True)
        return False


def _answers_equal(pred: str, gold: str) -> bool:
    pred_value, gold_value = _parse_number(pred), _parse_number(gold)
    if pred_value is not None and gold_value is not None:
        return pred_value == gold_value
    pred_s, gold_s = _clean(pred) or pred.strip(), _clean(gold) or gold.strip()
    if gold_value is not None and (not any(ch.isdigit() for ch in pred_s) or _SEVERAL.search(pred_s)):
        return False  # a number cannot equal "x", "none", a list "33, 34" or a hedge "34 or 35"
    if pred_s.replace(" ", "") == gold_s.replace(" ", ""):
        return True
    if not (_safe_for_sympy(pred_s) and _safe_for_sympy(gold_s)):
        return False
    return bool(_symbolically_equal(gold_s, pred_s))


def _reference(answer) -> str | None:
    """The reference answer as a non-empty string, or None when there is none to judge against."""
    if isinstance(answer, str):
        answer = answer.strip()
        return answer if answer and len(answer) <= MAX_ANSWER_CHARS else None
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, Fraction)):
        return str(answer)
    if isinstance(answer, float):
        return repr(answer) if math.isfinite(answer) else None
    return None


# ----------------------------------------------------------------------------- the four rewards
def _texts(completions) -> list[str]:
    return [completion_text(c) for c in (completions or [])]


def _references(answer, n: int) -> list[str | None]:
    if isinstance(answer, (list, tuple)):
        refs = [_reference(a) for a in answer]
        return refs if len(refs) == n else (refs + [None] * n)[:n]
    return [_reference(answer)] * n  # one answer for the whole batch, or none at all


def match_format_exactly(completions, **kwargs) -> list[float]:
    """EXACT_FORMAT when the completion ends with the working's end tag and one answer block.

    >>> match_format_exactly(["2+2=4<end_working_out><SOLUTION>4</SOLUTION>", "4"])
    [3.0, 0.0]
    """
    return [EXACT_FORMAT if has_exact_format(t) else 0.0 for t in _texts(completions)]


def match_format_approximately(completions, **kwargs) -> list[float]:
    """TAG_ONCE for each of the three closing-side tags that appears exactly once, TAG_NOT_ONCE for
    each that is missing or repeated. The opening reasoning tag is part of the prompt, not counted.

    >>> match_format_approximately(["<end_working_out><SOLUTION>4</SOLUTION>", "<SOLUTION>"])
    [1.5, -1.5]
    """
    tags = (REASONING_END, SOLUTION_START, SOLUTION_END)
    return [sum(TAG_ONCE if t.count(tag) == 1 else TAG_NOT_ONCE for tag in tags) for t in _texts(completions)]


def check_answer(completions, answer=None, **kwargs) -> list[float | None]:
    """ANSWER_CORRECT exactly when is_correct() agrees; the recipe's bands and penalties otherwise.

    >>> check_answer(["<SOLUTION>36</SOLUTION>", "<SOLUTION>0.0</SOLUTION>", "no block"], answer=["34", "0", "1"])
    [2.0, 5.0, -2.0]
    """
    return _score_each(completions, answer, _answer_score)


def _score_each(completions, answer, judge) -> list[float | None]:
    """judge(text, reference) for each completion; None where the reference is missing."""
    texts = _texts(completions)
    references = _references(answer, len(texts))
    return [None if gold is None else judge(text, gold) for text, gold in zip(texts, references, strict=True)]


def _answer_score(text: str, gold: str) -> float:
    pred = extract_answer(text)
    if pred is None:
        return ANSWER_MISSING
    if answers_equal(pred, gold):
        return ANSWER_CORRECT
    return _near_miss_score(parse_number(pred), parse_number(gold))


def _near_miss_score(pred: Fraction | None, gold: Fraction | None) -> float:
    if pred is None:
        return ANSWER_NOT_A_NUMBER
    if gold is None or gold == 0:  # no meaningful ratio to a zero or symbolic reference
        return ANSWER_WRONG_NUMBER
    error = abs(pred - gold) / abs(gold)
    if error <= Fraction(1, 10):
        return ANSWER_WITHIN_10_PCT
    if error <= Fraction(1, 5):
        return ANSWER_WITHIN_20_PCT
    return ANSWER_WRONG_NUMBER


def check_numbers(completions, answer=None, **kwargs) -> list[float | None]:
    """Compare the number in the final answer block with a numeric reference.

    NUMBER_EQUAL when the block reads as a number equal to the reference (or holds exactly one
    number token that does, as in "x = 34"), NUMBER_UNEQUAL for another number or several numbers,
    NUMBER_MISSING when there is no block or no digit in it, NUMBER_UNJUDGEABLE when the reference
    itself is not a plain number.

    >>> check_numbers(["<SOLUTION>1,000</SOLUTION>", "<SOLUTION>33, 34</SOLUTION>", "<SOLUTION>x</SOLUTION>"], answer=["1000"] * 3)
    [3.5, -1.5, -2.5]
    """
    return _score_each(completions, answer, _number_score)


def _number_score(text: str, gold: str) -> float:
    gold_value = parse_number(gold)
    if gold_value is None:
        return NUMBER_UNJUDGEABLE
    pred = extract_answer(text)
    if pred is None or len(pred) > MAX_ANSWER_CHARS:
        return NUMBER_MISSING
    value = parse_number(pred)
    if value is None:
        tokens = _NUMBER_TOKEN.findall(_clean(pred))
        if len(tokens) > 1:
            return NUMBER_UNEQUAL  # several numbers: a hedge, not an answer
        value = parse_number(tokens[0]) if tokens else None
    if value is None:
        return NUMBER_MISSING
    return NUMBER_EQUAL if value == gold_value else NUMBER_UNEQUAL


REWARD_FUNCS = [match_format_exactly, match_format_approximately, check_answer, check_numbers]


def _warm_up() -> None:
    """Parse a few answer shapes at import, so the first reward calls do not pay the LaTeX parser's
    set-up (hundreds of ms the first time each bracket shape is seen)."""
    shapes = [
        "\\frac{\\sqrt{3}}{2}",
        "\\left(\\frac{1}{2}, 3\\right)",
        "((1))",
        "[[1]]",
        "{{1}}",
        "([1])",
        "\\{1, 2\\}",
        "(1, 2]",
        "x^{2}+1",
        "\\sin(x)",
        "2\\pi",
        "1e5",
        "ab",
        "\\sqrt[3]{2}",
    ]
    for shape in shapes:
        _symbolically_equal(shape, "x")
        _symbolically_equal("2\\sqrt{2}", shape)


_warm_up()
