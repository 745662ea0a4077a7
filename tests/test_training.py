"""The trainers' configurations: the recipe's values, one explicit objective, and vLLM's settings."""

import types

import pytest

import train_grpo
from recipe import generation, training
from recipe.errors import SetupError
from recipe.settings import check_settings
from recipe.training import OBJECTIVE_FIELDS, effective_objective, grpo_config, sft_config
from rewards import REWARD_FUNCS

RECIPE = dict(train_grpo.DEFAULTS)
GIB = 2**30
NAMES = [f.__name__ for f in REWARD_FUNCS]


def test_grpo_config_carries_the_recipe_and_an_explicit_objective(tmp_path):
    config = grpo_config(RECIPE, tmp_path, "transformers", max_completion_length=1846)
    assert (config.learning_rate, config.num_generations, config.per_device_train_batch_size) == (5e-6, 4, 4)
    assert (config.temperature, config.min_p, config.top_p, config.max_completion_length) == (1.0, 0.1, 1.0, 1846)
    assert config.warmup_steps == 10 and config.lr_scheduler_type == "linear"
    objective = effective_objective(config)
    assert set(objective) == set(OBJECTIVE_FIELDS)
    # nothing left as None for a library to fill in: Unsloth reads epsilon_high=None as 0.28
    assert (objective["loss_type"], objective["epsilon"], objective["epsilon_high"]) == ("dapo", 0.2, 0.2)
    assert objective["mask_truncated_completions"] is False and objective["scale_rewards"] == "group"
    assert config.logging_nan_inf_filter is False  # a NaN loss reaches the divergence guard as NaN


def test_epsilon_high_setting_is_passed_through(tmp_path):
    config = grpo_config(dict(RECIPE, epsilon_high=0.28), tmp_path, "transformers", max_completion_length=64)
    assert (config.epsilon, config.epsilon_high) == (0.2, 0.28)


def test_colocated_vllm_gets_its_own_share_and_the_context_length(tmp_path, monkeypatch):
    """TRL's colocated engine is a second model beside the training one: it gets the share plan_generation
    sized for it (vLLM 0.31 refuses to start unless free memory >= its share x total), not Unsloth's 0.9."""
    fake_gpu(monkeypatch, 80)
    config = grpo_config(dict(RECIPE, colocate_vllm_memory=0.45), tmp_path, "transformers", max_completion_length=1846)
    assert config.use_vllm is True and config.vllm_mode == "colocate"
    assert config.vllm_gpu_memory_utilization == 0.45
    assert config.vllm_max_model_length == RECIPE["max_seq_length"]
    server = grpo_config(
        dict(RECIPE, vllm_mode="server", vllm_server_url="http://10.0.0.2:8000"), tmp_path, "transformers", 64
    )
    assert server.vllm_mode == "server" and server.vllm_server_base_url == "http://10.0.0.2:8000"


@pytest.mark.parametrize(
    "smoke, installed, four_bit", [(True, True, False), (False, False, False), (False, True, True)]
)
def test_no_vllm_for_smoke_runs_without_it_or_in_4bit(tmp_path, monkeypatch, smoke, installed, four_bit):
    fake_gpu(monkeypatch, 80, vllm=installed)
    settings = dict(RECIPE, smoke=smoke, load_in_4bit=four_bit, colocate_vllm_memory=0.5)
    assert grpo_config(settings, tmp_path, "transformers", 64).use_vllm is False
    plain_16bit = dict(settings, smoke=False, load_in_4bit=False)
    assert grpo_config(plain_16bit, tmp_path, "transformers", 64).use_vllm is installed


def test_a_vllm_server_without_vllm_installed_is_refused(monkeypatch):
    """The default (colocate) falls back to transformers with a printed reason; a chosen server does not,
    since the run would quietly generate here while the server waits."""
    fake_gpu(monkeypatch, 80, vllm=False)
    with pytest.raises(SetupError, match="--vllm-mode server needs vLLM installed here too"):
        generation.plan_generation(dict(RECIPE, vllm_mode="server"), "transformers")
    assert generation.plan_generation(dict(RECIPE, vllm_mode="colocate"), "transformers")["fast_inference"] is False
    assert generation.plan_generation(dict(RECIPE, vllm_mode="server", fast_inference=False), "transformers")


