"""`push`: upload a built gz-talk-instruct folder as a Hub dataset repository (huggingface_hub's `upload_folder`)."""

from __future__ import annotations

import logging
from pathlib import Path

from .card import CARD_FILE, read_card_metadata
from .options import BuildError
from .provenance import __version__

logger = logging.getLogger(__name__)


def push(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload a built folder as a Hub dataset repository; the token comes from the environment (HF_TOKEN)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    card = folder / CARD_FILE
    if not card.is_file():
        raise BuildError(f"{folder} is not a built dataset folder: no README.md")
    try:
        read_card_metadata(card)
    except ValueError as error:
        raise BuildError(str(error)) from None
    if not (folder / "data").is_dir():
        raise BuildError(f"{folder} has no data/ folder: nothing to push")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                             commit_message=f"gz-talk-instruct build ({__version__})")
    logger.info("pushed %s to %s (%s)", folder, repo_id, getattr(info, "oid", ""))
    return repo_id
