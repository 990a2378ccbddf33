"""The demo's and the real-galaxy recipe's orchestration: stages skip when done, fail in one line, wire outputs to
inputs; the recipes parse with the trainers' own parsers; the mixed training set holds only train rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from gzllava import demo, real_recipe, recipe_mix
from gzllava.recipe_report import real_table, synthetic_table
from gzllava.stage_runner import REPO_ROOT, Stage, StageError, StageProgress, run_stage, run_stages, timing_table


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "child.py"
    path.write_text(body)
    return str(path)


def test_stage_runs_logs_and_is_skipped_once_done(tmp_path):
    done = tmp_path / "out" / "final" / "config.json"
    child = _script(tmp_path, (
        "import sys, pathlib\n"
        "for i in range(1, 4):\n"
        "    sys.stderr.write(f'\\r {i}/3 [00:0{i}<00:00]')\n"
        "print('training log line')\n"
        f"p = pathlib.Path({str(done)!r}); p.parent.mkdir(parents=True); p.write_text('{{}}')\n"))
    stage = run_stage(Stage("train", [child], done, "a model"), tmp_path / "logs", show_progress=False)
    log = (tmp_path / "logs" / "train.log").read_text()
    assert "training log line" in log and "3/3 [" in log
    assert stage.seconds is not None and not stage.skipped
    again = run_stage(Stage("train", [child, "--never-run"], done), tmp_path / "logs", show_progress=False)
    assert again.skipped and again.seconds is None
    assert "done earlier" in timing_table([again])


def test_failed_stage_is_one_line_naming_stage_exit_code_error_and_log(tmp_path):
    child = _script(tmp_path, "import sys\nprint('step 1')\nprint('ValueError: --images x: no such folder')\n"
                              "print('exiting')\nsys.exit(2)\n")
    later = Stage("later", [child], tmp_path / "later.json")
    with pytest.raises(StageError) as caught:
        run_stages([Stage("build", [child], tmp_path / "never.json"), later], tmp_path / "logs", show_progress=False)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message
    assert "stage build failed (exit 2)" in message and "--images x: no such folder" in message
    assert str(tmp_path / "logs" / "build.log") in message
    assert later.seconds is None  # the stages after a failure do not run


def test_an_interrupted_stage_does_not_leave_its_child_running(tmp_path, monkeypatch):
    """A KeyboardInterrupt (or a test timeout) while a stage runs kills the child instead of orphaning it."""
    import subprocess

    from gzllava import stage_runner

    child = _script(tmp_path, "import sys, time\nprint(' 1/10 [', flush=True)\ntime.sleep(120)\n")
    started = []

    class Recording(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    class Interrupting(stage_runner.tqdm):
        def refresh(self, *args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(stage_runner.subprocess, "Popen", Recording)
    monkeypatch.setattr(stage_runner, "tqdm", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_stage(Stage("align", [child], tmp_path / "never.json"), tmp_path / "logs", show_progress=False)
    assert len(started) == 1 and started[0].poll() is not None  # killed and reaped, not sleeping on


def test_stage_that_exits_0_without_its_output_is_an_error(tmp_path):
    child = _script(tmp_path, "print('nothing written')\n")
    with pytest.raises(StageError, match="exited 0 but did not write"):
        run_stage(Stage("tower", [child], tmp_path / "final" / "config.json"), tmp_path / "logs", show_progress=False)


def test_demo_stages_chain_tower_align_instruct_and_evaluate_on_test(tmp_path):
    real = tmp_path / "shared"
    (real / "gz2_kaggle_5000").mkdir(parents=True)
    (real / "gz2_kaggle_5000" / "labels.csv").write_text("GalaxyID\n")
    args = demo.parse_args(["--out", str(tmp_path / "out"), "--data", str(tmp_path / "data"), "--real-data", str(real)])
    stages = {s.name: s for s in demo.demo_stages(args)}
    assert list(stages) == ["build", "tower", "align", "instruct", "eval", "eval-base", "sim2real"]
    option = lambda stage, name: stage.command[stage.command.index(name) + 1]  # noqa: E731
    assert stages["tower"].command[0] == "train_clip.py"
    assert option(stages["align"], "--vision_model_name_or_path") == str(stages["tower"].done.parent)
    assert option(stages["instruct"], "--model_name_or_path") == str(stages["align"].done.parent)
    assert option(stages["eval"], "--model_name_or_path") == str(stages["instruct"].done.parent)
    assert option(stages["eval-base"], "--model_name_or_path") == str(stages["align"].done.parent)
    assert option(stages["sim2real"], "--split") == "test" and option(stages["eval"], "--split") == "test"
    without_real = demo.parse_args(["--out", str(tmp_path / "out"), "--real-data", str(tmp_path / "absent")])
    assert "sim2real" not in [s.name for s in demo.demo_stages(without_real)]


def test_real_recipe_stages_chain_and_use_the_test_split(tmp_path):
    args = real_recipe.parse_args(["--out", str(tmp_path / "out"), "--data-root", str(tmp_path),
                                   "--align-args", "--max_steps 3", "--lm", str(tmp_path / "lm")])
    args.lm = tmp_path / "lm"
    stages = {s.name: s for s in real_recipe.recipe_stages(args)}
    assert list(stages) == ["build-gz2", "build-gz1", "build-synthetic", "build-synthetic-tower", "tower", "align",
                            "instruct", "eval-gz2", "eval-gz2-split", "eval-gz2-validation", "eval-gz1",
                            "eval-gz1-validation", "eval-synthetic"]
    option = lambda stage, name: stage.command[stage.command.index(name) + 1]  # noqa: E731
    assert option(stages["align"], "--vision_model_name_or_path") == str(stages["tower"].done.parent)
    assert option(stages["align"], "--text_model_name_or_path") == str(tmp_path / "lm")
    assert stages["align"].command[-2:] == ["--max_steps", "3"]
    # the CPU tower learns from the three builds' descriptions (and votes), the synthetic one larger than the mix's;
    # a votes-only recipe reads the catalogue
    assert option(stages["tower"], "--dataset_name") == ",".join(
        str(stages[f"build-{name}"].done.parent) for name in ("gz2", "gz1", "synthetic-tower"))
    assert option(stages["build-synthetic-tower"], "--synthetic") == str(real_recipe.TOWER_SYNTHETIC)
    assert option(stages["build-synthetic"], "--synthetic") == "1500"
    votes_only = real_recipe.parse_args(["--out", str(tmp_path / "out"), "--data-root", str(tmp_path),
                                         "--tower-recipe", "recipes/gz2_real_clip.yaml"])
    tower = next(s for s in real_recipe.recipe_stages(votes_only) if s.name == "tower")
    assert option(tower, "--dataset_name") == str(tmp_path / "gz2_kaggle_5000")
    assert "build-synthetic-tower" not in [s.name for s in real_recipe.recipe_stages(votes_only)]
    assert option(stages["instruct"], "--model_name_or_path") == str(stages["align"].done.parent)
    assert "--validation_twins" not in stages["tower"].command  # no twins file under this --data-root
    (tmp_path / "gz1_sdss").mkdir()
    (tmp_path / "gz1_sdss" / "same_galaxy_in_gz2_kaggle_5000.csv").write_text("gz1_objid,kaggle_galaxyid\n58,1001\n")
    tower = next(s for s in real_recipe.recipe_stages(args) if s.name == "tower")
    assert option(tower, "--validation_twins") == str(tmp_path / "gz1_sdss" / "same_galaxy_in_gz2_kaggle_5000.csv")
    # the synthetic split answers what the GZ2 file cannot: its evaluation scores only those questions
    assert option(stages["eval-synthetic"], "--questions") == ",".join(real_recipe.SYNTHETIC_QUESTIONS)
    assert "bar" in real_recipe.SYNTHETIC_QUESTIONS and "has-spiral-arms" in real_recipe.SYNTHETIC_QUESTIONS
    assert "--questions" not in stages["eval-gz2"].command
    assert option(stages["eval-gz2"], "--max-samples") == "200"
    # the questions with goals on real galaxies: every test-side galaxy (no --max-samples), the same catalogue
    split = stages["eval-gz2-split"]
    assert "--max-samples" not in split.command
    assert option(split, "--questions") == "smooth-or-featured,disk-edge-on,how-rounded"
    for name in ("--catalogue", "--catalogue-id-column", "--images"):
        assert option(split, name) == option(stages["eval-gz2"], name)
    for name in ("eval-gz2", "eval-gz2-split", "eval-gz1", "eval-synthetic"):
        assert option(stages[name], "--model_name_or_path") == str(stages["instruct"].done.parent)
        assert option(stages[name], "--split") == "test"
    # the same questions on every validation-side galaxy (the mix holds that side out): the figure runs are chosen by
    validation = stages["eval-gz2-validation"]
    assert option(validation, "--split") == "validation" and "--max-samples" not in validation.command
    for name in ("--questions", "--catalogue", "--images", "--model_name_or_path"):
        assert option(validation, name) == option(split, name)
    # edge-on on the GZ1 weak labels' validation side too: 79 edge-on galaxies against GZ2 validation's 22
    gz1_validation = stages["eval-gz1-validation"]
    assert option(gz1_validation, "--split") == "validation" and "--max-samples" not in gz1_validation.command
    assert option(gz1_validation, "--questions") == "disk-edge-on"
    for name in ("--catalogue", "--catalogue-id-column", "--model_name_or_path"):
        assert option(gz1_validation, name) == option(stages["eval-gz1"], name)
    kept = real_recipe.parse_args(["--out", str(tmp_path / "out"), "--keep-validation"])
    kept.lm = tmp_path / "lm"
    kept_names = [s.name for s in real_recipe.recipe_stages(kept)]
    assert "eval-gz2-validation" not in kept_names and "eval-gz1-validation" not in kept_names
    reused = real_recipe.parse_args(["--out", str(tmp_path / "out"), "--tower", str(tmp_path / "t"), "--no-gz1",
                                     "--synthetic", "0"])
    reused.lm = tmp_path / "lm"
    names = [s.name for s in real_recipe.recipe_stages(reused)]
    assert "tower" not in names and "build-gz1" not in names and "eval-synthetic" not in names
    only_edge_on = real_recipe.parse_args(["--split-questions", "disk-edge-on"])
    only_edge_on.lm = tmp_path / "lm"
    split = next(s for s in real_recipe.recipe_stages(only_edge_on) if s.name == "eval-gz2-split")
    assert option(split, "--questions") == "disk-edge-on"
    none = real_recipe.parse_args(["--split-questions", ""])
    none.lm = tmp_path / "lm"
    assert "eval-gz2-split" not in [s.name for s in real_recipe.recipe_stages(none)]


@pytest.mark.parametrize("question", ["edge-on-ness", "bar"])  # a typo; a question the GZ2 file has no votes for
def test_a_split_question_the_gz2_file_lacks_is_one_usage_error_naming_it(question, capsys):
    with pytest.raises(SystemExit) as exit_info:
        real_recipe.parse_args(["--split-questions", f"smooth-or-featured,{question}"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--split-questions: ['{question}'] not in the GZ2 Kaggle file" in error


def test_real_recipe_gpu_preset_launches_training_with_accelerate_and_the_gpu_recipes(tmp_path):
    args = real_recipe.parse_args(["--preset", "gpu", "--data-root", str(tmp_path), "--accelerate-config",
                                   "accelerate_configs/multi_gpu.yaml"])
    assert args.out == REPO_ROOT / "outputs" / "real-gpu" and args.lm is None
    stages = {s.name: s for s in real_recipe.recipe_stages(args)}
    for name, script, recipe in (("tower", "train_clip.py", "recipes/real_gpu_tower.yaml"),
                                 ("align", "train_sft.py", "recipes/real_gpu_align.yaml"),
                                 ("instruct", "train_sft.py", "recipes/real_gpu_instruct.yaml")):
        command = stages[name].command
        assert command[:4] == ["-m", "accelerate.commands.launch", "--config_file", "accelerate_configs/multi_gpu.yaml"]
        assert command[4] == script and command[command.index("--config") + 1] == recipe
    assert "--text_model_name_or_path" not in stages["align"].command  # the recipe's 7B LM
    assert stages["build-gz2"].command[0] == "-m"  # builds and evaluations are not launched on GPUs


def test_real_recipe_without_data_is_one_line_exit_2(tmp_path, capsys):
    code = real_recipe.main(["--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "missing input" in lines[0] and "gz2_kaggle_5000/labels.csv" in lines[0]
    assert not (tmp_path / "out" / "smollm2-135m").exists()  # nothing ran before the check


@pytest.mark.parametrize("recipe", ["recipes/real_cpu_align.yaml", "recipes/real_cpu_instruct.yaml",
                                    "recipes/tiny_cpu_tower_align.yaml", "recipes/real_gpu_align.yaml",
                                    "recipes/real_gpu_instruct.yaml"])
def test_recipes_parse_with_train_sft(recipe):
    from gzllava.training import parse_arguments

    on_cpu = ["--bf16", "false", "--use_cpu", "true"] if "_gpu_" in recipe else []  # every key checked, no GPU here
    script_args, training_args, model_args, gz_args = parse_arguments(["--config", str(REPO_ROOT / recipe), *on_cpu])
    assert gz_args.stage in ("align", "instruct")
    assert model_args.load_in_4bit == (recipe == "recipes/real_gpu_instruct.yaml")  # QLoRA on GPU, plain LoRA on CPU
    if gz_args.stage == "align":
        assert gz_args.vision_model_name_or_path and gz_args.text_model_name_or_path
        assert not gz_args.image_standardization  # a trained tower keeps its own processor's normalisation


@pytest.mark.parametrize("recipe", ["recipes/real_cpu_tower.yaml", "recipes/real_gpu_tower.yaml"])
def test_real_tower_recipes_parse_with_train_clip(recipe):
    from gzllava.tower.arguments import parse_arguments

    on_cpu = ["--bf16", "false", "--use_cpu", "true"] if "_gpu_" in recipe else []
    tower_args, _ = parse_arguments(["--config", str(REPO_ROOT / recipe), *on_cpu])
    # CPU: the GZ2 and GZ1 builds' descriptions (contrastive) + the head; GPU: the vote catalogue, head only
    expected = ("talk_instruct", 1.0) if "_cpu_" in recipe else ("gz2_catalogue", 0.0)
    assert (tower_args.source, tower_args.contrastive_weight) == expected
    # the CPU tower also reads the synthetic build: its head learns bar and has-spiral-arms (the GZ2 file lacks them)
    expected_head = "gz2,bar,has-spiral-arms" if "_cpu_" in recipe else "gz2"
    assert tower_args.morphology_weight == 1.0 and tower_args.head_questions == expected_head
    # CPU: the synthetic galaxies without a description feed the head, whose bar loss counts twice
    expected_extra = ("decision_tree", "bar=2") if "_cpu_" in recipe else (None, None)
    assert (tower_args.head_only_config, tower_args.head_question_weights) == expected_extra


def test_the_tower_stage_reads_the_gz1_and_synthetic_builds_beside_gz2_unless_left_out(tmp_path):
    def tower_data(*flags):
        args = real_recipe.parse_args(["--out", str(tmp_path), *flags])
        stage = next(s for s in real_recipe.recipe_stages(args) if s.name == "tower")
        return stage.command[stage.command.index("--dataset_name") + 1]

    gz2, gz1, synthetic, tower = (str(tmp_path / "builds" / name) for name in ("gz2", "gz1", "synthetic",
                                                                             "synthetic-tower"))
    assert tower_data() == f"{gz2},{gz1},{tower}"
    assert tower_data("--no-gz1") == f"{gz2},{tower}"
    assert tower_data("--synthetic", "0") == f"{gz2},{gz1}"
    assert tower_data("--no-gz1", "--synthetic", "0") == gz2
    # the mix's own build when asked for, or when the sizes match: no second build of the same galaxies
    assert tower_data("--tower-synthetic", "0") == tower_data("--tower-synthetic", "1500") == f"{gz2},{gz1},{synthetic}"
    def names(*flags):
        return [s.name for s in real_recipe.recipe_stages(real_recipe.parse_args(["--out", str(tmp_path), *flags]))]

    assert "build-synthetic-tower" not in names("--tower-synthetic", "0")
    assert "build-synthetic-tower" not in names("--tower", str(tmp_path / "a-tower"))  # a given tower: nothing to build
    assert not any(name.startswith("build-synthetic") for name in names("--synthetic", "0"))


def _build(out: Path, prefix: str, n_train: int, n_test: int, answers: tuple[str, ...] = (),
           questions: tuple[str, ...] = ("disk-edge-on",)) -> Path:
    """A gz-talk-instruct-shaped folder: both configs, train and test splits, 32 px images; with `answers`, the
    rows ask `questions` in turn and answer with `answers` in turn."""
    import numpy as np
    from datasets import Dataset, Features, Image, Value
    from PIL import Image as PILImage

    features = Features({"id": Value("string"), "subject_id": Value("string"), "image": Image(),
                         "source": Value("string"), **({"question": Value("string"), "answer": Value("string")}
                                                       if answers else {})})
    yaml = []
    for config in ("description", "decision_tree"):
        for split, n in (("train", n_train), ("test", n_test)):
            rows = {"id": [f"{prefix}-{config}-{split}-{i}" for i in range(n)],
                    "subject_id": [f"{prefix}{i}" for i in range(n)],
                    "image": [PILImage.fromarray(np.full((32, 32, 3), i, np.uint8)) for i in range(n)],
                    "source": [prefix] * n}
            if answers:
                rows.update(question=[questions[i % len(questions)] for i in range(n)],
                            answer=[answers[i % len(answers)] for i in range(n)])
            (out / "data" / config).mkdir(parents=True, exist_ok=True)
            Dataset.from_dict(rows, features=features).to_parquet(str(out / "data" / config / f"{split}-0.parquet"))
        yaml.append(f"- config_name: {config}\n  data_files:\n  - split: train\n    path: data/{config}/train-*.parquet"
                    f"\n  - split: test\n    path: data/{config}/test-*.parquet")
    (out / "README.md").write_text("---\nconfigs:\n" + "\n".join(yaml) + "\n---\n")
    return out


def test_mix_builds_takes_only_train_rows_capped_per_source(tmp_path):
    from datasets import load_dataset

    first, second = _build(tmp_path / "a", "a", 12, 4), _build(tmp_path / "b", "b", 9, 3)
    mixed = recipe_mix.mix_builds({"a": first, "b": second}, tmp_path / "mixed", {"a": None, "b": 5})
    for config in ("description", "decision_tree"):
        rows = load_dataset(str(mixed), config, split="train")
        a_train = load_dataset(str(first), config, split="train")
        a_test = load_dataset(str(first), config, split="test")
        assert len(rows) == len(a_train) + min(5, len(load_dataset(str(second), config, split="train")))
        assert not set(rows["id"]) & set(a_test["id"])
        assert set(a_train["id"]) <= set(rows["id"])
        assert rows[0]["image"].size == (32, 32)  # image bytes travel with the rows
    assert "rows per source" in (mixed / "README.md").read_text()


def test_a_new_mix_in_a_folder_of_the_same_name_is_not_served_from_the_cache(tmp_path):
    """`datasets` keys a local folder's cache on its name and card YAML: the card must change with the rows."""
    from datasets import load_dataset

    first, second = _build(tmp_path / "a", "a", 12, 4), _build(tmp_path / "b", "b", 9, 3)
    old = recipe_mix.mix_builds({"a": first}, tmp_path / "one" / "mixed", {"a": None})
    new = recipe_mix.mix_builds({"b": second}, tmp_path / "two" / "mixed", {"b": 5})
    assert len(load_dataset(str(old), "description", split="train")) == 12
    rows = load_dataset(str(new), "description", split="train")
    assert len(rows) == 5 and set(rows["source"]) == {"b"}


