"""`python -m gzllava.tower.learning_curve`: one question's head figures against the training galaxies."""

from __future__ import annotations

import json

from PIL import Image

from gzllava.tower.learning_curve import main


def _tower(root, name, galaxies, seed, evaluations):
    """A train_clip.py-like folder: final/training_summary.json and eval-<side>/metrics.json per evaluation."""
    tower = root / name
    (tower / "final").mkdir(parents=True)
    (tower / "final" / "training_summary.json").write_text(json.dumps(
        {"train_galaxies": galaxies, "training_arguments": {"seed": seed}}))
    for side, (entropy, balanced) in evaluations.items():
        (tower / f"eval-{side}").mkdir()
        row = {"all": {"n": 100, "cross_entropy": entropy, "auc": 0.9},
               "confident": {"n": 80, "balanced_accuracy": balanced}}
        (tower / f"eval-{side}" / "metrics.json").write_text(json.dumps({"head": {"disk-edge-on": row}}))
    return str(tower)


def test_table_and_plot_hold_every_tower_and_evaluation(tmp_path, capsys):
    towers = [_tower(tmp_path, "small", 2000, 0, {"validation": (0.30, 0.90), "test": (0.31, 0.88)}),
              _tower(tmp_path, "full", 8000, 0, {"validation": (0.25, 0.95), "test": (0.27, 0.92)}),
              _tower(tmp_path, "full-s1", 8000, 1, {"validation": (0.26, 0.94), "test": (0.28, 0.91)})]
    assert main([*towers, "--output_dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "learning_curve_disk-edge-on.md").read_text()
    assert text == capsys.readouterr().out.rstrip("\n") + "\n"
    rows = [line for line in text.splitlines() if line.startswith("| test") or line.startswith("| validation")]
    assert len(rows) == 6
    assert rows[0].startswith("| test | 2000 | 0 | small | 0.310 (100) | 0.900 | 0.880 (80) |")
    assert rows[-1].startswith("| validation | 8000 | 1 | full-s1 | 0.260 (100)")
    image = Image.open(tmp_path / "out" / "learning_curve_disk-edge-on.png")
    assert image.width > image.height  # two evaluations side by side, two rows of panels


def test_a_folder_without_a_training_summary_or_evaluation_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty: no final/training_summary.json" in err[0]
    tower = _tower(tmp_path, "bare", 10, 0, {})
    assert main([tower, "--output_dir", str(tmp_path / "out")]) == 2
    assert "bare: no eval-*/metrics.json" in capsys.readouterr().err


def test_a_question_no_evaluation_reaches_is_named(tmp_path, capsys):
    tower = _tower(tmp_path, "t", 10, 0, {"validation": (0.3, 0.9)})
    assert main([tower, "--question", "bar", "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has head figures for the question 'bar'" in err[0]
    assert not (tmp_path / "out").exists()


def test_an_evaluation_that_does_not_reach_the_question_is_left_out(tmp_path):
    tower = _tower(tmp_path, "t", 10, 0, {"validation": (0.3, 0.9)})
    (tmp_path / "t" / "eval-gz1").mkdir()
    (tmp_path / "t" / "eval-gz1" / "metrics.json").write_text(json.dumps({"head": {"smooth-or-featured": {}}}))
    assert main([tower, "--output_dir", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "learning_curve_disk-edge-on.md").read_text()
    assert "| validation | 10 |" in text and "gz1" not in text


def test_a_metrics_file_that_is_not_json_is_named(tmp_path, capsys):
    tower = _tower(tmp_path, "t", 10, 0, {"validation": (0.3, 0.9)})
    (tmp_path / "t" / "eval-validation" / "metrics.json").write_text("{not json")
    assert main([tower, "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "eval-validation/metrics.json: not JSON" in err[0]
