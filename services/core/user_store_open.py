"""Opening the user store the settings name: the one module that knows both backends."""

from __future__ import annotations

from pathlib import Path

from services.core.settings import PROJECT_ROOT, Settings
from services.core.user_store import UserStore
from services.core.user_store_local import LocalUserStore


def open_user_store(settings: Settings) -> UserStore:
    """The store the settings name: Redis at USER_STORE_URL, else SQLite at USER_STORE_PATH."""
    ttl_s = int(settings.user_ttl_days * 86400)
    if settings.user_store_url is not None and settings.user_store_url.get_secret_value():
        # Imported here, not at the top: the redis library costs ~130 ms of every replica's start-up,
        # and the embedded default (SQLite) never uses it. No cycle: the backend imports only the interface.
        from services.core.user_store_redis import RedisUserStore

        return RedisUserStore(settings.user_store_url.get_secret_value(), ttl_s=ttl_s)
    return LocalUserStore(user_store_path(settings), ttl_s=ttl_s)


def user_store_path(settings: Settings) -> Path:
    """The local store's file: USER_STORE_PATH (relative to the project root), else the spool folder's."""
    path = settings.user_store_path
    if path is None:
        return Path(settings.spool_dir) / "users.db"
    return path if path.is_absolute() else PROJECT_ROOT / path