def _metrics(accuracy: float) -> dict:
    figures = {"n": 10, "accuracy": accuracy, "balanced_accuracy": accuracy - 0.1, "auc": 0.77,
               "confident": {"n": 4, "accuracy": accuracy + 0.05, "balanced_accuracy": accuracy}}
    route = {"per_question": {"smooth-or-featured": figures},
             "overall": {"n": 10, "accuracy": accuracy, "mean_balanced_accuracy": accuracy - 0.1,
                         "confident": {"n": 4, "accuracy": accuracy, "mean_balanced_accuracy": accuracy}}}
    return {"models": {"model": {"morphology": {"likelihood": route, "generation": route}}},
            "baselines": {"majority": route, "random": route}}


def test_tables_show_the_figures_they_are_given():
    table = synthetic_table(_metrics(0.9), _metrics(0.3), {"smooth-or-featured": 0.86, "all": 0.76}, "frozen")
    assert "| smooth-or-featured | 10 | 0.90 | 0.90 | 0.30 | 0.86 |" in table
    assert "| **all** | 10 | **0.90** | 0.90 | 0.30 | 0.76 |" in table
    real = real_table(_metrics(0.9))
    assert "| smooth-or-featured | 10 | 0.90 | 0.80 | 0.80 | 4 | 0.95 | 0.90 | 0.90 |" in real
    assert real.splitlines()[2].endswith("| 0.77 |")  # the likelihood route's AUC, last column
    json.dumps(_metrics(0.5))  # the layout is plain JSON, as metrics.json is


