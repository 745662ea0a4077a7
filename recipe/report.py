"""The comparison's outputs: comparison.json, comparison.md, the table printed at the end, and the plots
(comparison.png, training_curves.png). Everything is computed from the report dict (and, for the curves
and the warning, the training log) alone.

Each share comes with a 95 % interval and each change with a paired test (recipe/stats.py), and the
report says in words which differences can be told from noise at this number of problems.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

from rewards import REWARD_FUNCS

from .runs import atomic_path, write_json, write_text
from .stats import INTERVAL_KIND, PAIRED_TEST, distinguishable, mcnemar, mean_interval, wilson_interval

ROWS = [
    ("accuracy (greedy)", "accuracy"),
    ("exact format rate", "format_rate"),
    ("total reward", "total_reward"),
    *[(f"reward: {f.__name__}", ("reward_means", f.__name__)) for f in REWARD_FUNCS],
    ("mean completion length (tokens)", "mean_length"),
    ("cut off at the length limit", "truncated_rate"),
]
PERCENT = {"accuracy", "format_rate", "truncated_rate", "undecided_rate"}  # and every pass@k
CHANGE_NAMES = {("base", "primed"): "priming", ("primed", "trained"): "GRPO", ("base", "trained"): "change"}


def write_report(report: dict, history: list[dict], run_dir: Path) -> None:
    """Adds `uncertainty` and `warnings` to `report` (so print_comparison shows them too), then writes it all."""
    report["uncertainty"] = uncertainty(report)
    report["warnings"] = training_warnings(report, history)
    totals = dynamic_sampling_totals(history)
    if totals:
        report["dynamic_sampling"] = totals
    write_json(run_dir / "comparison.json", report)
    write_text(run_dir / "comparison.md", comparison_markdown(report))
    plot_comparison(report, run_dir / "comparison.png")
    plot_training_curves(history, run_dir / "training_curves.png")


def uncertainty(report: dict) -> dict:
    """95 % intervals for each model's shares, and a paired test for each change (recipe/stats.py)."""
    labels = report["labels"]
    result = {"interval": INTERVAL_KIND, "paired_test": PAIRED_TEST, "models": {}, "changes": []}
    for label in labels:
        summary, records = report[label], report[label]["records"]
        n = len(records)
        shares = {
            "accuracy": wilson_interval(sum(r["correct"] is True for r in records), n),  # undecided: not right
            "format_rate": wilson_interval(sum(r["format_ok"] for r in records), n),
        }
        if "sampled" in summary:  # pass@1 averages k samples per problem; pass@k is right-or-not per problem
            k, right = summary["sampled"]["k"], summary["sampled"]["correct_per_problem"]
            shares["pass@1"] = mean_interval([c / k for c in right])
            shares[f"pass@{k}"] = wilson_interval(sum(c > 0 for c in right), n)
        result["models"][label] = {key: list(bounds) for key, bounds in shares.items()}
    for before, after in _changes(labels):
        a, b = report[before]["records"], report[after]["records"]
        if [r["problem_id"] for r in a] != [r["problem_id"] for r in b]:
            raise ValueError(f"{before} and {after} were not scored on the same problems")
        test = mcnemar([r["correct"] is True for r in a], [r["correct"] is True for r in b])
        overall = len(labels) > 2 and (before, after) == (labels[0], labels[-1])
        name = "overall" if overall else CHANGE_NAMES.get((before, after), f"{before} -> {after}")
        test["distinguishable"] = distinguishable(test["p_value"])
        result["changes"].append({"name": name, "before": before, "after": after, **test})
    return result


def _changes(labels: list[str]) -> list[tuple[str, str]]:
    """Each step in order, then first to last when there are more than two models."""
    steps = list(pairwise(labels))
    return steps + ([(labels[0], labels[-1])] if len(labels) > 2 else [])


def _p(value: float) -> str:
    return f"p = {value:.1e}" if value < 0.001 else f"p = {value:.3f}".rstrip("0").rstrip(".")


def noise_lines(report: dict) -> list[str]:
    """In words, for each change: its size, the problems gained and lost, and whether it can be told from noise."""
    tests = uncertainty(report)
    lines = []
    for t in tests["changes"]:
        verdict = (
            "a real difference at the 5 % level"
            if t["distinguishable"]
            else f"cannot be told from noise with {t['problems']} problems"
        )
        lines.append(
            f"{t['name']} ({t['before']} -> {t['after']}): {100 * t['difference']:+.1f} points, "
            f"{t['gained']} problems gained and {t['lost']} lost, {_p(t['p_value'])}: {verdict}"
        )
    return lines


