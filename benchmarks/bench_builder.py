"""Throughput and memory of the gz-talk-instruct build's non-LLM stages, at hackathon scale.

1. Text stages. Writes a synthetic Talk export the size of the hackathon's (about 160k comments on
   100k subjects, Panoptes layout, with tags and a GZ DECaLS-style vote catalogue; the comment text
   comes from `dataset_builder.synthetic.talk`, so it has the hashtags, links, HTML, typos and
   mojibake of real Talk), then times `build()` on it in a fresh process: ingest + clean + group +
   votes + template summaries + instructions (3 configs) + curation + parquet shards + report +
   card. Images are not part of this pass: every subject gets the same tiny placeholder JPEG, so the
   parquet carries realistic row counts without gigabytes of pixels. Reference, same export, same
   run: `pandas.read_json` of comments.json + `str.lower()` of every body.
2. Images. Renders synthetic galaxies to JPEG files, then times the image stage (`fetch_images`:
   find, read, fully decode to verify) and the embedding of the bytes into parquet rows. Reference:
   PIL open + decode of the same files.

    OMP_NUM_THREADS=1 python benchmarks/bench_builder.py                       # 100k subjects
    OMP_NUM_THREADS=1 python benchmarks/bench_builder.py --subjects 20000 --images 200

The goal (issue): the full-size export through the non-LLM stages in < 2 min on 2 cores, < 2 GB.
Peak RSS is the build process's own (`resource.getrusage`), measured apart from the generator.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

# Thread counts in comments per subject given at least one: the synthetic Talk generator's own
# distribution (0-4 comments, p=[.25,.42,.2,.09,.04]) conditioned on >= 1, i.e. ~1.6 per subject.
COMMENTS_GIVEN_ANY = (1, 2, 3, 4)
COMMENTS_P = np.array([0.42, 0.2, 0.09, 0.04]) / 0.75


# --------------------------------------------------------------------------- the export
def _galaxy_text(job: tuple[int, int]) -> tuple[list[dict], list[dict], dict]:
    """One subject's Talk thread, tags and catalogue row, without rendering its image."""
    from dataset_builder.synthetic import subject_id_for
    from dataset_builder.synthetic.export import catalogue_columns
    from dataset_builder.synthetic.galaxy_sampler import sample_galaxy
    from dataset_builder.synthetic.talk import make_thread
    from dataset_builder.synthetic.votes import simulate_votes

    index, seed = job
    structure, volunteers, talk = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, index, 1]).spawn(3))
    params = sample_galaxy(structure)
    votes = simulate_votes(params, volunteers)
    subject_id = subject_id_for(index, seed)
    n_comments = int(talk.choice(COMMENTS_GIVEN_ANY, p=COMMENTS_P))
    comments, tags = make_thread(subject_id, params.truth(), 150.0, 2.0, talk, n_comments=n_comments)
    row = {"subject_id": subject_id, "iauname": f"J{index:012d}", "ra": "150.0", "dec": "2.0",
           "file_loc": f"images/{subject_id}.jpg"}
    for column in catalogue_columns()[5:]:
        value = votes.get(column, math.nan)
        row[column] = "" if math.isnan(value) else (f"{int(value)}" if column.endswith("_total-votes") else f"{value:.4f}")
    return comments, tags, row


def write_text_export(subjects: int, out: Path, seed: int = 0, workers: int = 2) -> dict:
    from dataset_builder.synthetic.export import catalogue_columns

    out.mkdir(parents=True, exist_ok=True)
    comments: list[dict] = []
    tags: list[dict] = []
    catalogue = out / "gz_decals_votes.csv"
    jobs = [(i, seed) for i in range(subjects)]
    with get_context("spawn").Pool(workers) as pool, catalogue.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=catalogue_columns())
        writer.writeheader()
        for thread, thread_tags, row in pool.imap(_galaxy_text, jobs, chunksize=500):
            comments += thread
            tags += thread_tags
            writer.writerow(row)
    (out / "comments.json").write_text(json.dumps(comments, ensure_ascii=False))
    (out / "tags.json").write_text(json.dumps(tags, ensure_ascii=False))
    return {"subjects": subjects, "comments": len(comments), "tags": len(tags)}