def test_balance_answers_repeats_rarer_answers_up_to_the_common_count():
    from datasets import Dataset

    rows = Dataset.from_dict({
        "id": [f"r{i}" for i in range(20)],
        "question": ["disk-edge-on"] * 12 + ["how-rounded"] * 6 + [None, None],
        "answer": ["no"] * 10 + ["yes"] * 2 + ["completely"] * 3 + ["in-between"] * 2 + ["cigar-shaped"] + [None, None]})
    balanced = recipe_mix.balance_answers(rows, max_repeat=4)
    count = Counter(zip(balanced["question"], balanced["answer"]))
    assert count[("disk-edge-on", "no")] == 10 and count[("disk-edge-on", "yes")] == 8  # 4 x 2, capped by max_repeat
    assert count[("how-rounded", "completely")] == 3 and count[("how-rounded", "in-between")] == 3
    assert count[("how-rounded", "cigar-shaped")] == 3
    assert count[(None, None)] == 2  # multi-turn walks (no single question) are kept once
    assert set(rows["id"]) <= set(balanced["id"])  # every row at least once
    assert recipe_mix.balance_answers(rows, max_repeat=1)["id"] == rows["id"]


def test_mix_builds_counts_the_repeats_in_its_card(tmp_path):
    from datasets import load_dataset

    # (a folder name of its own: `datasets` caches a card-less local folder by name, and "a" is cached above)
    first = _build(tmp_path / "answered", "a", 12, 4, answers=("no", "no", "no", "yes"))  # 9 no, 3 yes per split
    mixed = recipe_mix.mix_builds({"a": first}, tmp_path / "mixed", {"a": None}, balance_repeat=2)
    tree = load_dataset(str(mixed), "decision_tree", split="train")
    assert Counter(tree["answer"]) == {"no": 9, "yes": 6}
    assert len(load_dataset(str(mixed), "description", split="train")) == 12  # descriptions are never repeated
    assert "| decision_tree | a: 12 | answer repeats: 3 |" in (mixed / "README.md").read_text()
    plain = recipe_mix.mix_builds({"a": first}, tmp_path / "plain", {"a": None})
    assert "answer repeats" not in (plain / "README.md").read_text()


