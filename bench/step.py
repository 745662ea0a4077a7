"""What a GRPO step costs: time in generation, in the rewards and in training, completion tokens per second
and peak memory, for the plain transformers + PEFT path and the Unsloth path of train_grpo.py, side by side.

    python bench/step.py                     # CUDA GPU: Qwen3-4B's exact shape, random weights, all paths
    python bench/step.py --load-in-4bit      # the same with 4-bit base weights
    python bench/step.py --tiny --steps 2    # a tiny shape, plain path: runs anywhere (the default on CPU)

Paths: `plain` (transformers + PEFT, generation with transformers), `unsloth` (Unsloth, generation with
its transformers path) and `unsloth-vllm` (Unsloth with its vLLM engine). Memory is judged between plain
and unsloth, which generate the same way: vLLM reserves its share of the GPU for its KV cache up front,
so its peak says how much it was allowed, not how much the step needed.

No download: the model is built from Qwen3-4B's configuration with random weights, and the tokenizer
is a word-level one with the same vocabulary size, so generation covers the whole vocabulary. Random
weights rarely emit end-of-sequence, so completions run to the length limit: the worst case for time.
On a GPU the model is written by a process of its own, which exits (freeing the GPU) before the measured paths
start; each path then runs in its own process (Unsloth patches transformers and TRL when imported)
through the same functions train_grpo.py uses, with the recipe's settings unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Qwen3-4B's shape (config.json of Qwen/Qwen3-4B-Base)
QWEN3_4B = dict(
    hidden_size=2560,
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    intermediate_size=9728,
    vocab_size=151936,
    tie_word_embeddings=True,
    rms_norm_eps=1e-6,
    rope_theta=1_000_000.0,
    max_position_embeddings=32768,
)
TINY = dict(vocab_size=2048, max_position_embeddings=4096)  # with recipe.smoke.TINY_QWEN3's other sizes
from recipe.smoke import TINY_QWEN3  # noqa: E402 - after the sys.path line above

PATHS = {"plain": ("transformers", False), "unsloth": ("unsloth", False), "unsloth-vllm": ("unsloth", True)}


def gpu_present() -> bool:
    import torch

    return torch.cuda.is_available()  # asks the driver; creates no CUDA context in this process


def build_tokenizer(vocab_size: int):
    """A word-level tokenizer with exactly `vocab_size` ids: the four tags, eos, and filler words."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    import rewards
    from recipe.data import chat_template

    eos = "<|endoftext|>"
    words = [eos, *rewards.TAGS]
    words += [f"w{i}" for i in range(vocab_size - len(words))]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="w0"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=eos, pad_token="w1")
    tokenizer.chat_template = chat_template()
    return tokenizer


