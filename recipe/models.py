"""Models: which backend runs, loading the model with LoRA (Unsloth, or transformers + PEFT), the
trainer's precision and optimizer for this machine, the CPU stand-in for TRL's GPU kernel, and saving.

On a CUDA GPU the recipe runs on Unsloth (its kernels, and vLLM generation when installed); elsewhere,
and with several processes, on plain transformers + PEFT with the same TRL trainers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import traceback
import warnings
from pathlib import Path

from .data import chat_template
from .errors import SetupError
from .runs import world_size

CUDA13_DRIVER = "580"  # the oldest NVIDIA driver branch that runs CUDA 13 builds (the pinned torch 2.13.0's)


def cuda_available() -> tuple[bool, str]:
    """(whether torch can use a CUDA GPU, and if not, why, in words a user can act on)."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if torch.cuda.is_available():
            return True, ""
    said = " ".join(str(w.message).split()[:40] for w in caught if "driver" in str(w.message).lower())
    gpu_present = shutil.which("nvidia-smi") is not None
    if not gpu_present:
        return False, "no CUDA GPU found (torch sees none, and nvidia-smi is not installed)."
    if torch.version.cuda is None:
        return False, (
            f"an NVIDIA GPU seems present (nvidia-smi is installed), but this torch ({torch.__version__}) is a "
            "CPU-only build. Install the GPU set in a fresh environment: pip install -r requirements.txt"
        )
    return False, (
        f"an NVIDIA GPU seems present (nvidia-smi is installed), but torch {torch.__version__}, built for "
        f"CUDA {torch.version.cuda}, cannot use it. {said} The pinned torch needs NVIDIA driver "
        f"{CUDA13_DRIVER} or newer: check `nvidia-smi`, update the driver, or install a torch build for your "
        "CUDA version (https://pytorch.org/get-started/locally/) together with matching Unsloth and vLLM."
    )


def choose_backend(wanted: str, needs_gpu: bool) -> str:
    """unsloth on a CUDA GPU, transformers otherwise; a job that needs a GPU stops here without one.

    Imports Unsloth when chosen, before anything imports trl or transformers, so it can patch them,
    then checks that the training libraries import."""
    has_cuda, why_not = cuda_available()
    if not has_cuda and needs_gpu:
        raise SetupError(
            f"{why_not}\nThe real run trains a 4B model and needs a CUDA GPU (24 GB or more; see README.md).\n"
            "To run the whole recipe on this machine with a tiny model instead: python train_grpo.py --smoke"
        )
    if wanted == "unsloth" and not has_cuda:
        raise SetupError(f"--backend unsloth needs a CUDA GPU: {why_not} Use --backend transformers here.")
    if wanted == "auto":
        wanted = "unsloth" if has_cuda else "transformers"
    if wanted == "unsloth" and world_size() > 1:
        print("Unsloth trains on one GPU; with several processes the transformers + PEFT backend is used.")
        wanted = "transformers"
    if wanted == "unsloth":
        import_unsloth()
    check_libraries()
    return wanted


def import_unsloth() -> None:
    """`import unsloth`, which must come before trl and transformers: it patches their trainers."""
    import sys

    late = [name for name in ("trl", "transformers", "peft") if name in sys.modules]
    if late:
        print(f"warning: {', '.join(late)} imported before Unsloth; its patches may not apply")
    try:
        import unsloth  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure: say what to reinstall
        raise SetupError(
            f"Unsloth does not import ({type(e).__name__}: {str(e)[:300]}). On a CUDA GPU, reinstall it with "
            "`pip install -r requirements.txt` in a fresh environment, or run without it: --backend transformers"
        ) from None


def check_libraries() -> None:
    """Import the training libraries once, so a broken install ends in advice rather than a traceback."""
    try:
        import peft  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure: say what to reinstall
        details = "".join(traceback.format_exception(e))
        if "torchvision" in details:
            raise SetupError(
                "transformers cannot be imported because torchvision does not match this torch. requirements.txt "
                "installs Unsloth's CUDA build of torchvision, which fails on a machine without a GPU. Here, run "
                "`pip uninstall -y torchvision`, or set up a fresh environment with requirements-test.txt."
            ) from None
        raise SetupError(
            f"the training libraries do not import ({type(e).__name__}: {e}). Reinstall them: "
            "pip install -r requirements.txt on a GPU machine, pip install -r requirements-test.txt elsewhere."
        ) from None


