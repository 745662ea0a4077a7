"""The real pinned Unsloth (2026.10.7) on CPU: the trainer classes a GPU user actually runs.

Runs only in CI's Unsloth stage (`bash .ci/run`), in a venv of its own with requirements-unsloth-cpu.txt,
as `UNSLOTH_STAGE=1 pytest tests/test_unsloth_cpu.py`: importing Unsloth patches transformers and TRL for
the whole process, so it must not share a process with the other tests. Elsewhere it is skipped.

What runs for real: `import unsloth` before trl (through recipe.models.choose_backend), Unsloth's own
PatchFastRL, its generated UnslothGRPOConfig / UnslothGRPOTrainer / UnslothSFTTrainer built from the
project's own sft_config() and grpo_config(), a few training steps of each with the project's four
rewards, and Unsloth's save_pretrained_merged. What is replaced to run without a GPU, as little as
possible, and why:
  - UNSLOTH_ALLOW_CPU=1, or `import unsloth` raises NotImplementedError without an accelerator; that
    same switch makes it skip patching TRL, so PatchFastRL() is called once with the switch off.
  - the model is loaded with transformers + PEFT (recipe.models.load_model), not FastLanguageModel:
    from_pretrained needs torch.cuda.get_device_properties, and use_gradient_checkpointing="unsloth"
    pinned memory. Unsloth's for_training / for_inference, which get_peft_model binds and its trainer
    calls, are bound by hand.
  - torch.cuda.get_device_name answers "cpu" during save_pretrained_merged (a Tesla T4 check there).
  - use_cpu, fp32 and torch AdamW, as recipe.models.precision() and optimizer_name() choose on CPU.
Unsloth's trainers compute log-probs with their own code, so TRL's Triton kernel needs no stand-in here.
"""

import contextlib
import functools
import importlib.util
import json
import os
import subprocess
import sys

import pytest

if os.environ.get("UNSLOTH_STAGE") != "1":
    pytest.skip(
        "Unsloth stage: runs alone in its own venv (bash .ci/run, or UNSLOTH_STAGE=1 pytest tests/test_unsloth_cpu.py "
        "after pip install --no-deps -r requirements-unsloth-cpu.txt)",
        allow_module_level=True,
    )
if importlib.util.find_spec("unsloth") is None:
    raise RuntimeError(
        "UNSLOTH_STAGE=1 but unsloth is not installed: pip install --no-deps -r requirements-unsloth-cpu.txt"
    )

os.environ["UNSLOTH_ALLOW_CPU"] = "1"
from conftest import QUICK, ROOT, SMOKE_PRIMER, SMOKE_TASK  # noqa: E402

import train_grpo  # noqa: E402
from recipe import models  # noqa: E402
from recipe.settings import parse_settings  # noqa: E402
from recipe.smoke import SMOKE_SETTINGS, build_smoke_model  # noqa: E402
from recipe.training import OBJECTIVE_FIELDS, effective_objective, grpo_config, sft_config  # noqa: E402
from rewards import REWARD_FUNCS  # noqa: E402

SETTINGS = parse_settings(["--smoke", *QUICK], train_grpo.DEFAULTS, SMOKE_SETTINGS)


class ImportOrder:
    """A meta-path finder that only records the order in which top-level packages are first imported."""

    def __init__(self):
        self.names: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if "." not in name and name not in self.names:
            self.names.append(name)
        return None


IMPORTS = ImportOrder()


@pytest.fixture(scope="module")
def patched_trl():
    """Unsloth imported the project's way, then its TRL patch applied as it is on a GPU."""
    assert not {"unsloth", "trl", "transformers", "peft"} & set(sys.modules)
    real = models.cuda_available
    models.cuda_available = lambda: (True, "")  # let choose_backend pick Unsloth, as it does on a GPU
    sys.meta_path.insert(0, IMPORTS)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            assert models.choose_backend("auto", needs_gpu=True) == "unsloth"
    finally:
        sys.meta_path.remove(IMPORTS)
        models.cuda_available = real
    from unsloth.models import rl

    os.environ["UNSLOTH_ALLOW_CPU"] = "0"
    try:
        rl.PatchFastRL()
    finally:
        os.environ["UNSLOTH_ALLOW_CPU"] = "1"
    import trl

    assert trl.GRPOTrainer.__name__ == "UnslothGRPOTrainer" and trl.SFTTrainer.__name__ == "UnslothSFTTrainer"
    assert rl._is_unsloth_patched_config(trl.GRPOConfig)
    return trl


def test_unsloth_is_imported_before_trl_and_transformers(patched_trl):
    order = IMPORTS.names
    assert order.index("unsloth") < min(order.index("trl"), order.index("transformers"), order.index("peft")), order