def test_priming_config_is_the_recipes_short_pass(tmp_path):
    config = sft_config(RECIPE, tmp_path)
    assert (config.num_train_epochs, config.learning_rate, config.per_device_train_batch_size) == (2, 2e-4, 1)
    assert (config.warmup_steps, config.weight_decay, config.save_strategy) == (5, 0.001, "no")
    import torch

    assert config.optim == ("adamw_8bit" if torch.cuda.is_available() else "adamw_torch")  # 8-bit Adam needs CUDA


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="what the trainers do on a CPU")
def test_cpu_runs_do_not_recompute_activations(tmp_path):
    """Gradient checkpointing saves GPU memory by computing each layer twice; on a CPU it only costs time
    (0.85 -> 0.70 s a smoke GRPO step, 2026-11-30), so both trainers go without it there."""
    assert sft_config(RECIPE, tmp_path).gradient_checkpointing is False
    assert grpo_config(RECIPE, tmp_path, "transformers", max_completion_length=64).gradient_checkpointing is False


# ----------------------------------------------------------------------------- settings that start (issue #17)


def test_trust_remote_code_reaches_trls_config(tmp_path):
    """TRL hands GRPOConfig.trust_remote_code to its colocated vLLM engine (trl/generation/vllm_generation.py)."""
    assert grpo_config(dict(RECIPE, trust_remote_code=True), tmp_path, "transformers", 64).trust_remote_code is True
    assert grpo_config(RECIPE, tmp_path, "transformers", 64).trust_remote_code is False


def test_cispo_caps_the_weight_at_a_sound_value(tmp_path):
    """TRL clamps CISPO's importance weight at epsilon_high itself: 0.2 (epsilon) would cap every weight."""
    cispo = dict(RECIPE, loss_type="cispo")
    assert grpo_config(cispo, tmp_path, "transformers", 64).epsilon_high == training.CISPO_EPSILON_MAX == 5.0
    assert grpo_config(dict(cispo, epsilon_high=6.0), tmp_path, "transformers", 64).epsilon_high == 6.0
    assert grpo_config(RECIPE, tmp_path, "transformers", 64).epsilon_high == 0.2  # other losses: epsilon
    with pytest.raises(SetupError, match="cispo caps the importance weight"):
        check_settings(dict(cispo, epsilon_high=0.28), NAMES)
    check_settings(cispo, NAMES)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_dr_grpo_keeps_the_chosen_reward_scaling_on_both_backends(tmp_path, scale):
    """Unsloth's config turns an explicit "group" into "none" for dr_grpo and keeps scaling for None; the
    real patched config is checked in tests/test_unsloth_cpu.py."""
    settings = dict(RECIPE, loss_type="dr_grpo", scale_rewards=scale)
    assert grpo_config(settings, tmp_path, "transformers", 64).scale_rewards == scale
    assert training.scale_rewards(settings, "unsloth") == (None if scale == "group" else scale)


def fake_gpu(monkeypatch, total_gib: float, vllm: bool = True):
    """A CUDA GPU of `total_gib` as far as recipe.generation can tell, with or without vLLM installed."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(total_memory=int(total_gib * GIB))
    )
    monkeypatch.setattr(generation, "vllm_available", lambda: vllm)
    # the trainer itself still runs on this CPU: its precision and optimizer as without a GPU
    monkeypatch.setattr(training, "precision", lambda: {"use_cpu": True, "bf16": False, "fp16": False})
    monkeypatch.setattr(training, "optimizer_name", lambda wanted: "adamw_torch")


@pytest.mark.parametrize("backend", ["unsloth", "transformers"])
def test_4bit_generates_without_vllm_and_says_why(monkeypatch, capsys, backend):
    """vLLM 0.31 has no bitsandbytes in tree: a 4-bit model cannot start in it on either backend."""
    fake_gpu(monkeypatch, 80)
    plan = generation.plan_generation(dict(RECIPE, load_in_4bit=True), backend)
    assert plan["fast_inference"] is False
    assert "vllm-bnb-plugin" in capsys.readouterr().out
    assert generation.vllm_off_reason(dict(RECIPE, load_in_4bit=True), backend) == generation.FOUR_BIT_WITHOUT_VLLM
    assert generation.plan_generation(dict(RECIPE, vllm_mode="server"), backend)["fast_inference"] is True  # 16-bit


def test_4bit_with_a_vllm_server_is_refused_before_anything_loads():
    with pytest.raises(SetupError, match="cannot serve a 4-bit model"):
        check_settings(dict(RECIPE, load_in_4bit=True, vllm_mode="server"), NAMES)
    check_settings(dict(RECIPE, load_in_4bit=True, vllm_mode="server", fast_inference=False), NAMES)


@pytest.fixture(scope="module")
def qwen3_4b_config(tmp_path_factory):
    """config.json of Qwen3-4B's shape, no weights: what plan_generation reads of the real model."""
    from transformers import Qwen3Config

    from bench.step import QWEN3_4B  # the shape bench/step.py measures, from Qwen3-4B-Base's config.json

    folder = tmp_path_factory.mktemp("qwen3-4b")
    Qwen3Config(**QWEN3_4B).save_pretrained(folder)
    return str(folder)


