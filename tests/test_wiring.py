"""The recipe's steps as train_grpo.run wires them, in one process, with the two trainers' train() replaced by
stand-ins that move the LoRA weights by a known amount: fast (quick-tier) guards for claims that the
end-to-end runs (marked slow) check too. The stand-ins keep everything else real: the data, the split, the
tiny model and its adapters, the trainers' construction, the saving and the comparison.

- held-out problems are never trained on (what GRPO's trainer is given vs heldout.jsonl and the comparison);
- the primed column is answered by the primed adapter, the trained column by the trained one, the base
  column with every adapter off (the weights active while each column is generated);
- a SIGTERM or Ctrl-C during GRPO ends the run with exit status 130 and the adapter saved, the run folder
  marked interrupted; the handler is installed for both signals;
- a merged export computes what the base model with the adapter computes;
- the comparison puts exactly one bos before a prompt for a tokenizer that adds one (a Llama-style model).
"""

import contextlib
import json
import signal

import pytest
from conftest import read_json
from test_families import FAMILIES, build_model, build_tokenizer

import train_grpo
from recipe import evaluate, report

# Every step at its smallest: 2 priming rows, 2 GRPO steps (stand-ins: nothing is generated), 4 held-out
# problems answered with 8 tokens by each of the three models.
TINY = (
    "--smoke", "--priming-max-rows", "2", "--priming-epochs", "1", "--max-steps", "2", "--num-generations", "4",
    "--per-device-batch", "4", "--eval-size", "4", "--save-steps", "100", "--max-completion-length", "8",
    "--eval-max-new-tokens", "8", "--eval-steps", "0", "--log-completions-steps", "0",
)  # fmt: skip
PRIMING_SHIFT, GRPO_SHIFT = 0.25, -0.5  # what the stand-ins add to every lora_B weight: each model differs


def shift_lora(model, amount: float) -> None:
    import torch

    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.add_(amount)


def active_lora(model) -> dict:
    """The LoRA weights the model computes with right now, keyed as in a saved adapter; {} with none on."""
    from peft.utils import get_peft_model_state_dict

    layers = [m for m in model.modules() if hasattr(m, "disable_adapters") and hasattr(m, "lora_A")]
    if layers and all(m.disable_adapters for m in layers):
        return {}
    state = get_peft_model_state_dict(model, adapter_name=model.active_adapter)
    return {k: v.clone() for k, v in state.items()}


@pytest.fixture(scope="module")
def wired(tmp_path_factory):
    """One in-process run with stand-in train() methods; what each trainer was given, which weights were
    active while each comparison column was generated, and the run folder."""
    import torch
    import trl

    seen = {"grpo_prompts": [], "columns": {}}

    def priming_train(self, *args, **kwargs):
        shift_lora(self.model, PRIMING_SHIFT)
        self.state.global_step = 1

    def grpo_train(self, *args, **kwargs):
        seen["grpo_prompts"] = [json.dumps(p) for p in self.train_dataset["prompt"]]
        shift_lora(self.model, GRPO_SHIFT)
        self.state.global_step = self.args.max_steps

    real_active = evaluate.active_adapter

    @contextlib.contextmanager
    def recording_active(model, label, path):
        with real_active(model, label, path):
            seen["columns"][label] = active_lora(model)
            yield

    output = tmp_path_factory.mktemp("wired")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trl.SFTTrainer, "train", priming_train)
        patch.setattr(trl.GRPOTrainer, "train", grpo_train)
        patch.setattr(evaluate, "active_adapter", recording_active)
        for plot in ("plot_comparison", "plot_training_curves"):  # seconds each, and tested elsewhere
            patch.setattr(report, plot, lambda *args, **kwargs: None)
        try:
            code = train_grpo.main([*TINY, "--output-dir", str(output)])
        finally:
            torch.set_num_threads(threads)
    assert code == 0
    return dict(seen, run_dir=output / "smoke")


def test_heldout_problems_never_reach_grpo(wired):
    heldout = [json.dumps(json.loads(line)["prompt"]) for line in (wired["run_dir"] / "heldout.jsonl").open()]
    assert len(heldout) == 4 and len(wired["grpo_prompts"]) > 100
    assert set(heldout).isdisjoint(wired["grpo_prompts"])
    compared = read_json(wired["run_dir"] / "comparison.json")
    assert len(compared["base"]["records"]) == 4  # the comparison answered the held-out problems


