"""Which engine generates the completions, and how much GPU memory vLLM gets: decided once, after the
tokenizer loads and before the model does, so a combination that cannot start costs seconds, not a load.

vLLM generates when it is installed, FAST_INFERENCE is on and a CUDA GPU is there, except:
  - with LOAD_IN_4BIT. vLLM 0.31 has no bitsandbytes of its own (it moved to the separate vllm-bnb-plugin
    package), so Unsloth's engine and TRL's colocated one both fail to start on a 4-bit model; and TRL's
    weight sync would merge LoRA into the 4-bit base and unmerge it again at every step, re-rounding the base
    weights each time. 4-bit runs generate with transformers instead, and say so (docs/gpu-path.md).
  - in --smoke runs on the transformers backend, whose tiny model generates faster without it.
On the transformers backend TRL's colocated engine is a second copy of the model beside the training one.
vLLM 0.31 takes its share of the GPU (COLOCATE_VLLM_MEMORY) as everything it may hold: the weights, the
activations of its profiling pass and the KV cache (vllm/v1/worker/gpu_worker.py:673-676), and refuses to
start when that leaves no cache for one full-length sequence (vllm/v1/core/kv_cache_utils.py:898-935). So the
share is sized here from the model's shape and the GPU's memory, or a share given by hand that is too small is
refused with the number needed. vLLM keeps that share for the whole run, so everything else the process puts on
the GPU must fit in the rest (colocated_plan): the training copy of the weights, training itself, the held-out
evaluation (transformers' generate with a KV cache of its own) and the CUDA context. The arithmetic is printed
in the run's log and by --check.
"""

from __future__ import annotations

import importlib.util
import math
import os

from .errors import SetupError

GIB = 2**30
# vLLM's own memory beyond weights and KV cache: the activations of its profiling pass over 4096 batched
# tokens (TRL's max_num_batched_tokens), CUDA graphs and non-torch allocations. An estimate from the sources,
# never measured on a GPU; it is why a computed share has room to spare rather than none.
VLLM_OVERHEAD_GIB = 2.0
# What training needs beside its own copy of the weights, at the least: LoRA, its optimizer state and the
# activations of one checkpointed micro-batch. Below this the run would start and then run out of memory.
TRAINING_HEADROOM_GIB = 2.0
# The CUDA context and the libraries' workspaces (cuBLAS, cuDNN) of the one process: an estimate, never
# measured here (no GPU); typical values are 0.3-0.6 GiB on recent cards.
CUDA_CONTEXT_GIB = 0.5

FOUR_BIT_WITHOUT_VLLM = (
    "--load-in-4bit: generating with transformers, not vLLM. vLLM 0.31 has no bitsandbytes of its own (it moved "
    "to the separate vllm-bnb-plugin package, never tested with this project), so a 4-bit model cannot start in "
    "it. Slower generation is the price of the smaller model; with 24 GB or more, 16-bit with vLLM is faster."
)


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_off_reason(settings: dict, backend: str) -> str:
    """Why vLLM does not generate in this run, in words; "" when it does."""
    return _vllm_off(settings, backend)[0]


def _vllm_off(settings: dict, backend: str) -> tuple[str, bool]:
    """(why vLLM does not generate, whether that is news to the user); ("", False) when it generates."""
    import torch

    if not settings["fast_inference"]:
        return "--fast-inference false", False
    if not torch.cuda.is_available():
        return "no CUDA GPU (vLLM needs one)", False
    if backend == "transformers" and settings["smoke"]:
        return "--smoke: the tiny model generates with transformers", False
    if not vllm_available():
        # a server is never the default: someone started one for this run. TRL 1.15 needs vLLM on this side
        # as well (trl/generation/vllm_generation.py:294 refuses without it; vllm_client.py:42-53 sends the
        # weights through vLLM's own transfer code)
        if settings["vllm_mode"] == "server":
            raise SetupError(
                "--vllm-mode server needs vLLM installed here too (TRL's client uses it to send the weights to "
                "the server at every step): pip install -r requirements-vllm.txt. Or generate in this process: "
                "--vllm-mode colocate, or --fast-inference false for transformers."
            )
        return "vLLM is not installed: generating with transformers (pip install -r requirements-vllm.txt)", True
    if settings["load_in_4bit"]:
        return FOUR_BIT_WITHOUT_VLLM, True
    return "", False


