/**
 * @file table.h
 * @brief The stateful DSL: grouping, aggregations (count, reduce,
 *        aggregate), time windows, and KTables.
 *
 * Rules of use (besides topology.h's):
 * - Every aggregation keeps its state in a named store; its changes go to
 *   the compacted topic <application.id>-<store>-changelog, partitioned as
 *   the task, so a task's state can be rebuilt elsewhere.
 * - Aggregation callbacks receive the current aggregate as a typed object
 *   (deserialized from the store) and return the new one from @p arena.
 *   The aggregate they receive is theirs to change: it is freshly made for
 *   this one call, in the record's arena (deserialized from a copy of the
 *   stored bytes, or just returned by the initializer), and nothing else
 *   holds it. So an adder (or a merger, its first aggregate) may update it
 *   in place and return it, which with a fixed-layout serde
 *   (ks_serde_struct()) costs no allocation and no parse per update. This
 *   holds as long as the aggregate serde's deserializer builds a new object
 *   each time, as every built-in serde does (a deserializer returning a
 *   shared static object must not be combined with in-place updates).
 * - Windowed tables are keyed by `const ks_windowed_key_t *`.
 * - Records later than window end + grace (by the task's stream time) are
 *   dropped and counted ("dropped-late" in the driver's metrics).
 */
#ifndef KSTREAMS_TABLE_H
#define KSTREAMS_TABLE_H

#include "topology.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_grouped_s ks_grouped_t;
typedef struct ks_windowed_s ks_windowed_t;
typedef struct ks_table_s ks_table_t;

/** Time windows: tumbling when advance == size, hopping when smaller. */
typedef struct ks_windows_s {
        int64_t size_ms;
        int64_t advance_ms;
        int64_t grace_ms;
} ks_windows_t;

KS_EXPORT ks_windows_t ks_tumbling_window(int64_t size_ms, int64_t grace_ms);
KS_EXPORT ks_windows_t ks_hopping_window(int64_t size_ms,
                                         int64_t advance_ms,
                                         int64_t grace_ms);

/** The key of a windowed table: the group key and the window [start, end). */
typedef struct ks_windowed_key_s {
        const void *key;
        int64_t start;
        int64_t end;
} ks_windowed_key_t;

/**
 * A serde for windowed keys, as Kafka Streams' TimeWindowedSerde: the
 * inner key's bytes followed by the window start (8 bytes, big-endian);
 * the end is start + @p window_size_ms. Takes ownership of @p inner.
 */
KS_EXPORT ks_serde_t *ks_serde_windowed(ks_serde_t *inner,
                                        int64_t window_size_ms);

typedef const void *(ks_initializer_fn)(ks_arena_t *arena, void *opaque);
/** Returns the new aggregate for @p value added to @p aggregate. */
typedef const void *(ks_aggregator_fn)(ks_arena_t *arena,
                                       const void *key,
                                       const void *value,
                                       const void *aggregate,
                                       void *opaque);
/** Returns the combination of the current value and a new one. */
typedef const void *(ks_reducer_fn)(ks_arena_t *arena,
                                    const void *current,
                                    const void *value,
                                    void *opaque);

/** Groups by the current key (no repartition unless the key changed
 *  upstream, as Kafka Streams does). NULL serdes: the stream's. */
KS_EXPORT ks_grouped_t *ks_stream_group_by_key(ks_stream_t *s,
                                               ks_serde_t *key_serde,
                                               ks_serde_t *value_serde);
/** Groups by a new key: repartitions through the internal topic
 *  <application.id>-<name>-repartition (@p name is copied). */
KS_EXPORT ks_grouped_t *ks_stream_group_by(ks_stream_t *s,
                                           const char *name,
                                           ks_mapper_fn *key_fn,
                                           void *opaque,
                                           ks_serde_t *key_serde,
                                           ks_serde_t *value_serde);

/** Counts records per key (values: int64). Null values are not counted,
 *  as in Kafka Streams. */
KS_EXPORT ks_table_t *ks_grouped_count(ks_grouped_t *g, const char *store);
KS_EXPORT ks_table_t *ks_grouped_reduce(ks_grouped_t *g,
                                        const char *store,
                                        ks_reducer_fn *fn,
                                        void *opaque);
/** Aggregates with an initializer and an adder; @p aggregate_serde stores
 *  the aggregate (ownership taken). */
