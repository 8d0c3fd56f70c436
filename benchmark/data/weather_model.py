"""The fields of `synthetic-weather`: a cheap caricature of the surface atmosphere on the WeatherBench grid.

- winds: zonal surface winds (trade easterlies near 15 degrees, westerlies near 48 degrees, a
  little stronger in winter) plus a few eastward-travelling, amplitude-modulated Rossby-like waves
  per hemisphere, derived from a stream function (so u and v are consistent and non-divergent);
- temperature = background + anomaly + noise. The background has a latitude gradient (~300 K at
  the equator, ~245 K at the poles), a seasonal cycle (opposite in the two hemispheres, larger at
  high latitudes and over land) and a diurnal cycle following local solar time (peak at 15:00, so
  it travels westward; large over tropical land, small over ocean). Land is a few smooth random
  blobs drawn from the seed. The anomaly is advected by the winds with a semi-Lagrangian step
  (bilinear interpolation at departure points; longitude periodic, latitude clamped at the
  poles), diffused by a small 5-point Laplacian, relaxed with a 3-day time scale, driven by the
  meridional wind acting on the background gradient (warm air moves poleward ahead of troughs) and
  by a slowly varying large-scale random forcing.

So persistence is wrong twice: the diurnal cycle moves (4 phases a day at 6-hourly steps), and the
anomalies are carried by a wind field that a model can learn. Deterministic from `seed_data`:
the same parameters give byte-identical arrays, whichever variables are written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy.signal import lfilter

from benchmark.data.wb1_files import GRID_SHAPE, WB1_LAT, WB1_LON

EARTH_RADIUS = 6.371e6  # m
SPIN_UP_DAYS = 30
OUTPUT_NOISE = {"t2m": 0.25, "u10": 0.3, "v10": 0.3}  # K, m/s: small measurement-like noise
BLOCK_STEPS = 128  # steps whose departure points are computed at once (bounds memory)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude in radians, broadcast to `(H, W)`."""
    return np.meshgrid(np.deg2rad(WB1_LAT), np.deg2rad(WB1_LON), indexing="ij")


def _land_mask(rng: np.random.Generator) -> np.ndarray:
    """Soft 0..1 land fraction made of a few smooth blobs (great-circle Gaussian bumps)."""
    phi, lam = _grid()
    total = np.zeros(GRID_SHAPE)
    for _ in range(7):
        centre_phi = np.deg2rad(rng.uniform(-55, 70))
        centre_lam = rng.uniform(0, 2 * np.pi)
        radius = np.deg2rad(rng.uniform(18, 35))
        cos_d = np.sin(phi) * np.sin(centre_phi) + np.cos(phi) * np.cos(centre_phi) * np.cos(lam - centre_lam)
        total += np.exp(-((np.arccos(np.clip(cos_d, -1, 1)) / radius) ** 2))
    return 1 / (1 + np.exp(-12 * (total - 0.5)))


def _mean_temperature(phi: np.ndarray) -> np.ndarray:
    """Annual-mean temperature (K) by latitude: 300 K at the equator to ~245 K at the poles."""
    return 243.0 + 57.0 * np.cos(phi) ** 1.2


def _zonal_wind(phi: np.ndarray) -> np.ndarray:
    """Annual-mean zonal surface wind (m/s): trade easterlies and mid-latitude westerlies."""
    deg = np.abs(np.rad2deg(phi))
    return 7.5 * np.exp(-(((deg - 48) / 12) ** 2)) - 6.0 * np.exp(-(((deg - 15) / 10) ** 2))


