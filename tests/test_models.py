"""Models on CPU: the smoke model, loading by path, the CPU stand-in for TRL's kernel, and the advice
given for a broken install, an old driver, or a model that cannot be loaded."""

import sys
import types

import pytest
from conftest import SMOKE_PRIMER, SMOKE_TASK

import rewards
import train_grpo
from recipe import models
from recipe.errors import SetupError
from recipe.models import PlainLogProbs, load_model, load_tokenizer
from recipe.smoke import SMOKE_SETTINGS, build_smoke_model


@pytest.fixture(scope="module")
def smoke_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "base_model"
    return build_smoke_model(folder, [str(SMOKE_TASK), str(SMOKE_PRIMER)], seed=3407)


def smoke_settings(model_dir, **extra):
    return dict(train_grpo.DEFAULTS, **SMOKE_SETTINGS, model_name=model_dir, smoke=True, **extra)


def test_tags_are_single_tokens_that_survive_decoding(tiny_tokenizer):
    for tag in rewards.TAGS:
        ids = tiny_tokenizer(tag, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1
        assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == tag


def test_smoke_model_loads_by_path_like_any_model(smoke_model_dir):
    tokenizer = load_tokenizer(smoke_model_dir)
    assert tokenizer.apply_chat_template(
        [{"role": "user", "content": "1?"}], add_generation_prompt=True, tokenize=False
    ).endswith(rewards.REASONING_START)
    model, _ = load_model(smoke_settings(smoke_model_dir), "transformers", tokenizer)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < sum(p.numel() for p in model.parameters())  # LoRA only
    assert build_smoke_model(models.Path(smoke_model_dir), [], seed=1) == smoke_model_dir  # built once, then reused


def test_a_hub_tokenizer_without_the_hub_comes_from_the_cache_or_not_at_all(monkeypatch, tiny_tokenizer, tmp_path):
    """The hub unreachable: the cache is asked at once (local_files_only), and a tokenizer not in it is refused
    with what to do instead of retried; a local folder never asks about the hub."""
    from transformers import AutoTokenizer

    from recipe import data

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(data, "probe_hub", lambda endpoint: f"{endpoint}: ConnectError: unreachable")
    (tmp_path / "local-model").mkdir()
    (tmp_path / "local-model" / "tokenizer.json").write_text("{}")  # a folder with its tokenizer files
    asked = []

    def from_cache(name, **kwargs):
        asked.append((name, kwargs["local_files_only"]))
        if name in ("cached/model", "local-model"):
            return tiny_tokenizer
        raise OSError(f"{name} is not in the cache")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", from_cache)
    assert load_tokenizer("cached/model") is tiny_tokenizer
    with pytest.raises(SetupError) as refused:
        load_tokenizer("unsloth/Qwen3-4B-Base")
    assert "cannot be reached" in str(refused.value) and "--model-name DIR" in str(refused.value)
    monkeypatch.setattr(data, "probe_hub", lambda endpoint: pytest.fail("a local folder asked about the hub"))
    assert load_tokenizer("local-model") is tiny_tokenizer
    assert asked == [("cached/model", True), ("unsloth/Qwen3-4B-Base", True), ("local-model", False)]


def test_smoke_model_can_end_its_answer(smoke_model_dir):
    """End-of-text has its own non-zero embedding row (padding has another), so its logit moves with
    the LoRA weights: a model whose eos row is the zeroed padding row can never learn to stop."""
    import torch

    tokenizer = load_tokenizer(smoke_model_dir)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    model, _ = load_model(smoke_settings(smoke_model_dir), "transformers", tokenizer)
    embedding = model.get_input_embeddings().weight
    assert embedding[tokenizer.pad_token_id].norm() == 0  # Qwen3 zeroes the padding row
    assert embedding[tokenizer.eos_token_id].norm() > 0.5 * embedding.norm(dim=1).median()
    for name, p in model.named_parameters():  # LoRA's B starts at zero: give it a value so A gets gradients too
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    ids = tokenizer("Which is the largest of 1, 2, 3, 4?", return_tensors="pt")["input_ids"]
    model(ids).logits[0, -1, tokenizer.eos_token_id].backward()
    grads = [p.grad.abs().sum() for n, p in model.named_parameters() if "lora_" in n and p.grad is not None]
    assert grads and sum(grads) > 0


def test_plain_logprobs_match_trl_reference():
    import torch
    from trl.trainer.utils import entropy_from_logits, selective_log_softmax

    torch.manual_seed(0)
    hidden, weight = torch.randn(7, 16, requires_grad=True), torch.randn(50, 16)
    targets = torch.randint(0, 50, (7,))
    logits = (hidden @ weight.T) / 0.7
    log_probs, entropy, _, _, is_top1 = PlainLogProbs.apply(
        hidden, weight, None, targets, 0.7, 4096, None, 1.0, ("log_probs", "entropy", "is_top1")
    )
    assert torch.allclose(log_probs, selective_log_softmax(logits, targets), atol=1e-5)
    assert torch.allclose(entropy, entropy_from_logits(logits), atol=1e-5)
    assert torch.equal(is_top1, logits.argmax(-1) == targets)
    log_probs.sum().backward()
    assert hidden.grad is not None and hidden.grad.abs().sum() > 0


def test_broken_install_ends_in_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "trl", None)  # makes `import trl` fail, as a broken install would
    with pytest.raises(SetupError) as error:
        models.check_libraries()
    assert "the training libraries do not import" in str(error.value)
    assert "requirements-test.txt" in str(error.value)


