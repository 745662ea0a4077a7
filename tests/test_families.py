"""Other model families than Qwen: tiny random models of nine families, each built here with its family's
special tokens (no download), run through the recipe on CPU (`--smoke --model-name DIR`: priming, two GRPO
steps, the comparison), with every generate() call and the priming inputs recorded.

What each family probes:
- llama:    a tokenizer that puts <|begin_of_text|> before plain text, no padding token (pad = eos)
- llama3:   the same, with Llama 3's end list in the generation config (<|end_of_text|>, <|eot_id|>)
- mistral:  <s> added before plain text, no padding token
- gemma2:   <bos> added, <end_of_turn>, and attention scores soft-capped (eager attention computes that)
- gemma3:   <bos> added, and an extra end token (<end_of_turn>) in the model's generation config
- olmo2:    no bos, a padding token of its own, norms after attention and MLP
- phi3:     a bos declared but not added, an extra end token (<|end|>), fused qkv_proj and gate_up_proj
- qwen3:    no bos at all (the recipe's own family)
- qwen3moe: a mixture of experts whose expert weights are fused 3-D parameters, not Linear layers
"""

import json

import pytest
from conftest import SMOKE_PRIMER, SMOKE_TASK

import rewards
import train_grpo
from recipe import models
from recipe.data import prompt_lengths
from recipe.errors import SetupError

SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
FAMILIES = {
    "llama": dict(bos="<|begin_of_text|>", eos="<|end_of_text|>", pad=None, end=None, adds_bos=True),
    "gemma3": dict(bos="<bos>", eos="<eos>", pad="<pad>", end="<end_of_turn>", adds_bos=True),
    "phi3": dict(bos="<s>", eos="<|endoftext|>", pad=None, end="<|end|>", adds_bos=False),
    "qwen3": dict(bos=None, eos="<|endoftext|>", pad="<|pad|>", end=None, adds_bos=False),
    "llama3": dict(bos="<|begin_of_text|>", eos="<|end_of_text|>", pad=None, end="<|eot_id|>", adds_bos=True),
    "mistral": dict(bos="<s>", eos="</s>", pad=None, end=None, adds_bos=True),
    "gemma2": dict(bos="<bos>", eos="<eos>", pad="<pad>", end="<end_of_turn>", adds_bos=True),
    "olmo2": dict(bos=None, eos="<|endoftext|>", pad="<|pad|>", end=None, adds_bos=False),
    "qwen3moe": dict(bos=None, eos="<|endoftext|>", pad="<|pad|>", end=None, adds_bos=False),
}
PROJECTIONS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
EXPERTS = ["experts.down_proj", "experts.gate_up_proj"]
WRAPPED = {name: PROJECTIONS for name in FAMILIES} | {
    "phi3": ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"],
    "qwen3moe": [*EXPERTS, "k_proj", "o_proj", "q_proj", "v_proj"],
}
# The shortest run that still goes through every step: 2 priming rows, 2 GRPO steps of one prompt x 4
# completions, 4 held-out problems for the base and trained models, 8 tokens a completion, no evaluation
# during GRPO.
SHORT = (
    "--priming-max-rows", "2", "--priming-epochs", "1", "--eval-primed", "false", "--max-steps", "2",
    "--num-generations", "4", "--per-device-batch", "4", "--eval-size", "4", "--save-steps", "100",
    "--max-completion-length", "8", "--eval-max-new-tokens", "8", "--eval-steps", "0",
)  # fmt: skip


