"""Lightning glue: one LightningModule for any registered model, one DataModule for any dataset.

Model selection follows the rules a fair benchmark needs: the validation split (never the test
split) picks the best checkpoint, and the test split is scored with those best weights. The test
split is also scored at the epochs listed in `train.eval_at` (for the epoch-sweep tables); those
scores, and the per-epoch validation curve, live in callbacks' state, so they are saved in every
checkpoint and survive a resume.

Learning-rate schedules (`train.scheduler`), all stepped once per optimizer step:
- `cosine`: cosine decay from `lr` to `min_lr` over the run (OpenSTL's weather runs), after an
  optional linear warm-up of `warmup_steps` steps from `lr / 100`;
- `constant`: `lr` throughout (after the same optional warm-up);
- `onecycle`: `torch.optim.lr_scheduler.OneCycleLR` with its defaults (warm-up from `lr / 25` to `lr`
  over the first `warmup_fraction` of the run, default 0.3, then cosine annealing to `lr / 25e4`),
  the schedule of SimVP's and PastNet's original code.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from benchmark.core.errors import BenchError, ConfigError
from benchmark.data.base import ForecastData
from benchmark.data.climatology import target_climatology
from benchmark.results.outcomes import FitOutcome, TestOutcome
from benchmark.run.config import SCHEDULERS, RunConfig
from benchmark.run.resume import AttemptLog, EpochShuffleSampler, RandomState
from benchmark.scoring.evaluation import eval_at_per_sample_name, evaluate, predictions_to_keep, write_per_sample


def quiet_lightning() -> None:
    """Keep Lightning's informational banners (accelerator, tips) out of the benchmark's output."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # On resume the run folder is reused on purpose.
    warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")


class ForecastModule(L.LightningModule):
    """Trains any model that follows the contract in `benchmark.registry.model_api`."""

    def __init__(self, model: torch.nn.Module, train_config: dict[str, Any], model_name: str):
        super().__init__()
        self.model = model
        self.train_config = train_config
        self.model_name = model_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict `(B, T_out, C, H, W)` from `(B, T_in, C, H, W)`."""
        return self.model(x)

    def on_fit_start(self) -> None:
        """Let the model fix its step-based schedules for this run's total number of optimizer steps."""
        self.schedule = self.model.plan_schedule(int(self.trainer.estimated_stepping_batches))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimisation step on the model's own training objective."""
        x, y = batch
        if hasattr(self.model, "training_loss"):
            loss, logs = self.model.training_loss(x, y, self.global_step)
        else:
            loss = F.mse_loss(self.model(x), y)
            logs = {}
        if not torch.isfinite(loss):
            raise BenchError(
                f"The training loss of {self.model_name} became {loss.item()} at step {self.global_step}. "
                f"Lower the learning rate (now {self.train_config['lr']}; --set train.lr=...) or clip "
                "gradients (--set train.grad_clip=1.0)."
            )
        batch_size = x.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in logs.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Validation MSE in normalized units: the model-selection criterion."""
        x, y = batch
        mse = F.mse_loss(self.model(x), y)
        self.log("val/mse", mse, prog_bar=True, batch_size=x.shape[0], sync_dist=True)

    def configure_optimizers(self) -> Any:
        """Adam or AdamW, with the per-step learning-rate schedule `train.scheduler` names."""
        cfg = self.train_config
        optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if cfg["optimizer"] not in optimizers:
            raise BenchError(f"Unknown optimizer {cfg['optimizer']!r}; use one of {', '.join(optimizers)}.")
        optimizer = optimizers[cfg["optimizer"]](
            self.model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"])
        )
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = build_lr_scheduler(optimizer, cfg, total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def build_lr_scheduler(optimizer: torch.optim.Optimizer, cfg: dict[str, Any],
                       total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-step learning-rate schedule of `cfg["scheduler"]` for a run of `total_steps` steps."""
    name = cfg["scheduler"]
    if name not in SCHEDULERS:
        raise BenchError(f"Unknown scheduler {name!r}; use one of {', '.join(SCHEDULERS)}.")
    lr = float(cfg["lr"])
    if name == "onecycle":
        fraction = float(cfg["warmup_fraction"])
        if not 0.0 < fraction < 1.0:
            raise BenchError(f"train.warmup_fraction must lie strictly between 0 and 1 for the onecycle "
                             f"scheduler, got {fraction}.")
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps,
                                                   pct_start=fraction)
    warmup = int(cfg["warmup_steps"])
    if warmup < 0 or (warmup and warmup >= total_steps):
        raise BenchError(f"train.warmup_steps must be >= 0 and less than the run's {total_steps} optimizer "
                         f"steps, got {warmup}.")
    if name == "cosine":
        main = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup),
                                                          eta_min=float(cfg["min_lr"]))
    else:
        main = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup == 0:
        return main
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


