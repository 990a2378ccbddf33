"""GZ-LLaVA forward, generation, error messages, attention backends, gradient checkpointing, 4-bit loading."""

import pytest
import torch
from transformers import AutoModel, AutoModelForImageTextToText, BitsAndBytesConfig

from gzllava.tiny import tiny_model_and_processor, toy_galaxy
from processing_gzllava import chat_prompt
from modeling_gzllava import GZLlavaForConditionalGeneration, GZLlavaModel, GZLlavaResampler


@pytest.mark.parametrize("projector_type", ["linear", "mlp2x_gelu", "resampler"])
@pytest.mark.parametrize("vision", ["clip", "siglip"])
def test_forward_shapes_for_every_projector_and_tower(projector_type, vision):
    model, processor = tiny_model_and_processor(projector_type, vision=vision)
    inputs = processor(images=[toy_galaxy()], text=[chat_prompt(processor)], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    n_tokens = 4 if projector_type == "resampler" else 16  # 4 queries, or (32/8)^2 patches
    assert (inputs["input_ids"] == model.config.image_token_id).sum() == n_tokens
    # transformers >= 5.24: one projected feature tensor per image, (tokens per image, Dt)
    features = out.image_outputs.pooler_output
    assert len(features) == 1
    assert features[0].shape == (n_tokens, model.config.text_config.hidden_size)
    assert out.logits.shape == (*inputs["input_ids"].shape, model.config.text_config.vocab_size)


def test_resampler_output_has_a_fixed_number_of_tokens_whatever_the_patch_count():
    model, _ = tiny_model_and_processor("resampler", num_query_tokens=3)
    resampler = model.model.multi_modal_projector
    assert isinstance(resampler, GZLlavaResampler)
    for patches in (16, 576):
        features = torch.randn(2, patches, model.config.vision_config.hidden_size)  # (B, P, Dv)
        assert resampler(features).shape == (2, 3, model.config.text_config.hidden_size)  # (B, Q, Dt)


def test_several_images_in_one_sample(tiny_mlp):
    model, processor = tiny_mlp
    text = chat_prompt(processor, "Compare these two galaxies.", n_images=2)
    inputs = processor(images=[[toy_galaxy(1), toy_galaxy(2)]], text=[text], return_tensors="pt")
    assert inputs["pixel_values"].shape[0] == 2
    with torch.no_grad():
        out = model(**inputs)
    assert [f.shape[0] for f in out.image_outputs.pooler_output] == [16, 16]
    # The two images are different, so swapping them changes the output.
    swapped = processor(images=[[toy_galaxy(2), toy_galaxy(1)]], text=[text], return_tensors="pt")
    with torch.no_grad():
        assert not torch.allclose(out.logits[0, -1], model(**swapped).logits[0, -1])


def test_image_token_feature_mismatch_names_both_counts_and_the_cause(tiny_mlp, image):
    model, processor = tiny_mlp
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    ids = inputs["input_ids"]
    image_positions = (ids[0] == model.config.image_token_id).nonzero().flatten()
    truncated = ids[:, : image_positions[5]]  # as if max_length cut the sequence inside the image tokens
    with pytest.raises(ValueError, match=r"5 image tokens in the text, 16 image features.*truncated by max_length"):
        model(input_ids=truncated, pixel_values=inputs["pixel_values"])
    doubled = torch.cat([ids, ids], dim=1)  # two <image> expansions but one image
    with pytest.raises(ValueError, match=r"32 image tokens in the text, 16 image features.*image is missing"):
        model(input_ids=doubled, pixel_values=inputs["pixel_values"])


def test_batched_left_padded_generation_matches_one_by_one(tiny_mlp):
    model, processor = tiny_mlp
    processor.tokenizer.padding_side = "left"
    prompts = [chat_prompt(processor, "Describe this galaxy."), chat_prompt(processor, "Is there any sign of a bar feature through the centre?")]
    images = [toy_galaxy(3), toy_galaxy(4)]
    batch = processor(images=images, text=prompts, return_tensors="pt", padding=True)
    assert (batch["attention_mask"][:, 0] == 0).any(), "the shorter prompt must be left-padded"
    generated = model.generate(**batch, max_new_tokens=6, do_sample=False)[:, batch["input_ids"].shape[1]:]
    for row, (prompt, image) in enumerate(zip(prompts, images)):
        single = processor(images=[image], text=[prompt], return_tensors="pt")
        alone = model.generate(**single, max_new_tokens=6, do_sample=False)[:, single["input_ids"].shape[1]:]
        assert torch.equal(generated[row], alone[0])


def test_kv_cache_and_no_cache_greedy_decoding_agree(tiny_resampler, image):
    model, processor = tiny_resampler
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    cached = model.generate(**inputs, max_new_tokens=8, do_sample=False, use_cache=True)
    uncached = model.generate(**inputs, max_new_tokens=8, do_sample=False, use_cache=False)
    assert cached.shape[1] == inputs["input_ids"].shape[1] + 8
    assert torch.equal(cached, uncached)


def test_generation_never_writes_the_image_placeholder(tiny_mlp, image):
    model, processor = tiny_mlp
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    # Make <image> the most likely next token everywhere; generation must still avoid it.
    with torch.no_grad():
        model.lm_head.weight[model.config.image_token_id] += 50.0
    try:
        new = model.generate(**inputs, max_new_tokens=5, do_sample=False)[0, inputs["input_ids"].shape[1]:]
    finally:
        with torch.no_grad():
            model.lm_head.weight[model.config.image_token_id] -= 50.0
    assert model.config.image_token_id not in new.tolist()


def test_sdpa_and_eager_attention_give_the_same_logits(tmp_path, tiny_mlp, image):
    model, processor = tiny_mlp
    model.save_pretrained(tmp_path)
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    logits = {}
    for implementation in ("sdpa", "eager"):
        loaded = GZLlavaForConditionalGeneration.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert loaded.config.text_config._attn_implementation == implementation
        with torch.no_grad():
            logits[implementation] = loaded(**inputs).logits
    torch.testing.assert_close(logits["sdpa"], logits["eager"], rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("error:.*gradient_checkpointing.*:FutureWarning")  # transformers 5.24 renamed it
def test_gradient_checkpointing_gives_the_same_gradients(image):
    grads = {}
    for checkpointing in (False, True):
        model, processor = tiny_model_and_processor("resampler", seed=1)
        model.train()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            assert model.model.language_model.gradient_checkpointing
        inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
        model(**inputs, labels=inputs["input_ids"]).loss.backward()
        grads[checkpointing] = model.model.multi_modal_projector.linear_1.weight.grad.clone()
    torch.testing.assert_close(grads[False], grads[True])


def test_auto_classes_load_the_right_classes(tmp_path, tiny_mlp):
    model, _ = tiny_mlp
    model.save_pretrained(tmp_path)
    assert type(AutoModelForImageTextToText.from_pretrained(tmp_path)) is GZLlavaForConditionalGeneration
    base = AutoModel.from_pretrained(tmp_path)
    assert type(base) is GZLlavaModel
    torch.testing.assert_close(base.multi_modal_projector.linear_1.weight, model.model.multi_modal_projector.linear_1.weight)


def test_4bit_loading_keeps_vision_tower_projector_and_head_unquantised(tmp_path, tiny_mlp, image):
    bnb = pytest.importorskip("bitsandbytes")
    model, processor = tiny_mlp
    model.save_pretrained(tmp_path)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
        # Skip patterns match full module names from the start.
        llm_int8_skip_modules=["model.vision_tower", "model.multi_modal_projector", "lm_head"],
    )
    quantized = GZLlavaForConditionalGeneration.from_pretrained(tmp_path, quantization_config=quantization)
    kinds = {name: type(module).__name__ for name, module in quantized.named_modules()}
    assert kinds["model.language_model.layers.0.self_attn.q_proj"] == "Linear4bit"
    assert kinds["model.language_model.layers.1.mlp.down_proj"] == "Linear4bit"
    assert kinds["model.vision_tower.encoder.layers.0.self_attn.q_proj"] == "Linear"
    assert kinds["model.multi_modal_projector.linear_1"] == "Linear"
    assert kinds["lm_head"] == "Linear"
    assert not any(isinstance(m, bnb.nn.Linear4bit) for n, m in quantized.named_modules() if n.startswith("model.vision_tower"))
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    with torch.no_grad():
        reference, approx = model(**inputs).logits, quantized(**inputs).logits
    assert torch.isfinite(approx).all()
    # 4-bit weights change the numbers a little, not the picture.
    assert torch.nn.functional.cosine_similarity(reference.flatten(), approx.flatten(), dim=0) > 0.9


class _ForceToken:
    """A logits processor that makes `token_id` the only possible next token at the first decoding step."""

    def __init__(self, token_id: int, prompt_length: int):
        self.token_id, self.prompt_length = token_id, prompt_length

    def __call__(self, input_ids, scores):  # (B, S), (B, V) -> (B, V)
        if input_ids.shape[1] == self.prompt_length:
            forced = torch.full_like(scores, float("-inf"))
            forced[:, self.token_id] = 0.0
            return forced
        return scores


def test_a_generated_image_token_does_not_stop_generation_and_matches_stock_llava(tiny_mlp, image):
    """The missing-pixels check runs on the prompt only, as stock Llava decodes: later steps see no pixels by design."""
    from transformers import LogitsProcessorList

    from gzllava.llava_export import to_llava_model

    model, processor = tiny_mlp
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    length = inputs["input_ids"].shape[1]
    outputs = {}
    for name, candidate in (("gz", model), ("stock", to_llava_model(model).eval())):
        forcing = LogitsProcessorList([_ForceToken(model.config.image_token_id, length)])
        outputs[name] = candidate.generate(**inputs, max_new_tokens=4, do_sample=False, suppress_tokens=None,
                                           logits_processor=forcing)
    assert outputs["gz"][0, length].item() == model.config.image_token_id
    assert outputs["gz"].shape[1] == length + 4
    assert torch.equal(outputs["gz"], outputs["stock"])


def test_forward_signatures_are_llavas_and_computed_once(tiny_mlp):
    """`generate` inspects `forward` at every step for remote-code classes: the signature is precomputed."""
    import inspect

    from transformers import LlavaForConditionalGeneration, LlavaModel

    model, _ = tiny_mlp
    assert inspect.signature(model.forward) == inspect.signature(LlavaForConditionalGeneration.forward.__get__(model))
    assert inspect.signature(model.model.forward) == inspect.signature(LlavaModel.forward.__get__(model.model))
    for function in (type(model).forward, type(model.model).forward):
        assert isinstance(function.__dict__.get("__signature__"), inspect.Signature)  # inspect stops here


def test_project_classes_are_registered_for_saving_only(tmp_path, tiny_mlp):
    """Not remote code in this process (generate skips transformers' per-step check for it), yet saved as such."""
    model, _ = tiny_mlp
    assert not model.is_remote_code() and not model.model.is_remote_code()
    model.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "modeling_gzllava.py").is_file()
    assert not model.is_remote_code()


