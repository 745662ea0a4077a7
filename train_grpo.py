"""Turn a base language model into a math reasoner with GRPO and verifiable rewards, on one GPU.

    python train_grpo.py                       # the full recipe on a CUDA GPU (Qwen3-4B-Base, DAPO math)
    python train_grpo.py --smoke               # every step offline on CPU in under a minute (tiny model)
    python train_grpo.py --max-steps 300 --run-name longer     # any setting below, as --lower-case-name
    python train_grpo.py --eval-only --adapter outputs/RUN/adapter   # only the base vs trained comparison

The steps, each in one function called from main():
  1. settings      the constants below, overridden from the command line, written to config.json
  2. data          math problems -> chat prompts (SYSTEM_PROMPT + problem) with an `answer` column;
                   long prompts dropped; a seeded held-out set that training never sees
  3. model         Unsloth + LoRA on a CUDA GPU (vLLM generation when installed), else transformers + PEFT
  4. chat template the base model has none: system + eos, user, and a generation prompt that opens
                   the working tag, all built from the tags in rewards.py
  5. priming       a short supervised pass on worked solutions written in the tag format
  6. GRPO          TRL's GRPOTrainer with the four rewards of rewards.py; no labels but the answers
  7. comparison    base (adapter off) vs trained (adapter on) on the held-out problems, same prompt,
                   same greedy decoding, same verifier; report, plots and the adapter in OUTPUT_DIR/RUN_NAME

How this departs from the reference notebook: rewards judge mathematical equality (rewards.py), TRL 1.x
replaces the removed `max_prompt_length` by filtering prompts here, the per-device batch holds whole
groups of generations, and the comparison is a held-out evaluation rather than one question.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import rewards
from rewards import REASONING_END, REASONING_START, REWARD_FUNCS, SOLUTION_END, SOLUTION_START, SYSTEM_PROMPT

# ============================================================================= settings
# Every constant in this block can be overridden as --lower-case-name VALUE (MAX_STEPS: --max-steps 10).
_names_before_settings = set(globals())
# -- model
MODEL_NAME = "unsloth/Qwen3-4B-Base"  # hub name or local folder; eos is <|endoftext|>
BACKEND = "auto"  # auto: unsloth on a CUDA GPU, else transformers | unsloth | transformers
MAX_SEQ_LENGTH = 2048  # prompt + completion tokens
LOAD_IN_4BIT = False  # False: 16-bit LoRA (the recipe); True: QLoRA, for GPUs under ~24 GB
FAST_INFERENCE = True  # vLLM generation when vLLM is installed (pip install -r requirements-vllm.txt)
GPU_MEMORY_UTILIZATION = 0.9  # share of GPU memory vLLM may take; lower it (0.5-0.6) on small GPUs
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
MAX_PROMPT_LENGTH = 0  # tokens; 0 = from the quantile. Completions get MAX_SEQ_LENGTH - this
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
BETA = 0.0  # KL penalty to the base model; TRL 1.x default 0 (no reference model kept)
LOSS_TYPE = "dapo"  # TRL 1.x default; grpo | dr_grpo | dapo | bnpo
REWARD_WEIGHTS = ""  # comma-separated, one per reward in rewards.REWARD_FUNCS; empty = equal
VLLM_MODE = "colocate"  # transformers backend: colocate (same GPU) | server (trl vllm-serve elsewhere)
VLLM_SERVER_URL = ""  # server mode: e.g. http://10.0.0.2:8000 (default: localhost:8000)
SAVE_STEPS = 50  # checkpoint every N steps; a rerun of the same command resumes from the last
SAVE_TOTAL_LIMIT = 2  # checkpoints kept on disk
# -- comparison
EVAL_SIZE = 100  # held-out problems, never trained on
EVAL_MAX_NEW_TOKENS = 1024
EVAL_BATCH_SIZE = 16  # prompts per generate() call without vLLM
EVAL_DATASET = ""  # empty: the held-out part of DATASET; else e.g. HuggingFaceH4/MATH-500
EVAL_CONFIG = ""
EVAL_SPLIT = "test"
EVAL_PROBLEM_COLUMN = "problem"
EVAL_ANSWER_COLUMN = "answer"
EVAL_ONLY = False  # only the comparison, for the adapter given by ADAPTER
ADAPTER = ""  # with EVAL_ONLY: the adapter folder of an earlier run (OUTPUT_DIR/RUN/adapter)
# -- output
OUTPUT_DIR = "outputs"
RUN_NAME = "qwen3-4b-grpo"  # the run's folder: OUTPUT_DIR/RUN_NAME
IF_FINISHED = "refuse"  # a finished run already in OUTPUT_DIR/RUN_NAME: refuse | new (RUN_NAME-2, -3, ...)
SEED = 3407
REPORT_TO = "none"  # none | tensorboard | wandb | trackio
SMOKE = False  # the whole recipe offline on CPU with a tiny random model and the bundled sample

DEFAULTS = {
    name.lower(): value
    for name, value in dict(globals()).items()
    if name.isupper() and name not in _names_before_settings
}

# --smoke replaces these defaults (an explicit --name VALUE still wins). Tuned so the format reward
# visibly rises within the GRPO steps on 2 CPU cores; a tiny random model needs far larger rates.
HERE = Path(__file__).resolve().parent
SMOKE_DEFAULTS = {
    "model_name": "tiny-random-qwen3",
    "backend": "transformers",
    "max_seq_length": 512,
    "lora_rank": 16,
    "lora_alpha": 32,
    "dataset": str(HERE / "data" / "math_sample.jsonl"),
    "priming_dataset": str(HERE / "data" / "primer_sample.jsonl"),
    "priming_max_rows": 64,
    "priming_epochs": 5,  # the tags appear, the exact format rarely: GRPO has that left to learn
    "priming_learning_rate": 1e-2,
    "learning_rate": 2e-3,
    "optimizer": "adamw_torch",
    "max_steps": 24,
    "num_generations": 8,
    "per_device_batch": 16,
    "save_steps": 8,
    "eval_size": 16,
    "eval_max_new_tokens": 48,
    "run_name": "smoke",
}
SMOKE_MAX_COMPLETION_LENGTH = 40  # tokens; keeps a smoke step well under a second
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


class SetupError(Exception):
    """A problem with the settings, the data or the machine, found before any time is spent."""


# ============================================================================= 1. settings
def parse_settings(argv: list[str]) -> dict:
    """Defaults, then --smoke's defaults, then each --name VALUE, type-checked against the default.

    A boolean setting given alone (--eval-only) means true. Unknown names fail with the valid ones.
    The names given on the command line are kept under the key "explicit".
    """
    overrides: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise SetupError(f"unexpected argument {arg!r}: settings are given as --name VALUE (see --help)")
        name, _, value = arg[2:].partition("=")
        name = name.replace("-", "_").lower()
        if name not in DEFAULTS:
            import difflib

            close = difflib.get_close_matches(name, DEFAULTS, n=3)
            hint = f" Did you mean {', '.join('--' + c.replace('_', '-') for c in close)}?" if close else ""
            valid = " ".join("--" + n.replace("_", "-") for n in DEFAULTS)
            raise SetupError(f"unknown setting --{name.replace('_', '-')}.{hint}\nValid settings: {valid}")
        if not value and "=" not in arg:
            next_is_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            if next_is_value:
                value, i = argv[i + 1], i + 1
            elif isinstance(DEFAULTS[name], bool):
                value = "true"
            else:
                raise SetupError(f"--{name.replace('_', '-')} needs a value ({type(DEFAULTS[name]).__name__})")
        overrides[name] = value
        i += 1

    settings = dict(DEFAULTS)
    smoke = _coerce("smoke", overrides["smoke"]) if "smoke" in overrides else DEFAULTS["smoke"]
    if smoke:
        settings.update(SMOKE_DEFAULTS)
    for name, value in overrides.items():
        settings[name] = _coerce(name, value)
        print(f"setting {name} = {settings[name]!r}")
    settings["explicit"] = sorted(overrides)
    return settings


def _coerce(name: str, value: str):
    default = DEFAULTS[name]
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SetupError(f"{flag} takes true or false, not {value!r}")
    try:
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise SetupError(
            f"{flag} takes {'an integer' if isinstance(default, int) else 'a number'}, not {value!r}"
        ) from None
    return value


def settings_help() -> str:
    rows = [f"  --{name.replace('_', '-'):28} {value!r}" for name, value in DEFAULTS.items()]
    return __doc__.split("\n\n")[1] + "\n\nSettings and their defaults:\n" + "\n".join(rows)


def reward_weights(settings: dict) -> list[float] | None:
    text = settings["reward_weights"].strip()
    if not text:
        return None
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise SetupError(f"--reward-weights takes comma-separated numbers, not {text!r}") from None
    if len(weights) != len(REWARD_FUNCS):
        names = ", ".join(f.__name__ for f in REWARD_FUNCS)
        raise SetupError(f"--reward-weights needs {len(REWARD_FUNCS)} numbers, one for each of: {names}")
    return weights


def check_settings(s: dict) -> None:
    """Settings that cannot work together, found before anything is loaded."""
    problems = []
    if s["per_device_batch"] % s["num_generations"] != 0:
        problems.append(
            f"--per-device-batch ({s['per_device_batch']}) must be a multiple of --num-generations "
            f"({s['num_generations']}): each step ranks whole groups of completions"
        )
    if s["num_generations"] < 2:
        problems.append("--num-generations must be at least 2: GRPO compares completions within a group")
    if s["max_prompt_length"] and s["max_prompt_length"] >= s["max_seq_length"]:
        problems.append(
            f"--max-prompt-length ({s['max_prompt_length']}) must be below --max-seq-length ({s['max_seq_length']}), "
            "which holds the prompt and the completion"
        )
    for name in ("learning_rate", "priming_learning_rate", "weight_decay", "beta", "warmup_fraction"):
        if s[name] < 0:
            problems.append(f"--{name.replace('_', '-')} must not be negative (got {s[name]})")
    for name in ("max_steps", "max_seq_length", "lora_rank", "eval_max_new_tokens", "save_steps", "eval_batch_size"):
        if s[name] <= 0:
            problems.append(f"--{name.replace('_', '-')} must be positive (got {s[name]})")
    if not 0 < s["prompt_length_quantile"] <= 1:
        problems.append(f"--prompt-length-quantile must be in (0, 1] (got {s['prompt_length_quantile']})")
    if not 0 < s["gpu_memory_utilization"] < 1:
        problems.append(f"--gpu-memory-utilization must be between 0 and 1 (got {s['gpu_memory_utilization']})")
    if s["eval_size"] < 0:
        problems.append(f"--eval-size must not be negative (got {s['eval_size']})")
    if s["backend"] not in ("auto", "unsloth", "transformers"):
        problems.append(f"--backend must be auto, unsloth or transformers (got {s['backend']!r})")
    if s["if_finished"] not in ("refuse", "new"):
        problems.append(f"--if-finished must be refuse or new (got {s['if_finished']!r})")
    if s["vllm_mode"] not in ("colocate", "server"):
        problems.append(f"--vllm-mode must be colocate or server (got {s['vllm_mode']!r})")
    if s["eval_only"] and not s["adapter"]:
        problems.append("--eval-only needs --adapter PATH: the adapter folder of an earlier run")
    if not s["run_name"] or "/" in s["run_name"] or s["run_name"] in (".", ".."):
        problems.append(f"--run-name must be a plain folder name (got {s['run_name']!r})")
    try:
        reward_weights(s)
    except SetupError as e:
        problems.append(str(e))
    if problems:
        raise SetupError("settings that cannot work:\n  - " + "\n  - ".join(problems))


def choose_backend(settings: dict) -> str:
    """unsloth on a CUDA GPU, transformers otherwise; a real run without a GPU stops here.

    Imports Unsloth when chosen (before anything imports trl) and checks the training libraries import."""
    import torch

    has_cuda = torch.cuda.is_available()
    if not has_cuda and not settings["smoke"] and not settings["eval_only"]:
        raise SetupError(
            "no CUDA GPU found. The real run trains a 4B model and needs one (24 GB or more; see README.md).\n"
            "To run the whole recipe on this machine with a tiny model instead: python train_grpo.py --smoke"
        )
    wanted = settings["backend"]
    if wanted == "unsloth" and not has_cuda:
        raise SetupError("--backend unsloth needs a CUDA GPU; use --backend transformers on this machine")
    if wanted == "auto":
        wanted = "unsloth" if has_cuda and not settings["smoke"] else "transformers"
    if wanted == "unsloth" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        print("Unsloth trains on one GPU; with several processes the transformers + PEFT backend is used.")
        wanted = "transformers"
    if wanted == "unsloth":
        import unsloth  # noqa: F401 - must come before trl and transformers so it can patch them
    check_libraries()
    return wanted


def check_libraries() -> None:
    """Import the training libraries once, so a broken install ends in advice rather than a traceback."""
    import traceback

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


# ============================================================================= run folder
def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def main_process_first():
    """Under `accelerate launch`, the main process goes first: it writes what the others then read."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        return PartialState().main_process_first()
    return contextlib.nullcontext()