def test_mix_builds_keeps_every_row_of_the_uncapped_questions_beside_the_cap(tmp_path):
    from datasets import load_dataset

    syn = _build(tmp_path / "uncapped", "s", 12, 4, answers=("no",), questions=("disk-edge-on", "bar"))
    mixed = recipe_mix.mix_builds({"s": syn}, tmp_path / "mixed", {"s": 3}, uncapped={"s": ("bar",)})
    tree = load_dataset(str(mixed), "decision_tree", split="train")
    assert Counter(tree["question"]) == {"bar": 6, "disk-edge-on": 3}  # all 6 bar rows + the cap of the others
    test_ids = set(load_dataset(str(syn), "decision_tree", split="test")["id"])
    assert not set(tree["id"]) & test_ids
    assert len(load_dataset(str(mixed), "description", split="train")) == 3  # descriptions keep the cap
    assert "| decision_tree | s: 3 | s (uncapped): 6 |" in (mixed / "README.md").read_text()


def test_the_recipe_mix_keeps_the_synthetic_rows_of_the_questions_the_gz2_file_lacks(tmp_path, mix_arguments):
    seen = mix_arguments
    for flags, uncapped in (([], {"synthetic": real_recipe.SYNTHETIC_QUESTIONS}), (["--synthetic", "0"], None)):
        seen.clear()
        out = tmp_path / f"out{len(flags)}"
        out.mkdir()
        real_recipe.run(real_recipe.parse_args(["--out", str(out), "--describe", "0", *flags]))
        assert seen["uncapped"] == uncapped