KS_EXPORT ks_table_t *ks_grouped_aggregate(ks_grouped_t *g,
                                           const char *store,
                                           ks_initializer_fn *init,
                                           ks_aggregator_fn *adder,
                                           void *opaque,
                                           ks_serde_t *aggregate_serde);

/**
 * @brief Time windows over a grouped stream, as Kafka Streams'
 *        KGroupedStream#windowedBy(TimeWindows): tumbling when
 *        windows.advance_ms == windows.size_ms, hopping when smaller.
 *
 * Windows are [start, start + size_ms), aligned to 0 (epoch), on the
 * records' timestamps (the source's timestamp extractor). A record adds to
 * every window that contains it and is not yet closed: a window closes when
 * the task's stream time reaches its end + windows.grace_ms; records for a
 * closed window are dropped and counted ("dropped-late").
 * @returns a handle owned by the builder, or NULL (sticky builder error:
 *          size or advance <= 0, advance > size, grace < 0).
 */
KS_EXPORT ks_windowed_t *ks_grouped_windowed_by(ks_grouped_t *g,
                                                ks_windows_t windows);
/**
 * @brief Counts records per key and window (values: `const int64_t *`,
 *        ks_serde_int64()); null values are not counted.
 *
 * The table is keyed by `const ks_windowed_key_t *`, serialized with
 * ks_serde_windowed(group key serde, size_ms). Every update is forwarded
 * (collapsed per key between commits by the record cache): put
 * ks_table_suppress(..., KS_SUPPRESS_UNTIL_WINDOW_CLOSES, ...) after it for
 * one final result per window. The counts live in the window store
 * @p store (name copied; NULL derives one), retained for size + grace and
 * changelogged to <application.id>-<store>-changelog.
 * @returns a table owned by the builder, or NULL (sticky builder error).
 */
KS_EXPORT ks_table_t *ks_windowed_count(ks_windowed_t *w, const char *store);
/**
 * @brief Aggregates records per key and window, as ks_windowed_count()
 *        does, with an initializer and an adder.
 *
 * For each window a record falls in, @p adder gets (key, value, the
 * window's aggregate so far, or @p init's result for a new window) and
 * returns the new aggregate, from the arena or the aggregate it was given,
 * which it may modify in place (see the rules of use at the top of this
 * header): with hopping windows each window gets its own copy. The
 * aggregate is serialized with @p aggregate_serde into the window store
 * @p store and its changelog, and read back with it on the next update;
 * prefer ks_serde_struct() to a JSON serde for multi-field aggregates.
 * Takes ownership of @p aggregate_serde; copies @p store. @p opaque is
 * passed to both callbacks and is the caller's (it must outlive the
 * topology).
 * @returns a table owned by the builder, or NULL (sticky builder error:
 *          no @p init or @p adder).
 */
KS_EXPORT ks_table_t *ks_windowed_aggregate(ks_windowed_t *w,
                                            const char *store,
                                            ks_initializer_fn *init,
                                            ks_aggregator_fn *adder,
                                            void *opaque,
                                            ks_serde_t *aggregate_serde);

/** The table's changes as a stream (windowed keys for windowed tables). */
KS_EXPORT ks_stream_t *ks_table_to_stream(ks_table_t *t, const char *name);

/* ---- session windows, sliding windows and suppression ----------------------
 *
 * Windowed tables of all kinds are keyed by `const ks_windowed_key_t *`.
 * Their aggregations forward new values only: where Kafka Streams forwards
 * a Change with a null new value (a session merged into a bigger one), the
 * table forwards a NULL value (a tombstone) for that windowed key.
 */

typedef struct ks_session_windowed_s ks_session_windowed_t;
typedef struct ks_sliding_windowed_s ks_sliding_windowed_t;

/** Returns the combination of two session aggregates (sessions that a
 *  record bridges are merged into one), built in @p arena. */
typedef const void *(ks_merger_fn)(ks_arena_t *arena,
                                   const void *key,
                                   const void *agg1,
                                   const void *agg2,
                                   void *opaque);

/**
 * @brief A serde for session-windowed keys, as Kafka Streams'
 *        SessionWindowedSerde: the inner key's bytes, then the session end
 *        and the session start (8 bytes each, big-endian).
 *
 * Objects are `ks_windowed_key_t` whose start and end are both inclusive.
 * Takes ownership of @p inner.
 * @returns a new serde; free with ks_serde_destroy().
 */