def prepare_run_dir(settings: dict) -> tuple[Path, str | None]:
    """The run's folder, and the checkpoint to resume from (None for a fresh start).

    A finished run is never overwritten: refused, or a new name with --if-finished new.
    """
    output = Path(settings["output_dir"])
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise SetupError(
            f"cannot write to the output folder {output}: {e.strerror or e}. Choose another with --output-dir PATH."
        ) from None
    run_dir = output / settings["run_name"]
    if _status(run_dir) == "finished":
        if settings["if_finished"] != "new":
            raise SetupError(
                f"{run_dir} holds a finished run; it is left untouched. Choose another --run-name, "
                "or pass --if-finished new to start RUN_NAME-2, -3, ... beside it."
            )
        n = 2
        while _status(output / f"{settings['run_name']}-{n}") == "finished":
            n += 1
        print(f"{run_dir} holds a finished run; this one goes to {run_dir}-{n}")
        settings["run_name"] = f"{settings['run_name']}-{n}"
        run_dir = output / settings["run_name"]
    resume = _latest_checkpoint(run_dir)
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, resume


def _status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def set_status(run_dir: Path, status: str, **extra) -> None:
    if is_main_process():
        write_json(run_dir / "status.json", {"status": status, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **extra})


def write_json(path: Path, data) -> None:
    """Write through a temporary file, so an interrupted write never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


# ============================================================================= 2. data
LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def load_table(source: str, config: str = "", split: str = "train"):
    """A datasets.Dataset from a local file or folder, or from the Hugging Face Hub."""
    import datasets

    path = Path(source).expanduser()
    if path.suffix.lower() in LOCAL_FORMATS or path.exists():
        if not path.exists():
            raise SetupError(f"dataset file {path} does not exist. Check the path, or give a hub name instead.")
        if path.is_dir():
            if any((path / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json")):
                loaded = datasets.load_from_disk(str(path))  # written by save_to_disk
                return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
            try:  # a copy of the hub repository (hf download NAME --repo-type dataset --local-dir DIR)
                return datasets.load_dataset(str(path), config or None, split=split)
            except Exception as e:  # noqa: BLE001 - wrong config or split names, no data files
                raise SetupError(
                    f"could not read the dataset folder {path} (config {config or 'default'}, "
                    f"split {split}): {type(e).__name__}: {str(e)[:300]}"
                ) from None
        kind = LOCAL_FORMATS.get(path.suffix.lower())
        if kind is None:
            raise SetupError(f"{path}: unsupported file type; use one of {', '.join(LOCAL_FORMATS)}")
        try:
            return datasets.load_dataset(kind, data_files=str(path), split="train")
        except Exception as e:  # noqa: BLE001 - a malformed file: say which and why
            raise SetupError(f"could not read {path} as {kind}: {e}") from None
    try:
        return datasets.load_dataset(source, config or None, split=split)
    except Exception as e:  # noqa: BLE001 - offline, not found, gated, bad config: all end here
        raise SetupError(
            f"could not load dataset {source!r} (config {config or 'default'}, split {split}) from the Hugging "
            f"Face Hub: {type(e).__name__}: {str(e)[:300]}\nIf this machine cannot reach the hub, download the "
            "data elsewhere and give its local path instead: a .jsonl/.parquet/.csv file, a save_to_disk folder, "
            "or a folder from `hf download NAME --repo-type dataset --local-dir DIR`."
        ) from None


def reference_answer(value) -> str:
    """The reference as text; gsm8k-style answers keep only what follows the last ####."""
    if value is None:
        return ""
    text = str(value)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    return text.strip()