def test_each_column_is_answered_with_its_own_weights(wired):
    import torch
    from safetensors.torch import load_file

    columns, run_dir = wired["columns"], wired["run_dir"]
    assert list(columns) == ["base", "primed", "trained"]
    assert columns["base"] == {}  # every adapter off
    for label, folder in (("primed", "primed_adapter"), ("trained", "adapter")):
        saved = load_file(run_dir / folder / "adapter_model.safetensors")
        assert sorted(columns[label]) == sorted(saved)
        assert all(torch.equal(columns[label][k], saved[k]) for k in saved), label
    primed, trained = (load_file(run_dir / f / "adapter_model.safetensors") for f in ("primed_adapter", "adapter"))
    b = next(k for k in primed if "lora_B" in k)
    assert torch.allclose(trained[b] - primed[b], torch.full_like(primed[b], GRPO_SHIFT))  # two different adapters


def test_merged_export_is_the_base_plus_the_adapter(wired, tmp_path):
    """--export merged (PEFT's merge, what --export-only runs): the saved model computes what the base model
    with the run's adapter computes, and not what the base model alone does."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from recipe.export import export_model

    run_dir = wired["run_dir"]
    settings = {"export": "merged", "model_name": str(run_dir / "base_model")}
    folder = export_model(None, None, settings, run_dir / "adapter", "transformers", tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(str(folder))
    assert not any("lora" in name for name, _ in merged.named_parameters())
    base_model = AutoModelForCausalLM.from_pretrained(settings["model_name"])
    with_adapter = PeftModel.from_pretrained(base_model, str(run_dir / "adapter"))
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.no_grad():
        want = with_adapter(ids).logits
        with with_adapter.disable_adapter():
            base = with_adapter(ids).logits
        got = merged(ids).logits
    assert not torch.allclose(base, want, atol=1e-3)  # the adapter changes the answer, so the check can fail
    assert torch.allclose(got, want, atol=1e-4)


def test_a_signal_during_grpo_saves_and_exits_130(tmp_path, monkeypatch):
    """SIGTERM (a scheduler's stop) and SIGINT (Ctrl-C) arriving during GRPO: the run finishes the step,
    saves the adapter, marks the folder interrupted and exits with 130, the status that says so."""
    import trl

    for sent in (signal.SIGTERM, signal.SIGINT):

        def grpo_train(self, *args, **kwargs):
            signal.raise_signal(sent)  # the handler only records it; the guard stops at the step's end
            self.state.global_step = 1

        monkeypatch.setattr(trl.GRPOTrainer, "train", grpo_train)
        monkeypatch.setattr(trl.SFTTrainer, "train", lambda self, *a, **k: None)
        output = tmp_path / sent.name
        unhandled = []  # reached only if the run did not put its own handler in place
        previous = signal.signal(sent, lambda *args: unhandled.append(sent))
        try:
            with pytest.raises(SystemExit) as stopped:
                train_grpo.main([*TINY, "--output-dir", str(output)])
        finally:
            restored = signal.signal(sent, previous)
        assert stopped.value.code == 130 and unhandled == []
        run_dir = output / "smoke"
        assert read_json(run_dir / "status.json")["status"] == "interrupted"
        assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
        assert not (run_dir / "comparison.json").exists()  # stopped before the comparison
        assert restored is not None and restored.__name__ == "<lambda>"  # the run put back the handler it found


def test_the_comparison_puts_one_bos_before_each_prompt():
    """A tokenizer that adds a bos (Llama-style): the template gives it once, the comparison tokenizes
    without special tokens, so generate() sees exactly one, first."""
    import torch
    from transformers.generation.utils import GenerationMixin

    from recipe.models import with_recipe_template

    tokenizer = with_recipe_template(build_tokenizer(**FAMILIES["llama"]))
    model = build_model("llama", tokenizer)
    seen = []
    real_generate = GenerationMixin.generate

    def recording_generate(self, *args, **kwargs):
        for ids, mask in zip(kwargs["input_ids"].tolist(), kwargs["attention_mask"].tolist(), strict=True):
            seen.append([i for i, m in zip(ids, mask, strict=True) if m])
        return real_generate(self, *args, **kwargs)

    prompts = [[{"role": "user", "content": f"What is {n} + 1?"}] for n in range(3)]
    settings = dict(train_grpo.DEFAULTS, eval_batch_size=2, eval_max_new_tokens=2, seed=0)
    with pytest.MonkeyPatch.context() as patch, torch.no_grad():
        patch.setattr(GenerationMixin, "generate", recording_generate)
        model.disable_adapter = contextlib.nullcontext  # a model without adapters: nothing to turn off
        evaluate.complete(model, tokenizer, prompts, settings, "base", None)
    assert len(seen) == 3
    for ids in seen:
        assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1

