"""Data: datasets -> chat prompts, local files and folders, the held-out split, priming rows, the template."""

import pytest
from conftest import ROOT, SMOKE_PRIMER, SMOKE_TASK, write_rows

import rewards
from recipe.data import (
    build_priming_rows,
    build_prompts,
    drop_long_prompts,
    load_eval_problems,
    load_table,
    prompt_lengths,
    split_heldout,
)
from recipe.errors import SetupError
from rewards import REASONING_START, SYSTEM_PROMPT

PRIMER_COLUMNS = ("problem", "generated_solution", "expected_answer")


def test_bundled_task_becomes_chat_prompts():
    table = load_table(str(SMOKE_TASK))
    assert {"prompt", "solution"} <= set(table.column_names)  # the real dataset's columns
    rows = build_prompts(table, "prompt", "solution")
    assert len(rows) == len(table) == 1200
    first = rows[0]
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    assert first["prompt"][0]["content"] == SYSTEM_PROMPT
    assert first["prompt"][1]["content"] == table[0]["prompt"] and first["answer"] == table[0]["solution"]


def test_bundled_task_is_fair():
    """Answers spread over 1-9 (no constant answer does well), unique problems, primer disjoint."""
    from collections import Counter

    task, primer = load_table(str(SMOKE_TASK)), load_table(str(SMOKE_PRIMER))
    counts = Counter(task["solution"])
    assert set(counts) == {str(d) for d in range(1, 10)}
    assert max(counts.values()) / len(task) < 0.15
    assert len(set(task["prompt"])) == len(task)
    assert not set(task["prompt"]) & set(primer["problem"])
    for problem, answer in zip(task["prompt"], task["solution"], strict=True):
        digits = [int(d) for d in problem.rstrip("?").split("of ")[1].split(", ")]
        assert len(digits) == 4 and str(max(digits)) == answer


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_local_file_with_other_columns(tmp_path, suffix, capsys):
    import datasets

    data = {"question": ["What is 2+2?", "", "What is 3*3?", "Empty answer?"], "final": ["4", "5", "#### 9", " "]}
    path = tmp_path / f"mine{suffix}"
    table = datasets.Dataset.from_dict(data)
    {".csv": table.to_csv, ".parquet": table.to_parquet, ".jsonl": table.to_json}[suffix](str(path))
    rows = build_prompts(load_table(str(path)), "question", "final")
    assert rows["answer"] == ["4", "9"]  # gsm8k-style "#### 9" keeps the number
    assert rows["problem_id"] == [0, 2]
    assert "dropped 2 of 4 rows with an empty problem or answer" in capsys.readouterr().out
    with pytest.raises(SetupError) as error:
        build_prompts(load_table(str(path)), "prompt", "solution")
    assert "no column 'prompt' or 'solution'" in str(error.value) and "'question', 'final'" in str(error.value)


def test_local_folders_load(tmp_path):
    import datasets

    table = datasets.Dataset.from_dict({"prompt": ["1+1?", "2+2?"], "solution": ["2", "4"]})
    table.save_to_disk(str(tmp_path / "saved"))  # save_to_disk format
    (tmp_path / "repo" / "data").mkdir(parents=True)
    table.to_parquet(str(tmp_path / "repo" / "data" / "train-00000-of-00001.parquet"))  # a hub repo copy
    for folder in ("saved", "repo"):
        assert load_table(str(tmp_path / folder), "", "train")["solution"] == ["2", "4"]
    with pytest.raises(SetupError, match="could not read the dataset folder"):
        load_table(str(tmp_path / "repo"), "", "test")


def test_heldout_is_disjoint_and_seeded():
    rows = build_prompts(load_table(str(SMOKE_TASK)), "prompt", "solution")
    train, heldout = split_heldout(rows, 16, seed=3407)
    assert len(heldout) == 16 and len(train) == len(rows) - 16
    assert not set(train["problem_id"]) & set(heldout["problem_id"])
    assert split_heldout(rows, 16, seed=3407)[1]["problem_id"] == heldout["problem_id"]
    with pytest.raises(SetupError, match="leaves nothing to train on"):
        split_heldout(rows, len(rows), seed=1)


