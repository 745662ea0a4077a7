"""Turn a base language model into a math reasoner with GRPO and verifiable rewards, on one GPU.

    python train_grpo.py                       # the full recipe on a CUDA GPU (Qwen3-4B-Base, DAPO math)
    python train_grpo.py --smoke               # every step with a tiny model, offline (minutes on a CPU)
    python train_grpo.py --max-steps 300 --run-name longer     # any setting below, as --lower-case-name
    python train_grpo.py --eval-only --adapter outputs/RUN/adapter     # only the comparison, for a saved run
    python train_grpo.py --export-only --export merged --adapter outputs/RUN/adapter   # a merged 16-bit model

The recipe, in run() below, one step after another:
  1. tokenizer     the model's, with the recipe's chat template (the base model has none): system + eos,
                   the problem, and a generation prompt that opens the working tag; for --smoke, that of a
                   tiny random Qwen3, which is written to the run folder once the data passed and then loaded
                   like any model (unless --model-name names one: --smoke --model-name DIR checks a small
                   local model on a CPU)
  2. data          math problems -> chat prompts (SYSTEM_PROMPT + problem) with an `answer` column;
                   long prompts dropped; a seeded held-out set that training never sees. Nothing is
                   written before this passes; --check stops here, on any machine (recipe/check.py)
  3. model         Unsloth + LoRA on a CUDA GPU (vLLM generation when installed), else transformers + PEFT
  4. priming       a short supervised pass (SFTTrainer) on worked solutions written in the tag format
  5. GRPO          TRL's GRPOTrainer with the four rewards of rewards.py; no labels but the answers;
                   held-out accuracy at step 0 and every EVAL_STEPS steps, sampled completions on disk
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

import verifier
from recipe.check import check
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
from recipe.generation import plan_generation
from recipe.export import check_export, export_model
from recipe.models import (
    choose_backend,
    load_model,
    load_tokenizer,
    lora_before_loading,
    lora_coverage,
    save_adapter,
    use_plain_logprobs_without_gpu,
)
from recipe.monitor import follow, headline, plain_output, watch
from recipe.report import print_comparison, write_report
from recipe.runs import (
    StopOnSignal,
    atomic_path,
    check_one_gpu_per_process,
    checkpoint_step,
    cuda_oom_advice,
    is_main_process,
    latest_checkpoint,
    main_process_first,
    make_guard,
    new_folder_beside,
    prepare_run_dir,
    record_stop,
    set_status,
    start_processes,
    train_guarded,
    world_size,
    write_json,
)
from recipe.settings import check_settings, parse_settings, settings_help
from recipe.sampling import with_dynamic_sampling
from recipe.smoke import SMOKE_SETTINGS, build_smoke_model, smoke_tokenizer, uses_tiny_model
from recipe.training import effective_objective, grpo_config, sft_config
from rewards import REWARD_FUNCS

# ============================================================================= settings
# Every constant in this block can be overridden as --lower-case-name VALUE (MAX_STEPS: --max-steps 10).
_names_before_settings = set(globals())
# -- model
MODEL_NAME = "unsloth/Qwen3-4B-Base"  # hub name or local folder; eos is <|endoftext|>; others: see docs/
BACKEND = "auto"  # auto: unsloth on a CUDA GPU, else transformers | unsloth | transformers
MAX_SEQ_LENGTH = 2048  # prompt + completion tokens
LOAD_IN_4BIT = False  # False: 16-bit LoRA (the recipe); True: QLoRA, for GPUs under ~24 GB, generates without vLLM
FAST_INFERENCE = True  # vLLM generation when vLLM is installed (pip install -r requirements-vllm.txt)
GPU_MEMORY_UTILIZATION = 0.9  # Unsloth: share of free GPU memory for its vLLM engine (weights and cache); 0.6 on 24 GB
COLOCATE_VLLM_MEMORY = 0.0  # transformers backend + vLLM: share for TRL's second engine; 0 = sized from the model
TRUST_REMOTE_CODE = False  # never run code from a model repository unless you ask for it
# -- LoRA
LORA_RANK = 32  # larger learns more and trains slower; max_lora_rank for vLLM follows it
LORA_ALPHA = 64  # 2 x rank, as the recipe
LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"  # or all-linear; other models: see docs/
# -- data
DATASET = "open-r1/DAPO-Math-17k-Processed"  # hub name, or a local .jsonl/.json/.parquet/.csv file
DATASET_CONFIG = "en"  # hub config (all | en | cn); ignored for local files
DATASET_SPLIT = "train"  # hub split; ignored for local files
PROBLEM_COLUMN = "prompt"  # the problem text (MATH-500 and OpenR1-Math-220k: problem)
ANSWER_COLUMN = "solution"  # the reference answer (gsm8k: answer, text after #### is used)
PROMPT_LENGTH_QUANTILE = 0.9  # drop prompts longer than this quantile of prompt lengths (recipe: 0.9)
MAX_PROMPT_LENGTH = 0  # tokens; 0 = from the quantile
MAX_COMPLETION_LENGTH = 0  # tokens; 0 = MAX_SEQ_LENGTH - the prompt limit (the recipe)
MAX_TRAIN_ROWS = 0  # 0 = all rows left after the held-out set
# -- format priming (supervised, before GRPO)
PRIMING = True  # the recipe's authors say it saves days of GRPO spent discovering the format
PRIMING_DATASET = "unsloth/OpenMathReasoning-mini"  # hub name or local file with worked solutions
PRIMING_CONFIG = ""  # hub config of PRIMING_DATASET; empty = its default
PRIMING_SPLIT = "cot"  # hub split of PRIMING_DATASET (the worked solutions)
PRIMING_PROBLEM_COLUMN = "problem"  # the problem text of each worked solution
PRIMING_SOLUTION_COLUMN = "generated_solution"  # <think> tags are stripped
PRIMING_ANSWER_COLUMN = "expected_answer"  # only rows with a numeric answer are kept
PRIMING_MAX_ROWS = 0  # 0 = all rows whose chat fits in half of MAX_SEQ_LENGTH (59 in the recipe)
PRIMING_EPOCHS = 2  # passes over the worked solutions
PRIMING_LEARNING_RATE = 2e-4  # the supervised pass; much higher than GRPO's
# -- GRPO
LEARNING_RATE = 5e-6  # GRPO's; lower it if the loss or reward turns erratic
WEIGHT_DECAY = 0.001  # of the LoRA weights, in both stages
WARMUP_FRACTION = 0.1  # of MAX_STEPS
LR_SCHEDULER = "linear"  # GRPO's; a transformers scheduler name: linear, cosine, constant, ...
OPTIMIZER = "adamw_8bit"  # needs bitsandbytes and CUDA; adamw_torch is used on CPU
MAX_STEPS = 100  # reward often stays near zero for the first 100-200 steps; 300+ shows more
NUM_GENERATIONS = 4  # completions per prompt; the group they are ranked in
PER_DEVICE_BATCH = 4  # completions per step and device: a multiple of NUM_GENERATIONS (4 = 1 prompt)
GRADIENT_ACCUMULATION = 1  # GRPO: batches whose gradients add up before one update
TEMPERATURE = 1.0  # sampling temperature of the GRPO completions (and of --eval-samples)
MIN_P = 0.1  # sampling: drop tokens under this share of the likeliest token's probability
TOP_P = 1.0  # sampling: nucleus share; 1.0 = off
BETA = 0.0  # KL penalty to the base model; 0 keeps no reference model (TRL 1.x default)
LOSS_TYPE = "dapo"  # grpo | dr_grpo | dapo | bnpo | ... (TRL 1.15); dapo: loss over all tokens of the batch
EPSILON = 0.2  # PPO-style clipping of the probability ratio, lower side (TRL default)
EPSILON_HIGH = 0.0  # upper side; 0 = EPSILON (cispo: 5.0, its cap on the weight itself). DAPO's "clip higher": 0.28
MASK_TRUNCATED_COMPLETIONS = False  # True: completions cut at the length limit get no loss (DAPO)
SCALE_REWARDS = "group"  # advantages divided by the group's std | batch | none (Dr. GRPO's choice)
DYNAMIC_SAMPLING_ROUNDS = 0  # DAPO: N > 0 trains only on groups whose scores differ, from up to N more rounds
REWARD_WEIGHTS = ""  # comma-separated, one per reward in rewards.REWARD_FUNCS; empty = equal
VLLM_MODE = "colocate"  # transformers backend: colocate (same GPU) | server (trl vllm-serve elsewhere)
VLLM_SERVER_URL = ""  # server mode: e.g. http://10.0.0.2:8000 (default: localhost:8000)
SAVE_STEPS = 50  # checkpoint every N steps; a rerun of the same command resumes from the last
SAVE_TOTAL_LIMIT = 2  # checkpoints kept on disk
# -- comparison
EVAL_SIZE = 100  # held-out problems, never trained on
EVAL_MAX_NEW_TOKENS = 1024  # longest completion in the comparison; longer ones are cut and scored as they are
EVAL_BATCH_SIZE = 16  # prompts per generate() call without vLLM
EVAL_PRIMED = True  # also evaluate the model right after priming, to show what GRPO itself added
EVAL_SAMPLES = 0  # k > 0: also k samples per problem at TEMPERATURE, for pass@1 and pass@k
EVAL_DATASET = ""  # empty: the held-out part of DATASET; else e.g. HuggingFaceH4/MATH-500
EVAL_CONFIG = ""  # hub config of EVAL_DATASET
EVAL_SPLIT = "test"  # split of EVAL_DATASET
EVAL_PROBLEM_COLUMN = "problem"  # EVAL_DATASET's problem text
EVAL_ANSWER_COLUMN = "answer"  # EVAL_DATASET's reference answer
EVAL_ONLY = False  # only the comparison, for the adapter given by ADAPTER
ADAPTER = ""  # with EVAL_ONLY or EXPORT_ONLY: the adapter folder of an earlier run (OUTPUT_DIR/RUN/adapter)
# -- watching the run (docs/watching-a-run.md)
EVAL_STEPS = 25  # held-out accuracy at step 0 and every N GRPO steps (0 = off); about 5 % of a default run
EVAL_DURING_SIZE = 32  # problems scored then: the first N of the comparison's held-out set (+-16 points at 50 %)
LOG_COMPLETIONS_STEPS = 1  # every N steps, 2 prompts' completions with their rewards to completions.jsonl
# -- output
OUTPUT_DIR = "outputs"  # every run gets a folder in here
RUN_NAME = "qwen3-4b-grpo"  # the run's folder: OUTPUT_DIR/RUN_NAME
IF_FINISHED = "refuse"  # a finished run already in OUTPUT_DIR/RUN_NAME: refuse | new (RUN_NAME-2, -3, ...)
EXPORT = "adapter"  # adapter | merged (a full 16-bit model, loads without PEFT) | gguf (llama.cpp, Ollama)
GGUF_QUANTIZATION = "q4_k_m"  # with --export gguf: q4_k_m | q5_k_m | q6_k | q8_0 | f16 | bf16 | f32 (llama.cpp)
EXPORT_ONLY = False  # only export ADAPTER's run as EXPORT: no training, no comparison
SEED = 3407  # LoRA init, held-out split, data order and sampling
PROCESS_TIMEOUT_MINUTES = 120  # several processes: how long each waits for the others (a first download, an evaluation)
REPORT_TO = "none"  # none | tensorboard | wandb | trackio
SMOKE = False  # the whole recipe offline with a tiny random model and a bundled toy task (recipe/smoke.py)
CHECK = False  # only check settings, data and reference answers, on any machine; no model loads (recipe/check.py)

DEFAULTS = {
    name.lower(): value
    for name, value in dict(globals()).items()
    if name.isupper() and name not in _names_before_settings
}


# ============================================================================= the recipe
def run(S: dict) -> Path:
    """Train, compare and save; returns the run folder. S: the settings, as parse_settings made them."""
    started = time.monotonic()
    plain_output()  # one line per step, no progress bars, when output goes to a file
    backend = choose_backend(S["backend"], needs_gpu=not S["smoke"])  # imports Unsloth first on a GPU
    check_one_gpu_per_process(backend)  # one process, several GPUs: refused before anything loads
    start_processes(S["process_timeout_minutes"])  # several processes: the wait allowed in every collective
    check_export(S["export"], S["gguf_quantization"])  # llama.cpp installed, before hours of training
    from trl import GRPOTrainer, SFTTrainer  # after Unsloth, which patches them when it is imported

    # 1. tokenizer with the recipe's chat template; --smoke builds its tiny model's in memory (the model is
    #    written to the run folder only after the data passed its checks)
    smoke_model = uses_tiny_model(S)  # --smoke --model-name DIR trains DIR
    with main_process_first("download the tokenizer and the data"):  # one process downloads, the others read
        if smoke_model:
            tokenizer = smoke_tokenizer([S["dataset"], S["priming_dataset"]])
        else:
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
    if S["priming"]:
        priming_table = load_table(S["priming_dataset"], S["priming_config"], S["priming_split"])
        columns = (S["priming_problem_column"], S["priming_solution_column"], S["priming_answer_column"])
        priming_rows = build_priming_rows(
            priming_table, columns, tokenizer, S["max_seq_length"] // 2, S["priming_max_rows"]
        )
    eval_problems = eval_set(S, heldout)

    if not smoke_model:  # LoRA targets that match nothing stop the run here, from the config, before any folder
        with main_process_first():
            planned = lora_before_loading(S)
    # The data passed: only now the run folder (and --smoke's tiny random Qwen3, loaded by path like any model)
    run_dir, resume = prepare_run_dir(S["output_dir"], S["run_name"], S["if_finished"])
    S["run_name"] = run_dir.name
    print(f"backend: {backend}\nrun folder: {run_dir}")
    if world_size() > 1:
        print(f"data-parallel over {world_size()} processes; only the main one writes outputs")
    if smoke_model:
        with main_process_first("build the tiny model"):
            S["model_name"] = build_smoke_model(run_dir / "base_model", [S["dataset"], S["priming_dataset"]], S["seed"])
    print(f"training on {len(train_set)} problems; evaluating on {len(eval_problems)} held-out problems")
    # vLLM or not (not for 4-bit), and its memory share, before any load
    S.update(plan_generation(dict(S, max_prompt_length=max_prompt_length), backend))
    resolved = dict(
        S, backend=backend, max_prompt_length=max_prompt_length, max_completion_length=max_completion_length
    )
    if not smoke_model:  # config.json: the targets resolved for this model, and apart from them those asked for
        resolved.update(lora_targets=",".join(planned["targets"]), lora_targets_asked=S["lora_targets"])
    if is_main_process():
        write_json(run_dir / "config.json", resolved)
        with atomic_path(run_dir / "heldout.jsonl") as tmp:  # whole or not at all, as every file the run writes
            heldout.to_json(str(tmp))
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
            with main_process_first(f"download and load {S['model_name']}"):
                model, tokenizer = load_model(S, backend, tokenizer)
            resolved["lora"] = lora_coverage(model)  # the layers actually wrapped, written to config.json below
            wrapped = ",".join(resolved["lora"]["wrapped_modules"])
            resolved.update(lora_targets=wrapped, lora_targets_asked=S["lora_targets"])

            # 4. format priming: a short supervised pass on worked solutions in the tag format
            if priming_rows is not None and not resume:  # a resumed run was primed before its checkpoints
                headline(f"format priming: {len(priming_rows)} worked solutions x {S['priming_epochs']} epochs")
                priming = SFTTrainer(
                    model=model,
                    args=sft_config(S, run_dir / "priming"),
                    train_dataset=priming_rows,
                    processing_class=tokenizer,
                    callbacks=[guard],
                )
                follow(priming, "priming")  # one short line per step instead of the trainer's raw dicts
                train_guarded(priming, guard, run_dir)
                history += [dict(h, stage="priming") for h in priming.state.log_history]
                if stop.agree():  # every process, so that none goes on to GRPO alone
                    record_stop(run_dir, stop.received, checkpoint=None)  # in status.json too, for a closed pipe
                    raise SystemExit(130)
                if is_main_process():
                    save_adapter(model, tokenizer, run_dir / "primed_adapter")  # the middle column of the report
                    write_json(run_dir / "log_history.json", history)  # a resumed run keeps the priming log

            # 5. GRPO: groups of completions per prompt, scored by the four rewards, each pushed toward the
            #    better ones of its group; resumes from the newest checkpoint when there is one
            verifier.start()  # math-verify's worker, started and warm before step 1: no reward call pays for it
            # DYNAMIC_SAMPLING_ROUNDS > 0: the same trainer class, with same-score groups replaced (recipe/sampling.py)
            trainer = with_dynamic_sampling(GRPOTrainer, S["dynamic_sampling_rounds"])(
                model=model,
                reward_funcs=REWARD_FUNCS,
                args=grpo_config(S, run_dir / "checkpoints", backend, max_completion_length),
                train_dataset=train_set,
                processing_class=tokenizer,
                callbacks=[guard],
            )
            if is_main_process():  # the objective as the trainer holds it, after any library's defaults
                write_json(run_dir / "config.json", dict(resolved, trainer=effective_objective(trainer.args)))
            headline(
                f"GRPO: {S['max_steps']} steps, {S['num_generations']} completions per prompt, "
                f"{S['per_device_batch'] // S['num_generations']} prompt(s) per device and step"
                + (f", same-score groups replaced from up to {S['dynamic_sampling_rounds']} more rounds"
                   if S["dynamic_sampling_rounds"] else "")
            )
            if resume:
                headline(f"resuming from {resume} (step {checkpoint_step(resume)} of {S['max_steps']})")
            watch(trainer, S, run_dir, eval_problems, train_set)  # step lines, held-out accuracy, completions.jsonl
            train_guarded(trainer, guard, run_dir, resume)
            history += trainer.state.log_history
            stopped = stop.agree()  # every process: a signal after the last step's end counts on all of them
    except torch.OutOfMemoryError:
        set_status(run_dir, "stopped", reason="out of GPU memory")  # from the main process only
        raise SetupError(cuda_oom_advice(S)) from None
    except SetupError as e:  # a refusal after the folder was made: it must not read as a run still training
        set_status(run_dir, "stopped", reason=str(e).splitlines()[0])
        raise
    if not is_main_process():
        if stopped:
            raise SystemExit(130)
        return run_dir
    write_json(run_dir / "log_history.json", history)
    adapter = save_adapter(model, tokenizer, run_dir / "adapter")
    if stopped:
        record_stop(run_dir, stop.received, latest_checkpoint(run_dir), adapter)  # in status.json too
        raise SystemExit(130)

    # 6. comparison: base, primed and trained on the same held-out problems, scored by rewards.py
    adapters = models_to_compare(adapter, run_dir / "primed_adapter", S["eval_primed"])
    try:
        report = compare(model, tokenizer, eval_problems, S, adapters, sources=eval_sources(S))
    except torch.OutOfMemoryError:
        raise SetupError(cuda_oom_advice(S)) from None
    write_report(report, history, run_dir)
    if S["export"] != "adapter":
        folder = export_model(model, tokenizer, S, adapter, backend, run_dir / S["export"])
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
    plain_output()  # no progress bars (loading weights, reading data) when output goes to a file
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
    S = {**DEFAULTS, **earlier, **{k: S[k] for k in S.get("explicit", [])}}  # DEFAULTS: settings added since
    if S.get("smoke") and "model_name" not in earlier.get("explicit", []):  # the tiny model is in the run folder
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
    """The merged (or GGUF) model from a saved adapter: PEFT's merge on the CPU, then llama.cpp for GGUF;
    no GPU needed. The folder (with export.json) appears only once the export is complete."""
    choose_backend("transformers", needs_gpu=False)
    check_export(S["export"], S["gguf_quantization"])
    run_dir = new_folder_beside(source_dir, S["output_dir"], S["export"])
    folder = export_model(None, None, S, adapter, "transformers", run_dir)
    print(f"exported {S['export']} model: {folder}")
    return run_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(settings_help(__doc__.split("\n\n")[1], DEFAULTS, Path(__file__)))
        return 0
    try:
        settings = parse_settings(argv, DEFAULTS, SMOKE_SETTINGS)
        check_settings(settings, [f.__name__ for f in REWARD_FUNCS])
        if settings["check"]:
            check(settings)  # the data and its reference answers, then stop: no GPU, no model, nothing written
        elif settings["eval_only"] or settings["export_only"]:
            reuse_run(settings)
        else:
            run(settings)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
