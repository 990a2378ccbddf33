"""The build: Talk export (or synthetic Galaxy Zoo) -> gz-talk-instruct Hub dataset folder.

    ingest -> clean -> group by subject -> votes -> [per chunk of subjects: images -> summarise ->
    instructions -> curate -> parquet shards] -> rejects.jsonl, reports/, README.md -> (push)

Comments and subjects (text) are held in memory once grouped: a Talk export of 160k comments on
100k subjects is about 1 GB with the duplicate indexes (benchmarks/README.md). Images, summaries and
rows are made a chunk of subjects at a time (`prepare.ChunkPreparer`; in `--workers N` processes for
the template summariser) and written straight to parquet shards, so image bytes and rows never
accumulate. The main process keeps what must see the rows in order: curation decisions and writers.

Nothing is lost silently: every input record of the Talk export ends either behind a row of the
dataset (its subject has at least one row) or in `rejects.jsonl` with a reason. A subject that gets
no row in any config (no image, no summary, every row curated away) hands each of its comments to
`rejects.jsonl` with the subject's reasons, and `build_stats.json` reconciles the counts.

Subjects without an image (the real Talk sample has none) are rejected for every config, with the
image store's reason ("missing: no image file ..."): all three configs are image + text.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .card import Provenance, dump_json, read_card_metadata, update_dataset_info, write_card
from .staging import OutputFolderError, StagedFolder
from .curate import DEFAULT_SPLIT_FRACTIONS, Curator, check_split_fractions, split_for
from .decision_tree import vote_columns
from .instructions import CONFIGS

CATALOGUE_CONFIGS = ("description", "decision_tree")  # a catalogue-only build has no comments to converse about
from .prepare import (
    TEXT_CONFIGS,
    ChunkPreparer,
    ImageStoreSpec,
    PreparedChunk,
    SummariserSpec,
    init_worker,
    prepare_in_worker,
)
from .privacy import Scrubber, finalise_outputs, identities_from_export
from .records import Comment, Reject, Subject
from .writer import REJECTS_FILE, DatasetWriter, RejectLog, row_features

logger = logging.getLogger(__name__)


def _builder_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gz-llava")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _builder_version()

REPORTS_DIR = "reports"
STATS_FILE = "build_stats.json"


class BuildError(Exception):
    """A problem with the build's inputs or options, worded for the command line (no traceback)."""


