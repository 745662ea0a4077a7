"""The benchmarks run and print measured numbers (their targets are read by people, not asserted here)."""

import re
import subprocess
import sys

from conftest import ROOT


def test_step_benchmark_runs_on_a_tiny_shape():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "step.py"), "--tiny", "--steps", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    row = re.search(r"^plain\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)", result.stdout, re.M)
    assert row, result.stdout
    step, generation, training, tokens_per_s = map(float, row.groups())
    assert step > 0 and generation > 0 and tokens_per_s > 0
    assert abs(step - generation - training) < 0.02


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
