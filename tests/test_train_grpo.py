"""train_grpo.py end to end on CPU: refusals before the model loads, the learning smoke run and its
report, --eval-only and --export-only on its folder, several processes (interruption and resume:
test_resume.py)."""

import hashlib
import json
import re
import subprocess
import sys

import pytest
from conftest import LEARNING_STEPS, QUICK, ROOT, SMOKE_TASK, offline_env, read_json, run_script, write_rows
from test_stats import p_as_extreme, wilson_by_quadratic

import rewards
import train_grpo
from recipe.errors import SetupError
from recipe.settings import parse_settings
from recipe.smoke import SMOKE_SETTINGS


def smoke_settings(tmp_path, *extra):
    return parse_settings(
        ["--smoke", "--output-dir", str(tmp_path / "out"), *map(str, extra)], train_grpo.DEFAULTS, SMOKE_SETTINGS
    )


# ----------------------------------------------------------------------------- refusals before the model
@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything tries to load the model."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was refused")

    monkeypatch.setattr(train_grpo, "load_model", refuse)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dataset", "{tmp}/missing.jsonl"], "does not exist"),
        (["--dataset", "{tmp}/cols.jsonl"], "has no column 'prompt' or 'solution'; its columns are ['q', 'a']"),
        (["--dataset", "{tmp}/empty.jsonl"], "no usable rows"),
        (["--eval-size", "5000"], "--eval-size 5000 leaves nothing to train on"),
        (["--max-prompt-length", "300"], "prompts need up to 300 tokens, leaving no room"),
        (["--dataset", "nobody/no-such-dataset"], "could not load dataset 'nobody/no-such-dataset'"),
        (["--output-dir", "{tmp}/a-file/sub"], "cannot write to the output folder"),
        (["--priming-dataset", "{tmp}/cols.jsonl"], "the priming dataset has no column"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(tmp_path, no_model, extra, message):
    write_rows(tmp_path / "cols.jsonl", [{"q": "1+1?", "a": "2"}])
    write_rows(tmp_path / "empty.jsonl", [{"prompt": "1+1?", "solution": ""}, {"prompt": " ", "solution": "3"}])
    (tmp_path / "a-file").write_text("not a folder")
    settings = smoke_settings(tmp_path, "--max-seq-length", "300", *[e.format(tmp=tmp_path) for e in extra])
    with pytest.raises(SetupError) as error:
        train_grpo.run(settings)
    assert message in str(error.value)


def test_gguf_export_without_llama_cpp_is_refused_before_the_model_loads(tmp_path, no_model, monkeypatch):
    from recipe import export

    monkeypatch.setattr(export, "missing_packages", lambda: ["llama_cpp"])  # as in the main install
    with pytest.raises(SetupError) as error:
        train_grpo.run(smoke_settings(tmp_path, "--export", "gguf"))  # found before hours of training
    assert "Install it: pip install -r requirements-gguf.txt" in str(error.value)  # the converter follows by itself


def test_hub_error_says_how_to_use_a_local_copy(tmp_path, no_model):
    with pytest.raises(SetupError) as error:
        train_grpo.run(smoke_settings(tmp_path, "--dataset", "open-r1/DAPO-Math-17k-Processed"))
    assert "download the data elsewhere and give its local path" in str(error.value)


def test_settings_are_checked_before_anything_runs(tmp_path, capsys):
    assert train_grpo.main(["--smoke", "--output-dir", str(tmp_path), "--num-generations", "3"]) == 2
    assert "must be a multiple of --num-generations" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message shown without a GPU")
def test_real_run_without_gpu_stops_before_anything(tmp_path, no_model, capsys):
    assert train_grpo.main(["--output-dir", str(tmp_path / "out")]) == 2
    said = capsys.readouterr().err
    assert "no CUDA GPU found" in said and "python train_grpo.py --smoke" in said
    assert not (tmp_path / "out").exists()  # nothing created, nothing downloaded


def test_out_of_memory_ends_with_advice(tmp_path, monkeypatch):
    import torch

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(train_grpo, "load_model", out_of_memory)
    with pytest.raises(SetupError) as error:
        train_grpo.run(smoke_settings(tmp_path, *QUICK))
    assert "CUDA ran out of memory" in str(error.value) and "--num-generations" in str(error.value)
    assert "--load-in-4bit true" in str(error.value)


# ----------------------------------------------------------------------------- the learning smoke run
def grpo_logs(run_dir):
    return [h for h in read_json(run_dir / "log_history.json") if "rewards/check_answer/mean" in h]


@pytest.mark.slow
def test_smoke_run_writes_adapters_config_and_logs(smoke_run):
    run_dir = smoke_run["dir"]
    for adapter in ("adapter", "primed_adapter"):
        assert (run_dir / adapter / "adapter_config.json").exists()
        assert (run_dir / adapter / "adapter_model.safetensors").exists()
    config = read_json(run_dir / "config.json")
    assert config["smoke"] is True and config["max_steps"] == LEARNING_STEPS
    assert config["model_name"] == str(run_dir / "base_model")  # the tiny model, loaded by path
    assert config["max_completion_length"] == SMOKE_SETTINGS["max_completion_length"]
    assert config["backend"] == "transformers"
    # the objective as the trainer held it: the settings' values, nothing filled in behind them
    trainer = config["trainer"]
    assert (trainer["loss_type"], trainer["beta"], trainer["epsilon"], trainer["epsilon_high"]) == (
        "dapo",
        0.0,
        0.2,
        0.2,
    )
    assert trainer["mask_truncated_completions"] is False and trainer["min_p"] == SMOKE_SETTINGS.get("min_p", 0.1)
    assert read_json(run_dir / "status.json")["status"] == "finished"
    steps = [h["step"] for h in grpo_logs(run_dir)]
    assert steps == list(range(1, config["max_steps"] + 1))
    assert any(h.get("stage") == "priming" for h in read_json(run_dir / "log_history.json"))
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*"))
    assert 0 < len(checkpoints) <= train_grpo.DEFAULTS["save_total_limit"]


@pytest.mark.slow
def test_smoke_run_logs_every_reward(smoke_run):
    last = grpo_logs(smoke_run["dir"])[-1]
    for f in rewards.REWARD_FUNCS:
        assert f"rewards/{f.__name__}/mean" in last


@pytest.mark.slow
def test_smoke_run_changed_the_lora_weights(smoke_run):
    from safetensors.torch import load_file

    primed = load_file(smoke_run["dir"] / "primed_adapter" / "adapter_model.safetensors")
    trained = load_file(smoke_run["dir"] / "adapter" / "adapter_model.safetensors")
    lora_b = {k: v for k, v in trained.items() if "lora_B" in k}
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())  # B starts at zero: priming moved it
    assert any((trained[k] - primed[k]).abs().max() > 0 for k in trained)  # and GRPO moved it again


