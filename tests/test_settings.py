"""Settings: the script's defaults, command-line overrides, and the checks of settings that cannot work."""

import pytest

import train_grpo
from recipe.errors import SetupError
from recipe.settings import check_settings, parse_settings, reward_weights
from recipe.smoke import SMOKE_SETTINGS
from rewards import REWARD_FUNCS

DEFAULTS = train_grpo.DEFAULTS
NAMES = [f.__name__ for f in REWARD_FUNCS]


def parse(argv):
    return parse_settings(argv, DEFAULTS, SMOKE_SETTINGS)


def test_overrides_are_typed_and_printed(capsys):
    s = parse(["--max-steps", "10", "--learning-rate=1e-5", "--load-in-4bit", "true", "--run-name", "x"])
    assert (s["max_steps"], s["learning_rate"], s["load_in_4bit"], s["run_name"]) == (10, 1e-5, True, "x")
    assert isinstance(s["learning_rate"], float) and isinstance(s["max_steps"], int)
    out = capsys.readouterr().out
    assert "setting max_steps = 10" in out and "setting learning_rate = 1e-05" in out


def test_boolean_flag_alone_means_true():
    s = parse(["--eval-only", "--adapter", "a/b"])
    assert s["eval_only"] is True and s["adapter"] == "a/b"


@pytest.mark.parametrize(
    "word, value", [(w, True) for w in ("1", "true", "Yes", "on")] + [(w, False) for w in ("0", "false", "NO", "off")]
)
def test_boolean_words_mean_what_they_say(word, value):
    assert parse(["--load-in-4bit", word])["load_in_4bit"] is value
    assert parse(["--priming", word])["priming"] is value


def test_float_setting_accepts_an_integer():
    assert parse(["--learning-rate", "3"])["learning_rate"] == 3.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-step", "10"], "unknown setting --max-step. Did you mean --max-steps"),  # typo, with a suggestion
        (["--colour", "red"], "unknown setting --colour."),  # unknown, nothing close
        (["--max-steps", "ten"], "--max-steps takes an integer above 0, not 'ten'"),  # wrong type, and the range
        (["--learning-rate", "fast"], "--learning-rate takes a number, 0 or more"),  # wrong type
        (["--load-in-4bit", "maybe"], "--load-in-4bit takes true or false"),  # not a boolean
        (["--max-steps"], "--max-steps needs a value: an integer above 0"),  # missing value
        (["max_steps=3"], "unexpected argument"),  # not a --flag
    ],
)
def test_bad_overrides_fail_with_a_clear_message(argv, message):
    with pytest.raises(SetupError) as error:
        parse(argv)
    assert message in str(error.value)
    if argv[0].startswith("--"):  # an unknown name and a wrong type both say where the full list is
        assert "`python train_grpo.py --help` lists every setting with its meaning, type" in str(error.value)


def test_smoke_defaults_then_explicit_overrides():
    s = parse(["--max-steps", "3", "--smoke"])
    assert s["max_steps"] == 3  # explicit wins, wherever it stands
    assert s["dataset"].endswith("smoke_task.jsonl") and s["model_name"] == DEFAULTS["model_name"]
    assert s["explicit"] == ["max_steps", "smoke"]
    assert "backend" not in SMOKE_SETTINGS  # --smoke runs on the backend the real run would use


def test_every_smoke_setting_is_a_setting():
    assert set(SMOKE_SETTINGS) <= set(DEFAULTS)
    for name, value in SMOKE_SETTINGS.items():
        assert type(value) is type(DEFAULTS[name]), name


