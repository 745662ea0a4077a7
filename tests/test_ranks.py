"""Several processes decide together: how long they wait for each other, when they stop, where they resume.

Fast guards of each decision with injected collectives, then the same claims end to end on CPU: torchrun with
two processes (gloo), or two torchrun "nodes" of one process each with output folders of their own, through
tests/ranks_run.py (stand-ins for a slow download, for a short backend timeout, for a signal that reaches one
process). Each end-to-end run has its own timeout, far above its length and under CI's limit, so a hang fails."""

import os
import re
import signal
import socket
import subprocess
import sys
import types

import pytest

import train_grpo
from recipe import runs
from recipe.errors import SetupError
from tests.conftest import QUICK, QUICK_RUN, ROOT, offline_env, read_json

RANKS_RUN = (str(ROOT / "tests" / "ranks_run.py"),)  # torchrun runs it with this Python
TORCHRUN = (sys.executable, "-m", "torch.distributed.run")
RUN_LIMIT_S = 420  # one end-to-end run: about a minute on 2 cores; a hang ends here, not in CI's limit


# ----------------------------------------------------------------------------- the decisions, one process
def two_processes(values: list):
    """An injected all-reduce (max) over two processes whose flags are `values`."""
    return lambda mine: max(values)


@pytest.mark.parametrize("mine, other, stops", [(True, False, True), (False, True, True), (False, False, False)])
def test_a_signal_on_any_process_stops_every_process(mine, other, stops):
    stop = runs.StopOnSignal()
    stop.received = "SIGINT" if mine else None
    assert stop.agree(reduce=two_processes([int(mine), int(other)])) is stops
    assert (stop.received is not None) is stops  # the later checks (priming, the end) see it on every process
    if other and not mine:
        assert stop.received == "a stop on another process"


def test_the_guard_saves_and_stops_on_a_stop_another_process_received(monkeypatch):
    """The trainer callback asks every process, at every step's end: the one that got no signal saves and
    stops with the one that did."""
    stop = runs.StopOnSignal()
    monkeypatch.setattr(runs, "any_process", lambda flag, reduce=None: True)  # another process was signalled
    guard = runs.make_guard(stop)
    control = types.SimpleNamespace(should_save=False, should_training_stop=False)
    state = types.SimpleNamespace(global_step=3, max_steps=6)
    guard.on_step_end(types.SimpleNamespace(save_strategy="steps"), state, control)
    assert control.should_save and control.should_training_stop and stop.received


def checkpoint(run_dir, step: int):
    folder = run_dir / "checkpoints" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(f'{{"global_step": {step}}}')
    return folder


def as_process_1(main_answers: list):
    """An injected gather for process 1 of two: the main process's answers to each call in turn, then this one's."""
    answers = iter(main_answers)
    return lambda mine: [next(answers), mine]


def test_every_process_resumes_from_the_main_ones_checkpoint(tmp_path):
    main_dir, other_dir = tmp_path / "node0" / "run", tmp_path / "node1" / "run"
    for step in (2, 4):
        checkpoint(main_dir, step)
        checkpoint(other_dir, step)
    decided = str(main_dir / "checkpoints" / "checkpoint-4")
    gather = as_process_1(main_answers=[(str(main_dir), decided), ("node0", None)])

    run_dir, resume = runs.agree_on_run(other_dir, str(other_dir / "checkpoints" / "checkpoint-2"), gather)
    assert (run_dir, resume) == (main_dir, decided)  # the main process's folder and step, not its own newest


@pytest.mark.parametrize("problem", ["missing", "incomplete"])
def test_a_checkpoint_one_process_lacks_stops_every_process_naming_it(tmp_path, problem):
    run_dir = tmp_path / "run"
    checkpoint(run_dir, 2)
    if problem == "incomplete":
        (checkpoint(run_dir, 4) / "trainer_state.json").unlink()
    decided = str(run_dir / "checkpoints" / "checkpoint-4")
    gather = as_process_1(main_answers=[(str(run_dir), decided), ("node0", None)])

    with pytest.raises(
        SetupError, match=r"resumes from .*checkpoint-4.*process 1 on \S+: (not there|no trainer_state)"
    ):
        runs.agree_on_run(run_dir, str(run_dir / "checkpoints" / "checkpoint-2"), gather)


