"""Hourly WeatherBench sources: the hourly 0.25-degree store path (`--source wb2-hourly`, here a small
hourly 2-degree store, local and over HTTP) and the original WeatherBench 1 zips from a mirror
(`--source wb1-zip`, served by a local HTTP server with and without Range support, one that cuts
its first answer short), through the library and the command line."""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.core.errors import DataError
from benchmark.data.regrid import GridMapper, cell_areas
from benchmark.data.wb1_files import GRID_FOLDER, WB1_LAT, WB1_LON, variable_file, write_variable_year
from benchmark.data.wb1_zip import ZIP_FOLDER, download_wb1_zips
from benchmark.data.wb2 import download_weatherbench
from benchmark.data.weatherbench import load_weatherbench

YEARS = (2001, 2002, 2003)
HOURS = 30  # hourly steps at the start of each year in the store
STORE_YEARS = (2000, *YEARS, 2004)  # 2000 and 2004 lie outside the store's valid time range (NaN in 2000)
FINE_LAT = np.arange(90.0, -90.1, -2.0)  # 91 latitudes, north to south with the poles, as ARCO-ERA5
FINE_LON = np.arange(0.0, 360.0, 2.0)  # 180 longitudes
SPLITS = {"train_years": "2001", "val_years": "2002", "test_years": "2003", "t_in": 2, "t_out": 2}
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def hourly_times(years=YEARS, hours: int = HOURS) -> np.ndarray:
    steps = np.arange(hours).astype("timedelta64[h]")
    return np.concatenate([np.datetime64(f"{y}-01-01T00", "h") + steps for y in years]).astype("datetime64[ns]")


def year_index(times: np.ndarray, year: int) -> np.ndarray:
    return (times.astype("datetime64[Y]").astype(int) + 1970) == year


def read_file(root: Path, folder: str, name: str, year: int) -> xr.DataArray:
    with xr.open_dataset(variable_file(root / GRID_FOLDER, folder, year)) as dataset:
        return dataset[name].load()


def physical_frames(data, split: str) -> np.ndarray:
    return data.normalizer.denormalize(getattr(data, split).frames.astype(np.float64))


# --- wb2-hourly: a fine, hourly zarr store -------------------------------------------------------


@pytest.fixture(scope="module")
def fine_truth() -> dict[str, np.ndarray]:
    """Hourly fields on the 2-degree grid (ARCO orientation): t2m warm at the equator and
    changing by the hour, tcc in 0..1 (no units attribute: judged from valid values, not from the
    NaN before the store's valid time range, as on ARCO-ERA5)."""
    rng = np.random.default_rng(1)
    n = len(STORE_YEARS) * HOURS
    shape = (n, len(FINE_LAT), len(FINE_LON))
    hours = np.arange(n)[:, None, None]
    t2m = 250 + 40 * np.cos(np.deg2rad(FINE_LAT))[None, :, None] + 0.1 * hours + rng.normal(0, 1, shape)
    tcc = rng.uniform(0, 1, shape)
    fields = {"2m_temperature": t2m.astype(np.float32), "total_cloud_cover": tcc.astype(np.float32)}
    for values in fields.values():
        values[:HOURS] = np.nan
    return fields


@pytest.fixture(scope="module")
def fine_store(tmp_path_factory, fine_truth) -> Path:
    path = tmp_path_factory.mktemp("arco") / "era5-1h.zarr"
    units = {"2m_temperature": {"units": "K"}, "total_cloud_cover": {}}
    dims = ("time", "latitude", "longitude")
    dataset = xr.Dataset({name: (dims, values, units[name]) for name, values in fine_truth.items()},
                         coords={"time": hourly_times(STORE_YEARS), "latitude": FINE_LAT, "longitude": FINE_LON},
                         attrs={"valid_time_start": "2001-01-01", "valid_time_stop": "2003-12-31T23:00"})
    encoding = {name: {"chunks": (6, len(FINE_LAT), len(FINE_LON))} for name in fine_truth}
    dataset.to_zarr(path, zarr_format=2, consolidated=True, mode="w", encoding=encoding)
    return path


@pytest.fixture(scope="module")
def hourly_download(tmp_path_factory, fine_store) -> Path:
    root = tmp_path_factory.mktemp("wb1-hourly")
    download_weatherbench(root, store=str(fine_store), variables="t2m,tcc", years="2001-2003", chunk_steps=7)
    return root


