"""--check: the settings, the data and the reference answers, on any machine, before a GPU is rented.

It goes through what run() does before the model loads, with the same functions (recipe/data.py), and
stops there: no weights are loaded (the model is built from its config alone, on the meta device, to
check the LoRA targets), no GPU is needed (even without --smoke), nothing is written. It prints a
short report and ends with exit status 0, or 2 when something would stop or spoil the run.

    settings      parsed and checked by main() before this starts (a bad one is exit 2 already)
    dataset       loaded from the local file or folder, or from the hub when it is reachable
    columns       the problem and answer columns exist; rows with an empty problem or answer dropped
    prompts       lengths with the model's tokenizer when it is on this machine (a local folder, or the
                  hub cache); otherwise said so, and the length filter is skipped
    held out      the seeded held-out split, and what is left to train on
    lora          what LoRA would wrap, per layer type, from the model's config alone (no weights read); a
                  --lora-targets name that matches nothing fails the check, as it would stop the run
    priming       the worked solutions kept (a numeric answer, a chat that fits in half the context)
    evaluation    EVAL_DATASET's problems, when one is named
    references    how many reference answers the verifier can read

What "can read" means: a completion whose solution block holds the reference itself, verbatim, is judged
correct by rewards.is_correct, the judgement the answer rewards and the evaluation both make. That is the
least a reference must pass: one that fails it (too long to be an answer, LaTeX that cannot be parsed, a
tag inside it) can never be matched, so every completion on that problem scores as wrong, in training
and in the report. Passing it does not prove a model could match the reference any other way (a worked
sentence equals itself too); the count of plain numbers beside it says how many check_numbers can score.
Each distinct reference is judged once, within the verifier's own limits (the ones training and the
evaluation use, so this is the verdict they would give); at most MAX_REFERENCES distinct ones, a seeded
sample when there are more. More than UNREADABLE_LIMIT of them
unreadable fails the check: that is a wrong answer column or a format the verifier does not know.
"""

from __future__ import annotations

import contextlib
import io
import random
from pathlib import Path

import rewards

from . import generation
from .data import (
    build_priming_rows,
    build_prompts,
    drop_long_prompts,
    hub_unreachable,
    load_eval_problems,
    load_table,
    prompt_lengths,
    split_heldout,
)
from .errors import SetupError
from .smoke import build_tiny_model, smoke_tokenizer, uses_tiny_model

MAX_REFERENCES = 5000  # distinct references judged; a dataset of symbolic answers takes ~1-20 ms each
UNREADABLE_LIMIT = 0.01  # share of distinct references the verifier may fail to read before the check fails
EXAMPLES = 3  # unreadable references quoted in the report


