"""Models: which backend runs, loading the model with LoRA (Unsloth, or transformers + PEFT), the
trainer's precision and optimizer for this machine, the CPU stand-in for TRL's GPU kernel, and saving
the adapter (merged and GGUF exports: export.py).

On a CUDA GPU the recipe runs on Unsloth (its kernels, and vLLM generation when installed); elsewhere,
and with several processes, on plain transformers + PEFT with the same TRL trainers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import traceback
import warnings
from pathlib import Path

from .data import chat_template, hub_unreachable, require_eos
from .errors import SetupError
from .generation import model_skeleton, vllm_available, vllm_off_reason  # noqa: F401 - vllm_available: recipe.models' API
from .runs import atomic_path, cuda_oom_advice, world_size

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
    quiet_known_noise()
    if not has_cuda and needs_gpu and wanted == "transformers":  # asked for by name: go on, and say the cost
        print(
            f"{why_not}\n--backend transformers: running on the CPU, as asked. This is for checking a small "
            "local model (--model-name DIR) before renting a GPU, not for training one: the weights load in "
            "float32 (4 bytes a parameter, 16 GB for a 4B model before activations) and every completion is "
            "generated token by token. The settings' defaults are sized for a GPU; shorten the run, e.g. "
            "--max-steps 2 --priming-max-rows 4 --eval-size 4 --max-completion-length 32 --eval-max-new-tokens 32"
        )
        needs_gpu = False
    if not has_cuda and needs_gpu:
        check_libraries(why_not)  # advise --smoke only where it would run: the libraries must import here
        raise SetupError(
            f"{why_not}\nThe real run trains a 4B model and needs a CUDA GPU (24 GB or more; see "
            "docs/smaller-gpus-and-other-models.md).\n"
            "To run the whole recipe on this machine with a tiny model instead: python train_grpo.py --smoke\n"
            "To check your settings and data first, on this machine: python train_grpo.py --check"
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


class _DropMessages(logging.Filter):
    def __init__(self, *fragments: str):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(f in record.getMessage() for f in self.fragments)


def quiet_known_noise() -> None:
    """Drop two kinds of start-up lines that need no action, before the libraries are imported.

    - torchao 0.18 (pulled in by Unsloth, imported by transformers' quantizers) registers its enums with
      torch's pytree, and torch 2.13 warns that this is deprecated (torch/utils/_pytree.py); harmless.
    - With a CPU build of torch, torchao cannot load its CUDA kernels and logs "Failed to load
      ..._C_*.so" for each (torchao/__init__.py); nothing here uses them. With a CUDA torch the same
      line would mean a broken install, so it is kept there."""
    import torch

    noise = {"torch.utils._pytree": "is an Enum subclass and is now natively"}
    if torch.version.cuda is None:
        noise["torchao"] = "Failed to load"
    for name, fragment in noise.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):  # once, however often it is called
            logger.addFilter(_DropMessages(fragment))


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


CPU_SETUP = (
    "python3 -m venv .venv-cpu && . .venv-cpu/bin/activate && "
    "pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements-test.txt"
)  # the CPU build of torch (192 MB) rather than PyPI's CUDA one (2.7 GB with its libraries); docs/setup.md


def check_libraries(no_gpu: str = "") -> None:
    """Import the training libraries once, so a broken install ends in advice rather than a traceback.
    `no_gpu`: why there is no GPU, when the caller found none (the advice then leads to a CPU setup)."""
    try:
        import peft  # noqa: F401
        import transformers  # noqa: F401
        import trl  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure: say what to reinstall
        details = "".join(traceback.format_exception(e))
        first = f"{no_gpu}\n" if no_gpu else ""
        if "torchvision" in details:
            raise SetupError(
                f"{first}transformers and peft cannot be imported here: torchvision does not match this torch. "
                "This environment holds the GPU set (requirements.txt), whose CUDA build of torchvision (pulled "
                "by Unsloth) fails on a machine without a GPU. For the smoke run and the tests on this machine, "
                f"make a CPU environment beside it:\n  {CPU_SETUP}\nthen: python train_grpo.py --smoke "
                "(or --check). On a GPU machine, install requirements.txt in a fresh environment."
            ) from None
        raise SetupError(
            f"{first}the training libraries do not import ({type(e).__name__}: {str(e)[:300]}). Reinstall them "
            "in a fresh environment: pip install -r requirements.txt on a GPU machine; elsewhere:\n"
            f"  {CPU_SETUP}"
        ) from None


# How the libraries word the load failures a user can act on, matched in lower case against the error and
# its cause. Memory: torch ("CUDA out of memory"), vLLM 0.31 ("No available memory for the cache blocks",
# "... KV cache is needed", "Free memory on device ... is less than desired GPU memory utilization"), which
# Unsloth re-raises as RuntimeError after its retries (unsloth_zoo/vllm_utils.py:4929-4966). Packages: Unsloth
# names the pip command ("`pip install vllm-bnb-plugin` for load_in_4bit", vllm_utils.py:4135; "update
# transformers via `pip install --upgrade transformers`", unsloth/models/loader.py:1446). Names: Unsloth's
# "Failed to load model. Both AutoConfig and PeftConfig loading failed" (loader.py:1513); transformers and the
# hub raise OSError.
OUT_OF_MEMORY_SIGNS = (
    "out of memory", "no available memory for the cache", "kv cache is needed",
    "less than desired gpu memory utilization", "not enough memory", "insufficient memory", "failed to allocate",
)  # fmt: skip
MISSING_PACKAGE_SIGNS = ("pip install", "no module named")
NAME_SIGNS = (
    "failed to load model", "not a valid model identifier", "is not a local folder", "repository not found",
    "does not appear to have", "couldn't connect", "unrecognized model", "gated",
)  # fmt: skip


def load_failure_kind(error: BaseException) -> str:
    """What a failed model load calls for: "memory", "package", "name" (a wrong name, a gated model, no hub),
    or "other" (anything else, which keeps its traceback)."""
    import torch

    text = f"{error} {error.__cause__ or ''}".lower()
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)) or any(s in text for s in OUT_OF_MEMORY_SIGNS):
        return "memory"
    if isinstance(error, ImportError) or any(s in text for s in MISSING_PACKAGE_SIGNS):
        return "package"
    if isinstance(error, OSError) or any(s in text for s in NAME_SIGNS):
        return "name"
    return "other"


@contextlib.contextmanager
def advice_on_load_failure(name: str, settings: dict | None = None):
    """A model that cannot be loaded ends in the advice its cause calls for, with the library's own message:
    out of memory (what to lower), a missing package (what to install), a wrong name or no hub (how to use a
    local copy). Unsloth wraps all three in RuntimeError, so the type alone cannot tell them apart."""
    try:
        yield
    except (OSError, ValueError, RuntimeError, ImportError, MemoryError) as e:
        kind = load_failure_kind(e)
        said = f"{type(e).__name__}: {e}"
        if "trust_remote_code" in said:  # transformers refuses a repository's own code unless asked
            raise SetupError(
                f"{name!r} comes with its own model code, which runs only if you ask for it: read that code, "
                f"then pass --trust-remote-code true.\n{said}"
            ) from None
        if kind == "memory":
            advice = cuda_oom_advice(settings) if settings else "Lower --max-seq-length, or --load-in-4bit true."
            if "less than desired" in said.lower():
                advice = (
                    "vLLM asked for a larger share of the GPU than is free: lower --gpu-memory-utilization "
                    "(Unsloth) or --colocate-vllm-memory (transformers backend), or free the GPU (nvidia-smi "
                    "lists what holds it)."
                )
            elif "kv cache" in said.lower() or "for the cache" in said.lower():
                advice = (
                    "vLLM's share holds the weights and the KV cache for at least one full-length sequence, and "
                    "too little was left for the cache: raise --gpu-memory-utilization (Unsloth) or "
                    "--colocate-vllm-memory (transformers backend), or lower --max-seq-length."
                )
            raise SetupError(f"out of GPU memory loading {name!r}:\n{said}\n{advice}") from None
        if kind == "package":
            raise SetupError(
                f"could not load {name!r}: a package is missing or does not match:\n{said}\nInstall the pinned "
                "set in a fresh environment (pip install -r requirements.txt, or requirements-vllm.txt for vLLM); "
                "the message above names what is missing."
            ) from None
        if kind == "name":
            raise SetupError(
                f"could not load model {name!r}:\n{said}\nCheck the name. Without hub access, download it "
                "elsewhere (hf download NAME --local-dir DIR) and pass --model-name DIR."
            ) from None
        raise


def load_tokenizer(model_name: str, trust_remote_code: bool = False):
    """The tokenizer alone (cheap), with the recipe's chat template, so data checks run before the model."""
    from transformers import AutoTokenizer

    folder = Path(model_name).expanduser()
    if folder.is_dir() and not any(any(folder.glob(pattern)) for pattern in VOCABULARY_FILES):
        # transformers 5.17 would build an empty tokenizer (one token) from config.json alone, and say nothing
        raise SetupError(missing_tokenizer_files(folder))
    unreachable = None if folder.exists() else hub_unreachable()
    try:  # without the hub, this machine's cache at once instead of retries (transformers' local_files_only)
        tokenizer = AutoTokenizer.from_pretrained(
            model_name, trust_remote_code=trust_remote_code, local_files_only=bool(unreachable)
        )
    except Exception as e:  # noqa: BLE001 - offline, typo, gated: say which name and how to fix it
        if folder.is_dir():  # a local folder: the hub is not the fix
            raise SetupError(missing_tokenizer_files(folder, e)) from None
        if unreachable:
            raise SetupError(
                f"the tokenizer of {model_name!r} is not in this machine's Hugging Face cache, and the hub cannot "
                f"be reached ({unreachable}). Download the model where there is a network (hf download NAME "
                "--local-dir DIR) and pass --model-name DIR; python train_grpo.py --smoke runs the recipe with "
                "its own tiny model."
            ) from None
        raise SetupError(
            f"could not load the tokenizer of {model_name!r}: {type(e).__name__}: {str(e)[:300]}\n"
            "If this machine cannot reach the Hugging Face Hub, download the model elsewhere "
            "(hf download NAME --local-dir DIR) and pass --model-name DIR."
        ) from None
    return with_recipe_template(tokenizer)


VOCABULARY_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "*.tiktoken")  # one of them


