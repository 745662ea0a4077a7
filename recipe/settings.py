"""Settings: the script's constants, overridden from the command line as --lower-case-name VALUE.

The defaults are handed in by train_grpo.py (its settings block); nothing here reads the script.
"""

from __future__ import annotations

import difflib

from .errors import SetupError


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
            valid = " ".join(flag(n) for n in defaults)
            raise SetupError(f"unknown setting {flag(name)}.{hint}\nValid settings: {valid}")
        if not value and "=" not in arg:
            next_is_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            if next_is_value:
                value, i = argv[i + 1], i + 1
            elif isinstance(defaults[name], bool):
                value = "true"
            else:
                raise SetupError(f"{flag(name)} needs a value ({type(defaults[name]).__name__})")
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
        raise SetupError(f"{flag(name)} takes true or false, not {value!r}")
    try:
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise SetupError(f"{flag(name)} takes {kind}, not {value!r}") from None
    return value


def settings_help(usage: str, defaults: dict) -> str:
    rows = [f"  {flag(name):30} {value!r}" for name, value in defaults.items()]
    return usage + "\n\nSettings and their defaults:\n" + "\n".join(rows)


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
    "loss_type": ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"),  # TRL 1.15's
    "scale_rewards": ("group", "batch", "none"),
}
POSITIVE = ("max_steps", "max_seq_length", "lora_rank", "eval_max_new_tokens", "save_steps", "eval_batch_size")
NOT_NEGATIVE = (
    "learning_rate", "priming_learning_rate", "weight_decay", "beta", "warmup_fraction", "eval_size",
    "eval_samples", "epsilon", "epsilon_high", "max_completion_length", "max_prompt_length",
)  # fmt: skip
SHARES = ("gpu_memory_utilization", "colocate_vllm_memory")  # strictly between 0 and 1


def check_settings(s: dict, reward_names: list[str]) -> None:
    """Settings that cannot work together, all found at once before anything is loaded."""
    problems = []
    if s["per_device_batch"] % s["num_generations"] != 0:
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
    problems += [f"{flag(n)} must be between 0 and 1 (got {s[n]})" for n in SHARES if not 0 < s[n] < 1]
    if not 0 < s["prompt_length_quantile"] <= 1:
        problems.append(f"--prompt-length-quantile must be in (0, 1] (got {s['prompt_length_quantile']})")
    for name, allowed in CHOICES.items():
        if s[name] not in allowed:
            problems.append(f"{flag(name)} must be {', '.join(allowed[:-1])} or {allowed[-1]} (got {s[name]!r})")
    if s["epsilon_high"] and s["epsilon_high"] < s["epsilon"]:
        problems.append(f"--epsilon-high ({s['epsilon_high']}) must be 0 (same as --epsilon) or at least --epsilon")
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
