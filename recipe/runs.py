"""The run folder: where a run writes, how it resumes, and how it stops safely.

OUTPUT_DIR/RUN_NAME holds status.json (training | interrupted | stopped | finished; a stop by a signal also
records the signal, the checkpoint and the message it printed, which the next start repeats; "stopped" is a
refusal or a divergence after the folder existed, with its reason), config.json, checkpoints/,
the adapters, the log and the report. A finished run is never overwritten; an unfinished one resumes
from its newest complete checkpoint when the same command runs again. Under several processes only the
main one writes, and they decide together: the main process picks the folder and the checkpoint and the others
check they hold it (agree_on_run); a signal to any of them stops all at the same step (StopOnSignal.agree); each
collective waits up to PROCESS_TIMEOUT_MINUTES (start_processes).

A run may be killed at any moment (a preempted GPU, the out-of-memory killer, a full disk):
- everything the recipe writes goes through atomic_path: written under `.NAME.partial` beside its
  place and renamed into it when complete, so a file or folder that has its real name is whole;
- the trainer writes checkpoint-N in place (weights, optimizer, scheduler, random state, and
  trainer_state.json last), so checkpoint_problem() looks inside each one, and an incomplete one is set
  aside as checkpoints/incomplete-checkpoint-N, never deleted;
- a full disk ends in a message with the last complete checkpoint and the space the save needed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import signal
import sys
import time
import zipfile
from pathlib import Path

from .errors import SetupError

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # transformers' own pattern (trainer_utils.get_last_checkpoint)
SET_ASIDE_PREFIX = "incomplete-"  # outside the trainer's checkpoint-* glob, so its rotation never deletes one


def world_size() -> int:
    """Processes in this run (torchrun and accelerate launch set WORLD_SIZE; a plain run is 1)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


# ----------------------------------------------------------------------------- several processes agree
def start_processes(timeout_minutes: float) -> None:
    """Under `accelerate launch` or torchrun: join the process group, with `timeout_minutes` for every
    collective operation of the run. The first PartialState fixes it for good: created without a timeout,
    every collective gets the backend's default (NCCL: 10 minutes; accelerate/state.py passes its kwargs to
    init_process_group or deepspeed.init_distributed), and the trainers' `ddp_timeout` is never applied,
    since transformers does not initialise a group that exists (training_args.py:1808-1869). Two things
    run on the main process alone while the others wait in a collective: the first download and load of
    the model (main_process_first), and each held-out evaluation (recipe/monitor.py)."""
    if world_size() == 1:
        return
    from datetime import timedelta

    import torch
    from accelerate import PartialState

    # cpu=True without a GPU: otherwise accelerate 1.15 sees no distributed setup under torchrun on CPU
    # (DistributedType.NO) and nothing waits for anything
    PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(minutes=timeout_minutes))
    _process_timeout_minutes[0] = timeout_minutes


_process_timeout_minutes = [None]  # as start_processes set it, for the waiting processes' log line


def main_process_first(what: str = ""):
    """Under several processes the main one goes first (it writes what the others read); the others say
    what they wait for, so a long wait in the log has a reason next to it."""
    if world_size() == 1:
        return contextlib.nullcontext()
    from accelerate import PartialState

    if what and not is_main_process():
        limit = _process_timeout_minutes[0]
        limit = f" (for at most {limit} minutes: --process-timeout-minutes)" if limit else ""
        say(f"process {rank()}: waiting for the main process to {what}{limit}")
    return PartialState().main_process_first()


def _group():
    """torch.distributed when this run has a process group, else None (one process, or no launcher)."""
    import torch.distributed as dist

    return dist if world_size() > 1 and dist.is_available() and dist.is_initialized() else None


def _any_process_all_reduce(value: int) -> int:
    """The largest `value` over all processes (one all-reduce, on the device the backend needs)."""
    import torch
    from accelerate import PartialState

    tensor = torch.tensor([value], device=PartialState().device)
    _group().all_reduce(tensor, op=_group().ReduceOp.MAX)
    return int(tensor.item())


def any_process(flag: bool, reduce=None) -> bool:
    """True on every process when `flag` is true on any of them. All processes must call it at the same
    point (it is a collective operation). reduce(int) -> int: the largest value over the processes
    (injected by tests); by default one all-reduce when there is a process group, else `flag` itself."""
    if reduce is None:
        if _group() is None:
            return bool(flag)
        reduce = _any_process_all_reduce
    return bool(reduce(int(bool(flag))))