class ForecastDataModule(L.LightningDataModule):
    """Dataloaders over the three splits of a `ForecastData`."""

    def __init__(self, data: ForecastData, batch_size: int, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.data = data
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed

    def _loader(self, dataset: Any, shuffle: bool) -> DataLoader:
        # shuffled: each epoch's order is a function of (seed, epoch), so a resumed run repeats it
        sampler = EpochShuffleSampler(len(dataset), self.seed) if shuffle else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training windows."""
        return self._loader(self.data.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Validation windows (model selection)."""
        return self._loader(self.data.val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test windows (reported metrics)."""
        return self._loader(self.data.test, shuffle=False)


class EvalAtEpochs(Callback):
    """Scores the test split with the current weights after each epoch in `epochs`."""

    def __init__(self, epochs: list[int], datamodule: ForecastDataModule, limit_batches: int | None, name: str,
                 run_dir: Path | None = None):
        self.epochs = set(epochs)
        self.datamodule = datamodule
        self.limit_batches = limit_batches
        self.name = name
        self.run_dir = run_dir  # where each epoch's per-sample errors go (None: not stored)
        self.results: dict[str, Any] = {}
        self.per_sample_files: dict[str, str] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs before ModelCheckpoint saves (Lightning calls checkpoint callbacks last), so the
        # scores of this epoch are inside this epoch's checkpoint.
        epoch = trainer.current_epoch + 1
        if trainer.sanity_checking or epoch not in self.epochs or str(epoch) in self.results:
            return
        if trainer.is_global_zero:
            data = self.datamodule.data
            # A DataLoader iterator draws its base seed from the global RNG: without the fork, scoring
            # the test split here would shift every later random draw of training (scheduled-sampling
            # masks, diffusion noise), and a run with --eval-at would train differently from one without.
            per_sample: dict[str, Any] | None = {} if self.run_dir is not None else None
            with torch.random.fork_rng(devices=[pl_module.device] if pl_module.device.type == "cuda" else []):
                metrics, _ = evaluate(pl_module.model, self.datamodule.test_dataloader(), data.normalizer,
                                      data.lat, pl_module.device, self.limit_batches, self.name,
                                      per_sample_out=per_sample, climatology=target_climatology(data, "test"))
            if per_sample:  # written now, so that a crash later in training keeps it (the checkpoint names it)
                self.per_sample_files[str(epoch)] = write_per_sample(self.run_dir, per_sample,
                                                                     name=eval_at_per_sample_name(epoch))
            self.results[str(epoch)] = metrics

    def state_dict(self) -> dict[str, Any]:
        """Scores so far and the names of their per-sample files (saved into checkpoints)."""
        return {"results": self.results, "per_sample_files": self.per_sample_files}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore scores on resume."""
        self.results = dict(state_dict.get("results", {}))
        self.per_sample_files = dict(state_dict.get("per_sample_files", {}))


class ValidationCurve(Callback):
    """Per epoch: validation MSE, mean training loss and the optimizer step reached (kept in checkpoints)."""

    def __init__(self) -> None:
        self.curve: list[dict[str, Any]] = []
        self._loss_sum, self._batches = 0.0, 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._loss_sum, self._batches = 0.0, 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._loss_sum += float(loss.detach())
        self._batches += 1

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # like EvalAtEpochs: before ModelCheckpoint saves, so the point is inside this epoch's checkpoint
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        if self.curve and self.curve[-1]["epoch"] == epoch:
            return
        val = trainer.callback_metrics.get("val/mse")
        self.curve.append({
            "epoch": epoch,
            "step": int(trainer.global_step),
            "val_mse": float(val) if val is not None else None,
            "train_loss": self._loss_sum / self._batches if self._batches else None,
        })

    def state_dict(self) -> dict[str, Any]:
        """The curve so far (saved into checkpoints)."""
        return {"curve": self.curve}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the curve on resume."""
        self.curve = list(state_dict.get("curve", []))


def fit(
    model: torch.nn.Module,
    data: ForecastData,
    config: RunConfig,
    run_dir: Path,
    progress: bool = False,
) -> FitOutcome:
    """Train `model` as `config.train` says, resuming from `run_dir` if a previous attempt broke.

    On return the model holds the weights of the epoch with the lowest validation MSE.
    """
    quiet_lightning()
    cfg = config.train
    if cfg["precision"] == "16-mixed" and (cfg["accelerator"] == "cpu" or not torch.cuda.is_available()):
        raise ConfigError(f"train.precision = 16-mixed (for {config.model}) needs a CUDA GPU: float16 autocast "
                          "with loss scaling is a GPU mode. On this machine use bf16-mixed (bfloat16 autocast, "
                          "no loss scaling) or 32-true: --set train.precision=bf16-mixed.")
    run_dir = Path(run_dir).resolve()
    checkpoint_dir = run_dir / "checkpoints"
    last = checkpoint_dir / "last.ckpt"
    datamodule = ForecastDataModule(data, int(cfg["batch_size"]), int(cfg["num_workers"]), config.seed)
    module = ForecastModule(model, cfg, config.model)
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir, filename="best-{epoch}", monitor="val/mse", mode="min", save_top_k=1, save_last=True
    )
    eval_at = EvalAtEpochs(cfg["eval_at"], datamodule, cfg["limit_test_batches"], config.model, run_dir)
    curve = ValidationCurve()
    resume = str(last) if last.exists() else None
    attempts = AttemptLog(run_dir, resume)
    callbacks: list[Callback] = [eval_at, curve, RandomState(), attempts, checkpoint]
    if progress:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=False))
    steps_per_epoch = len(datamodule.train_dataloader())
    if cfg["limit_train_batches"] is not None:
        steps_per_epoch = min(steps_per_epoch, int(cfg["limit_train_batches"]))
    trainer = L.Trainer(
        max_epochs=int(cfg["epochs"]),
        accelerator=cfg["accelerator"],
        devices=cfg["devices"],
        num_nodes=int(cfg["num_nodes"]),
        strategy=cfg["strategy"],
        precision=cfg["precision"],
        gradient_clip_val=cfg["grad_clip"],
        limit_train_batches=cfg["limit_train_batches"],
        limit_val_batches=cfg["limit_val_batches"],
        logger=CSVLogger(str(run_dir), name="logs", version=""),
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=max(1, min(50, steps_per_epoch)),
        deterministic="warn",
    )
    start = time.perf_counter()
    # our own checkpoint (it holds the generators' states, which weights-only loading refuses)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=False)
    seconds = time.perf_counter() - start
    history = attempts.finish(seconds, int(trainer.current_epoch))
    if trainer.interrupted:
        raise KeyboardInterrupt
    best_path = checkpoint.best_model_path or None
    best_epoch, best_val = None, None
    if best_path:
        state = torch.load(best_path, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
        best_epoch = int(state["epoch"]) + 1
        score = checkpoint.best_model_score
        best_val = float(score) if score is not None and math.isfinite(float(score)) else None
    return FitOutcome(
        best_epoch=best_epoch,
        best_val_mse=best_val,
        best_checkpoint=str(Path(best_path).relative_to(run_dir)) if best_path else None,
        train_seconds=sum(float(a.get("train_seconds") or 0.0) for a in history),
        attempts=history,
        epochs_run=int(trainer.current_epoch),
        optimizer_steps=int(trainer.global_step),
        eval_at=dict(eval_at.results),
        eval_at_per_sample=dict(eval_at.per_sample_files),
        curve=list(curve.curve),
        schedule=dict(getattr(module, "schedule", {}) or {}),
        resumed_from=resume,
        is_global_zero=trainer.is_global_zero,
    )


def test(model: torch.nn.Module, data: ForecastData, config: RunConfig, device: str) -> TestOutcome:
    """Score `model` as it is (after `fit`: its best-validation weights) on the test split of `data`."""
    model.to(device)
    loader = ForecastDataModule(data, int(config.train["batch_size"])).test_dataloader()
    limit = config.train["limit_test_batches"]
    scored = len(loader.dataset) if limit is None else min(len(loader.dataset), int(limit) * int(loader.batch_size))
    keep = predictions_to_keep(scored, int(config.train.get("stored_predictions", 0)))
    per_sample: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    components: dict[str, Any] = {}
    metrics, timing = evaluate(model, loader, data.normalizer, data.lat, device, limit, config.model,
                               per_sample_out=per_sample, keep=keep, kept_out=kept,
                               climatology=target_climatology(data, "test"), components_out=components)
    return TestOutcome(metrics=metrics, per_sample=per_sample, kept=kept, components=components, **timing)


test.__test__ = False  # a library function pytest must not collect where it is imported
