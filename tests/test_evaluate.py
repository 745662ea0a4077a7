"""The comparison: three models on the same problems, each with its own adapter; scores, pass@k, report."""

import pytest
from conftest import SMOKE_PRIMER, SMOKE_TASK

import train_grpo
from recipe.data import build_prompts, load_table
from recipe.evaluate import compare, complete, models_to_compare, sampled_accuracy, score
from recipe.models import load_model, load_tokenizer, save_adapter
from recipe.report import comparison_markdown, comparison_table
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