def _gather(value) -> list:
    """`value` from every process, in rank order, on every process."""
    dist = _group()
    if dist is None:
        return [value]
    values = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def agree_on_run(run_dir: Path, resume: str | None, gather=None) -> tuple[Path, str | None]:
    """The run folder and the checkpoint to resume from, as the main process decided them, on every process.
    Each process reads its own disk: on several nodes without a shared output folder, or with one node's copy
    incomplete, they would resume from different steps and hang or drift apart silently. So the main process
    decides, every other one checks that it holds that checkpoint complete, and all stop together, naming
    what is missing where, when one does not. gather(value) -> [value of each process] (tests inject it)."""
    gather = gather or _gather
    import socket

    decided_dir, decided = gather((str(run_dir), resume))[0]
    run_dir = Path(decided_dir)
    if decided is None:
        problem = None
    else:
        checkpoint = run_dir / "checkpoints" / Path(decided).name
        problem = checkpoint_problem(checkpoint) if checkpoint.is_dir() else "not there"
    lacking = [
        (n, host, why) for n, (host, why) in enumerate(gather((socket.gethostname(), problem))) if why is not None
    ]
    if lacking:
        where = "; ".join(f"process {n} on {host}: {why}" for n, host, why in lacking)
        raise SetupError(
            f"the main process resumes from {decided}, which other processes cannot ({where}). Every process "
            "reads the checkpoint from its own disk: give all nodes one shared --output-dir (the trainer writes "
            "checkpoints from the main process only), or copy that checkpoint to the same path on each node, "
            "then rerun the same command."
        )
    return run_dir, decided


# ----------------------------------------------------------------------------- writes that survive a kill
@contextlib.contextmanager
def atomic_path(path: Path):
    """Yields a temporary path beside `path` (`.NAME.partial`) to write a file or a folder to; when the block
    ends, the files are flushed to disk and the temporary one takes `path`'s place in one rename. A kill at
    any moment leaves the old `path` or the whole new one, never part of one. A full disk ends in a
    SetupError that names the space the write needed; nothing partial is left behind."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    old = path.with_name(f".{path.stem}.old{path.suffix}")
    _remove(tmp)  # what a killed write left
    _remove(old)
    try:
        yield tmp
        _flush_to_disk(tmp)
        if tmp.is_dir() and path.is_dir():  # a folder cannot be renamed over another: the old one steps aside
            path.rename(old)
        tmp.replace(path)
        _flush_to_disk(path.parent, recurse=False)
        _remove(old)
    except BaseException as e:
        written = _size(tmp)
        _remove(tmp)
        if old.exists() and not path.exists():  # stopped between the two renames: the old one goes back
            old.rename(path)
        if is_disk_full(e, path.parent):
            raise disk_full(path.parent, f"writing {path.name}", written, at_least=True) from None
        raise


def write_json(path: Path, data) -> None:
    """Write through a temporary file, so an interrupted write never leaves half a file."""
    write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    """Bytes in a file, or in all the files of a folder."""
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


def _flush_to_disk(path: Path, recurse: bool = True) -> None:
    """fsync, so that a power cut after the rename cannot leave the new name on data never written."""
    paths = sorted(path.rglob("*")) + [path] if recurse and path.is_dir() else [path]
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            if not p.is_dir():  # a full disk may only show here (delayed allocation, network filesystems)
                raise
            # some filesystems cannot fsync a folder; the rename is still atomic
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------- a full disk
def is_disk_full(error: BaseException, folder: Path) -> bool:
    """Python reports a full disk as OSError ENOSPC, safetensors as "No space left on device (os error 28)",
    and torch.save without an errno ("[enforce fail at inline_container.cc] ... unexpected pos"): that one
    counts when the disk is now (nearly) full."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    text = str(error)
    if "No space left on device" in text or "os error 28" in text:
        return True
    return "inline_container" in text and _free(folder) < 64 * 2**20


