"""Claims of the README and docs/ that no module's own tests cover, each checked so that the test fails when
the claim is false: model code runs only with --trust-remote-code true; several processes switch to transformers;
the rewards stay within -10 and 13; and, in a shortened run into the folder of a finished one, --if-finished new,
--max-train-rows, --eval-dataset and --reward-weights end to end."""

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICK, ROOT, SMOKE_PRIMER, SMOKE_TASK, offline_env, read_json, write_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rewards
import train_grpo
from recipe import models
from recipe.errors import SetupError
from recipe.settings import parse_settings
from recipe.smoke import SMOKE_SETTINGS, build_smoke_model
from recipe.training import grpo_config
from rewards import REASONING_END, REWARD_FUNCS, SOLUTION_END, SOLUTION_START


# ----------------------------------------------------------------------------- --trust-remote-code
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return Path(build_smoke_model(tmp_path_factory.mktemp("tiny") / "model", [str(SMOKE_TASK), str(SMOKE_PRIMER)], 1))


@pytest.fixture
def model_with_code(tiny_model, tmp_path):
    """A local model folder whose config maps the Auto classes to a Python file in the folder, as a hub
    repository with custom code does. Importing that file writes a marker file."""
    folder = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    marker = tmp_path / "model-code-ran"
    (folder / "marker_code.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('executed')\n"
        "from transformers import Qwen3Config, Qwen3ForCausalLM\n"
        "class MarkerConfig(Qwen3Config):\n    model_type = 'marker'\n"
        "class MarkerModel(Qwen3ForCausalLM):\n    config_class = MarkerConfig\n"
    )
    config = read_json(folder / "config.json")
    config["model_type"] = "marker"  # a type transformers does not know: only the folder's code can load it
    config["auto_map"] = {"AutoConfig": "marker_code.MarkerConfig", "AutoModelForCausalLM": "marker_code.MarkerModel"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


def test_model_code_runs_only_with_trust_remote_code(model_with_code):
    folder, marker = model_with_code
    settings = dict(train_grpo.DEFAULTS, **SMOKE_SETTINGS, model_name=str(folder))
    tokenizer = models.load_tokenizer(str(folder))
    with pytest.raises(SetupError) as error:
        models.load_model(settings, "transformers", tokenizer)
    assert not marker.exists(), "the model folder's code ran without --trust-remote-code true"
    assert "--trust-remote-code true" in str(error.value)  # says what to pass, not "check the name"
    # with the flag it runs: so the marker above would have shown it running without one
    models.load_tokenizer(str(folder), trust_remote_code=True)
    models.load_model(dict(settings, trust_remote_code=True), "transformers", tokenizer)
    assert marker.read_text() == "executed"


def test_the_script_passes_no_trust_without_the_flag(model_with_code, tmp_path, monkeypatch):
    """run() as the command line drives it (the backend choice aside, which needs a GPU for a real model)."""
    folder, marker = model_with_code
    monkeypatch.setattr(train_grpo, "choose_backend", lambda *args, **kwargs: "transformers")
    load_model = train_grpo.load_model

    def load_and_stop(*args, **kwargs):  # a model that does load ends the test here, before any training
        load_model(*args, **kwargs)
        raise AssertionError("the model with its own code loaded without --trust-remote-code true")

    monkeypatch.setattr(train_grpo, "load_model", load_and_stop)
    argv = ["--model-name", str(folder), "--dataset", str(SMOKE_TASK), "--priming", "false"]
    argv += ["--eval-size", "8", "--output-dir", str(tmp_path / "out")]
    S = parse_settings(argv, train_grpo.DEFAULTS, SMOKE_SETTINGS)
    assert S["trust_remote_code"] is False
    with pytest.raises(SetupError, match="--trust-remote-code true"):
        train_grpo.run(S)
    assert not marker.exists()
    assert parse_settings([*argv, "--trust-remote-code", "true"], train_grpo.DEFAULTS, SMOKE_SETTINGS)[
        "trust_remote_code"
    ]


# ----------------------------------------------------------------------------- backend under several processes
def test_several_processes_switch_to_transformers(monkeypatch, capsys):
    """On a CUDA GPU `auto` and `unsloth` mean Unsloth, but Unsloth trains on one GPU: launched with
    several processes the script uses transformers + PEFT, says so, and never imports Unsloth."""
    imported = []
    monkeypatch.setattr(models, "cuda_available", lambda: (True, ""))  # a GPU, as far as the choice knows
    monkeypatch.setattr(models, "import_unsloth", lambda: imported.append("unsloth"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert models.choose_backend("auto", needs_gpu=True) == "unsloth" and imported == ["unsloth"]
    imported.clear()
    monkeypatch.setenv("WORLD_SIZE", "2")
    for wanted in ("auto", "unsloth"):
        assert models.choose_backend(wanted, needs_gpu=True) == "transformers"
    assert imported == []
    assert "with several processes the transformers + PEFT backend is used" in capsys.readouterr().out


# ----------------------------------------------------------------------------- reward bounds
def total_reward(text: str, reference: str | None) -> float:
    scores = [f(completions=[[{"role": "assistant", "content": text}]], answer=[reference])[0] for f in REWARD_FUNCS]
    return sum(s for s in scores if s is not None)


WORST = f"{SOLUTION_START}x{SOLUTION_END} and again {SOLUTION_START}none{SOLUTION_END}"


def test_reward_bounds_are_reached():
    """docs/rewards.md: a completion doing exactly what the system prompt asks earns 13.0; the minimum is -10.0
    (no exact format, every tag missing or repeated, an answer that is not a number)."""
    best = f"17 + 17 = 34{REASONING_END}{SOLUTION_START}34{SOLUTION_END}"
    assert total_reward(best, "34") == 13.0 == rewards.MAX_REWARD
    assert total_reward(WORST, "34") == -10.0


answer_part = st.one_of(
    st.integers(-200, 200).map(str),
    st.sampled_from(["34", "34.0", r"\boxed{34}", "33, 34", "x", "", "1/2", r"\frac{68}{2}", "37", "30", "abc"]),
)
fragment = st.one_of(
    st.sampled_from([REASONING_END, SOLUTION_START, SOLUTION_END, "<|endoftext|>", " ", "\n"]),
    answer_part,
    st.text(max_size=6),
)
completion = st.one_of(
    st.lists(fragment, max_size=12).map("".join),
    st.tuples(st.text(max_size=20), answer_part).map(
        lambda p: f"{p[0]}{REASONING_END}{SOLUTION_START}{p[1]}{SOLUTION_END}"  # well formed, any answer
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=completion, reference=st.sampled_from(["34", "0", "-5", "1/2", "C", None]))  # "C": not a number
def test_rewards_stay_within_the_bounds(text, reference):
    assert -10.0 <= total_reward(text, reference) <= 13.0


def test_reward_weights_reach_the_trainer(tmp_path):
    config = grpo_config(dict(train_grpo.DEFAULTS, reward_weights="2,1,1,0.5"), tmp_path, "transformers", 64)
    assert config.reward_weights == [2.0, 1.0, 1.0, 0.5]
    assert grpo_config(dict(train_grpo.DEFAULTS), tmp_path, "transformers", 64).reward_weights in (None, [1.0] * 4)


# ----------------------------------------------------------------------------- a second run, a finished one's folder
EVAL_ROWS = [
    {"problem": "Which is the largest of 2, 17, 3, 1?", "answer": "17"},
    {"problem": "Which is the largest of 5, 4, 28, 6?", "answer": "28"},
    {"problem": "Which is the largest of 1, 39, 2, 3?", "answer": "39"},
]
WEIGHTS = [2.0, 1.0, 1.0, 0.5]
TRAIN_ROWS = 4  # two prompts a step (8 completions, 4 per prompt): two steps see every row once


def snapshot(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def second_run(tmp_path_factory, quick_run):
    """A finished run (a copy of the shared shortened one), then a command for the same folder with
    --if-finished new and the flags under test, through tests/probe_run.py (the script with an observer on
    GRPO's trainer). Returns what both left behind."""
    tmp = tmp_path_factory.mktemp("claims")
    out = tmp / "out"
    shutil.copytree(quick_run["dir"], out / "smoke")
    before = snapshot(out / "smoke")
    eval_file = write_rows(tmp / "my_eval.jsonl", EVAL_ROWS)
    command = [sys.executable, str(ROOT / "tests" / "probe_run.py"), "--smoke", *QUICK, "--output-dir", str(out)]
    command += ["--priming", "false", "--max-steps", "2", "--if-finished", "new", "--max-train-rows", str(TRAIN_ROWS)]
    command += ["--eval-dataset", str(eval_file), "--reward-weights", ",".join(map(str, WEIGHTS))]
    result = subprocess.run(
        command, cwd=ROOT, env=offline_env(PROBE_DIR=str(tmp / "probe")), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folders = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("run folder: ")]
    return {
        "out": out,
        "run_dir": Path(folders[0]),  # where the second run says it wrote, so each test below checks its own claim
        "before": before,
        "eval_file": eval_file,
        "probe": read_json(tmp / "probe" / "rank0.json"),
        "stdout": result.stdout,
    }


@pytest.mark.slow
def test_if_finished_new_leaves_the_finished_run_alone(second_run):
    out = second_run["out"]
    assert sorted(p.name for p in out.iterdir()) == ["smoke", "smoke-2"]
    assert second_run["run_dir"].resolve() == (out / "smoke-2").resolve()
    assert snapshot(out / "smoke") == second_run["before"]  # not one file of the finished run changed
    assert read_json(out / "smoke-2" / "status.json")["status"] == "finished"
    assert read_json(out / "smoke-2" / "config.json")["run_name"] == "smoke-2"
    assert f"this one goes to {out / 'smoke'}-2" in second_run["stdout"]


@pytest.mark.slow
def test_max_train_rows_is_what_the_trainer_trains_on(second_run):
    probe, run_dir = second_run["probe"], second_run["run_dir"]
    assert probe["train_rows"] == TRAIN_ROWS == len(probe["train_problem_ids"])
    assert set(probe["problems_seen"]) == set(probe["train_problem_ids"])  # generated for those rows, no others
    heldout = [json.loads(line)["problem_id"] for line in (run_dir / "heldout.jsonl").read_text().splitlines()]
    assert not set(probe["train_problem_ids"]) & set(heldout)  # taken from what is left after the held-out set


@pytest.mark.slow
def test_eval_dataset_is_what_the_comparison_answers(second_run):
    report = read_json(second_run["run_dir"] / "comparison.json")
    assert report["settings"]["dataset"] == str(second_run["eval_file"])
    for label in report["labels"]:
        records = report[label]["records"]
        assert [r["reference"] for r in records] == [row["answer"] for row in EVAL_ROWS]
        assert [r["problem_id"] for r in records] == [0, 1, 2]


@pytest.mark.slow
def test_reward_weights_weigh_the_trained_reward(second_run):
    run_dir = second_run["run_dir"]
    assert second_run["probe"]["reward_weights"] == WEIGHTS  # what the trainer multiplied by
    assert read_json(run_dir / "config.json")["trainer"]["reward_weights"] == WEIGHTS
    steps = [h for h in read_json(run_dir / "log_history.json") if "rewards/check_answer/mean" in h]
    assert len(steps) == 2
    for h in steps:  # the logged reward is the weighted sum of the four rewards' means
        weighted = sum(w * h[f"rewards/{f.__name__}/mean"] for w, f in zip(WEIGHTS, REWARD_FUNCS, strict=True))
        assert math.isclose(h["reward"], weighted, rel_tol=1e-5, abs_tol=1e-5), (h["reward"], weighted)
