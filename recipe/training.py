"""The trainers' configurations: the recipe's values, translated to TRL 1.15 and to this machine.

Both backends get the same objective, spelled out (loss type, clipping, truncation masking, KL, reward
scaling), because Unsloth's patched GRPOConfig fills in its own choices for fields it is not given or
that are None: with an explicit loss_type="dapo" it would turn on mask_truncated_completions and set
epsilon_high=0.28 (unsloth 2026.10.7, unsloth/models/rl.py; docs/gpu-path.md). The one field left to
each library is vllm_importance_sampling_correction (TRL: on; Unsloth: off for its own vLLM engine); it
only acts when vLLM generates, and config.json records it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from rewards import REWARD_FUNCS

from .models import optimizer_name, precision, vllm_available
from .settings import reward_weights

# What decides the objective and the sampling; written to config.json as the trainer used them.
OBJECTIVE_FIELDS = (
    "loss_type", "beta", "epsilon", "epsilon_high", "mask_truncated_completions", "scale_rewards",
    "num_generations", "max_completion_length", "temperature", "top_p", "top_k", "min_p",
    "repetition_penalty", "reward_weights", "learning_rate", "per_device_train_batch_size",
    "gradient_accumulation_steps", "max_steps", "use_vllm", "vllm_importance_sampling_correction",
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
        **precision(),
    )


def grpo_config(settings: dict, output_dir: Path, backend: str, max_completion_length: int):
    """GRPO with the recipe's values; vLLM generation where it is installed and the backend can use it."""
    from trl import GRPOConfig

    extra = {}
    if backend == "unsloth" and settings["fast_inference"] and vllm_available():
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
    elif backend == "transformers" and settings["fast_inference"] and vllm_available() and not settings["smoke"]:
        extra.update(
            use_vllm=True,
            vllm_mode=settings["vllm_mode"],
            # TRL's colocated engine is a second model beside the training one: it gets its own, small share.
            vllm_gpu_memory_utilization=settings["colocate_vllm_memory"],
            vllm_max_model_length=settings["max_seq_length"],
        )
        if settings["vllm_server_url"]:
            extra["vllm_server_base_url"] = settings["vllm_server_url"]
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
        epsilon_high=settings["epsilon_high"] or settings["epsilon"],  # never None: Unsloth reads None as 0.28
        mask_truncated_completions=settings["mask_truncated_completions"],
        scale_rewards=settings["scale_rewards"],  # stated: Unsloth would change it for dr_grpo
        logging_nan_inf_filter=False,  # log a NaN loss as NaN, so the divergence guard sees it
        reward_weights=reward_weights(settings["reward_weights"], [f.__name__ for f in REWARD_FUNCS]),
        report_to=settings["report_to"],
        seed=settings["seed"],
        disable_tqdm=not sys.stderr.isatty(),
        ddp_find_unused_parameters=False,  # LoRA uses every adapter weight
        **precision(),
        **extra,
    )


def effective_objective(args) -> dict:
    """The objective and sampling fields as the trainer holds them (after any library's own defaults)."""
    return {name: getattr(args, name, None) for name in OBJECTIVE_FIELDS}
