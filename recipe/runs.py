"""The run folder: where a run writes, how it resumes, and how it stops safely.

OUTPUT_DIR/RUN_NAME holds status.json (training | interrupted | finished), config.json, checkpoints/,
the adapters, the log and the report. A finished run is never overwritten; an unfinished one resumes
from its newest checkpoint when the same command runs again. Under several processes only the main
one writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from pathlib import Path

from .errors import SetupError


def world_size() -> int:
    """Processes in this run (torchrun and accelerate launch set WORLD_SIZE; a plain run is 1)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def main_process_first():
    """Under `accelerate launch` or torchrun, the main process goes first: it writes what the others read."""
    if world_size() > 1:
        from accelerate import PartialState

        return PartialState().main_process_first()
    return contextlib.nullcontext()


def write_json(path: Path, data) -> None:
    """Write through a temporary file, so an interrupted write never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def run_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "status.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def set_status(run_dir: Path, status: str, **extra) -> None:
    if is_main_process():
        write_json(run_dir / "status.json", {"status": status, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **extra})


def latest_checkpoint(run_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = run_dir / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def prepare_run_dir(output_dir: str, run_name: str, if_finished: str) -> tuple[Path, str | None]:
    """(the run's folder, the checkpoint to resume from or None). A finished run is refused, or with
    if_finished="new" the run goes to RUN_NAME-2, -3, ... beside it."""
    output = Path(output_dir)
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise SetupError(
            f"cannot write to the output folder {output}: {e.strerror or e}. Choose another with --output-dir PATH."
        ) from None
    run_dir = output / run_name
    if run_status(run_dir) == "finished":
        if if_finished != "new":
            raise SetupError(
                f"{run_dir} holds a finished run; it is left untouched. Choose another --run-name, "
                "or pass --if-finished new to start RUN_NAME-2, -3, ... beside it."
            )
        n = 2
        while run_status(output / f"{run_name}-{n}") == "finished":
            n += 1
        print(f"{run_dir} holds a finished run; this one goes to {run_dir}-{n}")
        run_dir = output / f"{run_name}-{n}"
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, latest_checkpoint(run_dir)


def new_folder_beside(source_dir: Path, output_dir: str, suffix: str) -> Path:
    """OUTPUT_DIR/<source>-<suffix>, -2, -3 ...: a fresh folder for a job on an earlier run."""
    output = Path(output_dir)
    run_dir, n = output / f"{source_dir.name}-{suffix}", 2
    while run_dir.exists():
        run_dir, n = output / f"{source_dir.name}-{suffix}-{n}", n + 1
    run_dir.mkdir(parents=True)
    return run_dir


def cuda_oom_advice(settings: dict) -> str:
    return (
        "CUDA ran out of memory. Lower, in this order: --num-generations and --per-device-batch (e.g. 2 and 2), "
        f"--max-seq-length (now {settings['max_seq_length']}, which bounds the completion length), "
        f"--gpu-memory-utilization (now {settings['gpu_memory_utilization']}, vLLM's share), "
        "--eval-batch-size; or load the model in 4 bits with --load-in-4bit true. Rerun the same command to "
        "resume from the last checkpoint."
    )


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


def make_guard(stop: StopOnSignal):
    """A trainer callback: saves and stops on a signal; stops without saving when the loss or the
    gradient norm turns NaN or infinite (so the newest checkpoint stays a good one)."""
    from transformers import TrainerCallback

    class Guard(TrainerCallback):
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
                control.should_save = False
                control.should_training_stop = True
            return control

    return Guard()


def train_guarded(trainer, guard, run_dir: Path, resume: str | None = None) -> None:
    """trainer.train(), turning a divergence into a SetupError that names the last good checkpoint."""
    try:
        trainer.train(resume_from_checkpoint=resume)
    except RuntimeError as e:  # sampling from NaN or infinite probabilities: the weights diverged
        if "inf" not in str(e) or "nan" not in str(e):
            raise
        guard.bad_loss_step = trainer.state.global_step + 1
    if guard.bad_loss_step is not None:
        raise SetupError(
            f"training diverged at step {guard.bad_loss_step}: the loss, the gradients or the model's "
            "probabilities became NaN or infinite. Training stopped and that step was not saved. Newest "
            f"checkpoint, from before it: {latest_checkpoint(run_dir) or 'none'}. Lower --learning-rate and rerun "
            "the same command to resume from it, or delete the checkpoints to start over."
        )
