"""Measure the rewards: batch throughput against the recipe's regex-only rewards, and worst-case
latency on hostile answers, in the main thread and in a worker thread.

    python bench/rewards.py             # prints both; exits 1 if a target is missed
    python bench/rewards.py --quick     # fewer repeats and random answers

Targets (issue "rewards.py"): the four rewards over 256 completions of ~3 KB take at most twice the
recipe's regex-only rewards; no single call takes more than 100 ms (after the verifier's worker process
has started, which train_grpo.py does before training: see the verifier package).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import verifier  # noqa: E402
from rewards import REASONING_END, REWARD_FUNCS, SOLUTION_END, SOLUTION_START, is_correct  # noqa: E402

RATIO_TARGET = 2.0
LATENCY_TARGET_MS = 100.0


# ----------------------------------------------------------------------------- the baseline
def recipe_rewards(eos: str = "<|endoftext|>"):
    """The reference notebook's four rewards, regex-only, as the baseline to beat (not for use)."""
    end = re.escape(SOLUTION_END) + r"[\s]{0,}" + "(?:" + re.escape(eos) + ")?"
    match_format = re.compile(
        rf"{re.escape(REASONING_END)}.*?{re.escape(SOLUTION_START)}(.+?){end}[\s]{{0,}}$",
        flags=re.MULTILINE | re.DOTALL,
    )
    match_numbers = re.compile(re.escape(SOLUTION_START) + r".*?[\s]{0,}([-]?[\d\.\,]{1,})", re.MULTILINE | re.DOTALL)

    def exact(completions, **kw):
        return [3.0 if match_format.search(c[0]["content"]) else 0.0 for c in completions]

    def approx(completions, **kw):
        out = []
        for c in completions:
            r = c[0]["content"]
            out.append(sum(0.5 if r.count(t) == 1 else -1.0 for t in (REASONING_END, SOLUTION_START, SOLUTION_END)))
        return out

    def answer(completions, answer, **kw):
        out = []
        for c, true in zip(completions, answer, strict=True):
            m = match_format.search(c[0]["content"])
            guess = m.group(1) if m else None
            if guess is None:
                out.append(-2.0)
            elif guess == true:
                out.append(5.0)
            elif guess.strip() == true.strip():
                out.append(3.5)
            else:
                try:
                    ratio = float(guess) / float(true)
                    out.append(2.0 if 0.9 <= ratio <= 1.1 else 1.5 if 0.8 <= ratio <= 1.2 else -2.5)
                except (ValueError, ZeroDivisionError):
                    out.append(-4.5)
        return out

    def numbers(completions, answer, **kw):
        out = []
        for c, true in zip(completions, answer, strict=True):
            m = match_numbers.search(c[0]["content"])
            if m is None:
                out.append(-2.5)
                continue
            try:
                out.append(3.5 if float(m.group(1).replace(",", "")) == float(true.strip()) else -1.5)
            except ValueError:
                out.append(0.0)
        return out

    return [exact, approx, answer, numbers]


# ----------------------------------------------------------------------------- the batch
ANSWER_STYLES = ["{a}", "{a}", "{a}", " {a} ", "{a}.0", "${a}$", "\\boxed{{{a}}}", "{w}", "{w}", "{a}, {w}", "x = {a}"]


