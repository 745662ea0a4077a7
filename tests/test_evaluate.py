"""The comparison: three models on the same problems, each with its own adapter; scores, pass@k, report."""

import json

import pytest
from conftest import SMOKE_PRIMER, SMOKE_TASK

import train_grpo
from recipe.data import build_prompts, load_table
from recipe.evaluate import compare, complete, models_to_compare, sampled_accuracy, score
from recipe.models import load_model, load_tokenizer, save_adapter
from recipe.report import comparison_markdown, comparison_table, write_report
from recipe.smoke import SMOKE_SETTINGS, build_smoke_model


@pytest.fixture(scope="module")
def two_adapters(tmp_path_factory):
    """The tiny model with two different random adapters saved, standing in for primed and trained."""
    import torch

    folder = tmp_path_factory.mktemp("eval")
    model_dir = build_smoke_model(folder / "base_model", [str(SMOKE_TASK), str(SMOKE_PRIMER)], seed=3407)
    settings = dict(train_grpo.DEFAULTS, **SMOKE_SETTINGS)
    settings.update(model_name=model_dir, eval_max_new_tokens=12)
    tokenizer = load_tokenizer(model_dir)
    paths = {}
    for label, seed in (("primed", 1), ("trained", 2)):
        model, _ = load_model(settings, "transformers", tokenizer)
        torch.manual_seed(seed)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.5)
        paths[label] = save_adapter(model, tokenizer, folder / label)
    problems = build_prompts(load_table(str(SMOKE_TASK)), "prompt", "solution").select(range(6))
    return settings, tokenizer, paths, problems


def test_each_model_answers_with_its_own_adapter(two_adapters):
    settings, tokenizer, paths, problems = two_adapters
    model, _ = load_model(settings, "transformers", tokenizer, adapter=str(paths["trained"]))
    adapters = models_to_compare(paths["trained"], paths["primed"], include_primed=True)
    assert list(adapters) == ["base", "primed", "trained"]
    report = compare(model, tokenizer, problems, settings, adapters, sources={"dataset": "smoke"})
    texts = {label: [r["completion"] for r in report[label]["records"]] for label in adapters}
    assert len({tuple(t) for t in texts.values()}) == 3  # three different models
    prompts = list(problems["prompt"])
    for label, path in adapters.items():  # each column is what that model alone says
        # a fresh LoRA (B = 0) changes nothing: it stands for the base model
        alone, _ = load_model(settings, "transformers", tokenizer, adapter=str(path) if path else None)
        again = complete(alone, tokenizer, prompts, settings, "trained", path or paths["trained"])
        assert [c[0]["text"] for c in again] == texts[label], label
    assert model.active_adapter == "default"  # the trained adapter is active again afterwards


def test_primed_column_is_left_out_when_absent_or_unwanted(tmp_path):
    trained = tmp_path / "adapter"
    assert list(models_to_compare(trained, tmp_path / "missing", include_primed=True)) == ["base", "trained"]
    (tmp_path / "primed").mkdir()
    assert list(models_to_compare(trained, tmp_path / "primed", include_primed=False)) == ["base", "trained"]


def test_sampled_accuracy_is_pass_at_1_and_pass_at_k():
    problems = [{"answer": "7"}, {"answer": "3"}]
    right, wrong = {"text": "x<end_working_out><SOLUTION>7</SOLUTION>"}, {"text": "<SOLUTION>1</SOLUTION>"}
    completions = [[right, wrong, wrong, right], [wrong, wrong, wrong, wrong]]
    result = sampled_accuracy(problems, completions)
    assert result["k"] == 4 and result["pass@1"] == pytest.approx((2 / 4 + 0) / 2) and result["pass@4"] == 0.5
    assert result["correct_per_problem"] == [2, 0]


def test_sampling_draws_k_completions_per_problem(two_adapters):
    settings, tokenizer, paths, problems = two_adapters
    model, _ = load_model(settings, "transformers", tokenizer, adapter=str(paths["trained"]))
    drawn = complete(model, tokenizer, list(problems["prompt"])[:3], settings, "trained", paths["trained"], samples=4)
    assert [len(d) for d in drawn] == [4, 4, 4]
    assert len({c["text"] for d in drawn for c in d}) > 3  # sampled, not greedy copies


def test_a_comparison_with_samples_makes_its_report(two_adapters, tmp_path):
    """compare() with --eval-samples, then the report files from what it returned (the structure the report
    reads is the one compare writes): pass@1 at the recorded temperature, and pass@k."""
    settings, tokenizer, paths, problems = two_adapters
    settings = dict(settings, eval_samples=2, temperature=0.7)
    model, _ = load_model(settings, "transformers", tokenizer, adapter=str(paths["trained"]))
    adapters = models_to_compare(paths["trained"], paths["primed"], include_primed=False)
    report = compare(model, tokenizer, problems.select(range(2)), settings, adapters, sources={"dataset": "smoke"})
    write_report(report, [], tmp_path)
    text = (tmp_path / "comparison.md").read_text()
    assert "| pass@1 (2 samples, T=0.7) |" in text and "| pass@2 |" in text