def brute_force_mean(field: np.ndarray, i: int, j: int) -> float:
    """Area-weighted mean of the 2-degree `field` (north to south) over WeatherBench cell (i, j),
    from the cells' edges on the sphere, one source cell at a time (no regrid matrices)."""
    lat = FINE_LAT[::-1]
    values = field[::-1]
    lat_low, lat_high = np.clip(lat - 1, -90, 90), np.clip(lat + 1, -90, 90)
    t_low, t_high = -90 + 5.625 * i, -90 + 5.625 * (i + 1)
    lat_w = np.clip(np.sin(np.deg2rad(np.minimum(lat_high, t_high))) - np.sin(np.deg2rad(np.maximum(lat_low, t_low))),
                    0, None)
    lon_w = np.zeros(len(FINE_LON))
    centre = WB1_LON[j]
    for shift in (-360.0, 0.0, 360.0):
        low, high = FINE_LON - 1 + shift, FINE_LON + 1 + shift
        lon_w += np.clip(np.minimum(high, centre + 2.8125) - np.maximum(low, centre - 2.8125), 0, None)
    weights = lat_w[:, None] * lon_w[None, :]
    return float((weights * values).sum() / weights.sum())


def test_hourly_store_gives_hourly_conservative_files_the_loader_reads(hourly_download, fine_truth, fine_store):
    times = hourly_times(STORE_YEARS)
    for year in YEARS:
        written = read_file(hourly_download, "2m_temperature", "t2m", year)
        assert written.shape == (HOURS, 32, 64) and written.dims == ("time", "lat", "lon")
        np.testing.assert_allclose(written["lat"].values, WB1_LAT)
        steps = np.unique(np.diff(written["time"].values))
        assert len(steps) == 1 and steps[0] == np.timedelta64(1, "h")
        np.testing.assert_array_equal(written["time"].values, times[year_index(times, year)])
    t2m = read_file(hourly_download, "2m_temperature", "t2m", 2002).values
    source = fine_truth["2m_temperature"][year_index(times, 2002)]
    for hour, i, j in ((0, 0, 0), (3, 16, 31), (29, 31, 63), (11, 7, 40)):  # poles, wrap-around, interior
        assert t2m[hour, i, j] == pytest.approx(brute_force_mean(source[hour], i, j), rel=1e-6)
    tcc = read_file(hourly_download, "total_cloud_cover", "tcc", 2003).values
    cloud = fine_truth["total_cloud_cover"][year_index(times, 2003)]
    assert tcc[5, 20, 10] == pytest.approx(brute_force_mean(cloud[5], 20, 10), rel=1e-6)  # a fraction, as stored
    source_mean = (source * cell_areas(FINE_LAT[::-1], FINE_LON)[::-1]).sum(axis=(1, 2))
    np.testing.assert_allclose((t2m * cell_areas(WB1_LAT, WB1_LON)).sum(axis=(1, 2)), source_mean, rtol=1e-6)

    data = load_weatherbench("t2m", {"root": str(hourly_download), **SPLITS})
    assert data.info["time_resolution_hours"] == 1.0 and data.info["frames"] == {"train": 30, "val": 30, "test": 30}
    np.testing.assert_allclose(physical_frames(data, "val")[:, 0], t2m, atol=1e-3)
    six_hourly = load_weatherbench("tcc", {"root": str(hourly_download), **SPLITS, "frame_hours": 6})
    assert six_hourly.info["frame_interval"] == 6 and six_hourly.info["frames"]["train"] == 5