def test_evaluation_can_use_another_dataset(tmp_path):
    rows = [{"problem": f"What is {i} + {i}?", "answer": f"${2 * i}$", "level": 1} for i in range(5)]
    write_rows(tmp_path / "bench.jsonl", rows)
    problems = load_eval_problems(str(tmp_path / "bench.jsonl"), "", "test", ("problem", "answer"), 3)
    assert problems["answer"] == ["$0$", "$2$", "$4$"] and problems["problem_id"] == [0, 1, 2]
    assert problems[0]["prompt"][0]["content"] == SYSTEM_PROMPT


def test_long_prompts_are_dropped(tiny_tokenizer, tmp_path):
    problems = [
        {"prompt": "Which is the largest of " + ", ".join(["1"] * n) + "?", "solution": "1"} for n in range(1, 21)
    ]
    rows = build_prompts(load_table(str(write_rows(tmp_path / "varied.jsonl", problems))), "prompt", "solution")
    kept, limit = drop_long_prompts(rows, tiny_tokenizer, quantile=0.5)
    assert 0 < len(kept) < len(rows)
    assert max(prompt_lengths(kept["prompt"], tiny_tokenizer)) <= limit
    assert drop_long_prompts(rows, tiny_tokenizer, quantile=0.5, max_prompt_length=10)[1] == 10


def test_priming_rows_use_the_tags(tiny_tokenizer):
    rows = build_priming_rows(load_table(str(SMOKE_PRIMER)), PRIMER_COLUMNS, tiny_tokenizer, 128, max_rows=5)
    assert len(rows) == 5
    answer = rows[0]["messages"][2]["content"]
    assert answer.startswith(REASONING_START) and rewards.has_exact_format(answer)
    assert "<think>" not in answer
    with pytest.raises(SetupError, match="no priming rows with a numeric answer fit in 8 tokens"):
        build_priming_rows(load_table(str(SMOKE_PRIMER)), PRIMER_COLUMNS, tiny_tokenizer, 8)


def test_chat_template_matches_the_recipe(tiny_tokenizer):
    eos = tiny_tokenizer.eos_token
    messages = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "What is 1+1?"}]
    prompt = tiny_tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt == f"SYS{eos}What is 1+1?{REASONING_START}"
    full = tiny_tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": "A"}], tokenize=False)
    assert full == f"SYS{eos}What is 1+1?A{eos}"
    default = tiny_tokenizer.apply_chat_template(messages[1:], add_generation_prompt=True, tokenize=False)
    assert default == f"{SYSTEM_PROMPT}{eos}What is 1+1?{REASONING_START}"


@pytest.mark.parametrize("source", ["data/nope", "./x", "/abs/x", "~/x", "a/b/c", "missing.parquet"])
def test_a_path_that_looks_local_is_refused_at_once(source, monkeypatch):
    """No hub request for something that cannot be a hub name (data/ is a folder of the repository)."""
    import datasets

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail(f"{source} was tried on the hub"))
    with pytest.raises(SetupError, match="is read as a local path .* does not exist"):
        load_table(source)


def test_a_hub_name_still_goes_to_the_hub(monkeypatch, tmp_path):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SetupError, match="from the Hugging Face Hub"):
        load_table("openai/gsm8k", "main")


