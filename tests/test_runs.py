"""The run folder: finished runs kept, new names when asked, the divergence and signal guard, and what a
kill at any moment leaves (incomplete checkpoints, atomic writes, a full disk, a closed output pipe)."""

import errno
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import ROOT, offline_env

from recipe.errors import SetupError
from recipe.runs import (
    StopOnSignal,
    atomic_path,
    checkpoint_problem,
    latest_checkpoint,
    make_guard,
    new_folder_beside,
    prepare_run_dir,
    record_stop,
    set_aside_incomplete,
    train_guarded,
    write_json,
)


@pytest.mark.parametrize(
    "logs",
    [
        {"loss": math.nan},
        {"loss": math.inf, "grad_norm": 1.0},
        {"loss": 0.5, "grad_norm": math.nan},  # a finite loss does not hide diverged gradients
        {"loss": 0.5, "grad_norm": -math.inf},
    ],
)
def test_guard_stops_without_saving_on_a_nan_or_infinite_loss_or_gradient_norm(logs):
    from transformers import TrainerControl, TrainerState

    guard = make_guard(StopOnSignal())
    control, state = TrainerControl(should_save=True), TrainerState(global_step=7)
    guard.on_log(None, state, control, logs=logs)
    assert control.should_training_stop and not control.should_save and guard.bad_loss_step == 7


def test_guard_lets_finite_steps_go_on():
    from transformers import TrainerControl, TrainerState

    guard = make_guard(StopOnSignal())
    for logs in ({"loss": 0.5, "grad_norm": 1.0}, {"loss": 0.0}, {"grad_norm": 1e30}, {}, None):
        control = TrainerControl(should_save=True)
        guard.on_log(None, TrainerState(global_step=3), control, logs=logs)
        assert not control.should_training_stop and control.should_save and guard.bad_loss_step is None


def test_guard_saves_and_stops_after_a_signal():
    from transformers import TrainerControl, TrainerState

    stop = StopOnSignal()
    stop.received = "SIGTERM"
    control = TrainerControl()
    make_guard(stop).on_step_end(SimpleNamespace(save_strategy="steps"), TrainerState(global_step=3), control)
    assert control.should_save and control.should_training_stop
    control = TrainerControl()  # priming keeps no checkpoints: it stops without one
    make_guard(stop).on_step_end(SimpleNamespace(save_strategy="no"), TrainerState(global_step=3), control)
    assert not control.should_save and control.should_training_stop


def test_guard_saves_after_the_last_step():
    from transformers import TrainerControl, TrainerState

    control = TrainerControl()
    make_guard(StopOnSignal()).on_step_end(
        SimpleNamespace(save_strategy="steps"), TrainerState(global_step=6, max_steps=6), control
    )
    assert control.should_save and not control.should_training_stop


def test_finished_run_is_refused_or_gets_a_new_name(tmp_path, capsys):
    finished = tmp_path / "smoke"
    finished.mkdir()
    (finished / "status.json").write_text(json.dumps({"status": "finished"}))
    with pytest.raises(SetupError, match="holds a finished run; it is left untouched"):
        prepare_run_dir(str(tmp_path), "smoke", "refuse")
    run_dir, resume = prepare_run_dir(str(tmp_path), "smoke", "new")
    assert run_dir == tmp_path / "smoke-2" and run_dir.is_dir() and resume is None


def test_unwritable_output_folder_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(SetupError, match="cannot write to the output folder"):
        prepare_run_dir(str(tmp_path / "a-file" / "sub"), "run", "refuse")


def test_jobs_on_an_earlier_run_get_fresh_folders(tmp_path):
    source = tmp_path / "run"
    assert new_folder_beside(source, str(tmp_path), "eval") == tmp_path / "run-eval"
    assert new_folder_beside(source, str(tmp_path), "eval") == tmp_path / "run-eval-2"
    assert new_folder_beside(source, str(tmp_path), "eval") == tmp_path / "run-eval-3"
    elsewhere = tmp_path / "not" / "yet"  # --output-dir naming a folder that does not exist yet
    assert new_folder_beside(source, str(elsewhere), "merged") == elsewhere / "run-merged" and elsewhere.is_dir()