def test_colocated_vllm_memory_holds_weights_cache_and_overhead(qwen3_4b_config):
    need = generation.colocated_vllm_bytes(dict(RECIPE, model_name=qwen3_4b_config))
    assert need["weights"] == 4_022_468_096 * 2  # Qwen3-4B's parameters (tied embeddings counted once), 16-bit
    # 36 layers x 8 KV heads x 128 x (K and V) x 2 bytes per token; 4 sequences of 2048 tokens
    assert need["kv_cache"] == 4 * 2048 * 36 * 8 * 128 * 2 * 2
    assert need["overhead"] == generation.VLLM_OVERHEAD_GIB * GIB


def test_colocated_vllm_share_is_sized_from_the_model_or_refused(monkeypatch, capsys, qwen3_4b_config):
    """TRL's old default share (0.3 of 24 GB) is less than Qwen3-4B's weights alone: sized instead, or refused
    with the number needed, before the model loads. Prompts up to 201 tokens, as the recipe's DAPO data."""
    settings = dict(RECIPE, model_name=qwen3_4b_config, max_prompt_length=201)
    fake_gpu(monkeypatch, 23.6)  # a 24 GB card
    share = generation.plan_generation(settings, "transformers")["colocate_vllm_memory"]
    need = sum(generation.colocated_plan(settings)["vllm"].values())
    assert need <= share * 23.6 * GIB < need + 0.01 * 23.6 * GIB and 0.3 < share < 0.5
    assert f"gets {share:.2f} of the GPU" in capsys.readouterr().out
    with pytest.raises(SetupError, match=f"too small .* needs {share:.2f}.* --colocate-vllm-memory {share:.2f}"):
        generation.plan_generation(dict(settings, colocate_vllm_memory=0.3), "transformers")
    assert (
        generation.plan_generation(dict(settings, colocate_vllm_memory=0.46), "transformers")["colocate_vllm_memory"]
        == 0.46
    )  # more than needed, by hand: kept (on 24 GB the rest needs all but 0.46: tests/test_generation_paths.py)
    with pytest.raises(SetupError, match="leaves too little .* pass 0"):  # so much that training has no room left
        generation.plan_generation(dict(settings, colocate_vllm_memory=0.7), "transformers")
    fake_gpu(monkeypatch, 15.6)  # a 16 GB card: two 16-bit copies and a cache do not fit
    with pytest.raises(SetupError, match="do not fit in .*--vllm-mode server"):
        generation.plan_generation(settings, "transformers")
    assert generation.plan_generation(dict(settings, vllm_mode="server"), "transformers")["fast_inference"] is True
    check_settings(settings, NAMES)  # 0: sized from the model, allowed


def test_precision_is_strict_about_bf16(monkeypatch):
    """A T4 or V100 emulates bf16 (torch's plain is_bf16_supported() says yes): fp16 there, as Unsloth."""
    import torch

    from recipe import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert models.precision() == {"bf16": False, "fp16": True}
    assert models.compute_dtype() == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere
    assert models.precision() == {"bf16": True, "fp16": False} and models.compute_dtype() == torch.bfloat16
    from trl import GRPOConfig, SFTConfig

    # on a GPU gradient checkpointing stays on: TRL's default, which precision() does not override
    assert all(cls.__dataclass_fields__["gradient_checkpointing"].default is True for cls in (GRPOConfig, SFTConfig))
