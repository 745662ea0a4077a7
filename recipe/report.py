"""The comparison's outputs: comparison.json, comparison.md, the table printed at the end, and the plots
(comparison.png, training_curves.png). Everything is computed from the report dict alone."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from rewards import REWARD_FUNCS

from .runs import write_json

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
    write_json(run_dir / "comparison.json", report)
    (run_dir / "comparison.md").write_text(comparison_markdown(report))
    plot_comparison(report, run_dir / "comparison.png")
    plot_training_curves(history, run_dir / "training_curves.png")


def _rows(report: dict) -> list[tuple[str, object]]:
    rows = list(ROWS)
    first = report[report["labels"][0]]
    if "undecided_rate" in first:  # answers the verifier could not decide: apart, neither right nor wrong
        rows.insert(1, ("undecided by the verifier (not counted wrong)", "undecided_rate"))
    if "sampled" in first:
        k = first["sampled"]["k"]
        rows[1:1] = [(f"pass@1 ({k} samples, T={report['settings']['temperature']})", ("sampled", "pass@1"))]
        rows[2:2] = [(f"pass@{k}", ("sampled", f"pass@{k}"))]
    return rows


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
    return "\n".join(lines)


def comparison_markdown(report: dict, examples: int = 3) -> str:
    labels = report["labels"]
    n = report[labels[0]]["problems"]
    adapters = ", ".join(f"{label}: `{path}`" for label, path in report["settings"]["adapters"].items() if path)
    parts = [
        f"# {' vs '.join(labels).capitalize()} on {n} held-out problems",
        "",
        "Same prompts, greedy decoding, the same verifier (`rewards.is_correct`) for every model. "
        f"Base is the model with its adapter switched off. Adapters: {adapters}.",
        "",
        comparison_table(report),
        "",
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


def _short(answer: str | None, width: int = 60) -> str:
    if answer is None:
        return "(no answer block)"
    answer = " ".join(answer.split()).replace("|", "\\|").replace("`", "'")
    return f"`{answer[:width]}{'...' if len(answer) > width else ''}`"


def print_comparison(report: dict, run_dir: Path) -> None:
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
    fig, ax = plt.subplots(figsize=(2.2 * len(metrics) + 2, 4))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        values = [100 * _figure(report[label], key) for _, key in metrics]
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(metrics))]
        ax.bar(xs, values, width=width, label=label)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v + 1, f"{v:.0f}%", ha="center", fontsize=8)
    ax.set_xticks(range(len(metrics)), [m[0] for m in metrics])
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of held-out problems")
    ax.set_title(f"{' / '.join(labels)}, {report[labels[0]]['problems']} held-out problems")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(history: list[dict], path: Path) -> None:
    """Total reward, each reward, completion length, and KL / entropy when logged, against the GRPO step."""
    plt = _pyplot()
    rows = [h for h in history if "reward" in h]
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
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
