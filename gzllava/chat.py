"""Terminal chat with GZ-LLaVA about one galaxy image, answers streamed as they are generated.

    python -m gzllava.chat --model outputs/demo/instruct/final --image galaxy.jpg
Commands inside the chat: `/image PATH` switches galaxy (and starts a new conversation), `/reset`
forgets the turns, `/tree` answers the Galaxy Zoo decision tree, `/quit` (or Ctrl-D) leaves.
Ctrl-C stops the answer being written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import TextIO

from gzllava.app import DEFAULT_MODEL
from gzllava.app.cli import SetupError, _check_model
from gzllava.app.engine import ChatEngine, Conversation, InputError, read_image

HELP = "commands: /image PATH (new galaxy), /reset, /tree, /help, /quit"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gzllava.chat", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"GZ-LLaVA folder or Hub id (default {DEFAULT_MODEL})")
    parser.add_argument("--image", required=True, help="galaxy image: JPEG, PNG or FITS")
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--device", default=None)
    parser.add_argument("--debug", action="store_true", help="full tracebacks")
    return parser.parse_args(argv)


def chat_loop(engine: ChatEngine, image, lines: Iterable[str], out: TextIO, temperature: float = 0.0,
              top_p: float = 1.0, max_new_tokens: int = 128) -> Conversation:
    """Read questions and commands from `lines`, write streamed answers to `out`; returns the last conversation."""
    conversation = Conversation(image)
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/help":
            print(HELP, file=out)
            continue
        if line == "/reset":
            conversation = Conversation(conversation.image)
            print("(conversation reset)", file=out)
            continue
        if line.startswith("/image"):
            path = line[len("/image"):].strip()
            try:
                conversation = Conversation(read_image(path))
            except (InputError, FileNotFoundError) as error:
                print(f"error: {error}", file=out)
                continue
            print(f"(now talking about {path})", file=out)
            continue
        if line == "/tree":
            from gzllava.app.tree import walk_tree
            from gzllava.evaluation.inference import LlavaEvaluator

            for step in walk_tree(LlavaEvaluator(engine.model, engine.processor, batch_size=1), conversation.image):
                print(f"{step.text} -> {step.label} (p={step.probability:.2f})", file=out, flush=True)
            continue
        if line.startswith("/"):
            print(f"unknown command {line.split()[0]!r}; {HELP}", file=out)
            continue
        printed = ""
        try:
            print("gz-llava> ", end="", file=out, flush=True)
            for text in engine.stream(conversation, line, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens):
                print(text[len(printed):], end="", file=out, flush=True)
                printed = text
        except InputError as error:
            print(f"\nerror: {error}", file=out)
            continue
        except KeyboardInterrupt:
            print(" [stopped]", end="", file=out)
        print(file=out, flush=True)
        conversation.turns.append((line, printed.strip()))
    return conversation


def _prompt_lines() -> Iterable[str]:
    while True:
        try:
            yield input("you> ")
        except EOFError:
            return


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        image = read_image(args.image)
        _check_model(args.model)
        engine = ChatEngine.from_pretrained(args.model, device=args.device)
    except (InputError, FileNotFoundError, SetupError, OSError, ValueError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Talking about {args.image} with {args.model}. {HELP}")
    chat_loop(engine, image, _prompt_lines() if interactive else sys.stdin, sys.stdout, args.temperature, args.top_p,
              args.max_new_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
