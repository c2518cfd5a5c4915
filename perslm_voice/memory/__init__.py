"""The SQLite store: users, profiles, sessions, turns and facts. The only code that writes SQL."""

from .core import store_path
from .records import Fact, Profile, Recalled, Turn
from .store import Store, default_store_path

__all__ = ["Fact", "Profile", "Recalled", "Store", "Turn", "default_store_path", "store_path"]
