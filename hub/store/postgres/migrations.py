"""The PostgreSQL schema, as numbered migrations recorded in ``schema_version``.

The same tables, columns and meaning as the SQLite schema
(:mod:`pilothouse.hub.store.sqlite.migrations`), migration for migration, so a
schema version names the same thing on both backends (the SQLite → PostgreSQL
copy checks it). Each migration runs in its own transaction; all of them run
under a session advisory lock, so replicas that start together migrate once —
the others wait, then find the schema current. A database newer than this hub
knows is refused rather than misread. Never edit a published migration.

What differs, and why:

* every id is ``text COLLATE "C"``: keyset pages compare ``(time, id)``
  bytewise, exactly as SQLite does, whatever the database's locale;
* ``seq`` columns are identities. Identities are handed out in the order
  transactions *ask*, not the order they *commit*: concurrent transactions of
  several replicas can commit seq 11 before seq 10. Two readers depend on the
  order: the watch streams (a PE's change log) and the notification router (the
  events). A PE's changes are serialized by a lock on its row, so its own seqs
  commit in order. Events carry ``tx``, the id of the transaction that stored
  them: the router reads events in ``(tx, seq)`` order and only those of
  transactions older than every transaction still running
  (``pg_snapshot_xmin``), so none can appear later behind its cursor;
* full-text search is a ``tsvector`` column with a GIN index, made from the
  words the hub extracts the way SQLite's FTS5 ``unicode61`` does
  (:mod:`.search`), so a query finds the same events on both;
* ``hub_state`` keeps the routing cursor as ``[tx, seq]``.
"""

from __future__ import annotations

from pilothouse.hub.errors import StorageError
from pilothouse.hub.store.postgres.db import Connection

LOCK_KEY = 0x70696C6F_74686F75  # "pilothou": the advisory lock taken while migrating

