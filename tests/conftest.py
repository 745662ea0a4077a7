"""Shared fixtures: every test runs offline, and one learning smoke run is shared by the end-to-end tests."""

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

SMOKE_TASK = ROOT / "data" / "smoke_task.jsonl"
SMOKE_PRIMER = ROOT / "data" / "smoke_primer.jsonl"
# A shortened smoke run for the mechanical tests (resume, processes, divergence): every step of the
# recipe, a few seconds each, nothing learned. Held-out points every 2 steps and completions.jsonl at every
# step, so the resume tests compare those too.
QUICK = (
    "--priming-max-rows", "8", "--priming-epochs", "1", "--max-steps", "6", "--num-generations", "4",
    "--per-device-batch", "8", "--eval-size", "8", "--save-steps", "2", "--max-completion-length", "24",
    "--eval-max-new-tokens", "24", "--eval-steps", "2", "--log-completions-steps", "1",
)  # fmt: skip


def offline_env(**extra) -> dict:
    """The environment for a child process: offline, unbuffered output."""
    return dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1", **extra)


def run_script(*args, cwd=ROOT, timeout=900, **kwargs) -> subprocess.CompletedProcess:
    """python train_grpo.py ARGS, as a user runs it, offline; output captured."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train_grpo.py"), *map(str, args)],
        cwd=cwd,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One `python train_grpo.py --smoke` run, the learning one; its folder, after checking it succeeded."""
    output = tmp_path_factory.mktemp("outputs")
    result = run_script("--smoke", "--output-dir", output)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = output / "smoke"
    return {"dir": run_dir, "output": output, "stdout": result.stdout, "stderr": result.stderr}


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from recipe.smoke import build_tiny_tokenizer, smoke_texts

    return build_tiny_tokenizer(smoke_texts([str(SMOKE_TASK), str(SMOKE_PRIMER)]))


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
