"""llama.cpp's own HF -> GGUF converter (`convert_hf_to_gguf.py`), taken from the llama-cpp-python sdist on PyPI.

llama-cpp-python's wheel does not ship the converter, but its sdist vendors the whole llama.cpp tree it was built
from. We fetch that sdist with pip (the version that is installed, so the converter and the runtime agree), keep only
`convert_hf_to_gguf.py`, `conversion/`, `gguf-py/` and `models/templates/`, and cache them under
`~/.cache/gzllava/llama.cpp-<version>` (or `$GZLLAVA_LLAMA_CPP_DIR`, or `--converter DIR` pointing at a llama.cpp
checkout). The conversion runs in a subprocess (`gzllava.export._convert_lm`) because the converter configures logging
and `sys.path` for itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from gzllava.export.errors import ExportError

KEEP = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "models/templates/")


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError as error:
        raise ExportError(
            "llama-cpp-python is not installed: `pip install -c constraints.txt llama-cpp-python` (it provides the "
            "runtime and, through its sdist, llama.cpp's GGUF converter)."
        ) from error


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gzllava" / f"llama.cpp-{llama_cpp_version()}"


def is_converter_dir(path: Path) -> bool:
    return (path / "convert_hf_to_gguf.py").is_file() and (path / "conversion" / "__init__.py").is_file()


def _extract(sdist: Path, target: Path) -> None:
    """Copy the converter files out of the sdist's `vendor/llama.cpp/` into `target` (atomically)."""
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/", 1)
                if len(parts) < 2 or not parts[1].startswith("vendor/llama.cpp/"):
                    continue
                relative = parts[1][len("vendor/llama.cpp/"):]
                if not (member.isfile() and any(relative == k or relative.startswith(k) for k in KEEP if k)):
                    continue
                member.name = relative
                tar.extract(member, staging, filter="data")
        if not is_converter_dir(staging):
            raise ExportError(f"{sdist.name} has no vendor/llama.cpp/convert_hf_to_gguf.py: cannot convert the language model.")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_converter(target: Path | None = None) -> Path:
    """Download the installed llama-cpp-python's sdist with pip and keep its converter in `target`."""
    target = target or default_cache_dir()
    version = llama_cpp_version()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gzllava-sdist-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                   f"llama-cpp-python=={version}", "-d", tmp]
        result = subprocess.run(command, capture_output=True, text=True)
        sdists = sorted(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if result.returncode != 0 or not sdists:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ExportError(
                f"could not fetch llama.cpp's converter (pip download llama-cpp-python=={version} from PyPI failed: "
                f"{last}); pass --converter DIR with a llama.cpp checkout, or set GZLLAVA_LLAMA_CPP_DIR."
            )
        _extract(sdists[0], target)
    return target


def find_converter(converter_dir: str | os.PathLike | None = None, fetch: bool = True) -> Path:
    """The folder holding llama.cpp's `convert_hf_to_gguf.py` (+ `conversion/`, `gguf-py/`): given, cached or fetched."""
    given = converter_dir or os.environ.get("GZLLAVA_LLAMA_CPP_DIR")
    if given:
        path = Path(given)
        if not is_converter_dir(path):
            raise ExportError(f"{path}: expected a llama.cpp tree with convert_hf_to_gguf.py and conversion/__init__.py.")
        return path
    cached = default_cache_dir()
    if is_converter_dir(cached):
        return cached
    if not fetch:
        raise ExportError(f"llama.cpp's converter is not cached at {cached}; run with network access to PyPI once.")
    return fetch_converter(cached)


def convert_language_model(converter: Path, llava_dir: Path, outputs: dict[str, Path]) -> None:
    """Run llama.cpp's converter on a llava-hf folder once per out type (`{"f16": path, ...}`): the text model only."""
    command = [sys.executable, "-m", "gzllava.export._convert_lm", str(converter), str(llava_dir)]
    for outtype, path in outputs.items():
        command += [f"{outtype}={path}"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        message = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
        raise ExportError(f"llama.cpp's convert_hf_to_gguf.py failed on {llava_dir}: {message}")