def build_tokenizer(bos, eos, pad, end, adds_bos):
    """A byte-level BPE tokenizer trained on the smoke texts with the family's special tokens; the tags are
    single ordinary tokens, as in recipe/smoke.py. With adds_bos its post-processor prepends bos, as the
    real Llama, Gemma and Mistral tokenizers do."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from recipe.smoke import smoke_texts

    specials = [t for t in (bos, eos, pad, end) if t]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(smoke_texts([str(SMOKE_TASK), str(SMOKE_PRIMER)]), trainer)
    core.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in rewards.TAGS])
    if adds_bos:
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, core.token_to_id(bos))]
        )
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=eos, pad_token=pad)


def build_model(family: str, tokenizer):
    """A random model of the family's architecture, with the end tokens its generation config declares."""
    import torch
    import transformers as t

    torch.manual_seed(0)
    ids = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token else tokenizer.eos_token_id,
        max_position_embeddings=512,
    )
    if family in ("llama", "llama3"):
        model = t.LlamaForCausalLM(t.LlamaConfig(**SHAPE, **ids, head_dim=16, tie_word_embeddings=True))
    elif family == "mistral":
        model = t.MistralForCausalLM(t.MistralConfig(**SHAPE, **ids, head_dim=16, sliding_window=None))
    elif family == "gemma2":
        model = t.Gemma2ForCausalLM(gemma2_config(**ids))
    elif family == "olmo2":
        model = t.Olmo2ForCausalLM(t.Olmo2Config(**SHAPE, **ids))
    elif family == "qwen3moe":
        config = t.Qwen3MoeConfig(
            **SHAPE, **ids, head_dim=16, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2,
            tie_word_embeddings=True,
        )  # fmt: skip
        model = t.Qwen3MoeForCausalLM(config)
    elif family == "gemma3":
        config = t.Gemma3TextConfig(
            **SHAPE, **ids, head_dim=16, query_pre_attn_scalar=16, sliding_window=32,
            layer_types=["sliding_attention", "full_attention"],
        )  # fmt: skip
        model = t.Gemma3ForCausalLM(config)
    elif family == "phi3":
        model = t.Phi3ForCausalLM(t.Phi3Config(**SHAPE, **ids))
    else:
        model = t.Qwen3ForCausalLM(t.Qwen3Config(**SHAPE, **ids, head_dim=16, tie_word_embeddings=True))
    end = FAMILIES[family]["end"]
    if end:  # as the real models ship it: generation_config.json lists eos and the end of a turn
        model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(end)]
    return model


def gemma2_config(**ids):
    """Gemma 2 with a soft cap its attention scores reach: 50 in the real model, 0.5 here, where random
    weights give scores of about 1 (eager and sdpa then differ, test_gemma2_attention_is_computed_as_eager)."""
    import transformers as t

    return t.Gemma2Config(
        **SHAPE, **ids, head_dim=16, query_pre_attn_scalar=16, sliding_window=32, attn_logit_softcapping=0.5,
        initializer_range=0.5,
    )  # fmt: skip


@pytest.fixture(scope="module")
def family_dir(request, tmp_path_factory):
    """The family's tiny model and tokenizer saved to a folder, as a user's local model."""
    family = request.param
    folder = tmp_path_factory.mktemp(family) / "model"
    tokenizer = build_tokenizer(**FAMILIES[family])
    build_model(family, tokenizer).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return family, folder


@pytest.fixture(scope="module")
def family_run(family_dir, tmp_path_factory):
    """`python train_grpo.py --smoke --model-name DIR` in this process, recording every generate() call
    (GRPO's and the comparison's inputs and end tokens) and the input ids priming trains on."""
    import torch
    import trl
    from transformers.generation.utils import GenerationMixin

    from recipe import report

    family, folder = family_dir
    calls, priming_ids = [], []
    generate, sft_train = GenerationMixin.generate, trl.SFTTrainer.train

    def recording_generate(self, *args, **kwargs):
        config = kwargs.get("generation_config")
        ends = kwargs["eos_token_id"] if "eos_token_id" in kwargs else config.eos_token_id
        calls.append(
            {
                "grpo": config is not None,  # GRPO hands over its GenerationConfig; the comparison passes fields
                "ids": [[i for i, m in zip(ids, mask, strict=True) if m] for ids, mask in zip(
                    kwargs["input_ids"].tolist(), kwargs["attention_mask"].tolist(), strict=True)],
                "ends": sorted([ends] if isinstance(ends, int) else ends),
            }
        )  # fmt: skip
        return generate(self, *args, **kwargs)

    def recording_train(self, *args, **kwargs):
        priming_ids.extend(self.train_dataset["input_ids"])
        return sft_train(self, *args, **kwargs)

    output = tmp_path_factory.mktemp(f"{family}_out")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # matrices of 64 columns: a second thread only adds waiting (half the CPU time)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GenerationMixin, "generate", recording_generate)
        patch.setattr(trl.SFTTrainer, "train", recording_train)
        for plot in ("plot_comparison", "plot_training_curves"):  # seconds each, and tested elsewhere
            patch.setattr(report, plot, lambda *args, **kwargs: None)
        try:
            code = train_grpo.main(["--smoke", "--model-name", str(folder), "--output-dir", str(output), *SHORT])
        finally:
            torch.set_num_threads(threads)
    assert code == 0
    run_dir = output / "smoke"
    tokenizer = models.load_tokenizer(str(folder))
    return dict(
        family=family, folder=folder, run_dir=run_dir, calls=calls, priming_ids=priming_ids, tokenizer=tokenizer
    )


