"""Getting events from where they happen to where they are kept."""
