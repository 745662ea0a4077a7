"""GGUF export on CPU: llama.cpp's own converter and quantizer, from the pinned llama-cpp-python, on the smoke
model, checked token by token against the merged model in transformers.

The llama.cpp tests run in CI's GGUF stage (`bash .ci/run`): a venv of its own with requirements-test.txt and
requirements-gguf.txt, then `python -m recipe.export --get-converter` and `GGUF_STAGE=1 pytest tests/test_gguf.py`.
Where llama_cpp is not installed they are skipped; with GGUF_STAGE=1 a missing llama_cpp is an error instead.

The smoke tokenizer is trained by recipe/smoke.py, so llama.cpp's converter, which recognises a BPE
tokenizer by hashing the ids it gives for a fixed text (conversion/base.py, get_vocab_base_pre), does not
know it. The export records recipe.export.SMOKE_PRE_TOKENIZER for it instead (the smoke run passes it; the
converter is otherwise unchanged), so llama.cpp's own text splitting is only close to the smoke tokenizer's.
Every comparison here therefore works on token ids: the prompt is tokenized once by transformers, and the
same ids go to both models (Llama.generate takes ids); outputs are compared as ids.
"""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import offline_env, run_script

from recipe import export
from recipe.data import chat_template

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
if os.environ.get("GGUF_STAGE") == "1" and not HAVE_LLAMA:
    raise RuntimeError("GGUF_STAGE=1 but llama_cpp is not installed: pip install -r requirements-gguf.txt")
needs_llama = pytest.mark.skipif(
    not HAVE_LLAMA,
    reason="GGUF stage: needs llama-cpp-python (requirements-gguf.txt); CI's GGUF stage runs it (bash .ci/run)",
)
NEW_TOKENS = 24


# ----------------------------------------------------------------------------- no llama.cpp needed
def test_a_failed_export_leaves_no_finished_folder(tmp_path):
    folder = tmp_path / "merged"
    with pytest.raises(OSError):
        with export.staging(folder) as tmp:
            (tmp / "model.safetensors").write_text("half written")
            raise OSError("disk full")
    assert not folder.exists()
    with export.staging(folder) as tmp:  # the next export starts clean and lands in place
        assert not any(tmp.iterdir())
        (tmp / "model.safetensors").write_text("complete")
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]
    assert (folder / "model.safetensors").read_text() == "complete"


def fake_sdist(folder: Path, version: str) -> Path:
    """A source distribution laid out as llama-cpp-python's: llama.cpp vendored, its converter inside."""
    import tarfile

    vendor = folder / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    for name in ("convert_hf_to_gguf.py", "conversion/base.py", "gguf-py/gguf/__init__.py", "src/llama.cpp"):
        (vendor / name).parent.mkdir(parents=True, exist_ok=True)
        (vendor / name).write_text(f"# {name}\n")
    sdist = folder / f"llama_cpp_python-{version}.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        archive.add(folder / f"llama_cpp_python-{version}", arcname=f"llama_cpp_python-{version}")
    return sdist


@pytest.fixture
def no_converter(tmp_path, monkeypatch):
    """llama-cpp-python 0.3.36 installed (as far as the export asks), its converter not yet unpacked."""
    monkeypatch.delenv("LLAMA_CPP_CONVERTER", raising=False)
    monkeypatch.setattr(export, "llama_version", lambda: "0.3.36")
    monkeypatch.setattr(export, "converter_dir", lambda: tmp_path / "share" / "llama-cpp-python-0.3.36")
    return tmp_path / "share" / "llama-cpp-python-0.3.36"


def test_a_missing_converter_is_fetched_by_the_export_itself(tmp_path, no_converter, monkeypatch, capsys):
    """From the pinned source distribution (a stand-in for pip's download), saying so; only the converter,
    its package and gguf-py are kept; a second export finds it and fetches nothing."""
    downloads = []

    def download(version, folder):
        downloads.append(version)
        return fake_sdist(folder, version)

    monkeypatch.setattr(export, "download_sdist", download)
    export.ensure_converter()
    assert downloads == ["0.3.36"]
    said = capsys.readouterr().out
    assert "llama.cpp's converter is not in" in said
    assert "unpacking it from llama-cpp-python 0.3.36's source distribution" in said
    kept = sorted(str(p.relative_to(no_converter)) for p in no_converter.rglob("*") if p.is_file())
    assert kept == ["conversion/base.py", "convert_hf_to_gguf.py", "gguf-py/gguf/__init__.py"]
    export.ensure_converter()
    assert downloads == ["0.3.36"] and capsys.readouterr().out == ""