KS_EXPORT ks_serde_t *ks_serde_session_windowed(ks_serde_t *inner);

/**
 * @brief Session windows, as Kafka Streams' SessionWindows: records of one
 *        key less than @p inactivity_gap_ms apart (inclusive) share a
 *        session [first, last]; a record that bridges two sessions merges
 *        them.
 *
 * A record is late, dropped and counted ("dropped-late") when the session
 * it would end up in ends before stream time - @p grace_ms -
 * @p inactivity_gap_ms (Kafka Streams' close time for sessions).
 * @returns a handle owned by the builder, or NULL (sticky builder error).
 */
KS_EXPORT ks_session_windowed_t *ks_grouped_session_windowed_by(
        ks_grouped_t *g,
        int64_t inactivity_gap_ms,
        int64_t grace_ms);
/** Counts records per session (values: int64). The table is keyed by
 *  session-windowed keys (ks_serde_session_windowed() of the group key). */
KS_EXPORT ks_table_t *ks_session_windowed_count(ks_session_windowed_t *w,
                                                const char *store);
/**
 * Aggregates per session: @p init starts a session, @p adder adds a record,
 * @p merger combines the aggregates of sessions a record bridges.
 * Takes ownership of @p aggregate_serde, which stores the aggregate.
 * The store (a session store) keeps sessions for gap + grace.
 */
KS_EXPORT ks_table_t *ks_session_windowed_aggregate(
        ks_session_windowed_t *w,
        const char *store,
        ks_initializer_fn *init,
        ks_aggregator_fn *adder,
        ks_merger_fn *merger,
        void *opaque,
        ks_serde_t *aggregate_serde);

/**
 * @brief Sliding windows, as Kafka Streams' SlidingWindows (KIP-450):
 *        windows [start, start + @p time_difference_ms] (both inclusive)
 *        defined by the records themselves: each record has a left window
 *        ending at its timestamp and a right window starting just after
 *        it, created when not empty.
 *
 * Records earlier than @p time_difference_ms all share the window
 * [0, time_difference_ms], as in Kafka Streams. Windows are final at
 * end + @p grace_ms; records for closed windows are dropped and counted.
 * The table's key serde is ks_serde_windowed(key serde,
 * time_difference_ms).
 * @returns a handle owned by the builder, or NULL (sticky builder error).
 */
KS_EXPORT ks_sliding_windowed_t *ks_grouped_sliding_windowed_by(
        ks_grouped_t *g,
        int64_t time_difference_ms,
        int64_t grace_ms);
/** Counts records per sliding window (values: int64). */
KS_EXPORT ks_table_t *ks_sliding_windowed_count(ks_sliding_windowed_t *w,
                                                const char *store);
/** Aggregates per sliding window. Takes ownership of @p aggregate_serde.
 *  The store (a window store) keeps windows for 2 * difference + grace
 *  and holds each window's largest record timestamp with its aggregate. */
KS_EXPORT ks_table_t *ks_sliding_windowed_aggregate(
        ks_sliding_windowed_t *w,
        const char *store,
        ks_initializer_fn *init,
        ks_aggregator_fn *adder,
        void *opaque,
        ks_serde_t *aggregate_serde);

typedef enum {
        /** Final results of windowed tables: each windowed key's last value
         *  once its window closes (end + the upstream windows' grace). */
        KS_SUPPRESS_UNTIL_WINDOW_CLOSES,
        /** Rate limiting: a key's latest value once it has waited
         *  time_limit_ms of stream time since it was first buffered. */
        KS_SUPPRESS_UNTIL_TIME_LIMIT
} ks_suppress_mode_t;

/**
 * @brief Suppresses a table's intermediate updates, as Kafka Streams'
 *        KTable#suppress (Suppressed.untilWindowCloses / untilTimeLimit,
 *        with an unbounded buffer).
 *
 * Time is the processor's stream time: the largest timestamp of the
 * updates it has seen. An emitted record carries the timestamp of the
 * update it holds. Until-window-closes drops tombstones (a merged-away
 * session never emits); until-time-limit forwards them.
 * The buffer is a key-value store named "<name>-store" (derived when
 * @p name is NULL), changelogged like every store, so it survives a
 * restart.
 * @param time_limit_ms  the wait of KS_SUPPRESS_UNTIL_TIME_LIMIT (ignored
 *                       for KS_SUPPRESS_UNTIL_WINDOW_CLOSES).
 * @param name           the processor's name (copied), or NULL.
 * @returns a table handle owned by the builder, or NULL (sticky builder
 *          error: until-window-closes of a table that is not windowed).
 */