def _free(folder: Path) -> int:
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def _mb(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def disk_full(run_dir: Path, what: str, needed: int, at_least: bool, extra: str = "") -> SetupError:
    """The message a full disk ends in: what was being written, the space it needed, the space free, and
    the last complete checkpoint, which the same command resumes from once there is room."""
    needed_text = f"more than {_mb(needed)}" if at_least else f"about {_mb(needed)}"
    text = f"the disk is full: {what} needed {needed_text}, and {_mb(_free(run_dir))} is free in {run_dir}. {extra}"
    if (run_dir / "checkpoints").is_dir():
        text += f"Last complete checkpoint: {latest_checkpoint(run_dir) or 'none yet'}. "
    return SetupError(text + "Free some space and run the same command again: it resumes from there.")


def checkpoint_disk_full(run_dir: Path) -> SetupError:
    """A checkpoint save ran out of space: the partial checkpoint is set aside (it can be deleted to free its
    space), and the space needed is that of the last complete checkpoint (the same shapes, saved again)."""
    set_aside = set_aside_incomplete(run_dir)
    last = latest_checkpoint(run_dir)
    extra = "".join(
        f"The partial {old.name} ({_mb(_size(new))}) is set aside as {new}: delete it to free that space. "
        for old, new, _ in set_aside
    )
    what = f"saving {set_aside[-1][0].name}" if set_aside else "saving a checkpoint"
    if last:
        return disk_full(run_dir, what, _size(Path(last)), at_least=False, extra=extra)
    return disk_full(run_dir, what, max((_size(new) for _, new, _ in set_aside), default=0), at_least=True, extra=extra)


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_problem(folder: Path) -> str | None:
    """Why checkpoint-N is incomplete, or None when it is whole: trainer_state.json (written last) present,
    readable and at step N; every safetensors file covering exactly the tensors its header lists; every torch
    file (optimizer, scheduler, random state) a whole zip archive (torch.save's format, whose directory is at
    the end, so a cut file has none)."""
    from safetensors import safe_open

    state_file = folder / "trainer_state.json"
    if not state_file.is_file():
        return "no trainer_state.json, which the trainer writes last"
    try:
        step = json.loads(state_file.read_text())["global_step"]
    except (OSError, ValueError, KeyError, TypeError):
        return "trainer_state.json is cut short or unreadable"
    match = CHECKPOINT.match(folder.name)
    if match and step != int(match.group(1)):
        return f"trainer_state.json is at step {step}"
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".safetensors":
            try:
                with safe_open(str(path), "pt"):
                    pass
            except Exception:  # safetensors' own error: header cut, or the data shorter than it says
                return f"{path.relative_to(folder)} is cut short"
        elif path.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(path):
            return f"{path.relative_to(folder)} is cut short"
    return None


def _checkpoints(run_dir: Path) -> list[Path]:
    """checkpoint-N folders, newest first."""
    folder = run_dir / "checkpoints"
    found = [p for p in folder.iterdir() if CHECKPOINT.match(p.name) and p.is_dir()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(CHECKPOINT.match(p.name).group(1)), reverse=True)


def latest_checkpoint(run_dir: Path) -> str | None:
    """The newest complete checkpoint (transformers' get_last_checkpoint takes the highest number, whole or not)."""
    return next((str(p) for p in _checkpoints(run_dir) if checkpoint_problem(p) is None), None)


def set_aside_incomplete(run_dir: Path) -> list[tuple[Path, Path, str]]:
    """Rename every incomplete checkpoint-N to incomplete-checkpoint-N, saying so in one line each; never
    deletes one. Returns (old, new, why) for each."""
    moved = []
    for folder in _checkpoints(run_dir):
        why = checkpoint_problem(folder)
        if why is not None:
            moved.append((folder, set_aside(folder, f"{why}; a run stopped while saving it"), why))
    return moved


def set_aside(folder: Path, why: str) -> Path:
    """Rename `folder` to incomplete-NAME (-2, -3 ...) beside it and say so in one line; returns the new path."""
    new, n = folder.with_name(SET_ASIDE_PREFIX + folder.name), 2
    while new.exists():
        new, n = folder.with_name(f"{SET_ASIDE_PREFIX}{folder.name}-{n}"), n + 1
    folder.rename(new)
    say(f"{folder.name} is incomplete ({why}): set aside as {new}")
    return new


def run_status(run_dir: Path) -> str | None:
    return status_record(run_dir).get("status")


def status_record(run_dir: Path) -> dict:
    """status.json as written by set_status, or {} when there is none (or it cannot be read)."""
    try:
        record = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def set_status(run_dir: Path, status: str, **extra) -> None:
    if is_main_process():
        write_json(run_dir / "status.json", {"status": status, "time": time.strftime("%Y-%m-%d %H:%M:%S"), **extra})


def prepare_run_dir(output_dir: str, run_name: str, if_finished: str) -> tuple[Path, str | None]:
    """(the run's folder, the checkpoint to resume from or None). A finished run is refused, or with
    if_finished="new" the run goes to RUN_NAME-2, -3, ... beside it. Incomplete checkpoints are set aside;
    an earlier start that left none complete is started over, and that is said."""
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
    earlier = status_record(run_dir)  # how the last start of this run ended, if it did
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        set_aside_incomplete(run_dir)
    resume = latest_checkpoint(run_dir)
    if earlier.get("signal") and is_main_process():  # its own message may have gone with a closed pipe
        saved = f", saved at {Path(earlier['checkpoint']).name}" if earlier.get("checkpoint") else ", nothing saved"
        say(f"the last start of this run was stopped by {earlier['signal']} ({earlier.get('time', '?')}){saved}")
    if resume is None and earlier.get("status") in ("training", "interrupted", "stopped") and is_main_process():
        say(
            f"{run_dir} holds an earlier start that stopped before its first complete checkpoint: "
            "this run starts over from the beginning, format priming included"
        )
    return agree_on_run(run_dir, resume)  # several processes: the main one's choice, held by all, or a stop


def new_folder_beside(source_dir: Path, output_dir: str, suffix: str) -> Path:
    """OUTPUT_DIR/<source>-<suffix>, -2, -3 ...: a fresh folder for a job on an earlier run."""
    output = Path(output_dir)
    run_dir, n = output / f"{source_dir.name}-{suffix}", 2
    while run_dir.exists():
        run_dir, n = output / f"{source_dir.name}-{suffix}-{n}", n + 1
    run_dir.mkdir(parents=True)
    return run_dir


def check_one_gpu_per_process(backend: str) -> None:
    """The transformers backend in one process that sees several GPUs: the Trainer would set n_gpu to their
    number and wrap the model in nn.DataParallel (transformers/training_args.py:1911-1917, trainer.py:2548),
    which GRPOTrainer refuses once the model has loaded and priming has run (trl/trainer/grpo_trainer.py:
    945-955). Unsloth checks this itself. Refused here, before anything loads, with the two ways that work."""
    import torch

    if backend != "transformers" or world_size() > 1 or not torch.cuda.is_available():
        return
    count = torch.cuda.device_count()
    if count > 1:
        command = " ".join(["train_grpo.py", *sys.argv[1:]])
        raise SetupError(
            f"this one process sees {count} GPUs, and the trainer would spread each step over them with "
            "nn.DataParallel, which TRL's GRPOTrainer does not support. Use them all, one process each:\n"
            f"    accelerate launch --num_processes {count} {command}\n"
            f"or train on one of them:\n    CUDA_VISIBLE_DEVICES=0 python {command}"
        )


def cuda_oom_advice(settings: dict) -> str:
    return (
        "CUDA ran out of memory. Lower, in this order: --num-generations and --per-device-batch (e.g. 2 and 2), "
        f"--max-seq-length (now {settings['max_seq_length']}, which bounds the completion length), "
        f"--gpu-memory-utilization (now {settings['gpu_memory_utilization']}, vLLM's share), "
        "--eval-batch-size; or load the model in 4 bits with --load-in-4bit true. Rerun the same command to "
        "resume from the last checkpoint."
    )


# ----------------------------------------------------------------------------- stopping on a signal
def record_stop(run_dir: Path, signal_name: str, checkpoint: str | None, adapter: Path | None = None) -> None:
    """Mark the run interrupted and say how to go on, in status.json as well as on the screen: a Ctrl-C
    that also ends `tee` takes the screen's copy with it. The next start says how the last one ended."""
    again = "run the same command again: " + " ".join(["python", *sys.argv])
    if checkpoint:
        message = f"stopped by {signal_name} and saved: checkpoint {checkpoint}, adapter {adapter}\nto resume, {again}"
    else:  # a stop before the first checkpoint: during format priming
        message = (
            f"{signal_name} during format priming: nothing saved yet. To start over (priming takes minutes, not "
            f"hours), {again}"
        )
    set_status(run_dir, "interrupted", checkpoint=checkpoint, signal=signal_name, message=message)
    if is_main_process():  # one message, from the process that writes the run folder
        say("\n" + message)


def say(text: str) -> None:
    """print() that never raises: with `... | tee log`, Ctrl-C ends tee too, and the run must still save."""
    try:
        print(text, flush=True)
    except (OSError, ValueError):
        pass


class _SurvivesClosedPipe:
    """sys.stdout or sys.stderr that, once the reader of its pipe is gone, sends what follows to /dev/null
    instead of raising BrokenPipeError in whatever code printed (the trainer's step lines, a progress bar).
    Everything but write and flush goes to the stream it wraps."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self):
        try:  # at the descriptor, so the stream's buffer, C code and the flush at exit all find somewhere to write
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)


def survive_closed_output() -> None:
    """From here on (for the rest of the process), a closed stdout or stderr never stops the run."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _SurvivesClosedPipe):
            setattr(sys, name, _SurvivesClosedPipe(stream))


class StopOnSignal:
    """Ctrl-C or SIGTERM: finish the current step, save a checkpoint, stop. A second Ctrl-C exits at once.

    The handler only sets a flag and writes straight to the file descriptor, ignoring any error: a print()
    there could raise (a closed pipe) or re-enter the buffer the interrupted code was writing to."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def __enter__(self):
        survive_closed_output()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.received:
            _write_raw("\nsecond interrupt: exiting now, without saving\n")
            os._exit(130)
        self.received = signal.Signals(signum).name
        _write_raw(f"\n{self.received}: finishing this step, then saving a checkpoint (Ctrl-C again quits now)\n")

    def agree(self, reduce=None) -> bool:
        """At the same point on every process (a step's end, the end of a stage): True on all of them when any
        received a signal, which then counts as received on each. A signal reaches processes at different
        moments, or only one node's; acted on alone, one process would save and leave while another waits in
        the next step's collective for ever."""
        if any_process(self.received is not None, reduce):
            self.received = self.received or "a stop on another process"
            return True
        return False


def _write_raw(text: str) -> None:
    try:
        os.write(1, text.encode())
    except OSError:
        pass


def make_guard(stop: StopOnSignal):
    """A trainer callback: saves and stops on a signal; saves after the last step too; stops without saving
    when the loss or the gradient norm turns NaN or infinite (so the newest checkpoint stays a good one)."""
    from transformers import TrainerCallback

    class Guard(TrainerCallback):
        def __init__(self):
            self.bad_loss_step: int | None = None

        def on_step_end(self, args, state, control, **kwargs):
            keeps_checkpoints = args.save_strategy != "no"  # GRPO does; priming does not
            if stop.agree():  # every process, every step: all save (once) and stop together
                control.should_save = keeps_checkpoints
                control.should_training_stop = True
            elif keeps_checkpoints and state.global_step >= state.max_steps:  # a kill later costs no step
                control.should_save = True
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
    """trainer.train(), turning a divergence into a SetupError that names the last good checkpoint, and a
    full disk during a checkpoint save into one that names it too and the space the save needed."""
    if resume and checkpoint_step(resume) >= trainer.args.max_steps:
        _restore_without_training(trainer, resume)
        return
    try:
        trainer.train(resume_from_checkpoint=resume)
    except Exception as e:
        if is_disk_full(e, run_dir):
            raise checkpoint_disk_full(run_dir) from None
        # sampling from NaN or infinite probabilities: the weights diverged
        if not isinstance(e, RuntimeError) or "inf" not in str(e) or "nan" not in str(e):
            raise
        guard.bad_loss_step = trainer.state.global_step + 1
    if guard.bad_loss_step is not None:
        raise SetupError(
            f"training diverged at step {guard.bad_loss_step}: the loss, the gradients or the model's "
            "probabilities became NaN or infinite. Training stopped and that step was not saved. Newest "
            f"checkpoint, from before it: {latest_checkpoint(run_dir) or 'none'}. Lower --learning-rate and rerun "
            "the same command to resume from it, or delete the checkpoints to start over."
        )


def checkpoint_step(checkpoint: str) -> int:
    """The step a complete checkpoint was saved at."""
    return json.loads((Path(checkpoint) / "trainer_state.json").read_text())["global_step"]


def _restore_without_training(trainer, checkpoint: str) -> None:
    """The trainer as it was at `checkpoint`, its last step, without a step more. A run killed after its
    last checkpoint but before it finished (during the comparison, say) resumes here: transformers 5.17's
    training loop trains once before it first checks the step count (trainer.py, _inner_training_loop
    and _run_epoch), so train() would take step max_steps + 1, which the unbroken run never did."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import TrainerState

    set_peft_model_state_dict(trainer.model, load_file(Path(checkpoint) / "adapter_model.safetensors"))
    trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
    step, last = trainer.state.global_step, trainer.args.max_steps
    print(f"{Path(checkpoint).name} is at step {step} of {last}: nothing left to train", flush=True)