def build_prompts(table, problem_column: str, answer_column: str):
    """Rows -> {prompt: chat messages, answer, problem, problem_id}; empty rows dropped and counted."""
    missing = [c for c in (problem_column, answer_column) if c not in table.column_names]
    if missing:
        raise SetupError(
            f"the dataset has no column {' or '.join(repr(c) for c in missing)}; its columns are "
            f"{table.column_names}. Name the right ones with --problem-column and --answer-column "
            "(or --eval-problem-column / --eval-answer-column for the evaluation set)."
        )
    rows = []
    for index, (problem, answer) in enumerate(zip(table[problem_column], table[answer_column], strict=True)):
        problem = "" if problem is None else str(problem).strip()
        answer = reference_answer(answer)
        if problem and answer:
            rows.append(
                {
                    "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": problem}],
                    "answer": answer,
                    "problem": problem,
                    "problem_id": index,
                }
            )
    dropped = len(table) - len(rows)
    if dropped:
        print(f"dropped {dropped} of {len(table)} rows with an empty problem or answer")
    if not rows:
        raise SetupError(
            f"no usable rows: every one of the {len(table)} rows has an empty {problem_column!r} or {answer_column!r}"
        )
    import datasets

    return datasets.Dataset.from_list(rows)


def drop_long_prompts(dataset, tokenizer, quantile: float, max_prompt_length: int = 0):
    """Keep prompts up to the quantile of prompt lengths (or MAX_PROMPT_LENGTH); returns (dataset, limit)."""
    import numpy as np

    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in dataset["prompt"]]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    limit = max_prompt_length or int(math.ceil(np.quantile(lengths, quantile)))
    keep = [i for i, n in enumerate(lengths) if n <= limit]
    print(f"prompts up to {limit} tokens: kept {len(keep)} of {len(lengths)}")
    return dataset.select(keep), limit


