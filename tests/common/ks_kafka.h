/* Helpers for tests that talk to a real (or mock) Kafka: topics, producing,
 * consuming everything back, and running app instances as processes. */
#ifndef KS_KAFKA_TEST_H
#define KS_KAFKA_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Creates a topic (fails the test on error; an existing one is fine). */
void kt_create_topic(const char *bootstrap, const char *topic, int partitions);
/** The same with the NULL-ended topic config name/value pairs @p config
 *  (may be NULL); @p fresh: the topic must be new (one just deleted is
 *  waited for, 30 s at most). */
void kt_create_topic_config(const char *bootstrap,
                            const char *topic,
                            int partitions,
                            const char *const *config,
                            bool fresh);

/** Produces @p n records "<key_prefix><i % keys>" -> value from @p fmt
 *  (printf with i as its only int argument), keyed by murmur2. */
void kt_produce(const char *bootstrap,
                const char *topic,
                int from,
                int n,
                const char *key_prefix,
                int keys,
                const char *fmt);
/** Produces @p n records made by @p gen (key and value buffers of 256
 *  bytes each) with one producer. */
void kt_produce_gen(const char *bootstrap,
                    const char *topic,
                    int n,
                    void (*gen)(int i, char *key, char *value));
/** Produces one raw record. */
void kt_produce_raw(const char *bootstrap,
                    const char *topic,
                    const char *key,
                    const void *value,
                    size_t len);

typedef struct kt_record_s {
        char *key;   /* NUL-terminated copy; NULL for a null key */
        char *value; /* NUL-terminated copy; NULL for a tombstone */
        int32_t partition;
        int64_t offset;
        char **headers; /* name, value, name, value, ... */
        int header_cnt; /* pairs */
} kt_record_t;

/** Reads @p topic from the beginning until @p want records arrived or
 *  @p timeout_ms passed. @returns the count; *out is an array (free with
 *  kt_records_free). */
size_t kt_consume_all(const char *bootstrap,
                      const char *topic,
                      size_t want,
                      int timeout_ms,
                      kt_record_t **out);
void kt_records_free(kt_record_t *recs, size_t n);
const char *kt_header(const kt_record_t *r, const char *name);

/** Starts build/tests/ks_test_app with the given arguments (NULL-ended);
 *  its stderr goes to @p log_path. */
pid_t kt_spawn_app(const char *log_path, const char *const *args);
/** Sends @p sig and waits (up to @p timeout_ms, then SIGKILL).
 *  @returns the exit status as from waitpid. */
int kt_stop(pid_t pid, int sig, int timeout_ms);

/** Copies topic config @p name's value into @p out. @returns false if the
 *  broker did not describe it. */
bool kt_topic_config(const char *bootstrap,
                     const char *topic,
                     const char *name,
                     char *out,
                     size_t out_size);
/**
 * Reads @p topic (int64 values, keys "<one character><index>") until the
 * latest value of every key index below @p keys is @p want, for up to
 * @p timeout_ms: a count's output, which a record cache may collapse.
 * @returns the records read that last time (0 on timeout); @p latest gets
 *          the latest values seen.
 */
size_t kt_await_counts(const char *bootstrap,
                       const char *topic,
                       int keys,
                       int64_t want,
                       int timeout_ms,
                       int64_t *latest);
/** The partition's first offset still in the log (its log start). */
int64_t kt_low_watermark(const char *bootstrap,
                         const char *topic,
                         int32_t partition);

/** Runs infra/kafka/kafka.sh with @p args; its stdout goes to @p out
 *  (NULL: discarded). @returns the exit status as from pclose(). */
int kt_kafka_sh(const char *args, char *out, size_t out_size);
/** Starts a 3-node cluster named @p name (kafka.sh cluster-up) and copies
 *  its bootstrap servers to @p bootstrap. @returns false on failure. */
bool kt_cluster_up(const char *name, char *bootstrap, size_t size);

/** Records in partitions 0..@p partitions-1 of @p topic: the sum of their
 *  high watermarks (transaction markers included); 0 where the broker does
 *  not answer in 5 s. */
int64_t kt_topic_records(const char *bootstrap,
                         const char *topic,
                         int32_t partitions);
/** Lines of the file @p path that contain @p text (0 if it is missing). */
int kt_log_count(const char *path, const char *text);

/** Sleeps @p ms milliseconds. */
void kt_sleep_ms(int ms);
/** Removes @p dir and everything under it (fails the test on error). */
void kt_rm_rf(const char *dir);

/** A name unique to this run: "<prefix>-<pid>-<time>". */
const char *kt_unique(const char *prefix);

#endif