def check(S: dict) -> None:
    """Print the report; raise SetupError (exit 2) naming every problem found, after the report."""
    import datasets

    datasets.disable_progress_bars()
    problems = []

    def line(label: str, text: str) -> None:
        print(f"  {label:<13} {text}", flush=True)

    print("check: settings, LoRA targets, data and reference answers (no weights are loaded, nothing is written)")
    changed = [n for n in S.get("explicit", []) if n != "check"]
    line("settings", f"ok ({', '.join(changed) if changed else 'the defaults'})")
    try:
        tokenizer, about_tokenizer = local_tokenizer(S)
    except SetupError as e:  # a local folder without a vocabulary, a tokenizer without eos: the run would stop
        problems.append(str(e))
        tokenizer, about_tokenizer = None, f"PROBLEM: {first_line(e)}"
    line("tokenizer", about_tokenizer)
    about_lora, lora_problem = lora_plan(S, tokenizer)
    line("lora", about_lora)
    if lora_problem:
        problems.append(lora_problem)

    try:
        table = quiet(load_table, S["dataset"], S["dataset_config"], S["dataset_split"])
        line("dataset", f"{S['dataset']}: {len(table)} rows; columns {', '.join(table.column_names)}")
        problems_set = quiet(build_prompts, table, S["problem_column"], S["answer_column"])
        line("rows", f"{len(problems_set)} usable, {len(table) - len(problems_set)} dropped (empty problem or answer)")
        if tokenizer is None:
            line("prompts", "lengths not measured, no prompt dropped (no tokenizer on this machine)")
        else:
            lengths = sorted(prompt_lengths(problems_set["prompt"], tokenizer))
            problems_set, limit = quiet(
                drop_long_prompts, problems_set, tokenizer, S["prompt_length_quantile"], S["max_prompt_length"]
            )
            line(
                "prompts",
                f"{lengths[0]}-{lengths[-1]} tokens (median {lengths[len(lengths) // 2]}); limit {limit} keeps "
                f"{len(problems_set)} of {len(lengths)}",
            )
            if limit >= S["max_seq_length"]:
                raise SetupError(
                    f"prompts need up to {limit} tokens, leaving no room for a completion in --max-seq-length "
                    f"{S['max_seq_length']}; raise it or set --max-prompt-length"
                )
            completion = S["max_completion_length"] or S["max_seq_length"] - limit
            line("completions", f"up to {completion} tokens")
        # TRL's colocated vLLM: the GPU memory arithmetic (unmeasured prompts: the whole --max-seq-length)
        memory = generation.check_line(S, limit if tokenizer is not None else S["max_prompt_length"])
        if memory:
            line("GPU memory", memory)
        train, heldout = split_heldout(problems_set, S["eval_size"], S["seed"])
        if S["max_train_rows"]:
            train = train.select(range(min(S["max_train_rows"], len(train))))
        line("held out", f"{len(heldout)} problems, never trained on; {len(train)} left to train on")
        problems += references(line, "references", problems_set["answer"], S["seed"])
    except SetupError as e:
        problems.append(str(e))
        line("dataset", f"PROBLEM: {first_line(e)}")

    if S["priming"]:
        try:
            priming = quiet(load_table, S["priming_dataset"], S["priming_config"], S["priming_split"])
            columns = (S["priming_problem_column"], S["priming_solution_column"], S["priming_answer_column"])
            rows = quiet(
                build_priming_rows,
                priming,
                columns,
                tokenizer or Unmeasured(),
                S["max_seq_length"] // 2,
                S["priming_max_rows"],
            )
            fits = "" if tokenizer else " (lengths not measured: without a tokenizer every one counts as fitting)"
            line("priming", f"{len(rows)} of {len(priming)} worked solutions kept from {S['priming_dataset']}{fits}")
        except SetupError as e:
            problems.append(str(e))
            line("priming", f"PROBLEM: {first_line(e)}")
    else:
        line("priming", "off (--priming false)")

    if S["eval_dataset"]:
        try:
            columns = (S["eval_problem_column"], S["eval_answer_column"])
            evaluation = quiet(
                load_eval_problems, S["eval_dataset"], S["eval_config"], S["eval_split"], columns, S["eval_size"]
            )
            line("evaluation", f"{len(evaluation)} problems from {S['eval_dataset']}")
            problems += references(line, "  references", evaluation["answer"], S["seed"])
        except SetupError as e:
            problems.append(str(e))
            line("evaluation", f"PROBLEM: {first_line(e)}")
    else:
        line("evaluation", "on the held-out problems")

    if problems:  # each problem's first line, then each distinct piece of advice once (two hub names share one)
        firsts = "\n  - ".join(p.split("\n", 1)[0] for p in problems)
        advice = "".join(f"\n{a}" for a in dict.fromkeys(p.split("\n", 1)[1] for p in problems if "\n" in p))
        raise SetupError(f"the check found {len(problems)} problem(s):\n  - {firsts}{advice}")
    print("check passed: the run would start with these settings and data")


def references(line, label: str, answers: list[str], seed: int) -> list[str]:
    """Report how many distinct references the verifier can read (the module docstring says what that
    means); return a problem when more than UNREADABLE_LIMIT of them cannot be read."""
    distinct = sorted(set(answers))
    judged = distinct if len(distinct) <= MAX_REFERENCES else random.Random(seed).sample(distinct, MAX_REFERENCES)
    unreadable = [a for a in judged if not readable(a)]
    numbers = sum(rewards.parse_number(a) is not None for a in judged)
    sampled = f" (a seeded sample of {len(judged)} of {len(distinct)})" if len(judged) < len(distinct) else ""
    line(
        label,
        f"{len(judged) - len(unreadable)} of {len(judged)} distinct references readable by the verifier{sampled}; "
        f"{numbers} plain numbers",
    )
    if not unreadable:
        return []
    rows = sum(1 for a in answers if a in set(unreadable))
    examples = "; ".join(repr(a[:80]) for a in unreadable[:EXAMPLES])
    line("", f"unreadable ({rows} rows: no completion on them can be judged right): {examples}")
    if len(unreadable) <= UNREADABLE_LIMIT * len(judged):
        return []
    return [
        f"{len(unreadable)} of {len(judged)} distinct reference answers cannot be read by the verifier (e.g. "
        f"{examples}): no completion on those problems can be judged right. Is --answer-column the final "
        "answer (not a worked solution)? Fix or drop those rows."
    ]