def training_warnings(report: dict, history: list[dict]) -> list[str]:
    """A warning when GRPO's training reward clearly rose but held-out accuracy did not."""
    rewards = [h["reward"] for h in history if h.get("reward") is not None and h.get("stage") != "priming"]
    labels = report["labels"]
    if len(rewards) < 4 or "trained" not in labels:
        return []
    window = max(2, len(rewards) // 10)
    first, last = rewards[:window], rewards[-window:]

    def mean(values):
        return sum(values) / len(values)

    def variance(values):
        return sum((v - mean(values)) ** 2 for v in values) / (len(values) - 1)

    rise = mean(last) - mean(first)
    if rise <= 2 * math.sqrt((variance(first) + variance(last)) / window):  # within the steps' own noise
        return []
    before = "primed" if "primed" in labels else labels[0]
    accuracy_before, accuracy_after = report[before]["accuracy"], report["trained"]["accuracy"]
    if accuracy_after > accuracy_before:
        return []
    message = (
        f"the training reward rose from {mean(first):.2f} (mean of the first {window} steps) to {mean(last):.2f} "
        f"(last {window}), but held-out accuracy did not: {before} {100 * accuracy_before:.1f} % -> trained "
        f"{100 * accuracy_after:.1f} %"
    )
    curve = [(h["step"], h["heldout/accuracy"]) for h in history if "heldout/accuracy" in h]
    if len(curve) > 1:
        message += (
            f" (during training: {100 * curve[0][1]:.1f} % at step {curve[0][0]}, "
            f"{100 * curve[-1][1]:.1f} % at step {curve[-1][0]})"
        )
    return [
        message + ". The policy may have learned the format, or to game a reward, rather than to solve more "
        "problems: read some of completions.jsonl."
    ]


def dynamic_sampling_totals(history: list[dict]) -> dict:
    """DYNAMIC_SAMPLING_ROUNDS > 0 (recipe/sampling.py): its per-step counts summed over the run's GRPO steps;
    empty for a run without it."""
    prefix = "dynamic_sampling/"
    steps = [h for h in history if prefix + "generated" in h]
    if not steps:
        return {}
    names = [k[len(prefix) :] for k in steps[0] if k.startswith(prefix)]
    totals = {name: int(round(sum(h[prefix + name] for h in steps))) for name in names}
    return dict(totals, steps=len(steps), steps_at_bound=sum(h[prefix + "short"] > 0 for h in steps))


def dynamic_sampling_line(totals: dict) -> str:
    return (
        f"dynamic sampling: {totals['kept']} of {totals['generated']} generated groups trained on; dropped "
        f"{totals['dropped_all_right']} all right and {totals['dropped_all_wrong']} all wrong; "
        f"{totals['extra_rounds']} extra rounds in {totals['steps']} steps; {totals['steps_at_bound']} steps reached "
        f"the bound ({totals['short']} groups without signal trained on)"
    )


def _rows(report: dict) -> list[tuple[str, object]]:
    rows = list(ROWS)
    first = report[report["labels"][0]]
    if "undecided_rate" in first:  # answers the verifier could not decide: apart, neither right nor wrong
        rows.insert(1, ("undecided by the verifier (not counted wrong)", "undecided_rate"))
    if "sampled" in first:
        k = first["sampled"]["k"]
        rows[1:1] = [(f"pass@1 ({k} samples, T={sampling_temperature(report)})", ("sampled", "pass@1"))]
        rows[2:2] = [(f"pass@{k}", ("sampled", f"pass@{k}"))]
    return rows


def sampling_temperature(report: dict):
    """The temperature the samples were drawn at: in the recorded decoding (recipe/evaluate.py), or where a
    report written before the decoding was recorded kept it."""
    decoding = report["settings"].get("decoding")
    if isinstance(decoding, dict) and "sampled" in decoding:
        return decoding["sampled"]["temperature"]
    return report["settings"].get("temperature")


def _figure(summary: dict, key) -> float:
    return summary[key[0]][key[1]] if isinstance(key, tuple) else summary[key]


def _is_percent(key) -> bool:
    name = key[1] if isinstance(key, tuple) else key
    return name in PERCENT or name.startswith("pass@")


def comparison_table(report: dict) -> str:
    """Markdown table: one column per model, then each change (priming's, GRPO's)."""
    labels = report["labels"]
    steps = list(pairwise(labels))
    head = ["", *labels, *(CHANGE_NAMES.get(step, f"{step[0]} -> {step[1]}") for step in steps)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for title, key in _rows(report):
        values = [_figure(report[label], key) for label in labels]
        if _is_percent(key):
            cells = [f"{100 * v:.1f} %" for v in values] + [f"{100 * (b - a):+.1f} pt" for a, b in pairwise(values)]
        else:
            cells = [f"{v:.2f}" for v in values] + [f"{b - a:+.2f}" for a, b in pairwise(values)]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
        if key == "accuracy":  # its uncertainty right below it: each model's interval, each change's p-value
            tests = uncertainty(report)
            bounds = [tests["models"][label]["accuracy"] for label in labels]
            cells = [f"{100 * low:.1f}-{100 * high:.1f} %" for low, high in bounds]
            cells += [_p(t["p_value"]) for t in tests["changes"][: len(steps)]]
            lines.append("| 95 % interval (Wilson); change: McNemar | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def decoding_words(report: dict) -> str:
    """The decoding the comparison used, as comparison.json records it (recipe/evaluate.py: decoding)."""
    used = report["settings"].get("decoding")
    if not isinstance(used, dict):  # a report written before the decoding was recorded
        return "greedy decoding"
    words = "greedy decoding (repetition penalty {repetition_penalty})".format(**used["greedy"])
    if "sampled" in used:
        words += ", samples at temperature {temperature}, top_p {top_p}, min_p {min_p}, top_k {top_k} (off)".format(
            **used["sampled"]
        )
    return words + "; nothing from the model's generation_config.json"


def comparison_markdown(report: dict, examples: int = 3) -> str:
    labels = report["labels"]
    n = report[labels[0]]["problems"]
    adapters = ", ".join(f"{label}: `{path}`" for label, path in report["settings"]["adapters"].items() if path)
    parts = [
        f"# {' vs '.join(labels).capitalize()} on {n} held-out problems",
        "",
        f"Same prompts, {decoding_words(report)}, the same verifier (`rewards.is_correct`) for every model. "
        f"Base is the model with its adapter switched off. Adapters: {adapters}.",
        "",
        comparison_table(report),
        "",
        "## Can the differences be told from noise?",
        "",
        f"Each accuracy comes with a 95 % interval (the {INTERVAL_KIND}). Each change is tested on the same "
        f"{n} problems with an {PAIRED_TEST}: problems both models get right, or both wrong, say nothing "
        "about the difference, and with no real difference each of the others is a coin toss.",
        "",
        *[f"- {line}." for line in noise_lines(report)],
        "",
        f"With {n} problems, an accuracy near 50 % is known to within about +-{_half_width(n):.0f} points.",
        "",
        *[f"> **Warning:** {w}\n" for w in report.get("warnings", [])],
        *([dynamic_sampling_line(report["dynamic_sampling"]) + ".", ""] if "dynamic_sampling" in report else []),
    ]
    first, last = report[labels[0]]["records"], report[labels[-1]]["records"]
    pairs = list(zip(first, last, strict=True))
    differ = [p for p in pairs if p[0]["correct"] != p[1]["correct"]] or [
        p for p in pairs if p[0]["format_ok"] != p[1]["format_ok"]
    ]
    if differ:
        parts += [f"## Problems where {labels[0]} and {labels[-1]} differ", ""]
    for before, after in differ[:examples]:
        parts += [
            f"### Problem {before['problem_id']} (reference: `{before['reference']}`)",
            "",
            f"| | {labels[0]} | {labels[-1]} |",
            "|---|---|---|",
            f"| answer | {_short(before['extracted'])} | {_short(after['extracted'])} |",
            f"| correct | {before['correct']} | {after['correct']} |",
            f"| format ok | {before['format_ok']} | {after['format_ok']} |",
            "",
            "<details><summary>completions</summary>",
            "",
            f"**{labels[0]}**",
            "",
            "```",
            before["completion"][:1500],
            "```",
            "",
            f"**{labels[-1]}**",
            "",
            "```",
            after["completion"][:1500],
            "```",
            "</details>",
            "",
        ]
    return "\n".join(parts)


def _half_width(n: int) -> float:
    low, high = wilson_interval(n // 2, n)
    return 100 * (high - low) / 2


def _short(answer: str | None, width: int = 60) -> str:
    if answer is None:
        return "(no answer block)"
    answer = " ".join(answer.split()).replace("|", "\\|").replace("`", "'")
    return f"`{answer[:width]}{'...' if len(answer) > width else ''}`"


def print_comparison(report: dict, run_dir: Path) -> None:
    labels = report["labels"]
    print(f"\n== comparison on {report[labels[0]]['problems']} held-out problems: {', '.join(labels)}")
    for line in noise_lines(report):
        print(line)
    for warning in report.get("warnings", []):
        print(f"WARNING: {warning}")
    if "dynamic_sampling" in report:
        print(dynamic_sampling_line(report["dynamic_sampling"]))
    print()
    print(comparison_table(report))
    print(f"\nrun folder: {run_dir.resolve()}")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_comparison(report: dict, path: Path) -> None:
    """Grouped bars: accuracy and exact-format rate (and pass@1 when sampled) for each model."""
    plt = _pyplot()
    labels = report["labels"]
    metrics = [("accuracy", "accuracy"), ("exact format rate", "format_rate")]
    if "sampled" in report[labels[0]]:
        metrics.insert(1, ("pass@1 (sampled)", ("sampled", "pass@1")))
    intervals = uncertainty(report)["models"]
    fig, ax = plt.subplots(figsize=(2.2 * len(metrics) + 2, 4))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        values = [100 * _figure(report[label], key) for _, key in metrics]
        bounds = [intervals[label][key[1] if isinstance(key, tuple) else key] for _, key in metrics]
        below = [max(0.0, v - 100 * low) for v, (low, _) in zip(values, bounds, strict=True)]
        above = [max(0.0, 100 * high - v) for v, (_, high) in zip(values, bounds, strict=True)]
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(metrics))]
        ax.bar(xs, values, width=width, label=label, yerr=[below, above], capsize=3, error_kw={"lw": 1})
        for x, v, high in zip(xs, values, above, strict=True):
            ax.text(x + width * 0.05, v + high + 1, f"{v:.0f}%", ha="center", fontsize=8)
    ax.set_xticks(range(len(metrics)), [m[0] for m in metrics])
    ax.set_ylim(0, 118)
    ax.set_ylabel("% of held-out problems")
    ax.set_title(
        f"{' / '.join(labels)}, {report[labels[0]]['problems']} held-out problems\n"
        "error bars: 95 % Wilson intervals",
        fontsize=10,
    )
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:  # written whole or not at all
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def plot_training_curves(history: list[dict], path: Path) -> None:
    """Total reward with held-out accuracy beside it on the same step axis, each reward, completion length,
    and KL / entropy when logged, against the GRPO step."""
    plt = _pyplot()
    rows = [h for h in history if "reward" in h]
    heldout = [h for h in history if "heldout/accuracy" in h]
    panels = [
        ("total reward", ["reward"]),
        ("rewards", [f"rewards/{f.__name__}/mean" for f in REWARD_FUNCS]),
        ("completion length (tokens)", ["completions/mean_length"]),
        ("", ["kl", "entropy"]),  # titled by what was logged: KL only when BETA > 0
    ]
    panels = [(title, [k for k in keys if any(k in r for r in rows)]) for title, keys in panels]
    panels = [(title or " and ".join(keys), keys) for title, keys in panels]
    panels = [(title, keys) for title, keys in panels if keys] or [("no GRPO steps logged", [])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            points = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
            if points:
                steps, values = zip(*points, strict=True)
                label = key.replace("rewards/", "").replace("/mean", "")
                window = len(values) // 20  # a step holds few prompts: show the trend over the noise
                if window < 2:
                    ax.plot(steps, values, label=label, marker=".", lw=1)
                    continue
                line = ax.plot(steps, values, lw=0.6, alpha=0.3)[0]
                smooth = [
                    sum(values[max(0, i - window + 1) : i + 1]) / (i + 1 - max(0, i - window + 1))
                    for i in range(len(values))
                ]
                ax.plot(steps, smooth, color=line.get_color(), lw=1.8, label=f"{label} (mean of {window} steps)")
        ax.set_title(title)
        ax.set_xlabel("step")
        if title == "total reward" and heldout:
            _draw_heldout(ax, heldout)
        elif ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # written whole or not at all
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def _draw_heldout(ax, heldout: list[dict]) -> None:
    """Held-out accuracy (with its 95 % interval) on a second axis of the reward panel: one step axis, so a
    reward that rises while accuracy stays flat shows at a glance."""
    right = ax.twinx()
    steps = [h["step"] for h in heldout]
    values = [100 * h["heldout/accuracy"] for h in heldout]
    below = [v - 100 * h.get("heldout/accuracy_low", v / 100) for v, h in zip(values, heldout, strict=True)]
    above = [100 * h.get("heldout/accuracy_high", v / 100) - v for v, h in zip(values, heldout, strict=True)]
    n = heldout[-1].get("heldout/problems", "?")
    right.errorbar(
        steps, values, yerr=[below, above], color="black", marker="o", ms=4, lw=1.2, capsize=2,
        label=f"held-out accuracy, {n} problems (right axis)",
    )  # fmt: skip
    right.set_ylim(0, 105)
    right.set_ylabel("held-out accuracy (%)")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=7, loc="upper left", framealpha=0.8)
