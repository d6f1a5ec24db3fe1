"""The PostgreSQL backend of the hub's store."""