def split_heldout(dataset, size: int, seed: int):
    """(train, held-out): a seeded random set of problems that training never sees."""
    if size > len(dataset) - 1:
        raise SetupError(
            f"--eval-size {size} leaves nothing to train on: only {len(dataset)} usable problems. "
            "Lower --eval-size or use more data."
        )
    if size == 0:
        return dataset, dataset.select([])
    parts = dataset.train_test_split(test_size=size, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def build_priming_rows(table, settings: dict, tokenizer):
    """Worked solutions rewritten into the tag format, as chat messages, short enough to train on."""
    columns = [settings[f"priming_{c}_column"] for c in ("problem", "solution", "answer")]
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SetupError(
            f"the priming dataset has no column {' or '.join(repr(c) for c in missing)}; its columns are "
            f"{table.column_names}. Set --priming-problem-column, --priming-solution-column and "
            "--priming-answer-column, or --priming false."
        )
    limit = settings["max_seq_length"] // 2
    rows = []
    for problem, solution, answer in zip(*(table[c] for c in columns), strict=True):
        answer = reference_answer(answer)
        if not problem or not solution or rewards.parse_number(answer) is None:
            continue
        working = str(solution).replace("<think>", "").replace("</think>", "").strip()
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": str(problem).strip()},
            {
                "role": "assistant",
                "content": f"{REASONING_START}{working}{REASONING_END}{SOLUTION_START}{answer}{SOLUTION_END}",
            },
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= limit:
            rows.append({"messages": messages})
        if settings["priming_max_rows"] and len(rows) >= settings["priming_max_rows"]:
            break
    if not rows:
        raise SetupError(
            f"no priming rows with a numeric answer fit in {limit} tokens; "
            "raise --max-seq-length or pass --priming false"
        )
    import datasets

    return datasets.Dataset.from_list(rows)


# ============================================================================= 3-4. model and chat template
def chat_template() -> str:
    """The recipe's template for a base model: system + eos, the user's text, assistant turns + eos,
    and a generation prompt that opens the working, so completions start inside it."""
    return (
        "{% if messages[0]['role'] == 'system' %}"
        "{{ messages[0]['content'] + eos_token }}{% set loop_messages = messages[1:] %}"
        "{% else %}"
        "{{ " + json.dumps(SYSTEM_PROMPT) + " + eos_token }}{% set loop_messages = messages %}"
        "{% endif %}"
        "{% for message in loop_messages %}"
        "{% if message['role'] == 'user' %}{{ message['content'] }}"
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ " + json.dumps(REASONING_START) + " }}{% endif %}"
    )


def build_tiny_tokenizer(texts: list[str], vocab_size: int = SMOKE_TOKENIZER_VOCAB):
    """A byte-level BPE tokenizer trained on `texts`, with each tag as one (non-special) token, so the
    tags survive decoding with skip_special_tokens=True as they do with Qwen's tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    eos = "<|endoftext|>"
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[eos],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    core.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in rewards.TAGS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=eos, pad_token=eos)
    tokenizer.chat_template = chat_template()
    return tokenizer


def build_tiny_model(tokenizer, seed: int):
    """A randomly initialised Qwen3 of about half a million parameters, for offline runs."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        **TINY_QWEN3,
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.2,  # 10x the usual: with tiny weights every token is equally likely and LoRA barely moves it
    )
    return Qwen3ForCausalLM(config)


def smoke_texts(settings: dict) -> list[str]:
    """What the smoke tokenizer is trained on: the bundled problems, solutions and the prompt."""
    texts = [SYSTEM_PROMPT]
    for path in (settings["dataset"], settings["priming_dataset"]):
        if Path(path).is_file():
            with open(path, encoding="utf-8") as f:
                texts += [" ".join(str(v) for v in json.loads(line).values()) for line in f if line.strip()]
    return texts


def load_tokenizer(settings: dict, run_dir: Path | None = None):
    """The tokenizer alone (cheap), with the recipe's chat template, so data checks run before the model."""
    if settings["model_name"] == SMOKE_DEFAULTS["model_name"]:
        saved = run_dir / "base_model" if run_dir else None
        if saved and (saved / "tokenizer.json").exists():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(saved))
        return build_tiny_tokenizer(smoke_texts(settings))
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            settings["model_name"], trust_remote_code=settings["trust_remote_code"]
        )
    except Exception as e:  # noqa: BLE001 - offline, typo, gated: say which name and how to fix it
        raise SetupError(
            f"could not load the tokenizer of {settings['model_name']!r}: {type(e).__name__}: {str(e)[:300]}\n"
            "If this machine cannot reach the Hugging Face Hub, download the model elsewhere "
            "(hf download NAME --local-dir DIR) and pass --model-name DIR."
        ) from None
    tokenizer.chat_template = chat_template()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(settings: dict, backend: str, tokenizer, run_dir: Path, adapter: str | None = None):
    """(model with LoRA, tokenizer). Unsloth's FastLanguageModel on a GPU, else transformers + PEFT.

    With `adapter`, that saved adapter is loaded instead of a fresh LoRA (for --eval-only).
    """
    if backend == "unsloth":
        return _load_unsloth(settings, tokenizer, adapter)
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    if settings["model_name"] == SMOKE_DEFAULTS["model_name"]:
        saved = run_dir / "base_model"
        if (saved / "config.json").exists():
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(str(saved))
        else:
            model = build_tiny_model(tokenizer, settings["seed"])
            if is_main_process():
                model.save_pretrained(str(saved))  # --eval-only rebuilds the comparison from these weights
                tokenizer.save_pretrained(str(saved))
    else:
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig

        kwargs = {
            "dtype": torch.bfloat16 if torch.cuda.is_available() else torch.float32,
            "trust_remote_code": settings["trust_remote_code"],
        }
        if torch.cuda.is_available():
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # this process's GPU
        if settings["load_in_4bit"]:
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
            )
        try:
            model = AutoModelForCausalLM.from_pretrained(settings["model_name"], **kwargs)
        except OSError as e:
            raise model_load_error(settings, e) from None
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
    if torch.cuda.is_available():
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    return model, tokenizer


