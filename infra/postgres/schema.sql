-- kstreams: the tables the example applications' PostgreSQL sink writes.
--
-- Idempotent: every statement may run again on a database that has it
-- already (infra/postgres/pg.sh applies it at each `up`, and the ctest
-- fixture applies it to an external KS_PG_DSN too).
--
-- The sink upserts each row by its natural key (INSERT ... ON CONFLICT
-- (primary key) DO UPDATE) in one transaction per commit, before the Kafka
-- commit; a replay after a crash rewrites the same rows, so nothing is
-- counted twice. Hence every table's primary key is the row's natural key.

-- "already exists, skipping" notices are expected on a second run.
SET client_min_messages = warning;

-- event-count job: events per event type and tumbling window. One row per
-- (window, type); `count` is the window's running total, overwritten by each
-- update (or once, with suppress until the window closes).
CREATE TABLE IF NOT EXISTS event_counts (
        window_start timestamptz NOT NULL,
        window_end   timestamptz NOT NULL,
        event_type   text        NOT NULL,
        count        bigint      NOT NULL,
        updated_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (window_start, event_type)
);

-- revenue job: purchase totals per currency and tumbling window.
-- `total` is numeric, not float: sums of money must not drift.
CREATE TABLE IF NOT EXISTS revenue (
        window_start timestamptz NOT NULL,
        window_end   timestamptz NOT NULL,
        currency     text        NOT NULL,
        total        numeric     NOT NULL,
        purchases    bigint      NOT NULL,
        updated_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (window_start, currency)
);

-- sessions job: one row per user session (session windows with an
-- inactivity gap). When sessions merge, the sink deletes the rows of the
-- merged-away sessions and upserts the merged one, as the session store's
-- tombstones say.
CREATE TABLE IF NOT EXISTS user_sessions (
        user_id       text        NOT NULL,
        session_start timestamptz NOT NULL,
        session_end   timestamptz NOT NULL,
        events        bigint      NOT NULL,
        updated_at    timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (user_id, session_start)
);

-- Deduplication by event id: a sink that writes per-event effects inserts
-- the event id here in the same transaction (ON CONFLICT DO NOTHING) and
-- skips the event when the row was already there.
CREATE TABLE IF NOT EXISTS processed_events (
        event_id     text        PRIMARY KEY,
        -- where the event was read, for debugging replays
        topic        text,
        partition    integer,
        "offset"     bigint,
        processed_at timestamptz NOT NULL DEFAULT now()
);

-- The PostgreSQL sink's applied input offsets (kstreams/postgres.h): each
-- batch's transaction advances its task's rows here, and a replay skips the
-- records at or below them, so even append-only tables get every record
-- once. The sink creates the table itself when it is missing.
CREATE TABLE IF NOT EXISTS kstreams_sink_offsets (
        application_id text        NOT NULL,
        sink_name      text        NOT NULL,
        topic          text        NOT NULL,
        partition      integer     NOT NULL,
        last_offset    bigint      NOT NULL,
        updated_at     timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (application_id, sink_name, topic, partition)
);

-- Dashboards read the newest windows first.
CREATE INDEX IF NOT EXISTS event_counts_window_end_idx
        ON event_counts (window_end);
CREATE INDEX IF NOT EXISTS revenue_window_end_idx
        ON revenue (window_end);
CREATE INDEX IF NOT EXISTS user_sessions_session_end_idx
        ON user_sessions (session_end);
