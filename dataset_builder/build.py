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
import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .card import DEFAULT_REPO_ID, dump_json, update_dataset_info, write_card
from .chunks import chunks, consume_chunk, prepared_chunks
from .curate import Curator, split_for
from .decision_tree import vote_columns
from .ingest import BuildInputs, attach_truth, catalogue_subjects, given_inputs, ingest, synthetic_inputs
from .options import BuildError, BuildOptions
from .prepare import TEXT_CONFIGS, ChunkPreparer, ImageStoreSpec
from .privacy import Scrubber, identities_from_export
from .provenance import Provenance, __version__, git_commit
from .push import push
from .report import write_report
from .scrub_outputs import finalise_outputs
from .staging import OutputFolderError, StagedFolder
from .stats import STATS_FILE, Ledger, StageTimer, build_stats, card_report, card_stats, check_reconciled, read_json
from .votes import attach_votes
from .writer import REJECTS_FILE, DatasetWriter, RejectLog, row_features

__all__ = ["BuildError", "BuildOptions", "BuildResult", "build"]  # options re-exported: `build(BuildOptions(...))`

logger = logging.getLogger(__name__)

REPORTS_DIR = "reports"


@dataclass
class BuildResult:
    """What a build wrote: the folder, its rows per config and split, the stats and where each file is."""

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


def build(options: BuildOptions, *, image_store: Any = None) -> BuildResult:
    """Run every stage and write the dataset folder `options.output_dir` (see the module docstring).

    The build is written into a sibling folder and swapped in only once complete (`staging.py`): a
    build that fails or is killed leaves the previous build in `out_dir` as it was.

    image_store: anything with ImageStore's `resolve(subject)` and `load(subject)` (default: an
        `ImageStore` over `--images` and the export's URLs); the benchmark passes a placeholder.
    """
    options.check()
    out_dir = Path(options.output_dir)
    staged = StagedFolder(out_dir)
    try:
        staged.check()
    except OutputFolderError as error:
        raise BuildError(str(error)) from None
    ledger = Ledger()
    started = time.perf_counter()
    split_of: Callable[[str], str] = partial(split_for, fractions=options.split)  # subject id -> split
    split_text: str | None = None  # the card's description of a catalogue-only build's split rule
    known: Scrubber | None = None  # Talk builds: the export's identities (privacy.py)
    split_fractions = tuple(options.split) if options.split is not None else None
    with ExitStack() as stack:
        work = stack.enter_context(staged).path  # everything is written here; `out_dir` is replaced at the end
        if options.synthetic is not None:
            work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gz-synthetic-")))
            with StageTimer(ledger, "synthetic"):
                inputs = synthetic_inputs(options, work_dir)
        else:
            inputs = given_inputs(options)

        # Rejects go to rejects.jsonl as they happen; the report also needs them (small records).
        rejects = RejectLog(work / REJECTS_FILE, keep=True)
        stack.callback(rejects.close)

        if options.catalogue_only:
            with StageTimer(ledger, "votes"):
                subjects, split_of, split_text, split_fractions, more = catalogue_subjects(options, rejects, ledger)
            inputs.lines += more
        else:
            with StageTimer(ledger, "ingest+clean+group"):
                # The export's logins and ids, read once: the cleaner removes them (a login named without
                # an "@" never reaches a summariser's prompt), and so does the last pass over every file.
                known = Scrubber(identities_from_export(inputs.talk, inputs.tags))
                subjects = ingest(inputs.talk, inputs.tags, rejects, ledger, options.progress, known)
        if inputs.truth is not None:
            for subject in subjects.values():
                subject.source = "synthetic"
            attach_truth(subjects, inputs.truth)
        if inputs.catalogue is not None and not options.catalogue_only:
            with StageTimer(ledger, "votes"):
                matched = attach_votes(subjects, Path(inputs.catalogue), rejects, inputs.catalogue_id_column)
            logger.info("votes for %d of %d subjects", matched, len(subjects))

        # The grouped subjects live until the end: move them out of the collector's way, so that the
        # row-building allocations below do not make every full collection walk 100k subjects again.
        gc.collect()
        gc.freeze()
        stack.callback(gc.unfreeze)
        images_from = image_store if image_store is not None else ImageStoreSpec(
            image_dir=Path(inputs.images) if inputs.images else None, cache_dir=options.image_cache,
            offline=options.offline or options.synthetic is not None or options.catalogue_only)
        # No validator in the curator: the summariser already ran validate_summary on exactly the summary
        # text against exactly summary_source_text (summarise.base); the other assistant turns are our
        # own templates over votes and tags. A second pass would double the slowest text stage.
        # Catalogue-only descriptions are templates over the votes: galaxies of one morphology share their
        # wording by design (different images), so only exact duplicates (same image and text) go.
        curator = Curator(near_duplicate_threshold=None if options.catalogue_only else options.near_duplicate_threshold)
        features = row_features(vote_columns())
        preparer = ChunkPreparer(options.configs, images_from, options.summariser_spec(), curator.fingerprinter,
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
        with tqdm(total=len(ordered), desc="images + summaries + instructions", unit="subject",
                  disable=not options.progress) as bar:
            for prepared in prepared_chunks(preparer, chunks(ordered, options.chunk_size), processes):
                with StageTimer(ledger, "curate+write"):
                    consume_chunk(prepared, subjects, split_of=split_of, curator=curator, writer=writer,
                                  rejects=rejects, ledger=ledger)
                bar.update(len(prepared.subjects))
        with StageTimer(ledger, "write"):
            split_counts = writer.close()

        with StageTimer(ledger, "report"):
            report = write_report(subjects, rejects.kept, work / REPORTS_DIR, title="gz-talk-instruct")
        stats = build_stats(ledger, rejects, curator, split_counts, len(subjects), time.perf_counter() - started)
        dump_json(stats, work / STATS_FILE)
        provenance = _provenance(options, inputs, split_fractions, summariser_model, split_text)
        card = write_card(work, split_counts, provenance, card_stats(stats),
                          card_report(read_json(work / REPORTS_DIR / "report.json")),
                          repo_id=options.push or DEFAULT_REPO_ID)
        rejects.close()  # flushed before the privacy pass reads it
        # last: scrub identities from every text written (scrub_outputs.py)
        stats["privacy"] = finalise_outputs(
            work, identity_sources=[inputs.talk, inputs.tags], identities=known.identities if known is not None else None,
            comments_scrubbed_at_ingest=known.redactions if known is not None else None)
        if any(name.startswith("data/") for name in stats["privacy"]["by_file"]):
            update_dataset_info(work)  # rewritten shards: the card's sizes (and so the datasets cache key) follow
        check_reconciled(stats)  # a build whose counts do not add up never replaces the previous one
        rejects.close()
        staged.commit()
    result = BuildResult(out_dir=out_dir, split_counts=split_counts, stats=stats, card=out_dir / card.relative_to(work),
                         rejects=out_dir / REJECTS_FILE, report=out_dir / report.relative_to(work) if report else None)
    if options.push:
        if result.rows == 0:
            raise BuildError(f"not pushing {out_dir}: the build has no rows (see {out_dir / REJECTS_FILE})")
        result.pushed_to = push(out_dir, options.push, private=options.private)
    return result


def _provenance(options: BuildOptions, inputs: BuildInputs, split_fractions: tuple[float, ...] | None,
                summariser_model: str | None, split_text: str | None) -> Provenance:
    return Provenance(
        inputs=inputs.lines,
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
