"""`python train_grpo.py ARGS` under several processes, with stand-ins for what a test cannot wait for,
chosen by environment variables (torchrun gives every process the same command line):

    RANKS_DEFAULT_TIMEOUT_S=N   torch's default timeout for a process group is N seconds: a stand-in for NCCL's
                                10 minutes, which every collective gets when the group is made without one
    RANKS_SLOW_MAIN_S=N         the main process takes N seconds longer to load the model: a stand-in for a
                                first download over a slow link
    RANKS_SIGNAL_AT=STAGE:STEP:RANK   at the end of STEP of STAGE (priming or grpo), process RANK alone sends
                                itself SIGINT, as when a signal reaches one node's processes only
    RANKS_WAIT_AT=STAGE:STEP    at the end of STEP of STAGE every process prints "rank R: waiting at STAGE step
                                STEP" and waits for a signal (the test sends one, as a terminal's Ctrl-C does);
                                one that never comes ends the process with status 3 after WAIT_LIMIT_S

Each process prints "rank R exits with N" as its last line, so a test reads every process's exit status
(torchrun reports only the first failure).

    RANKS_SIGNAL_AT=grpo:3:1 python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ranks_run.py ...
"""

import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trl  # noqa: E402 - the CPU path never imports Unsloth, so trl may come first here

import train_grpo  # noqa: E402

WAIT_LIMIT_S = 300


def install_stand_ins() -> None:
    rank = int(os.environ.get("RANK", "0"))
    if os.environ.get("RANKS_DEFAULT_TIMEOUT_S"):
        import torch.distributed.distributed_c10d as c10d

        c10d.default_pg_timeout = timedelta(seconds=float(os.environ["RANKS_DEFAULT_TIMEOUT_S"]))
    if os.environ.get("RANKS_SLOW_MAIN_S") and rank == 0:
        load_model = train_grpo.load_model

        def slow_load_model(*args, **kwargs):
            time.sleep(float(os.environ["RANKS_SLOW_MAIN_S"]))
            return load_model(*args, **kwargs)

        train_grpo.load_model = slow_load_model
    if os.environ.get("RANKS_SIGNAL_AT") or os.environ.get("RANKS_WAIT_AT"):
        signal_at = os.environ.get("RANKS_SIGNAL_AT", "::").split(":")
        wait_at = os.environ.get("RANKS_WAIT_AT", ":").split(":")
        make_guard = train_grpo.make_guard

        def signalling_guard(stop):
            guard = make_guard(stop)
            on_step_end = guard.on_step_end

            def signalled_step_end(args, state, control, **kwargs):
                here = ["grpo" if isinstance(args, trl.GRPOConfig) else "priming", str(state.global_step)]
                if here + [str(rank)] == signal_at:
                    os.kill(os.getpid(), signal.SIGINT)  # delivered before the next line: the handler has run
                if here == wait_at:
                    print(f"rank {rank}: waiting at {here[0]} step {here[1]}", flush=True)
                    deadline = time.monotonic() + WAIT_LIMIT_S
                    while not stop.received:
                        if time.monotonic() > deadline:
                            os._exit(3)
                        time.sleep(0.01)
                return on_step_end(args, state, control, **kwargs)

            guard.on_step_end = signalled_step_end
            return guard

        train_grpo.make_guard = signalling_guard


def main(args: list[str]) -> int:
    install_stand_ins()
    sys.argv = [str(ROOT / "train_grpo.py"), *args]
    try:
        status = train_grpo.main(args)
    except SystemExit as e:
        status = e.code
    print(f"rank {os.environ.get('RANK', '0')} exits with {status}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
