"""The comparison: base (adapter off), primed (after format priming) and trained (after GRPO) answer the
same held-out problems with the same prompt and decoding, and rewards.py scores all of them, so the
training reward and the reported accuracy are one and the same verifier.

Greedy decoding gives the headline number; with EVAL_SAMPLES = k, each model also draws k samples per
problem with GRPO's sampling settings (decoding(), recorded in the report): pass@1 (the mean accuracy over
samples, as papers report it) and
pass@k (a problem counts when any of its k samples is right).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import rewards
from rewards import REWARD_FUNCS

from .models import end_token_ids, uses_fast_generate
from .stats import PASS_AT_K, pass_at_k

# The comparison judges with the same verifier and the same limits as the training reward, so a verdict
# here is the verdict training saw. An answer the verifier could not decide (is_correct -> None) is
# neither right nor wrong: it is counted apart ("undecided") and left out of the accuracy's numerator.


def models_to_compare(trained: Path, primed: Path, include_primed: bool) -> dict[str, Path | None]:
    """{label: adapter folder}: the base model (no adapter), the primed snapshot when there is one and
    it is wanted, and the trained adapter."""
    adapters = {"base": None, "primed": primed if include_primed and primed.exists() else None, "trained": trained}
    return {label: path for label, path in adapters.items() if label == "base" or path}


def compare(model, tokenizer, problems, settings: dict, adapters: dict[str, Path | None], sources: dict) -> dict:
    """Every model in `adapters` ({label: adapter folder, None for the base model}) on `problems`."""
    prompts = list(problems["prompt"])
    report = {
        "settings": {k: settings[k] for k in ("model_name", "eval_size", "eval_max_new_tokens", "eval_samples", "seed")}
        | {"decoding": used_decoding(settings)}
        | sources
        | {"adapters": {label: str(path) if path else None for label, path in adapters.items()}},
        "labels": list(adapters),
    }
    for label, path in adapters.items():
        greedy = complete(model, tokenizer, prompts, settings, label, path)
        report[label] = score(problems, [c[0] for c in greedy])
        if settings["eval_samples"]:
            sampled = complete(model, tokenizer, prompts, settings, label, path, samples=settings["eval_samples"])
            report[label]["sampled"] = sampled_accuracy(problems, sampled)
    return report


def decoding(settings: dict, samples: int = 0) -> dict:
    """The recipe's decoding, the only one any of its generation paths uses (the comparison, the held-out
    curve, --eval-samples), recorded in comparison.json: greedy, or with samples, GRPO's own sampling (the
    temperature, top_p and min_p recipe/training.py hands TRL, with TRL 1.15's top_k 0 = off and
    repetition_penalty 1.0, trl/trainer/grpo_config.py). Nothing comes from the model folder's
    generation_config.json: models.recipe_decoding_only empties it at load, end tokens aside."""
    if not samples:
        return {"do_sample": False, "repetition_penalty": 1.0}
    return {
        "do_sample": True,
        "temperature": settings["temperature"],
        "top_p": settings["top_p"],
        "min_p": settings["min_p"] or None,
        "top_k": 0,
        "repetition_penalty": 1.0,
    }


def used_decoding(settings: dict) -> dict:
    """The decodings the comparison uses, as comparison.json records them."""
    used = {"greedy": decoding(settings)}
    return used | ({"sampled": decoding(settings, settings["eval_samples"])} if settings["eval_samples"] else {})


@contextlib.contextmanager
def active_adapter(model, label: str, path: Path | None):
    """PEFT: the base model with every adapter off (path None), or the adapter saved at `path`, loaded
    once under `label`; a model trained in this process keeps its own weights as "default"."""
    if path is None:
        with model.disable_adapter():
            yield
        return
    previous = model.active_adapter
    name = previous if label == "trained" else label  # the trained adapter is the one the model holds
    if name not in model.peft_config:
        model.load_adapter(str(path), adapter_name=name, is_trainable=False)
    model.set_adapter(name)
    try:
        yield
    finally:
        model.set_adapter(previous)


def complete(model, tokenizer, prompts: list, settings: dict, label: str, adapter: Path | None, samples: int = 0):
    """For each prompt, a list of completions {text, length, truncated}: one greedy, or `samples` drawn
    at the training temperature, top_p and min_p."""
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    ends = end_token_ids(model, tokenizer)  # the tokens GRPO stops at, so both judge the same completion
    if uses_fast_generate(model):
        return _complete_vllm(model, tokenizer, texts, settings, adapter, samples, ends)
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    size = settings["eval_batch_size"]
    chosen = decoding(settings, samples)
    sampling = chosen | (
        dict(num_return_sequences=samples) if samples else dict(temperature=None, top_p=None, top_k=None)
    )  # greedy: the sampling fields unset, or generate() warns that they do nothing
    results = []
    was_training = model.training
    model.eval()
    torch.manual_seed(settings["seed"])
    what = f"{samples} samples" if samples else "greedy"
    with active_adapter(model, label, adapter), torch.no_grad():
        bar = tqdm(range(0, len(texts), size), desc=f"evaluating {label} ({what})", unit="batch", disable=None)
        for start in bar:  # disable=None: a bar in a terminal, none in a log file
            batch = tokenizer(texts[start : start + size], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = {k: v.to(device) for k, v in batch.items()}
            output = model.generate(
                **batch,
                max_new_tokens=settings["eval_max_new_tokens"],
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=ends,
                **sampling,
            )
            rows = output[:, batch["input_ids"].shape[1] :].tolist()  # (prompts x samples, new tokens)
            per_prompt = max(samples, 1)
            for i in range(0, len(rows), per_prompt):
                results.append([_completion(tokenizer, row, ends) for row in rows[i : i + per_prompt]])
    model.train(was_training)
    return results


def _completion(tokenizer, tokens: list[int], ends: list[int]) -> dict:
    """Cut at the first end token, as GRPO masks the rest (padding after it included)."""
    end = next((i for i, token in enumerate(tokens) if token in ends), None)
    ended = end is not None
    if ended:
        tokens = tokens[:end]
    return {"text": tokenizer.decode(tokens, skip_special_tokens=True), "length": len(tokens), "truncated": not ended}


def _complete_vllm(model, tokenizer, texts: list[str], settings, adapter: Path | None, samples: int, ends):
    """Unsloth's vLLM engine; an adapter goes in as a LoRA request, the base model has none.

    Prompts go in as token ids (tokenized like every other path, without special tokens): given text, vLLM
    would add the tokenizer's bos in front of the template's own."""
    from vllm import SamplingParams

    chosen = decoding(settings, samples)
    common = dict(max_tokens=settings["eval_max_new_tokens"], stop_token_ids=ends, seed=settings["seed"])
    common |= dict(repetition_penalty=chosen["repetition_penalty"])
    if samples:  # vLLM's own top_k default is off; explicit parameters override the model folder's defaults
        params = SamplingParams(
            n=samples, temperature=chosen["temperature"], top_p=chosen["top_p"], min_p=chosen["min_p"] or 0.0,
            **common,
        )  # fmt: skip
    else:
        params = SamplingParams(temperature=0.0, **common)
    lora = model.load_lora(str(adapter)) if adapter else None
    prompts = [{"prompt_token_ids": ids} for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    outputs = model.fast_generate(prompts, sampling_params=params, lora_request=lora)
    # vLLM keeps the end token in token_ids (it checks for it after appending, vllm/v1/core/sched/utils.py:104-112);
    # cut and decode them as the transformers path does, so both count lengths and truncation the same way.
    return [[_completion(tokenizer, list(o.token_ids), ends) for o in out.outputs] for out in outputs]


def score(problems, completions: list[dict]) -> dict:
    """Every figure of the report, computed from the completions listed with it and nothing else."""
    return _score(problems, completions)


def _score(problems, completions: list[dict]) -> dict:
    records = []
    for row, completion in zip(problems, completions, strict=True):
        text = completion["text"]
        scores = {f.__name__: f(completions=[text], answer=[row["answer"]])[0] for f in REWARD_FUNCS}
        records.append(
            {
                "problem_id": row["problem_id"],
                "reference": row["answer"],
                "extracted": rewards.extract_answer(text),
                "correct": rewards.is_correct(text, row["answer"]),
                "format_ok": rewards.has_exact_format(text),
                "length": completion["length"],
                "truncated": completion["truncated"],
                "rewards": scores,
                "completion": text,
            }
        )
    n = max(len(records), 1)

    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else 0.0

    summary = {
        "problems": len(records),
        "accuracy": sum(r["correct"] is True for r in records) / n,
        "undecided": sum(r["correct"] is None for r in records),  # the verifier gave no verdict: not counted wrong
        "undecided_rate": sum(r["correct"] is None for r in records) / n,
        "format_rate": sum(r["format_ok"] for r in records) / n,
        "reward_means": {f.__name__: mean(r["rewards"][f.__name__] for r in records) for f in REWARD_FUNCS},
        "total_reward": mean(sum(v for v in r["rewards"].values() if v is not None) for r in records),
        "mean_length": mean(r["length"] for r in records),
        "truncated_rate": sum(r["truncated"] for r in records) / n,
    }
    return {**summary, "records": records}


def sampled_accuracy(problems, completions: list[list[dict]]) -> dict:
    """pass@1 and pass@k from k samples per problem, with the unbiased estimator (recipe/stats.py; with
    n = k samples it is the mean share right, and the share of problems with any sample right)."""
    verdicts = [
        [rewards.is_correct(c["text"], row["answer"]) for c in samples]
        for row, samples in zip(problems, completions, strict=True)
    ]
    right = [[v is True for v in row] for row in verdicts]
    n = max(len(right), 1)
    k = len(right[0]) if right else 0
    return {
        "k": k,
        "pass@1": sum(pass_at_k(len(r), sum(r), 1) for r in right) / n,
        f"pass@{k}": sum(pass_at_k(len(r), sum(r), k) for r in right) / n,
        "estimator": PASS_AT_K,
        "correct_per_problem": [sum(r) for r in right],
        "undecided": sum(v is None for row in verdicts for v in row),
    }
