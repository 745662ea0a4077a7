"""DAPO's dynamic sampling (arXiv 2503.14476, section 3.2): each GRPO step trains only on groups whose
completions scored differently, and generates for further prompts until the step's batch is full of them.

Why: a group whose completions all score the same gets advantage 0 on every token, so its generation and
its backward pass teach nothing; with the `dapo` loss its tokens still count in the normaliser, so they
also shrink the update that the other groups make. Early in a real run most groups are all wrong; late in
a smoke run most are all right.

How, in one subclass of whatever GRPOTrainer class the run uses (TRL's, or the one Unsloth patched in at
import; train_grpo.py builds it with `with_dynamic_sampling`):
  1. `_generate_and_score_completions` runs as it is for the step's own prompts. `_calculate_rewards` hands
     back the rewards of every process's completions (TRL gathers them there), and this class keeps a
     reference to them: every process decides on the same gathered numbers, so all take the same number of
     rounds and keep the same groups. Both methods, and the batch dict, are TRL 1.15's
     (trl/trainer/grpo_trainer.py:2250 and :1537) and are kept by the copy Unsloth 2026.10.7 compiles
     (unsloth_compiled_cache/UnslothGRPOTrainer.py:6790 and :6067, which adds `max_left_pad`, :7482).
  2. A group is live when its weighted total rewards are not all equal (TRL's own test for
     frac_reward_zero_std). Each process keeps its first live groups, up to the number it trains on.
  3. While some process is short, every process generates once more, for the next prompts of a seeded pass
     over the training set of its own (the refill stream; the held-out set is never in it), at most
     `rounds` times. A refill prompt is used once per pass whether its group is kept or not, so a training
     set of problems the model always solves ends the step after `rounds` rounds, not never.
  4. If the bound is reached, the free places are filled with same-score groups (advantage 0) and the step
     trains on what it has; they are left out of the token count the `dapo`/`cispo` loss divides by, so they
     dilute nothing. The step's log says how many (`dynamic_sampling/short`).
  5. The kept rows are joined into one batch (prompts padded on the left, completions on the right, as TRL
     pads them) and returned; TRL's own buffering and splitting of the batch go on as without this class.
The refill stream's position is saved in each checkpoint (trainer_state.json) and restored on resume.
"""

from __future__ import annotations

import torch

import rewards

METRIC = "dynamic_sampling/"
# Written by the step line, the report and the benchmark; one value per GRPO step, totalled over processes.
COUNTS = ("generated", "kept", "dropped_all_right", "dropped_all_wrong", "short", "extra_rounds")
REFILL_SEED_OFFSET = 7919  # the refill stream's permutations differ from the main sampler's (seeded by SEED)
ANSWER_REWARD = rewards.check_answer.__name__  # its score tells an all-right group from an all-wrong one

# The batch fields TRL 1.15 and Unsloth 2026.10.7 return for text prompts, by how a longer batch is padded.
PROMPT_FIELDS = ("prompt_ids", "prompt_mask")  # (B, P), padded on the left
COMPLETION_FIELDS = (  # (B, C) padded on the right; (B, 1) for sequence-level importance ratios
    "completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps",
    "sampling_per_token_logps", "importance_sampling_ratio",
)  # fmt: skip
ROW_FIELDS = ("advantages", "max_left_pad")  # one value per row (Unsloth's max_left_pad is redone below)


def group_verdicts(rewards_per_func, weights, num_generations: int, answer_column: int | None):
    """For each group of the gathered rewards (rows: completions of every process, columns: reward
    functions): (live, all_right). live: the weighted totals differ; all_right: a same-score group whose
    every completion got the answer reward for a correct answer."""
    from trl.trainer.utils import nanstd

    totals = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    totals[torch.isnan(rewards_per_func).all(dim=1)] = torch.nan  # unscored by every function: left out, as TRL
    spread = torch.nan_to_num(nanstd(totals.view(-1, num_generations), dim=1), nan=0.0)  # (groups,)
    live = ~torch.isclose(spread, torch.zeros_like(spread))
    if answer_column is None:
        return live, torch.zeros_like(live)
    answers = rewards_per_func[:, answer_column].view(-1, num_generations)
    all_right = (answers == rewards.ANSWER_CORRECT).all(dim=1) & ~live
    return live, all_right


