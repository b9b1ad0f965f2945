"""What every pipeline step is handed: settings and the clients built from them."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.registry import Registry
from services.core.settings import Settings, get_settings
from services.core.storage import ObjectStore
from services.train.tracking import Tracker


@dataclass
class Context:
    """Settings, the S3 store, the registry on it, and the experiment tracker."""

    settings: Settings
    store: ObjectStore
    registry: Registry
    tracker: Tracker

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        """Build the clients (no network call until first use)."""
        store = ObjectStore.from_settings(settings)
        return cls(settings, store, Registry(store), Tracker(settings))

    @classmethod
    def from_env(cls) -> Context:
        """The context of a task process, from the environment."""
        return cls.from_settings(get_settings())
