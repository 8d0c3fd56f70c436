"""Profiles, the precedence order, overrides and run ids."""

import pytest

from benchmark.config import RunConfig, load_profile, parse_overrides, resolve_run
from benchmark.errors import ConfigError, UnknownNameError

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