# ----------------------------------------------------------------------------- a run killed at any moment
def make_checkpoint(folder: Path, step: int) -> Path:
    """A checkpoint laid out as the trainer writes one: weights, optimizer, scheduler, random state, and
    trainer_state.json last."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file({"lora_A": torch.ones(64, 8), "lora_B": torch.zeros(8, 64)}, folder / "adapter_model.safetensors")
    torch.save({"state": {0: torch.ones(64)}}, folder / "optimizer.pt")
    torch.save({"last_epoch": step}, folder / "scheduler.pt")
    torch.save({"python": 1}, folder / "rng_state.pth")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    return folder


def cut(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def files_of(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda c: (c / "trainer_state.json").unlink(), "no trainer_state.json"),
        (lambda c: cut(c / "trainer_state.json"), "trainer_state.json is cut short"),
        (lambda c: (c / "trainer_state.json").write_text('{"global_step": 2}'), "trainer_state.json is at step 2"),
        (lambda c: cut(c / "adapter_model.safetensors", 0.99), "adapter_model.safetensors is cut short"),
        (lambda c: cut(c / "adapter_model.safetensors", 0.001), "adapter_model.safetensors is cut short"),
        (lambda c: cut(c / "optimizer.pt", 0.9), "optimizer.pt is cut short"),
        (lambda c: cut(c / "rng_state.pth", 0.5), "rng_state.pth is cut short"),
    ],
)
def test_an_incomplete_checkpoint_is_told_from_a_whole_one(tmp_path, damage, reason):
    checkpoint = make_checkpoint(tmp_path / "checkpoint-4", 4)
    assert checkpoint_problem(checkpoint) is None
    damage(checkpoint)
    assert reason in checkpoint_problem(checkpoint)


def test_resume_takes_the_newest_whole_checkpoint_and_sets_the_others_aside(tmp_path, capsys):
    from transformers.trainer_utils import get_last_checkpoint, rotate_checkpoints

    run_dir = tmp_path / "run"
    make_checkpoint(run_dir / "checkpoints" / "checkpoint-2", 2)
    make_checkpoint(run_dir / "checkpoints" / "checkpoint-4", 4)
    partial = make_checkpoint(run_dir / "checkpoints" / "checkpoint-6", 6)
    (partial / "trainer_state.json").unlink()  # killed while saving: the state is written last
    cut(partial / "optimizer.pt")
    kept = files_of(partial)
    assert get_last_checkpoint(str(run_dir / "checkpoints")).endswith("checkpoint-6")  # what transformers picks
    assert latest_checkpoint(run_dir) == str(run_dir / "checkpoints" / "checkpoint-4")  # what the recipe picks

    _, resume = prepare_run_dir(str(tmp_path), "run", "refuse")
    assert resume == str(run_dir / "checkpoints" / "checkpoint-4")
    aside = run_dir / "checkpoints" / "incomplete-checkpoint-6"
    assert files_of(aside) == kept and not partial.exists()  # renamed, byte for byte, never deleted
    said = capsys.readouterr().out.strip().splitlines()
    assert said == [f"checkpoint-6 is incomplete (no trainer_state.json, which the trainer writes last; a run "
                    f"stopped while saving it): set aside as {aside}"]  # fmt: skip
    rotate_checkpoints(str(run_dir / "checkpoints"), save_total_limit=1)  # the trainer's clean-up after a save
    assert files_of(aside) == kept  # is not for set-aside folders

    make_checkpoint(run_dir / "checkpoints" / "checkpoint-6", 6)  # the same step cut short a second time
    (run_dir / "checkpoints" / "checkpoint-6" / "trainer_state.json").unlink()
    assert set_aside_incomplete(run_dir)[0][1] == run_dir / "checkpoints" / "incomplete-checkpoint-6-2"
    assert files_of(aside) == kept


def test_a_run_stopped_before_its_first_checkpoint_says_it_starts_over(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_json(run_dir / "status.json", {"status": "interrupted"})
    assert prepare_run_dir(str(tmp_path), "run", "refuse")[1] is None
    assert "stopped before its first complete checkpoint: this run starts over from the beginning, format " \
        "priming included" in capsys.readouterr().out  # fmt: skip
    assert prepare_run_dir(str(tmp_path), "fresh", "refuse")[1] is None
    assert "starts over" not in capsys.readouterr().out  # a new run is not "starting over"


@pytest.mark.parametrize("checkpoint", ["checkpoint-3", None])
def test_a_stop_is_told_in_status_json_and_again_at_the_next_start(tmp_path, capsys, monkeypatch, checkpoint):
    """The stop message reaches status.json, not only a screen (or a `tee` that the same Ctrl-C ended), and
    the next start of the same run says how the last one ended; a start after that says nothing of it."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    if checkpoint:
        checkpoint = str(make_checkpoint(run_dir / "checkpoints" / checkpoint, 3))
    monkeypatch.setattr(sys, "argv", ["train_grpo.py", "--max-steps", "4"])
    record_stop(run_dir, "SIGINT", checkpoint, run_dir / "adapter")
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted" and status["signal"] == "SIGINT" and status["checkpoint"] == checkpoint
    assert "run the same command again: python train_grpo.py --max-steps 4" in status["message"]
    assert status["message"] in capsys.readouterr().out
    assert prepare_run_dir(str(tmp_path), "run", "refuse")[1] == checkpoint
    saved = "saved at checkpoint-3" if checkpoint else "nothing saved"
    assert f"the last start of this run was stopped by SIGINT ({status['time']}), {saved}" in capsys.readouterr().out
    write_json(run_dir / "status.json", {"status": "training"})  # what that start writes once it goes on
    prepare_run_dir(str(tmp_path), "run", "refuse")
    assert "stopped by" not in capsys.readouterr().out