@dataclass
class BuildOptions:
    out_dir: Path
    # inputs: a Talk export, a vote catalogue + image folder alone (catalogue_input.py), or a synthetic
    # Galaxy Zoo of `synthetic` subjects
    talk: Path | None = None
    tags: Path | None = None
    catalogue: Path | None = None
    catalogue_id_column: str | None = None  # the catalogue column holding Talk subject ids (default: auto)
    images: Path | None = None
    image_cache: Path | None = None  # downloaded images are kept here (never fetched twice)
    synthetic: int | None = None
    seed: int = 0
    image_size: int = 128
    # stages
    summariser: str = "template"
    summariser_model: str | None = None
    base_url: str | None = None
    summary_cache: Path | None = None
    configs: Sequence[str] | None = None  # None: CONFIGS (CATALOGUE_CONFIGS for a catalogue-only build)
    split: Sequence[float] | None = None  # None: DEFAULT_SPLIT_FRACTIONS; catalogue-only: gzllava.splits
    near_duplicate_threshold: float | None = 0.85  # None: keep near duplicates
    offline: bool = False  # images: never download
    # output
    push: str | None = None
    private: bool = False
    workers: int = 1  # processes for images + summaries + rows (template summariser only)
    image_threads: int = 8  # threads fetching images (downloads are I/O bound)
    chunk_size: int = 256  # subjects whose images/rows are in memory at once, per process
    shard_rows: int = 5000
    progress: bool = True
    command: str | None = None  # recorded in the card

    @property
    def catalogue_only(self) -> bool:
        return self.talk is None and self.synthetic is None and self.catalogue is not None

    def check(self) -> None:
        if not self.catalogue_only and (self.talk is None) == (self.synthetic is None):
            raise BuildError("give exactly one input: --talk FILE, --catalogue FILE with --images DIR, or --synthetic N")
        if self.synthetic is not None and (self.catalogue is not None or self.images is not None):
            raise BuildError("--synthetic makes its own catalogue and images: drop --catalogue/--images")
        if self.catalogue_only:
            if self.images is None:
                raise BuildError("--catalogue without --talk builds from the catalogue and its images: give --images DIR")
            if self.configs is not None and "conversation" in self.configs:
                raise BuildError("--configs conversation needs Talk comments (--talk); a catalogue-only build makes "
                                 f"{', '.join(CATALOGUE_CONFIGS)}")
            if self.split is not None:
                raise BuildError("--split: a catalogue-only build uses the fixed real-galaxy split of gzllava/splits.py "
                                 "(train/test by galaxy id); drop --split")
        if self.configs is None:
            self.configs = CATALOGUE_CONFIGS if self.catalogue_only else CONFIGS
        if self.split is None and not self.catalogue_only:
            self.split = DEFAULT_SPLIT_FRACTIONS
        if self.synthetic is not None and self.synthetic < 1:
            raise BuildError(f"--synthetic {self.synthetic}: need at least 1 subject")
        for name in ("talk", "tags", "catalogue"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise BuildError(f"--{name}: file not found: {path}")
        if self.images is not None and not Path(self.images).is_dir():
            raise BuildError(f"--images: folder not found: {self.images}")
        unknown = [c for c in self.configs if c not in CONFIGS]
        if unknown or not self.configs:
            raise BuildError(f"unknown config(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(CONFIGS)}")
        try:
            if self.split is not None:
                self.split = check_split_fractions(self.split)
        except ValueError as error:
            raise BuildError(str(error)) from None
        uses_summaries = any(c in ("description", "conversation") for c in self.configs)
        if uses_summaries and self.summariser != "template" and not self.summariser_model:
            raise BuildError(f"--summariser {self.summariser} needs --summariser-model (a model id or local path)")
        if self.base_url is not None and self.summariser != "openai":
            raise BuildError("--base-url is for --summariser openai")
        if min(self.workers, self.image_threads, self.chunk_size, self.shard_rows) < 1:
            raise BuildError("--workers, --image-threads, --chunk-size and --shard-rows must be at least 1")
        if self.image_size < 16:
            raise BuildError(f"--image-size {self.image_size}: need at least 16 pixels")


@dataclass
class BuildResult:
    out_dir: Path
    split_counts: dict[str, dict[str, int]]
    stats: dict[str, Any]
    card: Path
    rejects: Path
    report: Path | None
    pushed_to: str | None = None

    @property
    def rows(self) -> int:
        return sum(sum(splits.values()) for splits in self.split_counts.values())


@dataclass
class _Ledger:
    """Counts that must reconcile: input records = comments behind rows + comment/row rejects."""

    input_records: int = 0
    comments_in_output: int = 0  # catalogue-only builds: catalogue rows behind rows (one per subject)
    records_are_subjects: bool = False  # catalogue-only: an input record is a catalogue row, not a comment
    subjects_in_output: int = 0
    subjects_dropped: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ helpers
def git_commit(path: Path = Path(__file__).resolve().parent) -> str | None:
    """The commit of the builder's checkout (provenance), or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _chunks(items: Sequence[Subject], size: int) -> Iterator[list[Subject]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class _Timer:
    def __init__(self, ledger: _Ledger, stage: str) -> None:
        self.ledger, self.stage = ledger, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        seconds = time.perf_counter() - self.start
        self.ledger.stage_seconds[self.stage] = round(self.ledger.stage_seconds.get(self.stage, 0.0) + seconds, 3)


# ------------------------------------------------------------------------------ the stages
def ingest(talk: Path, tags: Path | None, rejects: RejectLog, ledger: _Ledger, progress: bool,
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


class CompactVotes(Mapping[str, float]):
    """One subject's vote fractions, read-only: an array of floats over a column index that every
    subject shares (NaN: not in the catalogue).

    A dict of ~50 floats costs ~3.5 KB per subject, 340 MB for 100k subjects held through the whole
    build; this costs ~0.5 KB. It is a `Mapping`, which is all the readers (`.get`, truthiness) use.
    """

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: array) -> None:
        self._index = index
        self._values = values

    @classmethod
    def from_dict(cls, votes: Mapping[str, float], index: dict[str, int]) -> CompactVotes | dict[str, float]:
        if not set(votes) <= index.keys():
            return dict(votes)  # a column this index does not know: keep the dict
        values = array("d", [math.nan]) * len(index)
        for column, value in votes.items():
            values[index[column]] = value
        return cls(index, values)

    def __getitem__(self, column: str) -> float:
        value = self._values[self._index[column]]
        if value != value:
            raise KeyError(column)
        return value

    def get(self, column: str, default: Any = None) -> Any:
        position = self._index.get(column)
        if position is None:
            return default
        value = self._values[position]
        return default if value != value else value

    def __iter__(self) -> Iterator[str]:
        return (column for column, position in self._index.items() if self._values[position] == self._values[position])

    def __len__(self) -> int:
        return sum(1 for value in self._values if value == value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (CompactVotes, (self._index, self._values))

    def __repr__(self) -> str:
        return f"CompactVotes({dict(self)!r})"


def attach_votes(subjects: dict[str, Subject], catalogue: Path, rejects: RejectLog, id_column: str | None = None) -> int:
    """Vote fractions for the subjects whose id is in the catalogue's id column; returns how many matched."""
    from .catalogues import read_vote_catalogue
    from .decision_tree import total_votes_columns

    catalogue_rejects: list[Reject] = []
    schema, votes = read_vote_catalogue(catalogue, catalogue_rejects, keep_ids=set(subjects), id_column=id_column)
    rejects.extend(catalogue_rejects)
    index = {column: i for i, column in enumerate([*vote_columns(), *total_votes_columns()])}
    for subject_id, subject in subjects.items():
        if subject_id in votes:
            subject.votes = CompactVotes.from_dict(votes.pop(subject_id), index)  # type: ignore[assignment]
            subject.catalogue = schema
    return len(subjects) - sum(1 for s in subjects.values() if not s.votes)


def _summariser_spec(options: BuildOptions) -> SummariserSpec:
    kwargs: dict[str, Any] = {}
    if options.summary_cache is not None:
        kwargs["cache_dir"] = options.summary_cache
    if options.summariser_model is not None:
        kwargs["model"] = options.summariser_model
    if options.base_url is not None:
        kwargs["base_url"] = options.base_url
    return SummariserSpec(options.summariser, kwargs)


def _drop_subject(subject: Subject, causes: list[tuple[str, str]], rejects: RejectLog, ledger: _Ledger) -> None:
    """A subject with no row anywhere: each of its comments goes to the rejects with the causes.

    The reason starts with the causes' categories ("no image: ...", "summary rejected + decision_tree
    row rejected: ...") so that rejects count by cause, then says which subject and the details.
    """
    ledger.subjects_dropped += 1
    categories = " + ".join(dict.fromkeys(category for category, _ in causes)) or "no row"
    details = "; ".join(dict.fromkeys(detail for _, detail in causes))
    reason = f"{categories}: subject {subject.subject_id} has no row in any config ({details})"
    for comment in subject.comments:
        rejects.add(Reject("build", "comment", comment.comment_id, reason, comment.source))
    if ledger.records_are_subjects:  # the input record is the subject's catalogue row
        rejects.add(Reject("build", "subject", subject.subject_id, reason, subject.source))


def _prepared_chunks(preparer: ChunkPreparer, chunks: Iterator[list[Subject]], processes: int) -> Iterator[PreparedChunk]:
    """Prepared chunks in input order; with processes > 1 a pool works ahead by at most 2 chunks per
    process, so finished rows (with their images) never pile up when writing is the slower side."""
    if processes <= 1:
        for chunk in chunks:
            yield preparer(chunk)
        return
    from multiprocessing import get_context

    # spawn, not fork: the parent has threads (tqdm, HTTP clients) that fork would copy mid-state.
    with get_context("spawn").Pool(processes, initializer=init_worker, initargs=(preparer,)) as pool:
        window: deque = deque()
        for chunk in chunks:
            window.append(pool.apply_async(prepare_in_worker, (chunk,)))
            if len(window) >= 2 * processes:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()


def consume_chunk(
    prepared: PreparedChunk,
    subjects: dict[str, Subject],
    *,
    options: BuildOptions,
    curator: Curator,
    writer: DatasetWriter,
    rejects: RejectLog,
    ledger: _Ledger,
    split_rule: Callable[[str], str] | None = None,
) -> None:
    """Curate and write a prepared chunk's rows, in order; reconcile its subjects' comments.

    split_rule: subject id -> split (default: `split_for` at `options.split`)."""
    for stage, seconds in prepared.seconds.items():
        ledger.stage_seconds[stage] = round(ledger.stage_seconds.get(stage, 0.0) + seconds, 3)
    causes: dict[str, list[tuple[str, str]]] = {item.subject_id: [] for item in prepared.subjects}
    for item in prepared.subjects:
        for category, reject in item.rejects:
            rejects.add(reject)
            causes[item.subject_id].append((category, reject.reason))
    kept_rows: Counter[str] = Counter()
    split_of = split_rule or (lambda subject_id: split_for(subject_id, options.split))
    splits = {item.subject_id: split_of(item.subject_id) for item in prepared.subjects}
    for config, batch in prepared.batches.items():  # configs in build order; rows in subject order
        keep_by_split: dict[str, list[int]] = {}
        for index, (row_id, subject_id, fingerprint) in enumerate(
                zip(batch.row_ids, batch.subject_ids, batch.fingerprints)):
            reject = curator.decide(config, row_id, fingerprint, source=subjects[subject_id].source)
            if reject is not None:
                rejects.add(reject)
                causes[subject_id].append((f"{config} row rejected", reject.reason))
                continue
            keep_by_split.setdefault(splits[subject_id], []).append(index)
            kept_rows[subject_id] += 1
        for split, indices in keep_by_split.items():
            writer.write_table(config, split, batch.table.take(indices))
    for item in prepared.subjects:
        subject = subjects[item.subject_id]
        if kept_rows[item.subject_id]:
            ledger.subjects_in_output += 1
            ledger.comments_in_output += 1 if ledger.records_are_subjects else len(subject.comments)
        else:
            _drop_subject(subject, causes[item.subject_id], rejects, ledger)
        # The image lived in the chunk's copy of the subject (now written); b"" tells the report it had one.
        subject.image_bytes = b"" if item.had_image else None


# ----------------------------------------------------------------------------------- build
def _synthetic_inputs(options: BuildOptions, work_dir: Path) -> dict[str, Any]:
    from .synthetic import write_synthetic_export

    logger.info("writing a synthetic Galaxy Zoo export of %d subjects to %s", options.synthetic, work_dir)
    return write_synthetic_export(options.synthetic, work_dir, seed=options.seed, size=options.image_size,
                                  workers=options.workers)


def build(options: BuildOptions, *, image_store: Any = None) -> BuildResult:
    """Run every stage and write the dataset folder `options.out_dir` (see the module docstring).

    The build is written into a sibling folder and swapped in only once complete (`staging.py`): a
    build that fails or is killed leaves the previous build in `out_dir` as it was.

    image_store: anything with ImageStore's `resolve(subject)` and `load(subject)` (default: an
        `ImageStore` over `--images` and the export's URLs); the benchmark passes a placeholder.
    """
    options.check()
    out_dir = Path(options.out_dir)
    staged = StagedFolder(out_dir)
    try:
        staged.check()
    except OutputFolderError as error:
        raise BuildError(str(error)) from None
    ledger = _Ledger()
    started = time.perf_counter()
    split_rule: Callable[[str], str] | None = None
    split_text: str | None = None  # the card's description of split_rule
    known: Scrubber | None = None  # Talk builds: the export's identities (privacy.py)
    split_fractions = tuple(options.split) if options.split is not None else None
    with ExitStack() as stack:
        work = stack.enter_context(staged).path  # everything is written here; `out_dir` is replaced at the end
        if options.synthetic is not None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gz-synthetic-")))
            with _Timer(ledger, "synthetic"):
                export = _synthetic_inputs(options, work_dir)
            paths = export["paths"]
            talk, tags = Path(paths["comments"]), Path(paths["tags"])
            catalogue, images = Path(paths["catalogue"]), Path(paths["images"])
            catalogue_id_column = "subject_id"  # the synthetic catalogue also has iauname; Talk uses subject ids
            inputs = [f"synthetic Galaxy Zoo: {options.synthetic} subjects, seed {options.seed}, "
                      f"{options.image_size} px images"]
        else:
            talk, tags, catalogue, images = options.talk, options.tags, options.catalogue, options.images
            catalogue_id_column = options.catalogue_id_column
            inputs = [f"Talk export {Path(talk).name}"] if talk else []
            inputs += [f"tags {Path(tags).name}"] if tags else []
            inputs += [f"vote catalogue {Path(catalogue).name}"] if catalogue else []
            inputs += [f"images {Path(images).name}/"] if images else ["images from the export's URLs"]

        # Rejects go to rejects.jsonl as they happen; the report also needs them (small records).
        rejects = RejectLog(work / REJECTS_FILE, keep=True)
        stack.callback(rejects.close)

        if options.catalogue_only:
            with _Timer(ledger, "votes"):
                subjects, split_rule, split_text, split_fractions, more = _catalogue_subjects(options, rejects, ledger)
            inputs += more
        else:
            with _Timer(ledger, "ingest+clean+group"):
                # The export's logins and ids, read once: the cleaner removes them (a login named without
                # an "@" never reaches a summariser's prompt), and so does the last pass over every file.
                known = Scrubber(identities_from_export(talk, tags))
                subjects = ingest(Path(talk), Path(tags) if tags else None, rejects, ledger, options.progress, known)
        if options.synthetic is not None:
            for subject in subjects.values():
                subject.source = "synthetic"
            _attach_truth(subjects, Path(paths["truth"]))
        if catalogue is not None and not options.catalogue_only:
            with _Timer(ledger, "votes"):
                matched = attach_votes(subjects, Path(catalogue), rejects, catalogue_id_column)
            logger.info("votes for %d of %d subjects", matched, len(subjects))

        # The grouped subjects live until the end: move them out of the collector's way, so that the
        # row-building allocations below do not make every full collection walk 100k subjects again.
        gc.collect()
        gc.freeze()
        stack.callback(gc.unfreeze)
        images_from = image_store if image_store is not None else ImageStoreSpec(
            image_dir=Path(images) if images else None, cache_dir=options.image_cache,
            offline=options.offline or options.synthetic is not None or options.catalogue_only)
        # No validator in the curator: the summariser already ran validate_summary on exactly the summary
        # text against exactly summary_source_text (summarise.base); the other assistant turns are our
        # own templates over votes and tags. A second pass would double the slowest text stage.
        # Catalogue-only descriptions are templates over the votes: galaxies of one morphology share their
        # wording by design (different images), so only exact duplicates (same image and text) go.
        curator = Curator(near_duplicate_threshold=None if options.catalogue_only else options.near_duplicate_threshold)
        features = row_features(vote_columns())
        preparer = ChunkPreparer(options.configs, images_from, _summariser_spec(options), curator.fingerprinter,
                                 features.arrow_schema, options.image_threads)
        stack.callback(preparer.close)
        try:
            summariser_model = preparer.summariser_model  # opens the summariser: bad options fail here, early
        except (ValueError, TypeError) as error:
            raise BuildError(f"--summariser {options.summariser}: {error}") from None
        # Worker processes only for the template summariser: an LLM backend would load its model in
        # every process (and batches on its own device anyway).
        processes = options.workers if options.summariser == "template" else 1
        writer = DatasetWriter(work, features, max_rows=options.shard_rows)
        ordered = list(subjects.values())
        chunks = _chunks(ordered, options.chunk_size)
        with tqdm(total=len(ordered), desc="images + summaries + instructions", unit="subject",
                  disable=not options.progress) as bar:
            for prepared in _prepared_chunks(preparer, chunks, processes):
                with _Timer(ledger, "curate+write"):
                    consume_chunk(prepared, subjects, options=options, curator=curator, writer=writer,
                                  rejects=rejects, ledger=ledger, split_rule=split_rule)
                bar.update(len(prepared.subjects))
        with _Timer(ledger, "write"):
            split_counts = writer.close()

        from .report import write_report

        with _Timer(ledger, "report"):
            report = write_report(subjects, rejects.kept, work / REPORTS_DIR, title="gz-talk-instruct")
        stats = _stats(ledger, rejects, curator, split_counts, len(subjects), time.perf_counter() - started)
        dump_json(stats, work / STATS_FILE)
        report_stats = _read_json(work / REPORTS_DIR / "report.json")
        provenance = Provenance(
            inputs=inputs,
            synthetic=options.synthetic is not None,
            builder_version=__version__,
            commit=git_commit(),
            summariser=options.summariser,
            summariser_model=summariser_model if any(c in TEXT_CONFIGS for c in options.configs) else None,
            split_fractions=split_fractions,
            seed=options.seed if options.synthetic is not None else None,
            command=options.command,
            split_rule=split_text,
        )
        card = write_card(work, split_counts, provenance, _card_stats(stats), _card_report(report_stats),
                          repo_id=options.push or "org/gz-talk-instruct")
        rejects.close()  # flushed before the privacy pass reads it
        # last: scrub identities from every text written (privacy.py)
        stats["privacy"] = finalise_outputs(
            work, identity_sources=[talk, tags], identities=known.identities if known is not None else None,
            comments_scrubbed_at_ingest=known.redactions if known is not None else None)
        if any(name.startswith("data/") for name in stats["privacy"]["by_file"]):
            update_dataset_info(work)  # rewritten shards: the card's sizes (and so the datasets cache key) follow
        _check_reconciled(stats)  # a build whose counts do not add up never replaces the previous one
        rejects.close()
        staged.commit()
    result = BuildResult(out_dir=out_dir, split_counts=split_counts, stats=stats, card=out_dir / card.relative_to(work),
                         rejects=out_dir / REJECTS_FILE, report=out_dir / report.relative_to(work) if report else None)
    if options.push:
        if result.rows == 0:
            raise BuildError(f"not pushing {out_dir}: the build has no rows (see {out_dir / REJECTS_FILE})")
        result.pushed_to = push(out_dir, options.push, private=options.private)
    return result


def _catalogue_subjects(options: BuildOptions, rejects: RejectLog, ledger: _Ledger
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


def _attach_truth(subjects: dict[str, Subject], truth_path: Path) -> None:
    """Synthetic subjects carry the generator's true answers (truth.jsonl), for evaluation against ground truth."""
    with truth_path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            subject = subjects.get(str(record["subject_id"]))
            if subject is not None:
                subject.truth = record["truth"]


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _stats(ledger: _Ledger, rejects: RejectLog, curator: Curator, split_counts: dict[str, dict[str, int]],
           subjects: int, seconds: float) -> dict[str, Any]:
    if ledger.records_are_subjects:  # catalogue rows: rejected as rows ("votes") or as subjects without rows
        comment_rejects = rejects.by_stage_kind[("votes", "row")] + rejects.by_stage_kind[("build", "subject")]
    else:
        comment_rejects = rejects.count("comment") + sum(
            n for (stage, kind), n in rejects.by_stage_kind.items() if kind == "row" and stage == "ingest")
    return {
        "input_kind": "catalogue rows" if ledger.records_are_subjects else "comments",
        "input_records": ledger.input_records,
        "comments_in_output": ledger.comments_in_output,
        "input_records_rejected": comment_rejects,
        "reconciled": ledger.input_records == ledger.comments_in_output + comment_rejects,
        "subjects": subjects,
        "subjects_in_output": ledger.subjects_in_output,
        "subjects_dropped": ledger.subjects_dropped,
        "rows": {config: dict(splits) for config, splits in split_counts.items()},
        "curation": curator.stats.to_json(),
        "rejects": rejects.summary(),
        "seconds": {**ledger.stage_seconds, "total": round(seconds, 3)},
    }


def _card_stats(stats: dict[str, Any]) -> dict[str, Any]:
    keep = ("input_records", "comments_in_output", "input_records_rejected", "subjects", "subjects_in_output",
            "subjects_dropped")
    return {key: stats[key] for key in keep} | {"rejects": stats["rejects"]["by_stage_and_kind"]}


def _card_report(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("subjects", "comments", "comments_per_subject", "words_per_comment", "distinct_hashtags", "coverage")
    return {key: report[key] for key in keep if key in report}


def _check_reconciled(stats: dict[str, Any]) -> None:
    if not stats["reconciled"]:
        # A bug in the builder, not in the input: say so loudly rather than publish unexplained losses.
        raise RuntimeError(
            f"comment counts do not reconcile: {stats['input_records']} input records != "
            f"{stats['comments_in_output']} in the output + {stats['input_records_rejected']} rejected"
        )


# ------------------------------------------------------------------------------------ push
def push(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
    """Upload a built folder as a Hub dataset repository; the token comes from the environment (HF_TOKEN)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    card = folder / "README.md"
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


def command_line() -> str:
    return " ".join(shlex.quote(arg) for arg in ["python", "-m", "dataset_builder", *sys.argv[1:]])

