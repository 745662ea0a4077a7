"""Shared fixtures: every test runs offline, and one smoke run is shared by the end-to-end tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in the tests may reach the Hugging Face Hub
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def offline_env(**extra) -> dict:
    """The environment for a child process: offline, unbuffered output."""
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1", **extra)


def run_script(*args, cwd=ROOT, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """python train_grpo.py ARGS, as a user runs it, offline; output captured."""
    env = offline_env()
    return subprocess.run(
        [sys.executable, str(ROOT / "train_grpo.py"), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One `python train_grpo.py --smoke` run; its folder, after checking it succeeded."""
    output = tmp_path_factory.mktemp("outputs")
    result = run_script("--smoke", "--output-dir", output)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = output / "smoke"
    return {"dir": run_dir, "output": output, "stdout": result.stdout, "stderr": result.stderr}


def read_json(path: Path):
    return json.loads(Path(path).read_text())