KS_EXPORT ks_table_t *ks_table_suppress(ks_table_t *t,
                                        ks_suppress_mode_t mode,
                                        int64_t time_limit_ms,
                                        const char *name);
/**
 * @brief Wall-clock idle advance (beyond Kafka Streams): when no record
 *        reaches the suppression for @p idle_ms of wall-clock time, its
 *        stream time moves on by the wall-clock time elapsed, so that
 *        windows of an idle partition still close.
 *
 * Checked by a wall-clock punctuator every min(@p idle_ms, 1 s). A record
 * that arrives after an advance for a window already emitted is buffered
 * and emitted again (a second "final" result): use it when timeliness
 * matters more than that. @p suppressed must be a table returned by
 * ks_table_suppress(); 0 turns the advance off.
 * @returns @p suppressed, or NULL (sticky builder error).
 */
KS_EXPORT ks_table_t *ks_table_suppress_idle_advance(ks_table_t *suppressed,
                                                     int64_t idle_ms);

/* ---- tables and joins -------------------------------------------------------
 *
 * Tables forward only their new values downstream, not Kafka Streams'
 * Change (new, old) pairs: a null value is a tombstone for its key. Joins
 * read a table through the key-value store it is materialized in: a table
 * from ks_builder_table() or a key-value aggregation, or a filter or
 * map_values of one (applied on the fly to the stored values, as Kafka
 * Streams' value getters). Windowed tables and join results cannot be
 * joined again.
 *
 * Co-partitioning: both sides of a join must be keyed and partitioned
 * alike, with equal partition counts: a join puts both sides in one
 * sub-topology, whose tasks read partition N of every input. A side whose
 * key may have changed is repartitioned through <name>-repartition first
 * (stream-stream: <name>-left- and <name>-right-repartition), as Kafka
 * Streams does; a repartition topic without a given count takes the count
 * of the source topics it is joined with (with none, the largest count of
 * the joined repartition topics), as Kafka Streams'
 * CopartitionedTopicsEnforcer. Counts that cannot be reconciled, two source
 * topics or a repartition count given with ks_stream_repartition() that
 * differ, fail at start, naming the topics.
 */

/** Combines a left and a right value into the join result, allocated from
 *  @p arena or borrowed from the inputs. In left and outer joins the
 *  missing side is NULL. */
typedef const void *(ks_value_joiner_fn)(ks_arena_t *arena,
                                         const void *key,
                                         const void *left,
                                         const void *right,
                                         void *opaque);

/**
 * A table from @p topic, materialized in the key-value store @p store
 * (NULL derives "<topic>-STATE-STORE-<index>"), changelogged as any store.
 * Every update is forwarded; a null value deletes the key and is forwarded
 * as a tombstone. Records with a null key are skipped and counted.
 * Takes ownership of @p key_serde and @p value_serde; copies the names.
 * @returns a table that belongs to the builder.
 */
KS_EXPORT ks_table_t *ks_builder_table(ks_builder_t *b,
                                       const char *topic,
                                       ks_serde_t *key_serde,
                                       ks_serde_t *value_serde,
                                       const char *store);
/** The rows for which @p pred holds; an update that fails it is forwarded
 *  as a tombstone, as Kafka Streams does. Not materialized. */
KS_EXPORT ks_table_t *ks_table_filter(ks_table_t *t,
                                      const char *name,
                                      ks_predicate_fn *pred,
                                      void *opaque);
/** New values (tombstones stay tombstones). Takes ownership of
 *  @p value_serde, the new values' serde (NULL: unknown). Not
 *  materialized. */
KS_EXPORT ks_table_t *ks_table_map_values(ks_table_t *t,
                                          const char *name,
                                          ks_mapper_fn *fn,
                                          void *opaque,
                                          ks_serde_t *value_serde);

/**
 * Joins each stream record with the table's current value for its key
 * (inner: records without one are dropped). Table updates produce no
 * output. Records with a null value, or a null key, are skipped and
 * counted ("dropped-skipped"). The result keeps the stream's key and
 * timestamp; its value serde is unknown. @p joiner gets (stream value,
 * table value). Copies @p name.
 */
KS_EXPORT ks_stream_t *ks_stream_join_table(ks_stream_t *s,
                                            ks_table_t *t,
                                            const char *name,
                                            ks_value_joiner_fn *joiner,
                                            void *opaque);
