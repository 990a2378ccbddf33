"""The build's inputs read into subjects: a Talk export (read, cleaned, grouped), a catalogue with its images
alone, or a synthetic Galaxy Zoo written to a temporary folder first.

Every input record is counted in the `Ledger` and every reject logged, so that the build's counts reconcile.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .options import BuildError, BuildOptions
from .privacy import Scrubber
from .records import Comment, Reject, Subject
from .stats import Ledger
from .writer import RejectLog

logger = logging.getLogger(__name__)


@dataclass
class BuildInputs:
    """The files a build reads, and a line for each in the card."""

    talk: Path | None = None
    tags: Path | None = None
    catalogue: Path | None = None
    images: Path | None = None
    catalogue_id_column: str | None = None  # the catalogue column holding Talk subject ids (None: auto)
    truth: Path | None = None  # synthetic builds: the generator's true answers (truth.jsonl)
    lines: list[str] = field(default_factory=list)


def given_inputs(options: BuildOptions) -> BuildInputs:
    """The files named by the options (a Talk export and/or a catalogue with images)."""
    talk, tags, catalogue, images = (Path(p) if p is not None else None
                                     for p in (options.talk, options.tags, options.catalogue, options.images))
    lines = [f"Talk export {Path(talk).name}"] if talk else []
    lines += [f"tags {Path(tags).name}"] if tags else []
    lines += [f"vote catalogue {Path(catalogue).name}"] if catalogue else []
    lines += [f"images {Path(images).name}/"] if images else ["images from the export's URLs"]
    return BuildInputs(talk=talk, tags=tags, catalogue=catalogue, images=images,
                       catalogue_id_column=options.catalogue_id_column, lines=lines)


def synthetic_inputs(options: BuildOptions, work_dir: Path) -> BuildInputs:
    """A synthetic Galaxy Zoo export of `options.synthetic` subjects, written to `work_dir`."""
    from .synthetic import write_synthetic_export

    logger.info("writing a synthetic Galaxy Zoo export of %d subjects to %s", options.synthetic, work_dir)
    paths = write_synthetic_export(options.synthetic, work_dir, seed=options.seed, size=options.image_size,
                                   workers=options.workers)["paths"]
    return BuildInputs(
        talk=Path(paths["comments"]), tags=Path(paths["tags"]), catalogue=Path(paths["catalogue"]),
        images=Path(paths["images"]), truth=Path(paths["truth"]),
        catalogue_id_column="subject_id",  # the synthetic catalogue also has iauname; Talk uses subject ids
        lines=[f"synthetic Galaxy Zoo: {options.synthetic} subjects, seed {options.seed}, "
               f"{options.image_size} px images"])


def ingest(talk: Path, tags: Path | None, rejects: RejectLog, ledger: Ledger, progress: bool,
           known: Scrubber | None = None) -> dict[str, Subject]:
    """Read, clean and group a Talk export; every record counted, every reject logged.

    known: the export's identities (`privacy.identities_from_export`), taken out of every comment and
    hashtag by the cleaner, before a summariser sees them.
    """
    from .clean import clean_comment
    from .grouping import group_by_subject
    from .talk import detect_talk_layout, read_talk_export

    detect_talk_layout(talk)  # a file without the needed columns fails here, before any progress output

    def cleaned() -> Iterator[Comment | Reject]:
        records = read_talk_export(talk, tags)
        for record in tqdm(records, desc="ingest + clean", unit="comment", disable=not progress):
            if isinstance(record, Reject):
                if record.kind != "tag":  # orphan tags are not input comments
                    ledger.input_records += 1
                rejects.add(record)
                continue
            ledger.input_records += 1
            yield clean_comment(record, known)

    clean_rejects: list[Reject] = []
    subjects = group_by_subject(cleaned(), clean_rejects)
    rejects.extend(clean_rejects)
    return subjects


def catalogue_subjects(options: BuildOptions, rejects: RejectLog, ledger: Ledger
                        ) -> tuple[dict[str, Subject], Callable[[str], str], str, tuple[float, float, float], list[str]]:
    """A catalogue-only build's subjects (one per catalogue row), its split rule (and the rule's
    description), split fractions and card input lines."""
    from .catalogue_input import read_catalogue_subjects, shared_splits

    try:
        source = read_catalogue_subjects(Path(options.catalogue), Path(options.images), options.catalogue_id_column)
    except (ValueError, ImportError) as error:
        raise BuildError(str(error)) from None
    rejects.extend(source.rejects)
    ledger.input_records = source.rows
    ledger.records_are_subjects = True
    test = shared_splits().TEST_PERCENT / 100
    kind = ("class-label catalogue (weak labels: votes and answer_fraction are null)" if source.schema == "class-label"
            else f"{source.schema} vote catalogue")
    lines = [f"{kind}: {source.rows} rows, id column {source.id_column}, "
             f"{len(source.subjects) - source.images_found} ids without an image; questions with votes: "
             f"{', '.join(source.questions)}"]
    logger.info("catalogue: %d subjects, %d with an image file", len(source.subjects), source.images_found)
    return source.subjects, source.split_of, source.split_rule, (round(1 - test, 6), 0.0, test), lines


def attach_truth(subjects: dict[str, Subject], truth_path: Path) -> None:
    """Synthetic subjects carry the generator's true answers (truth.jsonl), for evaluation against ground truth."""
    with truth_path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            subject = subjects.get(str(record["subject_id"]))
            if subject is not None:
                subject.truth = record["truth"]