@contextlib.contextmanager
def advice_on_load_failure(name: str):
    """A wrong name, an unreachable hub or a broken folder ends in advice; running out of memory does not
    (Unsloth reports a bad name as RuntimeError, transformers as OSError or ValueError)."""
    import torch

    try:
        yield
    except (OSError, ValueError, RuntimeError) as e:
        if isinstance(e, torch.OutOfMemoryError):
            raise
        raise SetupError(
            f"could not load model {name!r}: {type(e).__name__}: {str(e)[:300]}\n"
            "Check the name. Without hub access, download it elsewhere (hf download NAME --local-dir DIR) "
            "and pass --model-name DIR."
        ) from None


def load_tokenizer(model_name: str, trust_remote_code: bool = False):
    """The tokenizer alone (cheap), with the recipe's chat template, so data checks run before the model."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name, trust_remote_code=trust_remote_code)
    except Exception as e:  # noqa: BLE001 - offline, typo, gated: say which name and how to fix it
        raise SetupError(
            f"could not load the tokenizer of {model_name!r}: {type(e).__name__}: {str(e)[:300]}\n"
            "If this machine cannot reach the Hugging Face Hub, download the model elsewhere "
            "(hf download NAME --local-dir DIR) and pass --model-name DIR."
        ) from None
    return with_recipe_template(tokenizer)


def with_recipe_template(tokenizer):
    tokenizer.chat_template = chat_template()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(settings: dict, backend: str, tokenizer, adapter: str | None = None):
    """(model with LoRA, tokenizer) from settings["model_name"], a hub name or a local folder.

    With `adapter`, that saved adapter is loaded (not trainable) instead of a fresh LoRA."""
    if backend == "unsloth":
        return _load_unsloth(settings, adapter)  # Unsloth loads (and may fix) its own tokenizer
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    kwargs = {"dtype": torch.bfloat16 if cuda else torch.float32, "trust_remote_code": settings["trust_remote_code"]}
    if cuda:
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # this process's GPU
    if settings["load_in_4bit"]:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    with advice_on_load_failure(settings["model_name"]):
        model = AutoModelForCausalLM.from_pretrained(settings["model_name"], **kwargs)
    if settings["load_in_4bit"] and not adapter:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    if adapter:
        return PeftModel.from_pretrained(model, adapter, is_trainable=False), tokenizer
    lora = LoraConfig(
        r=settings["lora_rank"],
        lora_alpha=settings["lora_alpha"],
        lora_dropout=0.0,
        bias="none",
        target_modules=settings["lora_targets"].split(","),
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(settings["seed"])
    model = get_peft_model(model, lora)
    if cuda:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return model, tokenizer


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def _load_unsloth(settings: dict, adapter: str | None):
    """Unsloth's path: its kernels, 16-bit or 4-bit LoRA, vLLM fast inference when installed."""
    from unsloth import FastLanguageModel  # imported first by choose_backend, so it has patched trl

    fast = settings["fast_inference"] and vllm_available()
    if settings["fast_inference"] and not fast:
        print(
            "vLLM is not installed: generating with Unsloth's transformers path (pip install -r requirements-vllm.txt)"
        )
    with advice_on_load_failure(adapter or settings["model_name"]):
        model, unsloth_tokenizer = FastLanguageModel.from_pretrained(
            model_name=adapter or settings["model_name"],
            max_seq_length=settings["max_seq_length"],
            load_in_4bit=settings["load_in_4bit"],
            fast_inference=fast,
            max_lora_rank=settings["lora_rank"],
            gpu_memory_utilization=settings["gpu_memory_utilization"],
            trust_remote_code=settings["trust_remote_code"],
        )
    unsloth_tokenizer = with_recipe_template(unsloth_tokenizer)  # keeps Unsloth's own pad token if it set one
    if adapter:
        return model, unsloth_tokenizer
    model = FastLanguageModel.get_peft_model(
        model,
        r=settings["lora_rank"],
        lora_alpha=settings["lora_alpha"],
        target_modules=settings["lora_targets"].split(","),
        use_gradient_checkpointing="unsloth",  # offloads activations; long completions fit
        random_state=settings["seed"],
    )
    return model, unsloth_tokenizer


