"""Profiles, the precedence order, overrides and run ids."""

import pytest

from benchmark.core.errors import ConfigError, UnknownNameError
from benchmark.run.config import RunConfig, load_profile, parse_overrides, resolve_run

PROFILE = {
    "train": {"epochs": 3, "lr": 0.1, "batch_size": 8},
    "data": {"t_in": 4, "t_out": 2, "sample_stride": 1},
    "datasets": {
        "synthetic-weather": {"train": {"lr": 0.2}, "data": {"sample_stride": 5}},
        "synthetic-weather:t2m": {"train": {"lr": 0.3}},
    },
    "models": {
        "simvp": {
            "train": {"lr": 0.4, "batch_size": 2},
            "model": {"hid_S": 4},
            "datasets": {"synthetic-weather:t2m": {"model": {"hid_T": 8}}},
        }
    },
}


def test_precedence_profile_dataset_task_model_commandline():
    convlstm = resolve_run("custom", "convlstm", "synthetic-weather:t2m", 0, profile=PROFILE)
    assert convlstm.train["lr"] == 0.3  # dataset:task beats dataset beats profile
    assert convlstm.data["sample_stride"] == 5
    assert convlstm.train["epochs"] == 3
    simvp = resolve_run("custom", "simvp", "synthetic-weather:t2m", 0, profile=PROFILE)
    assert simvp.train["lr"] == 0.4 and simvp.train["batch_size"] == 2  # model beats dataset
    assert simvp.model_args["hid_S"] == 4 and simvp.model_args["hid_T"] == 8
    assert simvp.model_args["N_T"] == 8  # untouched keys keep the builder's published default
    overridden = resolve_run("custom", "simvp", "synthetic-weather:t2m", 0,
                             overrides=parse_overrides(["train.lr=0.5", "model.hid_T=[1, 2]"]), profile=PROFILE)
    assert overridden.train["lr"] == 0.5 and overridden.model_args["hid_T"] == [1, 2]


def test_run_id_changes_with_results_relevant_keys_only():
    base = resolve_run("custom", "simvp", "synthetic-weather:t2m", 0, profile=PROFILE)
    same = resolve_run("custom", "simvp", "synthetic-weather:t2m", 0, profile=PROFILE,
                       overrides={"data": {"root": "/elsewhere"}, "train": {"num_workers": 4}})
    assert base.run_id == same.run_id
    for overrides in ({"train": {"lr": 0.01}}, {"data": {"t_out": 3}}, {"model": {"hid_S": 2}}):
        assert resolve_run("custom", "simvp", "synthetic-weather:t2m", 0, overrides, PROFILE).run_id != base.run_id
    assert resolve_run("custom", "simvp", "synthetic-weather:t2m", 1, profile=PROFILE).run_id != base.run_id
    assert base.run_id.startswith("simvp-synthetic-weather-t2m-s0-")


def test_config_round_trip():
    config = resolve_run("quick", "convlstm", "synthetic-weather:t2m", 3)
    again = RunConfig.from_dict(config.to_dict())
    assert again == config and again.run_id == config.run_id


def test_shipped_profiles_resolve_for_every_model():
    from benchmark.registry import list_models

    for profile in ("smoke", "quick", "paper"):
        for model in list_models():
            for dataset in ("synthetic-weather:t2m", "weatherbench:uv10", "chdl", "synthetic-chdl"):
                config = resolve_run(profile, model, dataset, 0)
                assert config.t_in >= 1 and config.t_out >= 1
    chdl = resolve_run("paper", "convlstm", "chdl", 0)
    assert (chdl.t_in, chdl.t_out, chdl.model_args["patch_size"]) == (5, 1, 10)


