"""Ensemble scores (fair CRPS, rank histogram, spread-skill), DIFFUMA's sampling, `bench ensemble`, `bench predict`."""

import itertools

import numpy as np
import pytest
import torch
import xarray as xr
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.core.errors import ConfigError
from benchmark.data.base import Normalizer
from benchmark.registry import create_model
from benchmark.registry.shapes import DataShape
from benchmark.scoring.ensemble import EnsembleAccumulator, fair_crps, rank_counts, spread_skill_ratio

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def _random(m: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    members = torch.randn(m, 3, 2, 5, 4, generator=generator, dtype=torch.float64)
    return members, torch.randn(3, 2, 5, 4, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("m", [2, 3, 8])
def test_fair_crps_equals_the_scores_package_and_the_pairwise_formula(m):
    import scores.probability

    members, target = _random(m, seed=m)
    ours = fair_crps(members, target).numpy()
    dims = ("a", "b", "c", "d")
    reference = scores.probability.crps_for_ensemble(
        xr.DataArray(members.numpy(), dims=("member", *dims)), xr.DataArray(target.numpy(), dims=dims),
        "member", method="fair", preserve_dims=list(dims)).values
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    x, y = members.numpy(), target.numpy()  # Ferro (2014) eq. written out over all pairs
    pairs = sum(np.abs(x[i] - x[j]) for i, j in itertools.product(range(m), repeat=2))
    np.testing.assert_allclose(ours, np.abs(x - y).mean(axis=0) - pairs / (2 * m * (m - 1)), rtol=1e-12, atol=1e-12)


def test_fair_crps_of_one_member_is_its_mae():
    members, target = _random(1)
    assert torch.equal(fair_crps(members, target), (members[0] - target).abs())


def test_rank_counts_equal_the_scores_rank_histogram():
    import scores.probability

    members, target = _random(5, seed=3)
    counts = rank_counts(members, target)
    assert counts.sum() == target.numel() and counts.shape == (6,)
    dims = ("a", "b", "c", "d")
    reference = scores.probability.rank_histogram(
        xr.DataArray(members.numpy(), dims=("member", *dims)), xr.DataArray(target.numpy(), dims=dims), "member")
    np.testing.assert_allclose(counts.numpy() / target.numel(), reference.values, atol=1e-12)


def _identity_normalizer(channels: int = 1) -> Normalizer:
    ones = np.ones(channels)
    return Normalizer(mean=0 * ones, std=ones, data_min=-5 * ones, data_max=5 * ones)


def test_a_reliable_ensemble_has_spread_skill_one_and_a_flat_rank_histogram():
    # truth and members drawn from the same distribution: reliable at any ensemble size
    generator = torch.Generator().manual_seed(1)
    m = 4
    accumulator = EnsembleAccumulator(2, _identity_normalizer(), "radial", m)
    for _ in range(4):
        centre = torch.randn(16, 2, 1, 16, 16, generator=generator, dtype=torch.float64)
        members = centre + torch.randn(m, 16, 2, 1, 16, 16, generator=generator, dtype=torch.float64)
        accumulator.update(members, centre + torch.randn(16, 2, 1, 16, 16, generator=generator, dtype=torch.float64))
    result = accumulator.compute()
    assert result["normalized"]["spread_skill"] == pytest.approx(1.0, abs=0.02)
    counts = np.asarray(result["rank_histogram"]["counts"])
    assert np.abs(counts / counts.sum() - 1 / (m + 1)).max() < 0.01
    # an ensemble of copies of one forecast has no spread (ratio 0) and puts the truth at the ends
    accumulator = EnsembleAccumulator(2, _identity_normalizer(), "radial", m)
    one = torch.randn(8, 2, 1, 16, 16, generator=generator, dtype=torch.float64)
    accumulator.update(one.expand(m, *one.shape), torch.randn(8, 2, 1, 16, 16, generator=generator))
    result = accumulator.compute()
    assert result["normalized"]["spread_skill"] == 0.0
    assert result["rank_histogram"]["counts"][1:-1] == [0] * (m - 1)
    assert spread_skill_ratio(1.0, 0.0, m) is None and spread_skill_ratio(1.0, 1.0, 1) is None


def test_crps_and_ensemble_mean_in_physical_units_scale_with_the_std():
    normalizer = Normalizer(mean=np.array([10.0]), std=np.array([3.0]), data_min=np.array([0.0]),
                            data_max=np.array([20.0]))
    members, target = torch.randn(3, 2, 2, 1, 8, 8, dtype=torch.float64), torch.randn(2, 2, 1, 8, 8,
                                                                                      dtype=torch.float64)
    accumulator = EnsembleAccumulator(2, normalizer, "radial", 3)
    accumulator.update(members, target)
    result = accumulator.compute()
    assert result["physical"]["crps"] == pytest.approx(3 * result["normalized"]["crps"])
    assert result["physical"]["ens_mse"] == pytest.approx(9 * result["normalized"]["ens_mse"])
    assert result["physical"]["spread_skill"] == pytest.approx(result["normalized"]["spread_skill"])
    assert result["normalized"]["crps"] == pytest.approx(fair_crps(members, target).mean().item())


SMOKE = {"hidden": 8, "mamba_layers": 1, "d_state": 4, "downsample": 2, "dit_depth": 1, "dit_hidden": 16,
         "dit_heads": 2}


def test_diffuma_members_differ_only_by_noise_and_match_ddim_at_initialisation():
    torch.manual_seed(0)
    model = create_model("diffuma", DataShape(3, 2, 1, 8, 16), **SMOKE, ensemble_t=50, ensemble_steps=5).eval()
    x = torch.randn(2, 3, 1, 8, 16)
    first = model.sample_ensemble(x, 200, generator=torch.Generator().manual_seed(7))
    again = model.sample_ensemble(x, 200, generator=torch.Generator().manual_seed(7))
    assert first.shape == (200, 2, 2, 1, 8, 16) and torch.equal(first, again)
    # At initialisation the DiT outputs exactly 0 (adaLN-Zero), so eps_hat = 0, every DDIM step keeps
    # x0_hat = x_t / sqrt(abar_t) and a member is y_hat + sqrt((1 - abar_t) / abar_t) * eps.
    abar = model.alphas_cumprod[50].double()
    with torch.no_grad():
        single = model(x)
    generator, scale = torch.Generator().manual_seed(7), ((1 - abar) / abar).sqrt().float()
    expected = torch.stack([single + scale * torch.randn(4, 1, 8, 16, generator=generator).view_as(single)
                            for _ in range(200)])
    torch.testing.assert_close(first, expected, rtol=1e-4, atol=1e-5)
    assert first.std(dim=0).mean().item() == pytest.approx(scale.item(), rel=0.05)
    other = model.sample_ensemble(x, 2, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other, first[:2])
    with pytest.raises(ValueError, match="no diffusion module"):
        create_model("diffuma-mamba", DataShape(3, 2, 1, 8, 16), hidden=8, mamba_layers=1, d_state=4).sample_ensemble(
            x, 2)


def test_ensemble_settings_are_checked_and_stay_out_of_the_run_id():
    from benchmark.run.config import resolve_run

    base = resolve_run("smoke", "diffuma", "synthetic-weather:t2m", 0)
    changed = resolve_run("smoke", "diffuma", "synthetic-weather:t2m", 0, {"model": {"ensemble_t": 300}})
    assert changed.model_args["ensemble_t"] == 300 and changed.run_id == base.run_id
    with pytest.raises(ConfigError, match="ensemble_steps must be an integer from 1 to ensemble_t"):
        create_model("diffuma", DataShape(3, 2, 1, 8, 16), **SMOKE, ensemble_t=5, ensemble_steps=6)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A smoke DIFFUMA run and a persistence run scored on their whole test split."""
    from benchmark.run.runner import execute_run, plan_runs

    results = tmp_path_factory.mktemp("results")
    configs = plan_runs("persistence,diffuma", "synthetic-weather", "smoke", [0],
                        {"train": {"epochs": 1, "limit_test_batches": None}})
    return results, [execute_run(config, results) for config in configs]


def test_predict_writes_the_forecasts_the_record_was_scored_on(finished, tmp_path):
    results, records = finished
    for record in records:
        out = tmp_path / f"{record.config.model}.nc"
        result = invoke("predict", record.run_id, "--results", str(results), "--out", str(out),
                        "--accelerator", "cpu")
        assert result.exit_code == 0, result.output
        assert "MiB" in result.output
        from benchmark.data.registry import load_dataset

        data = load_dataset(record.config.dataset, record.config.data)
        truth = np.stack([data.normalizer.denormalize(data.test[i][1].numpy()) for i in range(len(data.test))])
        with xr.open_dataset(out) as forecasts:
            assert forecasts["t2m"].dims == ("time", "prediction_timedelta", "latitude", "longitude")
            assert forecasts["t2m"].attrs["units"] == data.units[0]
            assert forecasts.sizes["time"] == len(data.test) == record.test.count
            lead = forecasts["prediction_timedelta"].values[0]
            assert lead == np.timedelta64(int(data.info["frame_hours"]), "h")
            first_input, first_target = data.test.times(0)
            assert forecasts["time"].values[0] == first_input[-1] and first_input[-1] + lead == first_target[0]
            values = forecasts["t2m"].values[:, :, None]
        mse = float(np.mean((values.astype(np.float64) - truth) ** 2))
        assert mse == pytest.approx(record.test.physical.mse, rel=1e-5)


def test_ensemble_scores_a_diffuma_run_into_its_record_tables_and_figures(finished, tmp_path):
    from benchmark.results.records import load_records, records_to_frame

    results, records = finished
    diffuma = next(r for r in records if r.config.model == "diffuma")
    result = invoke("ensemble", diffuma.run_id, "--results", str(results), "--members", "3", "--ensemble-t", "20",
                    "--ensemble-steps", "2", "--accelerator", "cpu")
    assert result.exit_code == 0, result.output
    stored = {r.run_id: r for r in load_records(results)}
    ensemble = stored[diffuma.run_id].ensemble
    assert ensemble["members"] == 3 and ensemble["options"] == {"t_start": 20, "steps": 2}
    assert ensemble["count"] == diffuma.test.count and sum(ensemble["rank_histogram"]["counts"]) > 0
    assert stored[diffuma.run_id].test == diffuma.test  # the single pass stays as it was
    frame = records_to_frame(list(stored.values()))
    crps = frame[(frame.metric == "crps") & (frame.lead == 0) & (frame.space == "normalized")].set_index("model")
    mae = frame[(frame.metric == "mae") & (frame.lead == 0) & (frame.space == "normalized")].set_index("model")
    assert crps.loc["persistence", "value"] == mae.loc["persistence", "value"]  # deterministic: CRPS = MAE
    assert crps.loc["diffuma", "value"] == ensemble["normalized"]["crps"]
    table = invoke("table", "--results", str(results), "--metrics", "crps,spread_skill", "--profile", "smoke")
    assert table.exit_code == 0, table.output
    assert "CRPS" in table.output
    from benchmark.present.plots_ensemble import plot_crps_by_lead, plot_ensemble_members, plot_rank_histogram

    figures = tmp_path / "figures"
    for draw, stem in ((plot_crps_by_lead, "crps_by_lead"), (plot_rank_histogram, "rank_histogram"),
                       (plot_ensemble_members, "ensemble_members")):
        paths = draw(list(stored.values()), results, figures, formats=("png",))
        assert [p.name for p in paths] == [f"{stem}_synthetic-weather-t2m.png"]
        assert paths[0].stat().st_size > 2000
    members = np.load(results / diffuma.run_id / ensemble["members_file"])
    assert members["members"].shape == (3, *members["truth"].shape) == (3, 3, 1, 32, 64)
    # a deterministic model has nothing to sample
    refused = invoke("ensemble", next(r for r in records if r.config.model == "persistence").run_id,
                     "--results", str(results), "--accelerator", "cpu")
    assert refused.exit_code == 2 and "its CRPS is its MAE" in refused.output


def test_predict_writes_chdl_as_frames(tmp_path):
    from benchmark.run.runner import execute_run, plan_runs

    [config] = plan_runs("persistence", "synthetic-chdl", "smoke", [0], {"train": {"limit_test_batches": None}})
    record = execute_run(config, tmp_path / "results")
    result = invoke("predict", record.run_id, "--results", str(tmp_path / "results"), "--accelerator", "cpu")
    assert result.exit_code == 0, result.output
    with xr.open_dataset(tmp_path / "results" / record.run_id / "forecasts.nc") as forecasts:
        [name] = forecasts.data_vars
        assert forecasts[name].dims == ("sample", "lead", "y", "x")
        assert forecasts.sizes["sample"] == record.test.count and forecasts.sizes["lead"] == config.t_out
        assert list(forecasts["sample_index"].values) == list(range(record.test.count))
