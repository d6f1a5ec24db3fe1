"""The SQLite backend of the hub's store."""
