"""Turn a base language model into a math reasoner with GRPO and verifiable rewards, on one GPU.

    python train_grpo.py                       # the full recipe on a CUDA GPU (Qwen3-4B-Base, DAPO math)
    python train_grpo.py --smoke               # every step in a minute or two with a tiny model, offline
    python train_grpo.py --max-steps 300 --run-name longer     # any setting below, as --lower-case-name
    python train_grpo.py --eval-only --adapter outputs/RUN/adapter     # only the comparison, for a saved run
    python train_grpo.py --export-only --export merged --adapter outputs/RUN/adapter   # a merged 16-bit model

The recipe, in run() below, one step after another:
  1. tokenizer     the model's, with the recipe's chat template (the base model has none): system + eos,
                   the problem, and a generation prompt that opens the working tag; for --smoke, a tiny
                   random Qwen3 is first written to the run folder and then loaded like any model
  2. data          math problems -> chat prompts (SYSTEM_PROMPT + problem) with an `answer` column;
                   long prompts dropped; a seeded held-out set that training never sees
  3. model         Unsloth + LoRA on a CUDA GPU (vLLM generation when installed), else transformers + PEFT
  4. priming       a short supervised pass (SFTTrainer) on worked solutions written in the tag format
  5. GRPO          TRL's GRPOTrainer with the four rewards of rewards.py; no labels but the answers
  6. comparison    base (adapter off) vs primed vs trained on the held-out problems: same prompt, same
                   decoding, same verifier; report, plots, adapter (and a merged model) in OUTPUT_DIR/RUN_NAME
The machinery (settings parsing, data, backends, run folders, evaluation) lives in recipe/.

How this departs from the reference notebook: rewards judge mathematical equality (rewards.py), TRL 1.x
replaces the removed `max_prompt_length` by filtering prompts here, the per-device batch holds whole
groups of generations, the objective is spelled out so both backends train the same one, and the
comparison is a held-out evaluation of three models rather than one question.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from recipe.data import (
    build_priming_rows,
    build_prompts,
    drop_long_prompts,
    load_eval_problems,
    load_table,
    split_heldout,
)
from recipe.errors import SetupError
from recipe.evaluate import compare, models_to_compare
from recipe.models import (
    check_export,
    choose_backend,
    export_model,
    load_model,
    load_tokenizer,
    merge_adapter,
    save_adapter,
    use_plain_logprobs_without_gpu,
)
from recipe.report import print_comparison, write_report
from recipe.runs import (
    StopOnSignal,
    cuda_oom_advice,
    is_main_process,
    latest_checkpoint,
    main_process_first,
    make_guard,
    new_folder_beside,
    prepare_run_dir,
    set_status,
    train_guarded,
    world_size,
    write_json,
)
from recipe.settings import check_settings, parse_settings, settings_help
from recipe.smoke import SMOKE_SETTINGS, build_smoke_model
from recipe.training import effective_objective, grpo_config, sft_config
from rewards import REWARD_FUNCS

# ============================================================================= settings
# Every constant in this block can be overridden as --lower-case-name VALUE (MAX_STEPS: --max-steps 10).
_names_before_settings = set(globals())
# -- model
MODEL_NAME = "unsloth/Qwen3-4B-Base"  # hub name or local folder; eos is <|endoftext|>
BACKEND = "auto"  # auto: unsloth on a CUDA GPU, else transformers | unsloth | transformers
MAX_SEQ_LENGTH = 2048  # prompt + completion tokens
LOAD_IN_4BIT = False  # False: 16-bit LoRA (the recipe); True: QLoRA, for GPUs under ~24 GB
FAST_INFERENCE = True  # vLLM generation when vLLM is installed (pip install -r requirements-vllm.txt)
GPU_MEMORY_UTILIZATION = 0.9  # Unsloth: share of GPU memory its vLLM engine may take; 0.5-0.6 on small GPUs
COLOCATE_VLLM_MEMORY = 0.3  # transformers backend + vLLM: share for TRL's second engine (TRL's default)
TRUST_REMOTE_CODE = False  # never run code from a model repository unless you ask for it
# -- LoRA
LORA_RANK = 32  # larger learns more and trains slower; max_lora_rank for vLLM follows it
LORA_ALPHA = 64  # 2 x rank, as the recipe
LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"  # comma-separated
# -- data
DATASET = "open-r1/DAPO-Math-17k-Processed"  # hub name, or a local .jsonl/.json/.parquet/.csv file
DATASET_CONFIG = "en"  # hub config (all | en | cn); ignored for local files
DATASET_SPLIT = "train"
PROBLEM_COLUMN = "prompt"  # the problem text (MATH-500 and OpenR1-Math-220k: problem)
ANSWER_COLUMN = "solution"  # the reference answer (gsm8k: answer, text after #### is used)
PROMPT_LENGTH_QUANTILE = 0.9  # drop prompts longer than this quantile of prompt lengths (recipe: 0.9)
MAX_PROMPT_LENGTH = 0  # tokens; 0 = from the quantile
MAX_COMPLETION_LENGTH = 0  # tokens; 0 = MAX_SEQ_LENGTH - the prompt limit (the recipe)
MAX_TRAIN_ROWS = 0  # 0 = all rows left after the held-out set
# -- format priming (supervised, before GRPO)
PRIMING = True  # the recipe's authors say it saves days of GRPO spent discovering the format
PRIMING_DATASET = "unsloth/OpenMathReasoning-mini"  # hub name or local file with worked solutions
PRIMING_CONFIG = ""
PRIMING_SPLIT = "cot"
PRIMING_PROBLEM_COLUMN = "problem"
PRIMING_SOLUTION_COLUMN = "generated_solution"  # <think> tags are stripped
PRIMING_ANSWER_COLUMN = "expected_answer"  # only rows with a numeric answer are kept
PRIMING_MAX_ROWS = 0  # 0 = all rows whose chat fits in half of MAX_SEQ_LENGTH (59 in the recipe)
PRIMING_EPOCHS = 2
PRIMING_LEARNING_RATE = 2e-4
# -- GRPO
LEARNING_RATE = 5e-6
WEIGHT_DECAY = 0.001
WARMUP_FRACTION = 0.1  # of MAX_STEPS
LR_SCHEDULER = "linear"
OPTIMIZER = "adamw_8bit"  # needs bitsandbytes and CUDA; adamw_torch is used on CPU
MAX_STEPS = 100  # reward often stays near zero for the first 100-200 steps; 300+ shows more
NUM_GENERATIONS = 4  # completions per prompt; the group they are ranked in
PER_DEVICE_BATCH = 4  # completions per step and device: a multiple of NUM_GENERATIONS (4 = 1 prompt)
GRADIENT_ACCUMULATION = 1
TEMPERATURE = 1.0
MIN_P = 0.1
TOP_P = 1.0
BETA = 0.0  # KL penalty to the base model; 0 keeps no reference model (TRL 1.x default)
LOSS_TYPE = "dapo"  # grpo | dr_grpo | dapo | bnpo | ... (TRL 1.15); dapo: loss over all tokens of the batch
EPSILON = 0.2  # PPO-style clipping of the probability ratio, lower side (TRL default)
EPSILON_HIGH = 0.0  # upper side; 0 = EPSILON. DAPO's "clip higher" uses 0.28
MASK_TRUNCATED_COMPLETIONS = False  # True: completions cut at the length limit get no loss (DAPO)
SCALE_REWARDS = "group"  # advantages divided by the group's std | batch | none (Dr. GRPO's choice)
REWARD_WEIGHTS = ""  # comma-separated, one per reward in rewards.REWARD_FUNCS; empty = equal
VLLM_MODE = "colocate"  # transformers backend: colocate (same GPU) | server (trl vllm-serve elsewhere)
VLLM_SERVER_URL = ""  # server mode: e.g. http://10.0.0.2:8000 (default: localhost:8000)
SAVE_STEPS = 50  # checkpoint every N steps; a rerun of the same command resumes from the last
SAVE_TOTAL_LIMIT = 2  # checkpoints kept on disk
# -- comparison
EVAL_SIZE = 100  # held-out problems, never trained on
EVAL_MAX_NEW_TOKENS = 1024
EVAL_BATCH_SIZE = 16  # prompts per generate() call without vLLM
EVAL_PRIMED = True  # also evaluate the model right after priming, to show what GRPO itself added
EVAL_SAMPLES = 0  # k > 0: also k samples per problem at TEMPERATURE, for pass@1 and pass@k
EVAL_DATASET = ""  # empty: the held-out part of DATASET; else e.g. HuggingFaceH4/MATH-500
EVAL_CONFIG = ""
EVAL_SPLIT = "test"
EVAL_PROBLEM_COLUMN = "problem"
EVAL_ANSWER_COLUMN = "answer"
EVAL_ONLY = False  # only the comparison, for the adapter given by ADAPTER
ADAPTER = ""  # with EVAL_ONLY or EXPORT_ONLY: the adapter folder of an earlier run (OUTPUT_DIR/RUN/adapter)
# -- output
OUTPUT_DIR = "outputs"
RUN_NAME = "qwen3-4b-grpo"  # the run's folder: OUTPUT_DIR/RUN_NAME
IF_FINISHED = "refuse"  # a finished run already in OUTPUT_DIR/RUN_NAME: refuse | new (RUN_NAME-2, -3, ...)
EXPORT = "adapter"  # adapter | merged (a full 16-bit model, loads without PEFT) | gguf (Unsloth on a GPU)
EXPORT_ONLY = False  # only export ADAPTER's run as EXPORT: no training, no comparison
SEED = 3407
REPORT_TO = "none"  # none | tensorboard | wandb | trackio
SMOKE = False  # the whole recipe offline with a tiny random model and a bundled toy task (recipe/smoke.py)

DEFAULTS = {
    name.lower(): value
    for name, value in dict(globals()).items()
    if name.isupper() and name not in _names_before_settings
}


# ============================================================================= the recipe
def run(S: dict) -> Path:
    """Train, compare and save; returns the run folder. S: the settings, as parse_settings made them."""
    started = time.monotonic()
    backend = choose_backend(S["backend"], needs_gpu=not S["smoke"])  # imports Unsloth first on a GPU
    check_export(S["export"], backend)
    from trl import GRPOTrainer, SFTTrainer  # after Unsloth, which patches them when it is imported

    run_dir, resume = prepare_run_dir(S["output_dir"], S["run_name"], S["if_finished"])
    S["run_name"] = run_dir.name
    print(f"backend: {backend}\nrun folder: {run_dir}")
    if world_size() > 1:
        print(f"data-parallel over {world_size()} processes; only the main one writes outputs")

    # 1. tokenizer with the recipe's chat template; --smoke writes a tiny random Qwen3 into the run folder first
    with main_process_first():  # one process downloads or writes, the others read
        if S["smoke"]:
            S["model_name"] = build_smoke_model(run_dir / "base_model", [S["dataset"], S["priming_dataset"]], S["seed"])
        tokenizer = load_tokenizer(S["model_name"], S["trust_remote_code"])  # with the recipe's chat template
        table = load_table(S["dataset"], S["dataset_config"], S["dataset_split"])

    # 2. data: chat prompts with the answer beside them, long prompts dropped, a held-out set; all checked
    #    before the model loads, so a wrong column name costs seconds, not a model download
    problems = build_prompts(table, S["problem_column"], S["answer_column"])
    problems, max_prompt_length = drop_long_prompts(
        problems, tokenizer, S["prompt_length_quantile"], S["max_prompt_length"]
    )
    if max_prompt_length >= S["max_seq_length"]:
        raise SetupError(
            f"prompts need up to {max_prompt_length} tokens, leaving no room for a completion in "
            f"--max-seq-length {S['max_seq_length']}; raise it or set --max-prompt-length"
        )
    max_completion_length = S["max_completion_length"] or S["max_seq_length"] - max_prompt_length
    train_set, heldout = split_heldout(problems, S["eval_size"], S["seed"])
    if S["max_train_rows"]:
        train_set = train_set.select(range(min(S["max_train_rows"], len(train_set))))
    priming_rows = None
    if S["priming"] and not resume:
        priming_table = load_table(S["priming_dataset"], S["priming_config"], S["priming_split"])
        columns = (S["priming_problem_column"], S["priming_solution_column"], S["priming_answer_column"])
        priming_rows = build_priming_rows(
            priming_table, columns, tokenizer, S["max_seq_length"] // 2, S["priming_max_rows"]
        )
    eval_problems = eval_set(S, heldout)
    print(f"training on {len(train_set)} problems; evaluating on {len(eval_problems)} held-out problems")
    resolved = dict(
        S, backend=backend, max_prompt_length=max_prompt_length, max_completion_length=max_completion_length
    )
    if is_main_process():
        write_json(run_dir / "config.json", resolved)
        heldout.to_json(str(run_dir / "heldout.jsonl"))
        set_status(run_dir, "training")

    use_plain_logprobs_without_gpu()  # no-op on a GPU: TRL's Triton kernel has nothing to run on without one
    history = []  # priming then GRPO; a resumed run keeps the priming part of the log it wrote before
    if resume and (run_dir / "log_history.json").exists():
        history = [h for h in json.loads((run_dir / "log_history.json").read_text()) if h.get("stage") == "priming"]
    import torch

    try:
        with StopOnSignal() as stop:
            guard = make_guard(stop)  # Ctrl-C saves a checkpoint; a NaN loss stops before saving one

            # 3. model + LoRA (its tokenizer keeps the recipe's chat template)
            with main_process_first():
                model, tokenizer = load_model(S, backend, tokenizer)

            # 4. format priming: a short supervised pass on worked solutions in the tag format
            if priming_rows is not None:
                print(f"format priming: {len(priming_rows)} worked solutions x {S['priming_epochs']} epochs")
                priming = SFTTrainer(
                    model=model,
                    args=sft_config(S, run_dir / "priming"),
                    train_dataset=priming_rows,
                    processing_class=tokenizer,
                    callbacks=[guard],
                )
                train_guarded(priming, guard, run_dir)
                history += [dict(h, stage="priming") for h in priming.state.log_history]
                if stop.received:
                    raise SetupError(
                        f"{stop.received} during format priming: nothing saved yet. Run the same command "
                        "again to start over (priming takes minutes, not hours)."
                    )
                if is_main_process():
                    save_adapter(model, tokenizer, run_dir / "primed_adapter")  # the middle column of the report

            # 5. GRPO: groups of completions per prompt, scored by the four rewards, each pushed toward the
            #    better ones of its group; resumes from the newest checkpoint when there is one
            trainer = GRPOTrainer(
                model=model,
                reward_funcs=REWARD_FUNCS,
                args=grpo_config(S, run_dir / "checkpoints", backend, max_completion_length),
                train_dataset=train_set,
                processing_class=tokenizer,
                callbacks=[guard],
            )
            if is_main_process():  # the objective as the trainer holds it, after any library's defaults
                write_json(run_dir / "config.json", dict(resolved, trainer=effective_objective(trainer.args)))
            print(
                f"GRPO: {S['max_steps']} steps, {S['num_generations']} completions per prompt, "
                f"{S['per_device_batch'] // S['num_generations']} prompt(s) per device and step"
            )
            if resume:
                step = json.loads((Path(resume) / "trainer_state.json").read_text())["global_step"]
                print(f"resuming from {resume} (step {step} of {S['max_steps']})")
            train_guarded(trainer, guard, run_dir, resume)
            history += trainer.state.log_history
    except torch.OutOfMemoryError:
        raise SetupError(cuda_oom_advice(S)) from None
    if not is_main_process():
        return run_dir
    write_json(run_dir / "log_history.json", history)
    adapter = save_adapter(model, tokenizer, run_dir / "adapter")
    if stop.received:
        checkpoint = latest_checkpoint(run_dir)
        set_status(run_dir, "interrupted", checkpoint=checkpoint)
        print(f"\nstopped and saved: checkpoint {checkpoint}, adapter {adapter}")
        print("to resume, run the same command again: " + " ".join(["python", *sys.argv]))
        raise SystemExit(130)

    # 6. comparison: base, primed and trained on the same held-out problems, scored by rewards.py
    adapters = models_to_compare(adapter, run_dir / "primed_adapter", S["eval_primed"])
    try:
        report = compare(model, tokenizer, eval_problems, S, adapters, sources=eval_sources(S))
    except torch.OutOfMemoryError:
        raise SetupError(cuda_oom_advice(S)) from None
    write_report(report, history, run_dir)
    if S["export"] != "adapter":
        folder = export_model(model, tokenizer, S["model_name"], adapter, S["export"], backend, run_dir / S["export"])
        print(f"exported: {folder}")
    seconds = round(time.monotonic() - started)
    set_status(run_dir, "finished", seconds=seconds)
    print(f"\nfinished in {seconds} s (this start; a resumed run counts from its restart)")
    print_comparison(report, run_dir)
    return run_dir


def eval_set(S: dict, heldout):
    """What the comparison is run on: EVAL_DATASET's first EVAL_SIZE problems when one is named, else the
    held-out problems (a dataset, or the heldout.jsonl an earlier run wrote)."""
    if S["eval_dataset"]:
        columns = (S["eval_problem_column"], S["eval_answer_column"])
        return load_eval_problems(S["eval_dataset"], S["eval_config"], S["eval_split"], columns, S["eval_size"])
    return load_table(str(heldout)) if isinstance(heldout, Path) else heldout


def eval_sources(S: dict) -> dict:
    return {"dataset": S["eval_dataset"] or S["dataset"], "split": S["eval_split"] if S["eval_dataset"] else "held out"}


# ============================================================================= jobs on an earlier run
def reuse_run(S: dict) -> Path:
    """--eval-only (the comparison again) or --export-only (a merged or GGUF model) for a saved adapter,
    into a new folder beside its run; nothing is trained."""
    adapter = Path(S["adapter"]).expanduser()
    if not (adapter / "adapter_config.json").exists():
        raise SetupError(
            f"{adapter} is not a saved adapter (no adapter_config.json); pass the 'adapter' folder "
            "of an earlier run, e.g. outputs/RUN_NAME/adapter"
        )
    source_dir = adapter.parent
    try:
        earlier = json.loads((source_dir / "config.json").read_text())
    except (OSError, ValueError):
        raise SetupError(
            f"{source_dir / 'config.json'} is missing or unreadable: the job needs the run folder "
            "the adapter was saved in"
        ) from None
    # The earlier run's model, data and comparison settings, with what this command line says on top.
    S = dict(earlier, **{k: S[k] for k in S.get("explicit", [])})
    if S.get("smoke"):  # the tiny model lives in the run folder, wherever that folder has moved
        S["model_name"] = str(source_dir / "base_model")
    if S["export_only"]:
        return export_only(S, adapter, source_dir)
    backend = choose_backend(S["backend"], needs_gpu=False)
    run_dir = new_folder_beside(source_dir, S["output_dir"], "eval")
    tokenizer = load_tokenizer(S["model_name"], S["trust_remote_code"])
    problems = eval_set(S, source_dir / "heldout.jsonl")
    write_json(run_dir / "config.json", dict(S, backend=backend))
    model, tokenizer = load_model(S, backend, tokenizer, adapter=str(adapter))
    adapters = models_to_compare(adapter, source_dir / "primed_adapter", S["eval_primed"])
    history = (
        json.loads((source_dir / "log_history.json").read_text()) if (source_dir / "log_history.json").exists() else []
    )
    report = compare(model, tokenizer, problems, S, adapters, sources=eval_sources(S))
    write_report(report, history, run_dir)
    set_status(run_dir, "finished")
    print_comparison(report, run_dir)
    return run_dir


def export_only(S: dict, adapter: Path, source_dir: Path) -> Path:
    """The merged (or GGUF) model from a saved adapter. A merge needs no GPU; GGUF needs Unsloth."""
    backend = choose_backend(S["backend"] if S["export"] == "gguf" else "transformers", needs_gpu=S["export"] == "gguf")
    check_export(S["export"], backend)
    run_dir = new_folder_beside(source_dir, S["output_dir"], S["export"])
    if backend == "transformers":
        folder = merge_adapter(S["model_name"], adapter, run_dir)
    else:
        tokenizer = load_tokenizer(S["model_name"], S["trust_remote_code"])
        model, tokenizer = load_model(S, backend, tokenizer, adapter=str(adapter))
        folder = export_model(model, tokenizer, S["model_name"], adapter, S["export"], backend, run_dir)
    write_json(run_dir / "export.json", {"adapter": str(adapter), "base": S["model_name"], "export": S["export"]})
    print(f"exported {S['export']} model: {folder}")
    return run_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(settings_help(__doc__.split("\n\n")[1], DEFAULTS))
        return 0
    try:
        settings = parse_settings(argv, DEFAULTS, SMOKE_SETTINGS)
        check_settings(settings, [f.__name__ for f in REWARD_FUNCS])
        if settings["eval_only"] or settings["export_only"]:
            reuse_run(settings)
        else:
            run(settings)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