# Objectives whose fields Unsloth's patched config would change if they were not passed as grpo_config passes
# them: the recipe's (explicit dapo: Unsloth would mask truncation and clip at 0.28), dr_grpo with each reward
# scaling (Unsloth turns an explicit "group" into "none"), and cispo (epsilon_high caps the weight itself).
OBJECTIVES = {
    "recipe": {},
    "dr_grpo, group": {"loss_type": "dr_grpo", "scale_rewards": "group"},
    "dr_grpo, batch": {"loss_type": "dr_grpo", "scale_rewards": "batch"},
    "dr_grpo, none": {"loss_type": "dr_grpo", "scale_rewards": "none"},
    "cispo": {"loss_type": "cispo"},
}


def test_unsloth_config_trains_the_same_objective_as_the_plain_backend(patched_trl, tmp_path):
    """grpo_config(backend="unsloth") through Unsloth's patched class holds the same objective and sampling
    as grpo_config(backend="transformers") through stock TRL in a process that never imports Unsloth, for
    each objective above."""
    base = dict(train_grpo.DEFAULTS, smoke=False, fast_inference=False)  # the recipe's own values
    unsloth = {
        case: json.loads(json.dumps(effective_objective(grpo_config(dict(base, **o), tmp_path / "u", "unsloth", 1846))))
        for case, o in OBJECTIVES.items()
    }
    code = (
        "import json, sys; sys.modules['unsloth'] = None\n"
        "import train_grpo\nfrom recipe.training import effective_objective, grpo_config\n"
        "s = dict(train_grpo.DEFAULTS, smoke=False, fast_inference=False)\n"
        f"cases = {OBJECTIVES!r}\n"
        f"print('@@' + json.dumps({{c: effective_objective(grpo_config(dict(s, **o), {str(tmp_path / 'p')!r}, "
        "'transformers', 1846)) for c, o in cases.items()}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "UNSLOTH_ALLOW_CPU"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    line = [x for x in result.stdout.splitlines() if x.startswith("@@")]
    assert line, result.stderr[-3000:]
    plain = json.loads(line[0][2:])
    for case in OBJECTIVES:
        differ = {k: (plain[case][k], unsloth[case][k]) for k in OBJECTIVE_FIELDS if plain[case][k] != unsloth[case][k]}
        # Only with vLLM generating, which needs a GPU: Unsloth keeps its own default for its own engine.
        differ.pop("vllm_importance_sampling_correction", None)
        assert not differ, f"{case}: plain vs Unsloth: {differ}"
    recipe = unsloth["recipe"]
    assert (recipe["loss_type"], recipe["mask_truncated_completions"], recipe["epsilon_high"]) == ("dapo", False, 0.2)
    assert [unsloth[f"dr_grpo, {s}"]["scale_rewards"] for s in ("group", "batch", "none")] == ["group", "batch", "none"]
    assert unsloth["cispo"]["epsilon_high"] == 5.0


def test_unsloth_turns_dr_grpo_group_scaling_off_when_given_literally(patched_trl, tmp_path):
    """Why grpo_config passes None for dr_grpo + "group" under Unsloth: given "group" as it is, the patched
    config trains without scaling (unsloth/models/rl.py), which the transformers backend would not."""
    config = patched_trl.GRPOConfig(
        output_dir=str(tmp_path), loss_type="dr_grpo", scale_rewards="group", use_cpu=True, bf16=False
    )
    assert config.scale_rewards == "none"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, patched_trl):
    folder = tmp_path_factory.mktemp("unsloth") / "base_model"
    settings = dict(SETTINGS, model_name=build_smoke_model(folder, [str(SMOKE_TASK), str(SMOKE_PRIMER)], 3407))
    tokenizer = models.load_tokenizer(settings["model_name"])
    model, tokenizer = models.load_model(settings, "transformers", tokenizer)
    from unsloth.models.llama import FastLlamaModel

    model.for_training = functools.partial(FastLlamaModel.for_training, model)  # what get_peft_model binds
    model.for_inference = functools.partial(FastLlamaModel.for_inference, model)
    return settings, model, tokenizer