def test_a_static_cache_decoding_step_compiles_as_one_graph(tiny_mlp, image):
    """transformers compiles the decoding step of a static cache (on CUDA); the missing-pixels check must not branch
    on the cache's length there (a tensor), which broke that graph and synced the device at every token (found on an
    H200: ours 10% slower than stock Llava compiled). `fullgraph=True` makes a graph break an error; the eager
    backend traces without generating code, so this runs on a CPU in seconds."""
    import torch._dynamo
    from transformers import StaticCache

    model, processor = tiny_mlp
    inputs = processor(images=[image], text=[chat_prompt(processor)], return_tensors="pt")
    length = inputs["input_ids"].shape[1]
    cache = StaticCache(config=model.config, max_cache_len=length + 4)
    with torch.no_grad():
        prefill = model(**inputs, cache=cache, use_cache=True)
        token = prefill.logits[:, -1:].argmax(-1)  # (1, 1)
        position = torch.tensor([length])
        mask = torch.ones(1, length + 1, dtype=torch.long)
        torch._dynamo.reset()
        step = torch.compile(model, backend="eager", fullgraph=True)
        compiled = step(input_ids=token, attention_mask=mask, cache=cache, position_ids=position[None],
                        cache_position=position, use_cache=True).logits
    assert compiled.shape == (1, 1, model.config.text_config.vocab_size)
    # The same step through the stock class (same weights, a fresh cache after the same prefill) gives the same logits.
    from gzllava.llava_export import to_llava_model

    stock = to_llava_model(model).eval()
    stock_cache = StaticCache(config=model.config, max_cache_len=length + 4)
    with torch.no_grad():
        stock(**inputs, cache=stock_cache, use_cache=True)
        expected = stock(input_ids=token, attention_mask=mask, cache=stock_cache, position_ids=position[None],
                         cache_position=position, use_cache=True).logits
    torch.testing.assert_close(compiled, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("strategy", ["full", "default"])
def test_eight_view_features_turn_and_mirror_with_the_image(strategy):
    # vision_feature_views=8: the same 8 views whichever way the galaxy lies, so turning or mirroring the image only
    # moves its patch tokens on the grid, and leaves the CLS token (kept by "full") as it was.
    model, processor = tiny_model_and_processor(vision_feature_views=8, vision_feature_select_strategy=strategy)
    pixels = processor(images=[toy_galaxy()], text=[chat_prompt(processor)], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        def features(pixel_values):  # (1 + 16 or 16, Dt)
            return model.model.get_image_features(pixel_values).pooler_output[0]

        plain, turned, mirrored = features(pixels), features(torch.rot90(pixels, 1, (-2, -1))), features(pixels.flip(-1))
    cls = 1 if strategy == "full" else 0
    grid = plain[cls:].reshape(4, 4, -1)  # 32 px / patch 8: a 4 x 4 grid
    torch.testing.assert_close(turned[cls:].reshape(4, 4, -1), torch.rot90(grid, 1, (0, 1)))
    torch.testing.assert_close(mirrored[cls:].reshape(4, 4, -1), grid.flip(1))
    torch.testing.assert_close(turned[:cls], plain[:cls])
    # one view alone is not like that: the same tower without the views sees a turned image differently
    model.config.vision_feature_views = 1
    with torch.no_grad():
        one, one_turned = features(pixels), features(torch.rot90(pixels, 1, (-2, -1)))
    assert not torch.allclose(one_turned[cls:].reshape(4, 4, -1), torch.rot90(one[cls:].reshape(4, 4, -1), 1, (0, 1)),
                              atol=1e-4)


def test_eight_view_cls_feature_is_the_mean_of_the_views_cls_features():
    model, processor = tiny_model_and_processor("linear", vision_feature_views=8,
                                                vision_feature_select_strategy="full")
    pixels = processor(images=[toy_galaxy(3)], text=[chat_prompt(processor)], return_tensors="pt")["pixel_values"]
    views = [torch.rot90(pixels, k, (-2, -1)) for k in range(4)]
    views = [v for turned in views for v in (turned, turned.flip(-1))]
    with torch.no_grad():
        tower = model.model.vision_tower
        cls = torch.stack([tower(v, output_hidden_states=True).hidden_states[-2][0, 0] for v in views]).mean(0)  # (Dv,)
        expected = model.model.multi_modal_projector(cls)  # linear: the mean commutes with it
        got = model.model.get_image_features(pixels).pooler_output[0][0]
    torch.testing.assert_close(got, expected)


def test_eight_view_model_answers_and_survives_save_and_load(tmp_path):
    model, processor = tiny_model_and_processor(vision_feature_views=8)
    inputs = processor(images=[toy_galaxy()], text=[chat_prompt(processor)], return_tensors="pt")
    model.save_pretrained(tmp_path)
    loaded = GZLlavaForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.vision_feature_views == 8
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits)
        tokens = loaded.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert tokens.shape[1] == inputs["input_ids"].shape[1] + 3


def test_eight_views_need_square_images_and_a_count_of_one_or_eight():
    model, _ = tiny_model_and_processor(vision_feature_views=8)
    with pytest.raises(ValueError, match=r"vision_feature_views=8 .* square pixel_values, got \(32, 24\)"):
        model.model.get_image_features(torch.zeros(1, 3, 32, 24))
    config = model.config.to_dict()
    config["vision_feature_views"] = 4
    with pytest.raises(ValueError, match=r"invalid vision_feature_views=4; expected one of \(1, 8\)"):
        type(model.config).from_dict(config)
