"""`transformers` backend: any local causal LM, batched generation constrained to summary JSON.

The model is a local folder or Hub id (`AutoModelForCausalLM` / `AutoTokenizer`), or a GGUF file
inside such a folder (`gguf_file=`, dequantised by transformers on load). Prompts go through the
tokenizer's chat template, are left-padded and generated in batches, greedily by default.

Structure is enforced by constrained decoding, not by prompting: `json_constraint.py`'s
`SummaryJsonLogitsProcessor` masks every token that would leave the JSON grammar (fixed keys,
plain string values, a list of strings, the uncertainty enum), so even a random model writes
parseable JSON. `constrained=False` turns it off (then the output is parsed leniently and
rejected when it does not fit the schema).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList

from .base import GenerationRequest, Summariser
from .json_constraint import SummaryJsonGrammar, SummaryJsonLogitsProcessor, TokenTable

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = "You are a careful assistant that summarises Galaxy Zoo volunteers' comments as JSON."


class TransformersSummariser(Summariser):
    """Summaries from a local causal LM.

    model: folder or Hub id (nothing is downloaded when it is a local folder; set HF_HUB_OFFLINE=1
        to be sure). gguf_file: a GGUF file name inside `model`.
    max_new_tokens: generation budget; the constraint closes the JSON object within it.
    do_sample / temperature / repetition_penalty: as in `generate` (greedy by default).
    constrained: enforce the JSON grammar while decoding (default True).
    max_description_chars / max_feature_chars / max_features: limits the grammar enforces.
    """

    backend = "transformers"

    def __init__(
        self,
        cache_dir: Path | str | None = None,
        *,
        model: str | Path,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        max_new_tokens: int = 256,
        do_sample: bool = False,
        temperature: float = 1.0,
        repetition_penalty: float | None = None,
        constrained: bool = True,
        max_description_chars: int = 600,
        max_feature_chars: int = 60,
        max_features: int = 6,
        system_prompt: str | None = SYSTEM_PROMPT,
        trust_remote_code: bool = False,
        batch_size: int = 4,
        show_progress: bool = True,
    ) -> None:
        super().__init__(cache_dir, batch_size=batch_size, show_progress=show_progress)
        self.model = str(model) + (f"::{gguf_file}" if gguf_file else "")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        load_options: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file:
            load_options["gguf_file"] = gguf_file
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, **load_options)
            self.lm = AutoModelForCausalLM.from_pretrained(model, dtype=dtype or "auto", **load_options)
        except (OSError, ValueError) as error:
            # ValueError: a wrong path or id is bad input (the build CLI reports it as such).
            raise ValueError(f"could not load causal LM {self.model!r}: {error}") from error
        self.lm.to(self.device).eval()
        self.tokenizer.padding_side = "left"  # generation continues from the right end of every row
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_token_ids = self._eos_ids()
        self.generation = {
            "max_new_tokens": max_new_tokens,
            "do_sample": do_sample,
            **({"temperature": temperature} if do_sample else {}),
            **({"repetition_penalty": repetition_penalty} if repetition_penalty else {}),
        }
        self.constrained = constrained
        self.system_prompt = system_prompt
        self.grammar = (
            SummaryJsonGrammar(
                TokenTable(self.tokenizer, self.lm.config.get_text_config().vocab_size),
                max_description_chars=max_description_chars,
                max_feature_chars=max_feature_chars,
                max_features=max_features,
            )
            if constrained
            else None
        )
        limits = (max_description_chars, max_feature_chars, max_features) if constrained else None
        self.settings = {**self.generation, "constrained": constrained, "limits": limits, "system_prompt": system_prompt}

    def _eos_ids(self) -> list[int]:
        configured = self.lm.generation_config.eos_token_id
        ids = configured if isinstance(configured, list) else [configured] if configured is not None else []
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        if not ids:
            raise ValueError(f"model {self.model!r} has no end-of-sequence token: generation could not stop")
        return sorted(set(ids))

    def chat_text(self, prompt: str) -> str:
        """The prompt as the model's chat template lays it out, ready for the assistant's answer."""
        if not self.tokenizer.chat_template:
            return prompt + "\n"
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + [
            {"role": "user", "content": prompt}
        ]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    @torch.inference_mode()
    def _generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        texts = [self.chat_text(r.prompt) for r in requests]
        # The chat template already has the special tokens it needs.
        batch = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=not self.tokenizer.chat_template
        ).to(self.device)
        prompt_length = batch["input_ids"].shape[1]  # (batch, prompt_length), left-padded
        processors = LogitsProcessorList()
        if self.grammar is not None:
            processors.append(
                SummaryJsonLogitsProcessor(
                    self.grammar,
                    prompt_length=prompt_length,
                    max_new_tokens=self.generation["max_new_tokens"],
                    eos_token_ids=self.eos_token_ids,
                )
            )
        output = self.lm.generate(
            **batch,
            **self.generation,
            logits_processor=processors,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_token_ids,
        )
        new_tokens = output[:, prompt_length:].tolist()  # (batch, generated)
        if self.grammar is not None:
            return [self.grammar.replay(ids) for ids in new_tokens]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


def gguf_to_checkpoint(model: str | Path, gguf_file: str, output_dir: str | Path) -> Path:
    """Dequantise a GGUF causal LM once and save it as an ordinary safetensors checkpoint.

    Loading a GGUF file dequantises every tensor (about 15 s for SmolLM2-135M on CPU); a saved
    checkpoint loads in well under a second. The GGUF `quantization_config` is dropped: the weights
    are plain floats after dequantisation.
    """
    output_dir = Path(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
    quantised = AutoModelForCausalLM.from_pretrained(model, gguf_file=gguf_file)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(quantised)(config)
    missing, unexpected = plain.load_state_dict(quantised.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{gguf_file}: weights did not map onto {type(plain).__name__}: missing {missing}, unexpected {unexpected}")
    plain.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir
