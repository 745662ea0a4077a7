"""The trainers' configurations: the recipe's values, translated to TRL 1.15 and to this machine.

Both backends get the same objective, spelled out (loss type, clipping, truncation masking, KL, reward
scaling), because Unsloth's patched GRPOConfig fills in its own choices for fields it is not given or
that are None: with an explicit loss_type="dapo" it would turn on mask_truncated_completions and set
epsilon_high=0.28 (unsloth 2026.10.7, unsloth/models/rl.py; docs/gpu-path.md). The one field left to
each library is vllm_importance_sampling_correction (TRL: on; Unsloth: off for its own vLLM engine); it
only acts when vLLM generates, and config.json records it. Three loss types need more than passing the value:
  - dr_grpo: Unsloth turns an explicit scale_rewards "group" into "none" (unsloth/models/rl.py:3466-3471,
    "The Dr GRPO paper recommends..."), and keeps group scaling only for None, so "group" goes to it as None.
  - cispo: TRL caps the importance weight itself at epsilon_high (trl/trainer/grpo_trainer.py:3035-3037), not
    1 + epsilon_high, so epsilon_high = epsilon (0.2) would cap every weight below 1. Unset, it is
    CISPO_EPSILON_MAX, the ScaleRL paper's value that TRL's docs and Unsloth both use (rl.py:3483-3489).
  - vespo, when TRL's own vLLM generates: TRL's default correction mode (sequence_mask) is one GRPOTrainer
    refuses for it (grpo_trainer.py:913-918), so it gets VESPO_IMPORTANCE_SAMPLING_MODE.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from rewards import REWARD_FUNCS

from .generation import plan_generation, vllm_off_reason
from .models import optimizer_name, precision
from .settings import reward_weights

CISPO_EPSILON_MAX = 5.0  # loss_type cispo: cap on the importance weight (ScaleRL; TRL's recommended value)
VESPO_IMPORTANCE_SAMPLING_MODE = "token_truncate"  # vespo with TRL's vLLM: one of the two token modes it accepts

# What decides the objective and the sampling; written to config.json as the trainer used them.
OBJECTIVE_FIELDS = (
    "loss_type", "beta", "epsilon", "epsilon_high", "mask_truncated_completions", "scale_rewards",
    "num_generations", "max_completion_length", "temperature", "top_p", "top_k", "min_p",
    "repetition_penalty", "reward_weights", "learning_rate", "per_device_train_batch_size",
    "gradient_accumulation_steps", "max_steps", "use_vllm", "vllm_importance_sampling_correction",
    "vllm_importance_sampling_mode",
)  # fmt: skip


def sft_config(settings: dict, output_dir: Path):
    """Format priming: the recipe's short supervised pass (batch 1, 5 warmup steps, linear schedule)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=settings["priming_epochs"],
        learning_rate=settings["priming_learning_rate"],
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        warmup_steps=5,
        weight_decay=settings["weight_decay"],
        lr_scheduler_type="linear",
        optim=optimizer_name(settings["optimizer"]),
        logging_steps=1,
        save_strategy="no",
        logging_nan_inf_filter=False,  # log a NaN loss as NaN, so the divergence guard sees it
        report_to=settings["report_to"],
        seed=settings["seed"],
        max_length=settings["max_seq_length"],
        disable_tqdm=not sys.stderr.isatty(),
        ddp_find_unused_parameters=False,  # LoRA uses every adapter weight
        # A mixture of experts: no load-balancing loss in priming. With one, TRL 1.15 turns the model config's
        # output_router_logits on for good (trl/trainer/sft_trainer.py:1204-1208), and every later generate()
        # fails in transformers 5.17's loss, whose padding mask does not fit a cached step (modeling_qwen3_moe.py:
        # 566-570). LoRA leaves the router frozen anyway.
        router_aux_loss_coef=0.0,
        **precision(),
    )


