"""Area-average down-sampling: the one down-sampler of the data package.

Every down-sampling here is separable: an output cell is the mean of the source cells it overlaps,
weighted by the overlap, and the weights factor into one matrix per axis, so `(..., H, W)` values
become `rows @ values @ cols.T` (`area_average`). The weights come from the overlap lengths of
target and source intervals (`interval_overlaps`), measured

- in pixel index space for images (`area_matrix`: CHDL's `resize`, WeatherBench's `coarsen`), and
- on the sphere for latitude-longitude grids (`regrid_matrices`: in sin(latitude) and in degrees of
  longitude, periodic), used to bring a WeatherBench 2 store onto the WeatherBench 1 grid.
"""

from __future__ import annotations

import numpy as np

from benchmark.core.errors import DataError
from benchmark.data.wb1_files import WB1_LAT, WB1_LON

_CHUNK_FRAMES = 512  # frames coarsened at once: bounds the float64 working copy


def interval_overlaps(target_low: np.ndarray, target_high: np.ndarray, source_low: np.ndarray,
                      source_high: np.ndarray, period: float | None = None) -> np.ndarray:
    """`(n_target, n_source)` lengths of the overlap of each target with each source interval; with
    `period`, source intervals shifted by -period, 0 and +period count too (wrap-around)."""
    t0, t1 = np.asarray(target_low)[:, None, None], np.asarray(target_high)[:, None, None]
    shifts = np.array([0.0]) if period is None else np.array([-period, 0.0, period])
    s0 = np.asarray(source_low)[None, :, None] + shifts[None, None, :]
    s1 = np.asarray(source_high)[None, :, None] + shifts[None, None, :]
    return np.clip(np.minimum(t1, s1) - np.maximum(t0, s0), 0.0, None).sum(axis=2)


