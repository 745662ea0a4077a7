"""--check (recipe/check.py): settings, data and references on any machine, no model, nothing written; and
the run itself writes nothing until its data passed."""

import sys
import types

import pytest
from conftest import SMOKE_PRIMER, SMOKE_TASK, write_rows

import train_grpo
from recipe.check import readable, references
from recipe.errors import SetupError
from recipe.settings import parse_settings
from recipe.smoke import SMOKE_SETTINGS


@pytest.fixture
def no_machine(monkeypatch):
    """Fail the test if anything picks a backend (the GPU check), loads the model, or starts the run."""

    def refuse(*args, **kwargs):
        raise AssertionError("--check went past the data")

    for name in ("choose_backend", "load_model", "run", "reuse_run"):
        monkeypatch.setattr(train_grpo, name, refuse)


def test_smoke_check_reports_the_data_and_writes_nothing(tmp_path, no_machine, capsys):
    assert train_grpo.main(["--smoke", "--check", "--output-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "settings      ok (output_dir, smoke)" in out  # the settings given, --check itself left out
    assert "tokenizer     the smoke model's, built in memory" in out
    assert "rows          1200 usable, 0 dropped" in out
    assert "held out      64 problems, never trained on; 1136 left to train on" in out
    assert "96 of 256 worked solutions kept" in out
    assert "9 of 9 distinct references readable by the verifier; 9 plain numbers" in out
    assert "check passed" in out
    assert not (tmp_path / "out").exists()


def test_check_without_the_hub_stops_at_once_and_says_so_once(tmp_path, no_machine, capsys, monkeypatch):
    """The recipe's two hub datasets, the hub unreachable: both named, no download tried, the offline advice
    (local files for both, --check --smoke) given once."""
    import datasets

    from recipe import data

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(data, "probe_hub", lambda endpoint: f"{endpoint}: ConnectError: unreachable")

    def not_cached(*args, **kwargs):  # datasets in offline mode, with nothing in its cache
        raise ConnectionError("Couldn't reach the Hugging Face Hub")

    monkeypatch.setattr(datasets, "load_dataset", not_cached)
    assert train_grpo.main(["--check", "--model-name", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert "'open-r1/DAPO-Math-17k-Processed' is a Hugging Face Hub name, and the hub cannot be reached" in err
    assert "'unsloth/OpenMathReasoning-mini' is a Hugging Face Hub name" in err
    assert err.count("--check --dataset FILE --priming-dataset FILE") == 1 and "--check --smoke" in err


def test_check_needs_no_gpu_and_reports_every_problem_at_once(tmp_path, no_machine, capsys):
    """Without --smoke and without the model's tokenizer: the data is still checked, every problem named."""
    write_rows(tmp_path / "cols.jsonl", [{"q": "1+1?", "a": "2"}])
    argv = ["--check", "--model-name", str(tmp_path / "no-model"), "--dataset", str(tmp_path / "cols.jsonl")]
    argv += ["--priming-dataset", str(tmp_path / "missing.jsonl"), "--output-dir", str(tmp_path / "out")]
    assert train_grpo.main(argv) == 2
    captured = capsys.readouterr()
    assert "is not on this machine: no lengths measured" in captured.out
    assert "the check found 2 problem(s)" in captured.err
    assert (
        "has no column 'prompt' or 'solution'" in captured.err and "missing.jsonl' is read as a local" in captured.err
    )
    assert not (tmp_path / "out").exists()


def test_check_fails_when_the_references_cannot_be_read(tmp_path, no_machine, capsys):
    """--check end to end on a dataset whose answer column the verifier cannot read: exit 2, the problem
    named with an example, and no "check passed" (references() alone is tested below)."""
    rows = [{"prompt": f"What is {i} + 1?", "solution": "\\sqrt{2}+"} for i in range(80)]
    data = write_rows(tmp_path / "unreadable.jsonl", rows)
    assert train_grpo.main(["--smoke", "--check", "--dataset", str(data), "--output-dir", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert "0 of 1 distinct references readable by the verifier" in captured.out
    assert "cannot be read by the verifier (e.g. '\\\\sqrt{2}+')" in captured.err
    assert "check passed" not in captured.out and not (tmp_path / "out").exists()


def test_check_without_the_models_tokenizer_still_checks_the_priming_rows(tmp_path, no_machine, capsys):
    """The model's tokenizer is not on this machine: the priming rows are still read and checked for their
    columns and answers (every one counts as fitting), and the check passes on good data."""
    argv = ["--check", "--model-name", str(tmp_path / "no-model"), "--dataset", str(SMOKE_TASK)]
    assert train_grpo.main([*argv, "--priming-dataset", str(SMOKE_PRIMER)]) == 0
    out = capsys.readouterr().out
    assert "prompts       lengths not measured, no prompt dropped (no tokenizer on this machine)" in out
    assert "priming       256 of 256 worked solutions kept from" in out and "(lengths not measured" in out
    assert "check passed" in out


def test_check_without_transformers_still_checks_the_data(tmp_path, no_machine, monkeypatch, capsys):
    """A broken install where transformers does not import (a CUDA torchvision on a CPU machine): the data
    and references are still checked, and the report says why no lengths were measured."""
    import transformers

    class Broken(types.ModuleType):  # the module as a broken install leaves it: its classes fail to load
        def __getattr__(self, name):
            if name == "AutoTokenizer":
                raise RuntimeError("operator torchvision::nms does not exist")
            return getattr(transformers, name)

    monkeypatch.setitem(sys.modules, "transformers", Broken("transformers"))
    argv = ["--check", "--model-name", str(tmp_path / "no-model"), "--dataset", str(SMOKE_TASK), "--priming", "false"]
    assert train_grpo.main(argv) == 0
    out = capsys.readouterr().out
    assert "tokenizer     none: transformers does not import here (RuntimeError: operator torchvision" in out
    assert "references    9 of 9 distinct references readable" in out and "check passed" in out


def test_check_measures_completions_from_what_the_prompts_leave(tmp_path, no_machine, capsys):
    """--max-completion-length 0 (the default): a completion may use what the longest kept prompt leaves of
    --max-seq-length."""
    argv = ["--smoke", "--check", "--max-completion-length", "0", "--max-seq-length", "200"]
    assert train_grpo.main(argv) == 0
    out = capsys.readouterr().out
    limit = int(out.split("prompts ")[1].split("; limit ")[1].split()[0])
    assert f"completions   up to {200 - limit} tokens" in out


def test_check_reads_the_references_of_a_named_evaluation_set(tmp_path, no_machine, capsys):
    """--eval-dataset: its reference answers are checked like the training set's; unreadable ones fail."""
    rows = [{"problem": f"What is {i} + 1?", "answer": "\\sqrt{2}+"} for i in range(10)]
    data = write_rows(tmp_path / "eval.jsonl", rows)
    assert train_grpo.main(["--smoke", "--check", "--eval-dataset", str(data), "--eval-size", "10"]) == 2
    captured = capsys.readouterr()
    assert "evaluation    10 problems from" in captured.out
    assert "0 of 1 distinct references readable" in captured.out and "cannot be read" in captured.err


def test_check_with_smoke_and_a_model_folder_uses_that_models_tokenizer(tmp_path, no_machine, capsys):
    """--smoke --model-name DIR trains DIR, so --check measures the prompts with DIR's tokenizer."""
    from test_families import FAMILIES, build_tokenizer

    build_tokenizer(**FAMILIES["llama"]).save_pretrained(str(tmp_path / "llama"))
    assert train_grpo.main(["--smoke", "--check", "--model-name", str(tmp_path / "llama")]) == 0
    out = capsys.readouterr().out
    assert f"tokenizer     {tmp_path / 'llama'}'s, found on this machine" in out


@pytest.mark.parametrize("hub", ["answers", "unreachable"])
def test_check_reads_a_hub_models_config_from_the_hub_only_when_it_answers(hub, monkeypatch):
    """--check on a hub name: config.json (a few KB, no weights) from the hub when it answers, else from this
    machine's cache only, without retries; a local folder never asks the hub."""
    from transformers import AutoConfig

    from recipe import check, data

    asked = []

    def config(name, local_files_only=False, **kwargs):
        asked.append((name, local_files_only))
        raise OSError("stand-in: no config here")

    monkeypatch.setattr(AutoConfig, "from_pretrained", config)
    monkeypatch.setattr(data, "probe_hub", lambda endpoint: None if hub == "answers" else "unreachable")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    said, problem = check.lora_plan(dict(train_grpo.DEFAULTS, explicit=[]), tokenizer=None)
    assert asked == [("unsloth/Qwen3-4B-Base", hub == "unreachable")] and problem is None
    assert said.startswith("targets not checked: unsloth/Qwen3-4B-Base's config could not be read (OSError")


@pytest.mark.parametrize(
    "reference, can_read",
    [
        ("34", True),  # a number
        ("\\frac{1}{2}", True),  # LaTeX math-verify parses
        ("6 - 5i", True),  # a complex number: letters kept
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", True),  # a matrix
        ("\\sqrt{2}+", False),  # LaTeX that cannot be parsed: not even a verbatim copy matches
        ("x" * 400, False),  # longer than any answer the verifier reads (a worked solution)
        ("</SOLUTION>", False),  # a tag: a completion cannot hold it inside its solution block
    ],
)
def test_a_reference_is_readable_when_its_verbatim_copy_is_judged_right(reference, can_read):
    assert readable(reference) is can_read


def test_unreadable_references_are_counted_and_fail_the_check_above_the_limit():
    lines = []
    good = [str(n) for n in range(300)]
    assert references(lambda label, text: lines.append(text), "references", good + ["\\sqrt{2}+"] * 5, 0) == []
    assert "300 of 301 distinct references readable" in lines[0] and "unreadable (5 rows" in lines[1]
    problems = references(lambda label, text: None, "references", good[:50] + ["\\sqrt{2}+", "x" * 400], 0)
    assert len(problems) == 1 and "2 of 52 distinct reference answers cannot be read" in problems[0]


@pytest.mark.parametrize("bad", ["dataset", "priming_dataset"])
def test_smoke_run_with_bad_data_leaves_no_run_folder(tmp_path, bad, monkeypatch):
    """The smoke model is written only after the data passed: no folder holding only base_model/."""
    monkeypatch.setattr(train_grpo, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    write_rows(tmp_path / "cols.jsonl", [{"q": "1+1?", "a": "2"}])
    argv = [
        "--smoke",
        "--output-dir",
        str(tmp_path / "out"),
        f"--{bad.replace('_', '-')}",
        str(tmp_path / "cols.jsonl"),
    ]
    with pytest.raises(SetupError, match="has no column"):
        train_grpo.run(parse_settings(argv, train_grpo.DEFAULTS, SMOKE_SETTINGS))
    assert not (tmp_path / "out").exists()


def test_without_a_gpu_the_advice_leads_to_a_setup_that_runs(monkeypatch):
    """The GPU set on a CPU machine: Unsloth's CUDA torchvision breaks the imports, so --smoke would fail
    too. The first message must say so and give the CPU setup, not send the user to --smoke."""
    import importlib.abc
    import sys

    from recipe import models

    class CudaTorchvision(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "trl":  # what peft and transformers raise with a CUDA torchvision and no GPU
                raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(models, "cuda_available", lambda: (False, "no CUDA GPU found (torch sees none)."))
    monkeypatch.delitem(sys.modules, "trl", raising=False)
    monkeypatch.setattr(sys, "meta_path", [CudaTorchvision(), *sys.meta_path])
    with pytest.raises(SetupError) as error:
        models.choose_backend("auto", needs_gpu=True)
    message = str(error.value)
    assert message.startswith("no CUDA GPU found") and "torchvision does not match this torch" in message
    assert "pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements-test.txt" in message
    assert "then: python train_grpo.py --smoke" in message


def test_start_up_noise_that_needs_no_action_is_dropped(caplog):
    """torch's deprecation warning about torchao's enums, and (with a CPU torch) torchao's failures to
    load its CUDA kernels: dropped once a backend is chosen; anything else from those loggers still shows."""
    import logging

    import torch

    from recipe import models

    models.choose_backend("transformers", needs_gpu=False)
    with caplog.at_level(logging.WARNING):
        logging.getLogger("torch.utils._pytree").warning(
            "<enum 'KernelPreference'> is an Enum subclass and is now natively supported by torch.compile"
        )
        logging.getLogger("torchao").warning("Failed to load torchao/_C_mxfp8.so: Could not load this library")
        logging.getLogger("torchao").warning("something else")
    shown = [r.getMessage() for r in caplog.records]
    assert not any("Enum subclass" in m for m in shown) and "something else" in shown
    assert any("Failed to load" in m for m in shown) == (torch.version.cuda is not None)
