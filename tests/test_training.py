"""The trainers' configurations: the recipe's values, one explicit objective, and vLLM's settings."""

import math
import sys
import types

import pytest
from conftest import ROOT

import train_grpo
from recipe import generation, training
from recipe.errors import SetupError
from recipe.settings import check_settings
from recipe.training import OBJECTIVE_FIELDS, effective_objective, grpo_config, sft_config
import rewards as rewards_module
from rewards import REWARD_FUNCS

RECIPE = dict(train_grpo.DEFAULTS)
GIB = 2**30
NAMES = [f.__name__ for f in REWARD_FUNCS]


def test_grpo_config_carries_the_recipe_and_an_explicit_objective(tmp_path):
    config = grpo_config(RECIPE, tmp_path, "transformers", max_completion_length=1846)
    assert (config.learning_rate, config.num_generations, config.per_device_train_batch_size) == (5e-6, 4, 4)
    assert (config.temperature, config.min_p, config.top_p, config.max_completion_length) == (1.0, 0.1, 1.0, 1846)
    assert config.warmup_steps == 10 and config.lr_scheduler_type == "linear"
    objective = effective_objective(config)
    assert set(objective) == set(OBJECTIVE_FIELDS)
    # nothing left as None for a library to fill in: Unsloth reads epsilon_high=None as 0.28
    assert (objective["loss_type"], objective["epsilon"], objective["epsilon_high"]) == ("dapo", 0.2, 0.2)
    assert objective["mask_truncated_completions"] is False and objective["scale_rewards"] == "group"
    assert config.logging_nan_inf_filter is False  # a NaN loss reaches the divergence guard as NaN


def test_epsilon_high_setting_is_passed_through(tmp_path):
    config = grpo_config(dict(RECIPE, epsilon_high=0.28), tmp_path, "transformers", max_completion_length=64)
    assert (config.epsilon, config.epsilon_high) == (0.2, 0.28)


def test_colocated_vllm_gets_its_own_share_and_the_context_length(tmp_path, monkeypatch):
    """TRL's colocated engine is a second model beside the training one: it gets the share plan_generation
    sized for it (vLLM 0.31 refuses to start unless free memory >= its share x total), not Unsloth's 0.9."""
    fake_gpu(monkeypatch, 80)
    config = grpo_config(dict(RECIPE, colocate_vllm_memory=0.45), tmp_path, "transformers", max_completion_length=1846)
    assert config.use_vllm is True and config.vllm_mode == "colocate"
    assert config.vllm_gpu_memory_utilization == 0.45
    assert config.vllm_max_model_length == RECIPE["max_seq_length"]
    server = grpo_config(
        dict(RECIPE, vllm_mode="server", vllm_server_url="http://10.0.0.2:8000"), tmp_path, "transformers", 64
    )
    assert server.vllm_mode == "server" and server.vllm_server_base_url == "http://10.0.0.2:8000"


@pytest.mark.parametrize(
    "smoke, installed, four_bit", [(True, True, False), (False, False, False), (False, True, True)]
)
def test_no_vllm_for_smoke_runs_without_it_or_in_4bit(tmp_path, monkeypatch, smoke, installed, four_bit):
    fake_gpu(monkeypatch, 80, vllm=installed)
    settings = dict(RECIPE, smoke=smoke, load_in_4bit=four_bit, colocate_vllm_memory=0.5)
    assert grpo_config(settings, tmp_path, "transformers", 64).use_vllm is False
    plain_16bit = dict(settings, smoke=False, load_in_4bit=False)
    assert grpo_config(plain_16bit, tmp_path, "transformers", 64).use_vllm is installed