def test_unsloth_that_does_not_import_ends_in_advice(monkeypatch):
    monkeypatch.setitem(sys.modules, "unsloth", None)
    with pytest.raises(SetupError) as error:
        models.import_unsloth()
    assert "Unsloth does not import" in str(error.value) and "--backend transformers" in str(error.value)


# Each failure as the library words it (docs/gpu-path.md), and what the advice must then say.
LOAD_FAILURES = [
    # a bad name or an unreachable hub: Unsloth's RuntimeError (unsloth/models/loader.py), transformers' OSError
    (RuntimeError("Unsloth: Failed to load model. Both AutoConfig and PeftConfig loading failed."), "Check the name"),
    (OSError("nobody/typo is not a local folder and is not a valid model identifier"), "Check the name"),
    # vLLM's cache did not fit in its share, re-raised by Unsloth after its retries: raise the share
    (RuntimeError("No available memory for the cache blocks. Try increasing `gpu_memory_utilization`"), "raise --gpu"),
    # vLLM's share is more than is free: lower it
    (
        ValueError(
            "Free memory on device cuda:0 (3.1/23.6 GiB) on startup is less than desired GPU memory utilization "
            "(0.9, 21.2 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
        ),
        "lower --gpu-memory-utilization",
    ),
    ("torch-oom", "--num-generations and --per-device-batch"),  # torch's own out-of-memory error
    # a missing package: Unsloth's wording for the bitsandbytes plugin, and a plain ImportError
    (RuntimeError("Unsloth: `pip install vllm-bnb-plugin` for load_in_4bit."), "pip install -r requirements"),
    (ImportError("No module named 'flash_attn'"), "pip install -r requirements"),
]


def stand_in_unsloth(monkeypatch, from_pretrained):
    fast = types.SimpleNamespace(from_pretrained=staticmethod(from_pretrained))
    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=fast))


@pytest.mark.parametrize("error, advice", LOAD_FAILURES)
def test_load_failure_advice_tells_memory_packages_and_names_apart(monkeypatch, error, advice, tiny_tokenizer):
    """Unsloth wraps out-of-memory, a missing package and a bad name all in RuntimeError: each gets its own
    advice, and the library's own message is kept whole."""
    import torch

    if error == "torch-oom":
        error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def from_pretrained(**kwargs):
        raise error

    stand_in_unsloth(monkeypatch, from_pretrained)
    settings = dict(train_grpo.DEFAULTS, model_name="nobody/typo")
    with pytest.raises(SetupError) as caught:
        load_model(settings, "unsloth", tiny_tokenizer)
    said = str(caught.value)
    assert f"{type(error).__name__}: {error}" in said and advice in said
    others = {a for _, a in LOAD_FAILURES} - {advice}
    assert not [a for a in others if a in said], said  # no advice meant for another cause


