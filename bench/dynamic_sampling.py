"""Dynamic sampling (DYNAMIC_SAMPLING_ROUNDS, recipe/sampling.py) against today's recipe on the smoke task:
held-out accuracy against training seconds and against tokens, the same-score share, time per step.

    python bench/dynamic_sampling.py                          # the table: 5 seeds x 3 variants x 250 steps
    python bench/dynamic_sampling.py --seeds 3407,1 --steps 20 --out /tmp/ds   # a quick check that it works

Three variants per seed, each a `python train_grpo.py --smoke` run of its own, one after another (run it
alone on the machine: the seconds are the point):
  - recipe    today's recipe (DYNAMIC_SAMPLING_ROUNDS 0)
  - dynamic   DYNAMIC_SAMPLING_ROUNDS = --rounds
  - control   dynamic, with the learning rate scaled by the share of groups with signal in that seed's recipe
              run. With the `dapo` loss a same-score group's tokens still count in the normaliser, so the
              recipe's step moves the policy by about that share of a full step; the control gives dynamic
              sampling the same effective step. If dynamic beats recipe and control matches dynamic, the gain
              is more signal per step; if control falls back to recipe, it was the larger step.
Seconds are training seconds: TRL's `step_time` summed over steps (generation, rewards and the update;
the held-out evaluations are left out, they are the same in every variant). Tokens: TRL's `num_tokens`,
prompt and completion tokens of everything generated, refill rounds included.

Writes OUT/dynamic_sampling.json (every run's curve), OUT/dynamic_sampling.md (the table) and
OUT/dynamic_sampling.png (the curves), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recipe.smoke import SMOKE_SETTINGS  # noqa: E402 - after the sys.path line above

VARIANTS = ("recipe", "dynamic", "control")
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}  # Student t, 95 %


def same_score_share(p: float, n: int) -> float:
    """Expected share of groups of n completions that all score alike when each is right with chance p:
    all right (p^n) or all wrong ((1-p)^n). Completions of one problem are not independent on a real model
    (a problem is easy or hard), so this is the least waste to expect, not the most."""
    return p**n + (1 - p) ** n


def interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): a 95 % Student t interval over seeds; (mean, mean, mean) for a single value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = T_975.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def run(seed: int, variant: str, args, learning_rate: float | None) -> dict:
    """One smoke run; its held-out curve against steps, seconds and tokens, and its per-step figures."""
    name = f"{variant}-{seed}"
    command = [sys.executable, str(ROOT / "train_grpo.py"), "--smoke", "--seed", str(seed), "--run-name", name]
    command += ["--max-steps", str(args.steps), "--output-dir", str(args.out / "runs"), "--if-finished", "new"]
    if variant != "recipe":
        command += ["--dynamic-sampling-rounds", str(args.rounds)]
    if learning_rate is not None:
        command += ["--learning-rate", repr(learning_rate)]
    began = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - began
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    said = result.stdout.splitlines()
    run_dir = Path(next(line.split(": ", 1)[1] for line in said if line.startswith("run folder: ")))
    history = json.loads((run_dir / "log_history.json").read_text())
    steps = [h for h in history if "reward" in h and h.get("stage") != "priming"]
    seconds, tokens, elapsed = {0: 0.0}, {0: 0}, 0.0
    for h in steps:
        elapsed += h.get("step_time", 0.0)
        seconds[h["step"]], tokens[h["step"]] = elapsed, h.get("num_tokens", 0)
    points = [(h["step"], h["heldout/accuracy"]) for h in history if "heldout/accuracy" in h]  # step 0, EVAL_STEPS
    curve = [{"step": s, "accuracy": a, "seconds": seconds[s], "tokens": tokens[s]} for s, a in points]
    zero_std = [h["frac_reward_zero_std"] for h in steps if h.get("frac_reward_zero_std") is not None]
    count = "dynamic_sampling/{}".format
    generated_zero = [  # with dynamic sampling the logged share is the trained batch's; this is the generated one
        (h[count("dropped_all_right")] + h[count("dropped_all_wrong")] + h[count("short")]) / h[count("generated")]
        for h in steps
        if count("generated") in h
    ]
    return {
        "seed": seed, "variant": variant, "learning_rate": learning_rate, "wall_s": wall,
        "train_s": elapsed, "step_s": elapsed / max(1, len(steps)), "tokens": tokens[max(tokens)],
        "final_accuracy": curve[-1]["accuracy"], "curve": curve,
        "same_score_trained": statistics.fmean(zero_std) if zero_std else None,
        "same_score_generated": statistics.fmean(generated_zero) if generated_zero else statistics.fmean(zero_std),
        "extra_rounds": sum(h.get("dynamic_sampling/extra_rounds", 0) for h in steps),
    }  # fmt: skip


def seconds_to_reach(curve: list[dict], target: float) -> float | None:
    """Training seconds at the first held-out point at or above `target`; None if never."""
    return next((p["seconds"] for p in curve if p["accuracy"] >= target), None)


def table(results: list[dict]) -> str:
    recipe_final = statistics.fmean(r["final_accuracy"] for r in results if r["variant"] == "recipe")
    seeds = sorted({r["seed"] for r in results})
    lines = [
        f"{len(seeds)} seeds ({', '.join(map(str, seeds))}); mean and 95 % interval (Student t) over seeds.",
        "",
        "| variant | final held-out accuracy | training s | s per step | tokens (M) | same-score share, generated "
        f"| same-score share, trained | s to reach recipe's final ({100 * recipe_final:.1f} %) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue

        def cell(key, scale=1.0, digits=1, rows=rows):
            values = [r[key] * scale for r in rows if r[key] is not None]
            if not values:
                return "-"
            mean, low, high = interval(values)
            return f"{mean:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"

        reached = [seconds_to_reach(r["curve"], recipe_final) for r in rows]
        reach = f"{sum(x is not None for x in reached)}/{len(rows)} seeds"
        if all(x is not None for x in reached):
            mean, low, high = interval(reached)
            reach = f"{mean:.0f} ({low:.0f}-{high:.0f})"
        lines.append(
            f"| {variant} | {cell('final_accuracy', 100)} % | {cell('train_s', digits=0)} | {cell('step_s', digits=2)} "
            f"| {cell('tokens', 1e-6, 2)} | {cell('same_score_generated', 100, 0)} % "
            f"| {cell('same_score_trained', 100, 0)} % | {reach} |"
        )
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    colours = dict(zip(VARIANTS, ("tab:gray", "tab:blue", "tab:orange"), strict=True))
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        for i, r in enumerate(rows):
            for ax, key, scale in ((axes[0], "seconds", 1.0), (axes[1], "tokens", 1e-6)):
                xs = [p[key] * scale for p in r["curve"]]
                ys = [100 * p["accuracy"] for p in r["curve"]]
                ax.plot(xs, ys, color=colours[variant], alpha=0.6, marker=".", label=variant if i == 0 else None)
    axes[0].set_xlabel("training seconds (held-out evaluations excluded)")
    axes[1].set_xlabel("tokens generated and scored (millions)")
    axes[0].set_ylabel("held-out accuracy, greedy (%)")
    axes[0].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    figure.suptitle("Smoke task: dynamic sampling against the recipe, one line per seed")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="3407,1,2,3,4", help="comma-separated")
    parser.add_argument("--steps", type=int, default=SMOKE_SETTINGS["max_steps"], help="GRPO steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="DYNAMIC_SAMPLING_ROUNDS of the dynamic variants")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-dynamic-sampling")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        recipe = run(seed, "recipe", args, None)
        live_share = 1.0 - recipe["same_score_generated"]
        results += [recipe, run(seed, "dynamic", args, None)]
        results.append(run(seed, "control", args, SMOKE_SETTINGS["learning_rate"] * live_share))
        print(f"seed {seed}: " + ", ".join(f"{r['variant']} {100 * r['final_accuracy']:.1f} %" for r in results[-3:]))
    (args.out / "dynamic_sampling.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (args.out / "dynamic_sampling.md").write_text(text + "\n")
    plot(results, args.out / "dynamic_sampling.png")
    print("\n" + text)
    smoke_n = SMOKE_SETTINGS["num_generations"]
    print(f"\nexpected same-score share of groups of 4 (the recipe) and of {smoke_n} (the smoke run), by accuracy p:")
    for p in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9):
        print(f"  p = {p:.2f}: {100 * same_score_share(p, 4):5.1f} %  {100 * same_score_share(p, smoke_n):5.1f} %")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
