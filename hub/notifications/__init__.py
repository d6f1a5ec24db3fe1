"""The hub's notification pipeline: routing events into alert groups, composing and sending.

Channels and policies are managed through the API (:mod:`.management`); a guarded
task (:mod:`.notifier`) routes new events into groups (:mod:`.routing`), composes
what a due group says (:mod:`.composing`, :mod:`.messages`) and delivers it with
retries (:mod:`.sending`, :mod:`.backoff`), signing webhook bodies (:mod:`.signing`);
channel URLs and secrets are sealed at rest (:mod:`.sealing`).
"""