# ----------------------------------------------------------------------- the timed build
class PlaceholderImages:
    """The image store of the text pass: a tiny JPEG per subject (its id appended after the JPEG's end
    marker, so that no two subjects share an image and exact-duplicate removal sees distinct images)."""

    def __init__(self) -> None:
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (40, 40, 60)).save(buffer, "JPEG")
        self.jpeg = buffer.getvalue()

    def resolve(self, subject) -> str:
        return "placeholder"

    def load(self, subject) -> bytes:
        return self.jpeg + subject.subject_id.encode()


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


class TreeRssSampler(threading.Thread):
    """Peak resident memory of this process plus its worker processes, sampled every 0.2 s.

    (ru_maxrss of RUSAGE_CHILDREN would report the parent's size: a forked helper such as
    `git rev-parse` starts as a copy of it.)"""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kib = 0
        self.peak_main_kib = 0
        self._done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.2):
            main = _rss_kib(me)
            self.peak_main_kib = max(self.peak_main_kib, main)
            self.peak_kib = max(self.peak_kib, main + sum(_rss_kib(k) for k in _children(me)))

    def stop(self) -> None:
        self._done.set()
        self.join()


def timed_build(export: Path, out: Path, workers: int) -> dict:
    """Runs in its own process, so that the memory and CPU time measured are the build's alone."""
    from dataset_builder.build import BuildOptions, build

    options = BuildOptions(output_dir=out, talk=export / "comments.json", tags=export / "tags.json",
                           catalogue=export / "gz_decals_votes.csv", catalogue_id_column="subject_id",
                           progress=False, workers=workers)
    sampler = TreeRssSampler()
    sampler.start()
    start = time.perf_counter()
    result = build(options, image_store=PlaceholderImages())
    seconds = time.perf_counter() - start
    sampler.stop()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": seconds, "main_cpu_s": own.ru_utime + own.ru_stime,
            "workers_cpu_s": children.ru_utime + children.ru_stime,
            "peak_rss_mib": own.ru_maxrss / 1024, "tree_peak_rss_mib": sampler.peak_kib / 1024,
            "stats": result.stats, "rows": result.rows}


