"""Write the small math samples bundled for offline runs (smoke mode and tests).

    python data/make_samples.py

math_sample.jsonl   problems in the columns of open-r1/DAPO-Math-17k-Processed (prompt, solution, ...)
primer_sample.jsonl worked solutions in the columns of unsloth/OpenMathReasoning-mini
                    (problem, generated_solution, expected_answer), for the format-priming pass
Both are generated from a fixed seed, so rerunning the script reproduces them byte for byte.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def problem(rng: random.Random) -> tuple[str, str, str]:
    """One arithmetic word problem: (question, answer, a one-line worked solution short enough for
    the tiny smoke model to learn)."""
    a, b, c = rng.randint(2, 60), rng.randint(2, 60), rng.randint(2, 9)
    kind = rng.choice(["sum", "difference", "product", "groups", "remainder"])
    if kind == "sum":
        return (
            f"Ana has {a} marbles and finds {b} more. How many marbles does she have now?",
            str(a + b),
            f"{a} + {b} = {a + b}",
        )
    if kind == "difference":
        hi, lo = max(a, b), min(a, b)
        return (
            f"A shelf holds {hi} books. {lo} are taken away. How many books are left?",
            str(hi - lo),
            f"{hi} - {lo} = {hi - lo}",
        )
    if kind == "product":
        return (
            f"There are {c} boxes with {a} pencils in each. How many pencils are there in total?",
            str(a * c),
            f"{c} * {a} = {a * c}",
        )
    if kind == "groups":
        return (
            f"{a * c} students are split into {c} equal teams. How many students are in each team?",
            str(a),
            f"{a * c} / {c} = {a}",
        )
    return (
        f"What is the remainder when {a * c + c - 1} is divided by {c}?",
        str(c - 1),
        f"{a * c + c - 1} = {c} * {a} + {c - 1}",
    )


def main() -> None:
    rng = random.Random(3407)
    rows = []
    for i in range(240):
        question, answer, _ = problem(rng)
        rows.append(
            {
                "prompt": question,
                "solution": answer,
                "data_source": "smoke-sample",
                "ability": "MATH",
                "reward_model": {"ground_truth": answer, "style": "rule-lighteval/MATH_v2"},
                "extra_info": {"index": f"smoke-{i:04d}"},
            }
        )
    primer = []
    for _ in range(64):
        question, answer, working = problem(rng)
        primer.append(
            {"problem": question, "generated_solution": f"<think>\n{working}\n</think>", "expected_answer": answer}
        )
    for name, data in [("math_sample.jsonl", rows), ("primer_sample.jsonl", primer)]:
        with open(HERE / name, "w", encoding="utf-8") as f:
            for row in data:
                f.write(json.dumps(row) + "\n")
        print(f"wrote {len(data)} rows to data/{name}")


if __name__ == "__main__":
    main()
