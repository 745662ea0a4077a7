"""The smoke run: the whole recipe offline on a CPU in a few minutes, with a tiny random Qwen3 built
here, saved to a folder and then loaded by path exactly as the real model is, on every backend.
With --model-name DIR the smoke run trains DIR instead (a small local model, checked on a CPU before a
GPU is rented); the tiny Qwen3 is only the default.

The bundled task (data/smoke_task.jsonl, made by data/make_samples.py) is one a model of half a million
parameters can learn from scratch: name the largest of four digits. Its answers are spread evenly over
1-9, so no constant answer scores well, and the held-out accuracy can show base < primed < trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import rewards

from .data import chat_template
from .runs import atomic_path, set_aside

DATA = Path(__file__).resolve().parent.parent / "data"
EOS = "<|endoftext|>"
PAD = "<|pad|>"

# --smoke replaces these defaults of train_grpo.py (an explicit --name VALUE still wins).
# Tuned on 2 CPU cores so that held-out accuracy rises clearly in both stages (see tests and docs/smoke-run.md).
SMOKE_SETTINGS = {
    "max_seq_length": 256,
    "max_completion_length": 40,  # a worked answer is 22 tokens; room to ramble, not to waste time
    "lora_rank": 16,
    "lora_alpha": 32,
    "dataset": str(DATA / "smoke_task.jsonl"),
    "priming_dataset": str(DATA / "smoke_primer.jsonl"),
    "priming_max_rows": 96,  # fewer: GRPO has more left to do; more: priming alone nears the ceiling
    "priming_epochs": 2,
    "priming_learning_rate": 5e-3,
    "learning_rate": 5e-4,
    "optimizer": "adamw_torch",
    "max_steps": 250,
    "num_generations": 16,
    "per_device_batch": 64,  # 4 prompts a step
    "save_steps": 100,
    "eval_size": 64,
    "eval_max_new_tokens": 40,
    "eval_batch_size": 64,
    "eval_steps": 25,  # 11 points on the curve, a second or so each
    "eval_during_size": 64,  # the whole held-out set: step 0 is the primed column, step 250 the trained one
    "log_completions_steps": 10,
    "run_name": "smoke",
}
SMOKE_TOKENIZER_VOCAB = 512  # byte-level BPE trained on the bundled texts, plus the four tags
TINY_QWEN3 = dict(  # the smoke model's shape: about half a million parameters
    hidden_size=128,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    max_position_embeddings=512,
    tie_word_embeddings=True,
)


def uses_tiny_model(settings: dict) -> bool:
    """--smoke with its own tiny random model; --smoke --model-name DIR trains DIR instead."""
    return bool(settings["smoke"]) and "model_name" not in settings.get("explicit", ())


def build_tiny_tokenizer(texts: list[str], vocab_size: int = SMOKE_TOKENIZER_VOCAB):
    """A byte-level BPE tokenizer trained on `texts`, with each tag as one (non-special) token, so the
    tags survive decoding with skip_special_tokens=True as they do with Qwen's tokenizer, and each
    digit a token of its own.

    Padding has its own token: the model zeroes the padding row of its (tied) embedding, and were that
    row end-of-text's, the model could never end a completion."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    # Digits one by one, as Qwen's tokenizer splits them: "7" is the same token in the working, after a
    # space, and in the answer, so copying the result into the solution block is easy to learn.
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    core.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in rewards.TAGS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=PAD)
    tokenizer.chat_template = chat_template()
    return tokenizer


def smoke_tokenizer(data_paths: list[str]):
    """The smoke model's tokenizer, built in memory from the bundled texts: the same one build_smoke_model
    saves (BPE training is deterministic), so the data can be checked before anything is written."""
    return build_tiny_tokenizer(smoke_texts(data_paths))


def build_tiny_model(tokenizer, seed: int):
    """A randomly initialised Qwen3 of about half a million parameters."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        **TINY_QWEN3,
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        initializer_range=0.2,  # 10x the usual: with tiny weights all tokens are equally likely, LoRA barely moves them
    )
    return Qwen3ForCausalLM(config)


def smoke_texts(paths: list[str]) -> list[str]:
    """What the smoke tokenizer is trained on: the system prompt and the bundled files' values."""
    texts = [rewards.SYSTEM_PROMPT]
    for path in paths:
        if Path(path).is_file():
            with open(path, encoding="utf-8") as f:
                texts += [" ".join(str(v) for v in json.loads(line).values()) for line in f if line.strip()]
    return texts


def build_smoke_model(folder: Path, data_paths: list[str], seed: int) -> str:
    """Write the tiny model and its tokenizer to `folder` (once: a resumed run finds them there) and
    return the folder, which then stands in for MODEL_NAME everywhere. The folder is written under a
    temporary name and renamed when whole, so a kill leaves none or all of it; one that is not whole
    (damaged, or left by an older version of the recipe) is set aside and built again."""
    problem = smoke_model_problem(folder)
    if problem and folder.exists():
        set_aside(folder, problem)
    if problem:
        tokenizer = build_tiny_tokenizer(smoke_texts(data_paths))
        with atomic_path(folder) as tmp:
            build_tiny_model(tokenizer, seed).save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
    return str(folder)


def smoke_model_problem(folder: Path) -> str | None:
    """What is missing from a saved smoke model, or None when it is whole."""
    from safetensors import safe_open

    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"):
        if not (folder / name).is_file():
            return f"no {name}"
    try:
        with safe_open(str(folder / "model.safetensors"), "pt"):
            return None
    except Exception:  # safetensors' own error: the file is shorter than its header says
        return "model.safetensors is cut short"
