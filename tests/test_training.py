"""The trainers' configurations: the recipe's values, one explicit objective, and vLLM's settings."""

import pytest

import train_grpo
from recipe import training
from recipe.training import OBJECTIVE_FIELDS, effective_objective, grpo_config, sft_config

RECIPE = dict(train_grpo.DEFAULTS)


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
    """TRL's colocated engine is a second model beside the training one: vLLM 0.31 refuses to start
    unless free memory >= its share x total, so the share must be TRL's small default, not Unsloth's 0.9."""
    monkeypatch.setattr(training, "vllm_available", lambda: True)
    config = grpo_config(RECIPE, tmp_path, "transformers", max_completion_length=1846)
    assert config.use_vllm is True and config.vllm_mode == "colocate"
    assert config.vllm_gpu_memory_utilization == RECIPE["colocate_vllm_memory"] == 0.3
    assert config.vllm_max_model_length == RECIPE["max_seq_length"]
    server = grpo_config(
        dict(RECIPE, vllm_mode="server", vllm_server_url="http://10.0.0.2:8000"), tmp_path, "transformers", 64
    )
    assert server.vllm_mode == "server" and server.vllm_server_base_url == "http://10.0.0.2:8000"


@pytest.mark.parametrize("smoke, installed", [(True, True), (False, False)])
def test_no_vllm_for_smoke_runs_or_without_it(tmp_path, monkeypatch, smoke, installed):
    monkeypatch.setattr(training, "vllm_available", lambda: installed)
    assert grpo_config(dict(RECIPE, smoke=smoke), tmp_path, "transformers", 64).use_vllm is False


def test_priming_config_is_the_recipes_short_pass(tmp_path):
    config = sft_config(RECIPE, tmp_path)
    assert (config.num_train_epochs, config.learning_rate, config.per_device_train_batch_size) == (2, 2e-4, 1)
    assert (config.warmup_steps, config.weight_decay, config.save_strategy) == (5, 0.001, "no")
    import torch

    assert config.optim == ("adamw_8bit" if torch.cuda.is_available() else "adamw_torch")  # 8-bit Adam needs CUDA