/** As ks_stream_join_table(), but a record without a table value joins
 *  with NULL; a record with a null key (and a value) too, as Kafka Streams
 *  3.7 does. */
KS_EXPORT ks_stream_t *ks_stream_left_join_table(ks_stream_t *s,
                                                 ks_table_t *t,
                                                 const char *name,
                                                 ks_value_joiner_fn *joiner,
                                                 void *opaque);

/** Join windows: a record at time t joins the other side's records in
 *  [t - before_ms, t + after_ms] (both ends included); a window closes
 *  grace_ms after its end. */
typedef struct ks_join_windows_s {
        int64_t before_ms;
        int64_t after_ms;
        int64_t grace_ms;
} ks_join_windows_t;

/**
 * Windowed stream-stream inner join, as Kafka Streams' KStream#join: each
 * side keeps its records in a window store (retention before + after +
 * grace) named "<name>-this-join-store" / "<name>-other-join-store", and a
 * record joins every record of the other side with the same key inside
 * its window. The result's timestamp is the larger of the two. Records
 * with a null key or value are skipped and counted. @p a_value_serde and
 * @p b_value_serde store the values (NULL: the streams'; ownership taken).
 * The result keeps the key; its value serde is unknown.
 */
KS_EXPORT ks_stream_t *ks_stream_join_stream(ks_stream_t *a,
                                             ks_stream_t *b,
                                             const char *name,
                                             ks_value_joiner_fn *joiner,
                                             void *opaque,
                                             ks_join_windows_t w,
                                             ks_serde_t *a_value_serde,
                                             ks_serde_t *b_value_serde);
/**
 * As ks_stream_join_stream(), and a record of @p a that joined nothing is
 * emitted as joiner(key, a, NULL) once its window has closed (stream time
 * of the join > its time + after + grace), with its own timestamp, as Kafka
 * Streams 3.x does (a shared "<name>-outer-shared-join-store" holds them
 * until then). A record of @p a already that late when it arrives is
 * emitted at once. A record of @p a with a null key is emitted at once.
 */
KS_EXPORT ks_stream_t *ks_stream_left_join_stream(ks_stream_t *a,
                                                  ks_stream_t *b,
                                                  const char *name,
                                                  ks_value_joiner_fn *joiner,
                                                  void *opaque,
                                                  ks_join_windows_t w,
                                                  ks_serde_t *a_value_serde,
                                                  ks_serde_t *b_value_serde);
/** As ks_stream_left_join_stream(), for both sides: unjoined records of
 *  @p b are emitted as joiner(key, NULL, b) once their window (time -
 *  before .. time, plus grace) has closed. */
KS_EXPORT ks_stream_t *ks_stream_outer_join_stream(ks_stream_t *a,
                                                   ks_stream_t *b,
                                                   const char *name,
                                                   ks_value_joiner_fn *joiner,
                                                   void *opaque,
                                                   ks_join_windows_t w,
                                                   ks_serde_t *a_value_serde,
                                                   ks_serde_t *b_value_serde);

/**
 * Table-table inner join, as Kafka Streams' KTable#join: an update on
 * either side reads the other side's current value for the key and emits
 * the joined value, or a tombstone when the row is deleted; nothing when
 * the other side has no row. The result is keyed alike, carries the
 * updating record's timestamp, and is not materialized (it cannot be
 * joined again); its value serde is unknown.
 */
KS_EXPORT ks_table_t *ks_table_join(ks_table_t *a,
                                    ks_table_t *b,
                                    const char *name,
                                    ks_value_joiner_fn *joiner,
                                    void *opaque);
/** Left join: every row of @p a is in the result, joined with NULL where
 *  @p b has none; a delete in @p a emits a tombstone. */
KS_EXPORT ks_table_t *ks_table_left_join(ks_table_t *a,
                                         ks_table_t *b,
                                         const char *name,
                                         ks_value_joiner_fn *joiner,
                                         void *opaque);
/** Outer join: rows of either side, joined with NULL where the other has
 *  none; a row deleted on both sides emits a tombstone. */
KS_EXPORT ks_table_t *ks_table_outer_join(ks_table_t *a,
                                          ks_table_t *b,
                                          const char *name,
                                          ks_value_joiner_fn *joiner,
                                          void *opaque);

#ifdef __cplusplus
}
#endif
#endif
