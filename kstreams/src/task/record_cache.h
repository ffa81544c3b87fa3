/* The record cache of one store: the latest change of each key written
 * since the last flush, in the order of their last write, so that repeated
 * updates of a key within a commit interval leave one changelog record and
 * one downstream record, as Kafka Streams' ThreadCache does.
 *
 * Unlike Kafka Streams' cache this one is write-through for the data: the
 * store is written at once (reads always go to the store, and LMDB's write
 * transaction already holds the interval's writes in memory), and only the
 * changelog record and the downstream record wait here. Range reads
 * (session merges, sliding windows, joins) therefore never need a merged
 * cache+store iterator. @locality stream thread */
#ifndef KS_RECORD_CACHE_H
#define KS_RECORD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kstreams/error.h"
#include "kstreams/processor.h"

/** The bytes all the caches of one stream thread (or one test driver) may
 *  hold together: statestore.cache.max.bytes divided among the threads. */
typedef struct ks_cache_budget_s {
        size_t max;
        size_t used;
} ks_cache_budget_t;

/** Where a cached change came from: the context of the record that made
 *  it, which the downstream record gets when the entry is flushed. */
typedef struct ks_cache_origin_s {
        const char *topic; /* borrowed: the task's own topic names */
        int32_t partition;
        int64_t offset;
        int64_t timestamp; /* of the downstream record */
        const ks_header_t *headers;
        size_t header_cnt;
} ks_cache_origin_t;

typedef struct ks_cache_entry_s {
        struct ks_cache_entry_s *prev, *next; /* write order, oldest first */
        struct ks_cache_entry_s *chain;       /* the hash bucket's next */
        uint64_t hash;
        ks_cache_origin_t origin; /* headers owned, one block */
        /* The key was not in the store when this interval first wrote it:
         * if it ends deleted, neither the changelog nor downstream ever
         * needs to hear of it (Kafka Streams' caching stores skip it too). */
        bool created;
        bool deleted;
        ks_bytes_t value; /* owned; data NULL when deleted */
        size_t value_cap; /* bytes allocated at value.data */
        size_t key_len;
        unsigned char key[];
} ks_cache_entry_t;

typedef struct ks_record_cache_s ks_record_cache_t;

/** Returns a new, empty cache drawing on @p budget (borrowed, must outlive
 *  it); free with ks__cache_destroy(). NULL when out of memory. */
ks_record_cache_t *ks__cache_new(ks_cache_budget_t *budget);
/** Frees the cache and its entries, giving their bytes back to the budget.
 *  Accepts NULL. */
void ks__cache_destroy(ks_record_cache_t *cache);

/**
 * Records the latest change of @p key: @p value (data NULL: deleted) and
 * its @p origin (copied, headers included). @p created says the key was not
 * in the store before this write; it counts only when the key is not
 * already cached. The entry moves to the end of the write order.
 * @returns KS_OK or KS_ERR_NOMEM (the cache is unchanged then).
 */
ks_err_t ks__cache_put(ks_record_cache_t *cache,
                       ks_bytes_t key,
                       ks_bytes_t value,
                       const ks_cache_origin_t *origin,
                       bool created);
/** Detaches and returns the oldest entry (NULL when empty); free it with
 *  ks__cache_entry_free(). */
ks_cache_entry_t *ks__cache_pop(ks_record_cache_t *cache);
void ks__cache_entry_free(ks_cache_entry_t *entry);
/** The number of keys held. */
size_t ks__cache_count(const ks_record_cache_t *cache);
/** True when the budget this cache draws on is exceeded. */
bool ks__cache_over_budget(const ks_record_cache_t *cache);

#endif