def readable(reference: str) -> bool:
    """A completion answering with the reference itself is judged correct (the module docstring)."""
    verbatim = f"{rewards.REASONING_END}{rewards.SOLUTION_START}{reference}{rewards.SOLUTION_END}"
    return rewards.is_correct(verbatim, reference) is True  # None: undecided, which pays nothing either


def local_tokenizer(S: dict):
    """(tokenizer with the recipe's template, or None; what the report says about it). Never downloads:
    the model's own tokenizer if it is on this machine, the smoke model's (built in memory) for --smoke."""
    if uses_tiny_model(S):
        return smoke_tokenizer([S["dataset"], S["priming_dataset"]]), "the smoke model's, built in memory"
    from .models import load_tokenizer, with_recipe_template

    name = S["model_name"]
    try:
        from transformers import AutoTokenizer
    except Exception as e:  # noqa: BLE001 - a broken install (e.g. a CUDA torchvision): the data is still checked
        return None, f"none: transformers does not import here ({type(e).__name__}: {str(e)[:120]}); no lengths measured"
    if Path(name).expanduser().is_dir():  # a local folder: the run's own loader, with its checks and messages
        return load_tokenizer(name, S["trust_remote_code"]), f"{name}'s, found on this machine"
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True, trust_remote_code=S["trust_remote_code"])
    except Exception:  # noqa: BLE001 - not downloaded, not a folder: the check goes on without lengths
        return None, (
            f"{name}'s is not on this machine: no lengths measured (to measure them, fetch its few MB of "
            f"tokenizer files into the hub cache: hf download {name} --include '*.json' --include '*.txt')"
        )
    return with_recipe_template(tokenizer), f"{name}'s, found on this machine"


def lora_plan(S: dict, tokenizer) -> tuple[str, str | None]:
    """(what LoRA would wrap, per layer type; the problem, or None). The model is built from its config alone
    on the meta device (no weights read, generation.model_skeleton) and LoRA applied to it by the run's own rule
    (models.planned_lora), so a target that matches nothing is refused here as the run would refuse it."""
    from .models import planned_lora

    name = S["model_name"]
    try:
        if uses_tiny_model(S):
            model = build_tiny_model(tokenizer, S["seed"])  # the smoke model is tiny: built in memory
        else:  # a hub name: its config.json (a few KB) from the hub when it answers, else from this machine's cache
            local_only = Path(name).expanduser().exists() or hub_unreachable() is not None
            model = generation.model_skeleton(name, S["trust_remote_code"], local_only=local_only)
    except Exception as e:  # noqa: BLE001 - not downloaded, unknown architecture: the run checks it before writing
        return (
            f"targets not checked: {name}'s config could not be read ({type(e).__name__}: {str(e)[:120]}); "
            "the run checks them from the config before it writes anything",
            None,
        )
    try:
        plan = planned_lora(model, S)
    except SetupError as e:
        return f"PROBLEM: {first_line(e)}", str(e)
    share = 100 * plan["trainable_parameters"] / max(plan["all_parameters"], 1)
    layers = "; ".join(
        f"{seen['layers']} {kind}: {', '.join(seen['wrapped']) or 'nothing'}"
        for kind, seen in plan["per_layer_type"].items()
    )
    missing = f"; targeted but wrapped nowhere: {', '.join(plan['not_wrapped'])}" if plan["not_wrapped"] else ""
    trainable = f"{plan['trainable_parameters']:,} trainable parameters ({share:.2f} %)"
    return f"{trainable}, by layer type: {layers}{missing}", None


class Unmeasured:
    """Stands in for a tokenizer that is not on this machine: every text is 0 tokens long, so the priming
    rows are still checked for their columns and numeric answers, and only the length limit is skipped."""

    def apply_chat_template(self, messages, **kwargs) -> str:
        return ""

    def __call__(self, text, **kwargs) -> dict:
        return {"input_ids": []}


def quiet(function, *args):
    """function(*args) without its progress prints: the report says the same in one line."""
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0]
