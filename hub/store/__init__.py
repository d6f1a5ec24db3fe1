"""Storage of the hub: a typed interface and its backends (SQLite today)."""
