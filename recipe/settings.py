"""Settings: the script's constants, overridden from the command line as --lower-case-name VALUE.

The defaults are handed in by train_grpo.py (its settings block). --help reads the script's source for
the one thing the values cannot tell: each constant's trailing comment (its meaning) and the block's
"# -- group" headers, so that text lives in one place, next to the value it explains.
"""

from __future__ import annotations

import difflib
import io
import tokenize
from pathlib import Path

from .errors import SetupError

HELP_HINT = "`python train_grpo.py --help` lists every setting with its meaning, type and allowed values"


def flag(name: str) -> str:
    """The command-line spelling of a setting: max_steps -> --max-steps."""
    return "--" + name.replace("_", "-")


def parse_settings(argv: list[str], defaults: dict, smoke_defaults: dict) -> dict:
    """Defaults, then --smoke's defaults, then each --name VALUE, type-checked against the default.

    A boolean setting given alone (--eval-only) means true. Unknown names fail with the valid ones.
    The names given on the command line are kept under the key "explicit".
    """
    overrides: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise SetupError(f"unexpected argument {arg!r}: settings are given as --name VALUE (see --help)")
        name, _, value = arg[2:].partition("=")
        name = name.replace("-", "_").lower()
        if name not in defaults:
            close = difflib.get_close_matches(name, defaults, n=3)
            hint = f" Did you mean {', '.join(flag(c) for c in close)}?" if close else ""
            raise SetupError(f"unknown setting {flag(name)}.{hint}\n{HELP_HINT}.")
        if not value and "=" not in arg:
            next_is_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            if next_is_value:
                value, i = argv[i + 1], i + 1
            elif isinstance(defaults[name], bool):
                value = "true"
            else:
                raise SetupError(f"{flag(name)} needs a value: {value_kind(name, defaults[name])}.\n{HELP_HINT}.")
        overrides[name] = value
        i += 1

    settings = dict(defaults)
    smoke = coerce(defaults, "smoke", overrides["smoke"]) if "smoke" in overrides else defaults.get("smoke", False)
    if smoke:
        settings.update(smoke_defaults)
    for name, value in overrides.items():
        settings[name] = coerce(defaults, name, value)
        print(f"setting {name} = {settings[name]!r}")
    settings["explicit"] = sorted(overrides)
    return settings


def coerce(defaults: dict, name: str, value: str):
    """`value` as the type of the setting's default (bool, int, float or str)."""
    default = defaults[name]
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    else:
        try:
            if isinstance(default, int):
                return int(value)
            if isinstance(default, float):
                return float(value)
        except ValueError:
            pass
        else:
            return value
    raise SetupError(f"{flag(name)} takes {value_kind(name, default)}, not {value!r}.\n{HELP_HINT}.")


TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def value_kind(name: str, default) -> str:
    """What a setting takes, in words: its type, and the values or range check_settings allows."""
    if name in CHOICES:
        return "one of " + ", ".join(CHOICES[name])
    kind = TYPE_NAMES[type(default)]
    if name in POSITIVE:
        return kind + " above 0"
    if name in NOT_NEGATIVE:
        return kind + ", 0 or more"
    if name in SHARES:
        return kind + " between 0 and 1" + (", or 0" if name in SIZED_WHEN_ZERO else "")
    if name == "prompt_length_quantile":
        return kind + " above 0, at most 1"
    return kind


