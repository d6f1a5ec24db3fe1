"""The asyncio kit: guarded tasks, backoff, interruptible sleep, a durable queue drained to a sink.

The durable queue is what the event outbox and the monitoring store share.
"""