ALL = pytest.mark.parametrize("family_dir", list(FAMILIES), indirect=True)


@ALL
@pytest.mark.slow
def test_exactly_one_bos_on_every_path_for_families_that_use_one(family_run):
    tokenizer, spec = family_run["tokenizer"], FAMILIES[family_run["family"]]
    bos = tokenizer.bos_token_id
    expected = 1 if spec["adds_bos"] else 0
    grpo = [ids for call in family_run["calls"] if call["grpo"] for ids in call["ids"]]
    comparison = [ids for call in family_run["calls"] if not call["grpo"] for ids in call["ids"]]
    assert len(grpo) == 2 * 4 and len(comparison) == 2 * 4  # two GRPO steps x 4; base and trained x 4
    for path, rows in (("GRPO", grpo), ("comparison", comparison), ("priming", family_run["priming_ids"])):
        for ids in rows:
            assert ids.count(bos) == expected, (path, ids[:4])  # Qwen: bos is None, counted 0 times
            assert (ids[0] == bos) == bool(expected), (path, ids[:4])
    # the length filter counts the very tokens GRPO generates from
    for ids in grpo[::4]:
        problem = tokenizer.decode(ids).split(tokenizer.eos_token, 1)[1].removesuffix(rewards.REASONING_START)
        prompt = [{"role": "system", "content": rewards.SYSTEM_PROMPT}, {"role": "user", "content": problem}]
        assert prompt_lengths([prompt], tokenizer) == [len(ids)]


@ALL
@pytest.mark.slow
def test_training_and_comparison_stop_at_the_same_end_tokens(family_run):
    tokenizer, spec = family_run["tokenizer"], FAMILIES[family_run["family"]]
    expected = sorted(
        {tokenizer.eos_token_id} | ({tokenizer.convert_tokens_to_ids(spec["end"])} if spec["end"] else set())
    )
    assert {tuple(call["ends"]) for call in family_run["calls"] if call["grpo"]} == {tuple(expected)}
    assert {tuple(call["ends"]) for call in family_run["calls"] if not call["grpo"]} == {tuple(expected)}


