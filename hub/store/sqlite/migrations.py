"""The SQLite schema, as numbered migrations recorded in ``PRAGMA user_version``.

A database at version *n* gets migrations *n+1…* applied in one transaction
each, so a failing migration leaves the previous version intact. A database
newer than this hub knows is refused rather than misread. Never edit a
published migration; append a new one.

Design notes for the event tables (the hot path): times are integer
microseconds (UTC); each index serves one filter of ``GET /events`` newest
first — by time, by PE, by PE and status, by deployment — with ``id`` as the
tie-breaker the cursor needs. Full-text search is an *external-content* FTS5
table over ``message`` and ``data``: it stores only the index, and rows are
added to it with one ``INSERT … SELECT`` per ingest transaction, which costs a
fraction of a per-row trigger (measured: ~50k vs ~17k events/s).

Migration 2 adds notifications and retention. ``hub_state`` holds single
values: the routing cursor (the last event ``seq`` the notification router has
looked at, starting at the events already stored, so nothing old is notified),
the retention set through the API, the last purge. Channels keep their URL and
secret sealed (encrypted); a policy is its JSON document plus the columns it is
looked up by. An *alert group* is what one policy has told about one deployment:
its state is JSON, ``flush_at`` (indexed) is when it next has something to
send; the events waiting for its next message are rows of
``notification_pending``. A delivery is one message to one channel, with
its rendered body and the time of its next attempt (indexed while pending);
every attempt is a row of ``notification_attempts``.

Migration 3 lets an agent token be revoked (``revoked_at``; a revoked token is
kept, for the listing, and refused) and orders each deployment's per-source
health by ingest (``seq`` of the deciding event) instead of by the time the
sender wrote into it, so a sender's clock can never pin a status. It also
thaws an observed state frozen by a report of a generation ahead of the desired
one (which the hub now refuses): such a deployment's observation is forgotten,
so the agent's next report is stored.

Migration 4 adds the *Use Management Agent* switch of a PE: a row of
``management_paused`` means it is off, and holds the desired state the PE's
agent goes on seeing (its revision and deployments, as JSON) until it is
turned on again.

Migration 5 keeps where a deployment answers gRPC (``observed_grpc_target``),
beside its ``observed_prediction_url``.

Migration 6 gives tokens a ``kind``: ``agent`` (every token so far) or
``package`` — a read-only token of one PE that only downloads the archives of
the model packages the PE's deployments use (the Kubernetes pods' init
containers fetch packages with one). Both are kept hashed in ``agent_tokens``,
listed and revoked the same way.

Migration 7 adds prediction statistics (issue 14). ``monitoring_windows``
holds each window as received (its JSON, associations left out) under its
id: the id stays after the window is rolled up into ``monitoring_hourly``
(``body`` then NULL), so a window delivered again is still a duplicate.
``monitoring_associations`` keeps what the champion predicted per association
id (``request_id:row``) and the actual once posted. ``monitoring_state``
holds, per deployment, the drift status last recorded (changed only together
with its ``deployment.drift_changed`` event) and when retraining was last
triggered (the cooldown).
"""

from __future__ import annotations

import sqlite3

from pilothouse.hub.errors import StorageError

