"""Write the toy task bundled for the smoke run and the tests: name the largest of four digits.

    python data/make_samples.py

smoke_task.jsonl    problems in the columns of open-r1/DAPO-Math-17k-Processed (prompt, solution, ...),
                    for GRPO and the held-out comparison
smoke_primer.jsonl  worked solutions in the columns of unsloth/OpenMathReasoning-mini (problem,
                    generated_solution, expected_answer), for the format-priming pass

Why this task: a model of half a million parameters can learn it from scratch on a CPU in a minute or
two, so the smoke run can show accuracy rising, not only the format. Every tuple of four digits is used
at most once (so held-out problems are never trained on), and the largest digit is drawn uniformly from
1-9 until a value runs out of tuples (1 has 15, 2 has 65): no constant answer is right for more than
about 14 % of the problems. Each digit is one token, and the working is a running maximum ("3, 8, 8, 8"),
one easy step per digit. The primer's digit
tuples never appear among the problems, so priming cannot teach the held-out answers.
Generated from a fixed seed: rerunning the script reproduces both files byte for byte.
"""

import json
import random
from itertools import accumulate
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROBLEMS = 1200
PRIMER_ROWS = 256


def digits(rng: random.Random, largest: int) -> tuple[int, ...]:
    """Four digits whose largest is `largest`."""
    row = [rng.randint(0, largest) for _ in range(4)]
    row[rng.randrange(4)] = largest
    return tuple(row)


def question(row: tuple[int, ...]) -> str:
    return f"Which is the largest of {', '.join(map(str, row))}?"


def working(row: tuple[int, ...]) -> str:
    return "Largest so far: " + ", ".join(str(m) for m in accumulate(row, max)) + "."


def main() -> None:
    rng = random.Random(3407)
    seen: set[tuple[int, ...]] = set()
    left = {a: (a + 1) ** 4 - a**4 for a in range(1, 10)}  # distinct tuples whose largest digit is a

    def fresh() -> tuple[int, ...]:
        """A tuple never used before; its largest digit uniform over those not yet used up."""
        largest = rng.choice([a for a, n in left.items() if n])
        while (row := digits(rng, largest)) in seen:
            pass
        seen.add(row)
        left[largest] -= 1
        return row

    problems = []
    for i in range(PROBLEMS):
        row = fresh()
        answer = str(max(row))
        problems.append(
            {
                "prompt": question(row),
                "solution": answer,
                "data_source": "smoke-largest-digit",
                "ability": "MATH",
                "reward_model": {"ground_truth": answer, "style": "rule"},
                "extra_info": {"index": f"smoke-{i:04d}"},
            }
        )
    primer = []
    for _ in range(PRIMER_ROWS):
        row = fresh()
        primer.append(
            {
                "problem": question(row),
                "generated_solution": f"<think>\n{working(row)}\n</think>",
                "expected_answer": str(max(row)),
            }
        )
    for name, data in [("smoke_task.jsonl", problems), ("smoke_primer.jsonl", primer)]:
        with open(HERE / name, "w", encoding="utf-8") as f:
            for row in data:
                f.write(json.dumps(row) + "\n")
        print(f"wrote {len(data)} rows to data/{name}")


if __name__ == "__main__":
    main()