def test_atomic_path_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "adapter"
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("first")
    assert (target / "weights").read_text() == "first"
    with pytest.raises(KeyboardInterrupt):  # killed half-way through writing the second version
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text("sec")
            raise KeyboardInterrupt
    assert (target / "weights").read_text() == "first"  # the old one, whole
    (tmp_path / ".adapter.partial").mkdir()  # what a SIGKILL leaves behind (no clean-up ran)
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("second")
    assert (target / "weights").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]

    plot = tmp_path / "curves.png"
    with atomic_path(plot) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path  # savefig finds its format in the name
        tmp.write_bytes(b"png")
    assert plot.read_bytes() == b"png" and sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "curves.png"]


def test_write_json_never_leaves_part_of_a_file(tmp_path, monkeypatch):
    path = tmp_path / "log_history.json"
    write_json(path, [{"step": 1}])
    real_write_text = Path.write_text

    def killed_half_way(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, [{"step": 1}, {"step": 2}])
    monkeypatch.undo()
    assert json.loads(path.read_text()) == [{"step": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["log_history.json"]


def test_a_full_disk_during_a_write_says_how_much_it_needed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    make_checkpoint(tmp_path / "checkpoints" / "checkpoint-2", 2)
    target = tmp_path / "comparison.md"
    target.write_text("old")
    with pytest.raises(SetupError) as error:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"x" * 3 * 2**20)
            raise OSError(errno.ENOSPC, "No space left on device")
    message = str(error.value)
    assert message.startswith("the disk is full: writing comparison.md needed more than 3.0 MB, and ")
    assert f"Last complete checkpoint: {tmp_path / 'checkpoints' / 'checkpoint-2'}." in message
    assert target.read_text() == "old" and not (tmp_path / ".comparison.partial.md").exists()


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),  # Python's own writes (trainer_state.json)
        RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"),  # safetensors
    ],
)
def test_a_full_disk_during_a_checkpoint_save_names_the_last_complete_one(tmp_path, monkeypatch, error):
    """A real transformers Trainer saving checkpoints; the third save runs out of space after the weights
    and the optimizer are written (the message torch.save gives then has no errno: see the next test)."""
    import torch
    from transformers import Trainer, TrainingArguments

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(256, 256))

        def forward(self, x):
            return {"loss": (self.weight.sum(0) * x).pow(2).mean()}

    run_dir = tmp_path / "run"
    args = TrainingArguments(
        output_dir=str(run_dir / "checkpoints"), max_steps=5, save_steps=1, save_total_limit=2, use_cpu=True,
        per_device_train_batch_size=1, report_to="none", disable_tqdm=True, logging_steps=1,
    )  # fmt: skip
    trainer = Trainer(model=Tiny(), args=args, train_dataset=[{"x": torch.ones(256)}] * 8)
    save_rng_state = Trainer._save_rng_state

    def disk_fills_at_step_3(self, output_dir):
        if self.state.global_step == 3:
            raise error
        save_rng_state(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", disk_fills_at_step_3)
    with pytest.raises(SetupError) as raised:
        train_guarded(trainer, make_guard(StopOnSignal()), run_dir)
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "checkpoint-2"
    message = str(raised.value)
    size = sum(p.stat().st_size for p in last.rglob("*") if p.is_file())
    assert message.startswith(f"the disk is full: saving checkpoint-3 needed about {size / 2**20:.1f} MB, and ")
    assert f"Last complete checkpoint: {last}." in message
    assert f"set aside as {checkpoints / 'incomplete-checkpoint-3'}: delete it to free that space" in message
    assert (checkpoints / "incomplete-checkpoint-3" / "optimizer.pt").exists()  # kept, not deleted
    assert latest_checkpoint(run_dir) == str(last)


def test_torch_save_on_a_full_disk_is_told_by_the_free_space(tmp_path, monkeypatch):
    """torch.save reports a short write without an errno (seen on a full 64 kB tmpfs, torch 2.13)."""
    from recipe import runs

    error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    monkeypatch.setattr(runs, "_free", lambda folder: 0)
    assert runs.is_disk_full(error, tmp_path)
    monkeypatch.setattr(runs, "_free", lambda folder: 10 * 2**30)
    assert not runs.is_disk_full(error, tmp_path)  # the same words with room left: another fault, kept as it is
    assert not runs.is_disk_full(RuntimeError("probability tensor contains either inf, nan or element < 0"), tmp_path)


def test_an_incomplete_smoke_model_is_set_aside_and_built_again(tmp_path, capsys):
    from recipe.smoke import SMOKE_SETTINGS, build_smoke_model, smoke_model_problem

    folder = tmp_path / "base_model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")  # what a kill used to leave: the config, no weights
    build_smoke_model(folder, [SMOKE_SETTINGS["dataset"]], seed=1)
    assert smoke_model_problem(folder) is None
    assert (tmp_path / "incomplete-base_model" / "config.json").read_text() == "{}"
    assert "base_model is incomplete (no tokenizer.json)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base_model", "incomplete-base_model"]
    cut(folder / "model.safetensors")
    assert smoke_model_problem(folder) == "model.safetensors is cut short"