def make_batch(n: int, size: int, seed: int = 0):
    """n chat completions of about `size` characters with DAPO-like integer answers, in the mix of
    answer styles a model produces early in training (some wrong, some without a solution block)."""
    rng = random.Random(seed)
    words = "so we add the two terms then divide by the common factor which gives us".split()
    completions, answers = [], []
    for i in range(n):
        a = rng.randint(-50, 5000)
        working = " ".join(
            rng.choice(words) + (f" {rng.randint(0, 999)}" if rng.random() < 0.2 else "") for _ in range(size // 5)
        )
        working = working[: size - 60]
        block = rng.choice(ANSWER_STYLES).format(a=a, w=a + rng.randint(1, 40))
        tail = f"{REASONING_END}{SOLUTION_START}{block}{SOLUTION_END}" if i % 8 else " I am not sure."
        completions.append([{"role": "assistant", "content": working + tail}])
        answers.append(str(a))
    return completions, answers


def clear_caches() -> None:
    """Forget every answer and verdict the verifier has seen, so each measurement starts cold."""
    verifier.clear_caches()


def time_batch(funcs, completions, answers, repeats: int) -> float:
    """Best of `repeats` timings of all `funcs` over the batch, each from cold caches."""
    best = float("inf")
    for _ in range(repeats):
        clear_caches()
        start = time.perf_counter()
        for f in funcs:
            f(completions=completions, answer=answers, prompts=None, completion_ids=None)
        best = min(best, time.perf_counter() - start)
    return best


# ----------------------------------------------------------------------------- hostile answers
HOSTILE = [
    "9^{9^{9^{9}}}",
    "9^9^9^9",
    "((9^{99})^{99})^{99}",
    "(10^{26})!",
    "99999999999999999999999999!",
    "1e100000",
    "2^{100000000}",
    "10^{10^{10}}",
    "\\frac{1}{0}",
    "nan",
    "inf",
    "1/0",
    "-\\infty",
    "{" * 5000 + "}" * 5000,
    "(" * 5000,
    "\\frac{" * 3000,
    "1" * 5000,
    "x" * 1_000_000,
    "\\sin(10^{15})",
    "\\log(0)",
    "\\tan(\\pi/2)",
    "\\sum_{n=1}^{10^{9}} n",
    "\\int_0^1 x dx",
    "\\binom{10^{20}}{10^{19}}",
    "\\Gamma(10^{30})",
    "a=b=c=34",
    "{{{{{{{{1}}}}}}}}",
    "(((3)))",
]
TOKENS = [
    "1",
    "9",
    "34",
    "0",
    ".",
    ",",
    "-",
    "+",
    "*",
    "/",
    "^",
    "_",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "x",
    "e",
    "\\pi",
    "\\frac",
    "\\sqrt",
    "\\cdot",
    "\\infty",
    "\\{",
    "\\}",
    "\\left(",
    "\\right)",
    " ",
    "=",
    "!",
    "\\sin",
    "\\log",
    "99999",
    "%",
    "\\circ",
    "$",
    "\\boxed{",
    "i",
]


def random_answers(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 30))) for _ in range(n)]


def worst_latency(answers: list[str], golds: list[str]) -> tuple[float, str, str]:
    """Slowest single call over every answer x gold x function, in ms, with its inputs."""
    worst = (0.0, "", "")
    for pred in answers:
        completion = [[{"role": "assistant", "content": f"w{REASONING_END}{SOLUTION_START}{pred}{SOLUTION_END}"}]]
        for gold in golds:
            for f in [*REWARD_FUNCS, lambda completions, answer: [is_correct(completions[0][0]["content"], answer[0])]]:
                start = time.perf_counter()
                f(completions=completion, answer=[gold])
                ms = (time.perf_counter() - start) * 1000
                if ms > worst[0]:
                    worst = (ms, pred, gold)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and random answers")
    args = parser.parse_args()
    repeats, n_random = (5, 200) if args.quick else (10, 2000)

    completions, answers = make_batch(256, 3000)
    baseline = time_batch(recipe_rewards(), completions, answers, repeats)
    ours = time_batch(REWARD_FUNCS, completions, answers, repeats)
    ratio = ours / baseline
    print(
        f"batch of {len(completions)} completions, {statistics.mean(len(c[0]['content']) for c in completions):.0f} chars each"
    )
    print(f"  recipe regex rewards : {baseline * 1000:8.2f} ms")
    print(f"  rewards.py           : {ours * 1000:8.2f} ms")
    print(f"  ratio                : {ratio:8.2f}  (target <= {RATIO_TARGET})")

    # The math-verify worker starts once per process (on the first answer that needs it); start it
    # here so that the calls below measure judgements, then forget every answer so each is judged cold.
    start = time.perf_counter()
    verifier.start(warm=True)
    print(f"verifier worker start and warm-up: {time.perf_counter() - start:.2f} s (once per process)")
    clear_caches()
    golds = ["34", "0", "\\frac{1}{2}", "2\\sqrt{2}", "(1, 2)"]
    hostile = HOSTILE + random_answers(n_random)
    main_worst = worst_latency(hostile, golds)
    verifier.stop()  # a fresh (cold) worker for the thread too
    verifier.start(warm=True)
    clear_caches()
    result = []
    thread = threading.Thread(target=lambda: result.append(worst_latency(hostile, golds)))
    thread.start()
    thread.join()
    print(f"hostile answers: {len(hostile)} x {len(golds)} references x 5 functions")
    for name, (ms, pred, gold) in [("main thread", main_worst), ("worker thread", result[0])]:
        print(
            f"  worst call, {name:13}: {ms:7.1f} ms  (target <= {LATENCY_TARGET_MS:.0f}) on {pred[:40]!r} vs {gold!r}"
        )
    ok = ratio <= RATIO_TARGET and max(main_worst[0], result[0][0]) <= LATENCY_TARGET_MS
    print("PASS" if ok else "MISS: a target above is not met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