def test_one_process_alone_decides_for_itself(tmp_path):
    run_dir = tmp_path / "run"
    newest = str(checkpoint(run_dir, 4))
    assert runs.agree_on_run(run_dir, newest) == (run_dir, newest)  # no process group: no collective


def test_the_process_group_gets_the_runs_timeout(monkeypatch):
    """The first PartialState fixes every collective's timeout; created without one it is the backend's."""
    from datetime import timedelta

    import accelerate

    made = []
    monkeypatch.setattr(accelerate, "PartialState", lambda **kwargs: made.append(kwargs))
    monkeypatch.setenv("WORLD_SIZE", "2")
    runs.start_processes(train_grpo.DEFAULTS["process_timeout_minutes"])
    assert made[0]["timeout"] == timedelta(minutes=train_grpo.DEFAULTS["process_timeout_minutes"])
    assert made[0]["timeout"] >= timedelta(minutes=60)  # a first 8 GB download and a 30-minute evaluation fit


def test_one_process_seeing_several_gpus_is_refused_before_loading(monkeypatch, capsys, tmp_path):
    """The transformers Trainer would wrap the model in nn.DataParallel, which GRPOTrainer refuses after the
    model loaded and priming ran: refused before anything loads, with the commands that work."""
    import torch

    from recipe import models

    loaded = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(train_grpo, "choose_backend", lambda wanted, needs_gpu: "transformers")
    monkeypatch.setattr(models, "load_model", lambda *a, **k: loaded.append(1))
    monkeypatch.setattr(train_grpo, "load_model", lambda *a, **k: loaded.append(1))
    monkeypatch.setattr(sys, "argv", ["train_grpo.py", "--backend", "transformers"])
    assert train_grpo.main(["--backend", "transformers", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "sees 4 GPUs" in err and "nn.DataParallel" in err
    assert "accelerate launch --num_processes 4 train_grpo.py --backend transformers" in err
    assert "CUDA_VISIBLE_DEVICES=0 python train_grpo.py --backend transformers" in err
    assert not loaded and not list(tmp_path.iterdir())  # nothing loaded, nothing written
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    runs.check_one_gpu_per_process("transformers")  # one GPU: fine
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    runs.check_one_gpu_per_process("unsloth")  # Unsloth checks this itself
    monkeypatch.setenv("WORLD_SIZE", "4")
    runs.check_one_gpu_per_process("transformers")  # one process per GPU: what the message asks for


# ----------------------------------------------------------------------------- end to end: torchrun on CPU
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, cwd=ROOT, **env):
    env = offline_env(OMP_NUM_THREADS="1", **env)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_S, check=False)


def exits(output: str) -> dict:
    """{rank: exit status} from tests/ranks_run.py's last lines (the processes share one pipe, so a line
    may hold the end of another's: read by pattern, not by line)."""
    return dict(re.findall(r"rank (\d+) exits with (-?\d+)", output))


@pytest.mark.slow
def test_a_slow_first_load_on_the_main_process_does_not_time_out_the_others(tmp_path):
    """The main process loads the model 8 s longer while the backend's default timeout stands at 3 s (for
    NCCL's 10 minutes): the other process waits in the run's own, longer timeout, and says what for."""
    command = [*TORCHRUN, "--standalone", "--nproc_per_node", "2", *RANKS_RUN, "--smoke", *QUICK]
    command += ["--max-steps", "1", "--priming", "false", "--eval-steps", "0", "--output-dir", str(tmp_path)]
    result = launch(command, RANKS_DEFAULT_TIMEOUT_S="3", RANKS_SLOW_MAIN_S="8")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert exits(result.stdout) == {"0": "0", "1": "0"}
    assert "process 1: waiting for the main process to download and load" in result.stdout
    assert "for at most 120 minutes" in result.stdout


# The shortened smoke run (QUICK_RUN: saves at steps 2 and 4) in two torchrun processes on this machine.
TWO_PROCESSES = [*TORCHRUN, "--standalone", "--nproc_per_node", "2", *RANKS_RUN, *QUICK_RUN]