# ----------------------------------------------------------------------------- signals, in a small child process
CHILD = """
import os, sys, time
from pathlib import Path
from recipe.runs import StopOnSignal
with StopOnSignal() as stop:
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not stop.received or {hold}:  # a training step: the handler only sets the flag
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.01)
    for i in range(1000):  # the trainer's step lines, after the reader of the pipe is gone
        print("step line", i)
    Path(sys.argv[1]).write_text("saved")
print("stopped and saved")
sys.exit(130)
"""


def start_child(tmp_path, hold: bool) -> subprocess.Popen:
    code = CHILD.format(hold=hold)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path / "saved")], cwd=ROOT, env=offline_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_signal_saves_even_when_the_output_pipe_is_closed(tmp_path):
    """`... | tee log` and Ctrl-C: tee is gone before the run prints again. The handler's own message and
    every print after it must neither raise nor stop the save, and the exit status says interrupted."""
    child = start_child(tmp_path, hold=False)
    assert child.stdout.readline() == "ready\n"
    child.stdout.close()  # the reader of the pipe is gone
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=30) == 130, child.stderr.read()
    assert (tmp_path / "saved").read_text() == "saved" and child.stderr.read() == ""


def test_tee_i_keeps_what_the_run_prints_while_it_stops(tmp_path):
    """The README's `python train_grpo.py 2>&1 | tee -i log`: Ctrl-C reaches the whole pipeline (a terminal's
    process group, here made by hand), `tee -i` ignores it and reads on, so the stop message reaches the log."""

    def as_in_a_terminal():  # Ctrl-C's default action, whatever this test process was started with
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(hold=False), str(tmp_path / "saved")], cwd=ROOT, env=offline_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, process_group=0, preexec_fn=as_in_a_terminal,
    )  # fmt: skip
    tee = subprocess.Popen(
        ["tee", "-i", str(tmp_path / "log")], stdin=child.stdout, stdout=subprocess.PIPE, text=True,
        process_group=child.pid, preexec_fn=as_in_a_terminal,
    )  # fmt: skip
    child.stdout.close()  # tee is the pipe's only reader
    assert tee.stdout.readline() == "ready\n"
    os.killpg(child.pid, signal.SIGINT)
    rest = tee.stdout.read()
    assert child.wait(timeout=30) == 130 and tee.wait(timeout=30) == 0
    assert "SIGINT: finishing this step" in rest and rest.endswith("stopped and saved\n")
    assert (tmp_path / "log").read_text().endswith("stopped and saved\n")