class _Generator:
    """The static fields (land, waves, forcing patterns) drawn from the seed, and the time stepping."""

    def __init__(self, seed: int, hours_per_step: int) -> None:
        streams = np.random.SeedSequence(seed).spawn(4)
        self.noise_seeds = streams[3].spawn(len(OUTPUT_NOISE))  # one stream per variable
        self.dt = hours_per_step * 3600.0
        phi, lam = _grid()
        self.phi, self.lam = phi, lam
        land = _land_mask(np.random.default_rng(streams[0]))
        self.land = land
        self.relax = np.exp(-self.dt / (3 * 86400.0))
        self.nu = min(0.2, 0.05 * hours_per_step / 6)  # explicit diffusion, stable below 0.25
        rows, cols = np.divmod(np.arange(GRID_SHAPE[0] * GRID_SHAPE[1]), GRID_SHAPE[1])
        self.neighbours = np.stack([np.minimum(rows + 1, GRID_SHAPE[0] - 1) * GRID_SHAPE[1] + cols,
                                    np.maximum(rows - 1, 0) * GRID_SHAPE[1] + cols,
                                    rows * GRID_SHAPE[1] + (cols + 1) % GRID_SHAPE[1],
                                    rows * GRID_SHAPE[1] + (cols - 1) % GRID_SHAPE[1]])
        self._make_background(phi, lam, land)
        self._make_waves(np.random.default_rng(streams[1]), phi, lam)
        self._make_forcing(np.random.default_rng(streams[2]), phi, lam)

    def _make_background(self, phi: np.ndarray, lam: np.ndarray, land: np.ndarray) -> None:
        seasonal = -(1 + 14 * np.sin(phi) ** 2) * (0.5 + 0.9 * land) * np.tanh(np.rad2deg(phi) / 10)
        diurnal = (0.6 + 5.0 * land) * (0.3 + 0.7 * np.cos(phi) ** 2)
        # Local solar hour = UTC hour + lon/15; the cycle peaks at 15:00 local time.
        shift = 2 * np.pi * (np.rad2deg(lam) / 15 - 15) / 24
        # Background(t) = mean + season(t) * S + cos(2 pi h/24) * Dc - sin(2 pi h/24) * Ds.
        self.background_patterns = np.stack(
            [_mean_temperature(phi), seasonal, diurnal * np.cos(shift), -diurnal * np.sin(shift)]
        ).reshape(4, -1)
        h = 1e-4
        gradient = (_mean_temperature(phi + h) - _mean_temperature(phi - h)) / (2 * h) / EARTH_RADIUS
        self.gradient = gradient.reshape(-1)  # K per metre northward

    def _make_waves(self, rng: np.random.Generator, phi: np.ndarray, lam: np.ndarray) -> None:
        """Stream-function waves psi = A(t) cos(phi) G(phi) sin(k lam - k Omega t + p); u, v from psi."""
        zonal = _zonal_wind(phi)
        u_patterns = [zonal, 0.2 * zonal * np.tanh(np.rad2deg(phi) / 10)]  # mean, seasonal modulation
        v_patterns = [np.zeros_like(phi), np.zeros_like(phi)]
        self.waves = []
        for hemisphere in (1, -1):
            for _ in range(3):
                k = int(rng.integers(3, 7))
                centre = np.deg2rad(hemisphere * rng.uniform(40, 55))
                speed = rng.uniform(3.0, 5.0)  # m/s, peak meridional wind

                def envelope(p: np.ndarray, c: float = centre) -> np.ndarray:
                    return np.exp(-(((p - c) / np.deg2rad(14)) ** 2))

                h = 1e-4
                d_env = (np.cos(phi + h) * envelope(phi + h) - np.cos(phi - h) * envelope(phi - h)) / (2 * h)
                phase = k * lam + rng.uniform(0, 2 * np.pi)
                # sin(k lam - w t + p) = sin(k lam + p) cos(w t) - cos(k lam + p) sin(w t), same for cos.
                u_patterns += [-(speed / k) * d_env * np.sin(phase), (speed / k) * d_env * np.cos(phase)]
                v_patterns += [speed * envelope(phi) * np.cos(phase), speed * envelope(phi) * np.sin(phase)]
                omega = k * np.deg2rad(rng.uniform(5, 12)) / 86400  # rad/s, eastward phase speed
                modulation = 2 * np.pi / (rng.uniform(8, 25) * 86400)  # amplitude cycle of 8-25 days
                self.waves.append((omega, modulation, rng.uniform(0, 2 * np.pi)))
        self.u_patterns = np.stack(u_patterns).reshape(len(u_patterns), -1).astype(np.float32)
        self.v_patterns = np.stack(v_patterns).reshape(len(v_patterns), -1).astype(np.float32)

    def _make_forcing(self, rng: np.random.Generator, phi: np.ndarray, lam: np.ndarray) -> None:
        """Large-scale patterns (zonal wavenumber <= 5, 4 meridional shapes) for the random forcing."""
        colatitude = np.pi / 2 - phi
        patterns = []
        for k in range(6):
            for m in range(4):
                shape = np.cos(m * colatitude) * (np.cos(phi) ** 0.5 if k else 1)
                for trig in ((np.cos,) if k == 0 else (np.cos, np.sin)):
                    pattern = shape * trig(k * lam)
                    patterns.append(pattern / np.sqrt(np.mean(pattern**2)) / (1 + k))
        patterns = np.stack(patterns).reshape(len(patterns), -1)
        amplitude = (0.5 + 1.5 * np.sin(phi) ** 2).reshape(-1)
        scale = np.sqrt(np.mean(np.sum(patterns**2, axis=0)))
        self.forcing_patterns = patterns / scale * amplitude * 2.5  # K, the relaxation target's size
        self.forcing_rng = rng
        self.forcing_state = rng.standard_normal(len(patterns))  # start in the stationary distribution

    def forcing_coefficients(self, steps: int) -> np.ndarray:
        """The next `steps` values of the unit-variance AR(1) coefficients (4-day memory), `(T, modes)`."""
        rho = np.exp(-self.dt / (4 * 86400.0))
        white = self.forcing_rng.standard_normal((steps, len(self.forcing_state)))
        initial = rho * self.forcing_state[None]
        values, _ = lfilter([np.sqrt(1 - rho**2)], [1, -rho], white, axis=0, zi=initial)
        self.forcing_state = values[-1]
        return values

    def winds(self, seconds: np.ndarray, season: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """u, v (m/s) as float32 `(T, H*W)` at `seconds` since the start; `season` is cos(seasonal phase)."""
        coefficients = [np.ones_like(seconds), season]
        for omega, modulation, offset in self.waves:
            amplitude = 0.6 + 0.4 * np.sin(modulation * seconds + offset)
            coefficients += [amplitude * np.cos(omega * seconds), amplitude * np.sin(omega * seconds)]
        coefficients = np.stack(coefficients, axis=1).astype(np.float32)
        return coefficients @ self.u_patterns, coefficients @ self.v_patterns

    def background(self, seconds: np.ndarray, season: np.ndarray) -> np.ndarray:
        """Temperature without the anomaly (K) as `(T, H*W)`."""
        day = 2 * np.pi * (seconds / 3600.0) / 24
        coefficients = np.stack([np.ones_like(seconds), season, np.cos(day), np.sin(day)], axis=1)
        return coefficients @ self.background_patterns

    def advance(self, anomaly: np.ndarray, u: np.ndarray, v: np.ndarray, forcing: np.ndarray) -> np.ndarray:
        """Step the anomaly `(H*W,)` through consecutive steps; returns the states after each, `(T, H*W)`."""
        index, weight = self._departures(u, v)
        # Poleward wind acting on the background gradient, plus relaxation toward the forcing.
        source = -v * self.gradient * self.dt + (1 - self.relax) * forcing
        states = np.empty(u.shape)
        field = anomaly
        for n in range(len(u)):
            field = (field[index[n]] * weight[n]).sum(axis=0)
            field = (1 - 4 * self.nu) * field + self.nu * field[self.neighbours].sum(axis=0)
            field = self.relax * field + source[n]
            states[n] = field
        return states

    def _departures(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Semi-Lagrangian departure points (winds at the arrival point, first order) as the flat
        indices and bilinear weights of their four neighbours, each `(T, 4, H*W)`."""
        height, width = GRID_SHAPE
        spacing = np.deg2rad(5.625) * EARTH_RADIUS
        rows, cols = np.divmod(np.arange(height * width, dtype=np.float32), width)
        dep_row = rows - v * np.float32(self.dt / spacing)
        np.clip(dep_row, 0, height - 1, out=dep_row)  # clamped at the poles
        col_scale = (self.dt / (spacing * np.cos(self.phi))).reshape(-1).astype(np.float32)
        dep_col = cols - u * col_scale
        dep_col %= width  # periodic in longitude; float rounding can still give exactly `width`
        np.subtract(dep_col, width, out=dep_col, where=dep_col >= width)
        row0 = np.minimum(dep_row, height - 2, dtype=np.float32)
        np.floor(row0, out=row0)
        col0 = np.floor(dep_col)
        fy, fx = dep_row - row0, dep_col - col0
        index = np.empty((len(u), 4, height * width), dtype=np.int32)
        weight = np.empty(index.shape, dtype=np.float32)
        corner = row0 * width + col0
        index[:, 0] = corner
        np.add(corner, 1, out=corner)
        np.subtract(corner, width, out=corner, where=(col0 == width - 1))  # wrap col0 + 1 to column 0
        index[:, 1] = corner
        np.add(index[:, 0], width, out=index[:, 2])
        np.add(index[:, 1], width, out=index[:, 3])
        gy, gx = 1 - fy, 1 - fx
        np.multiply(gy, gx, out=weight[:, 0])
        np.multiply(gy, fx, out=weight[:, 1])
        np.multiply(fy, gx, out=weight[:, 2])
        np.multiply(fy, fx, out=weight[:, 3])
        return index, weight


def _season(times: np.ndarray) -> np.ndarray:
    """cos of the seasonal phase: 1 in mid-January (northern winter), -1 in mid-July."""
    day_of_year = (times - times.astype("datetime64[Y]")) / np.timedelta64(1, "D")
    return np.cos(2 * np.pi * (day_of_year - 15) / 365.25)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    """Zero-mean triangular noise with standard deviation `std` (sum of two uniforms: cheap, bounded)."""
    return (rng.random(shape, dtype=np.float32) + rng.random(shape, dtype=np.float32) - 1) * np.float32(
        np.sqrt(6) * std)


def simulate(
    years: Sequence[int], hours_per_step: int, seed: int, variables: Sequence[str] = ("t2m", "u10", "v10")
) -> Iterator[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
    """Yield `(year, times, {name: (T, 32, 64) float32})` for each of `years` (sorted) and each of
    `variables` (among t2m, u10, v10).

    The simulation runs continuously from 1 January of the first year (after a 30-day spin-up)
    through the last year, so adjacent years join without a jump.
    """
    years = sorted(years)
    generator = _Generator(seed, hours_per_step)
    noise = dict(zip(OUTPUT_NOISE, map(np.random.default_rng, generator.noise_seeds), strict=True))
    step = np.timedelta64(hours_per_step, "h")
    start = np.datetime64(f"{years[0]}-01-01T00", "h")
    spin_up = SPIN_UP_DAYS * 24 // hours_per_step
    anomaly = np.zeros(GRID_SHAPE[0] * GRID_SHAPE[1])
    periods = [(None, start - spin_up * step, start)]
    periods += [(y, np.datetime64(f"{y}-01-01T00", "h"), np.datetime64(f"{y + 1}-01-01T00", "h"))
                for y in range(years[0], years[-1] + 1)]
    for year, first, end in periods:
        # Every period starts on the global step grid (start + n * step).
        first = start + -(-(first - start) // step) * step
        times = np.arange(first, end, step)
        seconds = (times - start) / np.timedelta64(1, "s")
        season = _season(times)
        u, v = generator.winds(seconds, season)
        forcing = generator.forcing_coefficients(len(times)) @ generator.forcing_patterns
        states = []
        for block in range(0, len(times), BLOCK_STEPS):
            part = slice(block, block + BLOCK_STEPS)
            states.append(generator.advance(anomaly, u[part], v[part], forcing[part]))
            anomaly = states[-1][-1]
        if year not in years:
            continue  # spin-up, or a year between requested ones: simulated for continuity only
        shape = (len(times), *GRID_SHAPE)
        fields = {}
        for name in variables:
            if name == "t2m":
                clean = generator.background(seconds, season) + np.concatenate(states)
            else:
                clean = u if name == "u10" else v
            clean = clean.reshape(shape).astype(np.float32)
            fields[name] = clean + _noise(noise[name], shape, OUTPUT_NOISE[name])
        yield year, times.astype("datetime64[ns]"), fields
