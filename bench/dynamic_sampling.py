"""Dynamic sampling (DYNAMIC_SAMPLING_ROUNDS, recipe/sampling.py) against today's recipe on the smoke task:
held-out accuracy against training seconds and against tokens, the same-score share, time per step.

    python bench/dynamic_sampling.py                          # the table: 5 seeds x 5 variants
    python bench/dynamic_sampling.py --seeds 3407,1 --steps 20 --out /tmp/ds   # a quick check that it works

Five variants per seed, each a `python train_grpo.py --smoke` run of its own, one after another (run it
alone on the machine: the seconds are the point):
  - recipe     today's recipe (DYNAMIC_SAMPLING_ROUNDS 0)
  - longer     the recipe with --longer times the steps (2: about dynamic sampling's training seconds), its
               learning-rate schedule stretched to match: what the same time buys without the setting
  - dynamic    DYNAMIC_SAMPLING_ROUNDS = --rounds
  - control    dynamic, with the learning rate scaled by the share of groups with signal in that seed's recipe
               run (issue #31's control). With the `dapo` loss a same-score group's tokens still count in the
               normaliser, so the recipe's loss is about that share of an undiluted one; the control scales
               dynamic sampling's step by the same share.
  - undiluted  the recipe's groups, no extra rounds, with same-score groups left out of the normaliser as
               dynamic sampling leaves them out (bench/undiluted.py). It gets dynamic sampling's undiluted
               step without its extra groups: if it matches dynamic, the gain was the step's size (and costs
               no extra generation); if it stays at the recipe's level, the gain was the extra signal.
               Needed beside the control because Adam divides each update by a running average of the
               gradients' size: a loss smaller by a steady factor moves the weights about as far as an
               undiluted one, while a learning rate smaller by that factor moves them that much less.
Seconds are training seconds: TRL's `step_time` summed over steps (generation, rewards and the update;
the held-out evaluations are left out, they are the same in every variant). Tokens: TRL's `num_tokens`,
prompt and completion tokens of everything generated, refill rounds included.

Each finished run is kept in OUT/done/, so the same command after a kill goes on where it stopped (an
unfinished smoke run resumes from its last checkpoint). Writes OUT/dynamic_sampling.json (every run's
curve), OUT/dynamic_sampling.md (the table) and OUT/dynamic_sampling.png (the curves), and prints the table.
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

VARIANTS = ("recipe", "longer", "dynamic", "control", "undiluted")
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
    script = "bench/undiluted.py" if variant == "undiluted" else "train_grpo.py"
    command = [script, "--smoke", "--seed", str(seed), "--run-name", name]
    steps = args.steps * (args.longer if variant == "longer" else 1)
    command += ["--max-steps", str(steps), "--output-dir", str(args.out / "runs"), "--if-finished", "new"]
    if variant in ("dynamic", "control"):
        command += ["--dynamic-sampling-rounds", str(args.rounds)]
    if learning_rate is not None:
        command += ["--learning-rate", repr(learning_rate)]
    done = args.out / "done" / f"{name}.json"  # a rerun after a kill skips the runs that finished
    kept = json.loads(done.read_text()) if done.exists() else {}
    if kept.get("command") == command:  # the same run, with the same options
        return kept
    began = time.monotonic()
    finished = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - began
    if finished.returncode != 0:
        raise SystemExit(f"{name} failed:\n{finished.stdout[-2000:]}\n{finished.stderr[-2000:]}")
    said = finished.stdout.splitlines()
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
    result = {
        "command": command, "seed": seed, "variant": variant, "learning_rate": learning_rate, "wall_s": wall,
        "train_s": elapsed, "step_s": elapsed / max(1, len(steps)), "tokens": tokens[max(tokens)],
        "final_accuracy": curve[-1]["accuracy"], "curve": curve,
        "same_score_trained": statistics.fmean(zero_std) if zero_std else None,
        "same_score_generated": statistics.fmean(generated_zero) if generated_zero else statistics.fmean(zero_std),
        "extra_rounds": sum(h.get("dynamic_sampling/extra_rounds", 0) for h in steps),
    }  # fmt: skip
    done.parent.mkdir(parents=True, exist_ok=True)
    partial = done.with_suffix(".partial")
    partial.write_text(json.dumps(result, indent=1))
    partial.replace(done)  # whole or absent: a kill while writing leaves no half file to read back
    return result


def seconds_to_reach(curve: list[dict], target: float) -> float | None:
    """Training seconds at the first held-out point at or above `target`; None if never."""
    return next((p["seconds"] for p in curve if p["accuracy"] >= target), None)


def accuracy_at(curve: list[dict], seconds: float) -> float:
    """Held-out accuracy of the last point evaluated within `seconds` of training (step 0's if none)."""
    return [p["accuracy"] for p in curve if p["seconds"] <= seconds or p["step"] == 0][-1]


def paired(results: list[dict], base: str = "recipe", variants: tuple = VARIANTS) -> str:
    """Each variant against the `base` run of the same seed (same priming, same data order), so differences
    between seeds (a lucky draw of prompts, a better primed start) cancel out."""
    baseline = {r["seed"]: r for r in results if r["variant"] == base}
    lines = [
        f"| against {base}, paired by seed | final accuracy (points) | accuracy at {base}'s training "
        f"seconds (points) | training seconds to {base}'s final accuracy, ratio | seeds where it is higher "
        f"at {base}'s seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant in [v for v in variants if v != base]:
        rows = [(r, baseline[r["seed"]]) for r in results if r["variant"] == variant and r["seed"] in baseline]
        if not rows:
            continue
        final = [100 * (r["final_accuracy"] - b["final_accuracy"]) for r, b in rows]
        same_time = [100 * (accuracy_at(r["curve"], b["train_s"]) - b["final_accuracy"]) for r, b in rows]
        ratios = []
        for r, b in rows:
            mine = seconds_to_reach(r["curve"], b["final_accuracy"])
            theirs = seconds_to_reach(b["curve"], b["final_accuracy"])
            # theirs 0: the baseline never rose above step 0, where every variant of the seed starts alike
            ratios.append(None if mine is None else mine / theirs if theirs else 1.0)

        def cell(values, digits=1):
            mean, low, high = interval(values)
            return f"{mean:+.{digits}f} ({low:+.{digits}f} to {high:+.{digits}f})"

        reached = [x for x in ratios if x is not None]
        ratio = f"{statistics.fmean(reached):.2f} ({len(reached)}/{len(rows)} seeds reach it)" if reached else "never"
        if len(reached) == len(rows) and len(rows) > 1:
            mean, low, high = interval(reached)
            ratio = f"{mean:.2f} ({low:.2f}-{high:.2f})"
        higher = sum(x > 0 for x in same_time)
        lines.append(f"| {variant} | {cell(final)} | {cell(same_time)} | {ratio} | {higher}/{len(rows)} |")
    return "\n".join(lines)


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
            if scale == 100:  # a share: the interval cut to what a share can be
                low, high = max(low, 0.0), min(high, 100.0)
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


def mean_curve(rows: list[dict], key: str) -> tuple[list, list, list, list]:
    """Over seeds, at each held-out evaluation (the same steps in every run of a variant): the mean of `key`
    (seconds or tokens so far), and the mean and 95 % interval of the accuracy gained since step 0, in points.
    The gain, not the accuracy: the seeds' primed starts differ (20 to 62 % on the smoke task), and the same
    seed starts every variant from the same primed model, so the gain leaves that spread out."""
    xs, means, lows, highs = [], [], [], []
    for points in zip(*(r["curve"] for r in rows), strict=True):
        starts = [r["curve"][0]["accuracy"] for r in rows]
        mean, low, high = interval([100 * (p["accuracy"] - a) for p, a in zip(points, starts, strict=True)])
        xs.append(statistics.fmean(p[key] for p in points))
        means.append(mean)
        lows.append(low)
        highs.append(high)
    return xs, means, lows, highs


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = dict(zip(VARIANTS, ("tab:gray", "black", "tab:blue", "tab:orange", "tab:green"), strict=True))
    for variant in VARIANTS:
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue
        for ax, key, scale in ((axes[0], "seconds", 1.0), (axes[1], "tokens", 1e-6)):
            xs, means, lows, highs = mean_curve(rows, key)
            xs = [x * scale for x in xs]
            ax.plot(xs, means, color=colours[variant], marker=".", label=variant)
            ax.fill_between(xs, lows, highs, color=colours[variant], alpha=0.12, linewidth=0)
    axes[0].set_xlabel("training seconds (held-out evaluations excluded), mean over seeds")
    axes[1].set_xlabel("tokens generated and scored (millions), mean over seeds")
    axes[0].set_ylabel("held-out accuracy gained since step 0 (points)")
    axes[0].legend(loc="upper left")
    for ax in axes:
        ax.grid(alpha=0.3)
    seeds = len({r["seed"] for r in results})
    figure.suptitle(f"Smoke task, {seeds} seeds: held-out accuracy gained by GRPO, mean and 95 % interval (Student t)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="3407,1,2,3,4", help="comma-separated")
    parser.add_argument("--steps", type=int, default=SMOKE_SETTINGS["max_steps"], help="GRPO steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="DYNAMIC_SAMPLING_ROUNDS of the dynamic variants")
    parser.add_argument("--longer", type=int, default=2, help="the `longer` variant's steps, in --steps")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-dynamic-sampling")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        recipe = run(seed, "recipe", args, None)
        live_share = 1.0 - recipe["same_score_generated"]
        results += [recipe, run(seed, "dynamic", args, None)]
        results.append(run(seed, "control", args, SMOKE_SETTINGS["learning_rate"] * live_share))
        results += [run(seed, "undiluted", args, None), run(seed, "longer", args, None)]
        print(f"seed {seed}: " + ", ".join(f"{r['variant']} {100 * r['final_accuracy']:.1f} %" for r in results[-5:]))
    (args.out / "dynamic_sampling.json").write_text(json.dumps(results, indent=1))
    text = "\n\n".join([table(results), paired(results), paired(results, "longer", ("dynamic",))])
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
