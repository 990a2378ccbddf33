"""`python -m dataset_builder`: a synthetic build end to end, clear errors, the real Talk sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from dataset_builder.build import BuildOptions, build
from dataset_builder.card import read_card_metadata
from dataset_builder.cli import main
from dataset_builder.instructions import CONFIGS

REPO = Path(__file__).resolve().parents[2]
REAL_TALK = REPO / ".." / "shared" / "data" / "talk_weird_wonderful"


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dataset_builder", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_synthetic_build_from_the_command_line(tmp_path):
    out = tmp_path / "tmp"
    done = run_cli("build", "--synthetic", "40", "--output_dir", str(out), "--image-size", "64")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "input records" in done.stdout
    for config in CONFIGS:
        assert sorted(p.name for p in (out / "data" / config).glob("train-*.parquet")), config
    for name in ("README.md", "rejects.jsonl", "build_stats.json", "reports/report.md", "reports/report.json"):
        assert (out / name).is_file(), name
    assert list((out / "reports").glob("*.png"))
    stats = json.loads((out / "build_stats.json").read_text())
    assert stats["reconciled"] and stats["subjects_in_output"] > 20
    metadata = read_card_metadata(out / "README.md")
    assert [c["config_name"] for c in metadata["configs"]] == list(CONFIGS)
    dataset = datasets.load_dataset(str(out), "decision_tree")
    assert dataset["train"].num_rows == stats["rows"]["decision_tree"]["train"]
    assert dataset["train"][0]["source"] == "synthetic" and json.loads(dataset["train"][0]["truth"])

    report = run_cli("report", str(out))
    assert report.returncode == 0 and "decision_tree" in report.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build", "--talk", "no/such/comments.json", "--output_dir", "x"], "error: --talk: file not found: no/such/comments.json"),
        (["build", "--synthetic", "5", "--configs", "description,captions", "--output_dir", "x"], "unknown config(s) captions"),
        (["build", "--synthetic", "5", "--split", "0.9,0.2,0.1", "--output_dir", "x"], "add up to 1"),
        (["build", "--output_dir", "x"], "give exactly one input: --talk FILE, --catalogue FILE with --images DIR, or --synthetic N"),
        (["build", "--synthetic", "0", "--output_dir", "x"], "expected at least 1"),
        (["report", "no/such/folder"], "not a built dataset folder"),
        (["build", "--synthetic", "5", "--summariser", "openai", "--output_dir", "x"], "needs --summariser_model"),
    ],
)
def test_bad_arguments_give_one_clear_line_and_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_build_flags_are_the_fields_of_build_options(capsys):
    """One flag per BuildOptions field (HfArgumentParser): defaults come from the dataclass, and the dashed
    spellings of the underscore names still parse."""
    from dataset_builder.cli import build_options, make_parser
    from dataset_builder.options import BuildOptions

    args = make_parser().parse_args(["-q", "build", "--synthetic", "3", "--output_dir", "x", "--catalogue-id-column",
                                     "objid", "--summariser_model", "m", "--configs", "description,decision_tree",
                                     "--keep-near-duplicates"])
    options = build_options(args)
    default = BuildOptions()
    assert (options.output_dir, options.synthetic, options.catalogue_id_column, options.summariser_model) == (
        Path("x"), 3, "objid", "m")
    assert options.keep_near_duplicates and not options.progress and options.command.startswith("python -m dataset_builder")
    assert (options.seed, options.image_size, options.workers, options.shard_rows) == (
        default.seed, default.image_size, default.workers, default.shard_rows)
    options.check()
    assert options.configs == ["description", "decision_tree"] and options.near_duplicate_threshold is None
    assert capsys.readouterr().err == ""


def test_missing_column_names_the_file_and_the_column(tmp_path, capsys):
    talk = tmp_path / "comments.json"
    talk.write_text(json.dumps([{"comment_id": 1, "comment_focus_id": 5, "board_title": "Notes"}]))
    code = main(["build", "--talk", str(talk), "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and str(talk) in err and "comment_body" in err and len(err.splitlines()) == 1, err


def test_missing_catalogue_id_column_is_a_clear_error(tmp_path, capsys):
    from dataset_builder.synthetic import write_synthetic_export

    write_synthetic_export(3, tmp_path / "export", size=32)
    code = main(["-q", "build", "--talk", str(tmp_path / "export" / "comments.json"), "--catalogue",
                 str(tmp_path / "export" / "gz_decals_votes.csv"), "--catalogue-id-column", "objid",
                 "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "gz_decals_votes.csv" in err and "'objid' not found" in err, err


def test_a_rebuild_into_the_same_folder_replaces_the_old_shards(tmp_path):
    out = tmp_path / "out"
    build(BuildOptions(output_dir=out, synthetic=30, image_size=32, shard_rows=20, progress=False))
    second = build(BuildOptions(output_dir=out, synthetic=8, image_size=32, configs=["decision_tree"], progress=False))
    assert sorted(p.name for p in (out / "data").iterdir()) == ["decision_tree"]
    loaded = datasets.load_dataset(str(out), "decision_tree")
    assert sum(split.num_rows for split in loaded.values()) == second.rows


def test_two_worker_processes_write_the_same_dataset(tmp_path):
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        build(BuildOptions(output_dir=out, synthetic=24, image_size=48, workers=workers, chunk_size=5, progress=False))
        outputs.append({f.relative_to(out): pq.read_table(f).to_pylist() for f in sorted((out / "data").rglob("*.parquet"))})
    assert outputs[0] == outputs[1]


@pytest.mark.skipif(not (REAL_TALK / "comments_pseudonymized.json").is_file(), reason="real Talk sample absent")
def test_real_talk_sample_without_images_rejects_every_subject_explicitly(tmp_path, capsys):
    """The W&W export has no images: every subject is rejected "no image" for every config (all three
    are image + text), each comment is accounted for, and the report still describes the data."""
    out = tmp_path / "real"
    code = main(["-q", "build", "--talk", str(REAL_TALK / "comments_pseudonymized.json"),
                 "--tags", str(REAL_TALK / "tags_pseudonymized.json"), "--output_dir", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "wrote no rows" in captured.err and "no image" in captured.err
    stats = json.loads((out / "build_stats.json").read_text())
    records = json.loads((REAL_TALK / "comments_pseudonymized.json").read_text())
    assert stats["input_records"] == len(records) == stats["input_records_rejected"] and stats["reconciled"]
    assert stats["subjects"] > 3000 and stats["subjects_in_output"] == 0
    assert stats["rejects"]["top_reasons"]["no image"] > 3000
    assert json.loads((out / "reports" / "report.json").read_text())["coverage"]["with_image"] == 0
    assert not (out / "data").exists()


def test_compact_votes_behave_like_the_catalogue_dict():
    import pickle

    from dataset_builder.votes import CompactVotes
    from dataset_builder.decision_tree import reachable_questions, total_votes_columns, vote_columns

    index = {c: i for i, c in enumerate([*vote_columns(), *total_votes_columns()])}
    votes = {"smooth-or-featured_smooth_fraction": 0.1, "smooth-or-featured_featured-or-disk_fraction": 0.9,
             "smooth-or-featured_artifact_fraction": 0.0, "bar_yes_fraction": 0.3, "bar_total-votes": 12.0}
    compact = CompactVotes.from_dict(votes, index)
    assert isinstance(compact, CompactVotes) and compact == votes and len(compact) == 5
    assert compact.get("bar_no_fraction") is None and compact.get("bar_yes_fraction") == 0.3
    assert "bar_no_fraction" not in compact and "bar_yes_fraction" in compact
    assert [q.key for q in reachable_questions(compact)] == [q.key for q in reachable_questions(votes)]
    assert pickle.loads(pickle.dumps(compact)) == votes
    assert not CompactVotes.from_dict({}, index)
    assert CompactVotes.from_dict({"unknown_column": 1.0}, index) == {"unknown_column": 1.0}  # kept as a dict