def setting_notes(script: Path) -> dict[str, tuple[str, str]]:
    """{setting: (group, meaning)} from the script's settings block: the "# -- group" header above each
    constant and the comment that ends its line (tokenize, so a "#" inside a string is not a comment)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(Path(script).read_text(encoding="utf-8")).readline))
    notes, group, constant = {}, "", None
    for token in tokens:
        if token.type == tokenize.COMMENT and token.start[1] == 0 and token.string.startswith("# --"):
            group = token.string[4:].strip()
        elif token.type == tokenize.NAME and token.start[1] == 0 and token.string.isupper():
            constant = token.string
            notes[constant.lower()] = (group, "")
        elif token.type == tokenize.COMMENT and constant and token.start[1] > 0:
            notes[constant.lower()] = (group, token.string.lstrip("# ").strip())
        elif token.type == tokenize.NEWLINE:
            constant = None
    return notes


def settings_help(usage: str, defaults: dict, script: Path) -> str:
    """The usage text, then every setting under its group: flag, what it takes, default, meaning."""
    notes = setting_notes(script)
    lines = [
        usage,
        "",
        "Settings, as --name VALUE or --name=VALUE (a true-or-false setting given alone means true). The",
        "defaults are the recipe's; --smoke replaces some of them (SMOKE_SETTINGS in recipe/smoke.py).",
    ]
    group = None
    for name, default in defaults.items():
        name_group, meaning = notes.get(name, ("", ""))
        if name_group != group:
            group = name_group
            lines += ["", f"{group}:"]
        lines.append(f"  {flag(name)}  {value_kind(name, default)}; default {default!r}")
        if meaning:
            lines.append(f"      {meaning}")
    return "\n".join(lines)


def reward_weights(text: str, reward_names: list[str]) -> list[float] | None:
    """--reward-weights "1,1,2,1" -> [1.0, 1.0, 2.0, 1.0]; empty -> None (equal weights)."""
    text = text.strip()
    if not text:
        return None
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise SetupError(f"--reward-weights takes comma-separated numbers, not {text!r}") from None
    if len(weights) != len(reward_names):
        raise SetupError(
            f"--reward-weights needs {len(reward_names)} numbers, one for each of: {', '.join(reward_names)}"
        )
    return weights


CHOICES = {
    "backend": ("auto", "unsloth", "transformers"),
    "if_finished": ("refuse", "new"),
    "vllm_mode": ("colocate", "server"),
    "export": ("adapter", "merged", "gguf"),
    "gguf_quantization": ("q4_k_m", "q5_k_m", "q6_k", "q8_0", "f16", "bf16", "f32"),  # recipe/export.py
    "loss_type": ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"),  # TRL 1.15's
    "scale_rewards": ("group", "batch", "none"),
}
POSITIVE = (
    "max_steps", "max_seq_length", "lora_rank", "lora_alpha", "eval_max_new_tokens", "save_steps", "eval_batch_size",
    "eval_during_size", "per_device_batch", "gradient_accumulation", "temperature", "process_timeout_minutes",
)  # fmt: skip
NOT_NEGATIVE = (
    "learning_rate", "priming_learning_rate", "weight_decay", "beta", "warmup_fraction", "eval_size",
    "eval_samples", "epsilon", "epsilon_high", "max_completion_length", "max_prompt_length",
    "eval_steps", "log_completions_steps", "max_train_rows", "priming_max_rows", "priming_epochs", "save_total_limit",
    "dynamic_sampling_rounds",
)  # fmt: skip
SHARES = ("gpu_memory_utilization", "colocate_vllm_memory")  # strictly between 0 and 1
# Every other number: num_generations (at least 2), prompt_length_quantile and top_p (0 < x <= 1), min_p
# (0 <= x < 1: 0 is off), seed (any). tests/test_settings.py lists each numeric setting's range.
SIZED_WHEN_ZERO = ("colocate_vllm_memory",)  # 0: sized from the model and the GPU (recipe/generation.py)


def check_settings(s: dict, reward_names: list[str]) -> None:
    """Settings that cannot work together, all found at once before anything is loaded."""
    problems = []
    if s["num_generations"] >= 2 and s["per_device_batch"] % s["num_generations"] != 0:
        problems.append(
            f"--per-device-batch ({s['per_device_batch']}) must be a multiple of --num-generations "
            f"({s['num_generations']}): each step ranks whole groups of completions"
        )
    if s["num_generations"] < 2:
        problems.append("--num-generations must be at least 2: GRPO compares completions within a group")
    if s["max_prompt_length"] and s["max_prompt_length"] >= s["max_seq_length"]:
        problems.append(
            f"--max-prompt-length ({s['max_prompt_length']}) must be below --max-seq-length ({s['max_seq_length']}), "
            "which holds the prompt and the completion"
        )
    problems += [f"{flag(n)} must not be negative (got {s[n]})" for n in NOT_NEGATIVE if s[n] < 0]
    problems += [f"{flag(n)} must be positive (got {s[n]})" for n in POSITIVE if s[n] <= 0]
    problems += [
        f"{flag(n)} must be between 0 and 1 (got {s[n]})"
        for n in SHARES
        if not 0 < s[n] < 1 and not (n in SIZED_WHEN_ZERO and s[n] == 0)
    ]
    problems += [
        f"{flag(n)} must be in (0, 1] (got {s[n]})" for n in ("prompt_length_quantile", "top_p") if not 0 < s[n] <= 1
    ]
    if not 0 <= s["min_p"] < 1:
        problems.append(f"--min-p must be in [0, 1): 0 turns it off (got {s['min_p']})")
    for name, allowed in CHOICES.items():
        if s[name] not in allowed:
            problems.append(f"{flag(name)} must be {', '.join(allowed[:-1])} or {allowed[-1]} (got {s[name]!r})")
    if s["epsilon_high"] and s["epsilon_high"] < s["epsilon"]:
        problems.append(f"--epsilon-high ({s['epsilon_high']}) must be 0 (same as --epsilon) or at least --epsilon")
    if s["loss_type"] == "cispo" and 0 < s["epsilon_high"] <= 1:
        problems.append(
            f"--loss-type cispo caps the importance weight itself at --epsilon-high, not at 1 + it, so "
            f"{s['epsilon_high']} would cap every token's weight at or below 1 and shrink each update: leave it 0 "
            "(5.0, the ScaleRL paper's value) or pass 4 to 8"
        )
    if s["load_in_4bit"] and s["fast_inference"] and s["vllm_mode"] == "server":
        problems.append(
            "--vllm-mode server cannot serve a 4-bit model: TRL sends the training weights to the server at every "
            "step, and 4-bit ones are packed bytes a 16-bit vLLM server cannot load. Train in 16 bits "
            "(--load-in-4bit false), or generate without vLLM (--fast-inference false)"
        )
    if s["eval_only"] and s["export_only"]:
        problems.append("--eval-only and --export-only are separate jobs: run one, then the other")
    for job in ("eval_only", "export_only"):
        if s[job] and not s["adapter"]:
            problems.append(f"{flag(job)} needs --adapter PATH: the adapter folder of an earlier run")
    if s["export_only"] and s["export"] == "adapter":
        problems.append("--export-only needs --export merged or --export gguf (the adapter is already saved)")
    if not s["run_name"] or "/" in s["run_name"] or s["run_name"] in (".", ".."):
        problems.append(f"--run-name must be a plain folder name (got {s['run_name']!r})")
    try:
        reward_weights(s["reward_weights"], reward_names)
    except SetupError as e:
        problems.append(str(e))
    if problems:
        raise SetupError("settings that cannot work:\n  - " + "\n  - ".join(problems))
