"""Data: math problems -> chat prompts with an `answer` column, the recipe's chat template, the
prompt-length filter, the held-out split, and the worked solutions for format priming."""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
from pathlib import Path

import rewards
from rewards import REASONING_END, REASONING_START, SOLUTION_END, SOLUTION_START, SYSTEM_PROMPT

from .errors import SetupError

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
HUB_PROBE_S = 5.0  # seconds one request to the hub may take before it counts as unreachable


def chat_template(bos: bool = False) -> str:
    """The recipe's template for a base model: [bos], system + eos, the user's text, assistant turns + eos,
    and a generation prompt that opens the working, so completions start inside it.

    bos: the one place a bos comes from. TRL (priming and GRPO), the length filter and the comparison all
    render this template and tokenize the text without special tokens (transformers' apply_chat_template
    does so itself), so a model whose tokenizer puts a bos before plain text (Llama, Gemma, Mistral) gets
    it here, exactly once, and one whose tokenizer does not (Qwen) never does; see with_recipe_template.

    The eos after the system prompt is the recipe's (Qwen's <|endoftext|>); every family keeps its own
    tokenizer eos there: the end-of-document token of a base model (Llama 3's <|end_of_text|>, Gemma's
    <eos>, Mistral's </s>, Phi-3's <|endoftext|>). It is the boundary every base model already knows, and
    the same token ends the answer, so the format has one boundary token to learn. No second bos
    follows it: the prompt is one sequence, and a bos mid-sequence is a packing artefact to a model."""
    return (
        ("{{ bos_token }}" if bos else "") + "{% if messages[0]['role'] == 'system' %}"
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


def require_eos(tokenizer) -> None:
    """The recipe's template ends the system prompt and every answer with the tokenizer's eos, and GRPO and the
    comparison stop at it: a tokenizer without one cannot run the recipe, and says so here rather than as a
    template error ("'eos_token' is undefined") at the first prompt."""
    if tokenizer.eos_token is None:
        name = getattr(tokenizer, "name_or_path", "") or "this model"
        raise SetupError(
            f"the tokenizer of {name!r} has no end-of-sequence (eos) token. The recipe's chat template ends the "
            "system prompt and every answer with it, and generation stops at it. Name the token the model was "
            'trained to end a text with in its tokenizer_config.json ("eos_token": "..."), or set it in Python '
            "(tokenizer.eos_token = '...'; tokenizer.save_pretrained(DIR)) and pass --model-name DIR."
        )


def load_table(source: str, config: str = "", split: str = "train"):
    """A datasets.Dataset from a local file or folder, or from the Hugging Face Hub."""
    path = Path(source).expanduser()
    reason = local_reason(source)
    if reason and not path.exists():  # refused at once: no hub request, no import of datasets
        raise SetupError(
            f"dataset {source!r} is read as a local path ({reason}), and {path} does not exist. "
            "Check the path, or give a hub name (owner/name) instead."
        )
    import datasets

    if reason:
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
    unreachable = hub_unreachable()
    if unreachable:  # datasets would retry for most of a minute; its cache answers at once, or nothing does
        try:
            with hub_offline():
                return datasets.load_dataset(source, config or None, split=split)
        except Exception:  # noqa: BLE001 - not in the cache (or not with this config and split)
            raise SetupError(
                f"dataset {source!r} is a Hugging Face Hub name, and the hub cannot be reached from here "
                f"({unreachable}), nor is it in this machine's Hugging Face cache.\n{OFFLINE_ADVICE}"
            ) from None
    try:
        return datasets.load_dataset(source, config or None, split=split)
    except Exception as e:  # noqa: BLE001 - offline, not found, gated, bad config: all end here
        raise SetupError(
            f"could not load dataset {source!r} (config {config or 'default'}, split {split}) from the Hugging "
            f"Face Hub: {type(e).__name__}: {str(e)[:300]}\nIf this machine cannot reach the hub, download the "
            "data elsewhere and give its local path instead: a .jsonl/.parquet/.csv file, a save_to_disk folder, "
            "or a folder from `hf download NAME --repo-type dataset --local-dir DIR`."
        ) from None


OFFLINE_ADVICE = (
    "Without the hub, download the datasets where there is a network (hf download NAME --repo-type dataset "
    "--local-dir DIR), and name a local file or folder for every dataset the run reads: python train_grpo.py "
    "--check --dataset FILE --priming-dataset FILE (and --eval-dataset FILE when you use one). Set "
    "HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 on a machine that never reaches the hub: nothing then asks it. "
    "python train_grpo.py --check --smoke checks the install with the bundled toy task."
)


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached, or None when it answers or offline mode is on (then
    datasets reads its cache and fails at once on what is not there). Asked once per process."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return None
    return probe_hub(os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/"))


@contextlib.contextmanager
def hub_offline():
    """Offline mode for the block, as HF_HUB_OFFLINE=1 gives it: datasets and huggingface_hub read these flags
    when they are called (datasets/load.py, huggingface_hub/constants.py is_offline_mode), so what is in the
    cache loads at once and nothing else is asked for."""
    import datasets.config
    import huggingface_hub.constants

    saved = datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


@functools.cache
def probe_hub(endpoint: str) -> str | None:
    """One request to `endpoint`, through the proxy the environment names: None when anything answers (any
    status: the hub is there), else the error, within HUB_PROBE_S seconds."""
    import httpx  # huggingface_hub's own HTTP client

    try:
        httpx.head(endpoint, timeout=HUB_PROBE_S)
    except httpx.HTTPError as e:
        return f"{endpoint}: {type(e).__name__}: {str(e)[:200] or 'no answer'}"
    return None


def local_reason(source: str) -> str | None:
    """Why `source` names a local file or folder rather than a hub dataset, or None when it may be a hub name.

    A hub name is `name` or `owner/name`; so anything that exists here, starts like a path (./ ../ / ~),
    has a data file's extension, has more than one slash, or whose first part is a folder here is local:
    no hub request for it, which would take half a minute to fail offline."""
    path = Path(source).expanduser()
    if path.exists():
        return "it exists here"
    if "://" in source:  # a URL (hf://datasets/...): for datasets to resolve
        return None
    if source.startswith(("./", "../", "/", "~", ".\\")) or source in (".", ".."):
        return "it starts like a path"
    if path.suffix.lower() in LOCAL_FORMATS:
        return f"it ends in {path.suffix}"
    parts = source.replace("\\", "/").split("/")
    if len(parts) > 2:
        return "a hub name has at most one slash"
    if len(parts) == 2 and Path(parts[0]).is_dir():
        return f"{parts[0]}/ is a folder here"
    return None


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


def prompt_lengths(prompts, tokenizer) -> list[int]:
    """Tokens in each chat prompt as the model sees it (template and generation prompt included)."""
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def drop_long_prompts(dataset, tokenizer, quantile: float, max_prompt_length: int = 0):
    """Keep prompts up to the quantile of prompt lengths (or max_prompt_length); returns (dataset, limit).

    TRL 1.x no longer truncates prompts, so this is what bounds them."""
    import numpy as np

    lengths = prompt_lengths(dataset["prompt"], tokenizer)
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


def build_priming_rows(table, columns: tuple[str, str, str], tokenizer, max_tokens: int, max_rows: int = 0):
    """Worked solutions rewritten into the tag format, as chat messages of at most `max_tokens`.

    `columns` names the problem, the worked solution and the final answer; only rows whose answer is a
    number are kept (as in the recipe), and <think> tags around the working are dropped."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SetupError(
            f"the priming dataset has no column {' or '.join(repr(c) for c in missing)}; its columns are "
            f"{table.column_names}. Set --priming-problem-column, --priming-solution-column and "
            "--priming-answer-column, or --priming false."
        )
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
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= max_tokens:
            rows.append({"messages": messages})
        if max_rows and len(rows) >= max_rows:
            break
    if not rows:
        raise SetupError(
            f"no priming rows with a numeric answer fit in {max_tokens} tokens; "
            "raise --max-seq-length or pass --priming false"
        )
    import datasets

    return datasets.Dataset.from_list(rows)


def load_eval_problems(dataset: str, config: str, split: str, columns: tuple[str, str], size: int):
    """The first `size` problems of another dataset (e.g. MATH-500), as chat prompts."""
    problems = build_prompts(load_table(dataset, config, split), *columns)
    return problems.select(range(min(size, len(problems))))
