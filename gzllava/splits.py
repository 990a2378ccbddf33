"""The fixed train/test split of real Galaxy Zoo galaxies, shared by every tool that trains or measures on them.

A galaxy's side is a pure function of its id (no random state, no file order): SHA-256 of
``"gz-llava-split:<id>"``, first 8 bytes as an integer, ``% 100 < test_percent`` means test. GZ1 images of a
galaxy that is also in the GZ2 Kaggle sample (``gz1_sdss/same_galaxy_in_gz2_kaggle_5000.csv``) take the side
of their GZ2 twin, so one galaxy never sits on both sides.

Tune on ``train`` (hold out part of it for validation with ``validation_percent``), report on ``test``.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

TEST_PERCENT = 20
TWINS_FILE = "same_galaxy_in_gz2_kaggle_5000.csv"  # next to the GZ1 labels.csv (../shared/data/gz1_sdss)
VALIDATION_PERCENT = 10  # of the ids that are not test


def _bucket(galaxy_id, salt: str = "gz-llava-split") -> int:
    digest = hashlib.sha256(f"{salt}:{str(galaxy_id).strip()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def split_of(galaxy_id, test_percent: int = TEST_PERCENT, validation_percent: int = 0) -> str:
    """``"test"``, ``"validation"`` or ``"train"`` for one galaxy id (a GZ2 GalaxyID or a GZ1 objid)."""
    if not 0 <= test_percent <= 100 or not 0 <= validation_percent <= 100:
        raise ValueError(f"split percentages must be in [0, 100], got test={test_percent}, "
                         f"validation={validation_percent}")
    if _bucket(galaxy_id) < test_percent:
        return "test"
    if validation_percent and _bucket(galaxy_id, "gz-llava-validation") < validation_percent:
        return "validation"
    return "train"


def read_twins(path) -> dict[str, str]:
    """GZ1 objid -> GZ2 Kaggle GalaxyID from ``same_galaxy_in_gz2_kaggle_5000.csv`` ({} when the file is absent)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"gz1_objid", "kaggle_galaxyid"} - set(rows[0] if rows else {"gz1_objid", "kaggle_galaxyid"})
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected gz1_objid, kaggle_galaxyid")
    return {r["gz1_objid"].strip(): r["kaggle_galaxyid"].strip() for r in rows}


def gz1_split_of(objid, twins: dict[str, str], test_percent: int = TEST_PERCENT,
                 validation_percent: int = 0) -> str:
    """The side of a GZ1 image: its GZ2 twin's side when it has one, else its own."""
    key = str(objid).strip()
    return split_of(twins.get(key, key), test_percent, validation_percent)