def test_an_unreachable_hub_is_not_waited_for(monkeypatch, tmp_path):
    """No retries against a hub that is not there: the cache is read in offline mode (what datasets itself
    falls back to after its retries, datasets/load.py), and when the dataset is not there either the refusal
    names the local-file form of --check with --priming-dataset, the offline variables and --check --smoke."""
    import datasets
    import huggingface_hub.constants

    from recipe import data

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # a user's machine: online mode (the tests set offline)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(data, "probe_hub", lambda endpoint: f"{endpoint}: ConnectError: unreachable")
    asked = []

    def from_cache(source, *args, **kwargs):  # datasets in offline mode: the cache, or an error at once
        asked.append((source, datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.is_offline_mode()))
        if source == "cached/set":
            return "the cached table"
        raise ConnectionError(f"Couldn't reach the Hugging Face Hub for dataset '{source}'")

    monkeypatch.setattr(datasets, "load_dataset", from_cache)
    assert load_table("cached/set") == "the cached table"
    with pytest.raises(SetupError) as refused:
        load_table("open-r1/DAPO-Math-17k-Processed", "en")
    assert asked == [("cached/set", True, True), ("open-r1/DAPO-Math-17k-Processed", True, True)]
    assert not datasets.config.HF_HUB_OFFLINE and not huggingface_hub.constants.is_offline_mode()  # restored
    message = str(refused.value)
    assert "cannot be reached" in message and "ConnectError: unreachable" in message and "nor is it in" in message
    for advice in ("HF_HUB_OFFLINE=1", "--dataset FILE --priming-dataset FILE", "--check --smoke", "hf download"):
        assert advice in message


def test_the_hub_probe_tells_an_answer_from_none(monkeypatch):
    """A closed port is unreachable; any HTTP answer (a 404 here) is a hub that is there; offline mode asks
    nothing. All on this machine: no network."""
    import http.server
    import socket
    import threading

    from recipe import data

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: refused at once
    assert "ConnectError" in data.probe_hub(f"http://127.0.0.1:{port}")

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        assert data.probe_hub(f"http://127.0.0.1:{server.server_address[1]}") is None
    finally:
        server.server_close()

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(data, "probe_hub", lambda endpoint: pytest.fail("probed in offline mode"))
    assert data.hub_unreachable() is None


def test_long_prompts_are_dropped_and_the_rest_kept(tiny_tokenizer, tmp_path):
    """The filter keeps exactly the prompts at or under the limit, in their order, and drops every longer one."""
    problems = [
        {"prompt": "Which is the largest of " + ", ".join(["7"] * n) + "?", "solution": "7"} for n in range(1, 21)
    ]
    rows = build_prompts(load_table(str(write_rows(tmp_path / "varied.jsonl", problems))), "prompt", "solution")
    lengths = prompt_lengths(rows["prompt"], tiny_tokenizer)
    assert len(set(lengths)) == len(lengths)  # every prompt a different length: each side of the limit is probed
    for limit_args in ({"quantile": 0.5}, {"quantile": 0.9, "max_prompt_length": sorted(lengths)[5]}):
        kept, limit = drop_long_prompts(rows, tiny_tokenizer, **limit_args)
        expected = [pid for pid, n in zip(rows["problem_id"], lengths, strict=True) if n <= limit]
        assert kept["problem_id"] == expected
        assert 0 < len(expected) < len(rows)
    assert limit == sorted(lengths)[5] and len(kept) == 6  # a prompt exactly at the limit is kept


def test_priming_keeps_only_rows_with_a_numeric_answer(tiny_tokenizer, tmp_path):
    """--help, --priming-answer-column: only primer rows with a numeric answer are kept (the bundled primer is all
    numeric)."""
    answers = ["7", "x + 1", "-3", r"\sqrt{2}", "1/2", "(1, 2)", "1,000", "A", r"\frac{3}{4}", "two"]
    numeric = {"7", "-3", "1/2", "1,000", r"\frac{3}{4}"}
    primer = [
        {"problem": f"Problem {i}?", "generated_solution": f"<think>Work {i}.</think>", "expected_answer": answer}
        for i, answer in enumerate(answers)
    ]
    table = load_table(str(write_rows(tmp_path / "primer.jsonl", primer)))
    rows = build_priming_rows(table, PRIMER_COLUMNS, tiny_tokenizer, 512)
    kept = [row["messages"][1]["content"] for row in rows]
    assert kept == [f"Problem {i}?" for i, answer in enumerate(answers) if answer in numeric]
    for row in rows:  # the answer block holds the primer's own answer
        assert rewards.extract_answer(row["messages"][2]["content"]) in numeric