def test_other_load_failures_keep_their_traceback(monkeypatch, tiny_tokenizer):
    """An error the guard cannot name (here a CUDA fault) is not dressed up as a wrong model name."""

    def from_pretrained(**kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    stand_in_unsloth(monkeypatch, from_pretrained)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        load_model(dict(train_grpo.DEFAULTS), "unsloth", tiny_tokenizer)


@pytest.mark.parametrize(
    "torch_cuda, nvidia_smi, expected",
    [
        (None, True, "CPU-only build. Install the GPU set"),  # a CPU wheel of torch on a GPU machine
        ("13.0", True, "needs NVIDIA driver 580 or newer"),  # a GPU whose driver is too old for CUDA 13
        ("13.0", False, "no CUDA GPU found"),  # no GPU at all
        (None, False, "no CUDA GPU found"),  # a laptop with the CPU wheel
    ],
)
def test_no_gpu_message_tells_the_causes_apart(monkeypatch, torch_cuda, nvidia_smi, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", torch_cuda)
    monkeypatch.setattr(models.shutil, "which", lambda name: "/usr/bin/nvidia-smi" if nvidia_smi else None)
    with pytest.raises(SetupError) as error:
        models.choose_backend("auto", needs_gpu=True)
    assert expected in str(error.value) and "python train_grpo.py --smoke" in str(error.value)


def test_backend_choice_without_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.choose_backend("auto", needs_gpu=False) == "transformers"
    with pytest.raises(SetupError, match="--backend unsloth needs a CUDA GPU"):
        models.choose_backend("unsloth", needs_gpu=False)


# ----------------------------------------------------------------------------- the project's Unsloth loading code
class RecordingFastLanguageModel:
    """Stands in for Unsloth's FastLanguageModel on CPU: records every argument the project passes to
    from_pretrained and get_peft_model, and answers with what Unsloth would: a real model and tokenizer from
    the folder, then a real PEFT LoRA with the rank, alpha and targets it was given."""

    calls: dict = {}

    @staticmethod
    def from_pretrained(**kwargs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        RecordingFastLanguageModel.calls["from_pretrained"] = kwargs
        folder = kwargs["model_name"]
        return AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)

    @staticmethod
    def get_peft_model(model, **kwargs):
        from peft import LoraConfig, get_peft_model

        RecordingFastLanguageModel.calls["get_peft_model"] = kwargs
        lora = LoraConfig(r=kwargs["r"], lora_alpha=kwargs["lora_alpha"], target_modules=kwargs["target_modules"])
        return get_peft_model(model, lora)


@pytest.mark.parametrize("four_bit", [False, True])
def test_unsloth_loading_passes_every_argument(monkeypatch, smoke_model_dir, four_bit):
    """The project's own _load_unsloth, run through the stand-in with a GPU and vLLM "present": every argument
    is explicit (Unsloth's defaults are load_in_4bit=True, gpu_memory_utilization=0.5), vLLM is asked for
    in 16 bits and not in 4 (recipe/generation.py), and the returned model trains only its LoRA."""
    import torch

    from recipe import generation

    RecordingFastLanguageModel.calls.clear()
    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=RecordingFastLanguageModel))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(generation, "vllm_available", lambda: True)
    settings = smoke_settings(smoke_model_dir, load_in_4bit=four_bit, gpu_memory_utilization=0.55, seed=11)
    model, tokenizer = load_model(settings, "unsloth", None)  # Unsloth's path loads its own tokenizer
    assert RecordingFastLanguageModel.calls["from_pretrained"] == {
        "model_name": smoke_model_dir,
        "max_seq_length": settings["max_seq_length"],
        "load_in_4bit": four_bit,
        "fast_inference": not four_bit,
        "max_lora_rank": settings["lora_rank"],
        "gpu_memory_utilization": 0.55,
        "trust_remote_code": False,
    }
    assert RecordingFastLanguageModel.calls["get_peft_model"] == {
        "r": settings["lora_rank"],
        "lora_alpha": settings["lora_alpha"],
        "target_modules": settings["lora_targets"].split(","),
        "use_gradient_checkpointing": "unsloth",
        "random_state": 11,
    }
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert tokenizer.chat_template and tokenizer.apply_chat_template(
        [{"role": "user", "content": "1?"}], add_generation_prompt=True, tokenize=False
    ).endswith(rewards.REASONING_START)


def test_vllm_and_transformers_count_completion_lengths_alike(monkeypatch, tiny_tokenizer):
    """vLLM keeps the end token in its output ids; the transformers path cuts it off. The same tokens must
    give the same length, text and truncation on both evaluation paths."""
    from recipe import evaluate

    eos = tiny_tokenizer.eos_token_id
    body = tiny_tokenizer("1 2 3", add_special_tokens=False)["input_ids"]
    rows = [body + [eos], body]  # ended, and cut at the length limit
    outputs = [
        types.SimpleNamespace(token_ids=tuple(row), text="?", finish_reason="stop" if eos in row else "length")
        for row in rows
    ]

    class Engine:
        vllm_engine = object()  # what uses_fast_generate looks for

        def fast_generate(self, prompts, sampling_params, lora_request):
            return [types.SimpleNamespace(outputs=outputs)]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=lambda **kwargs: kwargs))
    settings = dict(train_grpo.DEFAULTS, eval_samples=2)
    prompts = [[{"role": "user", "content": "1?"}]]
    (got,) = evaluate.complete(Engine(), tiny_tokenizer, prompts, settings, "trained", None, samples=2)
    want = [evaluate._completion(tiny_tokenizer, row, [eos]) for row in rows]
    assert got == want
    assert [c["length"] for c in got] == [len(body), len(body)] and [c["truncated"] for c in got] == [False, True]