def test_a_second_ctrl_c_quits_at_once(tmp_path):
    child = start_child(tmp_path, hold=True)  # a step that does not end
    assert child.stdout.readline() == "ready\n"
    child.send_signal(signal.SIGINT)
    assert "SIGINT: finishing this step, then saving a checkpoint" in child.stdout.readline() + child.stdout.readline()
    child.send_signal(signal.SIGINT)
    assert child.wait(timeout=10) == 130
    assert "second interrupt: exiting now, without saving" in child.stdout.read()
    assert not (tmp_path / "saved").exists()


def test_the_signal_handler_itself_never_raises():
    """Called with its stdout a pipe nobody reads, and no safety net around it: it still only records the
    signal (a print() here would raise BrokenPipeError into whatever the run was doing)."""
    code = (
        "import signal, sys; from recipe.runs import StopOnSignal; sys.stdin.readline(); stop = StopOnSignal(); "
        "stop._handle(signal.SIGTERM, None); sys.stderr.write(stop.received)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=offline_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    child.stdout.close()
    _, err = child.communicate("go\n", timeout=30)
    assert (child.returncode, err) == (0, "SIGTERM")


@pytest.mark.parametrize(
    "message, diverged",
    [
        ("probability tensor contains either `inf`, `nan` or element < 0", True),  # sampling from NaN weights
        ("CUDA error: an illegal memory access was encountered; for debugging information, pass ...", False),
    ],
)
def test_only_sampling_from_nan_or_inf_probabilities_counts_as_divergence(tmp_path, message, diverged):
    """A RuntimeError from training is a divergence only when it is torch's complaint about NaN or infinite
    probabilities (it names both); any other error is raised as it is, not hidden behind advice."""

    class Failing:
        args = SimpleNamespace(max_steps=4)
        state = SimpleNamespace(global_step=2)

        def train(self, resume_from_checkpoint=None):
            raise RuntimeError(message)

    if diverged:
        with pytest.raises(SetupError, match="training diverged at step 3"):
            train_guarded(Failing(), make_guard(StopOnSignal()), tmp_path)
    else:
        with pytest.raises(RuntimeError, match=message[:20]):
            train_guarded(Failing(), make_guard(StopOnSignal()), tmp_path)


def test_sizes_are_told_in_megabytes_below_a_gigabyte():
    from recipe.runs import _mb

    assert [_mb(n) for n in (5 * 2**20, 2**30 - 2**20, 2**30, 3 * 2**30)] == ["5.0 MB", "1023.0 MB", "1.0 GB", "3.0 GB"]