@pytest.mark.slow
def test_a_signal_to_one_process_stops_all_with_one_checkpoint(tmp_path):
    """SIGINT reaches process 1 alone at the end of GRPO step 3 (between the saves at 2 and 4): both processes
    save checkpoint-3 once, together, and exit 130; nothing trains past step 3."""
    command = [*TWO_PROCESSES, "--output-dir", str(tmp_path)]
    result = launch(command, RANKS_SIGNAL_AT="grpo:3:1")
    output = result.stdout + result.stderr
    assert exits(result.stdout) == {"0": "130", "1": "130"}, output[-4000:]
    run_dir = tmp_path / "smoke"
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert runs.checkpoint_problem(run_dir / "checkpoints" / "checkpoint-3") is None
    status = read_json(run_dir / "status.json")
    assert status["status"] == "interrupted" and status["checkpoint"].endswith("checkpoint-3")
    assert read_json(run_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json")["global_step"] == 3


@pytest.mark.slow
def test_ctrl_c_in_the_terminal_under_torchrun_saves_once_and_exits_130(tmp_path):
    """A terminal's Ctrl-C reaches torchrun alone (its processes run in sessions of their own: torch/distributed/
    elastic/multiprocessing/subprocess_handler/subprocess_handler.py:63-66), which forwards it to each process
    once and SIGKILLs them after TORCH_ELASTIC_SHUTDOWN_TIMEOUT seconds (30 by default; long enough here for
    any machine's speed). Both processes wait at GRPO step 3 until the signal, sent to torchrun's process
    group as a terminal does."""
    command = [*TWO_PROCESSES, "--output-dir", str(tmp_path)]
    env = offline_env(OMP_NUM_THREADS="1", RANKS_WAIT_AT="grpo:3", TORCH_ELASTIC_SHUTDOWN_TIMEOUT=str(RUN_LIMIT_S))
    run = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)  # fmt: skip
    lines = []
    try:
        for line in run.stdout:  # both processes waiting at step 3, then the signal
            lines.append(line)
            if "".join(lines).count("waiting at grpo step 3") == 2:
                os.killpg(run.pid, signal.SIGINT)
                break
        lines += run.communicate(timeout=RUN_LIMIT_S)[0].splitlines(keepends=True)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    output = "".join(lines)
    assert exits(output) == {"0": "130", "1": "130"}, output[-4000:]
    assert "second interrupt" not in output
    run_dir = tmp_path / "smoke"
    assert runs.checkpoint_problem(run_dir / "checkpoints" / "checkpoint-3") is None
    assert read_json(run_dir / "status.json")["checkpoint"].endswith("checkpoint-3")


@pytest.mark.slow
def test_a_checkpoint_missing_on_one_node_stops_both_naming_it(tmp_path):
    """Two "nodes" (one torchrun each, one process each) with output folders of their own: node 0's newest
    checkpoint is step 4, node 1 has only step 2. Both stop before loading the model, naming what node 1 lacks."""
    port = str(free_port())
    for node, steps in ((0, (2, 4)), (1, (2,))):
        run_dir = tmp_path / f"node{node}" / "out" / "smoke"
        for step in steps:
            checkpoint(run_dir, step)
        (run_dir / "status.json").write_text('{"status": "interrupted"}')
    nodes = []
    for node in (0, 1):
        command = [*TORCHRUN, "--nnodes", "2", "--node_rank", str(node), "--nproc_per_node", "1"]
        command += ["--master_addr", "127.0.0.1", "--master_port", port, *RANKS_RUN, *QUICK_RUN]
        command += ["--output-dir", "out"]
        env = offline_env(OMP_NUM_THREADS="1")
        nodes.append(subprocess.Popen(command, cwd=tmp_path / f"node{node}", env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))  # fmt: skip
    try:
        outputs = [node.communicate(timeout=RUN_LIMIT_S)[0] for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    for output in outputs:
        assert "process 1 on" in output and "checkpoint-4" in output and "not there" in output, output[-4000:]
        assert " exits with 2" in output
    assert not (tmp_path / "node0" / "out" / "smoke" / "base_model").exists()  # stopped before the model
