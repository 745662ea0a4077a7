"""Tests for rewards.py and the verifier on real answers: need only math-verify, pytest and hypothesis
(no torch, no GPU). Verdicts do not depend on time or load, so every table runs with the verifier's
real limits; tests/test_verifier.py has the tables per kind of answer, the worker and the busy-machine
check; bench/verifier.py measures latency.
"""

import math
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewards
import verifier
from bench.verifier import load_references, variants, wrong_copies
from rewards import (
    MAX_REWARD,
    REASONING_END,
    REASONING_START,
    REWARD_FUNCS,
    SOLUTION_END,
    SOLUTION_START,
    SYSTEM_PROMPT,
    check_answer,
    check_numbers,
    extract_answer,
    is_correct,
    match_format_approximately,
    match_format_exactly,
)

MATH500 = Path(__file__).resolve().parent / "data" / "math500_answers.jsonl"  # copy of ../shared/data


def respond(answer: str, working: str = "2 * 17 = 34") -> str:
    """A completion in the requested format (the prompt already ends with REASONING_START)."""
    return f"{working}{REASONING_END}{SOLUTION_START}{answer}{SOLUTION_END}"


def chat(text):
    return [{"role": "assistant", "content": text}]


# ----------------------------------------------------------------------------- is_correct
EQUAL = [
    ("34", "34"),  # identical
    (" 34 ", "34"),  # spaces inside the block
    ("34.0", "34"),  # decimal form of an integer
    ("$34$", "34"),  # inline math
    ("\\boxed{34}", "34"),  # boxed, as models trained on MATH write
    ("$\\boxed{34}$", "34"),  # both
    ("x = 34", "34"),  # an assignment
    ("1,000", "1000"),  # thousands separator
    ("1{,}000", "1000"),  # LaTeX thousands separator
    ("\u221234", "-34"),  # unicode minus
    ("1/2", "\\frac{1}{2}"),  # slash fraction vs LaTeX fraction
    ("\\frac{1}{2}", "0.5"),  # LaTeX fraction vs decimal
    ("0.5", "1/2"),  # decimal vs slash fraction
    ("\\dfrac{1}{2}", "0.5"),  # display fraction
    ("-\\frac{3}{4}", "-0.75"),  # negative fraction
    ("\\sqrt{8}", "2\\sqrt{2}"),  # symbolic equality through math-verify
    ("2\\sqrt{2}", "\\sqrt{8}"),  # and the other way round
    ("\\frac{\\sqrt{3}}{2}", "$\\frac{\\sqrt3}{2}$"),  # reference in $ with a sloppy \sqrt3
    ("30^\\circ", "30"),  # degrees in LaTeX
    ("30°", "30"),  # degrees as a symbol
    ("34\\text{ cm}", "34"),  # a unit in \text{}
    ("34 cm", "34"),  # a unit as a word (from the closed list of units)
    ("\\text{34}", "34"),  # a number in \text{}
    ("34", "$34$"),  # reference wrapped in $
    ("34", "\\boxed{34}"),  # reference boxed
    ("0.0", "0"),  # the recipe's division-by-zero bug
    ("-0", "0"),  # negative zero
    ("1e3", "1000"),  # scientific notation
    ("34.", "34"),  # a full stop after the answer
    ("x^2+2x+1", "(x+1)^2"),  # polynomial identity
    ("(1, 2)", "(1,2)"),  # interval / pair, spacing
    ("\\left(\\frac{1}{2}, 3\\right)", "(0.5, 3)"),  # a point with a fraction
    ("\\pi/2", "\\frac{\\pi}{2}"),  # pi
]

NOT_EQUAL = [
    ("33", "34"),  # wrong number
    ("34.5", "34"),  # near miss
    ("33, 34, 35", "34"),  # a list of candidates containing the answer
    ("34 or 35", "34"),  # a hedge
    ("34 \\text{ or } 35", "34"),  # a hedge in LaTeX
    ("34, 35", "34"),  # two answers
    ("", "34"),  # empty block
    ("   ", "34"),  # blank block
    ("x", "34"),  # a variable
    ("\\pi", "3.14159"),  # an approximation is not equal
    ("1/0", "34"),  # division by zero
    ("nan", "34"),  # not a number
    ("inf", "34"),  # infinity
    ("34", "35"),  # wrong number again, the other way
    ("-34", "34"),  # sign
    ("340", "34"),  # order of magnitude
    ("\\frac{1}{3}", "0.33"),  # rounded decimal is not the fraction
    ("(1, 2)", "[1, 2]"),  # open vs closed interval
    ("34 \\text{ is wrong}", "34"),  # words after a number that deny it (a unit word alone may be left out, #30)
]