def test_a_vllm_server_without_vllm_installed_is_refused(monkeypatch):
    """The default (colocate) falls back to transformers with a printed reason; a chosen server does not,
    since the run would quietly generate here while the server waits."""
    fake_gpu(monkeypatch, 80, vllm=False)
    with pytest.raises(SetupError, match="--vllm-mode server needs vLLM installed here too"):
        generation.plan_generation(dict(RECIPE, vllm_mode="server"), "transformers")
    assert generation.plan_generation(dict(RECIPE, vllm_mode="colocate"), "transformers")["fast_inference"] is False
    assert generation.plan_generation(dict(RECIPE, vllm_mode="server", fast_inference=False), "transformers")


def test_priming_config_is_the_recipes_short_pass(tmp_path):
    config = sft_config(RECIPE, tmp_path)
    assert (config.num_train_epochs, config.learning_rate, config.per_device_train_batch_size) == (2, 2e-4, 1)
    assert (config.warmup_steps, config.weight_decay, config.save_strategy) == (5, 0.001, "no")
    import torch

    assert config.optim == ("adamw_8bit" if torch.cuda.is_available() else "adamw_torch")  # 8-bit Adam needs CUDA


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="what the trainers do on a CPU")
def test_cpu_runs_do_not_recompute_activations(tmp_path):
    """Gradient checkpointing saves GPU memory by computing each layer twice; on a CPU it only costs time
    (0.85 -> 0.70 s a smoke GRPO step, 2026-11-30), so both trainers go without it there."""
    assert sft_config(RECIPE, tmp_path).gradient_checkpointing is False
    assert grpo_config(RECIPE, tmp_path, "transformers", max_completion_length=64).gradient_checkpointing is False


# ----------------------------------------------------------------------------- settings that start (issue #17)


def test_trust_remote_code_reaches_trls_config(tmp_path):
    """TRL hands GRPOConfig.trust_remote_code to its colocated vLLM engine (trl/generation/vllm_generation.py)."""
    assert grpo_config(dict(RECIPE, trust_remote_code=True), tmp_path, "transformers", 64).trust_remote_code is True
    assert grpo_config(RECIPE, tmp_path, "transformers", 64).trust_remote_code is False


def test_cispo_caps_the_weight_at_a_sound_value(tmp_path):
    """TRL clamps CISPO's importance weight at epsilon_high itself: 0.2 (epsilon) would cap every weight."""
    cispo = dict(RECIPE, loss_type="cispo")
    assert grpo_config(cispo, tmp_path, "transformers", 64).epsilon_high == training.CISPO_EPSILON_MAX == 5.0
    assert grpo_config(dict(cispo, epsilon_high=6.0), tmp_path, "transformers", 64).epsilon_high == 6.0
    assert grpo_config(RECIPE, tmp_path, "transformers", 64).epsilon_high == 0.2  # other losses: epsilon
    with pytest.raises(SetupError, match="cispo caps the importance weight"):
        check_settings(dict(cispo, epsilon_high=0.28), NAMES)
    check_settings(cispo, NAMES)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_dr_grpo_keeps_the_chosen_reward_scaling_on_both_backends(tmp_path, scale):
    """Unsloth's config turns an explicit "group" into "none" for dr_grpo and keeps scaling for None; the
    real patched config is checked in tests/test_unsloth_cpu.py."""
    settings = dict(RECIPE, loss_type="dr_grpo", scale_rewards=scale)
    assert grpo_config(settings, tmp_path, "transformers", 64).scale_rewards == scale
    assert training.scale_rewards(settings, "unsloth") == (None if scale == "group" else scale)


