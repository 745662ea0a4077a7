"""`python bench/undiluted.py ARGS...` runs `python train_grpo.py ARGS...` with one change, for
bench/dynamic_sampling.py's `undiluted` variant: the recipe's own groups (no extra generation rounds), with the
same-score groups left out of the token count the `dapo` loss divides by, exactly as dynamic sampling leaves
them out when it runs short (recipe/sampling.py, step 4). It is dynamic sampling with 0 extra rounds, which
the setting itself never builds (0 means off). Not a setting: it only tells the two causes of a gain apart:
the larger update an undiluted step makes, and the extra groups with signal that the refill rounds find."""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import recipe.sampling as sampling  # noqa: E402 - after the sys.path line above

build = sampling.with_dynamic_sampling


def undiluted(trainer_class, rounds: int):
    """The dynamic-sampling subclass with no refill round: every group generated is trained on, and the
    loss divides by the tokens of the groups whose scores differ. `rounds` (0 here) is not used."""
    trainer = build(trainer_class, 1)
    trainer.extra_rounds = 0
    return trainer


if __name__ == "__main__":
    sampling.with_dynamic_sampling = undiluted  # before train_grpo imports it by name
    sys.argv = [str(ROOT / "train_grpo.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