@pytest.mark.parametrize("pred, gold", EQUAL)
def test_is_correct_accepts_equal_answers(pred, gold):
    assert is_correct(respond(pred), gold) is True


@pytest.mark.parametrize("pred, gold", NOT_EQUAL)
def test_is_correct_rejects_wrong_answers(pred, gold):
    assert is_correct(respond(pred), gold) is False


@pytest.mark.parametrize(
    "response",
    [
        "the answer is 34",  # no block at all
        f"{REASONING_END}{SOLUTION_START}34",  # a block that never closes
        f"34 is it{REASONING_END}{SOLUTION_START}33{SOLUTION_END}",  # right number only in the reasoning
        f"{SOLUTION_START}34{SOLUTION_END} but wait {SOLUTION_START}33{SOLUTION_END}",  # last block wins
        f"{SOLUTION_START}34{SOLUTION_END} then {SOLUTION_START}35",  # ends in an unclosed block
        f"{SOLUTION_END}34{SOLUTION_START}",  # tags in the wrong order
    ],
)
def test_is_correct_reads_only_the_final_block(response):
    assert is_correct(response, "34") is False


def test_last_closed_block_is_the_answer():
    text = f"{SOLUTION_START}33{SOLUTION_END} on reflection {SOLUTION_START}34{SOLUTION_END}"
    assert extract_answer(text) == "34"
    assert is_correct(text, "34")


# ----------------------------------------------------------------------------- the four rewards
FORMAT_EXACT = [
    (respond("34"), 3.0),  # the requested format
    (respond("34") + "\n\n", 3.0),  # trailing whitespace
    (respond("34") + "<|endoftext|>", 3.0),  # end-of-sequence token left in the text
    (respond("34") + " <|im_end|>\n", 3.0),  # another special token, with spaces
    (respond("34") + " and more", 0.0),  # text after the block
    (f"{SOLUTION_START}34{SOLUTION_END}", 0.0),  # no end of working
    (respond(""), 0.0),  # empty answer
    (f"{REASONING_END}{SOLUTION_START}34", 0.0),  # block never closes
    (f"{SOLUTION_START}34{SOLUTION_END}{REASONING_END}", 0.0),  # working ends after the answer
    ("", 0.0),  # nothing
]


@pytest.mark.parametrize("text, score", FORMAT_EXACT)
def test_match_format_exactly(text, score):
    assert match_format_exactly(completions=[chat(text)]) == [score]


FORMAT_APPROX = [
    (respond("34"), 1.5),  # each of the three tags once
    ("no tags", -3.0),  # all three missing
    (respond("34") + SOLUTION_END, 0.0),  # closing tag twice: 0.5 + 0.5 - 1.0
    (f"{REASONING_START}{respond('34')}", 1.5),  # the opening tag (part of the prompt) is not counted
    (f"{REASONING_END}{REASONING_END}", -3.0),  # one tag repeated, two missing: none exactly once
]


@pytest.mark.parametrize("text, score", FORMAT_APPROX)
def test_match_format_approximately(text, score):
    assert match_format_approximately(completions=[chat(text)]) == [pytest.approx(score)]


CHECK_ANSWER = [
    (respond("34"), "34", 5.0),  # correct
    (respond(" 34 "), "34", 5.0),  # the recipe gave 3.5 for spaces; equal is equal
    (respond("\\boxed{34}"), "34", 5.0),  # the recipe gave a penalty for this
    (respond("0.0"), "0", 5.0),  # the recipe's division by zero turned this into -4.5
    (respond("1"), "0", -2.5),  # a wrong number against zero: no ratio, plain penalty
    (respond("36"), "34", 2.0),  # within 10 %
    (respond("40"), "34", 1.5),  # within 20 %
    (respond("31"), "34", 2.0),  # within 10 % below (9 %)
    (respond("30"), "34", 1.5),  # 12 % below: the 20 % band
    (respond("50"), "34", -2.5),  # further off
    (respond("-34"), "34", -2.5),  # sign flipped: 200 % off
    (respond("thirty-four"), "34", -4.5),  # not a number
    (respond("33, 34"), "34", -4.5),  # a list is not a number
    (respond(""), "34", -4.5),  # an empty block is not a number
    ("no block", "34", -2.0),  # no solution block
    (respond("\\frac{1}{3}"), "\\frac{1}{2}", -2.5),  # a third off a LaTeX fraction reference
    (respond("3"), "2\\sqrt{2}", -2.5),  # no near-miss band against a symbolic reference
]