def test_a_profile_with_an_unknown_top_level_key_is_refused(tmp_path):
    typo = tmp_path / "mine.yaml"
    typo.write_text("train: {epochs: 2}\nmodel: {simvp: {train: {lr: 0.1}}}\n")
    with pytest.raises(ConfigError, match="unknown top-level key.*model"):
        load_profile(str(typo))
    anchors = tmp_path / "anchors.yaml"
    anchors.write_text("x-small: &small {model: {hid_S: 4}}\nmodels: {simvp: *small}\n")
    assert load_profile(str(anchors)) == {"models": {"simvp": {"model": {"hid_S": 4}}}}


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"train": {"learning_rate": 1}}, "learning_rate"),
        ({"model": {"no_such_width": 3}}, "no_such_width"),
        ({"train": {"eval_at": [99]}}, "--eval-at"),
        ({"data": {"t_in": 0}}, "data.t_in"),
    ],
)
def test_bad_configuration_is_named(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        config = resolve_run("custom", "simvp", "synthetic-weather:t2m", 0, overrides, PROFILE)
        from benchmark.registry import create_model

        create_model(config.model, (config.t_in, config.t_out, 1, 32, 64), **config.model_args)


def test_unknown_profile_and_bad_override():
    with pytest.raises(UnknownNameError, match="smoke, quick|paper"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["lr=3"])


# --- data keys a dataset does not declare, and train values ---------------------------------------


def one_paragraph(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text.strip()
    return text


def test_an_undeclared_data_key_on_the_command_line_is_refused_with_the_valid_keys():
    with pytest.raises(ConfigError) as error:
        resolve_run("smoke", "convlstm", "chdl", 0, parse_overrides(["data.tyop=3"]))
    text = one_paragraph(error)
    assert "tyop" in text and "command line" in text
    for key in ("root", "t_in", "t_out", "frames_per_sequence", "sample_stride", "resize", "cache_limit_mb"):
        assert key in text
    with pytest.raises(ConfigError, match=r"(?s)sample_strid\b.*Did you mean sample_strid -> sample_stride"):
        resolve_run("smoke", "convlstm", "synthetic-weather:t2m", 0, {"data": {"sample_strid": 3}})


def test_cli_dry_run_stops_on_an_undeclared_data_key_and_a_bad_train_value():
    from typer.testing import CliRunner

    from benchmark.cli import app

    runner = CliRunner()
    base = ["run", "--models", "persistence", "--dataset", "synthetic-chdl", "--profile", "smoke", "--dry-run"]
    for assignment, fragments in (("data.tyop=3", ("tyop", "val_fraction", "height", "bit_depth")),
                                  ("train.lr=abc", ("train.lr", "'abc'", "positive number"))):
        result = runner.invoke(app, [*base, "--set", assignment], env={"COLUMNS": "250"})
        assert result.exit_code == 2, result.output
        assert all(f in result.output for f in fragments), result.output
        assert "persistence-synthetic-chdl-s0" not in result.output  # no run was planned or printed


def write_profile(tmp_path, text: str) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return str(path)


def test_an_undeclared_key_in_a_dataset_entry_of_a_profile_is_refused(tmp_path):
    profile = write_profile(tmp_path, "data: {t_in: 4, t_out: 2}\ndatasets:\n  chdl:\n    data: {coarsen: 2}\n")
    with pytest.raises(ConfigError) as error:
        resolve_run(profile, "convlstm", "chdl", 0)
    text = one_paragraph(error)
    assert "coarsen" in text and "`datasets: chdl` entry" in text and "val_fraction" in text
    by_model = write_profile(tmp_path, "data: {t_in: 4, t_out: 2}\nmodels:\n  convlstm:\n    datasets:\n"
                                       "      weatherbench:t2m: {data: {resize: [8, 8]}}\n")
    with pytest.raises(ConfigError, match=r"resize.*`models: convlstm: datasets: weatherbench:t2m` entry.*coarsen"):
        resolve_run(by_model, "convlstm", "weatherbench:t2m", 0)
    assert "resize" not in resolve_run(by_model, "convlstm", "weatherbench:uv10", 0).data  # another task: not read


def test_a_shared_data_key_the_dataset_lacks_stays_out_of_its_config_and_run_id(tmp_path):
    quick = resolve_run("quick", "convlstm", "chdl", 0)
    assert "coarsen" not in quick.data and quick.data == {"t_in": 5, "t_out": 1, "resize": [32, 40]}
    assert resolve_run("quick", "convlstm", "weatherbench:t2m", 0).data["coarsen"] == 4  # kept where it is read
    profile = load_profile("quick")
    without = {**profile, "data": {k: v for k, v in profile["data"].items() if k != "coarsen"}}
    assert resolve_run("quick", "convlstm", "chdl", 0, profile=without).run_id == quick.run_id
    shared_by_model = write_profile(tmp_path, "data: {t_in: 5, t_out: 1}\nmodels:\n  simvp:\n    data: {coarsen: 2}\n")
    assert "coarsen" not in resolve_run(shared_by_model, "simvp", "chdl", 0).data


def test_data_values_are_checked_before_any_run():
    for overrides, fragment in ((["data.val_fraction=2"], "chdl: data.val_fraction"),
                                (["data.coarsen=3"], "data.coarsen = 3 must divide"),
                                (["data.test_years=2030"], "does not generate")):
        dataset = "chdl" if "val_fraction" in overrides[0] else "synthetic-weather:t2m"
        with pytest.raises(ConfigError, match=fragment):
            resolve_run("quick", "convlstm", dataset, 0, parse_overrides(overrides))


def test_every_train_key_has_a_check_and_the_defaults_pass():
    from benchmark.run.config import TRAIN_CHECKS, TRAIN_DEFAULTS, check_train

    assert set(TRAIN_CHECKS) == set(TRAIN_DEFAULTS)
    check_train(dict(TRAIN_DEFAULTS), "simvp", "chdl")
    check_train({"lr": "1e-3", "eval_at": None, "limit_train_batches": 3, "grad_clip": 0.5}, "simvp", "chdl")


@pytest.mark.parametrize(
    "key, value, form",
    [("lr", "abc", "positive number"), ("lr", 0, "positive number"), ("epochs", 2.5, "whole number"),
     ("batch_size", 0, "at least 1"), ("scheduler", "linear", "cosine, constant or onecycle"),
     ("optimizer", "sgd", "adam or adamw"), ("precision", 16, "32-true, bf16-mixed, 16-mixed or auto"),
     ("eval_at", ["x"], "list of epochs"),
     ("eval_at", 5, "list of epochs"), ("limit_val_batches", -1, "null"), ("warmup_steps", -1, "at least 0"),
     ("warmup_fraction", 1.0, "strictly between 0 and 1"), ("weight_decay", -0.1, "at least 0"),
     ("grad_clip", "none", "null (no clipping)"), ("devices", "auto", "whole number")],
)
def test_a_bad_train_value_is_refused_naming_key_value_and_form(key, value, form):
    with pytest.raises(ConfigError) as error:
        resolve_run("smoke", "convlstm", "chdl", 0, {"train": {key: value}})
    text = one_paragraph(error)
    assert f"train.{key} = {value!r}" in text and form in text


def test_model_keys_are_checked_against_each_model_when_the_sweep_is_planned():
    from benchmark.registry import create_model
    from benchmark.run.runner import plan_runs

    both = plan_runs("simvp,pastnet", "synthetic-weather", "smoke", [0], {"model": {"hid_T": 8}})
    assert [c.model_args["hid_T"] for c in both] == [8, 8]  # a key every model of the sweep takes goes to all
    with pytest.raises(ConfigError, match=r"Did you mean hid_s -> hid_S\? simvp takes only these model keys"):
        plan_runs("simvp", "synthetic-weather", "smoke", [0], {"model": {"hid_s": 8}})
    with pytest.raises(ConfigError, match=r"none of the 2 models of this sweep \(convlstm, simvp\) takes it\. "
                                          r"Did you mean num_hiden -> num_hidden\?"):
        plan_runs("convlstm,simvp", "synthetic-weather", "smoke", [0], {"model": {"num_hiden": [8]}})
    with pytest.raises(ConfigError,
                       match=r"hid_T \(taken by simvp, pastnet; not by persistence, climatology, convlstm"):
        plan_runs("all", "synthetic-weather", "smoke", [0], {"model": {"hid_T": 8}})
    profile = {"data": {"t_in": 2, "t_out": 1}, "datasets": {"synthetic-weather": {"model": {"hid_S": 4}}}}
    with pytest.raises(ConfigError, match=r"Unknown model key hid_S for convlstm \(in the profile's `datasets: "
                                          r"synthetic-weather` entry\)\..*; a key that only some models take"):
        resolve_run("custom", "convlstm", "synthetic-weather", 0, profile=profile)
    with pytest.raises(ConfigError, match=r"Unknown model key nosuch for simvp \(given to its builder\)"):
        create_model("simvp", (2, 1, 1, 8, 8), nosuch=1)
