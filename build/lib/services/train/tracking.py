"""Experiment tracking in Weights & Biases: offline by default, online with WANDB_API_KEY."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class TrackedRun:
    """A handle on one W&B run (or a no-op when tracking is disabled)."""

    run: Any = None
    name: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        """The W&B run id, or None when disabled."""
        return getattr(self.run, "id", None)

    @property
    def ref(self) -> str | None:
        """Where to find the run: its URL online, its offline folder otherwise."""
        if self.run is None:
            return None
        url = getattr(self.run, "url", None)
        return url or f"{self.run.settings.mode}:{self.run.dir}"

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log a step of metrics."""
        self.history.append(dict(metrics))
        if self.run is not None:
            self.run.log(metrics, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        """Set final values (shown in the run table)."""
        if self.run is not None:
            for k, v in values.items():
                self.run.summary[k] = v

    def log_figure(self, key: str, figure: Any) -> None:
        """Log a matplotlib figure as an image."""
        if self.run is not None:
            import wandb

            self.run.log({key: wandb.Image(figure)})


class Tracker:
    """Creates W&B runs from settings; the key is read from the environment by wandb itself."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def mode(self) -> str:
        """online, offline or disabled."""
        if self.settings.wandb_api_key is not None and self.settings.wandb_mode == "offline":
            return "online"
        return self.settings.wandb_mode

    @contextmanager
    def run(
        self, name: str, config: dict[str, Any], group: str | None = None, job_type: str = "train"
    ) -> Iterator[TrackedRun]:
        """A W&B run for the duration of the block."""
        if self.mode == "disabled":
            yield TrackedRun(name=name)
            return
        import wandb

        wandb_dir = Path(self.settings.wandb_dir)
        wandb_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("WANDB_SILENT", "true")
        run = wandb.init(
            project=self.settings.wandb_project,
            name=name,
            group=group,
            job_type=job_type,
            config=config,
            dir=str(wandb_dir),
            mode=self.mode,
            reinit="create_new",
        )
        handle = TrackedRun(run=run, name=name)
        try:
            yield handle
        finally:
            run.finish()
            log.info("W&B run %s (%s) saved: %s", name, self.mode, handle.ref)