def uses_fast_generate(model) -> bool:
    """True when the model carries Unsloth's vLLM engine (FAST_INFERENCE with vLLM installed)."""
    return (
        getattr(model, "vllm_engine", None) is not None
        or getattr(getattr(model, "base_model", None), "vllm_engine", None) is not None
    )


class PlainLogProbs:
    """PyTorch stand-in for TRL 1.15's fused LM-head kernel, which is written in Triton for GPUs.

    Both trainers score tokens through `trl.trainer.utils._ChunkedLogProbFunction.apply(hidden, weight,
    bias, targets, temperature, chunk_size, softcap, logit_scale, outputs)`; without a GPU this computes
    the same five outputs from full logits (fine for the tiny models that run on a CPU).
    """

    @staticmethod
    def apply(
        hidden, weight, bias, targets, temperature, chunk_size, softcap=None, logit_scale=1.0, outputs=("log_probs",)
    ):
        import torch.nn.functional as F

        logits = F.linear(hidden.float(), weight.float(), None if bias is None else bias.float()) * logit_scale
        if softcap:
            logits = softcap * (logits / softcap).tanh()
        logits = logits / temperature  # (N, V)
        log_p = logits.log_softmax(-1)
        log_probs = log_p.gather(-1, targets[:, None]).squeeze(-1)  # (N,)
        entropy = -(log_p.exp() * log_p).sum(-1) if "entropy" in outputs else None
        log_sum_sq = (2 * log_p).logsumexp(-1).detach() if "log_sum_sq_probs" in outputs else None
        mean_logits = logits.mean(-1).detach() if "mean_logits" in outputs else None
        is_top1 = (logits.argmax(-1) == targets) if "is_top1" in outputs else None
        return log_probs, entropy, log_sum_sq, mean_logits, is_top1


def use_plain_logprobs_without_gpu() -> None:
    """Swap TRL's Triton LM-head kernel for PlainLogProbs when there is no CUDA GPU to run it."""
    import torch
    import trl.trainer.utils

    if not torch.cuda.is_available():
        trl.trainer.utils._ChunkedLogProbFunction = PlainLogProbs


def precision() -> dict:
    """Trainer precision and device flags for this machine."""
    import torch

    if not torch.cuda.is_available():
        return {"use_cpu": True, "bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def optimizer_name(wanted: str) -> str:
    import torch

    if "8bit" in wanted and not torch.cuda.is_available():
        return "adamw_torch"  # bitsandbytes' 8-bit Adam needs CUDA
    return wanted


def save_adapter(model, tokenizer, path: Path) -> Path:
    """The active LoRA adapter in PEFT format, with the tokenizer and its chat template beside it."""
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def check_export(how: str, backend: str) -> None:
    """Called before any work is done: a GGUF export is Unsloth's (it builds llama.cpp)."""
    if how == "gguf" and backend != "unsloth":
        raise SetupError("--export gguf needs the Unsloth backend (a CUDA GPU); use --export merged here")


def export_model(model, tokenizer, base: str, adapter: Path, how: str, backend: str, folder: Path) -> Path:
    """What users take away besides the adapter: `merged`, a full 16-bit model that loads with plain
    AutoModelForCausalLM, or `gguf` (Unsloth, for llama.cpp and Ollama). Returns the folder written."""
    check_export(how, backend)
    if how == "gguf":
        model.save_pretrained_gguf(str(folder), tokenizer, quantization_method="q4_k_m")
        return folder
    if backend == "unsloth":
        model.save_pretrained_merged(str(folder), tokenizer, save_method="merged_16bit")
        return folder
    return merge_adapter(base, adapter, folder)


def merge_adapter(base: str, adapter: Path, folder: Path) -> Path:
    """PEFT's merge: the base model in its own precision on the CPU (the GPU keeps what it holds),
    the adapter added into its weights, saved with the tokenizer and chat template."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with advice_on_load_failure(base):
        model = AutoModelForCausalLM.from_pretrained(base, dtype="auto", device_map={"": "cpu"})
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(folder))
    return folder