def save_random_model(folder: Path, shape: dict, seed: int) -> None:
    """Write a random-weight Qwen3 of `shape` and its tokenizer to `folder`, in the dtype the recipe computes
    in here (bf16 on Ampere and later, fp16 on older GPUs, where bf16 would be emulated; fp32 on CPU)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from recipe.models import compute_dtype

    tokenizer = build_tokenizer(shape["vocab_size"])
    config = Qwen3Config(**shape, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    dtype = compute_dtype()
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen3ForCausalLM(config).to(dtype)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    del model


def worker(args) -> dict:
    """Run `args.steps` GRPO steps on one path and return the measurements."""
    backend, vllm = PATHS[args.worker]
    if backend == "unsloth":
        from recipe.models import import_unsloth

        import_unsloth()  # before trl and transformers, as train_grpo.run does
    import torch

    from recipe.data import build_prompts, drop_long_prompts, load_table
    from recipe.generation import vllm_off_reason
    from recipe.models import load_model, load_tokenizer, use_plain_logprobs_without_gpu, uses_fast_generate
    from recipe.training import grpo_config
    from rewards import REWARD_FUNCS
    from train_grpo import DEFAULTS

    settings = dict(DEFAULTS)
    settings.update(
        model_name=args.model_dir,
        backend=backend,
        load_in_4bit=args.load_in_4bit,
        fast_inference=vllm,
        max_steps=args.steps,
        save_steps=10**6,
        optimizer="adamw_8bit" if torch.cuda.is_available() else "adamw_torch",
        report_to="none",
        run_name=f"bench-{args.worker}",
    )
    if args.tiny:
        settings.update(lora_rank=8, lora_alpha=16, max_seq_length=256)
    use_plain_logprobs_without_gpu()
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    tokenizer = load_tokenizer(settings["model_name"])
    problems = build_prompts(load_table(str(ROOT / "data" / "smoke_task.jsonl")), "prompt", "solution")
    problems, max_prompt_length = drop_long_prompts(problems, tokenizer, settings["prompt_length_quantile"])
    max_completion_length = args.max_completion_length or settings["max_seq_length"] - max_prompt_length

    run_dir = Path(args.out) / args.worker
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    start = time.perf_counter()
    model, tokenizer = load_model(settings, backend, tokenizer)
    load_seconds = time.perf_counter() - start

    steps: list[dict] = []
    cuda = torch.cuda.is_available()

    class Measure(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            steps.append({"start": time.perf_counter(), "generation_s": 0.0, "rewards_s": 0.0, "training_s": 0.0})

        def on_pre_optimizer_step(self, a, state, control, **kw):
            self.optimizer_start = time.perf_counter()

        def on_optimizer_step(self, a, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            steps[-1]["training_s"] += time.perf_counter() - self.optimizer_start

        def on_step_end(self, a, state, control, **kw):
            if cuda:
                torch.cuda.synchronize()
            steps[-1]["step_s"] = time.perf_counter() - steps[-1]["start"]
            steps[-1]["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else None

        def on_log(self, a, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs and steps:
                completions = settings["per_device_batch"] * settings["gradient_accumulation"]
                steps[-1]["completion_tokens"] = logs["completions/mean_length"] * completions

    config = grpo_config(settings, run_dir, backend, max_completion_length)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=REWARD_FUNCS,
        args=config,
        train_dataset=problems,
        processing_class=tokenizer,
        callbacks=[Measure()],
    )
    # Each part of a step is timed where it runs, not derived from the others, so that the parts can be
    # checked against the whole step (timed by Measure): generation (the trainer's sampling call), the
    # rewards, and training (loss and backward passes, gradient clipping, and the optimizer step, timed by
    # Measure). What no timer covers (batching, tokenizing, the loop's bookkeeping) is reported as other.
    def time_into(owner, name: str, key: str) -> None:
        original = getattr(owner, name)

        def timed(*a, **kw):
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            result = original(*a, **kw)
            if cuda:
                torch.cuda.synchronize()
            if steps:
                steps[-1][key] += time.perf_counter() - t0
            return result

        setattr(owner, name, timed)

    if hasattr(trainer, "_generate"):
        time_into(trainer, "_generate", "generation_s")
        time_into(trainer, "_calculate_rewards", "rewards_s")
    else:  # older trainers: generation and scoring in one call
        time_into(trainer, "_generate_and_score_completions", "generation_s")
    for name in ("compute_loss", "_clip_grad_norm"):
        time_into(trainer, name, "training_s")
    time_into(trainer.accelerator, "backward", "training_s")
    trainer.train()
    for s in steps:
        s.pop("start")
        s["other_s"] = s["step_s"] - s["generation_s"] - s["rewards_s"] - s["training_s"]
        s["tokens_per_s"] = s.get("completion_tokens", 0) / s["generation_s"] if s["generation_s"] else None
    return {
        "backend": args.worker,
        "vllm": backend == "unsloth" and uses_fast_generate(model),
        "vllm_off": vllm_off_reason(settings, backend) if vllm else "",  # e.g. 4-bit: recipe/generation.py
        "load_in_4bit": args.load_in_4bit,
        "load_s": load_seconds,
        "max_completion_length": max_completion_length,
        "steps": steps,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def summarise(result: dict) -> dict:
    """Median over the steps after the first (which pays for warm-up and compilation)."""
    steps = result["steps"][1:] or result["steps"]

    def median(key):
        values = [s[key] for s in steps if s.get(key) is not None]
        return statistics.median(values) if values else None

    keys = ("step_s", "generation_s", "training_s", "rewards_s", "other_s", "tokens_per_s", "peak_gib")
    return {key: median(key) for key in keys}


def fmt(value, spec=".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps per path (the first is not counted)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model shape (default without a GPU)")
    parser.add_argument("--load-in-4bit", action="store_true", help="4-bit base weights (GPU only)")
    parser.add_argument(
        "--paths", default="auto", help=f"comma-separated, of {', '.join(PATHS)} (auto: all on a GPU, plain on CPU)"
    )
    parser.add_argument("--max-completion-length", type=int, default=0, help="0: the recipe's (seq - prompt)")
    parser.add_argument("--seed", type=int, default=3407)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--build", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0
    gpu = gpu_present()
    tiny = args.tiny or not gpu
    shape = dict(TINY_QWEN3, **TINY) if tiny else QWEN3_4B
    if args.build:  # the model-writing process: it exits, and its GPU memory with it, before any path runs
        save_random_model(Path(args.build), shape, args.seed)
        return 0

    paths = ["plain", "unsloth", "unsloth-vllm"] if not tiny else ["plain"]
    if args.paths != "auto":
        paths = [p.strip() for p in args.paths.split(",")]
        unknown = [p for p in paths if p not in PATHS]
        if unknown:
            parser.error(f"unknown path(s) {unknown}; choose from {', '.join(PATHS)}")
    if not args.max_completion_length and tiny:
        args.max_completion_length = 32
    print(f"model: {'tiny' if tiny else 'Qwen3-4B'} shape, random weights; paths: {', '.join(paths)}")
    results = []
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        if gpu:  # written by a process of its own, whose GPU memory is gone before the paths are measured
            build = [sys.executable, __file__, "--build", str(model_dir), "--seed", str(args.seed)] + ["--tiny"] * tiny
            subprocess.run(build, check=True, env=env, cwd=ROOT)
        else:  # no GPU memory to free: written here, without paying for a third process's imports
            save_random_model(model_dir, shape, args.seed)
        for path in paths:
            command = [
                sys.executable,
                __file__,
                "--worker",
                path,
                "--model-dir",
                str(model_dir),
                "--out",
                tmp,
                "--steps",
                str(args.steps),
                "--max-completion-length",
                str(args.max_completion_length),
            ]
            command += ["--tiny"] * tiny + ["--load-in-4bit"] * args.load_in_4bit
            proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{path} path failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
                results.append({"backend": path, "error": proc.stderr[-4000:]})
                continue
            results.append(json.loads(lines[-1][len("RESULT ") :]))

    print(
        f"\n{'path':24} {'step s':>8} {'gen s':>8} {'train s':>8} {'reward s':>8} {'other s':>8} {'tok/s':>8} "
        f"{'peak GiB':>9}"
    )
    summaries = {}
    for r in results:
        if "error" in r:
            print(f"{r['backend']:24} failed")
            continue
        s = summaries[r["backend"]] = summarise(r)
        label = r["backend"] + (" 4-bit" if r["load_in_4bit"] else "")
        if r["backend"] == "unsloth-vllm" and not r["vllm"]:
            label += " (no vLLM)"
            print(f"  {r['backend']}: {r.get('vllm_off') or 'vLLM did not start'}")
        print(
            f"{label:24} {fmt(s['step_s']):>8} {fmt(s['generation_s']):>8} {fmt(s['training_s']):>8} "
            f"{fmt(s['rewards_s'], '.3f'):>8} {fmt(s['other_s'], '.3f'):>8} {fmt(s['tokens_per_s'], '.0f'):>8} "
            f"{fmt(s['peak_gib']):>9}"
        )
    for r in results:
        if "error" not in r:
            per_step = ", ".join(f"{s['step_s']:.2f}" for s in r["steps"])
            print(
                f"  {r['backend']}: per-step seconds {per_step}; completions up to {r['max_completion_length']} "
                f"tokens; load {r['load_s']:.1f} s; peak process memory {r['peak_rss_gib']:.1f} GiB"
            )
    if {"plain", "unsloth"} <= summaries.keys():  # both generate with transformers: like for like
        plain, fast = summaries["plain"], summaries["unsloth"]
        if plain["peak_gib"] and fast["peak_gib"]:
            print(f"Unsloth peak memory / plain: {fast['peak_gib'] / plain['peak_gib']:.2f} (target <= 0.5)")
        print(f"Unsloth step time / plain:   {fast['step_s'] / plain['step_s']:.2f} (target <= 1.0)")
    if args.json:
        Path(args.json).write_text(json.dumps({"shape": shape, "results": results}, indent=2))
    return 0 if results and all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
