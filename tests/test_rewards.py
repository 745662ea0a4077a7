"""Tests for rewards.py: needs only math-verify, pytest and hypothesis (no torch, no GPU)."""

import math
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewards
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
    ("34 apples", "34"),  # a word that is not a unit: cleaning removes only a closed list, never "any word"
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
def test_hostile_answers_never_raise_or_hang(hostile):
    """A generous bound that only a hang can break; bench/rewards.py measures the real latency."""
    texts = [respond(hostile), hostile, respond(hostile) * 2]
    for gold in ["34", "\\frac{1}{2}", hostile[:200]]:
        start = time.perf_counter()
        for func in ALL_FUNCS:
            for score in func(completions=[chat(t) for t in texts], answer=[gold] * 3):
                assert score is None or (isinstance(score, float) and math.isfinite(score))
        assert isinstance(is_correct(texts[0], gold), bool)
        assert time.perf_counter() - start < 5.0


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
    assert isinstance(is_correct(text, reference), bool)


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