def refill_indices(cursor: int, count: int, dataset_size: int, seed: int) -> list[int]:
    """Training-set rows `cursor` .. `cursor + count` of the refill stream: seeded permutations of the
    training set, one after another, so every row comes once per pass."""
    indices = []
    while len(indices) < count:
        passes, offset = divmod(cursor, dataset_size)
        generator = torch.Generator().manual_seed(seed + REFILL_SEED_OFFSET * (passes + 1))
        order = torch.randperm(dataset_size, generator=generator).tolist()
        take = order[offset : offset + count - len(indices)]
        indices += take
        cursor += len(take)
    return indices


def tally(verdicts: list[tuple], wanted: int) -> tuple[dict, object]:
    """The step's counts and each process's choice, from the gathered verdicts of every round so far.

    verdicts: per round, (live, all_right), each (processes, groups per process). Each process takes its
    first `wanted` live groups; one short of them fills the rest with its first same-score groups.
    Returns (counts, chosen), chosen: (processes, rounds x groups) True where a group goes into the batch.
    """
    live = torch.cat([v[0] for v in verdicts], dim=1)  # (processes, rounds x groups), in generation order
    right = torch.cat([v[1] for v in verdicts], dim=1)
    kept = live & (live.cumsum(dim=1) <= wanted)
    short = wanted - kept.sum(dim=1, keepdim=True)  # (processes, 1): 0 unless the bound was reached
    filler = ~live & ((~live).cumsum(dim=1) <= short)
    dropped = ~live & ~filler
    counts = {
        "generated": live.numel(),
        "kept": int(kept.sum()),
        "dropped_all_right": int((dropped & right).sum()),
        "dropped_all_wrong": int((dropped & ~right).sum()),
        "short": int(short.sum()),
        "extra_rounds": len(verdicts) - 1,
    }
    return counts, kept | filler


def join_rows(parts: list[tuple[dict, list[int]]], pad_token_id: int) -> dict:
    """One batch from rows of several generated batches: `parts` is (batch, row indices) per batch. Raises
    ValueError for a field it does not know how to join (images, Unsloth's per-sample weights)."""
    known = {*PROMPT_FIELDS, *COMPLETION_FIELDS, *ROW_FIELDS, "num_items_in_batch"}
    for batch, _ in parts:
        unknown = sorted(k for k, v in batch.items() if v is not None and k not in known)
        if unknown:
            raise ValueError(
                f"dynamic sampling cannot join batches with {', '.join(unknown)} (text prompts only, and none of "
                "Unsloth's UNSLOTH_GRPO_* loss weights): set --dynamic-sampling-rounds 0"
            )
    for batch, _ in parts:
        width = batch["completion_ids"].shape[1]
        odd = [k for k in COMPLETION_FIELDS if batch.get(k) is not None and batch[k].shape[1] not in (1, width)]
        if odd:  # e.g. Unsloth's log-probs that also cover the prompt's padding
            raise ValueError(
                f"dynamic sampling cannot join {', '.join(odd)}: not one value per completion token. "
                "Set --dynamic-sampling-rounds 0"
            )
    joined = {}
    for key in parts[0][0]:
        if key == "num_items_in_batch":
            continue  # the caller counts the kept tokens itself
        pieces = [batch[key][rows] for batch, rows in parts if rows and batch.get(key) is not None]
        if not pieces:  # a field the trainer returned as None (Unsloth may) stays None
            joined[key] = None
            continue
        if key in PROMPT_FIELDS or (key in COMPLETION_FIELDS and pieces[0].dim() == 2):
            width = max(p.shape[1] for p in pieces)
            value = pad_token_id if key.endswith("_ids") else 0
            left = key in PROMPT_FIELDS
            pieces = [_pad(p, width, value, left) for p in pieces]
        joined[key] = torch.cat(pieces)
    if "max_left_pad" in joined:  # Unsloth: the widest left padding of the batch, on every row
        left_pad = (joined["prompt_mask"] == 0).sum(dim=1).max()
        joined["max_left_pad"] = torch.full_like(joined["max_left_pad"], int(left_pad))
    return joined


