"""Response bodies of GET /model/experiments (the experiments themselves are services.core.experiments')."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from services.core.experiments import Experiment, ExperimentEnd


class RunningExperimentOut(BaseModel):
    """A running experiment and the daily judgements of it so far."""

    experiment: Experiment
    days: list[dict[str, Any]] = Field(
        description="Its daily reports (reports/experiments/dt=…/<model>.json), oldest first: arms, users, "
        "the interval of the difference, the verdict"
    )
    served: bool = Field(description="Whether this replica serves its candidate (false: production only)")


class ExperimentsOut(BaseModel):
    """The running experiments and how the recent ones ended."""

    running: list[RunningExperimentOut]
    recent: list[ExperimentEnd] = Field(description="Ended experiments of every model, newest first")
    updated_at: str = Field(description="When the registry was read (UTC)")