def test_a_converter_that_cannot_be_fetched_ends_with_the_commands(no_converter, monkeypatch):
    def offline(version, folder):
        raise export.SetupError("pip download failed: ERROR: No matching distribution found (no network)")

    monkeypatch.setattr(export, "download_sdist", offline)
    with pytest.raises(export.SetupError) as refused:
        export.ensure_converter()
    message = str(refused.value)
    assert "could not be fetched (pip download failed: ERROR: No matching distribution found" in message
    assert "python -m recipe.export --get-converter FILE.tar.gz" in message and "LLAMA_CPP_CONVERTER" in message
    assert not no_converter.exists()  # nothing half unpacked


def test_pip_download_failing_or_giving_nothing_is_said(tmp_path, monkeypatch):
    """download_sdist itself, with pip stood in: a failed pip says pip's last words; a pip that succeeds
    without leaving the archive says that; a good one gives the archive's path."""
    import subprocess as sp

    outcomes = iter([(1, "", "ERROR: No matching distribution found"), (0, "Saved nothing", ""), (0, "Saved", "")])

    def pip(command, **kwargs):
        code, out, err = next(outcomes)
        if out == "Saved":
            (tmp_path / "llama_cpp_python-0.3.36.tar.gz").write_bytes(b"")
        return sp.CompletedProcess(command, code, out, err)

    monkeypatch.setattr(export.subprocess, "run", pip)
    with pytest.raises(export.SetupError, match="pip download failed: ERROR: No matching distribution found"):
        export.download_sdist("0.3.36", tmp_path)
    with pytest.raises(export.SetupError, match="pip download gave no llama_cpp_python-0.3.36.tar.gz"):
        export.download_sdist("0.3.36", tmp_path)
    assert export.download_sdist("0.3.36", tmp_path) == tmp_path / "llama_cpp_python-0.3.36.tar.gz"


def test_a_users_own_converter_folder_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("LLAMA_CPP_CONVERTER", str(tmp_path / "checkout"))
    monkeypatch.setattr(export, "download_sdist", lambda *a: pytest.fail("fetched over the user's own converter"))
    with pytest.raises(export.SetupError, match="LLAMA_CPP_CONVERTER=.*holds no convert_hf_to_gguf.py"):
        export.ensure_converter()


