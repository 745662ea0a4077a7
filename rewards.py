"""Verifiable rewards for GRPO on math problems: the tags, the system prompt, one answer checker.

Everything here needs only the standard library and the verifier package (which runs math-verify in
a worker process), so it can be tested on a laptop without torch. The same `is_correct` scores the answer
reward during training and the accuracy in the evaluation, so the training signal and the reported
number cannot drift apart.

A well-formed completion (the prompt already ends with REASONING_START) looks like:

    ...the working...<end_working_out><SOLUTION>34</SOLUTION>

Every reward follows TRL's contract: keyword arguments in (`completions`, the dataset's `answer`
column, and whatever else the trainer passes, which is ignored), one float per completion out, and
None where there is nothing to judge: the reference answer is missing, or the verifier could not decide
(its CPU budget or backstop ran out: see verifier/__init__.py). An undecided answer gets None from all four
rewards, never from some: TRL 1.15 adds up a reward's None as 0 for that completion (so 0 would beat a wrong
answer's penalty: a reason to make the verifier give up), and only a completion that every function left
unjudged is unscorable, kept out of its group's mean and std with advantage 0 (trl/trainer/grpo_trainer.py:
2682-2736, `unscorable_mask`). No function raises or hangs on any model output: the verifier judges
numbers, lists, intervals, bases and letters in-process and hands the rest to math-verify in a worker
process whose work is bounded by the answer's shape and by CPU time.

What counts as equal is in the verifier's docstring and docs/rewards.md. The ambiguous cases, decided once:
- A comma never marks decimals: `1,5` is the list 1 and 5; `1,000` (groups of three) is a thousand.
- A bare list (`1, 2`, `1 and 2`, several boxes) is a set, order and repeats free; a bracketed one is
  a tuple or interval, order and brackets fixed; a set never equals a tuple (`1, 2` != `(1, 2)`).
- `2\\frac{1}{2}` is the mixed number 2.5; `20\\%` equals both 20 and 0.2; a unit may be left out
  but not changed; `52` equals `52_8` (read in the reference's base), `42` does not.
- A wrong answer paid is worse than a right one refused: a word not in the closed list of units stays
  (`34 apples` != 34); an answer math-verify cannot judge within its budget is undecided (None), not wrong.

    >>> answer = ["34"]
    >>> completions = [[{"role": "assistant", "content": "7*5-1 = 34<end_working_out><SOLUTION>34</SOLUTION>"}]]
    >>> [f(completions=completions, answer=answer)[0] for f in REWARD_FUNCS]
    [3.0, 1.5, 5.0, 3.5]
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import verifier
from verifier import MAX_ANSWER_CHARS, MAX_DIGITS, parse_number

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
# The recipe's scale; docs/rewards.md has the same table. Maximum total: 3.0 + 1.5 + 5.0 + 3.5 = 13.0.
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


# ----------------------------------------------------------------------------- the verifier
_NUMBER_TOKEN = re.compile(rf"-?\d{{1,{MAX_DIGITS}}}(?:,\d{{3}})*(?:\.\d+)?")


def is_correct(response: str, answer) -> bool | None:
    """True when the last solution block of `response` is mathematically equal to `answer`, False when
    it is not, None when the verifier could not decide (never for a plain number; see verifier's
    docstring). None is falsy: code that only asks "right?" treats undecided as not right.

    The judgement is verifier.answers_equal (its docstring and docs/rewards.md say what counts as equal):
    plain numbers, lists, intervals, bases, letters and words exactly, here; anything else through
    math-verify in a worker process. Hedges and lists against one number are wrong.

    >>> is_correct("<end_working_out><SOLUTION>\\\\frac{1}{2}</SOLUTION>", "0.5")
    True
    >>> is_correct("<end_working_out><SOLUTION>34 or 35</SOLUTION>", "34")
    False
    """
    return answers_equal(extract_answer(response), answer)


def answers_equal(pred: str | None, answer) -> bool | None:
    """True when an extracted answer equals the reference (a string, int, float or Fraction); None
    when undecided."""
    return verifier.answers_equal(pred, _reference(answer))


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


# The undecided answers of the batch scored last. TRL hands the same `completions` list to each reward function
# in turn, so the four of them share one decision per answer: an answer undecided for the first is undecided for
# all (a verdict reached on a later try would otherwise split them), and it costs its CPU budget once.
_last_batch: list = [None, set()]  # [that completions list, its undecided (answer, reference) pairs]


def _undecided(completions, text: str, gold: str | None) -> bool:
    """True when the verifier cannot decide this completion's answer: every reward then gives None."""
    pred = extract_answer(text)
    if gold is None or pred is None:
        return False
    if _last_batch[0] is not completions:
        _last_batch[:] = [completions, set()]
    if (pred, gold) in _last_batch[1]:
        return True
    if verifier.answers_equal(pred, gold) is None:
        _last_batch[1].add((pred, gold))
        return True
    return False