def test_uncapped_adds_a_builds_questions_beside_the_synthetic_ones(tmp_path, mix_arguments):
    real_recipe.run(real_recipe.parse_args(["--out", str(tmp_path), "--describe", "0", "--uncapped",
                                            "gz1=disk-edge-on", "--uncapped", "synthetic=merging,bar"]))
    assert mix_arguments["uncapped"] == {"gz1": ("disk-edge-on",),
                                         "synthetic": tuple(sorted({*real_recipe.SYNTHETIC_QUESTIONS, "merging"}))}


def test_the_recipe_mix_holds_out_the_validation_side_unless_kept(tmp_path, mix_arguments):
    for name in ("held", "kept", "twins"):
        (tmp_path / name).mkdir()
    real_recipe.run(real_recipe.parse_args(["--out", str(tmp_path / "held"), "--describe", "0",
                                            "--data-root", str(tmp_path)]))
    assert mix_arguments["validation_percent"] == real_recipe.VALIDATION_PERCENT == 10
    assert mix_arguments["twins"] == {}  # --data-root's twins file: absent here
    (tmp_path / "gz1_sdss").mkdir()
    (tmp_path / "gz1_sdss" / "same_galaxy_in_gz2_kaggle_5000.csv").write_text("gz1_objid,kaggle_galaxyid\n58,1001\n")
    real_recipe.run(real_recipe.parse_args(["--out", str(tmp_path / "twins"), "--describe", "0",
                                            "--data-root", str(tmp_path)]))
    assert mix_arguments["twins"] == {"58": "1001"}
    real_recipe.run(real_recipe.parse_args(["--out", str(tmp_path / "kept"), "--describe", "0", "--keep-validation"]))
    assert mix_arguments["validation_percent"] == 0


