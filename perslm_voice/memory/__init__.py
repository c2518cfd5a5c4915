"""The SQLite store: users, profiles, sessions, turns and facts. The only code that writes SQL."""

from .store import Store, default_store_path

__all__ = ["Store", "default_store_path"]