def plan_generation(settings: dict, backend: str) -> dict:
    """The generation settings as this run will use them: fast_inference (off where vLLM cannot generate,
    saying why when the user would expect it) and colocate_vllm_memory (sized when 0). Raises SetupError
    when TRL's colocated engine cannot fit beside the training model."""
    reason, news = _vllm_off(settings, backend)
    if news:
        print(reason)
    plan = {"fast_inference": not reason, "colocate_vllm_memory": settings["colocate_vllm_memory"]}
    if reason or backend != "transformers" or settings["vllm_mode"] != "colocate":
        return plan
    import torch

    device = int(os.environ.get("LOCAL_RANK", "0"))
    total = torch.cuda.get_device_properties(device).total_memory
    plan["colocate_vllm_memory"] = colocate_share(settings, colocated_plan(settings), total)
    return plan


def model_skeleton(model_name: str, trust_remote_code: bool = False, local_only: bool = False):
    """The model's modules built from its config alone, on the meta device: no weights read, no memory
    taken. For sizing vLLM's share here, and for checking LoRA targets before anything heavy loads
    (recipe/models.py). Raises OSError or ValueError when the config cannot be read (not on this machine
    with local_only, or unknown to this transformers)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_name, trust_remote_code=trust_remote_code, local_files_only=local_only)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)


def model_shape(settings: dict) -> tuple[int, int]:
    """(parameters, KV-cache bytes per token at 16 bits) of the model, counted on the meta device: nothing is
    downloaded but config.json."""
    shape = model_skeleton(settings["model_name"], settings["trust_remote_code"])
    parameters = sum(p.numel() for p in shape.parameters())
    text = shape.config.get_text_config()
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    return parameters, 2 * text.num_hidden_layers * kv_heads * head_dim * 2  # K and V, every layer, 2 bytes each


def colocated_vllm_bytes(settings: dict, shape: tuple[int, int] | None = None) -> dict:
    """{weights, kv_cache, overhead} in bytes for TRL's colocated engine: the model's 16-bit weights, the KV
    cache for every sequence of one generation batch at full length (TRL's max_num_seqs), and vLLM's own
    overhead."""
    parameters, per_token = shape or model_shape(settings)
    sequences = settings["per_device_batch"] * settings["gradient_accumulation"]  # TRL's max_num_seqs
    return {
        "weights": parameters * 2,
        "kv_cache": sequences * settings["max_seq_length"] * per_token,
        "overhead": int(VLLM_OVERHEAD_GIB * GIB),
    }


def evaluation_tokens(settings: dict) -> int:
    """The longest sequence of the held-out evaluation: the prompt limit (settings["max_prompt_length"], as the
    run resolved it; unknown, the whole --max-seq-length) plus --eval-max-new-tokens."""
    return (settings["max_prompt_length"] or settings["max_seq_length"]) + settings["eval_max_new_tokens"]


def colocated_plan(settings: dict) -> dict:
    """{"vllm": its share's parts, "beside": what the rest of the GPU must hold}, in bytes. Beside vLLM's share,
    for the whole run: the training copy of the 16-bit weights, training itself (TRAINING_HEADROOM_GIB), the
    held-out evaluation's KV cache (transformers' generate: --eval-batch-size sequences of evaluation_tokens;
    recipe/evaluate.py) and the CUDA context."""
    shape = model_shape(settings)
    vllm = colocated_vllm_bytes(settings, shape)
    beside = {
        "training weights": vllm["weights"],
        "training": int(TRAINING_HEADROOM_GIB * GIB),
        "evaluation": settings["eval_batch_size"] * evaluation_tokens(settings) * shape[1],
        "CUDA context": int(CUDA_CONTEXT_GIB * GIB),
    }
    return {"vllm": vllm, "beside": beside}


def describe_plan(settings: dict, plan: dict) -> str:
    """The arithmetic, in GiB, as the log and --check print it."""
    vllm, beside = ({k: v / GIB for k, v in plan[part].items()} for part in ("vllm", "beside"))
    sequences = settings["per_device_batch"] * settings["gradient_accumulation"]
    return (
        f"vLLM's share {sum(vllm.values()):.1f} GiB = {vllm['weights']:.1f} weights + {vllm['kv_cache']:.1f} KV cache "
        f"({sequences} sequences of {settings['max_seq_length']} tokens) + {vllm['overhead']:.1f} vLLM itself; "
        f"beside it {sum(beside.values()):.1f} GiB = {beside['training weights']:.1f} training copy of the weights + "
        f"{beside['training']:.1f} training + {beside['evaluation']:.1f} evaluation ({settings['eval_batch_size']} "
        f"sequences of {evaluation_tokens(settings)} tokens) + {beside['CUDA context']:.1f} CUDA context; "
        f"{(sum(vllm.values()) + sum(beside.values())):.1f} GiB in all"
    )


def colocate_share(settings: dict, plan: dict, total: int) -> float:
    """The share of the GPU to give TRL's colocated vLLM: its parts rounded up to a hundredth of `total`, or
    the one given by hand when it is at least that. Refuses when the rest of the GPU cannot hold everything
    else (colocated_plan's "beside")."""
    needed = math.ceil(100 * sum(plan["vllm"].values()) / total) / 100
    given = settings["colocate_vllm_memory"]
    breakdown = describe_plan(settings, plan)
    beside = sum(plan["beside"].values())

    def fits(share: float) -> bool:  # the rest of the GPU holds everything but vLLM
        return total * (1 - share) >= beside

    if not fits(needed):
        raise SetupError(
            f"TRL's colocated vLLM and the training beside it do not fit in this GPU's {total / GIB:.1f} GiB: "
            f"{breakdown}. Instead: the Unsloth backend on one GPU (one copy of the weights: --backend unsloth), "
            "vLLM on a GPU of its own (--vllm-mode server, see docs/several-gpus.md), --fast-inference false, a smaller "
            "--eval-batch-size, or a shorter --max-seq-length."
        )
    if not fits(given):
        raise SetupError(
            f"--colocate-vllm-memory {given} leaves too little of this GPU's {total / GIB:.1f} GiB for the rest: "
            f"{total * (1 - given) / GIB:.1f} GiB, which needs {beside / GIB:.1f}: pass 0 to size it ({needed:.2f}: "
            f"{breakdown})."
        )
    if given and given < needed:
        raise SetupError(
            f"--colocate-vllm-memory {given} is too small for TRL's colocated vLLM: it needs {needed:.2f} of this "
            f"GPU's {total / GIB:.1f} GiB ({breakdown}). Pass --colocate-vllm-memory {needed:.2f}, or 0 to size it "
            "from the model."
        )
    share = given or needed
    print(f"TRL's colocated vLLM gets {share:.2f} of the GPU's {total / GIB:.1f} GiB: {breakdown}")
    return share


def check_line(settings: dict, max_prompt_length: int) -> str | None:
    """--check's line on GPU memory for TRL's colocated vLLM (the transformers backend: --backend transformers,
    or several processes), or None when the run would not use it. Reads config.json only, when it is on this
    machine (a local folder or the Hugging Face cache)."""
    if settings["backend"] == "unsloth" or not settings["fast_inference"] or settings["vllm_mode"] != "colocate":
        return None
    if settings["load_in_4bit"]:
        return None  # generates with transformers (FOUR_BIT_WITHOUT_VLLM)
    settings = dict(settings, max_prompt_length=max_prompt_length)
    try:
        plan = colocated_plan(settings)
    except (OSError, ValueError) as e:
        return f"not estimated: {settings['model_name']}'s config.json is not readable here ({type(e).__name__})"
    need = sum(sum(part.values()) for part in plan.values())
    return (
        f"transformers backend with TRL's colocated vLLM needs a GPU of at least {need / GIB:.1f} GiB: "
        + describe_plan(settings, plan)
    )
