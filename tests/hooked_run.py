"""`python train_grpo.py ARGS` with one test hook at an exact step, so a test can stop a run there with a
real signal (or make it diverge there) instead of guessing when to send one.

    python tests/hooked_run.py HOOK STAGE:STEP ARGS...

At the end of step STEP of STAGE (priming or grpo), HOOK does:
  wait         print "hook: waiting at STAGE step STEP" and wait for a signal, which the test sends to the
               process (or its group, as a terminal does); the run then goes on as it would
  hold         the same, but never go on by itself: a step that never ends, for the second Ctrl-C
  nan-loss     (grpo) the loss of step STEP is NaN, as after a blow-up
  nan-weights  (grpo) the LoRA weights are NaN after step STEP, so the next step samples from NaN
               probabilities
Nothing else changes: the hooks wrap the run's own guard callback and the trainer's loss. A hook that is
never released ends the process with status 3 after WAIT_LIMIT_S, so a broken test fails, never hangs.
"""

import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trl  # noqa: E402 - the CPU path never imports Unsloth, so trl may come first here

import train_grpo  # noqa: E402

WAIT_LIMIT_S = 300


def stage(args) -> str:
    return "grpo" if isinstance(args, trl.GRPOConfig) else "priming"


def main(hook: str, where: str, args: list[str]) -> int:
    at_stage, at_step = where.split(":")
    at_step = int(at_step)
    make_guard = train_grpo.make_guard

    def hooked_guard(stop):
        guard = make_guard(stop)
        on_step_end = guard.on_step_end

        def hooked_step_end(args, state, control, **kwargs):
            if stage(args) == at_stage and state.global_step == at_step:
                if hook in ("wait", "hold"):
                    print(f"hook: waiting at {at_stage} step {at_step}", flush=True)
                    deadline = time.monotonic() + WAIT_LIMIT_S
                    while hook == "hold" or not stop.received:
                        if time.monotonic() > deadline:
                            os._exit(3)
                        time.sleep(0.01)
                elif hook == "nan-weights":
                    for name, weight in kwargs["model"].named_parameters():
                        if "lora_" in name:
                            weight.data.fill_(math.nan)
            return on_step_end(args, state, control, **kwargs)

        guard.on_step_end = hooked_step_end
        return guard

    train_grpo.make_guard = hooked_guard
    if hook == "nan-loss":
        compute_loss = trl.GRPOTrainer.compute_loss

        def nan_loss(self, *a, **k):
            loss = compute_loss(self, *a, **k)
            return loss * math.nan if self.state.global_step + 1 == at_step else loss

        trl.GRPOTrainer.compute_loss = nan_loss
    sys.argv = [str(ROOT / "train_grpo.py"), *args]  # the resume command the run prints is the plain one
    return train_grpo.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
