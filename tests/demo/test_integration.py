"""End to end, tiny: the demo (build -> tower -> align -> instruct -> evaluate) and the real-galaxy recipe on a
few real galaxies with SmolLM2-135M. Both are `integration` (a minute or more on 2 cores)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gzllava import demo, real_recipe


def _tower_weights_in(model_folder: Path, tower_folder: Path) -> None:
    """The GZ-LLaVA's vision tower is the trained GZ-CLIP tower, weight for weight."""
    tower = {k.removeprefix("vision_model."): v for k, v in load_file(str(tower_folder / "model.safetensors")).items()
             if k.startswith("vision_model.")}
    model = load_file(str(model_folder / "model.safetensors"))
    inside = {k.split("vision_tower.", 1)[1].removeprefix("vision_model."): v for k, v in model.items()
              if "vision_tower." in k}
    assert tower and set(tower) <= set(inside)
    for name, weight in tower.items():
        torch.testing.assert_close(inside[name].float(), weight.float(), rtol=0, atol=0)


@pytest.mark.integration
def test_demo_trains_a_tower_first_and_reports_accuracy(tmp_path, capsys):
    out = tmp_path / "demo"
    code = demo.main(["--data", str(tmp_path / "data"), "--out", str(out), "--subjects", "60", "--tower-epochs", "1",
                      "--instruct-epochs", "0.5", "--eval-samples", "16", "--real-samples", "0", "--no-describe",
                      "--quiet"])
    assert code == 0
    report = (out / "demo_report.md").read_text()
    assert "frozen random tower (earlier demo)" in report and "| **all** |" in report
    for stage in ("build", "tower", "align", "instruct", "eval", "eval-base"):
        assert (out / "logs" / f"{stage}.log").exists()
    _tower_weights_in(out / "align" / "final", out / "tower" / "final")
    assert "{'loss'" not in capsys.readouterr().out  # training logs go to the log files, not the terminal
    # A second run finds every stage done and only writes the report again.
    assert demo.main(["--data", str(tmp_path / "data"), "--out", str(out), "--real-samples", "0", "--no-describe",
                      "--quiet"]) == 0
    assert report.count("done earlier") == 0 and (out / "demo_report.md").read_text().count("done earlier") == 6


def _tiny_data_root(shared: Path, root: Path, n: int) -> Path:
    """The first n galaxies of each real sample (images linked, not copied)."""
    for sample, id_column, image_of in (("gz2_kaggle_5000", "GalaxyID", lambda r: f"images/{r['GalaxyID']}.jpg"),
                                        ("gz1_sdss", "objid", lambda r: r["image"])):
        with (shared / sample / "labels.csv").open(newline="") as f:
            reader = csv.DictReader(f)
            rows, fields = list(reader), reader.fieldnames
        # test, validation and train galaxies (gzllava.splits), so every side the stages use has rows
        from gzllava.splits import split_of

        side = lambda r: split_of(r[id_column], validation_percent=10)  # noqa: E731
        test = [r for r in rows if side(r) == "test"][: n // 3] + [r for r in rows if side(r) == "validation"][: n // 3]
        train = [r for r in rows if side(r) == "train"][: n - len(test)]
        (root / sample / "images").mkdir(parents=True)
        with (root / sample / "labels.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(test + train)
        for row in test + train:
            (root / sample / image_of(row)).symlink_to(shared / sample / image_of(row))
    shutil.copy(shared / "gz1_sdss" / "same_galaxy_in_gz2_kaggle_5000.csv", root / "gz1_sdss")
    return root


@pytest.mark.integration
def test_real_recipe_end_to_end_on_a_few_real_galaxies(shared_data, tmp_path, capsys):
    from gzllava.smollm2 import smollm2_gguf

    try:
        smollm2_gguf()
    except FileNotFoundError as error:
        pytest.skip(str(error))
    root = _tiny_data_root(shared_data, tmp_path / "shared", 24)
    out = tmp_path / "real"
    steps = "--max_steps 2 --save_strategy no --logging_steps 1"
    code = real_recipe.main([
        "--data-root", str(root), "--out", str(out), "--synthetic", "16", "--synthetic-size", "64",
        "--tower-args", "--max_steps 2 --eval_strategy no --save_strategy no", "--align-args", steps,
        "--instruct-args", steps, "--eval-samples", "6", "--describe", "1", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = (out / "real_report.md").read_text()
    for title in ("GZ2 Kaggle test split", "GZ1 test split", "synthetic test split", "described through"):
        assert title in report
    _tower_weights_in(out / "align" / "final", out / "tower" / "final")
    config = (out / "instruct" / "final" / "config.json").read_text()
    assert '"num_hidden_layers": 30' in config  # SmolLM2-135M, not a tiny random LM
