"""The ensemble figures of `bench plot`: CRPS by lead time, rank histograms, and one sample's members.

- `crps_by_lead_<dataset>`: test CRPS (normalized) against lead time, one line per model: a run scored
  as an ensemble (`bench ensemble`) draws its fair CRPS, every other run its MAE (a deterministic
  forecast's CRPS), and DIFFUMA's single pass is drawn too (thin, dotted) beside its ensemble.
- `rank_histogram_<dataset>`: per model with an ensemble, the relative frequency of the truth's rank
  among the members (counts summed over its seeds and all leads), with the flat line of a reliable
  ensemble.
- `ensemble_members_<dataset>`: one test sample of the first model with stored members (lowest seed),
  first channel, physical units: truth, single pass, ensemble mean, up to four members and the
  members' standard deviation, at up to six lead times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.base import Normalizer
from benchmark.present.plots import (
    FIELD_CMAP,
    FORMATS,
    WIDTH,
    _draw_mean,
    _evenly,
    _lead_axis,
    _legend_below,
    _mean_std,
    _save,
    _seed_note,
    _slug,
    _styled,
    _time_label,
    model_styles,
    plt,
    select_runs,
)
from benchmark.results.records import RunRecord
from benchmark.scoring.ensemble import MEMBER_ARRAYS
from benchmark.scoring.evaluation import read_npz

SHOWN_MEMBERS = 4


def _crps_per_lead(record: RunRecord) -> list[float]:
    """The run's normalized CRPS per lead: its ensemble's, or (deterministic) its MAE."""
    if record.ensemble is not None:
        return list(record.ensemble["normalized"]["per_lead"]["crps"])
    return list(record.test.normalized.per_lead["mae"])


@_styled
def plot_crps_by_lead(records: list[RunRecord], results_dir: Path, out_dir: Path,
                      formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Test CRPS (normalized) against lead time per model, one figure per dataset (module docstring)."""
    runs = select_runs(records)
    styles = model_styles(runs)
    written = []
    for dataset, by_model in runs.items():
        scored = {m: rs for m, rs in by_model.items() if all(r.test.normalized.per_lead.get("mae") for r in rs)}
        if not scored or not any(r.ensemble is not None for rs in scored.values() for r in rs):
            continue  # without an ensemble this is the MAE figure
        fig, ax = plt.subplots(figsize=(WIDTH, 3.2), layout="constrained")
        for model, model_runs in scored.items():
            mean, std = _mean_std([_crps_per_lead(r) for r in model_runs])
            x, xlabel = _lead_axis(model_runs[0], len(mean))
            ensembles = [r for r in model_runs if r.ensemble is not None]
            label = styles[model].label + (f" (ensemble of {ensembles[0].ensemble['members']})" if ensembles else "")
            _draw_mean(ax, x, mean, std, styles[model], label=label)
            if ensembles:
                single, _ = _mean_std([r.test.normalized.per_lead["mae"] for r in ensembles])
                ax.plot(x, single, color=styles[model].color, linestyle=":", linewidth=0.9,
                        label=f"{styles[model].label} (single pass)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("CRPS (normalized); MAE for a single forecast")
        ax.grid(alpha=0.3)
        if len(x) <= 12:
            ax.set_xticks(x)
        fig.suptitle(f"{dataset}: test CRPS by lead time ({_seed_note(scored)})")
        _legend_below(fig, [ax], ncol=3)
        written += _save(fig, out_dir, f"crps_by_lead_{_slug(dataset)}", formats)
    return written


@_styled
def plot_rank_histogram(records: list[RunRecord], results_dir: Path, out_dir: Path,
                        formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Rank histograms of the models scored as ensembles, one figure per dataset (module docstring)."""
    written = []
    for dataset, by_model in select_runs(records).items():
        ensembles = {m: [r for r in rs if r.ensemble is not None] for m, rs in by_model.items()}
        ensembles = {m: rs for m, rs in ensembles.items() if rs}
        if not ensembles:
            continue
        fig, axes = plt.subplots(1, len(ensembles), figsize=(min(WIDTH, 3.0 * len(ensembles)), 2.8), squeeze=False,
                                 layout="constrained")
        for ax, model_runs in zip(axes[0], ensembles.values(), strict=True):
            sizes = {r.ensemble["members"] for r in model_runs}
            members = max(sizes)
            counts = np.sum([r.ensemble["rank_histogram"]["counts"] for r in model_runs
                             if r.ensemble["members"] == members], axis=0).astype(float)
            ax.bar(np.arange(members + 1), counts / counts.sum(), color="0.55", width=0.85)
            ax.axhline(1 / (members + 1), color="black", linewidth=0.9, linestyle="--", label="reliable (flat)")
            ax.set_xlabel(f"rank of the truth among {members} members")
            ax.set_ylabel("relative frequency")
            ax.set_title(f"{model_runs[0].model_info.paper_name} ({len(model_runs)} run(s))")
        fig.suptitle(f"{dataset}: rank histograms of the test split, all leads")
        _legend_below(fig, list(axes[0]))
        written += _save(fig, out_dir, f"rank_histogram_{_slug(dataset)}", formats)
    return written


@_styled
def plot_ensemble_members(records: list[RunRecord], results_dir: Path, out_dir: Path,
                          formats: tuple[str, ...] = FORMATS, max_leads: int = 6) -> list[Path]:
    """One test sample's truth, single pass, ensemble mean, members and spread, one figure per dataset."""
    written = []
    for dataset, by_model in select_runs(records).items():
        stored = [r for rs in by_model.values() for r in rs if r.ensemble and r.ensemble.get("members_file")]
        if not stored:
            continue
        record = stored[0]
        arrays = read_npz(Path(results_dir) / record.run_id / record.ensemble["members_file"], MEMBER_ARRAYS)
        normalizer = Normalizer.from_dict(record.normalizer)
        fields = {name: normalizer.denormalize(arrays[name].astype(np.float32)) for name in ("truth", "prediction")}
        members = normalizer.denormalize(arrays["members"].astype(np.float32))  # (M, T, C, H, W)
        rows = [("truth", fields["truth"]), ("single pass", fields["prediction"]),
                (f"mean of {len(members)}", members.mean(axis=0))]
        rows += [(f"member {i + 1}", members[i]) for i in range(min(SHOWN_MEMBERS, len(members)))]
        leads = _evenly(fields["truth"].shape[0], max_leads)
        low = min(float(np.percentile(v[leads, 0], 0.5)) for _, v in rows)
        high = max(float(np.percentile(v[leads, 0], 99.5)) for _, v in rows)
        spread = members.std(axis=0, ddof=1)[:, 0]
        hours = record.data.get("frame_hours")
        fig, axes = plt.subplots(len(rows) + 1, len(leads), figsize=(WIDTH, 0.5 + 0.95 * (len(rows) + 1)),
                                 squeeze=False, layout="constrained")
        for r, (label, values) in enumerate(rows):
            for c, lead in enumerate(leads):
                image = axes[r, c].imshow(values[lead, 0], cmap=FIELD_CMAP, vmin=low, vmax=high, origin="lower")
            axes[r, 0].set_ylabel(label, fontsize=7)
        fig.colorbar(image, ax=axes[: len(rows)].ravel().tolist(), shrink=0.6,
                     label=f"{record.data.get('channels', ['?'])[0]} [{record.data.get('units', ['?'])[0]}]")
        for c, lead in enumerate(leads):
            spread_image = axes[-1, c].imshow(spread[lead], cmap="magma", vmin=0, vmax=float(spread[leads].max()),
                                              origin="lower")
            axes[0, c].set_title(_time_label(lead + 1, hours if isinstance(hours, (int, float)) else None,
                                             lead=True))
        axes[-1, 0].set_ylabel("members' std", fontsize=7)
        fig.colorbar(spread_image, ax=axes[-1].ravel().tolist(), shrink=0.8)
        for ax in axes.ravel():
            ax.set_xticks([])
            ax.set_yticks([])
        options = ", ".join(f"{k}={v}" for k, v in record.ensemble.get("options", {}).items())
        fig.suptitle(f"{dataset}: {record.model_info.paper_name} as an ensemble ({options}), test sample "
                     f"{int(arrays['sample_index'])}, seed {record.config.seed}")
        written += _save(fig, out_dir, f"ensemble_members_{_slug(dataset)}", formats)
    return written