def lora_weights(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def changed(before, model):
    return [n for n, p in model.named_parameters() if n in before and not (p.detach() == before[n]).all()]


def test_unsloth_sft_trainer_primes_the_lora(tiny, patched_trl, tmp_path):
    from recipe.data import build_priming_rows, load_table

    settings, model, tokenizer = tiny
    columns = ("problem", "generated_solution", "expected_answer")
    rows = build_priming_rows(load_table(str(SMOKE_PRIMER)), columns, tokenizer, 128, max_rows=4)
    before = lora_weights(model)
    trainer = patched_trl.SFTTrainer(
        model=model, args=sft_config(settings, tmp_path), train_dataset=rows, processing_class=tokenizer
    )
    assert type(trainer).__name__ == "UnslothSFTTrainer"
    trainer.train()
    assert trainer.state.global_step == 4 and changed(before, model)


def test_unsloth_grpo_trainer_trains_on_the_four_rewards(tiny, patched_trl, tmp_path):
    from recipe.data import build_prompts, load_table

    settings, model, tokenizer = tiny
    settings = dict(settings, max_steps=2)
    problems = build_prompts(load_table(str(SMOKE_TASK)), "prompt", "solution").select(range(8))
    before = lora_weights(model)
    trainer = patched_trl.GRPOTrainer(
        model=model,
        reward_funcs=REWARD_FUNCS,
        args=grpo_config(settings, tmp_path, "unsloth", max_completion_length=24),
        train_dataset=problems,
        processing_class=tokenizer,
    )
    assert type(trainer).__name__ == "UnslothGRPOTrainer"
    assert (trainer.args.mask_truncated_completions, trainer.args.epsilon_high) == (False, settings["epsilon"])
    trainer.train()
    assert trainer.state.global_step == 2 and changed(before, model)
    logged = trainer.state.log_history
    for f in REWARD_FUNCS:
        assert any(f"rewards/{f.__name__}/mean" in h for h in logged), f.__name__


def test_dynamic_sampling_trains_through_unslothed_grpo_trainer(tiny, patched_trl, tmp_path):
    """recipe/sampling.py subclasses the class Unsloth patched in (its compiled _generate_and_score_completions
    and _calculate_rewards), and a few steps train with it on, each batch made of the groups it kept."""
    from recipe.data import build_prompts, load_table
    from recipe.sampling import METRIC, with_dynamic_sampling

    settings, model, tokenizer = tiny
    settings = dict(settings, max_steps=3)
    problems = build_prompts(load_table(str(SMOKE_TASK)), "prompt", "solution").select(range(16))
    before = lora_weights(model)
    trainer = with_dynamic_sampling(patched_trl.GRPOTrainer, 2)(
        model=model,
        reward_funcs=REWARD_FUNCS,
        args=grpo_config(settings, tmp_path, "unsloth", max_completion_length=24),
        train_dataset=problems,
        processing_class=tokenizer,
    )
    assert type(trainer).__mro__[1].__name__ == "UnslothGRPOTrainer"
    trainer.train()
    assert trainer.state.global_step == 3 and changed(before, model)
    steps = [h for h in trainer.state.log_history if METRIC + "generated" in h]
    assert len(steps) == 3
    for h in steps:  # two groups a step (QUICK: 8 completions of 4); the same-score share is the trained batch's
        assert h[METRIC + "kept"] + h[METRIC + "short"] == 2 and h["frac_reward_zero_std"] == h[METRIC + "short"] / 2
    assert trainer.refill_cursor == 2 * sum(h[METRIC + "extra_rounds"] for h in steps)


def test_unsloth_merged_export_answers_like_base_plus_adapter(tiny, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM
    from unsloth.save import patch_saving_functions

    from recipe.export import export_model

    settings, model, tokenizer = tiny
    # Seeded non-zero LoRA weights, so the merge has something to carry even when this test runs alone
    # (before the training tests, lora_B is still zero and base + adapter is the base).
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.add_(torch.randn(weight.shape, generator=generator) * 0.5)
    adapter = models.save_adapter(model, tokenizer, tmp_path / "adapter")
    patch_saving_functions(model)  # what FastLanguageModel.get_peft_model does: binds save_pretrained_merged
    model.eval()
    ids = tokenizer("Which is the largest of 1, 5, 2, 3?", return_tensors="pt", add_special_tokens=False)
    kwargs = dict(do_sample=False, max_new_tokens=16, pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():
        want = model.generate(**ids, **kwargs)
        with model.disable_adapter():
            base_only = model.generate(**ids, **kwargs)
    assert not torch.equal(base_only, want)  # so a merge that dropped the adapter would fail below
    real, torch.cuda.get_device_name = torch.cuda.get_device_name, lambda *a, **k: "cpu"
    try:
        folder = export_model(model, tokenizer, dict(settings, export="merged"), adapter, "unsloth", tmp_path / "m")
    finally:
        torch.cuda.get_device_name = real
    merged = AutoModelForCausalLM.from_pretrained(str(folder))
    assert not any("lora" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.equal(merged.generate(**ids, **kwargs), want)