def test_defaults_are_the_recipe():
    d = DEFAULTS
    assert d["model_name"] == "unsloth/Qwen3-4B-Base" and d["max_seq_length"] == 2048 and d["load_in_4bit"] is False
    assert (d["lora_rank"], d["lora_alpha"], d["seed"]) == (32, 64, 3407)
    assert (d["learning_rate"], d["weight_decay"], d["max_steps"], d["num_generations"]) == (5e-6, 0.001, 100, 4)
    assert (d["temperature"], d["min_p"], d["top_p"], d["optimizer"]) == (1.0, 0.1, 1.0, "adamw_8bit")
    assert d["per_device_batch"] % d["num_generations"] == 0
    # the objective, spelled out: TRL's own defaults, the same on both backends
    assert (d["loss_type"], d["beta"], d["epsilon"], d["mask_truncated_completions"]) == ("dapo", 0.0, 0.2, False)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"per_device_batch": 6, "num_generations": 4}, "must be a multiple of --num-generations"),
        ({"max_prompt_length": 2048}, "must be below --max-seq-length"),
        ({"learning_rate": -1e-5}, "--learning-rate must not be negative"),
        ({"num_generations": 1, "per_device_batch": 1}, "at least 2"),
        ({"max_steps": 0}, "--max-steps must be positive"),
        ({"backend": "jax"}, "--backend must be auto, unsloth or transformers"),
        ({"export": "onnx"}, "--export must be adapter, merged or gguf"),
        ({"loss_type": "ppo"}, "--loss-type must be grpo, dr_grpo, dapo, bnpo, cispo, sapo, luspo or vespo"),
        ({"gpu_memory_utilization": 1.5}, "--gpu-memory-utilization must be between 0 and 1"),
        ({"colocate_vllm_memory": 1.0}, "--colocate-vllm-memory must be between 0 and 1"),  # 0: sized from the model
        ({"epsilon_high": 0.1}, "--epsilon-high (0.1) must be 0 (same as --epsilon) or at least --epsilon"),
        ({"eval_samples": -1}, "--eval-samples must not be negative"),
        ({"reward_weights": "1,2"}, "needs 4 numbers"),
        ({"eval_only": True}, "--eval-only needs --adapter"),
        ({"export_only": True, "adapter": "a", "export": "adapter"}, "--export-only needs --export merged"),
        ({"export_only": True, "eval_only": True, "adapter": "a"}, "separate jobs"),
        ({"run_name": "a/b"}, "--run-name must be a plain folder name"),
        ({"per_device_batch": 3, "num_generations": 2}, "must be a multiple of --num-generations"),
        ({"loss_type": "cispo", "epsilon_high": 0.5}, "--loss-type cispo caps the importance weight itself"),
        ({"loss_type": "cispo", "epsilon_high": 1.0}, "--loss-type cispo caps the importance weight itself"),
    ],
)
def test_settings_that_cannot_work_are_refused(change, message):
    with pytest.raises(SetupError) as error:
        check_settings(dict(DEFAULTS, **change), NAMES)
    assert message in str(error.value)


# Every numeric setting and the values just outside its range, written out here rather than read from
# recipe/settings.py, so that dropping a setting from a range check there turns this red. A new numeric
# setting fails test_every_numeric_setting_has_its_range_here until it is added.
MUST_BE_POSITIVE = [
    "max_steps", "max_seq_length", "lora_rank", "lora_alpha", "eval_max_new_tokens", "save_steps",
    "eval_batch_size", "eval_during_size", "per_device_batch", "gradient_accumulation", "temperature",
    "process_timeout_minutes",
]  # fmt: skip
MUST_NOT_BE_NEGATIVE = [
    "learning_rate", "priming_learning_rate", "weight_decay", "beta", "warmup_fraction", "eval_size",
    "eval_samples", "epsilon", "epsilon_high", "max_completion_length", "max_prompt_length", "eval_steps",
    "log_completions_steps", "max_train_rows", "priming_max_rows", "priming_epochs", "save_total_limit",
    "dynamic_sampling_rounds",
]  # fmt: skip
OTHER_RANGES = {  # setting: (refused values, accepted edge values, message)
    "prompt_length_quantile": ([0, -0.1, 1.01], [1.0, 0.01], "--prompt-length-quantile must be in (0, 1]"),
    "top_p": ([0, 1.5], [1.0, 0.05], "--top-p must be in (0, 1]"),
    "min_p": ([-0.1, 1, 2], [0, 0.5], "--min-p must be in [0, 1)"),
    "gpu_memory_utilization": ([0, 1, 1.5], [0.5, 0.95], "--gpu-memory-utilization must be between 0 and 1"),
    "colocate_vllm_memory": ([-0.1, 1], [0, 0.3], "--colocate-vllm-memory must be between 0 and 1"),
    "num_generations": ([1, 0], [2], "--num-generations must be at least 2"),
}
ANY_VALUE = ["seed"]


def numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def test_every_numeric_setting_has_its_range_here():
    listed = MUST_BE_POSITIVE + MUST_NOT_BE_NEGATIVE + list(OTHER_RANGES) + ANY_VALUE
    assert sorted(listed) == sorted(name for name, value in DEFAULTS.items() if numeric(value))


def with_change(name, value):
    """The defaults with one setting changed (and what that one change needs to stay consistent)."""
    change = {name: value}
    if name == "num_generations":
        change["per_device_batch"] = max(value, 1) * 4
    return dict(DEFAULTS, **change)


@pytest.mark.parametrize(
    "name, value, message",
    [(n, v, "must be positive") for n in MUST_BE_POSITIVE for v in (0, -1)]
    + [(n, -1, "must not be negative") for n in MUST_NOT_BE_NEGATIVE]
    + [(n, v, m) for n, (refused, _, m) in OTHER_RANGES.items() for v in refused],
)
def test_every_out_of_range_number_is_refused_before_anything_loads(name, value, message):
    from recipe.settings import flag

    with pytest.raises(SetupError) as error:
        check_settings(with_change(name, value), NAMES)
    expected = message if message.startswith("--") else f"{flag(name)} must"
    assert expected in str(error.value) and message.split(" must ")[-1] in str(error.value)


@pytest.mark.parametrize(
    "name, value",
    [(n, 0) for n in MUST_NOT_BE_NEGATIVE]
    + [(n, v) for n, (_, accepted, _) in OTHER_RANGES.items() for v in accepted]
    + [("seed", -5)],
)
def test_edge_values_inside_a_range_are_accepted(name, value):
    check_settings(with_change(name, value), NAMES)


@pytest.mark.parametrize("epsilon_high", [0.0, 1.5, 5.0])
def test_cispo_accepts_its_default_and_caps_above_one(epsilon_high):
    check_settings(dict(DEFAULTS, loss_type="cispo", epsilon_high=epsilon_high), NAMES)


def test_all_problems_are_reported_at_once():
    with pytest.raises(SetupError) as error:
        check_settings(dict(DEFAULTS, max_steps=0, learning_rate=-1.0), NAMES)
    assert "--max-steps" in str(error.value) and "--learning-rate" in str(error.value)


def test_reward_weights_parse():
    assert reward_weights("1,0.5,2,1", NAMES) == [1.0, 0.5, 2.0, 1.0]
    assert reward_weights("", NAMES) is None
    with pytest.raises(SetupError, match="comma-separated numbers"):
        reward_weights("1,x,2,1", NAMES)


def test_help_lists_settings_and_exits_cleanly(capsys):
    assert train_grpo.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--max-steps" in out and "python train_grpo.py --smoke" in out


def test_help_gives_each_setting_its_meaning_type_and_allowed_values(capsys):
    """The meaning is the constant's trailing comment in train_grpo.py, under its group's header."""
    assert train_grpo.main(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, default in DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        row = next(i for i, line in enumerate(lines) if line.startswith(f"  {flag}  "))
        assert f"default {default!r}" in lines[row], name
        assert lines[row + 1].startswith("      ") and len(lines[row + 1].strip()) > 5, f"{flag} has no meaning"
    text = "\n".join(lines)
    assert "  --backend  one of auto, unsloth, transformers; default 'auto'" in text  # allowed values
    assert "  --max-steps  an integer above 0; default 100\n      reward often stays near zero" in text
    assert "  --load-in-4bit  true or false; default False" in text
    assert "  --gpu-memory-utilization  a number between 0 and 1; default 0.9" in text
    assert lines.index("LoRA:") < next(i for i, line in enumerate(lines) if line.startswith("  --lora-rank"))


def test_setting_notes_read_comments_not_strings(tmp_path):
    from recipe.settings import setting_notes

    script = tmp_path / "script.py"
    script.write_text(
        '# -- first\nA = "x # not a comment"  # the meaning\nB = (\n    1\n)  # after a bracket\n# -- second\nC = 2\n'
    )
    assert setting_notes(script) == {
        "a": ("first", "the meaning"),
        "b": ("first", "after a bracket"),
        "c": ("second", ""),
    }