@pytest.mark.parametrize("text, gold, score", CHECK_ANSWER)
def test_check_answer(text, gold, score):
    assert check_answer(completions=[chat(text)], answer=[gold]) == [pytest.approx(score)]


CHECK_NUMBERS = [
    (respond("34"), "34", 3.5),  # equal
    (respond("34.0"), "34", 3.5),  # equal as numbers
    (respond("1,000"), "1000", 3.5),  # commas removed
    (respond("x = 34"), "34", 3.5),  # one number in the block
    (respond("-5"), "-5", 3.5),  # negative (the recipe's regex dropped the sign)
    (respond("0.0"), "0", 3.5),  # zero
    (respond("35"), "34", -1.5),  # unequal
    (respond("33, 34"), "34", -1.5),  # several numbers: a hedge, not a match
    (respond("x"), "34", -2.5),  # no number in the block
    ("34", "34", -2.5),  # no block
    (respond("34"), "\\frac{1}{2} + \\pi", 0.0),  # the reference is not a plain number
]


@pytest.mark.parametrize("text, gold, score", CHECK_NUMBERS)
def test_check_numbers(text, gold, score):
    assert check_numbers(completions=[chat(text)], answer=[gold]) == [pytest.approx(score)]


def test_check_answer_full_score_exactly_when_is_correct():
    cases = [(p, g) for p, g in EQUAL + NOT_EQUAL]
    completions = [chat(respond(p)) for p, _ in cases]
    scores = check_answer(completions=completions, answer=[g for _, g in cases])
    for (pred, gold), score in zip(cases, scores, strict=True):
        assert (score == rewards.ANSWER_CORRECT) == is_correct(respond(pred), gold), (pred, gold)


def test_response_as_the_system_prompt_asks_earns_the_maximum():
    for tag in (REASONING_END, SOLUTION_START, SOLUTION_END):
        assert tag in SYSTEM_PROMPT
    completion = "17 + 17 = 34, so the sum is 34.\n" + f"{REASONING_END}\n{SOLUTION_START}34{SOLUTION_END}"
    total = sum(f(completions=[chat(completion)], answer=["34"])[0] for f in REWARD_FUNCS)
    assert total == pytest.approx(MAX_REWARD) and MAX_REWARD == pytest.approx(13.0)


# ----------------------------------------------------------------------------- the contract
ALL_FUNCS = [*REWARD_FUNCS]


def test_reward_funcs_order_and_names():
    assert [f.__name__ for f in REWARD_FUNCS] == [
        "match_format_exactly",
        "match_format_approximately",
        "check_answer",
        "check_numbers",
    ]


@pytest.mark.parametrize("func", ALL_FUNCS)
def test_extra_kwargs_are_ignored_and_shapes_match(func):
    texts = [respond("34"), "junk", respond("35")]
    plain = func(completions=texts, answer=["34"] * 3)
    as_chat = func(
        completions=[chat(t) for t in texts],
        answer=["34"] * 3,
        prompts=[[{"role": "user", "content": "q"}]] * 3,
        completion_ids=[[1, 2]] * 3,
        solution=["34"] * 3,
        trainer_state=object(),
        log_extra=lambda *a, **k: None,
        log_metric=lambda *a, **k: None,
        something_new=42,
    )
    assert plain == as_chat and len(plain) == 3
    assert all(isinstance(x, float) for x in plain)


@pytest.mark.parametrize("func", [check_answer, check_numbers])
@pytest.mark.parametrize("missing", [None, "", "   "])
def test_missing_reference_gives_none(func, missing):
    assert func(completions=[respond("34"), respond("1")], answer=[missing, "1"])[0] is None
    assert func(completions=[respond("34")], answer=[missing])[1:] == []


def test_no_answer_column_at_all():
    assert check_answer(completions=[respond("34")]) == [None]
    assert match_format_exactly(completions=[respond("34")]) == [3.0]