def model_load_error(settings: dict, error: Exception) -> SetupError:
    return SetupError(
        f"could not load model {settings['model_name']!r}: {str(error)[:300]}\n"
        "Without hub access, download it elsewhere (hf download NAME --local-dir DIR) and pass --model-name DIR."
    )


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def _load_unsloth(settings: dict, tokenizer, adapter: str | None):
    """Unsloth's path: its kernels, 16-bit or 4-bit LoRA, vLLM fast inference when installed."""
    from unsloth import FastLanguageModel  # imported before trl by main(), so it can patch the trainers

    fast = settings["fast_inference"] and vllm_available()
    if settings["fast_inference"] and not fast:
        print(
            "vLLM is not installed: generating with Unsloth's transformers path (pip install -r requirements-vllm.txt)"
        )
    try:
        model, unsloth_tokenizer = FastLanguageModel.from_pretrained(
            model_name=adapter or settings["model_name"],
            max_seq_length=settings["max_seq_length"],
            load_in_4bit=settings["load_in_4bit"],
            fast_inference=fast,
            max_lora_rank=settings["lora_rank"],
            gpu_memory_utilization=settings["gpu_memory_utilization"],
            trust_remote_code=settings["trust_remote_code"],
        )
    except OSError as e:
        raise model_load_error(settings, e) from None
    unsloth_tokenizer.chat_template = tokenizer.chat_template
    if unsloth_tokenizer.pad_token is None:
        unsloth_tokenizer.pad_token = unsloth_tokenizer.eos_token
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


def optimizer_name(settings: dict) -> str:
    import torch

    if "8bit" in settings["optimizer"] and not torch.cuda.is_available():
        return "adamw_torch"  # bitsandbytes' 8-bit Adam needs CUDA
    return settings["optimizer"]