def grpo_config(settings: dict, output_dir: Path, backend: str, max_completion_length: int):
    """GRPO with the recipe's values; vLLM generation where it is installed and the backend can use it."""
    from trl import GRPOConfig

    extra = {}
    vllm = not vllm_off_reason(settings, backend)  # not with 4-bit, nor for smoke runs on transformers
    if backend == "unsloth" and vllm:
        from vllm import SamplingParams

        # Unsloth's patched GRPOConfig hands these to its vLLM engine; it takes temperature, the number
        # of samples and the length from the config itself (it drops those fields from the object).
        extra["vllm_sampling_params"] = SamplingParams(
            min_p=settings["min_p"],
            top_p=settings["top_p"],
            top_k=-1,
            seed=settings["seed"],
            include_stop_str_in_output=True,
        )
    elif backend == "transformers" and vllm:
        # TRL's colocated engine is a second model beside the training one, with its own share of the GPU:
        # sized from the model by plan_generation (train_grpo.py calls it before the model loads) when 0.
        share = settings["colocate_vllm_memory"] or plan_generation(settings, backend)["colocate_vllm_memory"]
        extra.update(
            use_vllm=True,
            vllm_mode=settings["vllm_mode"],
            vllm_gpu_memory_utilization=share,
            vllm_max_model_length=settings["max_seq_length"],
        )
        if settings["vllm_server_url"]:
            extra["vllm_server_base_url"] = settings["vllm_server_url"]
        if settings["loss_type"] == "vespo":
            # TRL's default correction mode, sequence_mask, is refused for vespo once the model has loaded
            # (trl/trainer/grpo_trainer.py:913-918); vespo folds token-level truncated ratios into its own
            # sequence weight (get_gamma_weights, :2898-2930)
            extra["vllm_importance_sampling_mode"] = VESPO_IMPORTANCE_SAMPLING_MODE
    return GRPOConfig(
        output_dir=str(output_dir),
        run_name=settings["run_name"],
        learning_rate=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        warmup_steps=int(math.ceil(settings["warmup_fraction"] * settings["max_steps"])),
        lr_scheduler_type=settings["lr_scheduler"],
        optim=optimizer_name(settings["optimizer"]),
        logging_steps=1,
        per_device_train_batch_size=settings["per_device_batch"],
        gradient_accumulation_steps=settings["gradient_accumulation"],
        num_generations=settings["num_generations"],
        max_completion_length=max_completion_length,
        max_steps=settings["max_steps"],
        save_steps=settings["save_steps"],
        save_total_limit=settings["save_total_limit"],
        temperature=settings["temperature"],
        top_p=settings["top_p"],
        min_p=settings["min_p"] or None,
        beta=settings["beta"],
        loss_type=settings["loss_type"],
        epsilon=settings["epsilon"],
        epsilon_high=epsilon_high(settings),  # never None: Unsloth reads None as 0.28 (5.0 for cispo)
        mask_truncated_completions=settings["mask_truncated_completions"],
        scale_rewards=scale_rewards(settings, backend),
        logging_nan_inf_filter=False,  # log a NaN loss as NaN, so the divergence guard sees it
        reward_weights=reward_weights(settings["reward_weights"], [f.__name__ for f in REWARD_FUNCS]),
        report_to=settings["report_to"],
        seed=settings["seed"],
        trust_remote_code=settings["trust_remote_code"],  # TRL hands it to its colocated vLLM engine
        disable_tqdm=not sys.stderr.isatty(),
        ddp_find_unused_parameters=False,  # LoRA uses every adapter weight
        **precision(),
        **extra,
    )


def epsilon_high(settings: dict) -> float:
    """The upper clip, as a number: EPSILON_HIGH, or when it is 0, EPSILON (CISPO_EPSILON_MAX for cispo,
    whose epsilon_high caps the importance weight itself, so 0.2 would shrink every update)."""
    if settings["epsilon_high"]:
        return settings["epsilon_high"]
    return CISPO_EPSILON_MAX if settings["loss_type"] == "cispo" else settings["epsilon"]


def scale_rewards(settings: dict, backend: str):
    """SCALE_REWARDS as each backend's config must receive it to train with that scaling: Unsloth's patched
    config replaces "group" with "none" for dr_grpo, and keeps group scaling when given None."""
    if backend == "unsloth" and settings["loss_type"] == "dr_grpo" and settings["scale_rewards"] == "group":
        return None
    return settings["scale_rewards"]


def effective_objective(args) -> dict:
    """The objective and sampling fields as the trainer holds them (after any library's own defaults)."""
    return {name: getattr(args, name, None) for name in OBJECTIVE_FIELDS}