@ALL
@pytest.mark.slow
def test_lora_wraps_every_projection_and_config_says_so(family_run):
    """config.json names the layers LoRA wrapped (Phi-3: its fused ones) and the trainable count, which is
    exactly r x (in + out) for each wrapped layer: nothing else trains."""
    import torch

    config = json.loads((family_run["run_dir"] / "config.json").read_text())
    lora = config["lora"]
    assert lora["wrapped_modules"] == {name: 2 for name in WRAPPED[family_run["family"]]}  # 2 layers each
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(family_run["folder"]))
    rank = config["lora_rank"]
    expected = sum(
        rank * (m.in_features + m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in WRAPPED[family_run["family"]]
    )
    expected += sum(  # a fused expert weight (experts, out, in): a LoRA pair per expert
        rank * p.shape[0] * (p.shape[1] + p.shape[2])
        for name, p in model.named_parameters()
        if ".".join(name.rsplit(".", 2)[-2:]) in WRAPPED[family_run["family"]]
    )
    assert lora["trainable_parameters"] == expected
    # config.json names what was wrapped, and what was asked apart from it
    assert sorted(config["lora_targets"].split(",")) == sorted(WRAPPED[family_run["family"]])
    assert config["lora_targets_asked"] == train_grpo.DEFAULTS["lora_targets"]
    assert lora["all_parameters"] == expected + sum(p.numel() for p in model.parameters())


@ALL
@pytest.mark.slow
def test_smoke_with_a_model_name_trains_that_model(family_run):
    config = json.loads((family_run["run_dir"] / "config.json").read_text())
    assert config["model_name"] == str(family_run["folder"])
    assert not (family_run["run_dir"] / "base_model").exists()  # the built-in tiny Qwen3 was never made
    report = json.loads((family_run["run_dir"] / "comparison.json").read_text())
    assert report["labels"] == ["base", "trained"]


def family_tokens(family_dir):
    """(tokenizer with the recipe's template, the model's generation config, the end tokens it declares)."""
    from transformers import GenerationConfig

    family, folder = family_dir
    tokenizer = models.load_tokenizer(str(folder))
    spec = FAMILIES[family]
    ends = [tokenizer.eos_token_id] + ([tokenizer.convert_tokens_to_ids(spec["end"])] if spec["end"] else [])
    return tokenizer, GenerationConfig.from_pretrained(str(folder)), ends


@ALL
def test_a_completion_that_ends_at_any_end_token_is_well_formed_in_training_and_comparison(family_dir):
    """The same ids as GRPO sees them (up to the end token, decoded without special tokens) and as the
    comparison cuts them (text after the end token, as generate() leaves it when another row runs on):
    both read as ended, in the exact format."""
    import types

    from recipe.evaluate import _completion

    tokenizer, generation_config, declared = family_tokens(family_dir)
    ends = models.end_token_ids(types.SimpleNamespace(generation_config=generation_config), tokenizer)
    answer = f"4 > 3{rewards.REASONING_END}{rewards.SOLUTION_START}4{rewards.SOLUTION_END}"
    for end in declared:
        ids = (
            tokenizer(answer, add_special_tokens=False)["input_ids"]
            + [end]
            + tokenizer("7 7", add_special_tokens=False)["input_ids"]
        )
        grpo_text = tokenizer.decode(ids[: ids.index(end) + 1], skip_special_tokens=True)
        assert rewards.has_exact_format(grpo_text), (tokenizer.convert_ids_to_tokens(end), grpo_text)
        completion = _completion(tokenizer, ids, ends)
        assert not completion["truncated"] and rewards.has_exact_format(completion["text"]), completion


@ALL
def test_vllm_comparison_gets_token_ids_with_one_bos_and_the_same_end_tokens(family_dir, monkeypatch):
    """Unsloth's fast_generate is vLLM's LLM.generate (unsloth/models/llama.py:3966, 2026.10.7): given text,
    vLLM would tokenize it with its own bos in front of the template's. A stand-in engine records what
    the comparison hands it."""
    import sys
    import types

    from recipe.evaluate import complete

    tokenizer, generation_config, declared = family_tokens(family_dir)
    seen = {}

    def fast_generate(prompts, sampling_params, lora_request):
        seen.update(prompts=prompts, params=sampling_params)
        done = types.SimpleNamespace(token_ids=[declared[-1]], text="", finish_reason="stop")
        return [types.SimpleNamespace(outputs=[done]) for _ in prompts]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=lambda **kwargs: kwargs))
    model = types.SimpleNamespace(
        vllm_engine=object(), fast_generate=fast_generate, generation_config=generation_config
    )
    prompt = [{"role": "system", "content": rewards.SYSTEM_PROMPT}, {"role": "user", "content": "Which is 1?"}]
    settings = dict(train_grpo.DEFAULTS, eval_max_new_tokens=8)
    [[completion]] = complete(model, tokenizer, [prompt], settings, "base", None)
    [ids] = [p["prompt_token_ids"] for p in seen["prompts"]]
    assert ids == tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"]
    bos = tokenizer.bos_token_id
    assert (ids[0] == bos and ids.count(bos) == 1) if FAMILIES[family_dir[0]]["adds_bos"] else bos not in ids
    assert sorted(seen["params"]["stop_token_ids"]) == sorted(declared)
    assert not completion["truncated"]


