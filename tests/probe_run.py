"""`python train_grpo.py ARGS` exactly as a user runs it, with one observer added for the tests.

GRPO's trainer is replaced by a subclass that changes nothing it does; it only records, per process,
what a run's outputs cannot show: the rows the trainer was given, the problems it actually generated
for and the size of their advantages, the reward weights it summed with, and its trainable (LoRA)
weights when training ended. Each
process writes PROBE_DIR/rank<RANK>.json and PROBE_DIR/rank<RANK>.safetensors.

    PROBE_DIR=/tmp/probe python tests/probe_run.py --smoke ...
    PROBE_DIR=/tmp/probe python -m torch.distributed.run --standalone --nproc_per_node 2 tests/probe_run.py --smoke ...
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trl  # noqa: E402 - the CPU path never imports Unsloth, so trl may come first here

import train_grpo  # noqa: E402


class ProbedGRPOTrainer(trl.GRPOTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.problems_seen, self.advantage_sums = [], []

    def _generate_and_score_completions(self, inputs):
        self.problems_seen += [row["problem_id"] for row in inputs]  # this process's share of the batch
        output = super()._generate_and_score_completions(inputs)
        self.advantage_sums.append(float(output["advantages"].abs().sum()))  # 0: no gradient from this batch
        return output

    def train(self, *args, **kwargs):
        output = super().train(*args, **kwargs)
        from safetensors.torch import save_file

        folder, rank = Path(os.environ["PROBE_DIR"]), os.environ.get("RANK", "0")
        folder.mkdir(parents=True, exist_ok=True)
        trainable = {n: p.detach().cpu().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}
        save_file(trainable, str(folder / f"rank{rank}.safetensors"))
        probe = {
            "train_rows": len(self.train_dataset),
            "train_problem_ids": list(self.train_dataset["problem_id"]),
            "problems_seen": self.problems_seen,
            "advantage_sums": self.advantage_sums,
            "reward_weights": self.reward_weights.tolist(),
            "global_step": self.state.global_step,
        }
        (folder / f"rank{rank}.json").write_text(json.dumps(probe))
        return output


trl.GRPOTrainer = ProbedGRPOTrainer  # train_grpo.run() imports it from trl when it runs

if __name__ == "__main__":
    sys.exit(train_grpo.main(sys.argv[1:]))