# ============================================================================= stopping safely
class StopOnSignal:
    """Ctrl-C or SIGTERM: finish the current step, save a checkpoint, stop. A second Ctrl-C exits at once."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.received:
            print("\nsecond interrupt: exiting now, without saving", flush=True)
            os._exit(130)
        self.received = signal.Signals(signum).name
        print(
            f"\n{self.received}: finishing this step, then saving a checkpoint (press Ctrl-C again to quit now)",
            flush=True,
        )


def make_callbacks(stop: StopOnSignal):
    from transformers import TrainerCallback

    class Guard(TrainerCallback):
        """Saves and stops on a signal; stops without saving when the loss turns NaN or infinite."""

        def __init__(self):
            self.bad_loss_step: int | None = None

        def on_step_end(self, args, state, control, **kwargs):
            if stop.received:
                control.should_save = True
                control.should_training_stop = True
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            values = [(logs or {}).get(key) for key in ("loss", "grad_norm")]
            if any(v is not None and not math.isfinite(v) for v in values):
                self.bad_loss_step = state.global_step
                control.should_save = False  # keep the last good checkpoint as the newest
                control.should_training_stop = True
            return control

    return Guard()


# ============================================================================= 5. format priming
def prime_format(model, tokenizer, rows, settings: dict, run_dir: Path, backend: str, stop: StopOnSignal) -> list[dict]:
    """A short supervised pass on worked solutions in the tag format; returns its log history."""
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir=str(run_dir / "priming"),
        num_train_epochs=settings["priming_epochs"],
        learning_rate=settings["priming_learning_rate"],
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        warmup_steps=5,
        weight_decay=settings["weight_decay"],
        lr_scheduler_type="linear",
        optim=optimizer_name(settings),
        logging_steps=1,
        save_strategy="no",
        report_to=settings["report_to"],
        seed=settings["seed"],
        max_length=settings["max_seq_length"],
        disable_tqdm=not sys.stderr.isatty(),
        ddp_find_unused_parameters=False,  # LoRA uses every adapter weight
        **precision(),
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=rows, processing_class=tokenizer, callbacks=[make_callbacks(stop)]
    )
    print(f"format priming: {len(rows)} worked solutions x {settings['priming_epochs']} epochs")
    trainer.train()
    return trainer.state.log_history


# ============================================================================= 6. GRPO
def grpo_config(settings: dict, run_dir: Path, backend: str, max_completion_length: int):
    from trl import GRPOConfig

    extra = {}
    if backend == "unsloth" and settings["fast_inference"] and vllm_available():
        from vllm import SamplingParams

        # Unsloth's patched GRPOConfig takes vLLM's sampling parameters directly.
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
            vllm_gpu_memory_utilization=settings["gpu_memory_utilization"],
        )
        if settings["vllm_server_url"]:
            extra["vllm_server_base_url"] = settings["vllm_server_url"]
    return GRPOConfig(
        output_dir=str(run_dir / "checkpoints"),
        run_name=settings["run_name"],
        learning_rate=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        warmup_steps=int(math.ceil(settings["warmup_fraction"] * settings["max_steps"])),
        lr_scheduler_type=settings["lr_scheduler"],
        optim=optimizer_name(settings),
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
        reward_weights=reward_weights(settings),
        report_to=settings["report_to"],
        seed=settings["seed"],
        disable_tqdm=not sys.stderr.isatty(),
        ddp_find_unused_parameters=False,  # LoRA uses every adapter weight
        **precision(),
        **extra,
    )


def train_grpo(
    model,
    tokenizer,
    train_set,
    settings,
    run_dir: Path,
    backend: str,
    max_completion_length: int,
    resume: str | None,
    stop: StopOnSignal,
):
    """GRPO with the four rewards. Returns (log history, how it ended: finished | interrupted)."""
    from trl import GRPOTrainer

    config = grpo_config(settings, run_dir, backend, max_completion_length)
    guard = make_callbacks(stop)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=REWARD_FUNCS,
        args=config,
        train_dataset=train_set,
        processing_class=tokenizer,
        callbacks=[guard],
    )
    if resume:
        step = json.loads((Path(resume) / "trainer_state.json").read_text())["global_step"]
        print(f"resuming from {resume} (step {step} of {settings['max_steps']})")
    print(
        f"GRPO: {settings['max_steps']} steps, {settings['num_generations']} completions per prompt, "
        f"{settings['per_device_batch'] // settings['num_generations']} prompt(s) per device and step"
    )
    try:
        trainer.train(resume_from_checkpoint=resume)
    except RuntimeError as e:  # sampling from NaN or infinite probabilities: the weights diverged
        if "inf" not in str(e) or "nan" not in str(e):
            raise
        guard.bad_loss_step = trainer.state.global_step + 1
    history = trainer.state.log_history
    if guard.bad_loss_step is not None:
        raise SetupError(
            f"training diverged at step {guard.bad_loss_step}: the loss, the gradients or the model's "
            "probabilities became NaN or infinite. Training stopped and that step was not saved. Newest "
            f"checkpoint, from before it: {_latest_checkpoint(run_dir) or 'none'}. Lower --learning-rate and rerun "
            "the same command to resume from it, or delete the checkpoints to start over."
        )
    if stop.received:
        return history, "interrupted"
    return history, "finished"


def _latest_checkpoint(run_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = run_dir / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def save_adapter(model, tokenizer, run_dir: Path) -> Path:
    """The LoRA adapter in PEFT format, with the tokenizer and its chat template beside it."""
    path = run_dir / "adapter"
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


# ============================================================================= 7. comparison
def generate(
    model, tokenizer, prompts: list, settings: dict, adapter_on: bool, adapter_path: Path | None, label: str
) -> list[dict]:
    """Greedy completions for each prompt: [{text, length, truncated}], with the adapter on or off."""
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    if uses_fast_generate(model):
        return _generate_vllm(model, tokenizer, texts, settings, adapter_path if adapter_on else None)
    import torch
    from tqdm.auto import tqdm

    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    context = contextlib.nullcontext() if adapter_on else model.disable_adapter()
    results = []
    was_training = model.training
    model.eval()
    size = settings["eval_batch_size"]
    with context, torch.no_grad():
        for start in tqdm(range(0, len(texts), size), desc=f"evaluating {label}", unit="batch"):
            batch = tokenizer(texts[start : start + size], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = {k: v.to(device) for k, v in batch.items()}
            output = model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=settings["eval_max_new_tokens"],
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                temperature=None,
                top_p=None,
                top_k=None,
            )
            for row in output[:, batch["input_ids"].shape[1] :].tolist():
                ended = tokenizer.eos_token_id in row
                tokens = row[: row.index(tokenizer.eos_token_id)] if ended else row
                results.append(
                    {
                        "text": tokenizer.decode(tokens, skip_special_tokens=True),
                        "length": len(tokens),
                        "truncated": not ended,
                    }
                )
    model.train(was_training)
    return results


def _generate_vllm(model, tokenizer, texts: list[str], settings, adapter_path: Path | None) -> list[dict]:
    """Unsloth's vLLM engine; the adapter goes in as a LoRA request, the base model has none."""
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=settings["eval_max_new_tokens"], stop=[tokenizer.eos_token])
    lora = model.load_lora(str(adapter_path)) if adapter_path else None
    outputs = model.fast_generate(texts, sampling_params=params, lora_request=lora)
    return [
        {
            "text": o.outputs[0].text,
            "length": len(o.outputs[0].token_ids),
            "truncated": o.outputs[0].finish_reason == "length",
        }
        for o in outputs
    ]


def score(problems, completions: list[dict]) -> dict:
    """Every figure of the report, computed from the completions listed with it and nothing else."""
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
        "accuracy": sum(r["correct"] for r in records) / n,
        "format_rate": sum(r["format_ok"] for r in records) / n,
        "reward_means": {f.__name__: mean(r["rewards"][f.__name__] for r in records) for f in REWARD_FUNCS},
        "total_reward": mean(sum(v for v in r["rewards"].values() if v is not None) for r in records),
        "mean_length": mean(r["length"] for r in records),
        "truncated_rate": sum(r["truncated"] for r in records) / n,
    }
    return {**summary, "records": records}


def compare(model, tokenizer, problems, settings, run_dir: Path, adapter_path: Path, history: list[dict]) -> dict:
    """Base vs trained on the same problems, prompts, decoding and verifier; writes the report."""
    prompts = list(problems["prompt"])
    results = {}
    for label, adapter_on in (("base", False), ("trained", True)):
        completions = generate(model, tokenizer, prompts, settings, adapter_on, adapter_path, label)
        results[label] = score(problems, completions)
    report = {
        "settings": {k: settings[k] for k in ("model_name", "eval_dataset", "eval_size", "eval_max_new_tokens", "seed")}
        | {
            "decoding": "greedy",
            "adapter": str(adapter_path),
            "dataset": settings["eval_dataset"] or settings["dataset"],
        },
        "base": results["base"],
        "trained": results["trained"],
    }
    write_json(run_dir / "comparison.json", report)
    table = comparison_table(report)
    (run_dir / "comparison.md").write_text(comparison_markdown(report, table))
    plot_comparison(report, run_dir / "comparison.png")
    plot_training_curves(history, run_dir / "training_curves.png")
    return report