def missing_tokenizer_files(folder: Path, error: Exception | None = None) -> str:
    """What to do when a local model folder holds no usable tokenizer."""
    said = f": {type(error).__name__}: {str(error)[:200]}" if error else " (no vocabulary file)"
    return (
        f"the model folder {folder} has no tokenizer files{said}\n"
        "A model folder needs the tokenizer beside the weights (tokenizer.json or tokenizer.model, with "
        "tokenizer_config.json and special_tokens_map.json). Copy them from where the model came from "
        "(hf download NAME --include '*.json' --include '*.model' --include '*.txt' --local-dir DIR), or save "
        "them from Python: AutoTokenizer.from_pretrained(NAME).save_pretrained(DIR)."
    )


def with_recipe_template(tokenizer):
    """The recipe's chat template, opening with the model's bos when its tokenizer adds one to plain
    text (Llama, Gemma, Mistral; not Qwen). Every path tokenizes the rendered template without special
    tokens, so this is where the one bos comes from (chat_template's docstring)."""
    require_eos(tokenizer)
    tokenizer.chat_template = chat_template(bos=adds_bos(tokenizer))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts its bos in front of plain text, i.e. its model was trained with one.
    Asked of what the tokenizer does, not of its add_bos_token flag, which some tokenizers leave unset
    while their post-processor adds one (and Unsloth asks the same way)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("1", add_special_tokens=True)["input_ids"][:1] == [bos]


