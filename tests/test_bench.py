"""The benchmarks run and print measured numbers (their targets are read by people, not asserted here)."""

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_step_benchmark_parts_add_up_to_the_step(tmp_path):
    """Generation, rewards and training are each timed where they run (not one derived from the others),
    and together they account for the step, timed on its own; what is left, the loop's bookkeeping, is small."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "step.py"), "--tiny", "--steps", "3", "--json", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    row = re.search(r"^plain\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+(\d+)", result.stdout, re.M)
    assert row, result.stdout
    assert all(float(v) > 0 for v in row.groups()[:3])  # step, generation, training
    (plain,) = json.loads((tmp_path / "r.json").read_text())["results"]
    assert len(plain["steps"]) == 3
    for s in plain["steps"][1:]:  # the first pays for warm-up
        assert s["generation_s"] > 0 and s["training_s"] > 0 and s["rewards_s"] > 0 and s["tokens_per_s"] > 0
        measured = s["generation_s"] + s["rewards_s"] + s["training_s"]
        assert 0 < s["step_s"] - measured <= 0.05 * s["step_s"] + 0.02, s  # nested in the step, and most of it


def test_reward_benchmark_prints_its_ratio():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rewards.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: a target missed, which it says
    assert re.search(r"ratio\s+:\s+[\d.]+", result.stdout)
    assert re.search(r"worst call, worker thread:\s+[\d.]+ ms", result.stdout)