MIGRATIONS: tuple[str, ...] = (
    # 1: prediction environments, tokens, packages, deployments, changes, events
    """
    CREATE TABLE prediction_environments (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        platform TEXT NOT NULL,
        description TEXT NOT NULL,
        plugin_settings TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        online BOOLEAN NOT NULL DEFAULT false,
        last_heartbeat_at BIGINT,
        agent_info TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX prediction_environments_by_created ON prediction_environments(created_at, id);
    CREATE INDEX prediction_environments_online ON prediction_environments(last_heartbeat_at)
        WHERE online;

    CREATE TABLE agent_tokens (
        id TEXT COLLATE "C" PRIMARY KEY,
        prediction_environment_id TEXT COLLATE "C" NOT NULL
            REFERENCES prediction_environments(id),
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );

    CREATE TABLE model_packages (
        id TEXT COLLATE "C" PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        format TEXT NOT NULL,
        size BIGINT NOT NULL,
        manifest TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (name, version)
    );
    CREATE INDEX model_packages_by_created ON model_packages(created_at, id);

    CREATE TABLE deployments (
        id TEXT COLLATE "C" PRIMARY KEY,
        prediction_environment_id TEXT COLLATE "C" NOT NULL
            REFERENCES prediction_environments(id),
        name TEXT NOT NULL,
        desired TEXT NOT NULL,
        generation BIGINT NOT NULL,
        deleted BOOLEAN NOT NULL DEFAULT false,
        observed_state TEXT NOT NULL DEFAULT 'unknown',
        observed_model_package_id TEXT,
        observed_prediction_url TEXT,
        observed_generation BIGINT NOT NULL DEFAULT 0,
        observed_updated_at BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX deployments_live_name ON deployments(prediction_environment_id, name)
        WHERE NOT deleted;
    CREATE INDEX deployments_by_created ON deployments(created_at, id);
    CREATE INDEX deployments_by_pe ON deployments(prediction_environment_id, created_at, id);

    CREATE TABLE changes (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        prediction_environment_id TEXT COLLATE "C" NOT NULL,
        deployment_id TEXT COLLATE "C" NOT NULL,
        generation BIGINT NOT NULL,
        removed BOOLEAN NOT NULL
    );
    CREATE INDEX changes_by_pe ON changes(prediction_environment_id, seq);

    CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tx xid8 NOT NULL DEFAULT pg_current_xact_id(),
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        time BIGINT NOT NULL,
        prediction_environment_id TEXT COLLATE "C" NOT NULL,
        deployment_id TEXT COLLATE "C",
        source TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL,
        search tsvector NOT NULL
    );
    CREATE INDEX events_by_time ON events(time, id);
    CREATE INDEX events_by_pe ON events(prediction_environment_id, time, id);
    CREATE INDEX events_by_pe_status ON events(prediction_environment_id, status, time, id);
    CREATE INDEX events_by_deployment ON events(deployment_id, time, id)
        WHERE deployment_id IS NOT NULL;
    CREATE INDEX events_by_tx ON events(tx, seq);
    CREATE INDEX events_search ON events USING gin (search);

    CREATE TABLE health_sources (
        deployment_id TEXT COLLATE "C" NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        event_id TEXT COLLATE "C" NOT NULL,
        time BIGINT NOT NULL,
        PRIMARY KEY (deployment_id, source)
    );
    """,
    # 2: notifications (channels, policies, alert groups, deliveries), retention state
    """
    CREATE TABLE hub_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO hub_state (key, value)
        SELECT 'routed_seq', coalesce(
            (SELECT format('["%s", %s]', tx, seq) FROM events ORDER BY tx DESC, seq DESC LIMIT 1),
            '["0", 0]'
        );

    CREATE TABLE notification_channels (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        url_sealed BYTEA NOT NULL,
        url_shown TEXT NOT NULL,
        secret_sealed BYTEA,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX notification_channels_by_created ON notification_channels(created_at, id);

    CREATE TABLE notification_policies (
        id TEXT COLLATE "C" PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        channel_id TEXT COLLATE "C" NOT NULL REFERENCES notification_channels(id),
        enabled BOOLEAN NOT NULL,
        spec TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE INDEX notification_policies_by_created ON notification_policies(created_at, id);
    CREATE INDEX notification_policies_by_channel ON notification_policies(channel_id);

    CREATE TABLE notification_groups (
        policy_id TEXT COLLATE "C" NOT NULL
            REFERENCES notification_policies(id) ON DELETE CASCADE,
        group_key TEXT COLLATE "C" NOT NULL,
        flush_at BIGINT,
        state TEXT NOT NULL,
        PRIMARY KEY (policy_id, group_key)
    );
    CREATE INDEX notification_groups_due ON notification_groups(flush_at)
        WHERE flush_at IS NOT NULL;
    CREATE INDEX notification_groups_by_key ON notification_groups(group_key);

    CREATE TABLE notification_pending (
        policy_id TEXT COLLATE "C" NOT NULL,
        group_key TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        event TEXT NOT NULL,
        PRIMARY KEY (policy_id, group_key, seq),
        FOREIGN KEY (policy_id, group_key)
            REFERENCES notification_groups(policy_id, group_key) ON DELETE CASCADE
    );

    CREATE TABLE notification_deliveries (
        id TEXT COLLATE "C" PRIMARY KEY,
        channel_id TEXT COLLATE "C" NOT NULL,
        policy_id TEXT COLLATE "C",
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        prediction_environment_id TEXT COLLATE "C",
        deployment_id TEXT COLLATE "C",
        event_ids TEXT NOT NULL,
        body BYTEA NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER,
        next_attempt_at BIGINT,
        last_error TEXT NOT NULL DEFAULT '',
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        claimed_by TEXT
    );
    CREATE INDEX notification_deliveries_due ON notification_deliveries(next_attempt_at)
        WHERE state = 'pending';
    CREATE INDEX notification_deliveries_by_created ON notification_deliveries(created_at, id);

    CREATE TABLE notification_attempts (
        delivery_id TEXT COLLATE "C" NOT NULL
            REFERENCES notification_deliveries(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,
        at BIGINT NOT NULL,
        duration_ms DOUBLE PRECISION NOT NULL,
        outcome TEXT NOT NULL,
        http_status INTEGER,
        error TEXT NOT NULL,
        PRIMARY KEY (delivery_id, number)
    );
    """,
    # 3: agent token revocation, health sources ordered by ingest
    """
    ALTER TABLE agent_tokens ADD COLUMN revoked_at BIGINT;
    CREATE INDEX agent_tokens_by_pe ON agent_tokens(prediction_environment_id, created_at, id);

    ALTER TABLE health_sources ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
    UPDATE health_sources h SET seq = e.seq FROM events e WHERE e.id = h.event_id;

    UPDATE deployments SET observed_state = 'unknown', observed_generation = 0
        WHERE observed_generation > generation;
    """,
    # 4: the Use Management Agent switch (a row: off, with the frozen desired state)
    """
    CREATE TABLE management_paused (
        prediction_environment_id TEXT COLLATE "C" PRIMARY KEY
            REFERENCES prediction_environments(id),
        revision BIGINT NOT NULL,
        snapshot TEXT NOT NULL,
        paused_at BIGINT NOT NULL
    );
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
        id TEXT COLLATE "C" PRIMARY KEY,
        deployment_id TEXT COLLATE "C" NOT NULL,
        package_id TEXT COLLATE "C" NOT NULL,
        start_at BIGINT NOT NULL,
        end_at BIGINT NOT NULL,
        body TEXT
    );
    CREATE INDEX monitoring_windows_by_deployment
        ON monitoring_windows(deployment_id, start_at) WHERE body IS NOT NULL;
    CREATE INDEX monitoring_windows_by_start ON monitoring_windows(start_at);

    CREATE TABLE monitoring_hourly (
        deployment_id TEXT COLLATE "C" NOT NULL,
        package_id TEXT COLLATE "C" NOT NULL,
        hour BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (deployment_id, hour, package_id)
    );
    CREATE INDEX monitoring_hourly_by_hour ON monitoring_hourly(hour);

    CREATE TABLE monitoring_associations (
        deployment_id TEXT COLLATE "C" NOT NULL,
        association_id TEXT COLLATE "C" NOT NULL,
        package_id TEXT COLLATE "C" NOT NULL,
        window_start BIGINT NOT NULL,
        prediction TEXT NOT NULL,
        actual TEXT,
        PRIMARY KEY (deployment_id, association_id)
    );
    CREATE INDEX monitoring_associations_by_start
        ON monitoring_associations(deployment_id, window_start);
    CREATE INDEX monitoring_associations_by_age ON monitoring_associations(window_start);

    CREATE TABLE monitoring_state (
        deployment_id TEXT COLLATE "C" PRIMARY KEY,
        drift_status TEXT NOT NULL DEFAULT 'unknown',
        drift TEXT NOT NULL DEFAULT '{}',
        retrained_at BIGINT
    );
    """,
)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    only_row BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    version INTEGER NOT NULL
)
"""


async def version(conn: Connection) -> int:
    """The schema version recorded in the database (0 for an empty one)."""
    found = await conn.fetchval(
        "SELECT version FROM schema_version"
        if await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        else "SELECT 0"
    )
    return int(found or 0)


async def migrate(conn: Connection) -> int:
    """Bring the schema up to date under the migration lock; return its version."""
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        current = await version(conn)
        if current > len(MIGRATIONS):
            raise StorageError(
                f"the database is at schema version {current}, newer than this hub "
                f"knows ({len(MIGRATIONS)}); upgrade the hub"
            )
        for number in range(current + 1, len(MIGRATIONS) + 1):
            async with conn.transaction():
                await conn.execute(_VERSION_TABLE)
                await conn.execute(MIGRATIONS[number - 1])
                await conn.execute(
                    "INSERT INTO schema_version (version) VALUES ($1) "
                    "ON CONFLICT (only_row) DO UPDATE SET version = excluded.version",
                    number,
                )
        return len(MIGRATIONS)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
