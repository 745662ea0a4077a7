"""Tests for train_grpo.py on CPU: settings, data, chat template, refusals, and real smoke runs."""

import hashlib
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, offline_env, read_json, run_script

import rewards
import train_grpo as tg
from rewards import REASONING_START, SYSTEM_PROMPT

SAMPLE = ROOT / "data" / "math_sample.jsonl"


def smoke_settings(tmp_path, *extra):
    return tg.parse_settings(["--smoke", "--output-dir", str(tmp_path / "out"), *map(str, extra)])


@pytest.fixture(scope="module")
def tiny_tokenizer():
    settings = dict(tg.DEFAULTS, **tg.SMOKE_DEFAULTS)
    return tg.build_tiny_tokenizer(tg.smoke_texts(settings))


# ----------------------------------------------------------------------------- settings
def test_overrides_are_typed_and_printed(capsys):
    s = tg.parse_settings(["--max-steps", "10", "--learning-rate=1e-5", "--load-in-4bit", "true", "--run-name", "x"])
    assert (s["max_steps"], s["learning_rate"], s["load_in_4bit"], s["run_name"]) == (10, 1e-5, True, "x")
    assert isinstance(s["learning_rate"], float) and isinstance(s["max_steps"], int)
    out = capsys.readouterr().out
    assert "setting max_steps = 10" in out and "setting learning_rate = 1e-05" in out


def test_boolean_flag_alone_means_true():
    s = tg.parse_settings(["--eval-only", "--adapter", "a/b"])
    assert s["eval_only"] is True and s["adapter"] == "a/b"


def test_integer_setting_accepts_float_default_as_int():
    assert tg.parse_settings(["--learning-rate", "3"])["learning_rate"] == 3.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-step", "10"], "unknown setting --max-step. Did you mean --max-steps"),  # typo, with a suggestion
        (["--colour", "red"], "Valid settings: --model-name"),  # unknown, with the full list
        (["--max-steps", "ten"], "--max-steps takes an integer, not 'ten'"),  # wrong type
        (["--learning-rate", "fast"], "--learning-rate takes a number"),  # wrong type
        (["--load-in-4bit", "maybe"], "--load-in-4bit takes true or false"),  # not a boolean
        (["--max-steps"], "--max-steps needs a value"),  # missing value
        (["max_steps=3"], "unexpected argument"),  # not a --flag
    ],
)
def test_bad_overrides_fail_with_a_clear_message(argv, message):
    with pytest.raises(tg.SetupError) as error:
        tg.parse_settings(argv)
    assert message in str(error.value)


def test_smoke_defaults_then_explicit_overrides():
    s = tg.parse_settings(["--max-steps", "3", "--smoke"])
    assert s["max_steps"] == 3  # explicit wins, wherever it stands
    assert s["dataset"].endswith("math_sample.jsonl") and s["model_name"] == "tiny-random-qwen3"
    assert s["explicit"] == ["max_steps", "smoke"]


def test_defaults_are_the_recipe():
    d = tg.DEFAULTS
    assert d["model_name"] == "unsloth/Qwen3-4B-Base" and d["max_seq_length"] == 2048 and d["load_in_4bit"] is False
    assert (d["lora_rank"], d["lora_alpha"], d["seed"]) == (32, 64, 3407)
    assert (d["learning_rate"], d["weight_decay"], d["max_steps"], d["num_generations"]) == (5e-6, 0.001, 100, 4)
    assert (d["temperature"], d["min_p"], d["top_p"], d["optimizer"]) == (1.0, 0.1, 1.0, "adamw_8bit")
    assert d["per_device_batch"] % d["num_generations"] == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"per_device_batch": 6, "num_generations": 4}, "must be a multiple of --num-generations"),
        ({"max_prompt_length": 2048}, "must be below --max-seq-length"),
        ({"learning_rate": -1e-5}, "--learning-rate must not be negative"),
        ({"num_generations": 1, "per_device_batch": 1}, "at least 2"),
        ({"max_steps": 0}, "--max-steps must be positive"),
        ({"backend": "jax"}, "--backend must be auto, unsloth or transformers"),
        ({"reward_weights": "1,2"}, "needs 4 numbers"),
        ({"eval_only": True}, "--eval-only needs --adapter"),
        ({"run_name": "a/b"}, "--run-name must be a plain folder name"),
    ],
)
def test_settings_that_cannot_work_are_refused(change, message):
    with pytest.raises(tg.SetupError) as error:
        tg.check_settings(dict(tg.DEFAULTS, **change))
    assert message in str(error.value)