def fake_gpu(monkeypatch, total_gib: float, vllm: bool = True):
    """A CUDA GPU of `total_gib` as far as recipe.generation can tell, with or without vLLM installed."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(total_memory=int(total_gib * GIB))
    )
    monkeypatch.setattr(generation, "vllm_available", lambda: vllm)
    # the trainer itself still runs on this CPU: its precision and optimizer as without a GPU
    monkeypatch.setattr(training, "precision", lambda: {"use_cpu": True, "bf16": False, "fp16": False})
    monkeypatch.setattr(training, "optimizer_name", lambda wanted: "adamw_torch")


@pytest.mark.parametrize("backend", ["unsloth", "transformers"])
def test_4bit_generates_without_vllm_and_says_why(monkeypatch, capsys, backend):
    """vLLM 0.31 has no bitsandbytes in tree: a 4-bit model cannot start in it on either backend."""
    fake_gpu(monkeypatch, 80)
    plan = generation.plan_generation(dict(RECIPE, load_in_4bit=True), backend)
    assert plan["fast_inference"] is False
    assert "vllm-bnb-plugin" in capsys.readouterr().out
    assert generation.vllm_off_reason(dict(RECIPE, load_in_4bit=True), backend) == generation.FOUR_BIT_WITHOUT_VLLM
    assert generation.plan_generation(dict(RECIPE, vllm_mode="server"), backend)["fast_inference"] is True  # 16-bit


def test_4bit_with_a_vllm_server_is_refused_before_anything_loads():
    with pytest.raises(SetupError, match="cannot serve a 4-bit model"):
        check_settings(dict(RECIPE, load_in_4bit=True, vllm_mode="server"), NAMES)
    check_settings(dict(RECIPE, load_in_4bit=True, vllm_mode="server", fast_inference=False), NAMES)


@pytest.fixture(scope="module")
def qwen3_4b_config(tmp_path_factory):
    """config.json of Qwen3-4B's shape, no weights: what plan_generation reads of the real model."""
    from transformers import Qwen3Config

    from bench.step import QWEN3_4B  # the shape bench/step.py measures, from Qwen3-4B-Base's config.json

    folder = tmp_path_factory.mktemp("qwen3-4b")
    Qwen3Config(**QWEN3_4B).save_pretrained(folder)
    return str(folder)


def test_colocated_vllm_memory_holds_weights_cache_and_overhead(qwen3_4b_config):
    need = generation.colocated_vllm_bytes(dict(RECIPE, model_name=qwen3_4b_config))
    assert need["weights"] == 4_022_468_096 * 2  # Qwen3-4B's parameters (tied embeddings counted once), 16-bit
    # 36 layers x 8 KV heads x 128 x (K and V) x 2 bytes per token; 4 sequences of 2048 tokens
    assert need["kv_cache"] == 4 * 2048 * 36 * 8 * 128 * 2 * 2
    assert need["overhead"] == generation.VLLM_OVERHEAD_GIB * GIB


def test_colocated_vllm_share_is_sized_from_the_model_or_refused(monkeypatch, capsys, qwen3_4b_config):
    """TRL's old default share (0.3 of 24 GB) is less than Qwen3-4B's weights alone: sized instead, or refused
    with the number needed, before the model loads. Prompts up to 201 tokens, as the recipe's DAPO data."""
    settings = dict(RECIPE, model_name=qwen3_4b_config, max_prompt_length=201)
    fake_gpu(monkeypatch, 23.6)  # a 24 GB card
    share = generation.plan_generation(settings, "transformers")["colocate_vllm_memory"]
    need = sum(generation.colocated_plan(settings)["vllm"].values())
    assert need <= share * 23.6 * GIB < need + 0.01 * 23.6 * GIB and 0.3 < share < 0.5
    assert f"gets {share:.2f} of the GPU" in capsys.readouterr().out
    with pytest.raises(SetupError, match=f"too small .* needs {share:.2f}.* --colocate-vllm-memory {share:.2f}"):
        generation.plan_generation(dict(settings, colocate_vllm_memory=0.3), "transformers")
    assert (
        generation.plan_generation(dict(settings, colocate_vllm_memory=0.46), "transformers")["colocate_vllm_memory"]
        == 0.46
    )  # more than needed, by hand: kept (on 24 GB the rest needs all but 0.46: tests/test_generation_paths.py)
    with pytest.raises(SetupError, match="leaves too little .* pass 0"):  # so much that training has no room left
        generation.plan_generation(dict(settings, colocate_vllm_memory=0.7), "transformers")
    fake_gpu(monkeypatch, 15.6)  # a 16 GB card: two 16-bit copies and a cache do not fit
    with pytest.raises(SetupError, match="do not fit in .*--vllm-mode server"):
        generation.plan_generation(settings, "transformers")
    assert generation.plan_generation(dict(settings, vllm_mode="server"), "transformers")["fast_inference"] is True
    check_settings(settings, NAMES)  # 0: sized from the model, allowed