MIGRATIONS: tuple[str, ...] = (
    # 1: prediction environments, tokens, packages, deployments, changes, events
    """
    CREATE TABLE prediction_environments (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        platform TEXT NOT NULL,
        description TEXT NOT NULL,
        plugin_settings TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        online INTEGER NOT NULL DEFAULT 0,
        last_heartbeat_at INTEGER,
        agent_info TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX prediction_environments_by_created ON prediction_environments(created_at, id);
    CREATE INDEX prediction_environments_online ON prediction_environments(last_heartbeat_at)
        WHERE online = 1;

    CREATE TABLE agent_tokens (
        id TEXT PRIMARY KEY,
        prediction_environment_id TEXT NOT NULL REFERENCES prediction_environments(id),
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE model_packages (
        id TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        format TEXT NOT NULL,
        size INTEGER NOT NULL,
        manifest TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (name, version)
    );
    CREATE INDEX model_packages_by_created ON model_packages(created_at, id);

    CREATE TABLE deployments (
        id TEXT PRIMARY KEY,
        prediction_environment_id TEXT NOT NULL REFERENCES prediction_environments(id),
        name TEXT NOT NULL,
        desired TEXT NOT NULL,
        generation INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        observed_state TEXT NOT NULL DEFAULT 'unknown',
        observed_model_package_id TEXT,
        observed_prediction_url TEXT,
        observed_generation INTEGER NOT NULL DEFAULT 0,
        observed_updated_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX deployments_live_name ON deployments(prediction_environment_id, name)
        WHERE deleted = 0;
    CREATE INDEX deployments_by_created ON deployments(created_at, id);
    CREATE INDEX deployments_by_pe ON deployments(prediction_environment_id, created_at, id);

    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        prediction_environment_id TEXT NOT NULL,
        deployment_id TEXT NOT NULL,
        generation INTEGER NOT NULL,
        removed INTEGER NOT NULL
    );
    CREATE INDEX changes_by_pe ON changes(prediction_environment_id, seq);

    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        time INTEGER NOT NULL,
        prediction_environment_id TEXT NOT NULL,
        deployment_id TEXT,
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_by_time ON events(time, id);
    CREATE INDEX events_by_pe ON events(prediction_environment_id, time, id);
    CREATE INDEX events_by_pe_status ON events(prediction_environment_id, status, time, id);
    CREATE INDEX events_by_deployment ON events(deployment_id, time, id)
        WHERE deployment_id IS NOT NULL;
    CREATE VIRTUAL TABLE events_fts USING fts5(
        message, data, content='events', content_rowid='seq'
    );

    CREATE TABLE health_sources (
        deployment_id TEXT NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        event_id TEXT NOT NULL,
        time INTEGER NOT NULL,
        PRIMARY KEY (deployment_id, source)
    ) WITHOUT ROWID;
    """,
    # 2: notifications (channels, policies, alert groups, deliveries), retention state
    """
    CREATE TABLE hub_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO hub_state (key, value) SELECT 'routed_seq', coalesce(max(seq), 0) FROM events;

    CREATE TABLE notification_channels (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        url_sealed BLOB NOT NULL,
        url_shown TEXT NOT NULL,
        secret_sealed BLOB,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX notification_channels_by_created ON notification_channels(created_at, id);

    CREATE TABLE notification_policies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        channel_id TEXT NOT NULL REFERENCES notification_channels(id),
        enabled INTEGER NOT NULL,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX notification_policies_by_created ON notification_policies(created_at, id);
    CREATE INDEX notification_policies_by_channel ON notification_policies(channel_id);

    CREATE TABLE notification_groups (
        policy_id TEXT NOT NULL REFERENCES notification_policies(id) ON DELETE CASCADE,
        group_key TEXT NOT NULL,
        flush_at INTEGER,
        state TEXT NOT NULL,
        PRIMARY KEY (policy_id, group_key)
    ) WITHOUT ROWID;
    CREATE INDEX notification_groups_due ON notification_groups(flush_at)
        WHERE flush_at IS NOT NULL;
    CREATE INDEX notification_groups_by_key ON notification_groups(group_key);

    CREATE TABLE notification_pending (
        policy_id TEXT NOT NULL,
        group_key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (policy_id, group_key, seq),
        FOREIGN KEY (policy_id, group_key)
            REFERENCES notification_groups(policy_id, group_key) ON DELETE CASCADE
    ) WITHOUT ROWID;

    CREATE TABLE notification_deliveries (
        id TEXT PRIMARY KEY,
        channel_id TEXT NOT NULL,
        policy_id TEXT,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        prediction_environment_id TEXT,
        deployment_id TEXT,
        event_ids TEXT NOT NULL,
        body BLOB NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER,
        next_attempt_at INTEGER,
        last_error TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX notification_deliveries_due ON notification_deliveries(next_attempt_at)
        WHERE state = 'pending';
    CREATE INDEX notification_deliveries_by_created ON notification_deliveries(created_at, id);

    CREATE TABLE notification_attempts (
        delivery_id TEXT NOT NULL REFERENCES notification_deliveries(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        at INTEGER NOT NULL,
        duration_ms REAL NOT NULL,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        error TEXT NOT NULL,
        PRIMARY KEY (delivery_id, number)
    ) WITHOUT ROWID;
    """,
    # 3: agent token revocation, health sources ordered by ingest
    """
    ALTER TABLE agent_tokens ADD COLUMN revoked_at INTEGER;
    CREATE INDEX agent_tokens_by_pe ON agent_tokens(prediction_environment_id, created_at, id);

    ALTER TABLE health_sources ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE health_sources SET seq = coalesce(
        (SELECT e.seq FROM events e WHERE e.id = health_sources.event_id), 0
    );

    UPDATE deployments SET observed_state = 'unknown', observed_generation = 0
        WHERE observed_generation > generation;
    """,
    # 4: the Use Management Agent switch (a row: off, with the frozen desired state)
    """
    CREATE TABLE management_paused (
        prediction_environment_id TEXT PRIMARY KEY REFERENCES prediction_environments(id),
        revision INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        paused_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # 5: the observed gRPC target of a deployment
    """
    ALTER TABLE deployments ADD COLUMN observed_grpc_target TEXT;
    """,
    # 6: token kinds: agent tokens and read-only package tokens
    """
    ALTER TABLE agent_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'agent';
    """,
    # 7: prediction statistics: windows, hourly rollups, associations, drift and retraining state
    """
    CREATE TABLE monitoring_windows (
        id TEXT PRIMARY KEY,
        deployment_id TEXT NOT NULL,
        package_id TEXT NOT NULL,
        start_at INTEGER NOT NULL,
        end_at INTEGER NOT NULL,
        body TEXT
    );
    CREATE INDEX monitoring_windows_by_deployment
        ON monitoring_windows(deployment_id, start_at) WHERE body IS NOT NULL;
    CREATE INDEX monitoring_windows_by_start ON monitoring_windows(start_at);

    CREATE TABLE monitoring_hourly (
        deployment_id TEXT NOT NULL,
        package_id TEXT NOT NULL,
        hour INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (deployment_id, hour, package_id)
    ) WITHOUT ROWID;
    CREATE INDEX monitoring_hourly_by_hour ON monitoring_hourly(hour);

    CREATE TABLE monitoring_associations (
        deployment_id TEXT NOT NULL,
        association_id TEXT NOT NULL,
        package_id TEXT NOT NULL,
        window_start INTEGER NOT NULL,
        prediction TEXT NOT NULL,
        actual TEXT,
        PRIMARY KEY (deployment_id, association_id)
    ) WITHOUT ROWID;
    CREATE INDEX monitoring_associations_by_start
        ON monitoring_associations(deployment_id, window_start);
    CREATE INDEX monitoring_associations_by_age ON monitoring_associations(window_start);

    CREATE TABLE monitoring_state (
        deployment_id TEXT PRIMARY KEY,
        drift_status TEXT NOT NULL DEFAULT 'unknown',
        drift TEXT NOT NULL DEFAULT '{}',
        retrained_at INTEGER
    ) WITHOUT ROWID;
    """,
)


def version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; return the version it is at."""
    current = version(conn)
    if current > len(MIGRATIONS):
        raise StorageError(
            f"the database is at schema version {current}, newer than this hub "
            f"knows ({len(MIGRATIONS)}); upgrade the hub"
        )
    for number in range(current + 1, len(MIGRATIONS) + 1):
        _apply(conn, number, MIGRATIONS[number - 1])
    return len(MIGRATIONS)


def _apply(conn: sqlite3.Connection, number: int, script: str) -> None:
    try:
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