@pytest.mark.slow
def test_smoke_completions_end_on_their_own_after_priming(smoke_run):
    """The tiny model can emit end-of-text: after priming, answers stop before the length limit."""
    report = read_json(smoke_run["dir"] / "comparison.json")
    assert report["base"]["truncated_rate"] > 0.75  # a random model rambles to the limit (81-100 % measured)
    assert report["primed"]["truncated_rate"] < 0.1 and report["trained"]["truncated_rate"] < 0.1
    early = [h["completions/clipped_ratio"] for h in grpo_logs(smoke_run["dir"])[:5]]
    assert max(early) < 0.5


@pytest.mark.slow
def test_smoke_run_learns_to_answer(smoke_run):
    """base < primed < trained on the 64 held-out problems, seed 3407. This run (LEARNING_STEPS, 100 GRPO
    steps) measured 2026-11-30: base 0 %, primed 37.5 %, trained 64.1 %. The full 250-step smoke run,
    2026-11-23, over seeds 3407, 1, 2, 3 and 4 (docs/smoke-run.md): base 0 %, primed 20-63 %, trained
    64-80 %, GRPO's own gain 16-44 points (rerun 2026-11-30: trained 62.5-79.7 %, gain 16-42 points). The
    margins asserted are below those, so the test fails when learning breaks (a reward that no longer
    reaches the trainer, a mixed-up answer column)."""
    report = read_json(smoke_run["dir"] / "comparison.json")
    base, primed, trained = (report[label]["accuracy"] for label in ("base", "primed", "trained"))
    assert report["labels"] == ["base", "primed", "trained"]
    assert base <= 0.1 and primed >= base + 0.15 and trained >= primed + 0.1 and trained >= 0.55, (
        base,
        primed,
        trained,
    )
    assert report["trained"]["format_rate"] >= 0.9


