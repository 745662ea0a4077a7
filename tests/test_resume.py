"""A run stopped at any moment resumes with the same command to the result of a run never stopped.

End to end, with shortened smoke runs: real signals at exact steps (tests/hooked_run.py waits at a step
until the test's signal arrives), Ctrl-C with the output piped to `tee` in the same process group, a
half-written checkpoint, SIGKILL at a random moment, and divergence by either detection path.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICK_RUN, ROOT, offline_env, read_json, run_script

import train_grpo
from recipe.runs import checkpoint_problem, set_status

ARGS = QUICK_RUN  # save_steps 2: the signal comes at step 3, between saves
HOOKED = (sys.executable, str(ROOT / "tests" / "hooked_run.py"))
COMPARED = ("learning_rate", "loss", "grad_norm", "reward")  # per GRPO step, resumed against unbroken


def grpo_steps(run_dir: Path) -> list[dict]:
    return [h for h in read_json(run_dir / "log_history.json") if "reward" in h]


def priming_steps(run_dir: Path) -> list[dict]:
    return [h for h in read_json(run_dir / "log_history.json") if h.get("stage") == "priming" and "loss" in h]


def samples(run_dir: Path) -> list[dict] | None:
    """completions.jsonl (recipe/monitor.py), parsed; None when the run writes none."""
    path = run_dir / "completions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else None


def heldout_points(run_dir: Path) -> list[dict]:
    """The held-out accuracy logged during training (recipe/monitor.py), without its timing."""
    log = read_json(run_dir / "log_history.json")
    return [{k: v for k, v in h.items() if k != "heldout/seconds"} for h in log if "heldout/accuracy" in h]


def lora(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def assert_same_weights(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-7), key


def start(command, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [*map(str, command)], cwd=ROOT, env=offline_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, errors="replace", **kwargs,  # a kill may cut a character in two
    )  # fmt: skip


def as_in_a_terminal() -> None:
    """Ctrl-C's default action, as a terminal's processes have it. A shell that starts a job in the
    background without job control (CI may) makes its children ignore SIGINT, and tee would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_until(stream, marker: str) -> str:
    """Lines from `stream` up to and including the first that holds `marker` (all of it if it never comes)."""
    seen = []
    for line in stream:
        seen.append(line)
        if marker in line:
            break
    return "".join(seen)


