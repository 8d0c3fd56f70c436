"""WeatherBench 1 files from a mirror of the original per-variable zips (hourly, 5.625 degrees).

WeatherBench 1 (Rasp et al. 2020) was published as one zip per variable and resolution, e.g.
`2m_temperature_5.625deg.zip`, holding one netCDF file per year 1979-2018
(`2m_temperature_<year>_5.625deg.nc`, hourly, 32 x 64). Its server (dataserv.ub.tum.de) stopped
serving them in 2024 (pangeo-data/WeatherBench issue #57), but copies live on in other places;
`download_wb1_zips` takes any of them:

- `url` is a base address the zip names are appended to (`https://host/wb1/5.625deg/` ->
  `https://host/wb1/5.625deg/2m_temperature_5.625deg.zip`), or a template with `{name}` (the zip
  name) and/or `{folder}` (the variable folder), e.g.
  `https://host/download?path=%2F5.625deg%2F{folder}&files={name}` (the old TUM form). http(s)
  addresses are downloaded; a local folder or `file://` address is read in place (never deleted).
- Downloads resume: bytes go to `<root>/wb1-zips/<name>.part`, and a re-run asks the server for
  the rest (HTTP `Range: bytes=N-`); a server that ignores Range sends the whole file again, which
  restarts the part. The byte count is checked against Content-Length (a short download is a
  DataError that says to re-run), and the zip is renamed into place only when complete.
- The requested years are unpacked into the layout the loader reads (`<root>/5.625deg/<folder>/`),
  wherever the members sit inside the zip (flat or in a subfolder); each file is verified (WB1
  variable, dims and grid, a regular time axis inside its year, no NaN) before it is renamed into
  place. The zip is then deleted unless `keep_zip`; a kept zip is reused by the next run (to unpack
  other years without downloading again).
- A variable whose requested files are all present and verify is skipped without any download, so
  a folder of WB1 files a user already has is left untouched.

Volume (computed from the grid, float32, not measured): a single-level variable is ~72 MB per year,
~2.9 GB of netCDF for 1979-2018, and its zip is of that order (floats compress little);
relative_humidity has 13 levels, ~37 GB. t2m, tcc, u10 and v10 are thus ~12 GB to download and r
alone ~37 GB; only the requested years are unpacked (~72 MB per single-level variable-year). The
time is the mirror's transfer time (at 10-100 MB/s: a few minutes per single-level zip, 10-60
minutes for r), plus about a minute per variable to unpack and verify.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.wb1_files import GRID_FOLDER, VARIABLES, Variable, format_years, variable_file
from benchmark.data.wb2 import (
    DEFAULT_VARIABLES,
    DEFAULT_YEARS,
    DownloadReport,
    FileResult,
    ProgressCallback,
    resolve_root,
    resolve_variables,
    resolve_years,
    verify_file,
)

ZIP_FOLDER = "wb1-zips"  # under the root, next to 5.625deg/
_READ_BYTES = 1 << 20  # bytes read from the connection at once
_TIMEOUT_S = 60.0  # seconds without data before a connection counts as failed
ByteCallback = Callable[[int, int | None], None]


def zip_name(variable: Variable) -> str:
    """The original WeatherBench 1 zip name of `variable`, e.g. `2m_temperature_5.625deg.zip`."""
    return f"{variable.folder}_{GRID_FOLDER}.zip"


def zip_address(url: str, variable: Variable) -> str:
    """Where the zip of `variable` is: `url` with `{name}` and `{folder}` filled in when it has
    them, else `url` with the zip name appended."""
    name = zip_name(variable)
    if "{name}" in url or "{folder}" in url:
        return url.replace("{name}", name).replace("{folder}", variable.folder)
    return f"{url.rstrip('/')}/{name}"


def _local_path(address: str) -> Path | None:
    """The local file `address` names (a path or a file:// URL); None for http(s); ConfigError otherwise."""
    parts = urllib.parse.urlsplit(address)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        return Path(urllib.request.url2pathname(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # one letter: a Windows drive
        raise ConfigError(f"--url {address!r}: use an http(s):// address, a file:// address or a local folder.")
    return Path(address).expanduser()


# --- downloading with resume ---------------------------------------------------------------------


def _content_range(response: Any) -> tuple[int, int | None] | None:
    """`(first byte, total size)` from a Content-Range header such as `bytes 100-199/200`."""
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    if match is None:
        return None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _open(url: str, have: int) -> tuple[Any, int, int | None]:
    """The response for `url` from byte `have` on, the byte it starts at (0 when the server sends
    the whole file) and the file's total size (None when unknown)."""
    headers = {"Range": f"bytes={have}-", "User-Agent": "diffuma-bench"} if have else {"User-Agent": "diffuma-bench"}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the part is already whole, or stale
            total = _content_range_total(err.headers.get("Content-Range", ""))
            err.close()
            if total == have:
                return None, have, have
            return _open(url, 0)
        raise DataError(f"Downloading {url} failed: HTTP {err.code} {err.reason}. Check --url (the zip names "
                        "are appended to it, or fill in its {name}/{folder}).") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise DataError(f"Cannot reach {url} ({reason}). Check --url and your network; the partial download "
                        "is kept, so running the same command again resumes it.") from err
    if have and response.status == 206:
        first, total = _content_range(response) or (-1, None)
        if first == have:
            return response, have, total
        response.close()  # a range other than the one asked for: start over
        return _open(url, 0)
    return response, 0, _length(response)  # 200: the whole file (the server ignores Range)


def _content_range_total(header: str) -> int | None:
    match = re.match(r"bytes \*/(\d+)", header)
    return int(match.group(1)) if match else None


def fetch(url: str, target: Path, on_bytes: ByteCallback | None = None) -> Path:
    """Download `url` to `target`, resuming `<target>.part` left by an earlier attempt; the size is
    checked against the server's Content-Length. Returns `target`; DataError when the download
    stops short (the part is kept for the next attempt) or the server refuses."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    response, start, total = _open(url, have)
    received = start
    if response is not None:
        with response, open(part, "ab" if start else "wb") as out:
            try:
                while chunk := response.read(_READ_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    if on_bytes is not None:
                        on_bytes(received, total)
            except (OSError, http.client.HTTPException):
                pass  # a dropped connection: what arrived is kept, the size check below reports it
    if total is not None and received > total:
        part.unlink()
        raise DataError(f"The server sent {received:,} bytes of {target.name} from {url}, more than the {total:,} it "
                        "announced; the download was discarded: run the same command again to download it anew.")
    if total is not None and received < total:
        raise DataError(
            f"The download of {target.name} from {url} stopped at {received:,} of {total:,} bytes. The partial "
            f"file {part} is kept: run the same command again to resume it."
        )
    os.replace(part, target)
    return target


# --- unpacking -----------------------------------------------------------------------------------


def _members(archive: zipfile.ZipFile, variable: Variable) -> dict[int, zipfile.ZipInfo]:
    """The year files of `variable` in the zip by year, wherever they sit (flat or in a subfolder)."""
    pattern = re.compile(rf"^{re.escape(variable.folder)}_(\d{{4}})_{re.escape(GRID_FOLDER)}\.nc$")
    found: dict[int, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        match = pattern.match(PurePosixPath(info.filename.replace("\\", "/")).name)
        if match and not info.is_dir():
            found.setdefault(int(match.group(1)), info)
    return found


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, variable: Variable, year: int,
             levels: np.ndarray | None, source: str) -> None:
    """Unpack one member to a temporary file beside `target`, verify it, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out, archive.open(info) as member:
            shutil.copyfileobj(member, out, _READ_BYTES)
        reason = verify_file(Path(temporary), variable, levels=levels, year=year)
        if reason is not None:
            raise DataError(f"{info.filename} in {source} is not a usable WeatherBench 1 file ({reason}). Check "
                            "that the mirror holds the original 5.625-degree files.")
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)


def _unpack(path: Path, variable: Variable, pending: dict[int, str], levels: np.ndarray | None, grid_dir: Path,
            source: str, downloaded: bool) -> list[FileResult]:
    """The `pending` years of `variable` (year -> why the file on disk is not usable) unpacked from
    the zip at `path`."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = _members(archive, variable)
            absent = sorted(set(pending) - set(members))
            if absent:
                raise DataError(
                    f"{source} has no file for {format_years(absent)} of {variable.folder} (it holds "
                    f"{format_years(sorted(members)) or 'no WeatherBench files'}). Choose --years within that range."
                )
            results = []
            for year, reason in sorted(pending.items()):
                target = variable_file(grid_dir, variable.folder, year)
                existed = target.exists()
                _extract(archive, members[year], target, variable, year, levels, source)
                status = "rewritten" if existed else "written"
                results.append(FileResult(variable.name, year, target, status, reason if existed else ""))
            return results
    except zipfile.BadZipFile as err:
        if downloaded:
            path.unlink(missing_ok=True)
            raise DataError(f"{path.name} from {source} is not a complete zip file ({err}); it was deleted: run "
                            "the same command again to download it anew.") from err
        raise DataError(f"{path} is not a complete zip file ({err}); replace it and run the command again.") from err


# --- the download --------------------------------------------------------------------------------


def _obtain(url: str, variable: Variable, root: Path, on_bytes: ByteCallback) -> tuple[Path, str, bool]:
    """The zip of `variable`: its path, where it came from, and whether it was downloaded here (and
    so may be deleted)."""
    address = zip_address(url, variable)
    local = _local_path(address)
    if local is not None:
        if not local.is_file():
            raise DataError(f"No zip {local} (from --url {url}); the WeatherBench 1 zips are named like "
                            f"{zip_name(variable)}.")
        return local, str(local), False
    target = root / ZIP_FOLDER / zip_name(variable)
    if not target.is_file():  # a zip kept by an earlier run (--keep-zip) is reused
        fetch(address, target, on_bytes)
    return target, address, True


def _verified(grid_dir: Path, variable: Variable, years: list[int], levels: np.ndarray | None) -> dict[int, str | None]:
    """Year -> None when its file is present and verifies, else the reason it does not."""
    return {year: verify_file(variable_file(grid_dir, variable.folder, year), variable, levels=levels, year=year)
            for year in years}


def download_wb1_zips(
    root: str | Path,
    url: str,
    variables: str | Iterable[str] = DEFAULT_VARIABLES,
    years: Any = DEFAULT_YEARS,
    levels: Sequence[float] | None = None,
    keep_zip: bool = False,
    progress: ProgressCallback | None = None,
) -> DownloadReport:
    """Write the WeatherBench 1 files of `variables` and `years` under `<root>/5.625deg/` from the
    original per-variable zips at `url` (see the module docstring); `levels` (hPa) must be in the
    `r` files. Variables whose files already verify are skipped without downloading. The zips are
    deleted after unpacking unless `keep_zip`. `progress(done, total, text)` counts variables, its
    text shows the bytes received. Raises DataError/ConfigError for bad input."""
    root = resolve_root(root)
    names = resolve_variables(variables)
    wanted = resolve_years(years)
    if not str(url).strip():
        raise ConfigError("An address of the WeatherBench 1 zips is needed (--url).")
    wanted_levels = None if levels is None else np.asarray(list(levels), dtype=np.float64)
    report = DownloadReport(store=str(url), root=root)
    grid_dir = root / GRID_FOLDER
    for i, name in enumerate(names):
        variable = VARIABLES[name]
        _report(progress, i, len(names), variable.folder)
        found = _verified(grid_dir, variable, wanted, wanted_levels if variable.levelled else None)
        pending = {year: reason for year, reason in found.items() if reason is not None}
        results = [FileResult(name, year, variable_file(grid_dir, variable.folder, year), "skipped")
                   for year, reason in found.items() if reason is None]
        if pending:

            def on_bytes(received: int, total: int | None, i: int = i, variable: Variable = variable) -> None:
                size = f"{received / 1e6:,.1f}" + (f"/{total / 1e6:,.1f}" if total else "")
                _report(progress, i, len(names), f"{zip_name(variable)} {size} MB")

            path, source, downloaded = _obtain(str(url), variable, root, on_bytes)
            _report(progress, i, len(names), f"unpacking {zip_name(variable)}")
            results += _unpack(path, variable, pending, wanted_levels if variable.levelled else None, grid_dir,
                               source, downloaded)
            if downloaded and not keep_zip:
                path.unlink(missing_ok=True)
        report.files.extend(sorted(results, key=lambda r: r.year))
    _report(progress, len(names), len(names), "done")
    return report


def _report(progress: ProgressCallback | None, done: int, total: int, text: str) -> None:
    if progress is not None:
        progress(done, total, text)
