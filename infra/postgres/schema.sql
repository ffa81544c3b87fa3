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

-- The columns are those kstreams-app's jobs emit (apps/app/jobs.c); times
-- are timestamptz from the jobs' epoch milliseconds. CREATE TABLE IF NOT
-- EXISTS leaves an older table as it was: a database made by an earlier
-- schema (revenue.total, user_sessions without duration_ms) then fails the
-- job at its first commit with "column ... does not exist", never with a
-- half-written row, because the new columns have new names. For a
-- throwaway database (the demo's, the tests'), drop the old tables first:
--   DROP TABLE IF EXISTS event_counts, revenue, user_sessions;

-- "already exists, skipping" notices are expected on a second run.
SET client_min_messages = warning;

-- event-count job: valid events per event type and tumbling window, written
-- once when the window closes (suppress), upserted on replay.
CREATE TABLE IF NOT EXISTS event_counts (
        window_start timestamptz NOT NULL,
        window_end   timestamptz NOT NULL,
        event_type   text        NOT NULL,
        count        bigint      NOT NULL,
        updated_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (window_start, event_type)
);

-- revenue job: purchases per currency and tumbling window. Money in
-- integer cents (llround(amount * 100) per purchase), never float;
-- avg_order_value_cents = llround(revenue_cents / purchases).
CREATE TABLE IF NOT EXISTS revenue (
        window_start          timestamptz NOT NULL,
        window_end            timestamptz NOT NULL,
        currency              text        NOT NULL,
        revenue_cents         bigint      NOT NULL,
        purchases             bigint      NOT NULL,
        avg_order_value_cents bigint      NOT NULL,
        updated_at            timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (window_start, currency)
);

-- sessions job: one row per closed user session (session windows with an
-- inactivity gap, suppressed until they close: merged-away sessions are
-- never written). session_end is the last event's time; duration_ms =
-- session_end - session_start.
CREATE TABLE IF NOT EXISTS user_sessions (
        user_id       text        NOT NULL,
        session_start timestamptz NOT NULL,
        session_end   timestamptz NOT NULL,
        duration_ms   bigint      NOT NULL,
        events        bigint      NOT NULL,
        purchases     bigint      NOT NULL,
        revenue_cents bigint      NOT NULL,
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
