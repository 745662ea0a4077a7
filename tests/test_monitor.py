"""recipe/monitor.py without training: the step lines, the completions file and its resume rule, and the
warning when the reward rises while held-out accuracy does not. The smoke run's own curve, file and log
are checked in test_train_grpo.py."""

import json
import math
from collections import deque
from types import SimpleNamespace

import pytest

import rewards
from recipe.monitor import STEP_LINES, CompletionSamples, StepLines, keep_until
from recipe.report import training_warnings


def state(step, max_steps=250, history=()):
    return SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=True, log_history=list(history))


def test_step_line_says_where_the_run_is_and_how_it_goes(capsys):
    lines = StepLines("GRPO")
    lines.on_train_begin(None, state(0, history=[{"heldout/accuracy": 0.375, "step": 0}]), None)
    logs = {"loss": 0.01, "reward": 3.21, "completions/clipped_ratio": 0.125, "frac_reward_zero_std": 0.5}
    lines.on_log(None, state(25), None, logs=logs)
    line = capsys.readouterr().out.strip()
    assert line.startswith("GRPO  25/250  ") and "elapsed" in line and "left" in line
    assert "reward   3.21" in line and "cut at limit  12 %" in line and "same-score groups  50 %" in line
    assert "held-out  38 % (step 0)" in line and "\n" not in line  # one line, with the latest point


def test_heldout_point_is_a_headline_and_becomes_the_latest(capsys):
    lines = StepLines("GRPO")
    lines.on_train_begin(None, state(0), None)
    heldout = {"heldout/accuracy": 0.5625, "heldout/accuracy_low": 0.44, "heldout/accuracy_high": 0.68}
    heldout |= {"heldout/format_rate": 1.0, "heldout/problems": 64, "heldout/seconds": 1.23}
    lines.on_log(None, state(25), None, logs=heldout)
    lines.on_log(None, state(26), None, logs={"loss": 0.0, "reward": 1.0})
    out = capsys.readouterr().out
    assert "\n== held-out accuracy at step 25: 56.2 % (95 % interval 44-68 %, 64 problems)" in out
    assert "held-out  56 % (step 25)" in out.splitlines()[-1]


def test_priming_line_shows_the_loss(capsys):
    lines = StepLines("priming")
    lines.on_train_begin(None, state(0, max_steps=192), None)
    lines.on_log(None, state(20, max_steps=192), None, logs={"loss": 1.2345, "mean_token_accuracy": 0.4})
    assert capsys.readouterr().out.startswith("priming  20/192  ")


@pytest.mark.parametrize("max_steps", [192, 5, 21])
def test_priming_prints_a_few_step_lines_and_grpo_every_one(capsys, max_steps):
    """Priming's steps take a fraction of a second: about STEP_LINES of them are shown, always the last;
    every GRPO step is."""
    for stage, expected in (("priming", STEP_LINES["priming"]), ("GRPO", max_steps)):
        lines = StepLines(stage)
        lines.on_train_begin(None, state(0, max_steps=max_steps), None)
        for step in range(1, max_steps + 1):
            lines.on_log(None, state(step, max_steps=max_steps), None, logs={"loss": 0.5, "reward": 1.0})
        shown = capsys.readouterr().out.splitlines()
        assert len(shown) <= min(expected, max_steps) + 1 and shown[-1].startswith(f"{stage} {max_steps}/")
        assert len(shown) >= min(expected, max_steps) // 2  # a few, not one


def test_other_processes_print_nothing(capsys):
    lines = StepLines("GRPO")
    quiet = SimpleNamespace(global_step=3, max_steps=9, is_world_process_zero=False, log_history=[])
    lines.on_train_begin(None, quiet, None)
    lines.on_log(None, quiet, None, logs={"loss": 0.0, "reward": 1.0})
    assert capsys.readouterr().out == ""


def fake_trainer(group=2):
    right = "so 7<end_working_out><SOLUTION>7</SOLUTION>"
    wrong = "<end_working_out><SOLUTION>3</SOLUTION>"
    prompt = [{"role": "system", "content": "s"}, {"role": "user", "content": "Which is largest of 7, 1?"}]
    other = [{"role": "system", "content": "s"}, {"role": "user", "content": "Which is largest of 2, 5?"}]
    logs = {
        "prompt": deque([prompt, prompt, other, other]),
        "completion": deque([[{"role": "assistant", "content": t}] for t in (right, wrong, wrong, "x" * 9000)]),
        "rewards": {
            "match_format_exactly": deque([3.0, 3.0, 3.0, 0.0]),
            "check_answer": deque([5.0, -2.5, float("nan"), -2.0]),
        },
        "advantages": deque([1.0, -1.0, 0.5, -0.5]),
    }
    train_set = {"prompt": [prompt, other], "answer": ["7", "5"]}
    trainer = SimpleNamespace(_logs=logs, reward_weights=[1.0, 2.0])
    return trainer, train_set