def test_mix_builds_leaves_out_the_validation_side_and_a_twin_of_it(tmp_path):
    from datasets import load_dataset

    from gzllava.splits import split_of

    build = _build(tmp_path / "validation-held", "h", 60, 4)
    ids = [f"h{i}" for i in range(60)]
    on_validation = {i for i in ids if split_of(i, validation_percent=10) == "validation"}
    assert 0 < len(on_validation) < 20  # the hash puts ~10% of the non-test ids there
    gz2_validation = next(f"g{k}" for k in range(1000) if split_of(f"g{k}", validation_percent=10) == "validation")
    twin = next(i for i in ids if i not in on_validation)  # a GZ1 image whose GZ2 twin is on the validation side
    mixed = recipe_mix.mix_builds({"h": build}, tmp_path / "mixed", {"h": None}, validation_percent=10,
                                  twins={twin: gz2_validation})
    for config in recipe_mix.CONFIGS:
        rows = load_dataset(str(mixed), config, split="train")
        assert set(rows["subject_id"]) == set(ids) - on_validation - {twin}
    card = (mixed / "README.md").read_text()
    assert f"| description | h: {60 - len(on_validation) - 1} | h validation side left out: {len(on_validation) + 1} |" in card
    assert "less its 10% validation side" in card
    assert json.loads((mixed / recipe_mix.SETTINGS_FILE).read_text())["validation_percent"] == 10
    whole = recipe_mix.mix_builds({"h": build}, tmp_path / "whole", {"h": None})
    assert len(load_dataset(str(whole), "description", split="train")) == 60