def test_precision_is_strict_about_bf16(monkeypatch):
    """A T4 or V100 emulates bf16 (torch's plain is_bf16_supported() says yes): fp16 there, as Unsloth."""
    import torch

    from recipe import models

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert models.precision() == {"bf16": False, "fp16": True}
    assert models.compute_dtype() == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere
    assert models.precision() == {"bf16": True, "fp16": False} and models.compute_dtype() == torch.bfloat16
    from trl import GRPOConfig, SFTConfig

    # on a GPU gradient checkpointing stays on: TRL's default, which precision() does not override
    assert all(cls.__dataclass_fields__["gradient_checkpointing"].default is True for cls in (GRPOConfig, SFTConfig))


# ----------------------------------------------------------------------------- dynamic sampling (recipe/sampling.py)
CORRECT, WRONG = rewards_module.ANSWER_CORRECT, rewards_module.ANSWER_WRONG_NUMBER
NAN = float("nan")


def verdicts(rows, answer_column=1, weights=(1.0, 1.0)):
    import torch

    from recipe.sampling import group_verdicts

    live, right = group_verdicts(torch.tensor(rows), torch.tensor(weights), 2, answer_column)
    return live.tolist(), right.tolist()


@pytest.mark.parametrize(
    "rows, live, all_right",
    [
        ([[3.0, CORRECT], [3.0, CORRECT]], False, True),  # every completion right, same score: no signal
        ([[0.5, WRONG], [0.5, WRONG]], False, False),  # every completion wrong, same score
        ([[3.0, CORRECT], [0.5, WRONG]], True, False),  # one right, one wrong: the signal GRPO needs
        ([[3.0, WRONG], [0.5, WRONG]], True, False),  # both wrong, but the format differs: still a signal
        ([[1.0, CORRECT], [NAN, NAN]], False, False),  # one scored completion: nothing to compare it with
        ([[1e-9, 0.0], [0.0, 0.0]], False, False),  # apart by less than TRL's tolerance (isclose): no signal
    ],
)
def test_a_group_is_live_when_its_weighted_scores_differ(rows, live, all_right):
    assert verdicts(rows) == ([live], [all_right])


def test_a_reward_weighted_zero_does_not_make_a_group_live():
    rows = [[3.0, CORRECT], [0.5, CORRECT]]  # only the first function differs
    assert verdicts(rows, weights=(1.0, 1.0))[0] == [True]
    assert verdicts(rows, weights=(0.0, 1.0)) == ([False], [True])


def test_tally_keeps_each_process_first_live_groups_and_fills_only_at_the_bound():
    import torch

    from recipe.sampling import tally

    t, f = True, False
    # two processes, two groups each per round; process 0 has both live at once, process 1 one of two
    first = (torch.tensor([[t, t], [f, t]]), torch.tensor([[f, f], [t, f]]))
    counts, chosen = tally([first], wanted=2)
    assert counts == dict(generated=4, kept=3, dropped_all_right=0, dropped_all_wrong=0, short=1, extra_rounds=0)
    assert chosen.tolist() == [[t, t], [t, t]]  # if it stopped here: process 1 fills with its dead group
    # a second round: process 1 finds a live group, process 0's new live ones are surplus (not kept)
    second = (torch.tensor([[t, f], [t, f]]), torch.tensor([[f, f], [f, f]]))
    counts, chosen = tally([first, second], wanted=2)
    assert counts == dict(generated=8, kept=4, dropped_all_right=1, dropped_all_wrong=2, short=0, extra_rounds=1)
    assert chosen.tolist() == [[t, t, f, f], [f, t, t, f]]