def match_format_exactly(completions, answer=None, **kwargs) -> list[float | None]:
    """EXACT_FORMAT when the completion ends with the working's end tag and one answer block; None when the
    verifier cannot decide the answer (all four rewards leave that completion unjudged).

    >>> match_format_exactly(["2+2=4<end_working_out><SOLUTION>4</SOLUTION>", "4"])
    [3.0, 0.0]
    """
    return _score_each(completions, answer, lambda t, gold: EXACT_FORMAT if has_exact_format(t) else 0.0, needs=False)


def match_format_approximately(completions, answer=None, **kwargs) -> list[float | None]:
    """TAG_ONCE for each of the three closing-side tags that appears exactly once, TAG_NOT_ONCE for
    each that is missing or repeated. The opening reasoning tag is part of the prompt, not counted.
    None when the verifier cannot decide the answer.

    >>> match_format_approximately(["<end_working_out><SOLUTION>4</SOLUTION>", "<SOLUTION>"])
    [1.5, -1.5]
    """
    tags = (REASONING_END, SOLUTION_START, SOLUTION_END)
    return _score_each(
        completions,
        answer,
        lambda t, gold: sum(TAG_ONCE if t.count(tag) == 1 else TAG_NOT_ONCE for tag in tags),
        needs=False,
    )


def check_answer(completions, answer=None, log_metric=None, **kwargs) -> list[float | None]:
    """ANSWER_CORRECT exactly when is_correct() agrees; the recipe's bands and penalties otherwise; None
    when the verifier could not decide (as from the other three rewards: TRL then leaves the completion out of
    its group's baseline, with advantage 0). With TRL's
    `log_metric`, the share of completions left undecided is logged as `verifier/undecided`.

    >>> check_answer(["<SOLUTION>36</SOLUTION>", "<SOLUTION>0.0</SOLUTION>", "no block"], answer=["34", "0", "1"])
    [2.0, 5.0, -2.0]
    """
    scores = _score_each(completions, answer, _answer_score)
    references = _references(answer, len(scores))
    if callable(log_metric):  # every call, so each process logs the same names (TRL gathers them in order)
        undecided = sum(score is None and gold is not None for score, gold in zip(scores, references, strict=True))
        log_metric("verifier/undecided", undecided / max(len(scores), 1))
    return scores


def _score_each(completions, answer, judge, needs: bool = True) -> list[float | None]:
    """judge(text, reference) for each completion; None where the verifier cannot decide the answer, or the
    reference is missing and `needs` says the score depends on it (the format rewards do not need one)."""
    texts = _texts(completions)
    references = _references(answer, len(texts))
    return [
        None if (gold is None and needs) or _undecided(completions, text, gold) else judge(text, gold)
        for text, gold in zip(texts, references, strict=True)
    ]


def _answer_score(text: str, gold: str) -> float:
    pred = extract_answer(text)
    if pred is None:
        return ANSWER_MISSING
    if verifier.answers_equal(pred, gold):  # decided: _score_each gave None to an undecided answer already
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

    NUMBER_EQUAL when the block reads as one number (decorations, a unit or "x =" allowed) that
    is_correct() calls equal to the reference, NUMBER_UNEQUAL for another number, several numbers or a
    number inside something else ("34x"), NUMBER_MISSING when there is no block or no digit in it,
    NUMBER_UNJUDGEABLE when the reference itself is not a plain number.

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
    if parse_number(pred) is not None:  # equal exactly when is_correct says so (units, labels: one rule)
        return NUMBER_EQUAL if verifier.answers_equal(pred, gold) else NUMBER_UNEQUAL  # plain numbers: decided
    # Not one plain number: several numbers (a hedge), or a number inside something else ("34x").
    return NUMBER_UNEQUAL if _NUMBER_TOKEN.search(verifier.clean(pred)) else NUMBER_MISSING


REWARD_FUNCS = [match_format_exactly, match_format_approximately, check_answer, check_numbers]
