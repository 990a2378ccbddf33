"""Recipes and command lines: every shipped recipe parses and is consistent; bad keys and combinations fail early."""

from pathlib import Path

import pytest
import yaml

from gzllava.training import parse_arguments, validate_arguments


REPO_ROOT = Path(__file__).resolve().parents[2]
# train_sft.py's recipes: the ones with a `stage` (train_clip.py's vision-tower recipes share the folder).
RECIPES = sorted(path for path in (REPO_ROOT / "recipes").glob("*.yaml") if "stage" in yaml.safe_load(path.read_text()))
ACCELERATE_CONFIGS = REPO_ROOT / "accelerate_configs"


def test_recipes_exist_for_every_stage_and_both_model_sizes():
    names = {path.stem for path in RECIPES}
    assert {"tiny_cpu_align", "tiny_cpu_instruct", "llava15_7b_align", "llava15_7b_instruct", "llava15_7b_full"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_every_recipe_parses_and_is_consistent(recipe):
    # GPU recipes ask for bf16, which the argument checks refuse without a GPU unless use_cpu is set.
    script_args, training_args, model_args, gz_args = parse_arguments(["--config", str(recipe), "--use_cpu", "true"])
    validate_arguments(script_args, training_args, model_args, gz_args)
    assert gz_args.recipe == str(recipe)
    assert training_args.assistant_only_loss
    if gz_args.stage == "instruct":
        assert model_args.use_peft
        if model_args.load_in_4bit:  # QLoRA: NF4 with double quantisation
            assert model_args.use_bnb_nested_quant and model_args.bnb_4bit_quant_type == "nf4"
        else:  # plain LoRA only where bitsandbytes' CPU path would be the bottleneck (a CPU recipe)
            assert yaml.safe_load(recipe.read_text()).get("use_cpu") is True, "a GPU instruct recipe is QLoRA"
    else:
        assert not model_args.use_peft and not model_args.load_in_4bit
    if recipe.stem.startswith("llava15_7b"):
        composed = gz_args.vision_model_name_or_path == "openai/clip-vit-large-patch14-336"
        assert composed or model_args.model_name_or_path == "outputs/gz-llava-7b-align/final"


def test_command_line_overrides_the_recipe(tmp_path):
    recipe = str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml")
    _, training_args, _, gz_args = parse_arguments(["--config", recipe, "--learning_rate", "0.25", "--overlong", "error"])
    assert training_args.learning_rate == 0.25 and gz_args.overlong == "error"


def test_unknown_recipe_key_is_an_error_naming_the_key_and_the_file(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("stage: align\nmodel_name_or_path: tiny\nlearning_rte: 0.1\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*learning_rte"):
        parse_arguments(["--config", str(recipe)])


def test_unknown_command_line_flag_is_an_error():
    with pytest.raises(ValueError, match="--no_such_flag"):
        parse_arguments(["--stage", "align", "--no_such_flag", "1"])


def test_missing_recipe_file_is_named():
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        parse_arguments(["--config", "nowhere.yaml"])


def test_unknown_stage_is_refused():
    with pytest.raises(SystemExit):  # argparse choices: "invalid choice: 'pretrain'"
        parse_arguments(["--stage", "pretrain"])


@pytest.mark.parametrize("flags, message", [
    (["--stage", "align", "--model_name_or_path", "tiny", "--use_peft", "true"], "stage align trains full-precision"),
    (["--stage", "full", "--model_name_or_path", "tiny", "--load_in_4bit", "true"], "stage full trains full-precision"),
    (["--stage", "instruct", "--model_name_or_path", "tiny"], "set use_peft: true"),
    (["--stage", "instruct", "--model_name_or_path", "tiny", "--use_peft", "true", "--lora_target_modules", "lm_head"],
     "LoRA on lm_head"),
    (["--stage", "align"], "no base model"),
    (["--stage", "align", "--model_name_or_path", "tiny", "--vision_model_name_or_path", "clip"], "not both"),
    (["--stage", "align", "--vision_model_name_or_path", "clip"], "needs both"),
    (["--model_name_or_path", "tiny"], "no stage"),
    (["--stage", "align", "--model_name_or_path", "tiny", "--push_to_hub", "true"], "hub_model_id"),
    (["--stage", "align", "--model_name_or_path", "tiny", "--save_adapter_only", "true"], "save_adapter_only"),
])
def test_inconsistent_arguments_fail_before_loading_anything(tmp_path, flags, message):
    args = parse_arguments([*flags, "--dataset_name", "anything", "--output_dir", str(tmp_path), "--use_cpu", "true"])
    with pytest.raises(ValueError, match=message):
        validate_arguments(*args)


@pytest.mark.parametrize("name, distributed_type, processes", [
    ("single_gpu", "NO", 1), ("multi_gpu", "MULTI_GPU", 8), ("cpu_ddp", "MULTI_GPU", 2),
    ("fsdp", "FSDP", 8), ("zero3", "DEEPSPEED", 8),
])
def test_accelerate_configs(name, distributed_type, processes):
    config = yaml.safe_load((ACCELERATE_CONFIGS / f"{name}.yaml").read_text())
    assert config["distributed_type"] == distributed_type and config["num_processes"] == processes
    if name == "zero3":  # the final save gathers the sharded weights
        assert config["deepspeed_config"]["zero_stage"] == 3 and config["deepspeed_config"]["zero3_save_16bit_model"]
    if name == "fsdp":
        assert config["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    # Every key is one accelerate knows: its own config class loads the file.
    from accelerate.commands.config.config_args import ClusterConfig

    ClusterConfig.from_yaml_file(str(ACCELERATE_CONFIGS / f"{name}.yaml"))


def test_compose_flags_take_their_defaults_and_help_from_compose_settings():
    from dataclasses import fields

    from gzllava.compose import ComposeSettings
    from gzllava.training import GZLlavaArguments

    settings = {setting.name: setting for setting in fields(ComposeSettings)}
    flags = [arg for arg in fields(GZLlavaArguments) if arg.name in settings]
    assert [arg.name for arg in flags] == ["projector_type", "num_query_tokens", "use_image_delimiters",
                                           "vision_feature_layer", "vision_feature_select_strategy",
                                           "vision_feature_views", "image_standardization"]
    for arg in flags:
        assert arg.default == settings[arg.name].default, arg.name
        assert arg.metadata["help"].endswith(settings[arg.name].metadata["help"][1:]), arg.name  # "Composed base: t..."
    assert GZLlavaArguments().compose_settings() == ComposeSettings()


def test_a_recipes_compose_keys_reach_the_composed_config(tmp_path):
    from gzllava.training.base_model import compose_base

    recipe = tmp_path / "resampler.yaml"
    recipe.write_text(
        (REPO_ROOT / "recipes" / "tiny_cpu_align.yaml").read_text().replace("projector_type: mlp2x_gelu",
                                                                             "projector_type: resampler")
        + "num_query_tokens: 8\nuse_image_delimiters: true\n"
    )
    _, training_args, model_args, gz_args = parse_arguments(["--config", str(recipe), "--tiny_text_hidden_size", "64"])
    model, processor, _ = compose_base(model_args, gz_args, training_args.seed)
    assert model.config.projector_type == "resampler"
    assert model.config.num_query_tokens == processor.num_query_tokens == 8
    assert model.config.use_image_delimiters and processor.boi_token == "<boi>"
    assert processor.image_standardization  # the recipe's image_standardization: true
    assert model.config.vision_config.image_size == 64  # tiny_image_size


def test_feature_layer_and_strategy_flags_reach_the_composed_model_and_its_image_token_count():
    from gzllava.training.base_model import compose_base

    recipe = str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml")
    flags = ["--config", recipe, "--vision_feature_layer", "-1", "--vision_feature_select_strategy", "full"]
    _, training_args, model_args, gz_args = parse_arguments(flags)
    model, processor, _ = compose_base(model_args, gz_args, training_args.seed)
    assert model.config.vision_feature_layer == -1
    assert model.config.vision_feature_select_strategy == processor.vision_feature_select_strategy == "full"
    patches = (model.config.vision_config.image_size // model.config.vision_config.patch_size) ** 2
    assert model.config.image_seq_length == patches + 1  # the CLS token is kept
    default, *_ = compose_base(*parse_arguments(["--config", recipe])[2:4], training_args.seed)
    assert default.config.image_seq_length == patches and default.config.vision_feature_layer == -2


def test_an_unknown_feature_select_strategy_is_refused_by_the_parser(capsys):
    recipe = str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml")
    with pytest.raises(SystemExit):
        parse_arguments(["--config", recipe, "--vision_feature_select_strategy", "cls"])
    assert "vision_feature_select_strategy" in capsys.readouterr().err


def test_compose_flags_given_with_a_checkpoint_to_load_are_named_as_ignored(tmp_path, caplog):
    flags = ["--stage", "align", "--model_name_or_path", "outputs/align/final", "--vision_feature_select_strategy",
             "full", "--projector_type", "linear", "--dataset_name", "anything", "--output_dir", str(tmp_path),
             "--use_cpu", "true"]
    with caplog.at_level("WARNING", logger="gzllava.training.arguments"):
        validate_arguments(*parse_arguments(flags))
    assert "projector_type, vision_feature_select_strategy only apply when a base model is composed" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="gzllava.training.arguments"):
        validate_arguments(*parse_arguments(flags[:4] + flags[8:]))
    assert "only apply" not in caplog.text


def test_the_views_flag_reaches_the_composed_model_and_a_wrong_count_is_refused_by_the_parser(capsys):
    from gzllava.training.base_model import compose_base

    recipe = str(REPO_ROOT / "recipes" / "tiny_cpu_align.yaml")
    _, training_args, model_args, gz_args = parse_arguments(["--config", recipe, "--vision_feature_views", "8"])
    model, _, _ = compose_base(model_args, gz_args, training_args.seed)
    assert model.config.vision_feature_views == 8
    with pytest.raises(SystemExit):
        parse_arguments(["--config", recipe, "--vision_feature_views", "4"])
    assert "vision_feature_views" in capsys.readouterr().err
