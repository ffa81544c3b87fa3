/**
 * @file dedup.h
 * @brief Deduplication by event_id within a window of event time.
 *
 * An event is a duplicate when an event with its id was registered at a
 * time t0 >= T - window, where T is the largest event timestamp this
 * deduplicator has seen (this event's included). kstreams-app keeps one per
 * task: duplicates share their key, hence their partition and task, and a
 * task's time does not depend on how fast other partitions are read. Only
 * events that pass validation reach it, so invalid events never register an
 * id; a duplicate does not register again (its window runs from the first
 * one).
 *
 * The state is in memory. It is not restored after a restart: events
 * redelivered after a crash are not recognized as duplicates of events
 * seen before it. (The Processor API cannot yet attach a changelogged
 * store to a processor, which a restart-proof version needs.)
 */
#ifndef KS_APP_DEDUP_H
#define KS_APP_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct dedup_s dedup_t;

/** Returns a new deduplicator; free with dedup_destroy(). @p window_ms 0
 *  turns it off (everything is new). NULL on OOM. */
dedup_t *dedup_new(int64_t window_ms);
void dedup_destroy(dedup_t *d);

/** @returns true if @p id at @p ts is new (and registers it), false if it
 *  is a duplicate. Thread-safe (a mutex). Copies @p id. */
bool dedup_check(dedup_t *d, const char *id, int64_t ts);

/** Duplicates dropped so far. */
uint64_t dedup_dropped(dedup_t *d);

#endif