def test_reward_weights_parse():
    assert tg.reward_weights(dict(tg.DEFAULTS, reward_weights="1,0.5,2,1")) == [1.0, 0.5, 2.0, 1.0]
    assert tg.reward_weights(dict(tg.DEFAULTS)) is None


# ----------------------------------------------------------------------------- data
def test_bundled_sample_becomes_chat_prompts():
    table = tg.load_table(str(SAMPLE))
    assert {"prompt", "solution"} <= set(table.column_names)  # the real dataset's columns
    rows = tg.build_prompts(table, "prompt", "solution")
    assert len(rows) == len(table) == 240
    first = rows[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert first["prompt"][0]["content"] == SYSTEM_PROMPT
    assert first["prompt"][1]["content"] == table[0]["prompt"] and first["answer"] == table[0]["solution"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_local_file_with_other_columns(tmp_path, suffix, capsys):
    import datasets

    data = {"question": ["What is 2+2?", "", "What is 3*3?", "Empty answer?"], "final": ["4", "5", "#### 9", " "]}
    path = tmp_path / f"mine{suffix}"
    table = datasets.Dataset.from_dict(data)
    {".csv": table.to_csv, ".parquet": table.to_parquet, ".jsonl": table.to_json}[suffix](str(path))
    rows = tg.build_prompts(tg.load_table(str(path)), "question", "final")
    assert rows["answer"] == ["4", "9"]  # gsm8k-style "#### 9" keeps the number
    assert rows["problem_id"] == [0, 2]
    assert "dropped 2 of 4 rows with an empty problem or answer" in capsys.readouterr().out
    with pytest.raises(tg.SetupError) as error:
        tg.build_prompts(tg.load_table(str(path)), "prompt", "solution")
    assert "no column 'prompt' or 'solution'" in str(error.value) and "'question', 'final'" in str(error.value)


def test_local_folders_load(tmp_path):
    import datasets

    table = datasets.Dataset.from_dict({"prompt": ["1+1?", "2+2?"], "solution": ["2", "4"]})
    table.save_to_disk(str(tmp_path / "saved"))  # save_to_disk format
    (tmp_path / "repo" / "data").mkdir(parents=True)
    table.to_parquet(str(tmp_path / "repo" / "data" / "train-00000-of-00001.parquet"))  # a hub repo copy
    for folder in ("saved", "repo"):
        assert tg.load_table(str(tmp_path / folder), "", "train")["solution"] == ["2", "4"]
    with pytest.raises(tg.SetupError, match="could not read the dataset folder"):
        tg.load_table(str(tmp_path / "repo"), "", "test")


def test_heldout_is_disjoint_and_seeded():
    rows = tg.build_prompts(tg.load_table(str(SAMPLE)), "prompt", "solution")
    train, heldout = tg.split_heldout(rows, 16, seed=3407)
    assert len(heldout) == 16 and len(train) == len(rows) - 16
    assert not set(train["problem_id"]) & set(heldout["problem_id"])
    assert tg.split_heldout(rows, 16, seed=3407)[1]["problem_id"] == heldout["problem_id"]
    with pytest.raises(tg.SetupError, match="leaves nothing to train on"):
        tg.split_heldout(rows, len(rows), seed=1)


def test_evaluation_can_use_another_dataset(tmp_path):
    rows = [{"problem": f"What is {i} + {i}?", "answer": f"${2 * i}$", "level": 1} for i in range(5)]
    write_rows(tmp_path / "bench.jsonl", rows)
    settings = dict(tg.DEFAULTS, eval_dataset=str(tmp_path / "bench.jsonl"), eval_size=3)
    problems = tg.load_eval_problems(settings, heldout=None)
    assert problems["answer"] == ["$0$", "$2$", "$4$"] and problems["problem_id"] == [0, 1, 2]
    assert problems[0]["prompt"][0]["content"] == SYSTEM_PROMPT


def test_long_prompts_are_dropped(tiny_tokenizer):
    rows = tg.build_prompts(tg.load_table(str(SAMPLE)), "prompt", "solution")
    kept, limit = tg.drop_long_prompts(rows, tiny_tokenizer, quantile=0.5)
    assert 0 < len(kept) < len(rows)
    for prompt in kept["prompt"]:
        text = tiny_tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        assert len(tiny_tokenizer(text, add_special_tokens=False)["input_ids"]) <= limit


def test_priming_rows_use_the_tags(tiny_tokenizer):
    settings = dict(tg.DEFAULTS, **tg.SMOKE_DEFAULTS)
    rows = tg.build_priming_rows(tg.load_table(settings["priming_dataset"]), settings, tiny_tokenizer)
    answer = rows[0]["messages"][2]["content"]
    assert answer.startswith(REASONING_START) and rewards.has_exact_format(answer)
    assert "<think>" not in answer


# ----------------------------------------------------------------------------- chat template
def test_chat_template_matches_the_recipe(tiny_tokenizer):
    eos = tiny_tokenizer.eos_token
    messages = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "What is 1+1?"}]
    prompt = tiny_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == f"SYS{eos}What is 1+1?{REASONING_START}"
    full = tiny_tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": "A"}], tokenize=False)
    assert full == f"SYS{eos}What is 1+1?A{eos}"
    default = tiny_tokenizer.apply_chat_template(messages[1:], add_generation_prompt=True, tokenize=False)
    assert default == f"{SYSTEM_PROMPT}{eos}What is 1+1?{REASONING_START}"