def area_average(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`(..., H, W)` values averaged onto `(..., H', W')` with the per-axis weights `rows` `(H', H)`
    and `cols` `(W', W)`; computed in the dtype the inputs give (numpy's promotion)."""
    return rows @ values @ cols.T


# --- pixel index space ---------------------------------------------------------------------------


def area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """`(size_out, size_in)` float32 weights of area-average down-scaling along one axis (rows sum to 1):
    output pixel i covers source pixels [i * step, (i + 1) * step) with step = size_in / size_out,
    fractional pixels weighted."""
    step = size_in / size_out
    low = np.arange(size_out) * step
    pixels = np.arange(size_in, dtype=np.float64)
    return (interval_overlaps(low, low + step, pixels, pixels + 1) / step).astype(np.float32)


def coarsen(frames: np.ndarray, factor: int) -> np.ndarray:
    """Means over `factor x factor` blocks of the last two axes of float32 `(N, C, H, W)` frames
    (`factor` divides H and W), computed in float64 and returned as float32."""
    if factor == 1:
        return frames
    n, c, height, width = frames.shape
    rows = area_matrix(height, height // factor).astype(np.float64)
    cols = area_matrix(width, width // factor).astype(np.float64)
    out = np.empty((n, c, height // factor, width // factor), dtype=np.float32)
    for start in range(0, n, _CHUNK_FRAMES):
        chunk = frames[start:start + _CHUNK_FRAMES].astype(np.float64)
        out[start:start + _CHUNK_FRAMES] = area_average(chunk, rows, cols)
    return out


def coarsen_coordinate(values: np.ndarray, factor: int) -> np.ndarray:
    """Cell centres of a coarsened axis: the mean of each `factor` consecutive `values`."""
    values = np.asarray(values, dtype=np.float64)
    if factor == 1:
        return values
    return area_matrix(len(values), len(values) // factor).astype(np.float64) @ values


# --- the sphere ----------------------------------------------------------------------------------


def lat_edges(lat: np.ndarray) -> np.ndarray:
    """Cell boundaries (degrees, ascending, clipped to +-90) of ascending latitude centres: midpoints
    between neighbours, half a spacing beyond the first and last centre (a centre on a pole gets a
    half-width cell)."""
    lat = np.asarray(lat, dtype=np.float64)
    inner = (lat[:-1] + lat[1:]) / 2
    outer = [lat[0] - (lat[1] - lat[0]) / 2, lat[-1] + (lat[-1] - lat[-2]) / 2]
    return np.clip(np.r_[outer[0], inner, outer[1]], -90.0, 90.0)


def lon_edges(lon: np.ndarray) -> np.ndarray:
    """Cell boundaries of ascending longitude centres in [0, 360) on a periodic global grid: the
    first edge lies halfway between the last centre (minus 360) and the first; the last edge is the
    first plus 360."""
    lon = np.asarray(lon, dtype=np.float64)
    first = (lon[-1] - 360.0 + lon[0]) / 2
    return np.r_[first, (lon[:-1] + lon[1:]) / 2, first + 360.0]


def _edge_overlaps(target: np.ndarray, source: np.ndarray, period: float | None = None) -> np.ndarray:
    return interval_overlaps(target[:-1], target[1:], source[:-1], source[1:], period)


def regrid_matrices(lat: np.ndarray, lon: np.ndarray, target_lat: np.ndarray = WB1_LAT,
                    target_lon: np.ndarray = WB1_LON) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalized conservative weights `(A, B)`, so that `A @ field @ B.T` maps a field on the
    ascending `(lat, lon)` grid to the target grid. A cell's area is proportional to
    d(sin lat) * d(lon), and it separates, so the weights are outer products of a latitude factor
    (overlap in sin(lat)) and a longitude factor (overlap in degrees, periodic)."""
    lat_w = _edge_overlaps(np.sin(np.deg2rad(lat_edges(target_lat))), np.sin(np.deg2rad(lat_edges(lat))))
    lon_w = _edge_overlaps(lon_edges(target_lon), lon_edges(lon), period=360.0)
    for weights, what in ((lat_w, "latitude"), (lon_w, "longitude")):
        if np.any(weights.sum(axis=1) <= 0):
            raise DataError(f"The store's grid does not cover the WeatherBench grid in {what}; "
                            "a global grid is needed.")
    return lat_w / lat_w.sum(axis=1, keepdims=True), lon_w / lon_w.sum(axis=1, keepdims=True)


def cell_areas(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Relative areas `(lat, lon)` of the cells of an ascending global grid (they sum to 1)."""
    lat_size = np.diff(np.sin(np.deg2rad(lat_edges(lat))))
    lon_size = np.diff(lon_edges(np.mod(lon, 360.0)))
    areas = np.outer(lat_size, lon_size)
    return areas / areas.sum()


class GridMapper:
    """Maps `(..., lat, lon)` values on a source grid to the target grid (default: WeatherBench 1's):
    sorts latitude ascending and longitude into 0..360, then regrids conservatively unless the grid
    already is the target."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, target_lat: np.ndarray = WB1_LAT,
                 target_lon: np.ndarray = WB1_LON, force_regrid: bool = False) -> None:
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.mod(np.asarray(lon, dtype=np.float64), 360.0)
        if len(lat) < 2 or len(lon) < 2 or len(np.unique(lat)) != len(lat) or len(np.unique(lon)) != len(lon):
            raise DataError(f"The store's grid ({len(lat)} x {len(lon)}) needs at least two distinct "
                            "latitudes and longitudes.")
        self.lat_order, self.lon_order = np.argsort(lat), np.argsort(lon)
        sorted_lat, sorted_lon = lat[self.lat_order], lon[self.lon_order]
        self.source_shape = (len(lat), len(lon))
        self.native = not force_regrid and self.source_shape == (len(target_lat), len(target_lon)) and bool(
            np.allclose(sorted_lat, target_lat, atol=1e-3) and np.allclose(sorted_lon, target_lon, atol=1e-3))
        self.weights = None if self.native else regrid_matrices(sorted_lat, sorted_lon, target_lat, target_lon)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The values on the target grid (float64 when regridded)."""
        ordered = np.asarray(values)[..., self.lat_order, :][..., self.lon_order]
        if self.weights is None:
            return ordered
        lat_w, lon_w = self.weights
        return area_average(ordered.astype(np.float64), lat_w, lon_w)


def conservative_regrid(values: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                        target_lat: np.ndarray = WB1_LAT, target_lon: np.ndarray = WB1_LON) -> np.ndarray:
    """Area-weighted average of `(..., lat, lon)` values onto the target grid (default: the 32 x 64
    WeatherBench grid). Source latitudes may run either way and longitudes may be in -180..180;
    each target cell is the mean of the source cells it overlaps, weighted by overlap area, so the
    area-weighted global mean is preserved. Returns float64 `(..., len(target_lat), len(target_lon))`."""
    return GridMapper(lat, lon, target_lat, target_lon, force_regrid=True)(values)