@pytest.mark.parametrize("family_dir", ["phi3"], indirect=True)
def test_lora_target_that_matches_nothing_is_refused(family_dir):
    import train_grpo as script

    _, folder = family_dir
    tokenizer = models.load_tokenizer(str(folder))
    settings = dict(script.DEFAULTS, model_name=str(folder), lora_rank=4, lora_alpha=8)
    with pytest.raises(SetupError) as error:  # named on the command line: Phi-3 has no q_proj
        models.load_model(
            dict(settings, lora_targets="q_proj,o_proj", explicit=["lora_targets"]), "transformers", tokenizer
        )
    assert "q_proj" in str(error.value) and "qkv_proj" in str(error.value) and "all-linear" in str(error.value)
    model, _ = models.load_model(dict(settings, lora_targets="all-linear"), "transformers", tokenizer)
    assert set(models.lora_coverage(model)["wrapped_modules"]) == set(WRAPPED["phi3"])


def test_bos_follows_what_the_tokenizer_does():
    """Only a tokenizer that adds its bos to plain text gets one from the template (Phi-3 declares <s>
    and does not add it; Qwen has none)."""
    for family, spec in FAMILIES.items():
        tokenizer = models.with_recipe_template(build_tokenizer(**spec))
        text = tokenizer.apply_chat_template([{"role": "user", "content": "1?"}], tokenize=False)
        assert models.adds_bos(tokenizer) == spec["adds_bos"], family
        assert text.startswith(spec["bos"] or "\0") == spec["adds_bos"], family


