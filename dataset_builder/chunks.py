"""The chunk loop of a build: subjects a chunk at a time through `ChunkPreparer` (in worker processes or
not), then curated and written in order by the main process, with every subject's comments reconciled.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence

from .curate import Curator
from .prepare import ChunkPreparer, PreparedChunk, init_worker, prepare_in_worker
from .records import Reject, Subject
from .stats import Ledger
from .writer import DatasetWriter, RejectLog


def chunks(items: Sequence[Subject], size: int) -> Iterator[list[Subject]]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def drop_subject(subject: Subject, causes: list[tuple[str, str]], rejects: RejectLog, ledger: Ledger) -> None:
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


def prepared_chunks(preparer: ChunkPreparer, chunks: Iterator[list[Subject]], processes: int) -> Iterator[PreparedChunk]:
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
    split_of: Callable[[str], str],
    curator: Curator,
    writer: DatasetWriter,
    rejects: RejectLog,
    ledger: Ledger,
) -> None:
    """Curate and write a prepared chunk's rows, in order; reconcile its subjects' comments.

    split_of: subject id -> split."""
    for stage, seconds in prepared.seconds.items():
        ledger.add_seconds(stage, seconds)
    causes: dict[str, list[tuple[str, str]]] = {item.subject_id: [] for item in prepared.subjects}
    for item in prepared.subjects:
        for category, reject in item.rejects:
            rejects.add(reject)
            causes[item.subject_id].append((category, reject.reason))
    kept_rows: Counter[str] = Counter()
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
            drop_subject(subject, causes[item.subject_id], rejects, ledger)
        # The image lived in the chunk's copy of the subject (now written); b"" tells the report it had one.
        subject.image_bytes = b"" if item.had_image else None