def test_refill_stream_takes_every_row_once_per_pass_and_differs_from_the_main_order():
    import torch

    from recipe.sampling import refill_indices

    whole = refill_indices(0, 25, 10, seed=3407)
    assert sorted(whole[:10]) == list(range(10)) and sorted(whole[10:20]) == list(range(10))
    assert refill_indices(0, 7, 10, 3407) + refill_indices(7, 18, 10, 3407) == whole  # resumable at any point
    assert whole[:10] != whole[10:20]  # each pass its own order
    main_order = torch.randperm(10, generator=torch.Generator().manual_seed(3407)).tolist()  # TRL's RepeatSampler
    assert whole[:10] != main_order


def test_join_pads_prompts_left_and_completions_right():
    import torch

    from recipe.sampling import join_rows

    a = {  # two rows, prompt width 2, completion width 3
        "prompt_ids": torch.tensor([[5, 6], [7, 8]]), "prompt_mask": torch.ones(2, 2, dtype=torch.long),
        "completion_ids": torch.tensor([[1, 2, 3], [4, 5, 6]]), "completion_mask": torch.ones(2, 3, dtype=torch.long),
        "advantages": torch.tensor([1.0, -1.0]), "num_items_in_batch": torch.tensor(6),
    }  # fmt: skip
    b = {  # one row, prompt width 3, completion width 1
        "prompt_ids": torch.tensor([[1, 2, 3]]), "prompt_mask": torch.ones(1, 3, dtype=torch.long),
        "completion_ids": torch.tensor([[9]]), "completion_mask": torch.ones(1, 1, dtype=torch.long),
        "advantages": torch.tensor([0.5]), "num_items_in_batch": torch.tensor(1),
    }  # fmt: skip
    joined = join_rows([(a, [1]), (b, [0])], pad_token_id=0)
    assert joined["prompt_ids"].tolist() == [[0, 7, 8], [1, 2, 3]]
    assert joined["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert joined["completion_ids"].tolist() == [[4, 5, 6], [9, 0, 0]]
    assert joined["completion_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert joined["advantages"].tolist() == [-1.0, 0.5] and "num_items_in_batch" not in joined
    with_none = join_rows([(dict(a, sampling_per_token_logps=None), [0])], 0)
    assert "sampling_per_token_logps" in with_none and with_none["sampling_per_token_logps"] is None
    with pytest.raises(ValueError, match="pixel_values"):
        join_rows([(dict(a, pixel_values=torch.zeros(2, 3)), [0])], 0)
    with pytest.raises(ValueError, match="old_per_token_logps"):  # log-probs over more than the completion
        join_rows([(dict(a, old_per_token_logps=torch.zeros(2, 5)), [0])], 0)


def test_dynamic_sampling_off_is_the_trainer_class_itself():
    from recipe.sampling import with_dynamic_sampling

    assert with_dynamic_sampling(dict, 0) is dict


@pytest.fixture(scope="module")
def tiny_grpo(tmp_path_factory):
    """A tiny random Qwen3 with LoRA and eight smoke problems, for trainers built in the tests below."""
    from conftest import QUICK, SMOKE_PRIMER, SMOKE_TASK

    from recipe import models
    from recipe.data import build_prompts, load_table
    from recipe.settings import parse_settings
    from recipe.smoke import SMOKE_SETTINGS, build_smoke_model

    folder = tmp_path_factory.mktemp("sampling") / "base_model"
    settings = parse_settings(["--smoke", *QUICK], train_grpo.DEFAULTS, SMOKE_SETTINGS)
    settings["model_name"] = build_smoke_model(folder, [str(SMOKE_TASK), str(SMOKE_PRIMER)], 3407)
    tokenizer = models.load_tokenizer(settings["model_name"])
    models.use_plain_logprobs_without_gpu()  # as train_grpo.run(): TRL's Triton kernel needs a GPU
    problems = build_prompts(load_table(str(SMOKE_TASK)), "prompt", "solution").select(range(8))
    return settings, models.load_model, tokenizer, problems


def solved_when_even(completions, problem_id, **kwargs):
    """A stand-in answer reward: every completion of an even problem is right, of an odd one wrong."""
    return [CORRECT if int(i) % 2 == 0 else WRONG for i in problem_id]


class VariedBelow:
    """A stand-in format reward: completions differ (by their length) only for problems below `limit`."""

    __name__ = "varied_below"

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, completions, problem_id, **kwargs):
        texts = [rewards_module.completion_text(c) for c in completions]
        return [float(len(t)) if int(i) < self.limit else 1.0 for t, i in zip(texts, problem_id, strict=True)]


solved_when_even.__name__ = rewards_module.check_answer.__name__  # read as the answer reward


@pytest.mark.parametrize("rounds, live_below", [(1, 4), (3, 4), (1, 0), (0, 2)])
def test_every_trained_group_has_signal_until_the_bound(tiny_grpo, tmp_path, rounds, live_below):
    """Problems from `live_below` on always score the same (even ones all right, odd ones all wrong), those
    below it never do. Each step's batch holds only live groups when the rounds allow, and the loss counts
    only their tokens; with no live problem at all every step reaches the bound and trains on nothing.
    rounds 0: bench/undiluted.py's variant (the recipe's own groups, same-score ones out of the token count)."""
    import trl

    from recipe.sampling import METRIC, with_dynamic_sampling

    if rounds == 0:
        sys.path.insert(0, str(ROOT / "bench"))
        from undiluted import undiluted as with_dynamic_sampling

    settings, load_model, tokenizer, problems = tiny_grpo
    model, tokenizer = load_model(settings, "transformers", tokenizer)
    settings = dict(settings, max_steps=3, per_device_batch=8, num_generations=4)  # 2 groups per step
    args = grpo_config(settings, tmp_path, "transformers", max_completion_length=8)
    trainer = with_dynamic_sampling(trl.GRPOTrainer, rounds)(
        model=model, reward_funcs=[VariedBelow(live_below), solved_when_even], args=args,
        train_dataset=problems, processing_class=tokenizer,
    )  # fmt: skip
    batches = []
    generate = trainer._generate_and_score_completions

    def observed(inputs):
        out = generate(inputs)
        batches.append(out)
        return out

    trainer._generate_and_score_completions = observed
    trainer.train()
    steps = [h for h in trainer.state.log_history if METRIC + "generated" in h]
    assert len(steps) == len(batches) == 3
    for step, batch in zip(steps, batches, strict=True):
        live_groups = int(step[METRIC + "kept"])
        assert live_groups + int(step[METRIC + "short"]) == 2
        groups = batch["advantages"].view(-1, 4)
        has_signal = groups.abs().sum(dim=1) > 0
        assert int(has_signal.sum()) == live_groups  # the fillers are the same-score groups
        live_tokens = batch["completion_mask"].view(2, 4, -1)[has_signal].sum()
        assert int(batch["num_items_in_batch"]) == int(live_tokens)
        assert step["frac_reward_zero_std"] == step[METRIC + "short"] / 2
        dropped = step[METRIC + "dropped_all_right"] + step[METRIC + "dropped_all_wrong"]
        assert step[METRIC + "generated"] == 2 * (1 + step[METRIC + "extra_rounds"])
        assert dropped + live_groups + step[METRIC + "short"] <= step[METRIC + "generated"]
    if rounds == 0:  # the undiluted variant: the step's own groups only, never a refill
        assert all(s[METRIC + "extra_rounds"] == 0 for s in steps), steps
    if rounds == 3:  # 4 of 8 problems live: 4 rounds of 2 groups always find 2 (the refill covers all 8)
        assert all(s[METRIC + "short"] == 0 for s in steps), steps
    if live_below == 0:  # nothing to learn from: every step at the bound, no token in the loss, no update
        assert all(s[METRIC + "short"] == 2 and s[METRIC + "extra_rounds"] == rounds for s in steps), steps
        assert all(s["loss"] == 0.0 for s in steps)
    assert trainer.refill_cursor == 2 * sum(s[METRIC + "extra_rounds"] for s in steps)


class GeneratingEngine:
    """In place of TRL's colocated VLLMGeneration: answers every prompt row with a few tokens and their
    log-probs, in the shapes TRL 1.15's vllm_generation.py returns them (one completion per row; top-1 logprob
    lists). Counts its calls: one per generation round."""

    calls: list[int] = []

    def __init__(self, **kwargs):
        GeneratingEngine.calls = []

    def sync_weights(self):
        pass

    def generate(self, prompts, images, num_generations, profiler=None):
        import random

        rng = random.Random(len(self.calls))
        self.calls.append(len(prompts))
        completions = [[rng.randrange(5, 60) for _ in range(rng.randrange(2, 8))] for _ in prompts]
        return prompts, completions, [[[-1.5] for _ in c] for c in completions], None


def test_dynamic_sampling_trains_through_trl_vllm_generation(tiny_grpo, tmp_path, monkeypatch):
    """The refill rounds go through TRL's vLLM path (its engine stood in: no vLLM here) like the step's own
    prompts, and the batch joins vLLM's extra fields (the sampling log-probs and the importance-sampling
    correction that TRL computes from them) before the update."""
    import trl
    import trl.trainer.grpo_trainer as grpo_module

    from recipe.sampling import METRIC, with_dynamic_sampling

    monkeypatch.setattr(training, "vllm_off_reason", lambda settings, backend: "")
    monkeypatch.setattr(grpo_module, "VLLMGeneration", GeneratingEngine)
    settings, load_model, tokenizer, problems = tiny_grpo
    model, tokenizer = load_model(settings, "transformers", tokenizer)
    settings = dict(settings, max_steps=2, per_device_batch=8, num_generations=4, vllm_mode="colocate")
    settings["colocate_vllm_memory"] = 0.5
    args = grpo_config(settings, tmp_path, "transformers", max_completion_length=8)
    assert args.use_vllm and args.vllm_importance_sampling_correction
    trainer = with_dynamic_sampling(trl.GRPOTrainer, 2)(
        model=model, reward_funcs=[VariedBelow(2), solved_when_even], args=args,
        train_dataset=problems, processing_class=tokenizer,
    )  # fmt: skip
    batches = []
    generate = trainer._generate_and_score_completions

    def observed(inputs):
        batches.append(generate(inputs))
        return batches[-1]

    trainer._generate_and_score_completions = observed
    trainer.train()
    steps = [h for h in trainer.state.log_history if METRIC + "generated" in h]
    assert len(steps) == len(batches) == 2
    assert len(GeneratingEngine.calls) == sum(1 + s[METRIC + "extra_rounds"] for s in steps)  # every round: vLLM
    assert sum(s[METRIC + "extra_rounds"] for s in steps) > 0  # 2 of 8 problems live: refills were needed
    for step, batch in zip(steps, batches, strict=True):
        assert batch["completion_ids"].shape[0] == 8 and batch["sampling_per_token_logps"].shape[0] == 8
        assert batch["importance_sampling_ratio"] is not None and batch["importance_sampling_ratio"].shape[0] == 8
        has_signal = batch["advantages"].view(-1, 4).abs().sum(dim=1) > 0
        assert int(has_signal.sum()) == int(step[METRIC + "kept"])
    assert all(math.isfinite(s["loss"]) for s in steps)