def test_tags_are_single_tokens_that_survive_decoding(tiny_tokenizer):
    for tag in rewards.TAGS:
        ids = tiny_tokenizer(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1
        assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == tag


# ----------------------------------------------------------------------------- CPU pieces
def test_plain_logprobs_match_trl_reference():
    import torch
    from trl.trainer.utils import entropy_from_logits, selective_log_softmax

    torch.manual_seed(0)
    hidden, weight = torch.randn(7, 16, requires_grad=True), torch.randn(50, 16)
    targets = torch.randint(0, 50, (7,))
    logits = (hidden @ weight.T) / 0.7
    log_probs, entropy, _, _, is_top1 = tg.PlainLogProbs.apply(
        hidden, weight, None, targets, 0.7, 4096, None, 1.0, ("log_probs", "entropy", "is_top1")
    )
    assert torch.allclose(log_probs, selective_log_softmax(logits, targets), atol=1e-5)
    assert torch.allclose(entropy, entropy_from_logits(logits), atol=1e-5)
    assert torch.equal(is_top1, logits.argmax(-1) == targets)
    log_probs.sum().backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0


def test_guard_stops_without_saving_on_nan_loss():
    from transformers import TrainerControl, TrainerState

    guard = tg.make_callbacks(tg.StopOnSignal())
    control, state = TrainerControl(should_save=True), TrainerState(global_step=7)
    guard.on_log(None, state, control, logs={"loss": math.nan})
    assert control.should_training_stop and not control.should_save and guard.bad_loss_step == 7
    control = TrainerControl()
    guard.on_log(None, state, control, logs={"loss": 0.5})
    assert not control.should_training_stop


def test_diverging_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    args = ["--smoke", "--output-dir", tmp_path, "--learning-rate", "1e20", "--save-steps", "2", "--priming", "false"]
    result = run_script(*args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "training diverged at step" in result.stderr and "Lower --learning-rate" in result.stderr
    checkpoints = sorted((tmp_path / "smoke" / "checkpoints").glob("checkpoint-*"))
    assert f"Newest checkpoint, from before it: {checkpoints[-1]}" in result.stderr
    assert read_json(tmp_path / "smoke" / "status.json")["status"] == "training"  # never marked finished
    assert not (tmp_path / "smoke" / "comparison.json").exists()


def test_out_of_memory_ends_with_advice(tmp_path, monkeypatch):
    import torch

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(tg, "load_model", out_of_memory)
    with pytest.raises(tg.SetupError) as error:
        tg.run(smoke_settings(tmp_path))
    assert "CUDA ran out of memory" in str(error.value) and "--num-generations" in str(error.value)
    assert "--load-in-4bit true" in str(error.value)


def test_broken_install_ends_in_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # makes `import trl` fail, as a broken install would
    with pytest.raises(tg.SetupError) as error:
        tg.check_libraries()
    assert "the training libraries do not import" in str(error.value)
    assert "requirements-test.txt" in str(error.value)


def test_finished_run_gets_a_new_name_when_asked(tmp_path, capsys):
    settings = smoke_settings(tmp_path, "--if-finished", "new")
    finished = tmp_path / "out" / "smoke"
    finished.mkdir(parents=True)
    (finished / "status.json").write_text(json.dumps({"status": "finished"}))
    run_dir, resume = tg.prepare_run_dir(settings)
    assert run_dir == tmp_path / "out" / "smoke-2" and settings["run_name"] == "smoke-2" and resume is None


# ----------------------------------------------------------------------------- refusals before the model
@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything tries to load the model."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(tg, "load_model", refuse)


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "{tmp}/missing.jsonl"], "does not exist"),
        (["--dataset", "{tmp}/cols.jsonl"], "has no column 'prompt' or 'solution'; its columns are ['q', 'a']"),
        (["--dataset", "{tmp}/empty.jsonl"], "no usable rows"),
        (["--eval-size", "1000"], "--eval-size 1000 leaves nothing to train on"),
        (["--per-device-batch", "12"], "must be a multiple of --num-generations"),
        (["--max-prompt-length", "600"], "must be below --max-seq-length"),
        (["--learning-rate", "-1"], "must not be negative"),
        (["--dataset", "nobody/no-such-dataset"], "could not load dataset 'nobody/no-such-dataset'"),
        (["--output-dir", "{tmp}/a-file/sub"], "cannot write to the output folder"),
        (["--priming-dataset", "{tmp}/cols.jsonl"], "the priming dataset has no column"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(tmp_path, no_model, extra, message):
    write_rows(tmp_path / "cols.jsonl", [{"q": "1+1?", "a": "2"}])
    write_rows(tmp_path / "empty.jsonl", [{"prompt": "1+1?", "solution": ""}, {"prompt": " ", "solution": "3"}])
    (tmp_path / "a-file").write_text("not a folder")
    settings = smoke_settings(tmp_path, *[e.format(tmp=tmp_path) for e in extra])
    with pytest.raises(tg.SetupError) as error:
        tg.run(settings)
    assert message in str(error.value)


def test_hub_error_says_how_to_use_a_local_copy(tmp_path, no_model):
    with pytest.raises(tg.SetupError) as error:
        tg.run(smoke_settings(tmp_path, "--dataset", "open-r1/DAPO-Math-17k-Processed"))
    assert "download the data elsewhere and give its local path" in str(error.value)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message shown without a GPU")
def test_real_run_without_gpu_stops_before_anything(tmp_path):
    result = run_script("--output-dir", tmp_path / "out")
    assert result.returncode == 2
    assert "no CUDA GPU found" in result.stderr and "python train_grpo.py --smoke" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing created, nothing downloaded


# ----------------------------------------------------------------------------- the smoke run, end to end
def grpo_logs(run_dir):
    return [h for h in read_json(run_dir / "log_history.json") if "rewards/match_format_approximately/mean" in h]


def test_smoke_run_writes_adapter_config_and_logs(smoke_run):
    run_dir = smoke_run["dir"]
    assert (run_dir / "adapter" / "adapter_config.json").exists()
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    config = read_json(run_dir / "config.json")
    assert config["smoke"] is True and config["max_steps"] == tg.SMOKE_DEFAULTS["max_steps"]
    assert config["max_completion_length"] == tg.SMOKE_MAX_COMPLETION_LENGTH and config["backend"] == "transformers"
    assert read_json(run_dir / "status.json")["status"] == "finished"
    steps = [h["step"] for h in grpo_logs(run_dir)]
    assert steps == list(range(1, config["max_steps"] + 1))
    assert any(h.get("stage") == "priming" for h in read_json(run_dir / "log_history.json"))
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert 0 < len(checkpoints) <= tg.DEFAULTS["save_total_limit"]


def test_smoke_run_changed_the_lora_weights(smoke_run):
    from safetensors.torch import load_file

    weights = load_file(smoke_run["dir"] / "adapter" / "adapter_model.safetensors")
    lora_b = {k: v for k, v in weights.items() if "lora_B" in k}
    assert lora_b  # LoRA's B matrices start at zero: any non-zero one was trained
    assert all(v.abs().sum() > 0 for v in lora_b.values())


def test_smoke_run_format_reward_rises(smoke_run):
    values = [h["rewards/match_format_approximately/mean"] for h in grpo_logs(smoke_run["dir"])]
    first, last = sum(values[:4]) / 4, sum(values[-4:]) / 4
    assert last - first >= 0.5, f"format reward went from {first:.2f} to {last:.2f}"


def test_comparison_files_and_figures(smoke_run):
    import matplotlib.image

    run_dir = smoke_run["dir"]
    report = read_json(run_dir / "comparison.json")
    heldout_ids = [json.loads(line)["problem_id"] for line in (run_dir / "heldout.jsonl").read_text().splitlines()]
    for label in ("base", "trained"):
        ids = [r["problem_id"] for r in report[label]["records"]]
        assert ids == heldout_ids and len(ids) == tg.SMOKE_DEFAULTS["eval_size"]
    for name in ("comparison.png", "training_curves.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(run_dir / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
    markdown = (run_dir / "comparison.md").read_text()
    assert "| accuracy |" in markdown and "| exact format rate |" in markdown
    tail = smoke_run["stdout"].strip().splitlines()[-3:]
    assert "| cut off at the length limit |" in tail[0] and tail[-1] == f"run folder: {run_dir.resolve()}"


def test_trained_model_formats_better_than_base(smoke_run):
    report = read_json(smoke_run["dir"] / "comparison.json")
    assert report["trained"]["format_rate"] > report["base"]["format_rate"]


def test_report_figures_come_from_the_listed_completions(smoke_run):
    report = read_json(smoke_run["dir"] / "comparison.json")
    for label in ("base", "trained"):
        records = report[label]["records"]
        for r in records:
            assert r["correct"] == rewards.is_correct(r["completion"], r["reference"])
            assert r["format_ok"] == rewards.has_exact_format(r["completion"])
        assert report[label]["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / len(records))
        assert report[label]["format_rate"] == pytest.approx(sum(r["format_ok"] for r in records) / len(records))


def test_eval_only_reproduces_the_trained_figures(smoke_run):
    result = run_script("--eval-only", "--adapter", smoke_run["dir"] / "adapter", "--output-dir", smoke_run["output"])
    assert result.returncode == 0, result.stderr[-3000:]
    again = read_json(smoke_run["output"] / "smoke-eval" / "comparison.json")
    first = read_json(smoke_run["dir"] / "comparison.json")
    for label in ("base", "trained"):
        for key in ("accuracy", "format_rate", "total_reward", "reward_means", "mean_length", "truncated_rate"):
            assert again[label][key] == first[label][key], (label, key)
    assert [r["completion"] for r in again["trained"]["records"]] == [
        r["completion"] for r in first["trained"]["records"]
    ]


def test_a_finished_run_is_never_overwritten(smoke_run):
    run_dir = smoke_run["dir"]

    def snapshot():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.rglob("*")) if p.is_file()}

    before = snapshot()
    result = run_script("--smoke", "--output-dir", smoke_run["output"])
    assert result.returncode == 2 and "holds a finished run" in result.stderr
    assert snapshot() == before


# ----------------------------------------------------------------------------- interrupt and resume
def test_interrupted_run_resumes_to_the_same_end(tmp_path):
    args = ["--smoke", "--output-dir", tmp_path, "--save-steps", "4", "--priming-epochs", "1"]
    command = [sys.executable, str(ROOT / "train_grpo.py"), *map(str, args)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=offline_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    first_checkpoint = tmp_path / "smoke" / "checkpoints" / "checkpoint-4"
    deadline = time.time() + 300
    while not first_checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, "the run ended before its first checkpoint"
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 130, output[-3000:]
    assert "to resume, run the same command again" in output
    status = read_json(tmp_path / "smoke" / "status.json")
    assert status["status"] == "interrupted" and status["checkpoint"]
    stopped_at = int(Path(status["checkpoint"]).name.split("-")[1])
    assert 4 <= stopped_at < tg.SMOKE_DEFAULTS["max_steps"]
    assert (tmp_path / "smoke" / "adapter" / "adapter_model.safetensors").exists()

    result = run_script(*args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"resuming from {status['checkpoint']} (step {stopped_at} of" in result.stdout
    steps = [h["step"] for h in grpo_logs(tmp_path / "smoke")]
    assert steps == list(range(1, tg.SMOKE_DEFAULTS["max_steps"] + 1))  # one continuous history
    assert read_json(tmp_path / "smoke" / "status.json")["status"] == "finished"
    assert any(h.get("stage") == "priming" for h in read_json(tmp_path / "smoke" / "log_history.json"))


# ----------------------------------------------------------------------------- several processes
def test_two_processes_write_one_set_of_outputs(tmp_path):
    """Data-parallel on CPU (gloo). torchrun is the launcher accelerate itself uses for several GPUs;
    `accelerate launch --cpu` starts a single process unless MPI is installed."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        str(ROOT / "train_grpo.py"),
        "--smoke",
        "--output-dir",
        str(tmp_path),
        "--max-steps",
        "4",
        "--priming-epochs",
        "1",
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=offline_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "data-parallel over 2 processes" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["smoke"]  # one run folder, written once
    assert result.stdout.count("| exact format rate |") == 1  # the comparison ran once
    assert [h["step"] for h in grpo_logs(tmp_path / "smoke")] == [1, 2, 3, 4]
    assert read_json(tmp_path / "smoke" / "status.json")["status"] == "finished"


def test_shipped_accelerate_config_is_valid():
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "deepspeed_zero2.yaml"))
    assert config.distributed_type == "DEEPSPEED" and config.deepspeed_config["zero_stage"] == 2


def test_readme_documents_every_setting_and_the_test_command():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in tg.DEFAULTS if f"`--{name.replace('_', '-')}`" not in readme]
    assert not missing, f"settings missing from the README's table: {missing}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -r requirements-test.txt" in readme and "pip install -r requirements-test.txt" in ci
    assert "&& pytest" in readme and "pytest" in ci


def test_help_lists_settings_and_exits_cleanly(capsys):
    assert tg.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--max-steps" in out and "python train_grpo.py --smoke" in out