def test_explicit_transformers_backend_runs_on_cpu_and_says_the_cost(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.choose_backend("transformers", needs_gpu=True) == "transformers"
    assert "float32" in capsys.readouterr().out
    with pytest.raises(SetupError):
        models.choose_backend("auto", needs_gpu=True)


# ---------------------------------------------------------------- quick guards, one claim each (no training)
def folder_copy(folder, tmp_path, name, **generation):
    """A copy of a model folder whose generation_config.json carries `generation` as well."""
    import shutil

    copy = tmp_path / name
    shutil.copytree(folder, copy)
    path = copy / "generation_config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | generation))
    return copy


@pytest.mark.parametrize("family_dir", ["qwen3"], indirect=True)
def test_comparison_decodes_the_same_whatever_the_folder_generation_config_says(family_dir, tmp_path, capsys):
    """Greedy and sampled completions from a folder whose generation_config.json sets a repetition penalty,
    a temperature, a top_k and sampling equal those from the same folder without them; the model GRPO
    samples from keeps only the token ids of that config, and the load says what it left out."""
    from recipe.evaluate import complete

    _, folder = family_dir
    settings = dict(
        train_grpo.DEFAULTS, model_name=str(folder), lora_rank=4, lora_alpha=8, eval_max_new_tokens=12, seed=5
    )
    prompts = [
        [{"role": "system", "content": rewards.SYSTEM_PROMPT}, {"role": "user", "content": f"What is {n} + 2?"}]
        for n in range(3)
    ]
    odd = dict(repetition_penalty=1.8, temperature=0.3, top_k=2, do_sample=True, no_repeat_ngram_size=2)
    odd = folder_copy(folder, tmp_path, "odd", **odd)
    seen = {}
    for name, path in (("plain", folder), ("odd", odd)):
        tokenizer = models.load_tokenizer(str(path))
        model, tokenizer = models.load_model(dict(settings, model_name=str(path)), "transformers", tokenizer)
        greedy = complete(model, tokenizer, prompts, settings, "base", None)
        sampled = complete(model, tokenizer, prompts, settings, "base", None, samples=2)
        seen[name] = (greedy, sampled, model.generation_config.to_diff_dict())
    assert seen["odd"][0] == seen["plain"][0] and seen["odd"][1] == seen["plain"][1]
    assert {k for k in seen["odd"][2] if k != "transformers_version"} <= set(models.TOKEN_FIELDS)
    assert "repetition_penalty=1.8" in capsys.readouterr().out


def test_the_report_records_the_decoding_it_used():
    from recipe.evaluate import decoding
    from recipe.report import decoding_words

    settings = dict(train_grpo.DEFAULTS, eval_samples=4)
    report = {"settings": {"decoding": {"greedy": decoding(settings), "sampled": decoding(settings, 4)}}}
    words = decoding_words(report)
    assert "greedy decoding (repetition penalty 1.0)" in words
    assert f"temperature {settings['temperature']}, top_p {settings['top_p']}, min_p {settings['min_p']}" in words


@pytest.mark.parametrize("family_dir", ["gemma2"], indirect=True)
def test_gemma2_attention_is_computed_as_eager(family_dir):
    """The loaded model (fresh LoRA, which adds nothing yet) gives eager attention's logits; sdpa, which skips
    the soft cap, would not (checked here too, so the test can tell them apart)."""
    import torch
    from transformers import AutoModelForCausalLM

    _, folder = family_dir
    tokenizer = models.load_tokenizer(str(folder))
    settings = dict(train_grpo.DEFAULTS, model_name=str(folder), lora_rank=4, lora_alpha=8)
    model, _ = models.load_model(settings, "transformers", tokenizer)
    ids = torch.tensor([tokenizer("12 + 30 = 42, and 7 x 6 = 42 too", add_special_tokens=False)["input_ids"]])
    reference = {
        kind: AutoModelForCausalLM.from_pretrained(str(folder), attn_implementation=kind) for kind in ("eager", "sdpa")
    }
    with torch.no_grad():
        got = model(input_ids=ids).logits
        eager, sdpa = (reference[kind](input_ids=ids).logits for kind in ("eager", "sdpa"))
    assert (eager - sdpa).abs().max() > 1e-2  # the cap matters on this model
    torch.testing.assert_close(got, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family_dir", ["phi3"], indirect=True)
def test_check_refuses_targets_that_match_nothing_without_reading_weights(family_dir, tmp_path, monkeypatch, capsys):
    """--check on a folder with the config and tokenizer only (no weights at all), with loading weights
    forbidden: q_proj,v_proj on Phi-3 fails the check, its own fused names pass it."""
    import shutil

    from transformers import AutoModelForCausalLM

    _, folder = family_dir
    light = tmp_path / "phi3-no-weights"
    shutil.copytree(folder, light, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: pytest.fail("weights were loaded"))
    argv = ["--smoke", "--check", "--model-name", str(light), "--output-dir", str(tmp_path / "out")]
    assert train_grpo.main([*argv, "--lora-targets", "q_proj,v_proj"]) == 2
    captured = capsys.readouterr()
    assert "lora          PROBLEM: --lora-targets names q_proj, v_proj, which match no layer" in captured.out
    assert "qkv_proj" in captured.err
    assert train_grpo.main([*argv, "--lora-targets", "qkv_proj,o_proj"]) == 0
    assert "2 decoder: o_proj, qkv_proj" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("family_dir", ["phi3"], indirect=True)
def test_run_refuses_bad_targets_before_its_folder_exists(family_dir, tmp_path, monkeypatch):
    from recipe.settings import parse_settings
    from recipe.smoke import SMOKE_SETTINGS

    _, folder = family_dir
    monkeypatch.setattr(train_grpo, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    argv = ["--smoke", "--model-name", str(folder), "--output-dir", str(tmp_path / "out"), "--lora-targets", "q_proj"]
    with pytest.raises(SetupError, match="q_proj, which match no layer"):
        train_grpo.run(parse_settings(argv, train_grpo.DEFAULTS, SMOKE_SETTINGS))
    assert not (tmp_path / "out" / "smoke").exists()


@pytest.mark.parametrize("family_dir", ["qwen3"], indirect=True)
def test_a_refusal_after_the_folder_exists_does_not_leave_it_training(family_dir, tmp_path, monkeypatch):
    from recipe.settings import parse_settings
    from recipe.smoke import SMOKE_SETTINGS

    def refuse(*args, **kwargs):
        raise SetupError("out of GPU memory loading the model")

    _, folder = family_dir
    monkeypatch.setattr(train_grpo, "load_model", refuse)
    argv = ["--smoke", "--model-name", str(folder), "--output-dir", str(tmp_path / "out")]
    with pytest.raises(SetupError):
        train_grpo.run(parse_settings(argv, train_grpo.DEFAULTS, SMOKE_SETTINGS))
    status = json.loads((tmp_path / "out" / "smoke" / "status.json").read_text())
    assert status["status"] == "stopped" and "out of GPU memory" in status["reason"]


def skeleton(config):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


MOE_SHAPE = dict(SHAPE, head_dim=16, vocab_size=300, moe_intermediate_size=32, num_experts=4, num_experts_per_tok=2)


def test_moe_experts_train_by_default_and_can_be_named():
    """Qwen3-MoE keeps its experts in fused 3-D parameters: the default trains them with attention, and
    naming them is accepted; a name that matches nothing is refused with the expert names listed."""
    import transformers as t

    model = skeleton(t.Qwen3MoeConfig(**MOE_SHAPE))
    default = models.planned_lora(model, dict(train_grpo.DEFAULTS, lora_rank=4, lora_alpha=8))
    assert set(default["wrapped_modules"]) == {*EXPERTS, "k_proj", "o_proj", "q_proj", "v_proj"}
    named = dict(train_grpo.DEFAULTS, lora_rank=4, lora_alpha=8, explicit=["lora_targets"])
    model = skeleton(t.Qwen3MoeConfig(**MOE_SHAPE))
    chosen = models.planned_lora(model, dict(named, lora_targets="q_proj,gate_up_proj,experts.down_proj"))
    assert chosen["wrapped_modules"] == {"experts.down_proj": 2, "experts.gate_up_proj": 2, "q_proj": 2}
    with pytest.raises(SetupError, match="experts' fused weights: experts.down_proj, experts.gate_up_proj"):
        models.planned_lora(skeleton(t.Qwen3MoeConfig(**MOE_SHAPE)), dict(named, lora_targets="q_proj,w1"))


def test_a_hybrid_model_reports_lora_per_layer_type(capsys):
    """Qwen3-Next: 3 linear-attention layers, then 1 of full attention. Its default LoRA reaches both kinds,
    and the coverage says which projections each kind got."""
    import transformers as t

    config = t.Qwen3NextConfig(
        **dict(MOE_SHAPE, num_hidden_layers=4), shared_expert_intermediate_size=32, linear_num_value_heads=4,
        linear_num_key_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
    )  # fmt: skip
    plan = models.planned_lora(skeleton(config), dict(train_grpo.DEFAULTS, lora_rank=4, lora_alpha=8))
    layers = plan["per_layer_type"]
    assert layers["full_attention"]["layers"] == 1 and layers["linear_attention"]["layers"] == 3
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= set(layers["full_attention"]["wrapped"])
    assert {"in_proj_qkvz", "out_proj", *EXPERTS} <= set(layers["linear_attention"]["wrapped"])
    # PEFT reads the shared expert's gate/up/down_proj as the experts' fused weights: said, not hidden
    assert plan["not_wrapped"] == ["down_proj", "gate_proj", "up_proj"]
    assert plan["wrapped_modules"]["shared_expert_gate"] == 4
    models.print_coverage(plan, models.LoraTargets(plan["targets"], []))
    out = capsys.readouterr().out
    assert "3 linear_attention layer(s): " in out and "not wrapped anywhere, although targeted: down_proj" in out


def test_a_tokenizer_without_eos_is_refused_with_what_to_do():
    tokenizer = build_tokenizer(**FAMILIES["qwen3"])
    tokenizer.eos_token = None
    with pytest.raises(SetupError, match="has no end-of-sequence \\(eos\\) token") as error:
        models.with_recipe_template(tokenizer)
    assert "tokenizer_config.json" in str(error.value)


@pytest.mark.parametrize("family_dir", ["qwen3"], indirect=True)
def test_check_fails_a_local_folder_without_tokenizer_files(family_dir, tmp_path, capsys):
    import shutil

    _, folder = family_dir
    bare = tmp_path / "weights-only"
    shutil.copytree(folder, bare, ignore=shutil.ignore_patterns("tokenizer*", "special_tokens_map.json"))
    assert train_grpo.main(["--smoke", "--check", "--model-name", str(bare)]) == 2
    captured = capsys.readouterr()
    assert f"tokenizer     PROBLEM: the model folder {bare} has no tokenizer files" in captured.out
    assert "save_pretrained(DIR)" in captured.err


def test_a_local_folder_without_tokenizer_files_says_so(tmp_path):
    import transformers as t

    t.Qwen3Config(**SHAPE, head_dim=16, vocab_size=300).save_pretrained(str(tmp_path))
    with pytest.raises(SetupError) as error:
        models.load_tokenizer(str(tmp_path))
    message = str(error.value)
    assert f"the model folder {tmp_path} has no tokenizer files" in message and "save_pretrained(DIR)" in message
    assert "cannot reach the Hugging Face Hub" not in message
