"""Run llama.cpp's `convert_hf_to_gguf.py` (text model only) in this process, once per out type.

    python -m gzllava.export._convert_lm CONVERTER_DIR LLAVA_DIR f16=out-f16.gguf [q8_0=out-q8_0.gguf ...]

One change to the converter's behaviour: a byte-level BPE tokenizer whose hash llama.cpp does not list (any tokenizer
trained here, e.g. the tiny test models') gets the `gpt-2` pre-tokenizer when its tokenizer.json says it splits exactly
like GPT-2 (`gzllava.export.checks.gpt2_style_pre_tokenizer`); every other unknown tokenizer still fails as upstream.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    converter, llava_dir, *outputs = argv
    sys.path.insert(0, converter)
    from gzllava.export.checks import gpt2_style_pre_tokenizer

    import convert_hf_to_gguf  # noqa: F401  (sets up gguf-py on sys.path as upstream does)
    from conversion.base import TextModel

    upstream = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self, tokenizer) -> str:
        try:
            return upstream(self, tokenizer)
        except NotImplementedError:
            if gpt2_style_pre_tokenizer(Path(self.dir_model) / "tokenizer.json"):
                return "gpt-2"
            raise

    TextModel.get_vocab_base_pre = get_vocab_base_pre
    for output in outputs:
        outtype, _, path = output.partition("=")
        sys.argv = ["convert_hf_to_gguf.py", llava_dir, "--outtype", outtype, "--outfile", path]
        convert_hf_to_gguf.main()


if __name__ == "__main__":
    main(sys.argv[1:])