def test_reads_come_in_blocks_of_chunk_steps_and_equal_an_unchunked_read(tmp_path, fine_store, hourly_download,
                                                                          monkeypatch):
    shapes: list[tuple[int, ...]] = []
    original = GridMapper.__call__

    def spy(self, values):
        shapes.append(values.shape)
        return original(self, values)

    monkeypatch.setattr(GridMapper, "__call__", spy)
    calls = []
    report = download_weatherbench(tmp_path / "one", store=str(fine_store), variables="t2m", years="2001,2003",
                                   chunk_steps=HOURS, progress=lambda *a: calls.append(a))
    assert shapes == [(HOURS, 91, 180)] * 2 and report.regridded and report.source_grid == (91, 180)
    assert calls == [(0, 2, "t2m 2001"), (1, 2, "t2m 2001"), (1, 2, "t2m 2003"), (2, 2, "t2m 2003"),
                     (2, 2, "done")]
    shapes.clear()
    calls.clear()
    download_weatherbench(tmp_path / "blocks", store=str(fine_store), variables="t2m", years="2001,2003",
                          chunk_steps=7, progress=lambda *a: calls.append(a))
    assert shapes == ([(7, 91, 180)] * 4 + [(2, 91, 180)]) * 2  # never a whole year of the fine grid at once
    assert [done for done, _, _ in calls] == [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 10]
    assert {total for _, total, _ in calls} == {10}
    for year in (2001, 2003):
        np.testing.assert_array_equal(read_file(tmp_path / "blocks", "2m_temperature", "t2m", year).values,
                                      read_file(tmp_path / "one", "2m_temperature", "t2m", year).values)
        np.testing.assert_array_equal(read_file(tmp_path / "blocks", "2m_temperature", "t2m", year).values,
                                      read_file(hourly_download, "2m_temperature", "t2m", year).values)


def test_second_call_skips_and_damaged_or_partial_years_are_rewritten(tmp_path, fine_store, hourly_download,
                                                                      monkeypatch):
    root = Path(shutil.copytree(hourly_download, tmp_path / "wb1"))
    grid = root / GRID_FOLDER
    before = {p: p.stat().st_mtime_ns for p in grid.rglob("*.nc")}
    reads = []
    original = GridMapper.__call__
    monkeypatch.setattr(GridMapper, "__call__", lambda self, block: reads.append(block.shape) or original(self, block))
    report = download_weatherbench(root, store=str(fine_store), variables="t2m,tcc", years="2001-2003", chunk_steps=7)
    assert report.count("skipped") == 6 and not reads
    assert {p: p.stat().st_mtime_ns for p in grid.rglob("*.nc")} == before

    damaged = variable_file(grid, "2m_temperature", 2001)
    damaged.write_bytes(damaged.read_bytes()[:3000])
    partial = variable_file(grid, "total_cloud_cover", 2003)
    times = hourly_times((2003,), 10)
    write_variable_year(root, "total_cloud_cover", "tcc", 2003, np.full((10, 32, 64), 0.5), times, WB1_LAT, WB1_LON,
                        "(0 - 1)")
    report = download_weatherbench(root, store=str(fine_store), variables="t2m,tcc", years="2001-2003", chunk_steps=7)
    rewritten = {r.path: r.reason for r in report.files if r.status == "rewritten"}
    assert set(rewritten) == {damaged, partial} and report.count("skipped") == 4
    assert "unreadable" in rewritten[damaged] and "10 time steps, expected 30" in rewritten[partial]
    assert len(reads) == 2 * 5  # two files, five blocks of 7 hours each
    for folder, name, year in (("2m_temperature", "t2m", 2001), ("total_cloud_cover", "tcc", 2003)):
        np.testing.assert_array_equal(read_file(root, folder, name, year).values,
                                      read_file(hourly_download, folder, name, year).values)
    assert not list(grid.rglob("*.tmp"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def test_hourly_store_over_http_equals_the_local_one_and_valid_time_limits_years(tmp_path, fine_store,
                                                                                 hourly_download):
    pytest.importorskip("aiohttp")
    handler = functools.partial(_QuietHandler, directory=str(fine_store.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{fine_store.name}"
        report = download_weatherbench(tmp_path / "wb1", store=url, variables="tcc", years="2002", chunk_steps=12)
        with pytest.raises(DataError, match=r"Year\(s\) 2004 are not in .* it holds 2001-2003"):
            download_weatherbench(tmp_path / "late", store=url, variables="tcc", years="2003-2004")
    finally:
        server.shutdown()
        server.server_close()
    assert report.count("written") == 1 and report.store.startswith("http://")
    np.testing.assert_array_equal(read_file(tmp_path / "wb1", "total_cloud_cover", "tcc", 2002).values,
                                  read_file(hourly_download, "total_cloud_cover", "tcc", 2002).values)


def test_a_store_without_relative_humidity_says_where_to_get_r(tmp_path):
    dims = ("time", "level", "latitude", "longitude")
    humidity = np.full((2, 1, len(FINE_LAT), len(FINE_LON)), 0.01, dtype=np.float32)
    xr.Dataset({"specific_humidity": (dims, humidity)},
               coords={"time": hourly_times((2001,), 2), "level": [1000], "latitude": FINE_LAT,
                       "longitude": FINE_LON}).to_zarr(tmp_path / "q.zarr", zarr_format=2, consolidated=True)
    with pytest.raises(DataError, match="no variable relative_humidity") as caught:
        download_weatherbench(tmp_path / "wb1", store=str(tmp_path / "q.zarr"), variables="r", years="2001")
    assert "--source wb1-zip" in str(caught.value) and "It has: specific_humidity." in str(caught.value)


# --- wb1-zip: the original zips from a mirror ----------------------------------------------------

ZIP_HOURS = 8
ZIP_VARIABLES = {"t2m": ("2m_temperature", "K"), "tcc": ("total_cloud_cover", "(0 - 1)")}


@pytest.fixture(scope="module")
def wb1_original(tmp_path_factory) -> tuple[Path, dict[str, dict[int, np.ndarray]]]:
    """WeatherBench 1 files (hourly, 32 x 64) of t2m and tcc for three short years, and their values."""
    root = tmp_path_factory.mktemp("wb1-original")
    rng = np.random.default_rng(2)
    values: dict[str, dict[int, np.ndarray]] = {}
    for name, (folder, units) in ZIP_VARIABLES.items():
        values[name] = {}
        for year in YEARS:
            data = rng.uniform(0, 1, (ZIP_HOURS, 32, 64)) + (260 if name == "t2m" else 0)
            values[name][year] = data.astype(np.float32)
            write_variable_year(root, folder, name, year, data, hourly_times((year,), ZIP_HOURS), WB1_LAT, WB1_LON,
                                units)
    return root, values


@pytest.fixture(scope="module")
def zips(tmp_path_factory, wb1_original) -> Path:
    """The per-variable zips as WeatherBench 1 published them: t2m's members flat, tcc's in a
    subfolder next to a macOS resource file and a readme (both to be ignored)."""
    folder = tmp_path_factory.mktemp("mirror")
    grid = wb1_original[0] / GRID_FOLDER
    for variable, prefix in (("2m_temperature", ""), ("total_cloud_cover", f"{GRID_FOLDER}/total_cloud_cover/")):
        with zipfile.ZipFile(folder / f"{variable}_5.625deg.zip", "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted((grid / variable).glob("*.nc")):
                archive.write(path, prefix + path.name)
            if prefix:
                archive.writestr(f"__MACOSX/{prefix}._{variable}_2001_5.625deg.nc", b"resource fork")
                archive.writestr("README.txt", "WeatherBench")
    return folder


@dataclass
class Mirror:
    """What the test server serves and how: Range support, answers to cut short, requests seen."""

    folder: Path
    honour_range: bool = True
    cut_next: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _MirrorHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        mirror: Mirror = self.server.mirror  # type: ignore[attr-defined]
        address = urllib.parse.urlsplit(self.path)
        name = urllib.parse.parse_qs(address.query).get("files", [address.path])[0].rsplit("/", 1)[-1]
        asked = self.headers.get("Range")
        mirror.requests.append((name, asked))
        path = mirror.folder / name
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", asked or "")
        start = int(match.group(1)) if match and mirror.honour_range else 0
        if start >= len(body) and start:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if mirror.cut_next:
            mirror.cut_next -= 1
            payload = payload[:len(payload) // 3]
        self.wfile.write(payload)


@pytest.fixture
def mirror(zips) -> Iterator[tuple[Mirror, str]]:
    state = Mirror(zips)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MirrorHandler)
    server.mirror = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/wb1/5.625deg/"
    finally:
        server.shutdown()
        server.server_close()


def test_zips_download_unpack_verify_and_load(tmp_path, mirror, wb1_original):
    state, url = mirror
    calls = []
    report = download_wb1_zips(tmp_path / "wb1", url, variables="t2m,tcc", years="2001-2003",
                               progress=lambda *a: calls.append(a))
    assert report.count("written") == 6 and [name for name, _ in state.requests] == [
        "2m_temperature_5.625deg.zip", "total_cloud_cover_5.625deg.zip"]
    assert calls[0] == (0, 2, "2m_temperature") and calls[-1] == (2, 2, "done")
    assert any(text.startswith("2m_temperature_5.625deg.zip") and text.endswith("MB") for _, _, text in calls)
    assert not list((tmp_path / "wb1" / ZIP_FOLDER).iterdir())  # zips deleted after unpacking
    grid = tmp_path / "wb1" / GRID_FOLDER
    assert sorted(p.name for p in (grid / "total_cloud_cover").iterdir()) == [
        f"total_cloud_cover_{y}_5.625deg.nc" for y in YEARS]
    values = wb1_original[1]
    for task in ("t2m", "tcc"):
        data = load_weatherbench(task, {"root": str(tmp_path / "wb1"), **SPLITS})
        assert data.info["time_resolution_hours"] == 1.0
        np.testing.assert_allclose(physical_frames(data, "test")[:, 0], values[task][2003], atol=1e-4)


def test_a_truncated_download_resumes_with_range_and_names_the_file(tmp_path, mirror, zips):
    state, url = mirror
    state.cut_next = 1
    with pytest.raises(DataError) as caught:
        download_wb1_zips(tmp_path / "wb1", url, variables="t2m", years="2001-2003", keep_zip=True)
    message = str(caught.value)
    full = (zips / "2m_temperature_5.625deg.zip").stat().st_size
    part = tmp_path / "wb1" / ZIP_FOLDER / "2m_temperature_5.625deg.zip.part"
    assert part.stat().st_size == (full) // 3
    assert f"stopped at {full // 3:,} of {full:,} bytes" in message and "2m_temperature_5.625deg.zip" in message
    assert "run the same command again to resume" in message and str(part) in message
    assert not (tmp_path / "wb1" / GRID_FOLDER).exists()

    report = download_wb1_zips(tmp_path / "wb1", url, variables="t2m", years="2001-2003", keep_zip=True)
    assert report.count("written") == 3
    assert state.requests[-1] == ("2m_temperature_5.625deg.zip", f"bytes={full // 3}-")
    kept = tmp_path / "wb1" / ZIP_FOLDER / "2m_temperature_5.625deg.zip"
    assert kept.read_bytes() == (zips / kept.name).read_bytes() and not part.exists()


def test_a_part_that_is_already_whole_is_taken_as_it_is(tmp_path, mirror, zips):
    state, url = mirror
    part = tmp_path / "wb1" / ZIP_FOLDER / "2m_temperature_5.625deg.zip.part"
    part.parent.mkdir(parents=True)
    full = (zips / "2m_temperature_5.625deg.zip").read_bytes()
    part.write_bytes(full)  # an earlier run stopped just before the rename
    assert download_wb1_zips(tmp_path / "wb1", url, variables="t2m", years="2002").count("written") == 1
    assert state.requests == [("2m_temperature_5.625deg.zip", f"bytes={len(full)}-")]  # answered 416: nothing left
    assert not part.exists()


def test_a_server_without_range_support_restarts_the_download(tmp_path, mirror, zips):
    state, url = mirror
    state.honour_range, state.cut_next = False, 1
    with pytest.raises(DataError, match="stopped at"):
        download_wb1_zips(tmp_path / "wb1", url, variables="tcc", years="2002", keep_zip=True)
    report = download_wb1_zips(tmp_path / "wb1", url, variables="tcc", years="2002", keep_zip=True)
    assert report.count("written") == 1 and state.requests[-1][1] is not None  # asked for a range, got it all
    kept = tmp_path / "wb1" / ZIP_FOLDER / "total_cloud_cover_5.625deg.zip"
    assert kept.read_bytes() == (zips / kept.name).read_bytes()
    # the kept zip is reused: unpacking another year needs no request
    seen = len(state.requests)
    assert download_wb1_zips(tmp_path / "wb1", url, variables="tcc", years="2001-2002").count("written") == 1
    assert len(state.requests) == seen and not kept.exists()


def test_files_already_present_are_skipped_without_download(tmp_path, mirror, wb1_original):
    state, url = mirror
    root = tmp_path / "wb1"
    shutil.copytree(wb1_original[0] / GRID_FOLDER / "2m_temperature", root / GRID_FOLDER / "2m_temperature")
    shutil.copytree(wb1_original[0] / GRID_FOLDER / "total_cloud_cover", root / GRID_FOLDER / "total_cloud_cover")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.nc")}
    report = download_wb1_zips(root, url, variables="t2m,tcc", years="2001-2003")
    assert report.count("skipped") == 6 and state.requests == []
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.nc")} == before

    damaged = variable_file(root / GRID_FOLDER, "total_cloud_cover", 2002)
    damaged.write_bytes(b"not netcdf")
    report = download_wb1_zips(root, url, variables="t2m,tcc", years="2001-2003")
    assert [(r.path, r.status) for r in report.files if r.status != "skipped"] == [(damaged, "rewritten")]
    assert [name for name, _ in state.requests] == ["total_cloud_cover_5.625deg.zip"]
    np.testing.assert_array_equal(read_file(root, "total_cloud_cover", "tcc", 2002).values,
                                  wb1_original[1]["tcc"][2002])


def test_a_local_folder_and_a_template_url_work_and_missing_years_are_named(tmp_path, mirror, zips):
    report = download_wb1_zips(tmp_path / "local", str(zips), variables="tcc", years="2003")
    assert report.count("written") == 1 and (zips / "total_cloud_cover_5.625deg.zip").exists()  # never deleted
    state, url = mirror
    template = url.replace("/wb1/5.625deg/", "/download?path=%2F5.625deg%2F{folder}&files={name}")
    assert download_wb1_zips(tmp_path / "template", template, variables="t2m", years="2001").count("written") == 1
    assert state.requests == [("2m_temperature_5.625deg.zip", None)]
    with pytest.raises(DataError, match="has no file for 2004 of total_cloud_cover .*holds 2001-2003"):
        download_wb1_zips(tmp_path / "late", str(zips), variables="tcc", years="2003-2004")
    with pytest.raises(DataError, match="HTTP 404"):
        download_wb1_zips(tmp_path / "gone", url, variables="u10", years="2003")


def test_a_corrupt_zip_is_deleted_and_named(tmp_path, mirror, zips):
    state, url = mirror
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "2m_temperature_5.625deg.zip").write_bytes(b"PK not really a zip")
    state.folder = broken
    with pytest.raises(DataError, match="2m_temperature_5.625deg.zip from .* is not a complete zip file"):
        download_wb1_zips(tmp_path / "wb1", url, variables="t2m", years="2001")
    assert not list((tmp_path / "wb1" / ZIP_FOLDER).iterdir())


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, fragments", [
    (["--source", "nope"], ["Unknown --source 'nope'", "wb2 (", "wb2-hourly (", "wb1-zip ("]),
    (["--source", "wb1-zip"], ["--source wb1-zip needs --url"]),
    (["--url", "http://example.org/"], ["--url is for --source wb1-zip only"]),
    (["--source", "wb2-hourly", "--keep-zip"], ["--keep-zip is for --source wb1-zip only"]),
    (["--source", "wb1-zip", "--url", "http://example.org/", "--store", "x.zarr"], ["--store does not apply"]),
])
def test_cli_rejects_unknown_sources_and_misplaced_options(tmp_path, args, fragments):
    result = invoke("data", "download", "weatherbench", "--root", str(tmp_path / "out"), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Error:" in result.output
    for fragment in fragments:
        assert fragment in result.output
    assert not (tmp_path / "out").exists()


def test_cli_wb1_zip_end_to_end_then_again(tmp_path, mirror):
    state, url = mirror
    args = ("data", "download", "weatherbench", "--root", str(tmp_path / "wb1"), "--source", "wb1-zip", "--url", url,
            "--variables", "t2m,tcc", "--years", "2001-2003")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "6 written, 0 rewritten, 0 already complete" in result.output
    again = invoke(*args)
    assert again.exit_code == 0 and "0 written, 0 rewritten, 6 already complete" in again.output
    assert len(state.requests) == 2
    info = invoke("data", "info", "weatherbench", "--root", str(tmp_path / "wb1"))
    row = next(line for line in info.output.splitlines() if "total_cloud_cover" in line)
    assert "2001-2003" in row and "32x64" in row


def test_cli_wb2_hourly_with_a_local_store(tmp_path, fine_store):
    result = invoke("data", "download", "weatherbench", "--root", str(tmp_path / "wb1"), "--source", "wb2-hourly",
                    "--store", str(fine_store), "--years", "2002", "--variables", "tcc", "--chunk-steps", "10")
    assert result.exit_code == 0, result.output
    assert "Regridded from the store's 91 x 180 grid to 32 x 64" in result.output and "1 written" in result.output
    assert read_file(tmp_path / "wb1", "total_cloud_cover", "tcc", 2002).shape == (HOURS, 32, 64)
