"""Watching a run while it trains: a short line per logged step, held-out accuracy every few GRPO steps,
and sampled completions on disk.

- StepLines replaces the trainer's own printing (a raw dict per step, and a tqdm bar that is useless in a
  log file) with one line a person can follow in a terminal and in a file alike. The full records still
  go to log_history.json and to the `report_to` backends.
- HeldoutAccuracy scores the current policy on a fixed set of held-out problems at step 0, before GRPO's
  first update, and every EVAL_STEPS steps, through recipe/evaluate.py: the final comparison's own
  generation path (vLLM when the run has it) and verifier. Its numbers go through the trainer's log as
  `heldout/*`, in a record of their own at that step, before the step's checkpoint is written, so a
  resumed run neither repeats nor loses a point. Only the main process evaluates: plain generate() on
  the unwrapped model is not a collective operation, and the other processes wait for it in the next
  step's first collective, for at most PROCESS_TIMEOUT_MINUTES (the process group's timeout, set once by
  recipe/runs.py:start_processes; the trainer's own `ddp_timeout` never applies, see there).
- CompletionSamples appends a few groups of completions, with each reward, the extracted answer and the
  reference, to completions.jsonl in the run folder. On resume it first drops the lines written after
  the checkpoint it resumes from (a rewrite through a temporary file), so no line is lost or repeated.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import rewards

from .evaluate import complete, score
from .models import save_adapter, uses_fast_generate
from .stats import wilson_interval

COMPLETIONS_FILE = "completions.jsonl"
GROUPS_PER_LINE_STEP = 2  # groups (one prompt with all its completions) written per sampled step
MAX_COMPLETION_CHARS = 4000  # longer completions are cut (the tail, where the answer is, is kept)
MAX_COMPLETIONS_MB = 64  # the file stops growing here, whatever the run's length
STEP_LINES = {"priming": 20}  # stages of quick steps: about this many step lines in all, not one per step


def headline(text: str) -> None:
    """A line that stands out among the step lines: the stages, resuming, held-out accuracy."""
    print(f"\n== {text}", flush=True)


def plain_output() -> None:
    """When output goes to a file, no progress bars from the libraries: they are carriage-return noise there."""
    if sys.stderr.isatty():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def follow(trainer, stage: str) -> None:
    """Print `stage`'s steps as StepLines instead of the trainer's dicts and bar."""
    from transformers.trainer import DEFAULT_PROGRESS_CALLBACK  # a notebook's own bar in Jupyter
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for printer in {PrinterCallback, ProgressCallback, DEFAULT_PROGRESS_CALLBACK}:
        trainer.remove_callback(printer)
    trainer.add_callback(_as_callback(StepLines)(stage))


def watch(trainer, settings: dict, run_dir: Path, heldout, train_set) -> None:
    """GRPO's watchers: step lines, held-out accuracy (EVAL_STEPS, EVAL_DURING_SIZE), sampled completions
    (LOG_COMPLETIONS_STEPS). `heldout`: the comparison's problems, of which the first EVAL_DURING_SIZE
    are scored during training."""
    follow(trainer, "GRPO")
    if settings["eval_steps"]:
        size = min(settings["eval_during_size"], len(heldout))
        trainer.add_callback(_as_callback(HeldoutAccuracy)(trainer, heldout.select(range(size)), settings, run_dir))
    if settings["log_completions_steps"]:
        path = run_dir / COMPLETIONS_FILE
        trainer.add_callback(_as_callback(CompletionSamples)(trainer, path, settings, train_set))


def _as_callback(cls):
    """`cls` as a transformers TrainerCallback (which supplies the events it does not handle), made only
    when a trainer needs it: importing this module imports no transformers."""
    from transformers import TrainerCallback

    return type(cls.__name__, (cls, TrainerCallback), {})


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _percent(value) -> str:
    return "  -  " if value is None else f"{100 * value:3.0f} %"


class StepLines:
    """One line per logged step: step / total, elapsed and remaining time, and what says most about the
    stage: priming's loss; GRPO's reward, the share of completions cut at the length limit, the share of
    groups whose completions all scored the same (no signal), and the latest held-out accuracy. A stage in
    STEP_LINES prints every few steps and its last (every step still reaches the log history)."""

    def __init__(self, stage: str):
        self.stage = stage
        self.lines = STEP_LINES.get(stage)
        self.started = time.monotonic()
        self.first_step = 0
        self.latest_heldout: tuple[int, float] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step = time.monotonic(), state.global_step
        for record in state.log_history:  # a resumed run: its latest point is in the restored log
            if "heldout/accuracy" in record:
                self.latest_heldout = (record["step"], record["heldout/accuracy"])

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if not state.is_world_process_zero:
            return
        if "heldout/accuracy" in logs:
            self.latest_heldout = (state.global_step, logs["heldout/accuracy"])
            low, high = logs["heldout/accuracy_low"], logs["heldout/accuracy_high"]
            headline(
                f"held-out accuracy at step {state.global_step}: {100 * logs['heldout/accuracy']:.1f} % "
                f"(95 % interval {100 * low:.0f}-{100 * high:.0f} %, {logs['heldout/problems']} problems), "
                f"exact format {100 * logs['heldout/format_rate']:.0f} %, {logs['heldout/seconds']:.1f} s"
            )
            return
        if "train_runtime" in logs:
            print(f"{self.stage} done: {state.global_step} steps, {_clock(logs['train_runtime'])}", flush=True)
            return
        if "loss" not in logs:
            return
        every = math.ceil(state.max_steps / self.lines) if self.lines else 1
        if state.global_step % every and state.global_step != state.max_steps:
            return
        done = state.global_step - self.first_step
        elapsed = time.monotonic() - self.started
        left = elapsed / done * (state.max_steps - state.global_step) if done else 0.0
        width = len(str(state.max_steps))
        line = f"{self.stage} {state.global_step:>{width}}/{state.max_steps}  {_clock(elapsed)} elapsed, "
        line += f"{_clock(left)} left  "
        if "reward" in logs:
            line += f"reward {logs['reward']:6.2f}  cut at limit {_percent(logs.get('completions/clipped_ratio'))}"
            line += f"  same-score groups {_percent(logs.get('frac_reward_zero_std'))}"
            line += _dynamic_sampling(logs)
            if self.latest_heldout:
                step, accuracy = self.latest_heldout
                line += f"  held-out {_percent(accuracy)} (step {step})"
        else:
            line += f"loss {logs['loss']:.4g}"
            if "mean_token_accuracy" in logs:
                line += f"  token accuracy {_percent(logs['mean_token_accuracy'])}"
        print(line, flush=True)


def _dynamic_sampling(logs: dict) -> str:
    """DYNAMIC_SAMPLING_ROUNDS > 0 (recipe/sampling.py): the step's groups kept of those generated, the
    same-score ones dropped, the extra rounds, and the places left without signal when the bound was reached."""
    if "dynamic_sampling/generated" not in logs:
        return ""
    count = {k.split("/")[1]: int(round(v)) for k, v in logs.items() if k.startswith("dynamic_sampling/")}
    text = (
        f"  kept {count['kept']}/{count['generated']} groups (dropped {count['dropped_all_right']} all right, "
        f"{count['dropped_all_wrong']} all wrong; {count['extra_rounds']} extra round"
        f"{'' if count['extra_rounds'] == 1 else 's'})"
    )
    if count["short"]:
        text += f"  bound reached: {count['short']} group(s) without signal"
    return text


class HeldoutAccuracy:
    """Greedy accuracy and exact-format rate of the current policy at step 0 and every EVAL_STEPS steps
    (and at the last step), through the comparison's generation and scoring."""

    def __init__(self, trainer, problems, settings: dict, run_dir: Path):
        self.trainer = trainer
        self.problems = problems
        self.prompts = list(problems["prompt"])
        self.settings = settings
        self.every = settings["eval_steps"]
        self.adapter_dir = run_dir / "heldout_adapter"  # vLLM reads the adapter from disk, as in the comparison

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step == 0:  # a resumed run has step 0's point in the log it restored
            self.evaluate(state)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.evaluate(state)

    def evaluate(self, state) -> None:
        if not state.is_world_process_zero:
            print(f"step {state.global_step}: waiting for the main process's held-out evaluation", flush=True)
            return
        import torch
        from transformers import Trainer

        started = time.monotonic()
        model, tokenizer = self.trainer.model, self.trainer.processing_class
        if uses_fast_generate(model):
            save_adapter(model, tokenizer, self.adapter_dir)
        padding_side = tokenizer.padding_side
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        # Generation reseeds torch: on a forked random state, the training samples are the same with
        # or without these evaluations.
        with torch.random.fork_rng(devices=devices):
            # "trained": the adapter the model holds now (evaluate.active_adapter), not a saved one
            completions = complete(model, tokenizer, self.prompts, self.settings, "trained", self.adapter_dir)
        tokenizer.padding_side = padding_side
        summary = score(self.problems, [c[0] for c in completions])
        right = sum(r["correct"] is True for r in summary["records"])  # None: undecided by the verifier
        low, high = wilson_interval(right, summary["problems"])
        logs = {
            "heldout/accuracy": summary["accuracy"],
            "heldout/accuracy_low": low,
            "heldout/accuracy_high": high,
            "heldout/format_rate": summary["format_rate"],
            "heldout/truncated_rate": summary["truncated_rate"],
            "heldout/problems": summary["problems"],
            "heldout/seconds": round(time.monotonic() - started, 3),
        }
        # transformers' own log, not GRPOTrainer's: that one would take the step's training metrics,
        # still being collected, into this record. Logging clears control.should_log, which the step's
        # own record, logged right after this, still needs.
        should_log = self.trainer.control.should_log
        Trainer.log(self.trainer, logs)
        self.trainer.control.should_log = should_log