def test_scores_count_right_answers_and_cut_at_the_end_token(tiny_tokenizer):
    """One problem or several: accuracy is the share right (not the share wrong, not halved for one
    problem); a completion that reached an end token is not truncated, one that did not is."""
    from recipe.evaluate import _completion

    right = {"text": "<SOLUTION>7</SOLUTION>", "length": 3, "truncated": False}
    one = score([{"problem_id": 0, "answer": "7"}], [right])
    assert one["accuracy"] == 1.0
    three = scored([True, True, False])
    assert three["accuracy"] == pytest.approx(2 / 3)
    sampled = sampled_accuracy([{"answer": "7"}], [[{"text": "<SOLUTION>7</SOLUTION>"}] * 2])
    assert (sampled["pass@1"], sampled["pass@2"]) == (1.0, 1.0)
    eos = tiny_tokenizer.eos_token_id
    ids = tiny_tokenizer("<SOLUTION>7</SOLUTION>", add_special_tokens=False)["input_ids"]
    ended, cut = _completion(tiny_tokenizer, [*ids, eos, 5, 5], [eos]), _completion(tiny_tokenizer, ids, [eos])
    assert (ended["truncated"], ended["length"], cut["truncated"], cut["length"]) == (False, len(ids), True, len(ids))


def summary(accuracy, fmt, records):
    return score([{"problem_id": i, "answer": "7"} for i in range(len(records))], records) | {
        "accuracy": accuracy,
        "format_rate": fmt,
    }


def test_table_shows_three_models_and_both_changes():
    records = [{"text": "<SOLUTION>7</SOLUTION>", "length": 3, "truncated": False}]
    report = {
        "labels": ["base", "primed", "trained"],
        "settings": {"adapters": {"base": None, "primed": "p", "trained": "t"}, "temperature": 1.0},
        "base": summary(0.0, 0.0, records),
        "primed": summary(0.25, 1.0, records),
        "trained": summary(0.75, 1.0, records),
    }
    table = comparison_table(report)
    assert table.splitlines()[0] == "|  | base | primed | trained | priming | GRPO |"
    assert "| accuracy (greedy) | 0.0 % | 25.0 % | 75.0 % | +25.0 pt | +50.0 pt |" in table
    assert "# Base vs primed vs trained on 1 held-out problems" in comparison_markdown(report)


def scored(right: list[bool]) -> dict:
    texts = [f"<end_working_out><SOLUTION>{7 if r else 3}</SOLUTION>" for r in right]
    problems = [{"problem_id": i, "answer": "7"} for i in range(len(right))]
    return score(problems, [{"text": t, "length": 5, "truncated": False} for t in texts])


def test_report_gives_intervals_and_paired_tests_in_numbers_and_words(tmp_path):
    """20 problems: base gets none right, primed gains 8, trained gains 4 more and loses 2 of primed's."""
    primed = [True] * 8 + [False] * 12
    trained = [True] * 6 + [False] * 2 + [True] * 4 + [False] * 8
    report = {
        "labels": ["base", "primed", "trained"],
        "settings": {"adapters": {"base": None, "primed": "p", "trained": "t"}, "temperature": 1.0},
        "base": scored([False] * 20),
        "primed": scored(primed),
        "trained": scored(trained),
    }
    write_report(report, [], tmp_path)
    saved = json.loads((tmp_path / "comparison.json").read_text())["uncertainty"]
    assert saved["interval"].startswith("Wilson") and saved["paired_test"].startswith("exact McNemar")
    assert saved["models"]["base"]["accuracy"] == pytest.approx([0.0, 0.1611], abs=1e-4)  # Newcombe 1998, 0/20
    tests = {(t["before"], t["after"]): t for t in saved["changes"]}
    assert list(tests) == [("base", "primed"), ("primed", "trained"), ("base", "trained")]
    # two-sided binomial tails on the discordant problems, by hand: 2 x (1/2)^8, 2 x (1 + 6 + 15) / 2^6, 2 x (1/2)^10
    expected = {("base", "primed"): (8, 0, 2 / 2**8), ("primed", "trained"): (4, 2, 44 / 64)}
    expected[("base", "trained")] = (10, 0, 2 / 2**10)
    for pair, (gained, lost, p) in expected.items():
        assert (tests[pair]["gained"], tests[pair]["lost"]) == (gained, lost)
        assert tests[pair]["p_value"] == pytest.approx(p)
    table = comparison_table(report)
    row = "| 95 % interval (Wilson); change: McNemar | 0.0-16.1 % | 21.9-61.3 % | 29.9-70.1 % | p = 0.008 | p = 0.688 |"
    assert row in table
    markdown = (tmp_path / "comparison.md").read_text()
    said = "- priming (base -> primed): +40.0 points, 8 problems gained and 0 lost, p = 0.008: a real difference"
    assert said in markdown
    said = "- GRPO (primed -> trained): +10.0 points, 4 problems gained and 2 lost, p = 0.688: cannot be told"
    assert said + " from noise with 20 problems" in markdown
    assert "With 20 problems, an accuracy near 50 % is known to within about +-20 points." in markdown
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_pass_at_k_interval_and_estimator_are_stated():
    problems = [{"answer": "7"}] * 3
    right, wrong = {"text": "<end_working_out><SOLUTION>7</SOLUTION>"}, {"text": "<SOLUTION>1</SOLUTION>"}
    result = sampled_accuracy(problems, [[right, wrong], [wrong, wrong], [right, right]])
    assert result["pass@1"] == pytest.approx(0.5) and result["pass@2"] == pytest.approx(2 / 3)
    assert "Chen et al. 2021" in result["estimator"]
