"""An answer the verifier cannot decide is neither rewarded nor punished: the four rewards all give None, and
TRL 1.15 then leaves that completion out of its group's baseline with advantage 0
(trl/trainer/grpo_trainer.py:2682-2736, `unscorable_mask`). Checked through the real GRPOTrainer on CPU: only
the generation is replaced, by completions written here, so the scoring and the advantages are TRL's own."""

import statistics

import pytest

import rewards
import verifier
from recipe.models import use_plain_logprobs_without_gpu
from recipe.smoke import build_smoke_model
from tests.conftest import SMOKE_PRIMER, SMOKE_TASK

UNDECIDABLE = "\\sqrt{2}^{\\pi}"  # stands for an answer math-verify runs out of budget on (made undecided below)
COMPLETIONS = [  # one group of four for the reference answer 34
    f"7*5-1<end_working_out><SOLUTION>{UNDECIDABLE}</SOLUTION>",  # well formed, undecided
    "7*5-1 = 34<end_working_out><SOLUTION>34</SOLUTION>",  # right
    "7*5 = 35<end_working_out><SOLUTION>35</SOLUTION>",  # wrong, near miss
    "no idea",  # no block at all
]


@pytest.fixture
def undecided_for_one_answer(monkeypatch):
    """verifier.answers_equal gives None for UNDECIDABLE, as when its CPU budget runs out, and the real
    verdict for everything else."""
    real = verifier.answers_equal

    def answers_equal(pred, gold):
        return None if isinstance(pred, str) and pred.strip() == UNDECIDABLE else real(pred, gold)

    monkeypatch.setattr(verifier, "answers_equal", answers_equal)


def test_an_undecided_answer_gets_none_from_every_reward(undecided_for_one_answer):
    answer = ["34"] * len(COMPLETIONS)
    scores = [f(completions=COMPLETIONS, answer=answer) for f in rewards.REWARD_FUNCS]
    assert [s[0] for s in scores] == [None] * len(rewards.REWARD_FUNCS)  # all four: TRL's unscorable
    assert all(s[i] is not None for s in scores for i in (1, 2, 3))  # the decided ones keep their scores
    # without a reference the format rewards still score; the answer rewards have nothing to judge
    no_reference = [f(completions=COMPLETIONS[:1], answer=[None]) for f in rewards.REWARD_FUNCS]
    assert no_reference == [[rewards.EXACT_FORMAT], [3 * rewards.TAG_ONCE], [None], [None]]


@pytest.fixture(scope="module")
def tiny_trainer(tmp_path_factory):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    folder = tmp_path_factory.mktemp("tiny")
    model_dir = build_smoke_model(folder / "model", [str(SMOKE_TASK), str(SMOKE_PRIMER)], seed=1)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    use_plain_logprobs_without_gpu()
    args = GRPOConfig(
        output_dir=str(folder / "out"), use_cpu=True, bf16=False, per_device_train_batch_size=4, num_generations=4,
        max_completion_length=48, report_to="none", logging_steps=1, max_steps=1,
    )  # fmt: skip
    prompt = [{"role": "user", "content": "What is 7*5-1?"}]
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        reward_funcs=rewards.REWARD_FUNCS,
        args=args,
        train_dataset=Dataset.from_list([{"prompt": prompt, "answer": "34"}] * 4),
        processing_class=tokenizer,
    )
    return trainer, tokenizer, prompt


def advantages_for(trainer, tokenizer, prompt, texts):
    """The advantages TRL computes for one group whose completions are `texts` (generation replaced)."""
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert [tokenizer.decode(i, skip_special_tokens=True) for i in ids] == texts  # the rewards see these texts
    trainer._generate_single_turn = lambda *args, **kwargs: (ids, None)
    trainer.model.train()
    output = trainer._generate_and_score_completions([{"prompt": prompt, "answer": "34"}] * len(texts))
    return output["advantages"].tolist()


def test_an_undecided_completion_has_advantage_zero_and_moves_no_baseline(tiny_trainer, undecided_for_one_answer):
    trainer, tokenizer, prompt = tiny_trainer
    advantages = advantages_for(trainer, tokenizer, prompt, COMPLETIONS)
    assert advantages[0] == 0.0
    # the others are ranked among themselves only: the baseline and the spread are those of the three decided
    totals = [sum(f(completions=[t], answer=["34"])[0] for f in rewards.REWARD_FUNCS) for t in COMPLETIONS[1:]]
    mean, std = statistics.mean(totals), statistics.stdev(totals)
    assert advantages[1:] == pytest.approx([(t - mean) / (std + 1e-4) for t in totals], rel=1e-5)
    assert advantages[1] > 0 > advantages[3]
