"""One-line errors for the command-line tools (`train_sft.py`, `train_clip.py`, `evaluate_gzllava.py`).

Bad input (a missing file, an unknown key, inconsistent arguments) is reported as ONE line naming what is wrong,
with exit code 2; `--debug` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback


def one_line(err: BaseException) -> str:
    """The error's message on one line (a KeyError's message without its quotes)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


def report_input_error(program: str, err: BaseException, debug: bool) -> int:
    """Print `<program>: error: <message>` on stderr (the traceback first when `debug`); returns exit code 2."""
    if debug:
        traceback.print_exc()
    print(f"{program}: error: {one_line(err)}" + ("" if debug else " (--debug for the traceback)"), file=sys.stderr)
    return 2