@pytest.mark.slow
def test_comparison_files_and_figures(smoke_run):
    import matplotlib.image

    run_dir = smoke_run["dir"]
    report = read_json(run_dir / "comparison.json")
    heldout_ids = [json.loads(line)["problem_id"] for line in (run_dir / "heldout.jsonl").read_text().splitlines()]
    for label in ("base", "primed", "trained"):
        ids = [r["problem_id"] for r in report[label]["records"]]
        assert ids == heldout_ids and len(ids) == SMOKE_SETTINGS["eval_size"]
    for name in ("comparison.png", "training_curves.png"):
        assert (run_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(run_dir / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
    markdown = (run_dir / "comparison.md").read_text()
    assert "| accuracy (greedy) |" in markdown and "| exact format rate |" in markdown
    tail = smoke_run["stdout"].strip().splitlines()[-3:]
    assert "| cut off at the length limit |" in tail[0] and tail[-1] == f"run folder: {run_dir.resolve()}"


@pytest.mark.slow
def test_report_figures_come_from_the_listed_completions(smoke_run):
    report = read_json(smoke_run["dir"] / "comparison.json")
    for label in report["labels"]:
        records = report[label]["records"]
        for r in records:
            assert r["correct"] == rewards.is_correct(r["completion"], r["reference"])
            assert r["format_ok"] == rewards.has_exact_format(r["completion"])
        assert report[label]["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / len(records))
        assert report[label]["format_rate"] == pytest.approx(sum(r["format_ok"] for r in records) / len(records))


# ----------------------------------------------------------------------------- watching the run (#19)
@pytest.mark.slow
def test_heldout_curve_starts_at_step_0_and_rises(smoke_run):
    """Held-out accuracy during GRPO goes through the comparison's own generation and verifier: on the
    smoke run it scores all 64 held-out problems, so step 0 is the primed column and the last step the
    trained one, to the problem."""
    run_dir = smoke_run["dir"]
    curve = [h for h in read_json(run_dir / "log_history.json") if "heldout/accuracy" in h]
    every, steps = SMOKE_SETTINGS["eval_steps"], LEARNING_STEPS
    assert [h["step"] for h in curve] == list(range(0, steps + 1, every))
    report = read_json(run_dir / "comparison.json")
    size = SMOKE_SETTINGS["eval_during_size"]
    assert all(h["heldout/problems"] == size == report["primed"]["problems"] for h in curve)
    assert curve[0]["heldout/accuracy"] == report["primed"]["accuracy"]
    assert curve[0]["heldout/format_rate"] == report["primed"]["format_rate"]
    assert curve[-1]["heldout/accuracy"] == report["trained"]["accuracy"]
    assert curve[-1]["heldout/accuracy"] >= curve[0]["heldout/accuracy"] + 0.1  # it rises (docs/smoke-run.md)
    for h in curve:
        n, accuracy = h["heldout/problems"], h["heldout/accuracy"]
        low, high = wilson_by_quadratic(round(accuracy * n), n)
        assert h["heldout/accuracy_low"] <= accuracy <= h["heldout/accuracy_high"]
        assert (h["heldout/accuracy_low"], h["heldout/accuracy_high"]) == pytest.approx((max(low, 0), min(high, 1)))


@pytest.mark.slow
def test_comparison_intervals_and_paired_tests(smoke_run):
    run_dir = smoke_run["dir"]
    report = read_json(run_dir / "comparison.json")
    tests = report["uncertainty"]
    for label in report["labels"]:
        records = report[label]["records"]
        for key, field in (("accuracy", "correct"), ("format_rate", "format_ok")):
            low, high = tests["models"][label][key]
            assert low <= report[label][key] <= high, (label, key)
            expected = wilson_by_quadratic(sum(r[field] is True for r in records), len(records))
            assert (low, high) == pytest.approx((max(expected[0], 0), min(expected[1], 1))), (label, key)
    pairs = [(t["before"], t["after"]) for t in tests["changes"]]
    assert pairs == [("base", "primed"), ("primed", "trained"), ("base", "trained")]
    markdown = (run_dir / "comparison.md").read_text()
    for t in tests["changes"]:
        before, after = report[t["before"]]["records"], report[t["after"]]["records"]
        right = [(a["correct"] is True, b["correct"] is True) for a, b in zip(before, after, strict=True)]
        gained, lost = sum(b and not a for a, b in right), sum(a and not b for a, b in right)
        assert (t["gained"], t["lost"]) == (gained, lost)
        assert t["p_value"] == pytest.approx(p_as_extreme(gained, lost), rel=1e-9)
        assert t["distinguishable"] == (t["p_value"] < 0.05)
        said = "a real difference" if t["distinguishable"] else "cannot be told from noise"
        line = f"{t['name']} ({t['before']} -> {t['after']}): {100 * t['difference']:+.1f} points"
        assert line in markdown and line in smoke_run["stdout"]
        assert said in markdown.split(line)[1].splitlines()[0]
    assert "95 % interval (Wilson); change: McNemar" in markdown


@pytest.mark.slow
def test_sampled_completions_file(smoke_run):
    """completions.jsonl: valid JSON Lines, every LOG_COMPLETIONS_STEPS steps two groups, each completion's
    rewards the ones rewards.py gives it against the problem's reference."""
    run_dir = smoke_run["dir"]
    lines = (run_dir / "completions.jsonl").read_text().splitlines()
    groups = [json.loads(line) for line in lines]
    every, steps = SMOKE_SETTINGS["log_completions_steps"], LEARNING_STEPS
    assert [g["step"] for g in groups] == [s for s in range(every, steps + 1, every) for _ in range(2)]
    answers = {json.loads(line)["prompt"]: json.loads(line)["solution"] for line in SMOKE_TASK.read_text().splitlines()}
    for group in groups:
        assert group["reference"] == answers[group["problem"]]
        assert len(group["completions"]) == SMOKE_SETTINGS["num_generations"]
        for c in group["completions"]:
            for f in rewards.REWARD_FUNCS:
                assert c["rewards"][f.__name__] == f(completions=[c["completion"]], answer=[group["reference"]])[0]
            assert c["extracted"] == rewards.extract_answer(c["completion"])
            assert c["correct"] == rewards.is_correct(c["completion"], group["reference"])
    # by the end it answers right (not on every problem: a group is one problem's samples, and at 64 %
    # held-out accuracy some problems are still missed by all of them, as both of step 100's were)
    assert any(c["correct"] for group in groups[len(groups) // 2 :] for c in group["completions"])
    assert (run_dir / "completions.jsonl").stat().st_size < 2**20


@pytest.mark.slow
def test_log_is_a_line_per_step_that_a_person_can_follow(smoke_run):
    out = smoke_run["stdout"]
    assert "{'loss'" not in out and "{'train_runtime'" not in out  # no raw dicts
    assert "it/s]" not in smoke_run["stderr"]  # no progress bars in a file
    grpo = [line for line in out.splitlines() if re.match(r"GRPO +\d+/\d+  ", line)]
    assert len(grpo) == LEARNING_STEPS
    assert grpo[-1].startswith(f"GRPO {LEARNING_STEPS}/{LEARNING_STEPS}  ")
    for key in ("elapsed", "left", "reward", "cut at limit", "same-score groups", "held-out"):
        assert key in grpo[-1]
    headlines = ("\n== format priming:", "\n== GRPO:", "\n== held-out accuracy at step 0:", "\n== comparison on 64")
    for headline in headlines:
        assert headline in out
    assert len(out.splitlines()) < LEARNING_STEPS + 2 * SMOKE_SETTINGS["priming_max_rows"] + 80


@pytest.mark.slow
def test_eval_only_reproduces_all_three_columns_and_samples(smoke_run):
    """--eval-only on the saved adapters gives the training run's greedy columns to the completion, and
    with --eval-samples k it also draws k completions per problem for pass@1 and pass@k (one run checks both)."""
    args = ["--eval-only", "--adapter", smoke_run["dir"] / "adapter", "--output-dir", smoke_run["output"]]
    result = run_script(*args, "--eval-samples", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    again = read_json(smoke_run["output"] / "smoke-eval" / "comparison.json")
    first = read_json(smoke_run["dir"] / "comparison.json")
    assert again["labels"] == first["labels"] == ["base", "primed", "trained"]
    for label in first["labels"]:
        for key in ("accuracy", "format_rate", "total_reward", "reward_means", "mean_length", "truncated_rate"):
            assert again[label][key] == first[label][key], (label, key)
        assert [r["completion"] for r in again[label]["records"]] == [r["completion"] for r in first[label]["records"]]
        sampled, n = again[label]["sampled"], len(first[label]["records"])
        right = sampled["correct_per_problem"]  # of each problem's 4 samples
        assert sampled["k"] == 4 and len(right) == n and all(0 <= r <= 4 for r in right)
        assert sampled["pass@1"] == pytest.approx(sum(right) / (4 * n))
        assert sampled["pass@4"] == pytest.approx(sum(r > 0 for r in right) / n)
    assert "sampled" not in first["trained"]  # the training run's comparison drew no samples (EVAL_SAMPLES 0)
    assert "| pass@4 |" in result.stdout


@pytest.mark.slow
def test_jobs_on_an_earlier_run_print_no_progress_bars_into_a_file(quick_run, tmp_path):
    """--eval-only and --export-only, their output captured (not a terminal), as a log file gets it."""
    adapter = quick_run["dir"] / "adapter"
    for job in (["--eval-only", "--eval-size", "4"], ["--export-only", "--export", "merged"]):
        result = run_script(*job, "--adapter", adapter, "--output-dir", tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "/s]" not in result.stderr + result.stdout, (job, result.stderr[-1000:])  # a bar: "[00:00, 9.9it/s]"


@pytest.mark.slow
def test_merged_export_answers_like_base_plus_adapter(smoke_run):
    """--export-only writes a full model from the saved adapter, without training: it loads with plain
    AutoModelForCausalLM and gives the same greedy completions as the base model with the adapter."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = smoke_run["dir"] / "adapter"
    result = run_script(
        "--export-only", "--export", "merged", "--adapter", adapter, "--output-dir", smoke_run["output"]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folder = smoke_run["output"] / "smoke-merged"
    assert "GRPO:" not in result.stdout and not (folder / "checkpoints").exists()  # nothing trained
    merged = AutoModelForCausalLM.from_pretrained(str(folder))
    assert not any("lora" in name for name, _ in merged.named_parameters())
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    base = AutoModelForCausalLM.from_pretrained(str(smoke_run["dir"] / "base_model"))
    with_adapter = PeftModel.from_pretrained(base, str(adapter))
    heldout = [json.loads(line) for line in (smoke_run["dir"] / "heldout.jsonl").read_text().splitlines()][:8]
    kwargs = dict(max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    prompts, want, base_only = [], [], []
    with torch.no_grad():
        for row in heldout:
            text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
            prompts.append(tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"])
            want.append(with_adapter.generate(prompts[-1], **kwargs))
            with with_adapter.disable_adapter():
                base_only.append(with_adapter.generate(prompts[-1], **kwargs))
        # First, that the comparison can fail: a merge that dropped the adapter would give base_only.
        assert any(not torch.equal(b, w) for b, w in zip(base_only, want, strict=True))
        for ids, expected in zip(prompts, want, strict=True):
            assert torch.equal(merged.generate(ids, **kwargs), expected)


@pytest.mark.slow
def test_a_finished_run_is_never_overwritten(smoke_run, no_model, capsys):
    run_dir = smoke_run["dir"]

    def snapshot():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.rglob("*")) if p.is_file()}

    before = snapshot()
    assert train_grpo.main(["--smoke", "--output-dir", str(smoke_run["output"])]) == 2  # the same command again
    assert "holds a finished run" in capsys.readouterr().err
    assert snapshot() == before


# ----------------------------------------------------------------------------- shortened runs: the mechanics
# Stopping and resuming (signals, a half-written checkpoint, random kills, divergence): tests/test_resume.py


@pytest.mark.slow
@pytest.mark.parametrize("dynamic_sampling", [0, 2], ids=["plain", "dynamic-sampling"])
def test_two_processes_write_one_set_of_outputs(tmp_path, dynamic_sampling):
    """Data-parallel on CPU (gloo). torchrun is the launcher accelerate itself uses for several GPUs;
    `accelerate launch --cpu` starts a single process unless MPI is installed. tests/probe_run.py is the
    script with an observer that writes each process's LoRA weights and the problems it trained on.

    --standalone: the processes meet on a free port, so two runs on one host never collide; to show it,
    the port the launcher would otherwise take from the environment is held by this test."""
    import socket

    import torch
    from safetensors.torch import load_file

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        command += [str(ROOT / "tests" / "probe_run.py"), "--smoke", *QUICK, "--output-dir", str(tmp_path / "out")]
        env = offline_env(OMP_NUM_THREADS="1", PET_MASTER_PORT=port, PROBE_DIR=str(tmp_path / "probe"))
        command += ["--max-steps", "4", "--priming", "false"]  # unprimed, completions differ in format, so
        # every process gets non-zero advantages and its own gradients
        command += ["--dynamic-sampling-rounds", str(dynamic_sampling)]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = tmp_path / "out"
    assert "data-parallel over 2 processes" in result.stdout
    assert [p.name for p in out.iterdir()] == ["smoke"]  # one run folder, written once
    assert result.stdout.count("| exact format rate |") == 1  # the comparison ran once
    assert [h["step"] for h in grpo_logs(out / "smoke")] == [1, 2, 3, 4]
    assert read_json(out / "smoke" / "status.json")["status"] == "finished"
    # gradients averaged across processes: different problems, non-zero advantages on each (so different
    # gradients), and yet the same weights on both at the end
    probes = [read_json(tmp_path / "probe" / f"rank{rank}.json") for rank in (0, 1)]
    assert probes[0]["problems_seen"] != probes[1]["problems_seen"]
    assert all(sum(p["advantage_sums"]) > 0 for p in probes), probes
    weights = [load_file(tmp_path / "probe" / f"rank{rank}.safetensors") for rank in (0, 1)]
    assert weights[0].keys() == weights[1].keys() and weights[0]
    different = [k for k in weights[0] if not torch.equal(weights[0][k], weights[1][k])]
    assert not different, f"the processes ended with different LoRA weights: {different[:3]}"
    assert all(w.abs().sum() > 0 for k, w in weights[0].items() if "lora_B" in k)  # B starts at zero: GRPO moved it
    if dynamic_sampling:  # recipe/sampling.py: both processes took the same number of rounds at every step,
        # deciding on the gathered rewards (a process that went on alone would hang the next collective)
        steps = grpo_logs(out / "smoke")
        rounds = sum(1 + int(h["dynamic_sampling/extra_rounds"]) for h in steps)
        assert rounds > len(steps), "no step needed a refill: this run shows nothing about the decision"
        assert len(probes[0]["advantage_sums"]) == len(probes[1]["advantage_sums"]) == rounds
        assert all(h["dynamic_sampling/generated"] == 4 * (1 + h["dynamic_sampling/extra_rounds"]) for h in steps)


# ----------------------------------------------------------------------------- the repository
def test_shipped_accelerate_config_is_valid():
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(ROOT / "configs" / "deepspeed_zero2.yaml"))
    assert config.distributed_type == "DEEPSPEED" and config.deepspeed_config["zero_stage"] == 2


def test_readme_gives_the_test_command_ci_runs():
    """Every setting is documented by --help; the tables of settings in the docs are checked against it in
    tests/test_docs.py."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -r requirements-test.txt" in readme and "pip install -r requirements-test.txt" in ci
    assert "&& pytest" in readme and "pytest" in ci


def test_the_script_imports_no_machinery_cycle():
    """recipe/ never imports the script, and rewards.py imports no torch."""
    for path in (ROOT / "recipe").glob("*.py"):
        assert "import train_grpo" not in path.read_text() and "from train_grpo" not in path.read_text(), path
    code = "import sys, rewards; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    code = (
        "import sys, train_grpo; assert not {'trl', 'transformers', 'unsloth'} & set(sys.modules), sys.modules.keys()"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True).returncode == 0