ROWS = [
    ("accuracy", "accuracy"),
    ("exact format rate", "format_rate"),
    ("total reward", "total_reward"),
    *[(f"reward: {f.__name__}", ("reward_means", f.__name__)) for f in REWARD_FUNCS],
    ("mean completion length (tokens)", "mean_length"),
    ("cut off at the length limit", "truncated_rate"),
]


def _figure(summary: dict, key) -> float:
    return summary[key[0]][key[1]] if isinstance(key, tuple) else summary[key]


def comparison_table(report: dict) -> str:
    lines = ["| | base | trained | change |", "|---|---:|---:|---:|"]
    for label, key in ROWS:
        base, trained = _figure(report["base"], key), _figure(report["trained"], key)
        percent = key in ("accuracy", "format_rate", "truncated_rate")
        fmt = (lambda v: f"{100 * v:.1f} %") if percent else (lambda v: f"{v:.2f}")
        change = f"{100 * (trained - base):+.1f} pt" if percent else f"{trained - base:+.2f}"
        lines.append(f"| {label} | {fmt(base)} | {fmt(trained)} | {change} |")
    return "\n".join(lines)


def comparison_markdown(report: dict, table: str, examples: int = 3) -> str:
    n = report["base"]["problems"]
    parts = [
        f"# Base vs trained on {n} held-out problems",
        "",
        f"Same prompts, greedy decoding, the same verifier (`rewards.is_correct`). Adapter: `{report['settings']['adapter']}`.",
        "",
        table,
        "",
    ]
    pairs = list(zip(report["base"]["records"], report["trained"]["records"], strict=True))
    differ = [p for p in pairs if p[0]["correct"] != p[1]["correct"]] or [
        p for p in pairs if p[0]["format_ok"] != p[1]["format_ok"]
    ]
    if differ:
        parts += ["## Problems where the models differ", ""]
    for base, trained in differ[:examples]:
        parts += [
            f"### Problem {base['problem_id']} (reference: `{base['reference']}`)",
            "",
            "| | base | trained |",
            "|---|---|---|",
            f"| answer | {_short(base['extracted'])} | {_short(trained['extracted'])} |",
            f"| correct | {base['correct']} | {trained['correct']} |",
            f"| format ok | {base['format_ok']} | {trained['format_ok']} |",
            "",
            "<details><summary>completions</summary>",
            "",
            "**base**",
            "",
            "```",
            base["completion"][:1500],
            "```",
            "",
            "**trained**",
            "",
            "```",
            trained["completion"][:1500],
            "```",
            "</details>",
            "",
        ]
    return "\n".join(parts)


def _short(answer: str | None, width: int = 60) -> str:
    if answer is None:
        return "(no answer block)"
    answer = " ".join(answer.split()).replace("|", "\\|").replace("`", "'")
    return f"`{answer[:width]}{'...' if len(answer) > width else ''}`"


