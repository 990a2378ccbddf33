"""Suite-wide setup: every test talks to a loopback Hub, never to huggingface.co.

At import time (pytest imports this file before any test module, hence before huggingface_hub,
transformers or datasets read their configuration) we pick a free port and point the HF stack at
`http://127.0.0.1:<port>`, with a fake token and a throw-away HF_HOME. The `hub_server` fixture
starts the server on that port the first time a test asks for it.

Fixtures:
    hub_server   session: the running `HubServer` (`.url`, `.requests_for(...)`, `.cut_next_download(...)`)
    hub_env      function: env vars a subprocess needs to reach the same server, with its own empty HF_HOME
    hub_repo_id  function: a fresh "local-user/<test-name>-<hex>" repo id
    shared_data  session: Path to the real Galaxy Zoo samples (../shared/data), skips when absent
    mix_arguments  function: the keyword arguments `real_recipe.run` gives `mix_builds`, every stage stubbed out
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # so tests can `from hub_server import ...`

from hub_server import USER_NAME, HubServer  # noqa: E402


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


for _module in ("huggingface_hub", "datasets", "transformers"):
    if _module in sys.modules:  # its endpoint constants would already point at huggingface.co
        raise RuntimeError(f"{_module} was imported before tests/conftest.py could set HF_ENDPOINT")

HUB_PORT = _free_port()
HUB_URL = f"http://127.0.0.1:{HUB_PORT}"
HF_TOKEN = "hf_local_test_token"  # fake: the loopback Hub only checks that a Bearer token is sent
_HF_HOME = tempfile.mkdtemp(prefix="gzllava-hf-home-")

# Variables that would send the stack elsewhere (another cache, offline mode) are dropped.
for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE",
              "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "HF_XET_CACHE", "HF_TOKEN_PATH", "HF_ASSETS_CACHE"):
    os.environ.pop(_name, None)
os.environ.update({
    "HF_ENDPOINT": HUB_URL,
    "HF_HUB_DISABLE_XET": "1",  # else uploads ask the Hub for a Xet write token
    "HF_TOKEN": HF_TOKEN,
    "HF_HOME": _HF_HOME,
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",  # gradio would otherwise post usage analytics from the app tests
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TOKENIZERS_PARALLELISM": "false",
})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: slower end-to-end tests of the real path")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HF_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def hub_server():
    """The loopback Hub that HF_ENDPOINT points at, running for the whole session."""
    with HubServer(port=HUB_PORT) as server:
        yield server


@pytest.fixture
def hub_env(hub_server: HubServer, tmp_path: Path) -> dict[str, str]:
    """Env vars for a subprocess to use the same Hub, with a fresh empty HF_HOME (nothing cached).

    Merge into a full environment: `subprocess.run(..., env={**os.environ, **hub_env})`.
    """
    hf_home = tmp_path / "subprocess-hf-home"
    hf_home.mkdir()
    return {
        "HF_ENDPOINT": hub_server.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_TOKEN": HF_TOKEN,
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture
def hub_repo_id(request: pytest.FixtureRequest) -> str:
    """A repo id no other test uses: the server lives for the whole session."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:60]
    return f"{USER_NAME}/{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real Galaxy Zoo samples next to the checkout (never copied into the repo)."""
    path = REPO_ROOT / ".." / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared Galaxy Zoo data not found at {path}")
    return path


@pytest.fixture
def mix_arguments(monkeypatch) -> dict:
    """The keyword arguments `real_recipe.run` gives `mix_builds`, with every stage and input check stubbed out."""
    from gzllava import real_recipe

    seen = {}
    monkeypatch.setattr(real_recipe, "check_inputs", lambda args: None)
    monkeypatch.setattr(real_recipe, "smollm2_checkpoint", lambda folder: folder)
    monkeypatch.setattr(real_recipe, "run_stages", lambda *a, **k: None)
    monkeypatch.setattr(real_recipe, "mix_builds", lambda *a, **k: seen.update(k))
    return seen