@pytest.mark.parametrize(
    "completion",
    [
        None,
        42,
        [],
        {},
        [{"role": "assistant", "content": None}],
        [{"role": "assistant"}],
        [{"content": [{"type": "text", "text": respond("34")}]}],
        {"role": "assistant", "content": respond("34")},
    ],
)
def test_odd_completion_shapes_do_not_raise(completion):
    for func in ALL_FUNCS:
        (score,) = func(completions=[completion], answer=["34"])
        assert isinstance(score, float) and math.isfinite(score)


@pytest.mark.parametrize("func", ALL_FUNCS + [is_correct])
def test_functions_pickle(func):
    assert pickle.loads(pickle.dumps(func)) is func


def test_works_in_worker_threads():
    """math-verify's own timeouts use signal.alarm, which fails off the main thread; ours must not."""
    cases = EQUAL + NOT_EQUAL
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: is_correct(respond(c[0]), c[1]), cases))
        scores = list(pool.map(lambda c: check_answer(completions=[respond(c[0])], answer=[c[1]])[0], cases))
    assert results == [True] * len(EQUAL) + [False] * len(NOT_EQUAL)
    assert all(math.isfinite(s) for s in scores)


def test_importable_without_torch():
    code = (
        "import sys, rewards; bad = {'torch', 'transformers', 'trl', 'unsloth'} & set(sys.modules); sys.exit(bool(bad))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=rewards.__file__.rsplit("/", 1)[0]).returncode == 0


# ----------------------------------------------------------------------------- the verifier on real answers
# Issue #9: measured against the 500 MATH-500 references, the verifier paid wrong answers, refused right
# ones and took up to a second per call. Each table below is one kind of defect or one kind of answer
# that other graders' test suites contain; every case says what it probes.
REFERENCES = load_references(MATH500)

WRONG_ANSWERS_PAID = [  # (answer, reference): each was accepted, or is the kind of answer that was
    ("1", "6 - 5i"),  # a letter after a digit is not a unit: 6 - 5i is complex, not 6 - 5
    ("6 - 5", "6 - 5i"),  # the imaginary part dropped
    ("2", "2k"),  # a variable is not a unit
    ("2 + 2", "2k+2"),  # a variable dropped from a sum
    ("-2", "y = -2x"),  # the slope alone is not the line
    ("y = -2", "y = -2x"),  # the variable dropped from the right side
    ("3+2x", "5"),  # a sum that equals the reference once the x is stripped
    ("34x", "34"),  # a number times a variable
    ("34 thousand", "34"),  # a word that changes the value
    ("2c", "2"),  # math-verify's own unit list removes a trailing c
    ("52_9", "52_8"),  # another base
    ("204_6", "204_5"),  # another base
    ("4210_{6}", "4210_{5}"),  # another base, in braces
    ("52_{10}", "52_8"),  # base ten written out
    ("42", "52_8"),  # the decimal value is not the base-8 numeral asked for
    ("52_8", "52"),  # an octal numeral is not the decimal number with the same digits
    ("x + 1 = 34", "34"),  # an equation whose right side is the reference (math-verify reads it as 34)
    ("=5", "x=5"),  # a relation without its variable
    ("x \\in", "x \\in [-2,7]"),  # a relation without its set
    ("864 \\text{ inches}^3", "864 \\mbox{ inches}^2"),  # a unit changed: area to volume
    ("15 \\text{ m}^2", "15\\mbox{ cm}^2"),  # a unit changed: cm to m
    ("\\$5", "5 \\text{ cents}"),  # dollars are not cents
    (".0000673", ".0000672"),  # math-verify rounds to 6 places; plain numbers are compared exactly
    ("3.14159", "\\pi"),  # an approximation is not the number
    ("0.333", "\\frac{1}{3}"),  # a rounded decimal is not the fraction
    ("\\frac{\\pi}{2}", "90^\\circ"),  # degrees are not radians
    ("\\text{west}", "\\text{east}"),  # math-verify's unit list holds both words
    ("\\sqrt{3} - 2", "\\sqrt{7 - 4\\sqrt{3}}"),  # the negative square root
    ("x + y = 2", "y = 1 - x"),  # another line
    ("y = x", "y = 2x"),  # another line through the origin
    ("1 + \\sqrt{19}", "1 \\pm \\sqrt{19}"),  # one of the two answers
    ("1 \\pm \\sqrt{19}", "1 + \\sqrt{19}"),  # a hedge of two answers
    ("33, 34", "33"),  # a list of candidates that contains the answer
    ("\\boxed{33} \\boxed{34}", "34"),  # two boxes: two answers
    ("\\{1, 2, 3\\}", "\\{1, 2\\}"),  # a set with an extra element
    ("1000", "100"),  # an order of magnitude
    ("2\\sqrt{2}", "\\sqrt{2}"),  # a factor dropped
    ("(x-1)(x+2)", "(x-1)(x-2)"),  # a sign in a factor
]

RIGHT_ANSWERS_REFUSED = [  # (answer, reference): each was refused
    ("\\boxed{90^\\circ}", "90^\\circ"),  # the degree pattern ate the box's closing brace
    ("90", "90^\\circ"),  # degrees may be left out
    ("\\$36", "\\$36"),  # currency kept its backslash
    ("36", "\\$36"),  # and may be left out
    ("\\$18.90", "18.9"),  # cents written with two digits
    ("32348", "\\$32,\\!348"),  # currency, a thousands comma and a negative thin space
    ("11111111100", "11,\\! 111,\\! 111,\\! 100"),  # thin spaces with spaces after them
    (
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
    ),  # a matrix
    (
        "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}",
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
    ),  # cells
    ("-5i + 6", "6 - 5i"),  # a complex number with its terms swapped
    ("y = 3 + 2x", "y = 2x + 3"),  # a line with its terms swapped
    (
        "\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]",
        "[\\frac{\\pi^2}{8}, \\frac{5\\pi^2}{4}]",
    ),  # a slow interval
    ("\\frac{270}{7}", "\\frac{270}7\\text{ degrees}"),  # a unit in words, a fraction without braces
    ("137.5", "137 \\frac{1}{2}"),  # a mixed number
    ("\\text{Evelyn}", "\\text{Evelyn}"),  # a name
    ("evelyn", "\\text{Evelyn}"),  # a name without \\text{} or capital
    ("[-2, 7]", "x \\in [-2,7]"),  # an interval without its variable
    ("1, 2", "\\{1, 2\\}"),  # a set written bare
]

EQUATIONS = [  # rearranged or scaled equations are equal (pred, gold, equal?)
    ("2x + 3 = y", "y = 2x + 3", True),  # sides swapped
    ("2x - y + 3 = 0", "y = 2x + 3", True),  # everything on one side
    ("2y = 4x + 6", "y = 2x + 3", True),  # scaled by 2
    ("-5x + 7y - 11z - 4 = 0", "5x - 7y + 11z + 4 = 0", True),  # scaled by -1
    ("9x^2 + 4y^2 = 36", "\\frac{x^2}{4} + \\frac{y^2}{9} = 1", True),  # an ellipse, scaled by 36
    ("y - 3 = 2(x - 1)", "y = 2x + 1", True),  # point-slope form
    ("5 = x", "x=5", True),  # an assignment turned round
    ("y = 2x + 4", "y = 2x + 3", False),  # another intercept
    ("2y = 4x + 3", "y = 2x + 3", False),  # one side scaled only
    ("x = 5", "y = 5", False),  # another variable
]

CFRACS = [
    ("\\cfrac{1}{2}", "0.5", True),  # a continued-fraction command for a plain fraction
    ("\\cfrac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", True),  # with a radical
    ("\\cfrac{1}{1 + \\cfrac{1}{2}}", "\\frac{2}{3}", True),  # a real continued fraction
    ("\\cfrac{1}{3}", "0.5", False),  # another value
]

UNITS_AND_WORDS = [
    ("\\textbf{50 cm}", "50", True),  # a unit inside \\textbf{}
    ("50\\textbf{ cm}", "50", True),  # \\textbf{} around the unit only
    ("\\textbf{12}", "12", True),  # \\textbf{} around a number
    ("20 pct", "20\\%", True),  # pct for percent
    ("20 pct", "20", True),  # a percentage may be read as its number...
    ("20 pct", "0.2", True),  # ...or as its value
    ("20 percent", "20\\%", True),  # percent in words
    ("0.2", "20", False),  # no percent sign: 0.2 is not 20
    ("5 meters", "5", True),  # a unit in words
    ("4 square units", "4", True),  # an area in words
    ("5 \\text{ ways}", "5", True),  # a unit word outside the closed list may be left out (#30)
    ("5 \\text{ ways}", "5 \\text{ days}", False),  # ...not changed
]

APPROXIMATIONS = [
    ("\\frac{\\sqrt{3}}{3} \\approx 0.577", "\\frac{\\sqrt{3}}{3}", True),  # the exact value, then its approximation
    ("\\frac{\\sqrt{3}}{3} \\approx 0.577", "\\frac{1}{\\sqrt{3}}", True),  # the same, rationalised
    ("\\frac{1}{3} \\approx 0.333", "\\frac13", True),  # a fraction and its decimal
    ("\\frac{\\sqrt{2}}{3} \\approx 0.577", "\\frac{\\sqrt{3}}{3}", False),  # a wrong exact value, a right decimal
    ("\\approx 0.577", "\\frac{\\sqrt{3}}{3}", False),  # only the approximation
]

SEVERAL_ANSWERS = [
    ("\\boxed{1}, \\boxed{2}", "1, 2", True),  # two boxes, a bare list
    ("\\boxed{2} \\text{ and } \\boxed{3}", "\\{2,3\\}", True),  # two boxes joined by "and", a set
    ("\\boxed{2}\\boxed{3}", "\\{3, 2\\}", True),  # two boxes side by side, in another order
    ("\\boxed{x=2} and \\boxed{x=3}", "2, 3", True),  # two assignments
    ("2 and 3", "\\{2, 3\\}", True),  # "and" between answers
    ("2 \\text{ or } 3", "2,3", True),  # "or" between answers
    ("\\frac12 \\text{ and } \\sqrt2", "\\left\\{\\frac12, \\sqrt2\\right\\}", True),  # expressions
    ("2 and 4", "\\{2, 3\\}", False),  # one of them wrong
    ("2", "\\{2, 3\\}", False),  # one of them missing
]

SEMICOLON_TUPLES = [
    ("(1; 2; 3)", "(1,2,3)", True),  # semicolons between coordinates
    ("(1; \\sqrt{2})", "\\left(1, \\sqrt2\\right)", True),  # with a radical
    ("(2; 1)", "(1, 2)", False),  # order matters in a tuple
    ("1; 2", "1, 2", True),  # a bare list with semicolons
]

CHOICE_LETTERS = [
    ("C", "\\text{(C)}", True),  # the bare letter
    ("\\text{(C)}", "C", True),  # the other way round
    ("(C)", "\\textbf{(C)}", True),  # in parentheses, in bold
    ("\\mathrm{(C)}", "(C)", True),  # in \\mathrm{}
    ("(c)", "\\text{(C)}", True),  # lower case in parentheses
    ("D", "\\text{(C)}", False),  # another letter
    ("c", "C", False),  # a bare lower-case letter is a variable, not a choice
]

MATRICES = [
    (
        "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        True,
    ),  # bmatrix
    (
        "\\left[\\begin{matrix} 1 & 2 \\\\ 3 & 4 \\end{matrix}\\right]",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        True,
    ),  # matrix in brackets
    (
        "\\begin{bmatrix} \\frac{1}{2} \\\\ \\sqrt{2} \\end{bmatrix}",
        "\\begin{pmatrix} 0.5 \\\\ \\sqrt2 \\end{pmatrix}",
        True,
    ),  # cells equal
    (
        "\\begin{bmatrix} 1 & 2 \\\\ 3 & 5 \\end{bmatrix}",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        False,
    ),  # a cell wrong
    (
        "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        False,
    ),  # transposed
    ("(1, 2)", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", False),  # a tuple is not a column vector
]

SUMS_AND_RADICALS = [
    ("b + a + c", "a + b + c", True),  # terms reordered
    ("-\\sqrt{2} + 1", "1 - \\sqrt{2}", True),  # a negative term first
    ("1 + x + x^2 + x^3", "x^3 + x^2 + x + 1", True),  # a polynomial reversed
    ("\\sqrt{3 + 2\\sqrt{2}}", "1 + \\sqrt{2}", True),  # a nested radical denested
    ("\\sqrt{7 - 4\\sqrt{3}}", "2 - \\sqrt{3}", True),  # another one
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", True),  # a rationalised denominator
    ("3\\sqrt{3}", "\\sqrt{27}", True),  # a factor taken out
    ("\\sqrt{3 + 2\\sqrt{2}}", "1 + \\sqrt{3}", False),  # a wrong denesting
]

DECISIONS = [  # the ambiguous cases, decided once (the verifier's docstring and docs/rewards.md say the same)
    ("1,000", "1000", True),  # digits grouped by three: a thousands separator
    ("1,5", "1.5", False),  # a comma never marks decimals...
    ("1,5", "1, 5", True),  # ...it separates answers
    ("2, 1", "1, 2", True),  # a bare list is a set: order does not matter
    ("34, 34", "34", True),  # nor do repeats
    ("(1, 2)", "1, 2", False),  # a tuple is not a set
    ("(1, 2)", "(2, 1)", False),  # a tuple's order matters
    ("(1, 2)", "[1, 2]", False),  # an open interval is not a closed one
    ("2\\frac{1}{2}", "2.5", True),  # an integer before a proper fraction: a mixed number
    ("52", "52_8", True),  # a numeral without its base subscript, read in that base
    ("52_{10}", "52", True),  # base ten written out
    ("20\\%", "0.2", True),  # a percentage equals its value...
    ("20\\%", "20", True),  # ...and its number
    ("x = 5", "5", True),  # a label is decoration
    ("x = 5", "y = 5", False),  # but not another variable's
    ("3.14159265358979", "\\pi", True),  # a decimal equals an irrational when it agrees to 12 places
]

CATEGORY_TABLES = {
    "equations": EQUATIONS,
    "cfrac": CFRACS,
    "units and words": UNITS_AND_WORDS,
    "approximations": APPROXIMATIONS,
    "several answers": SEVERAL_ANSWERS,
    "semicolon tuples": SEMICOLON_TUPLES,
    "choice letters": CHOICE_LETTERS,
    "matrices": MATRICES,
    "sums and radicals": SUMS_AND_RADICALS,
    "decisions": DECISIONS,
}


@pytest.mark.parametrize("pred, gold", WRONG_ANSWERS_PAID)
def test_wrong_answers_are_never_paid(pred, gold):
    assert is_correct(respond(pred), gold) is False
    assert check_answer(completions=[respond(pred)], answer=[gold])[0] != rewards.ANSWER_CORRECT


@pytest.mark.parametrize("pred, gold", RIGHT_ANSWERS_REFUSED)
def test_right_answers_are_recognised(pred, gold):
    assert is_correct(respond(pred), gold) is True


@pytest.mark.parametrize(
    "category, pred, gold, equal",
    [(name, *case) for name, table in CATEGORY_TABLES.items() for case in table],
)
def test_answer_categories(category, pred, gold, equal):
    assert is_correct(respond(pred), gold) is equal


@pytest.mark.parametrize("form", ["bare", "inline math", "boxed"])
def test_every_math500_reference_equals_itself(form):
    refused = [
        ref for ref in REFERENCES for kind, text in variants(ref) if kind == form and not is_correct(respond(text), ref)
    ]
    assert len(REFERENCES) == 500 and refused == []


def test_math500_references_equal_their_harmless_rewritings():
    """Spacing, \\dfrac/\\cfrac, \\left(, \\!, {,}, reordered sums and lists, equations turned round, bmatrix."""
    pairs = [(text, ref, kind) for ref in REFERENCES for kind, text in variants(ref)]
    refused = [(kind, text, ref) for text, ref, kind in pairs if not is_correct(respond(text), ref)]
    assert len(pairs) > 1500
    assert 1 - len(refused) / len(pairs) >= 0.99, refused
    assert refused == []  # all of them today; the 99 % line above is the target


def test_math500_wrong_copies_are_refused():
    """A digit changed, a variable dropped, a letter added, a base changed: never equal."""
    copies = [(text, ref, kind) for ref in REFERENCES for kind, text in wrong_copies(ref)]
    kinds = {kind for *_, kind in copies}
    assert kinds == {"digit changed", "variable dropped", "letter added", "base changed"} and len(copies) > 1000
    accepted = [(kind, text, ref) for text, ref, kind in copies if is_correct(respond(text), ref)]
    assert accepted == []


def test_check_numbers_agrees_with_is_correct_on_math500():
    """A number check_numbers calls equal, is_correct calls equal (one rule for units, labels, percent)."""
    numeric = [ref for ref in REFERENCES if rewards.parse_number(ref) is not None]
    for ref in numeric:
        for _, text in variants(ref) + wrong_copies(ref) + [("", "x = " + ref), ("", ref + " cm"), ("", ref + "x")]:
            if check_numbers(completions=[respond(text)], answer=[ref])[0] == rewards.NUMBER_EQUAL:
                assert is_correct(respond(text), ref), (text, ref)


numbers = st.one_of(
    st.integers(-10_000, 10_000).map(str),
    st.fractions(max_denominator=50).map(lambda f: f"\\frac{{{f.numerator}}}{{{f.denominator}}}"),
    st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False).map(str),
)
decorations = st.sampled_from(
    ["@", "$@$", "\\boxed{@}", "x = @", "@ cm", "@\\%", "@x", "@, 7", "@ \\text{ apples}", "\\$ @"]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=numbers, reference=numbers, decoration=decorations)
def test_property_check_numbers_equal_implies_is_correct(value, reference, decoration):
    text = respond(decoration.replace("@", value))
    if check_numbers(completions=[text], answer=[reference])[0] == rewards.NUMBER_EQUAL:
        assert is_correct(text, reference)


# ----------------------------------------------------------------------------- hostile input
HOSTILE = [
    "9^{9^{9^{9}}}",  # power tower
    "9^9^9^9",  # power tower without braces
    "((9^{99})^{99})^{99}",  # tower through parentheses
    "99999999999999999999999999!",  # factorial of a 26-digit number
    "(10^{26})!",  # the same, written as a power
    "1e100000",  # a number sympy would build in full
    "2^{100000000}",  # a big exponent
    "{" * 5000 + "}" * 5000,  # thousands of nested braces
    "(" * 5000,  # unbalanced parentheses
    "\\frac{" * 3000,  # unfinished fractions
    "nan",
    "inf",
    "1/0",
    "\\frac{1}{0}",
    "1" * 5000,  # a 5000-digit number (beyond Python's int() limit)
    "x" * 1_000_000,  # a megabyte of text
    "\\sum_{n=1}^{10^{9}} n",  # a sum sympy would evaluate
    "\\binom{10^{20}}{10^{19}}",  # a huge binomial
    "\\sin(10^{15})",  # trig of a big number
    "{{{{{{{{1}}}}}}}}",  # deep but harmless nesting (slow for the LaTeX parser)
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_answers_are_decided_by_their_shape(hostile):
    """A hostile answer never raises and never reaches a limit: it is decided (True/False, never
    undecided) without the worker running out of CPU budget or its wall-clock backstop, so it cannot
    hang a step. bench/verifier.py measures the latency."""
    texts = [respond(hostile), hostile, respond(hostile) * 2]
    before = verifier.stats()
    for gold in ["34", "\\frac{1}{2}", hostile[:200]]:
        for func in ALL_FUNCS:
            for score in func(completions=[chat(t) for t in texts], answer=[gold] * 3):
                assert score is None or (isinstance(score, float) and math.isfinite(score))
        assert isinstance(is_correct(texts[0], gold), bool)
    after = verifier.stats()
    assert (after["timeouts"], after["undecided"]) == (before["timeouts"], before["undecided"])


text_or_none = st.one_of(st.none(), st.text(max_size=300))
fragments = st.sampled_from(
    [
        REASONING_END,
        SOLUTION_START,
        SOLUTION_END,
        "34",
        "-",
        ".",
        "/",
        "^",
        "{",
        "}",
        "\\frac",
        "\\sqrt",
        "$",
        "\\boxed{",
        ",",
        " or ",
        "e",
        "!",
        "(",
        ")",
        "<|endoftext|>",
        "\u2212",
        "\\infty",
        "nan",
        "9",
    ]
)
tag_soup = st.lists(st.one_of(fragments, st.text(max_size=8)), max_size=40).map("".join)


def _check_all(text, reference):
    for func in ALL_FUNCS:
        (score,) = func(completions=[chat(text)], answer=[reference])
        assert score is None or (isinstance(score, float) and math.isfinite(score))
    assert is_correct(text, reference) in (True, False, None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=400), tag_soup), reference=st.one_of(text_or_none, tag_soup))
def test_property_any_text_gives_finite_score_or_none(text, reference):
    _check_all(text, reference)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(st.text(max_size=2000), tag_soup),
    reference=st.one_of(text_or_none, tag_soup, st.integers().map(str)),
)
def test_property_long_run(text, reference):
    """The same property over thousands of examples (run in CI; `-m "not slow"` skips it locally)."""
    _check_all(text, reference)