def end_token_ids(model, tokenizer) -> list[int]:
    """The tokens that end a completion, in training and in the comparison alike: the tokenizer's eos and
    every eos id of the model's generation config (Gemma 3's <end_of_turn>, Phi-3's <|end|>), the set
    TRL 1.15's GRPOTrainer stops and masks at (trl/trainer/grpo_trainer.py:397-405) and vLLM adds to its
    stop tokens from the same generation config (SamplingParams.update_from_generation_config)."""
    declared = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    declared = [] if declared is None else [declared] if isinstance(declared, int) else list(declared)
    return declared if tokenizer.eos_token_id in declared else [tokenizer.eos_token_id, *declared]


def load_model(settings: dict, backend: str, tokenizer, adapter: str | None = None):
    """(model with LoRA, tokenizer) from settings["model_name"], a hub name or a local folder.

    With `adapter`, that saved adapter is loaded (not trainable) instead of a fresh LoRA."""
    if backend == "unsloth":
        return _load_unsloth(settings, adapter)  # Unsloth loads (and may fix) its own tokenizer
    import torch
    from peft import PeftModel, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    kwargs = {"dtype": compute_dtype(), "trust_remote_code": settings["trust_remote_code"]}
    if cuda:
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # this process's GPU
    if settings["load_in_4bit"]:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype()
        )
    with advice_on_load_failure(settings["model_name"], settings):
        config = AutoConfig.from_pretrained(settings["model_name"], trust_remote_code=settings["trust_remote_code"])
        attention = attention_for(config)
        if attention:
            kwargs["attn_implementation"] = attention
        model = AutoModelForCausalLM.from_pretrained(settings["model_name"], config=config, **kwargs)
    print(f"attention: {model.config._attn_implementation}{attention_reason(config)}")
    recipe_decoding_only(model)
    if settings["load_in_4bit"] and not adapter:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    if adapter:
        return PeftModel.from_pretrained(model, adapter, is_trainable=False), tokenizer
    targets = lora_targets(model, settings)
    torch.manual_seed(settings["seed"])
    model = get_peft_model(model, lora_config(settings, targets))
    print_coverage(lora_coverage(model), targets)
    if cuda:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return model, tokenizer