@pytest.mark.slow
def test_a_run_stopped_every_way_resumes_to_the_unbroken_result(tmp_path, quick_run):
    args = (*ARGS, "--output-dir", tmp_path / "stopped")
    run_dir = tmp_path / "stopped" / "smoke"
    checkpoints = run_dir / "checkpoints"

    # 1. SIGTERM during format priming: nothing to save yet, and the run says so.
    run = start([*HOOKED, "wait", "priming:1", *args])
    said = read_until(run.stdout, "hook: waiting at priming step 1")
    run.send_signal(signal.SIGTERM)
    said += run.communicate(timeout=300)[0]
    assert run.returncode == 130, said[-3000:]
    assert "SIGTERM during format priming: nothing saved yet" in said
    assert read_json(run_dir / "status.json")["status"] == "interrupted"
    assert not checkpoints.exists() and not (run_dir / "primed_adapter").exists()

    # 2. Ctrl-C in a terminal running `... 2>&1 | tee log`: SIGINT reaches the whole process group, tee
    #    exits on it, and the run's next prints meet a closed pipe. It still saves the step it was in.
    run = start([*HOOKED, "wait", "grpo:3", *args], process_group=0, preexec_fn=as_in_a_terminal)  # own group
    tee = subprocess.Popen(
        ["tee", str(tmp_path / "log")], stdin=run.stdout, stdout=subprocess.PIPE, text=True, process_group=run.pid,
        preexec_fn=as_in_a_terminal,
    )  # fmt: skip
    run.stdout.close()  # tee is the pipe's only reader
    said = read_until(tee.stdout, "hook: waiting at grpo step 3")
    assert "stopped before its first complete checkpoint: this run starts over" in said  # after step 1
    assert "the last start of this run was stopped by SIGTERM (" in said and "), nothing saved" in said
    os.killpg(run.pid, signal.SIGINT)
    tee.stdout.read()
    assert tee.wait(timeout=60) == -signal.SIGINT  # the reader is gone
    assert run.wait(timeout=300) == 130
    status = read_json(run_dir / "status.json")
    assert status == dict(status, status="interrupted", checkpoint=str(checkpoints / "checkpoint-3"), signal="SIGINT")
    assert "to resume, run the same command again: python " in status["message"]  # where the closed pipe lost it
    assert checkpoint_problem(checkpoints / "checkpoint-3") is None  # step 3: not a multiple of save_steps
    assert_same_weights(lora(run_dir / "adapter"), lora(checkpoints / "checkpoint-3"))
    assert [h["step"] for h in grpo_steps(run_dir)] == [1, 2, 3]

    # 3. A kill while checkpoint-4 was being written: weights down, optimizer cut, no trainer_state.json.
    partial = checkpoints / "checkpoint-4"
    partial.mkdir()
    for name in ("adapter_model.safetensors", "adapter_config.json", "optimizer.pt"):
        (partial / name).write_bytes((checkpoints / "checkpoint-3" / name).read_bytes())
    optimizer = (partial / "optimizer.pt").read_bytes()
    (partial / "optimizer.pt").write_bytes(optimizer[: len(optimizer) // 2])
    written = {p.name: p.read_bytes() for p in partial.iterdir()}

    # 4. The same command, SIGKILLed at a random moment (kept short: one kill), then once more to the end.
    unbroken = quick_run  # the same command, never stopped (tests/conftest.py); its time sets the kill's moment
    delay = random.uniform(0, unbroken["seconds"])
    run = start([sys.executable, ROOT / "train_grpo.py", *args])
    try:
        killed_said = run.communicate(timeout=delay)[0]
    except subprocess.TimeoutExpired:
        run.kill()
        killed_said = run.communicate()[0]
    note = f"(SIGKILL after {delay:.1f} s; exit {run.returncode})"
    said = killed_said
    if read_json(run_dir / "status.json")["status"] != "finished":  # else it finished before the kill
        result = run_script(*args)
        assert result.returncode == 0, note + result.stdout[-3000:] + result.stderr[-3000:]
        said += result.stdout
    assert "checkpoint-4 is incomplete (no trainer_state.json" in said, note
    aside = checkpoints / "incomplete-checkpoint-4"
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == written, note  # set aside byte for byte
    resumes = [line for line in said.splitlines() if "resuming from" in line]
    assert resumes and f"resuming from {checkpoints / 'checkpoint-3'} (step 3 of 4)" in resumes[0], note
    assert "format priming:" not in said, note  # primed once, before the checkpoints

    # The end is the unbroken run's: each step once, the same learning rate, loss, gradient and reward at
    # every step, the same priming, the same adapters.
    assert read_json(run_dir / "status.json")["status"] == "finished", note
    steps, expected = grpo_steps(run_dir), grpo_steps(unbroken["dir"])
    assert [h["step"] for h in steps] == [1, 2, 3, 4], note
    for got, want in zip(steps, expected, strict=True):
        assert {k: got[k] for k in COMPARED} == pytest.approx({k: want[k] for k in COMPARED}, rel=1e-5), note
    priming = [h["loss"] for h in priming_steps(unbroken["dir"])]
    assert priming and [h["loss"] for h in priming_steps(run_dir)] == pytest.approx(priming), note
    assert_same_weights(lora(run_dir / "primed_adapter"), lora(unbroken["dir"] / "primed_adapter"))
    assert_same_weights(lora(run_dir / "adapter"), lora(unbroken["dir"] / "adapter"))
    assert samples(run_dir) == samples(unbroken["dir"]), note  # each sampled group once, none lost
    assert heldout_points(run_dir) == heldout_points(unbroken["dir"]), note  # QUICK: every 2 steps
    assert read_json(run_dir / "comparison.json")["labels"] == ["base", "primed", "trained"]
    leftovers = [p.name for p in run_dir.rglob("*") if ".partial" in p.name or ".old" in p.name]
    assert not leftovers, note


DYNAMIC = ("--dynamic-sampling-rounds", "2")  # recipe/sampling.py
ROUNDS = "dynamic_sampling/extra_rounds"


@pytest.mark.slow
def test_a_stopped_run_with_dynamic_sampling_resumes_to_the_unbroken_result(tmp_path):
    """The refill stream's position travels in the checkpoint: stopped after step 2 (a checkpoint) and
    resumed, the run draws the refill prompts the unbroken run drew at step 3, and ends the same."""
    unbroken = run_script(*ARGS, *DYNAMIC, "--output-dir", tmp_path / "unbroken")
    assert unbroken.returncode == 0, unbroken.stdout[-3000:] + unbroken.stderr[-3000:]
    expected = grpo_steps(tmp_path / "unbroken" / "smoke")
    # what makes this a test of the resume: refill prompts drawn before the checkpoint and after it
    # (seeded, so the same on any machine; if a library change moves them, pick another seed)
    assert expected[0][ROUNDS] >= 1 and sum(h[ROUNDS] for h in expected[2:]) >= 1, [h[ROUNDS] for h in expected]

    args = (*ARGS, *DYNAMIC, "--output-dir", tmp_path / "stopped")
    run = start([*HOOKED, "wait", "grpo:2", *args])
    said = read_until(run.stdout, "hook: waiting at grpo step 2")
    run.send_signal(signal.SIGTERM)
    said += run.communicate(timeout=300)[0]
    assert run.returncode == 130, said[-3000:]
    result = run_script(*args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = tmp_path / "stopped" / "smoke"
    assert f"resuming from {run_dir / 'checkpoints' / 'checkpoint-2'} (step 2 of 4)" in result.stdout
    steps = grpo_steps(run_dir)
    counted = [k for k in expected[0] if k.startswith("dynamic_sampling/")]
    assert [h["step"] for h in steps] == [1, 2, 3, 4]
    for got, want in zip(steps, expected, strict=True):
        keys = (*COMPARED, *counted)
        assert {k: got[k] for k in keys} == pytest.approx({k: want[k] for k in keys}, rel=1e-5), got["step"]
    assert samples(run_dir) == samples(tmp_path / "unbroken" / "smoke")  # the same refill problems
    assert_same_weights(lora(run_dir / "adapter"), lora(tmp_path / "unbroken" / "smoke" / "adapter"))


@pytest.mark.slow
def test_a_run_killed_after_its_last_checkpoint_trains_no_step_more(tmp_path, quick_run, capsys):
    """Killed between its last checkpoint and its end (in the comparison, say), the same command finishes
    as the unbroken run did: the trainer, told to resume at its last step, would train one step more."""
    run_dir = tmp_path / "smoke"
    shutil.copytree(quick_run["dir"], run_dir)  # the unbroken run's folder, as the kill left it:
    set_status(run_dir, "training")  # not finished, checkpoint-4 written, no final adapter or report
    for name in ("adapter", "comparison.json", "comparison.md", "comparison.png", "training_curves.png"):
        shutil.rmtree(run_dir / name) if (run_dir / name).is_dir() else (run_dir / name).unlink()
    assert train_grpo.main([*ARGS, "--output-dir", str(tmp_path)]) == 0  # in this process: no signals here
    said = capsys.readouterr().out
    assert f"resuming from {run_dir / 'checkpoints' / 'checkpoint-4'} (step 4 of 4)" in said
    assert "checkpoint-4 is at step 4 of 4: nothing left to train" in said and "GRPO 5/4" not in said
    assert [h["step"] for h in grpo_steps(run_dir)] == [1, 2, 3, 4]
    assert heldout_points(run_dir) == heldout_points(quick_run["dir"])
    assert_same_weights(lora(run_dir / "adapter"), lora(quick_run["dir"] / "adapter"))
    again, first = (read_json(d / "comparison.json") for d in (run_dir, quick_run["dir"]))
    for label in first["labels"]:
        assert again[label]["records"] == first[label]["records"], label
    assert read_json(run_dir / "status.json")["status"] == "finished"


@pytest.mark.slow
def test_divergence_stops_before_saving_by_either_detection_path(tmp_path):
    args = (*ARGS, "--max-steps", "6", "--priming", "false", "--output-dir", tmp_path)
    checkpoints = tmp_path / "smoke" / "checkpoints"

    # The loss turns NaN at step 4, a step that would be saved: it must not be.
    run = subprocess.run([*HOOKED, "nan-loss", "grpo:4", *map(str, args)], **captured())
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    assert "training diverged at step 4" in run.stderr and "Lower --learning-rate" in run.stderr
    assert f"Newest checkpoint, from before it: {checkpoints / 'checkpoint-2'}." in run.stderr
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == ["checkpoint-2"]

    # Rerun from checkpoint-2; after step 3 the weights are NaN, so step 4 samples from NaN probabilities.
    run = subprocess.run([*HOOKED, "nan-weights", "grpo:3", *map(str, args)], **captured())
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"resuming from {checkpoints / 'checkpoint-2'}" in run.stdout
    assert "training diverged at step 4" in run.stderr and "probabilities became NaN" in run.stderr
    assert f"Newest checkpoint, from before it: {checkpoints / 'checkpoint-2'}." in run.stderr
    assert sorted(p.name for p in checkpoints.iterdir() if p.is_dir()) == ["checkpoint-2"]
    status = read_json(tmp_path / "smoke" / "status.json")  # never marked finished, nor left reading "training"
    assert status["status"] == "stopped" and status["reason"].startswith("training diverged at step 4")
    assert not (tmp_path / "smoke" / "comparison.json").exists()


def captured() -> dict:
    return dict(cwd=ROOT, env=offline_env(), capture_output=True, text=True, timeout=600)
