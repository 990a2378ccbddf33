"""Benchmark scripts are not a package: load one by file name, with benchmarks/ on sys.path for its own imports."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    def load(name: str):
        if name in sys.modules:
            return sys.modules[name]
        if str(BENCHMARKS) not in sys.path:
            sys.path.insert(0, str(BENCHMARKS))  # e.g. `from bench_model import ...`, as the scripts do
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module

    return load
