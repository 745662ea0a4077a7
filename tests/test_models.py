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


@pytest.mark.parametrize("error", [RuntimeError("Unsloth: Failed to load model for nobody/typo"), OSError("404")])
def test_unsloth_load_failure_ends_in_advice(monkeypatch, error, tiny_tokenizer):
    """Unsloth reports a bad name or an offline hub as RuntimeError, transformers as OSError."""

    class FastLanguageModel:
        @staticmethod
        def from_pretrained(**kwargs):
            raise error

    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=FastLanguageModel))
    settings = dict(train_grpo.DEFAULTS, model_name="nobody/typo")
    with pytest.raises(SetupError) as caught:
        load_model(settings, "unsloth", tiny_tokenizer)
    assert "could not load model 'nobody/typo'" in str(caught.value) and "--model-name DIR" in str(caught.value)


def test_out_of_memory_is_not_mistaken_for_a_bad_name(monkeypatch, tiny_tokenizer):
    import torch

    class FastLanguageModel:
        @staticmethod
        def from_pretrained(**kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=FastLanguageModel))
    with pytest.raises(torch.OutOfMemoryError):
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
