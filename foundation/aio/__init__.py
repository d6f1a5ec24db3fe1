"""The asyncio kit: guarded named tasks with restart and crash-loop detection, backoff, sleep."""
