"""Every loss type the settings offer, on every generation path the transformers backend has, builds a
GRPOTrainer that starts: the trainer's own checks at construction are the ones that would otherwise stop a
run after the model loaded and priming ran. TRL's vLLM engine itself is replaced by a stand-in that records
how it was asked to start (no vLLM on this machine); everything up to it is TRL's code."""

import pytest

import train_grpo
from recipe import training
from recipe.settings import CHOICES, check_settings
from recipe.smoke import build_smoke_model
from rewards import REWARD_FUNCS
from tests.conftest import SMOKE_PRIMER, SMOKE_TASK

RECIPE = dict(train_grpo.DEFAULTS)
NAMES = [f.__name__ for f in REWARD_FUNCS]
PATHS = {  # generation path: (vLLM generates, settings)
    "transformers generate": (False, {"fast_inference": False}),
    "TRL colocated vLLM": (True, {"vllm_mode": "colocate", "colocate_vllm_memory": 0.5}),
    "TRL vLLM server": (True, {"vllm_mode": "server"}),
}


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return build_smoke_model(tmp_path_factory.mktemp("tiny") / "model", [str(SMOKE_TASK), str(SMOKE_PRIMER)], 1)


ENGINES_STARTED: list[dict] = []  # what each EngineStandIn was given


class EngineStandIn:
    """In place of TRL's VLLMGeneration: keeps what it was given, starts nothing."""

    def __init__(self, **kwargs):
        ENGINES_STARTED.append(kwargs)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("loss_type", CHOICES["loss_type"])
def test_every_loss_type_starts_on_every_generation_path(tiny_model_dir, tmp_path, monkeypatch, loss_type, path):
    import trl.trainer.grpo_trainer as grpo_module
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    vllm, extra = PATHS[path]
    monkeypatch.setattr(training, "vllm_off_reason", lambda settings, backend: "" if vllm else "off")
    monkeypatch.setattr(grpo_module, "VLLMGeneration", EngineStandIn)
    ENGINES_STARTED.clear()
    settings = dict(RECIPE, loss_type=loss_type, max_seq_length=256, **extra)
    check_settings(settings, NAMES)  # the combination passes the settings check, so it must start
    args = training.grpo_config(settings, tmp_path, "transformers", max_completion_length=32)
    assert args.use_vllm is vllm
    prompt = [{"role": "user", "content": "1+1?"}]
    grpo_module.GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        reward_funcs=REWARD_FUNCS,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": prompt, "answer": "2"}] * 4),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    assert len(ENGINES_STARTED) == int(vllm)  # got as far as starting the engine, on the vLLM paths


# ----------------------------------------------------------------------------- colocated vLLM: the whole GPU
GIB = 2**30
QWEN3_4B_KV_PER_TOKEN = 36 * 8 * 128 * 2 * 2  # layers x KV heads x head dim x (K and V) x 2 bytes


@pytest.fixture(scope="module")
def qwen3_4b_config(tmp_path_factory):
    """config.json of Qwen3-4B's shape, no weights: what the plan reads of the real model."""
    from transformers import Qwen3Config

    from bench.step import QWEN3_4B

    folder = tmp_path_factory.mktemp("qwen3-4b")
    Qwen3Config(**QWEN3_4B).save_pretrained(folder)
    return str(folder)


def a_gpu(monkeypatch, total_gib: float):
    import torch

    from recipe import generation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: type("P", (), {"total_memory": int(total_gib * GIB)})
    )
    monkeypatch.setattr(generation, "vllm_available", lambda: True)


def test_beside_vllm_the_gpu_holds_training_the_evaluation_and_the_context(qwen3_4b_config):
    from recipe import generation

    settings = dict(RECIPE, model_name=qwen3_4b_config, max_prompt_length=201)
    beside = generation.colocated_plan(settings)["beside"]
    assert beside["training weights"] == 4_022_468_096 * 2
    # step 0's held-out evaluation: transformers' generate, 16 sequences of 201 + 1024 tokens, its own KV cache
    assert beside["evaluation"] == 16 * (201 + 1024) * QWEN3_4B_KV_PER_TOKEN
    assert 2.6 < beside["evaluation"] / GIB < 2.8
    assert beside["CUDA context"] == generation.CUDA_CONTEXT_GIB * GIB
    assert beside["training"] == generation.TRAINING_HEADROOM_GIB * GIB
    # prompts not measured yet: the whole context length bounds them
    unmeasured = generation.colocated_plan(dict(settings, max_prompt_length=0))["beside"]["evaluation"]
    assert unmeasured == 16 * (2048 + 1024) * QWEN3_4B_KV_PER_TOKEN


def test_a_gpu_with_room_for_training_but_not_the_evaluation_is_refused(monkeypatch, qwen3_4b_config):
    """22 GiB: vLLM's share (0.49) leaves 11.2 GiB, enough for the training copy and 2 GiB to train in, not for
    the evaluation's cache and the CUDA context as well (12.7 GiB): refused before loading, with the sum."""
    from recipe import generation
    from recipe.errors import SetupError

    settings = dict(RECIPE, model_name=qwen3_4b_config, max_prompt_length=201)
    a_gpu(monkeypatch, 22)
    with pytest.raises(SetupError, match=r"do not fit in this GPU's 22.0 GiB.*2.7 evaluation \(16 sequences of 1225"):
        generation.plan_generation(settings, "transformers")
    assert generation.plan_generation(dict(settings, eval_batch_size=4), "transformers")["colocate_vllm_memory"] == 0.49


def test_the_log_and_the_check_print_the_arithmetic(monkeypatch, capsys, qwen3_4b_config):
    from recipe import generation

    settings = dict(RECIPE, model_name=qwen3_4b_config, max_prompt_length=201)
    a_gpu(monkeypatch, 79.2)  # an 80 GB card
    generation.plan_generation(settings, "transformers")
    logged = capsys.readouterr().out
    for part in ("weights", "KV cache", "vLLM itself", "training copy", "training", "evaluation", "CUDA context"):
        assert part in logged
    assert "16 sequences of 1225 tokens" in logged and "GiB in all" in logged
    line = generation.check_line(dict(settings, backend="transformers"), 201)
    assert (
        line.startswith("transformers backend with TRL's colocated vLLM needs a GPU of at least 23.")
        and "CUDA context" in line
    )
    assert generation.check_line(dict(settings, backend="unsloth"), 201) is None  # Unsloth's own engine
    assert "not readable here" in generation.check_line(dict(settings, model_name=str(qwen3_4b_config) + "-none"), 201)
