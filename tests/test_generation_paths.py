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


class EngineStandIn:
    """In place of TRL's VLLMGeneration: keeps what it was given, starts nothing."""

    started = []

    def __init__(self, **kwargs):
        EngineStandIn.started.append(kwargs)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("loss_type", CHOICES["loss_type"])
def test_every_loss_type_starts_on_every_generation_path(tiny_model_dir, tmp_path, monkeypatch, loss_type, path):
    import trl.trainer.grpo_trainer as grpo_module
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    vllm, extra = PATHS[path]
    monkeypatch.setattr(training, "vllm_off_reason", lambda settings, backend: "" if vllm else "off")
    monkeypatch.setattr(grpo_module, "VLLMGeneration", EngineStandIn)
    EngineStandIn.started = []
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
    assert len(EngineStandIn.started) == int(vllm)  # got as far as starting the engine, on the vLLM paths