def test_a_llama_cpp_that_does_not_load_is_refused_before_any_work(monkeypatch):
    """Installed but broken (a build for another CPU, a missing shared library): refused by check_export,
    which runs before training, with the command that reinstalls it."""
    monkeypatch.setattr(export, "missing_packages", lambda: [])
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` now raises ImportError
    monkeypatch.setattr(export, "ensure_converter", lambda: pytest.fail("went past the broken library"))
    with pytest.raises(export.SetupError, match=r"llama-cpp-python does not load \(ModuleNotFoundError") as refused:
        export.check_export("gguf")
    assert export.INSTALL_GGUF in str(refused.value)


def test_modelfile_carries_the_recipes_chat_format(tmp_path):
    """Ollama's template gives, for one question, the text the recipe's Jinja template gives."""
    from jinja2 import Template

    eos = "<|endoftext|>"
    modelfile = export.write_modelfile(tmp_path, "model-q4_k_m.gguf", eos).read_text()
    lines = modelfile.splitlines()
    assert lines[0] == "FROM ./model-q4_k_m.gguf" and f'PARAMETER stop "{eos}"' in lines
    jinja = Template(chat_template()).render(
        messages=[{"role": "user", "content": "What is 2+3?"}], add_generation_prompt=True, eos_token=eos
    )
    # The Go template, with .System set by SYSTEM and one user message, written out by hand from
    # ollama_template: {{ .System }} eos, then the message's content, then the opening tag.
    template = export.ollama_template(eos)
    assert template.startswith("{{ if .System }}{{ .System }}{{ else }}") and template.endswith("<start_working_out>")
    system = modelfile.split('SYSTEM """', 1)[1].split('"""', 1)[0]
    assert jinja == system + eos + "What is 2+3?" + "<start_working_out>"


def render_go_template(template: str, system: str, messages: list[dict]) -> str:
    """Ollama's Go template, rendered for the constructs ollama_template uses (if/else if/else on .System and
    .Role, range .Messages, .System and .Content, and the `{{-` that trims the whitespace before it), the
    way Go's text/template does; anything else fails the test rather than being guessed."""
    parts = re.split(r"({{-?\s*.*?\s*-?}})", template)
    tokens = []  # ("text", s) or ("action", s)
    for part in parts:
        if part.startswith("{{"):
            if part.startswith("{{-") and tokens and tokens[-1][0] == "text":
                tokens[-1] = ("text", tokens[-1][1].rstrip())
            tokens.append(("action", part.strip("{}-").strip()))
        elif part:
            tokens.append(("text", part))

    def block(pos, scope):
        """Render from pos to the matching else/end; (output, pos of that else/end)."""
        out = ""
        while pos < len(tokens):
            kind, value = tokens[pos]
            if kind == "text":
                out += value
            elif value in (".System", ".Content"):
                out += scope[value[1:]]
            elif value.startswith("if ") or value.startswith("range "):
                out_block, pos = control(pos, scope)
                out += out_block
            elif value == "end" or value == "else" or value.startswith("else if "):
                return out, pos
            else:
                raise AssertionError(f"unknown template action {value!r}")
            pos += 1
        return out, pos

    def truth(condition, scope):
        if condition == ".System":
            return bool(scope["System"])
        match = re.fullmatch(r'eq \.Role "(\w+)"', condition)
        assert match, f"unknown condition {condition!r}"
        return scope["Role"] == match.group(1)

    def skip(pos):
        """From an if/else branch start to its matching else/end, without rendering."""
        depth = 0
        while True:
            pos += 1
            value = tokens[pos][1] if tokens[pos][0] == "action" else ""
            if value.startswith(("if ", "range ")):
                depth += 1
            elif value == "end" and depth:
                depth -= 1
            elif depth == 0 and (value == "end" or value == "else" or value.startswith("else if ")):
                return pos

    def control(pos, scope):
        value = tokens[pos][1]
        if value.startswith("range "):
            assert value == "range .Messages"
            out = ""
            for message in scope["Messages"]:
                text, end = block(pos + 1, dict(scope, Role=message["role"], Content=message["content"]))
                out += text
            return out, end
        condition, out, chosen = value[len("if ") :], "", False
        while True:  # each branch: rendered if it is the first whose condition holds, else skipped
            if not chosen and (condition is None or truth(condition, scope)):
                out, pos = block(pos + 1, scope)
                chosen = True
            else:
                pos = skip(pos)
            value = tokens[pos][1]
            if value == "end":
                return out, pos
            condition = None if value == "else" else value[len("else if ") :]

    text, pos = block(0, {"System": system, "Messages": messages})
    assert pos == len(tokens), "unbalanced template"
    return text


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_modelfile_renders_a_conversation_as_the_recipe_does(turns):
    """Every assistant turn ends with the end token, every user turn is the text as is: several turns of a
    conversation render in Ollama's template exactly as in the recipe's Jinja template (recipe/data.py)."""
    from jinja2 import Template

    eos = "<|endoftext|>"
    messages = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"What is {turn}+3?"})
        if turn < turns - 1:
            messages.append({"role": "assistant", "content": f"<end_working_out><SOLUTION>{turn + 3}</SOLUTION>"})
    jinja = Template(chat_template()).render(messages=messages, add_generation_prompt=True, eos_token=eos)
    ollama = render_go_template(export.ollama_template(eos), system="", messages=messages)
    assert ollama == jinja
    assert ollama.count(eos) == turns  # after the system prompt and after each of the turns - 1 answers


# ----------------------------------------------------------------------------- llama.cpp on the smoke model
@pytest.fixture(scope="module")
def short_run(quick_run):
    """The shared shortened smoke run (tests/conftest.py), for its adapter and held-out prompts."""
    return quick_run["dir"]


@pytest.fixture(scope="module")
def merged(short_run, tmp_path_factory):
    """(merged folder, merged model, tokenizer, prompts as id lists, the merged model's greedy ids)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = export.merge_adapter(
        str(short_run / "base_model"), short_run / "adapter", tmp_path_factory.mktemp("m") / "merged"
    )
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    rows = [json.loads(line) for line in (short_run / "heldout.jsonl").read_text().splitlines()]
    prompts = []
    for row in rows:
        text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    want = [hf_greedy(model, ids, tokenizer.eos_token_id) for ids in prompts]
    base = AutoModelForCausalLM.from_pretrained(str(short_run / "base_model")).eval()
    with torch.no_grad():
        base_ids = [hf_greedy(base, ids, tokenizer.eos_token_id) for ids in prompts]
    # The adapter changes the answers, so a GGUF that lost it could not pass the comparisons below.
    assert base_ids != want
    return folder, model, tokenizer, prompts, want


def hf_greedy(model, ids: list[int], eos: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=eos)
    return out[0, len(ids) :].tolist()


def llama_greedy(llm, ids: list[int], eos: int) -> list[int]:
    """Greedy continuation in llama.cpp from token ids (temp 0 is argmax), up to eos or NEW_TOKENS."""
    out = []
    for token in llm.generate(ids, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        out.append(token)
        if token == eos or len(out) == NEW_TOKENS:
            break
    return out


def load_gguf(path: Path):
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=512, n_threads=2, n_batch=512, verbose=False)


def agreement(got: list[list[int]], want: list[list[int]]) -> tuple[int, float]:
    """(prompts whose continuation is identical, share of tokens generated before the first difference)."""
    same = sum(g == w for g, w in zip(got, want, strict=True))
    prefix = 0
    for g, w in zip(got, want, strict=True):
        n = 0
        while n < min(len(g), len(w)) and g[n] == w[n]:
            n += 1
        prefix += n
    return same, prefix / sum(len(w) for w in want)


@pytest.fixture(scope="module")
def ggufs(merged, tmp_path_factory):
    """The merged smoke model as GGUF: f32 and f16 by llama.cpp's converter, q8_0 and q4_k_m quantized from
    the f16 file (the steps write_gguf takes; the command-line test below runs write_gguf itself)."""
    out = tmp_path_factory.mktemp("gguf")
    files = {t: export.convert(merged[0], out / f"{t}.gguf", t, export.SMOKE_PRE_TOKENIZER) for t in ("f32", "f16")}
    for quantization in ("q8_0", "q4_k_m"):
        files[quantization] = export.quantize(files["f16"], out / f"{quantization}.gguf", quantization)
    return files


@needs_llama
def test_unquantized_gguf_gives_the_merged_models_greedy_tokens(merged, ggufs):
    _, _, tokenizer, prompts, want = merged
    llm = load_gguf(ggufs["f32"])
    assert llm.n_vocab() == len(tokenizer) and llm.token_eos() == tokenizer.eos_token_id
    assert llm.metadata["tokenizer.chat_template"] == chat_template()  # what llama-server --jinja uses
    assert llm.metadata["tokenizer.ggml.pre"] == export.SMOKE_PRE_TOKENIZER
    got = [llama_greedy(llm, ids, tokenizer.eos_token_id) for ids in prompts]
    assert got == want


@needs_llama
def test_quantized_ggufs_agreement_is_reported(merged, ggufs, capsys):
    """Quantized weights change the logits, so greedy tokens may differ: the agreement is printed, not asserted."""
    _, _, tokenizer, prompts, want = merged
    lines = []
    for quantization in ("f16", "q8_0", "q4_k_m"):
        llm = load_gguf(ggufs[quantization])
        got = [llama_greedy(llm, ids, tokenizer.eos_token_id) for ids in prompts]
        assert all(0 < len(g) <= NEW_TOKENS for g in got)
        same, share = agreement(got, want)
        size = ggufs[quantization].stat().st_size
        lines.append(f"{quantization}: {same}/{len(want)} prompts identical, {share:.0%} of tokens before the first "
                     f"difference, {size / 1e6:.2f} MB")  # fmt: skip
    with capsys.disabled():
        print("\nGGUF vs merged model, greedy, token ids:\n  " + "\n  ".join(lines))


@needs_llama
def test_q4_k_m_falls_back_where_rows_are_too_short(ggufs, capsys):
    """Q4_K packs 256 weights a block; the smoke model's rows of 128 get llama.cpp's fallback types instead."""
    sys.path.insert(0, str(export.converter_dir() / "gguf-py"))
    from gguf import GGUFReader

    types = {t.name: t.tensor_type.name for t in GGUFReader(str(ggufs["q4_k_m"])).tensors}
    rows = {t.name: int(t.shape[0]) for t in GGUFReader(str(ggufs["q4_k_m"])).tensors}
    assert any(kind in ("Q4_K", "Q6_K") for kind in types.values())  # really quantized where it fits
    assert all(types[name] not in ("Q4_K", "Q5_K", "Q6_K") for name, n in rows.items() if n % 256)
    summary = {}
    for name, kind in types.items():
        summary.setdefault(f"{kind} (rows of {rows[name]})", []).append(re.sub(r"^blk\.\d+\.", "", name))
    with capsys.disabled():
        print("\nq4_k_m tensor types in the smoke GGUF:")
        for key, names in sorted(summary.items()):
            print(f"  {key}: {len(names)} tensors, e.g. {sorted(set(names))[:4]}")


@needs_llama
def test_export_only_gguf_writes_a_complete_folder(short_run, tmp_path):
    """The command a user runs: the default q4_k_m GGUF, its Modelfile and export.json, nothing else left."""
    output = tmp_path  # beside nothing: the shared run's folder is only read
    result = run_script("--export-only", "--export", "gguf", "--adapter", short_run / "adapter", "--output-dir", output)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    folder = output / "smoke-gguf"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["Modelfile", "export.json", "llama.cpp.log", "model-q4_k_m.gguf"]
    about = json.loads((folder / "export.json").read_text())
    assert about["quantization"] == "q4_k_m" and about["file"] == "model-q4_k_m.gguf"
    assert (folder / "Modelfile").read_text().startswith("FROM ./model-q4_k_m.gguf\n")
    assert not list(output.glob(".*partial"))
    llm = load_gguf(folder / "model-q4_k_m.gguf")
    assert llm.metadata["general.file_type"] == str(export.GGUF_FTYPES["q4_k_m"])


@needs_llama
def test_a_killed_gguf_export_leaves_nothing_that_looks_finished(short_run, tmp_path):
    """The export process is killed (SIGKILL) while llama.cpp's converter runs: a stand-in converter kills its
    parent, so the moment is always the same. Nothing in the export's folder looks like a model."""
    kill_parent = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
    stand_in = tmp_path / "converter"
    (stand_in / "conversion").mkdir(parents=True)
    (stand_in / "convert_hf_to_gguf.py").write_text(kill_parent)
    (stand_in / "conversion" / "__init__.py").write_text(kill_parent)  # imported first for the smoke tokenizer
    output = tmp_path / "out"
    command = [sys.executable, "train_grpo.py", "--export-only", "--export", "gguf", "--gguf-quantization", "q8_0",
               "--adapter", str(short_run / "adapter"), "--output-dir", str(output)]  # fmt: skip
    env = offline_env(LLAMA_CPP_CONVERTER=str(stand_in))
    result = subprocess.run(command, cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    finished = [p for p in output.rglob("*") if p.name in ("export.json", "Modelfile") or p.suffix == ".gguf"]
    assert finished == []
    assert list((output / "smoke-gguf").iterdir()) == []  # the folder reserved for the job stays empty
    assert (output / ".smoke-gguf.partial" / "merged" / "model.safetensors").exists()  # it was killed mid-way