def reference_pass(export: Path) -> float:
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_json(export / "comments.json")
    lowered = frame["comment_body"].str.lower()
    assert len(lowered) == len(frame)
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- images
def image_pass(count: int, size: int, work: Path) -> dict:
    from PIL import Image

    from dataset_builder.decision_tree import vote_columns
    from dataset_builder.images import ImageStore, fetch_images
    from dataset_builder.instructions import rows_for
    from dataset_builder.records import Subject
    from dataset_builder.synthetic import generate_galaxy
    from dataset_builder.synthetic.export import encode_jpeg
    from dataset_builder.writer import DatasetWriter, row_features

    folder = work / "images"
    folder.mkdir(parents=True, exist_ok=True)
    galaxies = []
    for index in range(count):
        galaxy = generate_galaxy(index, seed=1, size=size)
        (folder / f"{galaxy.subject_id}.jpg").write_bytes(encode_jpeg(galaxy.image))
        galaxies.append(galaxy)
    mean_bytes = sum(p.stat().st_size for p in folder.iterdir()) / count

    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        with Image.open(path) as image:
            image.load()
    reference = time.perf_counter() - start

    subjects = {g.subject_id: Subject(g.subject_id, votes=g.votes, source="synthetic") for g in galaxies}
    with ImageStore(image_dir=folder) as store:
        start = time.perf_counter()
        rejects = fetch_images(subjects, store, workers=2)
        load = time.perf_counter() - start
    assert not rejects, rejects[:3]

    writer = DatasetWriter(work / "parquet", row_features(vote_columns()))
    start = time.perf_counter()
    for subject in subjects.values():
        for row in rows_for("decision_tree", subject, None)[0][:1]:  # one row per image
            writer.write("decision_tree", "train", row)
    writer.close()
    embed = time.perf_counter() - start
    return {"count": count, "size": size, "mean_jpeg_bytes": mean_bytes, "load_s": load, "embed_s": embed,
            "reference_s": reference}


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=300, help="images for the image pass (0: skip)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2,
                        help="processes: generating the export (not timed) and the build's --workers")
    parser.add_argument("--export-dir", type=Path, help="reuse/keep the generated export here")
    parser.add_argument("--timed-build", nargs=3, metavar=("EXPORT", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.timed_build:  # the child process
        export, out, workers = args.timed_build
        print(json.dumps(timed_build(Path(export), Path(out), int(workers))))
        return

    with tempfile.TemporaryDirectory(prefix="bench-builder-") as tmp:
        work = Path(tmp)
        export = args.export_dir or work / "export"
        if not (export / "comments.json").is_file():
            start = time.perf_counter()
            made = write_text_export(args.subjects, export, workers=args.workers)
            print(f"export: {made['comments']:,} comments, {made['tags']:,} tags on {made['subjects']:,} subjects "
                  f"(generated in {time.perf_counter() - start:.1f} s, not timed)")
        # The machine is shared: the load average says how much of the 2 cores the run really had.
        load_before = os.getloadavg()[0]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
        child = subprocess.run([sys.executable, __file__, "--timed-build", str(export), str(work / "out"),
                                str(args.workers)],
                               capture_output=True, text=True, env=env, check=False)
        if child.returncode != 0:
            sys.exit(f"timed build failed:\n{child.stderr[-4000:]}")
        build = json.loads(child.stdout.strip().splitlines()[-1])
        load_after = os.getloadavg()[0]
        reference = reference_pass(export)
        stats = build["stats"]
        subjects = stats["subjects"]
        print(f"\n## text stages ({stats['input_records']:,} comments, {subjects:,} subjects, {build['rows']:,} rows)")
        for stage, seconds in stats["seconds"].items():
            print(f"  {stage:28s} {seconds:8.2f} s")
        print(f"  build total (wall)            {build['seconds']:8.2f} s  -> {subjects / build['seconds']:,.0f} subjects/s, "
              f"{stats['input_records'] / build['seconds']:,.0f} comments/s")
        print(f"  1-min load average before/after the build: {load_before:.1f} / {load_after:.1f} (2 cores)")
        cpu = build["main_cpu_s"] + build["workers_cpu_s"]
        print(f"  CPU time                      {cpu:8.2f} s  (main {build['main_cpu_s']:.1f} s, workers "
              f"{build['workers_cpu_s']:.1f} s): on {args.workers} idle cores at least "
              f"{max(cpu / max(1, args.workers), build['main_cpu_s']):.0f} s wall")
        print(f"  peak RSS                      {build['tree_peak_rss_mib']:8.0f} MiB main + {args.workers} workers "
              f"(main alone {build['peak_rss_mib']:.0f} MiB)")
        print(f"  reference: pandas read_json + str.lower   {reference:.2f} s  (ratio build/reference "
              f"{build['seconds'] / reference:.1f}x)")
        print("  rows per config: " + ", ".join(f"{c} {sum(s.values()):,}" for c, s in stats["rows"].items()))
        print(f"  curation: {json.dumps(stats['curation']['rejected'])}")
        met = build["seconds"] < 120 and build["tree_peak_rss_mib"] < 2048
        print(f"  goal < 120 s wall and < 2048 MiB: {'met' if met else 'NOT met'}")

        if args.images:
            images = image_pass(args.images, args.image_size, work)
            n = images["count"]
            print(f"\n## images ({n} synthetic {images['size']} px JPEGs, mean {images['mean_jpeg_bytes'] / 1024:.1f} KiB)")
            print(f"  load + verify (fetch_images, 2 threads) {n / images['load_s']:8.0f} images/s")
            print(f"  embed into parquet rows (writer)        {n / images['embed_s']:8.0f} images/s")
            both = images["load_s"] + images["embed_s"]
            print(f"  both                                    {n / both:8.0f} images/s")
            print(f"  reference: PIL open + decode            {n / images['reference_s']:8.0f} images/s "
                  f"(ratio {both / images['reference_s']:.2f}x)")


if __name__ == "__main__":
    main()