def test_completion_groups_carry_rewards_answers_and_references(tmp_path):
    trainer, train_set = fake_trainer()
    settings = {"log_completions_steps": 1, "num_generations": 2}
    samples = CompletionSamples(trainer, tmp_path / "completions.jsonl", settings, train_set)
    samples.on_train_begin(None, state(0), None)
    samples.on_log(None, state(3), None, logs={"reward": 1.0})
    samples.on_log(None, state(4), None, logs={"loss": 0.0})  # a record without GRPO's reward: not a step
    lines = [json.loads(line) for line in (tmp_path / "completions.jsonl").read_text().splitlines()]
    assert [(g["step"], g["reference"]) for g in lines] == [(3, "7"), (3, "5")]
    first, second = lines[0]["completions"]
    assert first["extracted"] == "7" and first["correct"] is True and second["correct"] is False
    assert first["rewards"] == {"match_format_exactly": 3.0, "check_answer": 5.0} and first["reward"] == 13.0
    assert first["advantage"] == 1.0 and first["completion"] == "so 7<end_working_out><SOLUTION>7</SOLUTION>"
    assert first["extracted"] == rewards.extract_answer(first["completion"])
    assert lines[1]["completions"][0]["rewards"]["check_answer"] is None  # NaN (a reward that abstained) as null
    assert lines[1]["completions"][0]["reward"] == 3.0
    assert len(lines[1]["completions"][1]["completion"]) == 4003  # cut to its last 4000 characters


def test_resume_drops_lines_after_the_checkpoint_and_a_cut_line(tmp_path):
    path = tmp_path / "completions.jsonl"
    written = [json.dumps({"step": s, "problem": "p"}) + "\n" for s in (1, 2, 2, 3, 4)]
    path.write_text("".join(written) + '{"step": 5, "probl')  # killed in the middle of a write
    keep_until(path, 2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 2]
    assert not path.with_suffix(".tmp").exists()
    keep_until(path, 0)  # a fresh start after a crash before the first checkpoint
    assert path.read_text() == ""


def history(rewards_by_step, curve=()):
    rows = [{"step": s + 1, "reward": r} for s, r in enumerate(rewards_by_step)]
    return rows + [{"step": s, "heldout/accuracy": a} for s, a in curve]


def report(primed, trained):
    return {"labels": ["base", "primed", "trained"], "base": {"accuracy": 0.0}, "primed": {"accuracy": primed},
            "trained": {"accuracy": trained}}  # fmt: skip


def test_warning_when_reward_rose_but_heldout_accuracy_did_not():
    rising = [0.1 * s + (0.05 if s % 2 else -0.05) for s in range(100)]
    warnings = training_warnings(report(0.40, 0.375), history(rising, curve=[(0, 0.40), (100, 0.36)]))
    assert len(warnings) == 1
    text = warnings[0]
    assert "rose from 0.45 (mean of the first 10 steps) to 9.45 (last 10)" in text
    assert "primed 40.0 % -> trained 37.5 %" in text and "40.0 % at step 0, 36.0 % at step 100" in text


@pytest.mark.parametrize(
    "rewards_by_step, primed, trained",
    [
        ([0.1 * s for s in range(100)], 0.40, 0.55),  # reward and accuracy rose together
        ([math.sin(s) for s in range(100)], 0.40, 0.40),  # reward did not clearly rise
        ([1.0, 2.0], 0.40, 0.30),  # too few steps to say
    ],
)
def test_no_warning_otherwise(rewards_by_step, primed, trained):
    assert training_warnings(report(primed, trained), history(rewards_by_step)) == []


def dynamic(kept, generated, right, wrong, short, rounds, step=1):
    counts = dict(generated=generated, kept=kept, dropped_all_right=right, dropped_all_wrong=wrong, short=short)
    counts["extra_rounds"] = rounds
    return {"step": step, "reward": 1.0, **{f"dynamic_sampling/{k}": float(v) for k, v in counts.items()}}


def test_step_line_with_dynamic_sampling_counts_the_groups_and_says_when_the_bound_was_reached(capsys):
    lines = StepLines("GRPO")
    lines.on_train_begin(None, state(0), None)
    lines.on_log(None, state(1), None, logs={"loss": 0.0, **dynamic(4, 12, 5, 3, 0, 2)})
    lines.on_log(None, state(2), None, logs={"loss": 0.0, **dynamic(3, 16, 6, 6, 1, 3)})
    first, second = capsys.readouterr().out.splitlines()
    assert "kept 4/12 groups (dropped 5 all right, 3 all wrong; 2 extra rounds)" in first and "bound" not in first
    assert "kept 3/16 groups" in second and "bound reached: 1 group(s) without signal" in second


def test_report_totals_the_dynamic_sampling_counts_over_the_run():
    from recipe.report import dynamic_sampling_line, dynamic_sampling_totals

    history = [{"step": 0, "heldout/accuracy": 0.5}, dynamic(4, 12, 5, 3, 0, 2), dynamic(3, 16, 6, 6, 1, 3, step=2)]
    totals = dynamic_sampling_totals(history)
    assert totals == dict(generated=28, kept=7, dropped_all_right=11, dropped_all_wrong=9, short=1, extra_rounds=5,
                          steps=2, steps_at_bound=1)  # fmt: skip
    assert dynamic_sampling_line(totals).startswith("dynamic sampling: 7 of 28 generated groups trained on")
    assert dynamic_sampling_totals([{"step": 1, "reward": 1.0}]) == {}  # a run without it