# Attention: transformers 5.17 picks sdpa where a model supports it, and its sdpa path has no soft-capping of
# the attention scores (transformers/integrations/sdpa_attention.py takes no softcap; the eager function of
# Gemma 2 applies it, models/gemma2/modeling_gemma2.py:203-206). A family whose config caps the scores
# (Gemma 2: attn_logit_softcapping 50.0) is loaded with eager attention, which computes it; every other
# family keeps transformers' choice.
def attention_for(config) -> str | None:
    """The attention implementation the model must be loaded with, or None for transformers' own choice."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return "eager" if getattr(text, "attn_logit_softcapping", None) is not None else None


def attention_reason(config) -> str:
    if attention_for(config) == "eager":
        return " (the model caps its attention scores, attn_logit_softcapping; only eager attention computes that)"
    return " (transformers' choice for this model)"


# Decoding: a model folder's generation_config.json may carry sampling settings (repetition_penalty, top_k,
# temperature, ...), and transformers' generate() fills every field the caller leaves unset from it
# (transformers/generation/utils.py:1929-1937), GRPO's sampling included. The recipe decodes only with its
# own settings (recipe/evaluate.py: decoding), so the folder's config keeps its token ids and nothing else.
TOKEN_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


def recipe_decoding_only(model) -> None:
    """Replace the model's generation config by one that holds only its token ids (its end tokens stay: GRPO,
    the comparison and vLLM all stop at them, end_token_ids), and say what was dropped."""
    from transformers import GenerationConfig

    current = getattr(model, "generation_config", None)
    if current is None:
        return
    kept = {k: getattr(current, k, None) for k in TOKEN_FIELDS if getattr(current, k, None) is not None}
    dropped = {k: v for k, v in current.to_diff_dict().items() if k not in TOKEN_FIELDS and k != "transformers_version"}
    model.generation_config = GenerationConfig(**kept)
    if dropped:
        said = ", ".join(f"{k}={v}" for k, v in sorted(dropped.items()))
        print(
            f"decoding: the model's generation_config.json sets {said}; not used: GRPO, the held-out curve and "
            "the comparison decode with the recipe's settings only (TEMPERATURE, TOP_P, MIN_P; greedy)"
        )


class LoraTargets:
    """What LoRA wraps: linear layers by name (PEFT's target_modules) and the fused expert weights of a
    mixture-of-experts model, stored as 3-D parameters rather than Linear layers (PEFT's target_parameters)."""

    def __init__(self, modules: list[str], parameters: list[str]):
        self.modules, self.parameters = modules, parameters

    def names(self) -> list[str]:
        return [*self.modules, *self.parameters]


def expert_parameters(model) -> list[str]:
    """`experts.<name>` for each fused expert weight (a 3-D parameter of a module named experts: Qwen3-MoE,
    Mixtral, Qwen3-Next, gpt-oss in transformers 5), which PEFT 0.21 wraps through target_parameters
    (peft/tuners/lora/layer.py, ParamWrapper)."""
    found = set()
    for name, parameter in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        if parameter.ndim == 3 and owner.rsplit(".", 1)[-1] == "experts":
            found.add(f"experts.{leaf}")
    return sorted(found)


def lora_targets(model, settings: dict) -> LoraTargets:
    """The layers (and expert weights) LoRA wraps in this model, checked against it before PEFT sees them.

    "Every projection" is the default (the recipe's seven names, not changed on the command line) and
    LORA_TARGETS "all-linear": every linear layer but the output head, by PEFT's own rule, and on a
    mixture-of-experts model the experts' fused weights too. So the default follows the architecture: Phi-3's
    fused qkv_proj and gate_up_proj, a hybrid's linear-attention projections (Qwen3-Next), a MoE's experts.
    Named layers must each match a module or an expert weight, or the run stops here: PEFT warns only when
    none matches, and would train the rest."""
    from peft import LoraConfig
    from peft.tuners.tuners_utils import _maybe_include_all_linear_layers

    every = _maybe_include_all_linear_layers(LoraConfig(target_modules="all-linear", task_type="CAUSAL_LM"), model)
    linear = sorted({name.rsplit(".", 1)[-1] for name in every.target_modules})
    experts = expert_parameters(model)
    everything = LoraTargets(linear, experts)
    wanted = [name.strip() for name in settings["lora_targets"].split(",") if name.strip()]
    if [name.lower() for name in wanted] == ["all-linear"]:
        return everything
    modules = [name for name, _ in model.named_modules()]
    parameters = [name for name, p in model.named_parameters() if p.ndim == 3]

    def matches(names, w):
        return any(name == w or name.endswith("." + w) for name in names)

    chosen = LoraTargets([w for w in wanted if matches(modules, w)], [w for w in wanted if matches(parameters, w)])
    missing = [w for w in wanted if w not in chosen.names()]
    kind = type(model).__name__
    if "lora_targets" not in settings.get("explicit", ()):  # the default means every projection
        if not missing and set(linear) <= set(chosen.modules) and not experts:
            return chosen
        left_out = [n for n in everything.names() if n not in chosen.names()]
        print(
            f"LoRA: every projection of {kind} is {', '.join(everything.names())}"
            + (f" (the default names lack {', '.join(missing)})" if missing else "")
            + (f"; beyond the default names: {', '.join(left_out)}" if left_out else "")
            + ". To train fewer, name them: --lora-targets NAME,NAME"
        )
        return everything
    if missing:
        raise SetupError(
            f"--lora-targets names {', '.join(missing)}, which match no layer of {kind}. Its linear layers are: "
            f"{', '.join(linear)}"
            + (f"; its experts' fused weights: {', '.join(experts)}" if experts else "")
            + ". Name those you want, or pass --lora-targets all-linear (all of them)."
        )
    return chosen


def lora_config(settings: dict, targets: LoraTargets):
    """PEFT's LoRA config for these targets: one place, for the run and for --check's dry run alike."""
    from peft import LoraConfig

    return LoraConfig(
        r=settings["lora_rank"],
        lora_alpha=settings["lora_alpha"],
        lora_dropout=0.0,
        bias="none",
        target_modules=targets.modules,
        target_parameters=targets.parameters or None,
        task_type="CAUSAL_LM",
    )


def planned_lora(model, settings: dict) -> dict:
    """lora_coverage of LoRA applied as the run would apply it, to a model built without weights
    (model_skeleton): what --check reports and the run refuses before it writes anything. Raises SetupError
    for targets that match nothing."""
    import contextlib
    import io

    from peft import get_peft_model

    with contextlib.redirect_stdout(io.StringIO()):  # the run itself prints what lora_targets decided
        targets = lora_targets(model, settings)
    coverage = lora_coverage(get_peft_model(model, lora_config(settings, targets)))
    return {"targets": targets.names(), **coverage, "not_wrapped": not_wrapped(targets, coverage)}


def lora_before_loading(settings: dict) -> dict:
    """planned_lora for the run, before its folder exists: the model built from its config (fetched from the
    hub when not local: a few KB), so targets that match nothing cost seconds and leave nothing behind."""
    with advice_on_load_failure(settings["model_name"], settings):
        model = model_skeleton(settings["model_name"], settings["trust_remote_code"])
    return planned_lora(model, settings)


def lora_coverage(model) -> dict:
    """What LoRA actually wraps, for config.json: each wrapped layer's name and how many of it (an expert
    weight as experts.NAME), the same per layer type (full and sliding attention, linear attention: a hybrid
    model's layers differ), and the trainable parameters against all of the model's (PEFT's count, which
    knows 4-bit packing)."""
    from collections import Counter

    from peft.tuners.tuners_utils import BaseTunerLayer

    def wrapped_name(name: str, module) -> str:
        parameter = getattr(module, "parameter_name", None)  # PEFT's ParamWrapper: one expert weight
        while name.endswith(".base_layer"):  # two expert weights of one module: wrappers nest
            name = name.removesuffix(".base_layer")
        leaf = name.rsplit(".", 1)[-1]
        return f"{leaf}.{parameter}" if parameter else leaf

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    layer_types = getattr(config, "layer_types", None) or []
    wrapped, per_type = Counter(), {}
    layers_of_type = Counter(layer_types) if layer_types else Counter({"decoder": config.num_hidden_layers})
    for name, module in base.named_modules():
        if not isinstance(module, BaseTunerLayer):
            continue
        short = wrapped_name(name, module)
        wrapped[short] += 1
        index = _layer_index(name)
        kind = layer_types[index] if index is not None and index < len(layer_types) else "decoder"
        per_type.setdefault(kind, Counter())[short] += 1
    trainable, total = model.get_nb_trainable_parameters()
    return {
        "wrapped_modules": dict(sorted(wrapped.items())),
        "per_layer_type": {
            kind: {"layers": count, "wrapped": dict(sorted(per_type.get(kind, {}).items()))}
            for kind, count in layers_of_type.items()
        },
        "trainable_parameters": trainable,
        "all_parameters": total,
    }


def _layer_index(name: str) -> int | None:
    """N of the first ".layers.N." in a module name: the decoder layer it belongs to."""
    parts = name.split(".")
    for before, after in zip(parts, parts[1:], strict=False):
        if before == "layers" and after.isdigit():
            return int(after)
    return None


def not_wrapped(targets: LoraTargets, coverage: dict) -> list[str]:
    """Targets PEFT wrapped nowhere. On the mixture-of-experts types that transformers 5 converts (Mixtral,
    Qwen2/3-MoE, Qwen3-Next, ...), PEFT 0.21 reads gate_proj, up_proj and down_proj as the experts' fused weights
    and drops them from the module targets (peft/utils/transformers_weight_conversion.py, _convert_peft_config_moe),
    so Qwen3-Next's shared expert keeps its own projections untrained."""
    return [name for name in targets.names() if name not in coverage["wrapped_modules"]]


def print_coverage(coverage: dict, targets: LoraTargets | None = None) -> None:
    """LoRA's reach, one line per layer type: a hybrid model whose attention LoRA lands in 1 layer of 4
    says so here, and so does a target PEFT wrapped nowhere."""
    share = 100 * coverage["trainable_parameters"] / max(coverage["all_parameters"], 1)
    print(f"LoRA: {coverage['trainable_parameters']:,} trainable parameters ({share:.2f} %)")
    for kind, seen in coverage["per_layer_type"].items():
        layers = seen["layers"]
        names = ", ".join(f"{n} x{c}" if c != layers else n for n, c in seen["wrapped"].items()) or "nothing"
        print(f"  {layers} {kind} layer(s): {names}")
    missing = not_wrapped(targets, coverage) if targets else []
    if missing:
        print(
            f"  not wrapped anywhere, although targeted: {', '.join(missing)} (PEFT 0.21 takes gate_proj, up_proj "
            "and down_proj on this mixture-of-experts model for its experts' fused weights)"
        )


def _load_unsloth(settings: dict, adapter: str | None):
    """Unsloth's path: its kernels, 16-bit or 4-bit LoRA, vLLM fast inference when installed."""
    from unsloth import FastLanguageModel  # imported first by choose_backend, so it has patched trl

    fast = not vllm_off_reason(settings, "unsloth")  # recipe.generation: not with 4-bit, and why
    with advice_on_load_failure(adapter or settings["model_name"], settings):
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
    recipe_decoding_only(model)
    if adapter:
        return model, unsloth_tokenizer
    targets = lora_targets(model, settings)
    # Unsloth 2026.10.7's get_peft_model takes target_parameters for fused experts (unsloth/models/llama.py:4257;
    # never run here)
    experts = {"target_parameters": targets.parameters} if targets.parameters else {}
    model = FastLanguageModel.get_peft_model(
        model,
        r=settings["lora_rank"],
        lora_alpha=settings["lora_alpha"],
        target_modules=targets.modules,
        use_gradient_checkpointing="unsloth",  # offloads activations; long completions fit
        random_state=settings["seed"],
        **experts,
    )
    print_coverage(lora_coverage(model), targets)
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


def native_bf16() -> bool:
    """Whether this GPU computes in bfloat16 natively (Ampere and later). torch 2.13's plain
    is_bf16_supported() also says yes on a T4 or V100, where bf16 is emulated and slow
    (torch/cuda/__init__.py, is_bf16_supported); Unsloth picks fp16 there, and so does the recipe."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def compute_dtype():
    """The dtype the model is loaded and computes in: bf16 where native, fp16 on older GPUs, fp32 on CPU."""
    import torch

    if not torch.cuda.is_available():
        return torch.float32
    return torch.bfloat16 if native_bf16() else torch.float16


def precision() -> dict:
    """Trainer precision and device flags for this machine (the same choice as compute_dtype). On a CPU,
    no gradient checkpointing: it saves GPU memory by computing each layer twice, and on a CPU that only
    costs time (a sixth of a smoke step); on a GPU TRL's default (on) stays."""
    import torch

    if not torch.cuda.is_available():
        return {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False}
    bf16 = native_bf16()
    return {"bf16": bf16, "fp16": not bf16}


def optimizer_name(wanted: str) -> str:
    import torch

    if "8bit" in wanted and not torch.cuda.is_available():
        return "adamw_torch"  # bitsandbytes' 8-bit Adam needs CUDA
    return wanted


def save_adapter(model, tokenizer, path: Path) -> Path:
    """The active LoRA adapter in PEFT format, with the tokenizer and its chat template beside it; written
    under a temporary name and renamed when whole (runs.atomic_path), so a kill never leaves half an adapter."""
    with atomic_path(path) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    return path