def test_a_mix_recorded_before_the_validation_setting_reads_as_the_whole_train_split(tmp_path):
    wanted = recipe_mix.mix_settings({"a": tmp_path}, {"a": None})
    recorded = dict(wanted)
    del recorded["validation_percent"]
    (tmp_path / recipe_mix.SETTINGS_FILE).write_text(json.dumps(recorded))
    assert recipe_mix.settings_changed(tmp_path, wanted) == []
    held = recipe_mix.mix_settings({"a": tmp_path}, {"a": None}, validation_percent=10)
    assert recipe_mix.settings_changed(tmp_path, held) == ["validation_percent: 0 -> 10"]


def test_weight_questions_repeats_thins_and_drops_the_named_questions_only():
    from datasets import Dataset

    rows = Dataset.from_dict({"id": [f"r{i}" for i in range(410)],
                              "question": ["has-spiral-arms"] * 100 + ["merging"] * 200 + ["bar"] * 100 + [None] * 10})
    weighted, added, removed = recipe_mix.weight_questions(
        rows, {"has-spiral-arms": 3, "merging": 0.5, "bar": 0}, seed=0)
    count = Counter(weighted["question"])
    assert count["has-spiral-arms"] == 300  # every row three times
    assert Counter(weighted["id"])["r0"] == 3
    assert 70 <= count["merging"] <= 130  # about half of 200, each kept row once
    assert max(Counter(i for i, q in zip(weighted["id"], weighted["question"]) if q == "merging").values()) == 1
    assert "bar" not in count  # weight 0 leaves the question out
    assert count[None] == 10  # multi-turn walks (no single question) are kept once
    assert (added, removed) == (200, 100 + 200 - count["merging"])
    same, *_ = recipe_mix.weight_questions(rows, {"has-spiral-arms": 3, "merging": 0.5, "bar": 0}, seed=0)
    assert same["id"] == weighted["id"]  # the seed fixes which rows are kept
    assert recipe_mix.weight_questions(rows, {})[0]["id"] == rows["id"]


def test_mix_builds_applies_question_weights_after_the_answer_repeats_and_counts_them(tmp_path):
    from datasets import load_dataset

    syn = _build(tmp_path / "weighted", "w", 12, 4, answers=("no", "no", "yes"), questions=("disk-edge-on", "bar"))
    mixed = recipe_mix.mix_builds({"w": syn}, tmp_path / "mixed", {"w": None}, balance_repeat=2,
                                  question_weights={"bar": 2})
    tree = load_dataset(str(mixed), "decision_tree", split="train")
    plain = load_dataset(str(recipe_mix.mix_builds({"w": syn}, tmp_path / "plain", {"w": None}, balance_repeat=2)),
                         "decision_tree", split="train")
    assert Counter(tree["question"])["bar"] == 2 * Counter(plain["question"])["bar"]
    assert Counter(tree["question"])["disk-edge-on"] == Counter(plain["question"])["disk-edge-on"]
    bar_answers = Counter(a for q, a in zip(tree["answer"], tree["question"]) if q == "bar")
    assert bar_answers["yes"] * 2 >= bar_answers["no"]  # the answer balance survives the weighting
    added = Counter(plain["question"])["bar"]
    assert f"question weights: +{added} / -0 |" in (mixed / "README.md").read_text()
    assert len(load_dataset(str(mixed), "description", split="train")) == 12  # descriptions are never weighted


def test_the_recipe_passes_its_question_weights_to_the_mix_and_flags_override_them(tmp_path, mix_arguments):
    real_recipe.run(real_recipe.parse_args(["--out", str(tmp_path), "--describe", "0"]))
    assert mix_arguments["question_weights"] == real_recipe.QUESTION_WEIGHTS
    args = real_recipe.parse_args(["--question-weight", "has-spiral-arms=1", "--question-weight", "bar=2.5"])
    assert args.question_weights == {**real_recipe.QUESTION_WEIGHTS, "has-spiral-arms": 1.0, "bar": 2.5}