def plot_comparison(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["accuracy", "exact format rate"]
    base = [report["base"]["accuracy"], report["base"]["format_rate"]]
    trained = [report["trained"]["accuracy"], report["trained"]["format_rate"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [100 * v for v in base], width=0.4, label="base")
    ax.bar([i + 0.2 for i in x], [100 * v for v in trained], width=0.4, label="trained")
    for i, (b, t) in enumerate(zip(base, trained, strict=True)):
        ax.text(i - 0.2, 100 * b + 1, f"{100 * b:.0f}%", ha="center")
        ax.text(i + 0.2, 100 * t + 1, f"{100 * t:.0f}%", ha="center")
    ax.set_xticks(list(x), labels)
    ax.set_ylim(0, 110)
    ax.set_ylabel("% of held-out problems")
    ax.set_title(f"Base vs trained, {report['base']['problems']} held-out problems")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(history: list[dict], path: Path) -> None:
    """Total reward, each reward, completion length, and KL / entropy when logged, against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [h for h in history if "reward" in h]
    panels = [
        ("total reward", ["reward"]),
        ("rewards", [f"rewards/{f.__name__}/mean" for f in REWARD_FUNCS]),
        ("completion length (tokens)", ["completions/mean_length"]),
        ("", ["kl", "entropy"]),  # titled by what was logged: KL only when BETA > 0
    ]
    panels = [(title, [k for k in keys if any(k in r for r in rows)]) for title, keys in panels]
    panels = [(title or " and ".join(keys), keys) for title, keys in panels]
    panels = [(title, keys) for title, keys in panels if keys] or [("no GRPO steps logged", [])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            points = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, label=key.replace("rewards/", "").replace("/mean", ""), marker=".", lw=1)
        ax.set_title(title)
        ax.set_xlabel("step")
        if len(keys) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def print_comparison(report: dict, run_dir: Path) -> None:
    print()
    print(comparison_table(report))
    print(f"\nrun folder: {run_dir.resolve()}")


# ============================================================================= main
def load_eval_problems(settings: dict, heldout):
    """The held-out part of the training data, or EVAL_DATASET's first EVAL_SIZE problems."""
    if not settings["eval_dataset"]:
        return heldout
    table = load_table(settings["eval_dataset"], settings["eval_config"], settings["eval_split"])
    problems = build_prompts(table, settings["eval_problem_column"], settings["eval_answer_column"])
    return problems.select(range(min(settings["eval_size"], len(problems))))


def cuda_oom_advice(settings: dict) -> str:
    return (
        "CUDA ran out of memory. Lower, in this order: --num-generations and --per-device-batch (e.g. 2 and 2), "
        f"--max-seq-length (now {settings['max_seq_length']}, which bounds the completion length), "
        f"--gpu-memory-utilization (now {settings['gpu_memory_utilization']}, vLLM's share), "
        "--eval-batch-size; or load the model in 4 bits with --load-in-4bit true. Rerun the same command to "
        "resume from the last checkpoint."
    )


def run(settings: dict) -> Path:
    """The whole recipe; returns the run folder."""
    check_settings(settings)
    if settings["eval_only"]:
        return run_eval_only(settings)
    backend = choose_backend(settings)
    run_dir, resume = prepare_run_dir(settings)
    print(
        f"backend: {backend}{' (vLLM generation)' if backend == 'unsloth' and settings['fast_inference'] and vllm_available() else ''}"
    )
    print(f"run folder: {run_dir}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        print(f"data-parallel over {os.environ['WORLD_SIZE']} processes; only the main one writes outputs")

    # 2. data, checked before the model is loaded
    with main_process_first():  # one process downloads and caches, the others read the cache
        table = load_table(settings["dataset"], settings["dataset_config"], settings["dataset_split"])
        tokenizer = load_tokenizer(settings, run_dir)
    problems = build_prompts(table, settings["problem_column"], settings["answer_column"])
    problems, max_prompt_length = drop_long_prompts(
        problems, tokenizer, settings["prompt_length_quantile"], settings["max_prompt_length"]
    )
    if max_prompt_length >= settings["max_seq_length"]:
        raise SetupError(
            f"prompts need up to {max_prompt_length} tokens, leaving no room for a completion in "
            f"--max-seq-length {settings['max_seq_length']}; raise it or set --max-prompt-length"
        )
    train_set, heldout = split_heldout(problems, settings["eval_size"], settings["seed"])
    if settings["max_train_rows"]:
        train_set = train_set.select(range(min(settings["max_train_rows"], len(train_set))))
    max_completion_length = settings["max_seq_length"] - max_prompt_length
    if settings["smoke"]:
        max_completion_length = min(max_completion_length, SMOKE_MAX_COMPLETION_LENGTH)
    priming_rows = None
    if settings["priming"] and not resume:
        priming_table = load_table(settings["priming_dataset"], settings["priming_config"], settings["priming_split"])
        priming_rows = build_priming_rows(priming_table, settings, tokenizer)
    eval_problems = load_eval_problems(settings, heldout)
    print(f"training on {len(train_set)} problems; evaluating on {len(eval_problems)} held-out problems")

    if is_main_process():
        resolved = dict(
            settings, backend=backend, max_prompt_length=max_prompt_length, max_completion_length=max_completion_length
        )
        write_json(run_dir / "config.json", resolved)
        heldout.to_json(str(run_dir / "heldout.jsonl"))
        set_status(run_dir, "training")

    # 3-6. model, priming, GRPO
    import torch

    use_plain_logprobs_without_gpu()

    history = []  # priming then GRPO; a resumed run keeps the priming part of the log it wrote before
    if resume and (run_dir / "log_history.json").exists():
        history = [h for h in json.loads((run_dir / "log_history.json").read_text()) if h.get("stage") == "priming"]
    try:
        with StopOnSignal() as stop:
            with main_process_first():
                model, tokenizer = load_model(settings, backend, tokenizer, run_dir)
            if priming_rows is not None:
                priming_log = prime_format(model, tokenizer, priming_rows, settings, run_dir, backend, stop)
                history += [dict(h, stage="priming") for h in priming_log]
            if stop.received:
                raise SetupError(
                    f"{stop.received} during format priming: nothing saved yet. Run the same command "
                    "again to start over (priming takes minutes, not hours)."
                )
            grpo_history, ending = train_grpo(
                model, tokenizer, train_set, settings, run_dir, backend, max_completion_length, resume, stop
            )
    except torch.OutOfMemoryError:
        raise SetupError(cuda_oom_advice(settings)) from None
    history += grpo_history
    if not is_main_process():
        return run_dir
    write_json(run_dir / "log_history.json", history)
    adapter_path = save_adapter(model, tokenizer, run_dir)
    if ending == "interrupted":
        checkpoint = _latest_checkpoint(run_dir)
        set_status(run_dir, "interrupted", checkpoint=checkpoint)
        print(f"\nstopped and saved: checkpoint {checkpoint}, adapter {adapter_path}")
        print("to resume, run the same command again: " + " ".join(["python", *sys.argv]))
        raise SystemExit(130)

    # 7. comparison
    try:
        report = compare(model, tokenizer, eval_problems, settings, run_dir, adapter_path, history)
    except torch.OutOfMemoryError:
        raise SetupError(cuda_oom_advice(settings)) from None
    set_status(run_dir, "finished")
    print_comparison(report, run_dir)
    return run_dir


def run_eval_only(settings: dict) -> Path:
    """The comparison for an adapter saved by an earlier run, into a new folder beside it."""
    import datasets

    adapter = Path(settings["adapter"]).expanduser()
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
            f"{source_dir / 'config.json'} is missing or unreadable: --eval-only needs the run "
            "folder the adapter was saved in"
        ) from None
    # The earlier run's model, data and comparison settings, with what this command line says on top.
    settings = dict(earlier, **{k: settings[k] for k in settings.get("explicit", [])})
    backend = choose_backend(settings)

    output = Path(settings["output_dir"])
    run_dir = output / f"{source_dir.name}-eval"
    n = 2
    while run_dir.exists():
        run_dir, n = output / f"{source_dir.name}-eval-{n}", n + 1
    run_dir.mkdir(parents=True)
    tokenizer = load_tokenizer(settings, source_dir)
    if settings["eval_dataset"]:
        problems = load_eval_problems(settings, None)
    else:
        problems = datasets.load_dataset("json", data_files=str(source_dir / "heldout.jsonl"), split="train")
    write_json(run_dir / "config.json", dict(settings, backend=backend))
    model, tokenizer = load_model(settings, backend, tokenizer, source_dir, adapter=str(adapter))
    history = []
    if (source_dir / "log_history.json").exists():
        history = json.loads((source_dir / "log_history.json").read_text())
    report = compare(model, tokenizer, problems, settings, run_dir, adapter, history)
    set_status(run_dir, "finished")
    print_comparison(report, run_dir)
    return run_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "-h" in argv or "--help" in argv:
        print(settings_help())
        return 0
    try:
        settings = parse_settings(argv)
        run(settings)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