def _pad(tensor, width: int, value, left: bool):
    missing = width - tensor.shape[1]
    if missing == 0:
        return tensor
    filler = torch.full((tensor.shape[0], missing), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([filler, tensor] if left else [tensor, filler], dim=1)


def with_dynamic_sampling(trainer_class, rounds: int):
    """`trainer_class` (a GRPOTrainer, possibly Unsloth's) with dynamic sampling: up to `rounds` extra
    generation rounds per step to replace groups without signal. rounds 0: the class itself."""
    if rounds <= 0:
        return trainer_class
    from transformers import TrainerCallback
    from transformers.trainer_callback import ExportableState

    class RefillPosition(TrainerCallback, ExportableState):
        """The refill stream's position, saved with each checkpoint's trainer state and restored on resume."""

        def __init__(self, trainer=None):  # None: how transformers rebuilds callbacks, which the recipe never asks
            self.trainer = trainer

        def state(self) -> dict:
            return {"args": {}, "attributes": {"cursor": self.trainer.refill_cursor if self.trainer else 0}}

        def on_train_begin(self, args, state, control, **kwargs):
            saved = state.stateful_callbacks.get(type(self).__name__, {}) if state.stateful_callbacks else {}
            self.trainer.refill_cursor = int(saved.get("attributes", {}).get("cursor", 0))

    class DynamicSamplingTrainer(trainer_class):
        extra_rounds = rounds

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.refill_cursor = 0  # refill prompts drawn so far, over all processes
            self._gathered_rewards = None
            self.add_callback(RefillPosition(self))

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            self._gathered_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            return self._gathered_rewards  # (completions of every process, reward functions)

        def _generate_and_score_completions(self, inputs):
            if not self.model.training:  # evaluation batches are scored as they are
                return super()._generate_and_score_completions(inputs)
            size = self.num_generations
            wanted = len(inputs) // size  # groups this process trains on
            processes, rank = self.accelerator.num_processes, self.accelerator.process_index
            names = list(self.reward_func_names)
            answer_column = names.index(ANSWER_REWARD) if ANSWER_REWARD in names else None
            zero_std_logged = len(self._metrics["train"]["frac_reward_zero_std"])
            batches, verdicts = [], []
            for round_ in range(self.extra_rounds + 1):
                round_inputs = inputs if round_ == 0 else self._refill_inputs(wanted, processes, rank)
                batches.append(super()._generate_and_score_completions(round_inputs))
                live, all_right = group_verdicts(self._gathered_rewards, self.reward_weights, size, answer_column)
                verdicts.append((live.view(processes, -1).cpu(), all_right.view(processes, -1).cpu()))
                counts, chosen = tally(verdicts, wanted)
                if counts["short"] == 0:  # every process has its live groups (the same verdict on all)
                    break
            mine = torch.nonzero(chosen[rank]).flatten().tolist()  # columns: round x groups + group
            live_mine = torch.cat([v[0][rank] for v in verdicts])
            parts = [(batches[c // wanted], c % wanted, bool(live_mine[c])) for c in mine]
            output = self._join(parts, size)
            self._log_counts(counts, zero_std_logged, processes * wanted)
            return output

        def _refill_inputs(self, wanted: int, processes: int, rank: int) -> list[dict]:
            """This process's share of the next `wanted` x processes refill prompts, each row repeated once per
            completion of its group, as TRL's sampler repeats them."""
            indices = refill_indices(self.refill_cursor, wanted * processes, len(self.train_dataset), self.args.seed)
            self.refill_cursor += len(indices)
            mine = indices[rank * wanted : (rank + 1) * wanted]
            return [dict(self.train_dataset[i]) for i in mine for _ in range(self.num_generations)]

        def _join(self, parts: list[tuple[dict, int, bool]], size: int) -> dict:
            """The step's batch from (generated batch, group, live) triples; the loss's token count (used by
            dapo, cispo and vespo) over the live groups of every process only."""
            rows: dict[int, tuple[dict, list[int]]] = {}
            live_tokens = torch.zeros((), dtype=torch.long, device=self.accelerator.device)
            for batch, group, live in parts:
                span = list(range(group * size, (group + 1) * size))
                rows.setdefault(id(batch), (batch, []))[1].extend(span)
                if live:
                    live_tokens += batch["completion_mask"][span].sum()
            try:
                joined = join_rows(list(rows.values()), self.processing_class.pad_token_id)
            except ValueError as e:
                raise RuntimeError(str(e)) from None
            joined["num_items_in_batch"] = self.accelerator.gather(live_tokens.reshape(1)).sum()
            return joined

        def _log_counts(self, counts: dict, zero_std_logged: int, batch_groups: int) -> None:
            """The step's counts, and TRL's same-score share as the share of the trained batch (TRL appended one
            value per round, over everything generated)."""
            metrics = self._metrics["train"]
            del metrics["frac_reward_zero_std"][zero_std_logged:]
            metrics["frac_reward_zero_std"].append(counts["short"] / batch_groups)
            for name, value in counts.items():
                metrics[METRIC + name].append(float(value))

    return DynamicSamplingTrainer