def test_mix_builds_records_its_settings_and_a_change_is_named(tmp_path):
    first = _build(tmp_path / "recorded", "a", 12, 4, answers=("no", "yes"))
    mixed = recipe_mix.mix_builds({"a": first}, tmp_path / "mixed", {"a": None}, balance_repeat=2,
                                  question_weights={"disk-edge-on": 2})
    same = recipe_mix.mix_settings({"a": first}, {"a": None}, balance_repeat=2, question_weights={"disk-edge-on": 2.0})
    assert recipe_mix.settings_changed(mixed, same) == []
    other = recipe_mix.mix_settings({"a": first}, {"a": None}, balance_repeat=2, question_weights={"disk-edge-on": 3})
    assert recipe_mix.settings_changed(mixed, other) == [
        "question_weights: {'disk-edge-on': 2.0} -> {'disk-edge-on': 3.0}"]
    capped = recipe_mix.mix_settings({"a": first}, {"a": 5}, balance_repeat=2, question_weights={"disk-edge-on": 2})
    assert recipe_mix.settings_changed(mixed, capped) == ["max_rows: {'a': None} -> {'a': 5}"]
    assert recipe_mix.settings_changed(tmp_path / "no-record", other) == []  # a mix made before the record


def test_a_balance_repeat_below_1_is_one_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        real_recipe.parse_args(["--balance-repeat", "0"])
    assert exit_info.value.code == 2
    assert "--balance-repeat 0: expected 1 (no repeats) or more" in capsys.readouterr().err


def test_the_stage_bar_keeps_the_training_loops_start_across_a_checkpoints_nested_bar():
    import time

    progress = StageProgress("align", show=True)
    progress.update(0, 28162)  # measuring sample lengths
    progress.update(1, 250)  # training
    training_started = progress.bar.start_t
    time.sleep(0.02)
    progress.update(1, 1)  # "Writing model shards: 1/1" at a checkpoint
    progress.update(51, 250)
    assert progress.bar.total == 250 and progress.bar.n == 51
    assert progress.bar.start_t == training_started  # elapsed (and so remaining) still count from step 1
    progress.close(finished=True)
    assert progress.bar.n == 250


def test_soup_trains_a_second_instruct_run_from_the_same_align_and_scores_their_mean(tmp_path):
    args = real_recipe.parse_args(["--out", str(tmp_path / "out"), "--data-root", str(tmp_path),
                                   "--soup", "gz1=disk-edge-on", "--instruct-args", "--max_steps 3"])
    stages = {s.name: s for s in real_recipe.recipe_stages(args)}
    names = list(stages)
    assert names.index("instruct") < names.index("instruct-soup") < names.index("soup") < names.index("eval-gz2")
    option = lambda stage, name: stage.command[stage.command.index(name) + 1]  # noqa: E731
    out = tmp_path / "out"
    second = stages["instruct-soup"]
    assert option(second, "--model_name_or_path") == option(stages["instruct"], "--model_name_or_path") == str(
        out / "align" / "final")  # one start: the same align stage
    assert option(second, "--dataset_name") == str(out / "mixed-soup")
    assert option(stages["instruct"], "--dataset_name") == str(out / "mixed")
    assert second.command[-2:] == ["--max_steps", "3"]  # the instruct stage's own arguments
    assert stages["soup"].command[:2] == ["-m", "gzllava.soup"]
    assert option(stages["soup"], "--model_name_or_path") == f"{out / 'instruct' / 'final'},{second.done.parent}"
    assert option(stages["soup"], "--output_dir") == str(out / "soup") == str(real_recipe.scored_model(args))
    evaluations = [s for name, s in stages.items() if name.startswith("eval-")]
    assert len(evaluations) == 6 and {option(s, "--model_name_or_path") for s in evaluations} == {str(out / "soup")}
    plain = real_recipe.parse_args(["--out", str(out)])
    plain_stages = real_recipe.recipe_stages(plain)
    assert not {"instruct-soup", "soup"} & {s.name for s in plain_stages}
    assert {option(s, "--model_name_or_path") for s in plain_stages if s.name.startswith("eval-")} == {
        str(out / "instruct" / "final")}


def test_soup_mixes_a_second_folder_with_its_questions_uncapped(tmp_path, mix_arguments, monkeypatch):
    mixes = {}
    monkeypatch.setattr(real_recipe, "mix_builds", lambda names, folder, **k: mixes.update({folder.name: k}))
    real_recipe.run(real_recipe.parse_args(["--out", str(tmp_path), "--describe", "0", "--uncapped", "gz2=merging",
                                            "--soup", "gz1=disk-edge-on"]))
    assert set(mixes) == {"mixed", "mixed-soup"}
    synthetic = real_recipe.SYNTHETIC_QUESTIONS
    assert mixes["mixed"]["uncapped"] == {"synthetic": synthetic, "gz2": ("merging",)}
    assert mixes["mixed-soup"]["uncapped"] == {"synthetic": synthetic, "gz2": ("merging",), "gz1": ("disk-edge-on",)}
    same = {k: v for k, v in mixes["mixed"].items() if k != "uncapped"}
    assert same == {k: v for k, v in mixes["mixed-soup"].items() if k != "uncapped"}  # only the uncapped rows differ