def _text(message) -> str:
    """A completion or prompt as text: the last message's content for chat data, the string otherwise."""
    if isinstance(message, list):
        return message[-1]["content"] if message else ""
    return str(message)


def _number(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


def _cut(text: str) -> str:
    return text if len(text) <= MAX_COMPLETION_CHARS else "..." + text[-MAX_COMPLETION_CHARS:]


def keep_until(path: Path, step: int) -> None:
    """Drop the lines of steps after `step` (and a line cut short by a crash), by an atomic rewrite."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(kept))
    tmp.replace(path)


class CompletionSamples:
    """Every LOG_COMPLETIONS_STEPS steps, the first GROUPS_PER_LINE_STEP groups of the step's completions
    (TRL keeps the latest generation batch in trainer._logs, gathered from all processes), one JSON line
    per group."""

    def __init__(self, trainer, path: Path, settings: dict, train_set):
        self.trainer = trainer
        self.path = path
        self.every = settings["log_completions_steps"]
        self.group = settings["num_generations"]
        # the reference answer of each training problem, by its text (TRL's log keeps only the prompt)
        self.answers = {_text(p): a for p, a in zip(train_set["prompt"], train_set["answer"], strict=True)}
        self.full = False

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            keep_until(self.path, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or "reward" not in (logs or {}) or state.global_step % self.every:
            return
        if self.path.exists() and self.path.stat().st_size > MAX_COMPLETIONS_MB * 2**20:
            if not self.full:
                print(f"{self.path.name} reached {MAX_COMPLETIONS_MB} MB: no more samples are written")
            self.full = True
            return
        lines = [json.dumps(group, ensure_ascii=False) + "\n" for group in self.groups(state.global_step)]
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(lines))  # one write: a kill leaves at most one partial line, dropped on resume

    def groups(self, step: int) -> list[dict]:
        # TRL 1.15's GRPOTrainer keeps the latest batch in _logs, and so does Unsloth 2026.10.7's compiled copy
        # of it (unsloth_compiled_cache/UnslothGRPOTrainer.py); a trainer without it writes no samples.
        logs = getattr(self.trainer, "_logs", None)
        if not logs:
            return []
        names = list(logs["rewards"])
        weights = [float(w) for w in self.trainer.reward_weights]
        prompts, texts, advantages = list(logs["prompt"]), list(logs["completion"]), list(logs["advantages"])
        scores = {name: list(logs["rewards"][name]) for name in names}
        groups = []
        for start in range(0, min(len(prompts), GROUPS_PER_LINE_STEP * self.group), self.group):
            problem = _text(prompts[start])
            reference = self.answers.get(problem)
            completions = []
            for i in range(start, min(start + self.group, len(prompts))):
                text = _text(texts[i])
                each = {name: _number(scores[name][i]) for name in names}
                total = sum(w * v for w, v in zip(weights, each.values(), strict=True) if v is not None)
                completions.append(
                    {
                        "completion": _cut(text),
                        "extracted": rewards.extract_answer(text),
                        "correct": None if reference is None else rewards.is_correct(text, reference),
                        "reward": total,
                        "rewards": each,
                        "advantage": _number(advantages[i]) if i < len(advantages) else None,
                    }
                )
            groups.append({"step": step, "problem": problem, "reference": reference, "completions": completions})
        return groups
