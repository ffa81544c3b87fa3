/* Configuration: the property table, validation, librdkafka pass-through. */
#include "conf_int.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum prop_type_e { PROP_STR, PROP_INT, PROP_ENUM } prop_type_t;

typedef struct prop_s {
        const char *name;
        prop_type_t type;
        const char *def;
        int64_t min, max;  /* PROP_INT */
        const char *enums; /* PROP_ENUM: "a|b|c" */
        const char *doc;
} prop_t;

#define HANDLERS "fail|log-and-continue|dead-letter"

/* The one property table. CONFIGURATION.md is generated from it (a unit test
 * fails when the file and the table differ). */
static const prop_t props[] = {
        {"application.id", PROP_STR, "", 0, 0, NULL,
         "Identifies the application: the consumer group id, the prefix of "
         "internal topics (`<application.id>-<name>-repartition`, "
         "`-changelog`) and of the state directory. Required to run against "
         "Kafka."},
        {"num.stream.threads", PROP_INT, "1", 1, 256, NULL,
         "Stream threads per instance; each owns a consumer and a producer."},
        {"commit.interval.ms", PROP_INT, "30000", 1, 86400000, NULL,
         "How often progress is committed: the producer is flushed, then "
         "the consumed offsets are committed (under exactly_once_v2, in the "
         "thread's Kafka transaction). Under exactly_once_v2 the default is "
         "100, as in Kafka Streams: output becomes visible to read_committed "
         "consumers only at a commit."},
        {"processing.guarantee", PROP_ENUM, "at_least_once", 0, 0,
         "at_least_once|exactly_once_v2",
         "at_least_once: after a crash, records since the last commit are "
         "processed again (state stays exact; output may repeat). "
         "exactly_once_v2 (Kafka transactions, KIP-447): every record "
         "affects state and output exactly once, through crashes, "
         "rebalances and broker restarts; one transactional producer per "
         "stream thread, `transactional.id` "
         "`<application.id>-<instance id>-<thread index>`, the instance id "
         "kept in `<state.dir>/<application.id>/kstreams.instance.id`. "
         "Readers of the output topics must use "
         "`isolation.level=read_committed`. Needs at least 3 brokers "
         "unless the broker's `transaction.state.log.replication.factor` "
         "and `transaction.state.log.min.isr` are lowered (infra/ does so "
         "for its single broker). `transaction.timeout.ms` (a producer "
         "property) defaults to 10000 under exactly_once_v2, and must "
         "exceed commit.interval.ms by at least 5000."},
        {"application.server", PROP_STR, "", 0, 0, NULL,
         "`host:port` where this instance answers interactive queries (your "
         "own server, or the HTTP endpoint of http.listen). It is appended to "
         "the "
         "consumers' client.id as `@host:port`, so that any instance can "
         "tell where a key's partition is served "
         "(ks_streams_query_key_owner()) and where the HTTP endpoint "
         "forwards remote queries. Empty: the HTTP endpoint's address when "
         "http.listen names a host, else not advertised."},
        {"http.listen", PROP_STR, "", 0, 0, NULL,
         "`host:port` of the embedded HTTP endpoint: GET /metrics "
         "(Prometheus), /health, /ready and /v1/stores/... (interactive "
         "queries, forwarded to the instance hosting the key). Port 0 picks "
         "a free port (ks_streams_http_port(), and the log). Empty: no "
         "endpoint. Setting it makes the consumers send statistics every "
         "5 s (statistics.interval.ms, for the lag metric) unless you set "
         "that yourself."},
        {"http.timeout.ms", PROP_INT, "10000", 100, 600000, NULL,
         "How long the HTTP endpoint waits for a client's request (a slow "
         "client is then disconnected) and for the instance it forwards a "
         "query to."},
        {"state.dir", PROP_STR, "/tmp/kstreams", 0, 0, NULL,
         "Local state of stateful tasks: one LMDB environment per task in "
         "`<state.dir>/<application.id>/<task>/`, locked while open. A "
         "directory is kept after its task moves away, so that a task coming "
         "back restores only the changelog's tail."},
        {"state.cleanup.delay.ms", PROP_INT, "600000", 0, 31536000000LL, NULL,
         "How long the state of a task that moved away is kept (since its "
         "last write) before it is deleted; checked at start and every "
         "minute."},
        {"statestore.map.size", PROP_INT, "67108864", 1048576, 1099511627776LL,
         NULL, "Initial LMDB map size per task, in bytes; it grows on demand."},
        {"statestore.cache.max.bytes", PROP_INT, "10485760", 0, 1099511627776LL,
         NULL,
         "Bytes of record cache shared by all the stores of an instance "
         "(divided among its stream threads). Repeated updates of a key "
         "within a commit interval are collapsed into one changelog record "
         "and one downstream record, as Kafka Streams' cache does; 0 sends "
         "every update. The test driver flushes it after every piped "
         "record."},
        {"restore.batch.records", PROP_INT, "100000", 1, 100000000, NULL,
         "Changelog records applied per LMDB transaction while restoring."},
        {"windowstore.changelog.additional.retention.ms", PROP_INT, "86400000",
         0, 31536000000000LL, NULL,
         "Added to a window or session store's retention to make its "
         "changelog's retention.ms, as Kafka Streams does. The broker "
         "applies it to the records' timestamps against wall-clock time: "
         "when replaying events older than this, raise it, or changelog "
         "records of windows still open in stream time are deleted and a "
         "restore would miss them."},
        {"repartition.purge.interval.ms", PROP_INT, "30000", 1, 86400000, NULL,
         "How often a stream thread deletes the records of repartition "
         "topics it has committed (DeleteRecords up to the committed "
         "offset), as Kafka Streams does. Repartition topics have no time "
         "retention, so this is what keeps them small."},
        {"buffered.records.per.partition", PROP_INT, "10000", 1, 10000000, NULL,
         "Records buffered per input partition before it is paused, as "
         "Kafka Streams does; it is resumed once half of them are "
         "processed. A safety net only: the stream loop processes what it "
         "consumes. Pausing costs throughput (with 1000, the stateless "
         "benchmark ran at 85k records/s against 122k with 10000000)."},
        {"max.task.idle.ms", PROP_INT, "0", -1, 31536000000LL, NULL,
         "How long a task with several input partitions waits for an empty "
         "one before it processes the others, as Kafka Streams does "
         "(KIP-695): it never processes while an empty input partition has "
         "data on the broker the consumer has not fetched yet, or while its "
         "lag is not known yet; once the partition is caught up (lag 0) it "
         "waits this long of wall-clock time for more data, then processes "
         "what is buffered (counted as an enforced processing). That keeps "
         "records in timestamp order across the inputs, so the lagging side "
         "of a join is not dropped as late. -1: never wait, process "
         "whatever is buffered."},
        {"poll.ms", PROP_INT, "100", 0, 60000, NULL,
         "How long a stream thread blocks waiting for records."},
        {"default.deserialization.exception.handler", PROP_ENUM, "fail", 0, 0,
         HANDLERS,
         "What a record that cannot be deserialized (or has no valid "
         "timestamp) does: fail the task, log and skip it, or go to the "
         "dead-letter topic."},
        {"default.processing.exception.handler", PROP_ENUM, "fail", 0, 0,
         HANDLERS, "What a record whose processor returns an error does."},
        {"default.production.exception.handler", PROP_ENUM, "fail", 0, 0,
         HANDLERS, "What a record whose delivery to Kafka fails does."},
        {"errors.dead.letter.queue.topic.name", PROP_STR, "", 0, 0, NULL,
         "The dead-letter topic. Records sent there keep their original "
         "key and value bytes, with headers naming the error, source topic, "
         "partition, offset and processor. Required by the dead-letter "
         "handlers."},
        {"startup.timeout.ms", PROP_INT, "30000", 100, 3600000, NULL,
         "How long ks_streams_start() waits for the brokers to answer before "
         "it fails with an error naming them."},
        {"replication.factor", PROP_INT, "-1", -1, 32767, NULL,
         "Replication factor of the internal topics the application creates "
         "(-1: the broker's default.replication.factor)."},
        {"consume.batch.size", PROP_INT, "1000", 1, 1000000, NULL,
         "Records a stream thread takes from its consumer per poll."},
        {"log.rate.limit.ms", PROP_INT, "1000", 0, 3600000, NULL,
         "Dropped or failed records are counted always, logged at most once "
         "per this interval per reason."},
};
#define PROP_CNT (sizeof(props) / sizeof(props[0]))

typedef struct entry_s {
        char *name;
        char *value;
} entry_t;

struct ks_conf_s {
        entry_t *entries;
        size_t cnt, cap;
};

static const prop_t *prop_find(const char *name) {
        for (size_t i = 0; i < PROP_CNT; i++)
                if (!strcmp(props[i].name, name))
                        return &props[i];
        return NULL;
}

static entry_t *entry_find(const ks_conf_t *conf, const char *name) {
        for (size_t i = 0; i < conf->cnt; i++)
                if (!strcmp(conf->entries[i].name, name))
                        return &conf->entries[i];
        return NULL;
}

ks_conf_t *ks_conf_new(void) {
        return calloc(1, sizeof(ks_conf_t));
}

void ks_conf_destroy(ks_conf_t *conf) {
        if (!conf)
                return;
        for (size_t i = 0; i < conf->cnt; i++) {
                free(conf->entries[i].name);
                free(conf->entries[i].value);
        }
        free(conf->entries);
        free(conf);
}

static ks_err_t entry_put(ks_conf_t *conf,
                          const char *name,
                          const char *value) {
        char *v = strdup(value);
        if (!v)
                return KS_ERR_NOMEM;
        entry_t *e = entry_find(conf, name);
        if (e) {
                free(e->value);
                e->value = v;
                return KS_OK;
        }
        if (conf->cnt == conf->cap) {
                size_t cap = conf->cap ? conf->cap * 2 : 16;
                entry_t *n = realloc(conf->entries, cap * sizeof(*n));
                if (!n)
                        goto err_free_v;
                conf->entries = n;
                conf->cap     = cap;
        }
        char *nm = strdup(name);
        if (!nm)
                goto err_free_v;
        conf->entries[conf->cnt].name  = nm;
        conf->entries[conf->cnt].value = v;
        conf->cnt++;
        return KS_OK;

err_free_v:
        free(v);
        return KS_ERR_NOMEM;
}

ks_conf_t *ks_conf_dup(const ks_conf_t *conf) {
        ks_conf_t *c = ks_conf_new();
        if (!c)
                return NULL;
        for (size_t i = 0; i < conf->cnt; i++) {
                if (entry_put(c, conf->entries[i].name,
                              conf->entries[i].value)) {
                        ks_conf_destroy(c);
                        return NULL;
                }
        }
        return c;
}

static bool enum_has(const char *enums, const char *value) {
        size_t vlen   = strlen(value);
        const char *p = enums;
        while (*p) {
                size_t n = strcspn(p, "|");
                if (n == vlen && !strncmp(p, value, n))
                        return true;
                p += n;
                if (*p == '|')
                        p++;
        }
        return false;
}

/* "" or host:port, with nothing that would break its parsing out of a
 * client.id ('@') or a URL (whitespace). */
static ks_err_t check_server(const char *name,
                             long min_port,
                             const char *value,
                             char *errstr,
                             size_t errstr_size) {
        const char *colon = strrchr(value, ':');
        char *end;
        if (!*value)
                return KS_OK;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == value || !colon[1] || *end || port < min_port ||
            port > 65535 || strpbrk(value, "@ \t\r\n")) {
                snprintf(errstr, errstr_size, "%s: \"%s\" is not host:port",
                         name, value);
                return KS_ERR_INVALID_ARG;
        }
        return KS_OK;
}

static ks_err_t validate(const prop_t *p,
                         const char *value,
                         char *errstr,
                         size_t errstr_size) {
        switch (p->type) {
        case PROP_STR:
                if (!strcmp(p->name, "application.server"))
                        return check_server(p->name, 1, value, errstr,
                                            errstr_size);
                if (!strcmp(p->name, "http.listen"))
                        return check_server(p->name, 0, value, errstr,
                                            errstr_size);
                return KS_OK;
        case PROP_ENUM:
                if (enum_has(p->enums, value))
                        return KS_OK;
                snprintf(errstr, errstr_size, "%s: \"%s\" is not one of %s",
                         p->name, value, p->enums);
                return KS_ERR_INVALID_ARG;
        case PROP_INT: {
                char *end;
                errno       = 0;
                long long v = strtoll(value, &end, 10);
                if (errno || end == value || *end) {
                        snprintf(errstr, errstr_size,
                                 "%s: \"%s\" is not an integer", p->name,
                                 value);
                        return KS_ERR_INVALID_ARG;
                }
                if (v < p->min || v > p->max) {
                        snprintf(errstr, errstr_size,
                                 "%s: %lld is outside [%lld, %lld]", p->name, v,
                                 (long long)p->min, (long long)p->max);
                        return KS_ERR_INVALID_ARG;
                }
                return KS_OK;
        }
        }
        return KS_ERR_INVALID_ARG;
}

/* librdkafka validates its own properties: try the value on a scratch conf
 * so a typo fails at ks_conf_set() rather than at start-up. */
static ks_err_t validate_rdkafka(const char *name,
                                 const char *value,
                                 char *errstr,
                                 size_t errstr_size) {
        rd_kafka_conf_t *scratch = rd_kafka_conf_new();
        char rderr[256];
        rd_kafka_conf_res_t res =
                rd_kafka_conf_set(scratch, name, value, rderr, sizeof(rderr));
        rd_kafka_conf_destroy(scratch);
        if (res == RD_KAFKA_CONF_OK)
                return KS_OK;
        if (res == RD_KAFKA_CONF_UNKNOWN) {
                snprintf(errstr, errstr_size,
                         "%s: unknown property (neither a kstreams nor a "
                         "librdkafka property)",
                         name);
                return KS_ERR_UNKNOWN_CONF;
        }
        snprintf(errstr, errstr_size, "%s: %s", name, rderr);
        return KS_ERR_INVALID_ARG;
}

ks_err_t ks_conf_set(ks_conf_t *conf,
                     const char *name,
                     const char *value,
                     char *errstr,
                     size_t errstr_size) {
        if (!name || !value) {
                snprintf(errstr, errstr_size, "ks_conf_set: NULL %s",
                         name ? "value" : "name");
                return KS_ERR_INVALID_ARG;
        }
        const prop_t *p = prop_find(name);
        ks_err_t err;
        if (p) {
                err = validate(p, value, errstr, errstr_size);
        } else {
                const char *rdname = name;
                if (!strncmp(name, "consumer.", 9))
                        rdname = name + 9;
                else if (!strncmp(name, "producer.", 9))
                        rdname = name + 9;
                else if (!strncmp(name, "admin.", 6))
                        rdname = name + 6;
                err = validate_rdkafka(rdname, value, errstr, errstr_size);
        }
        if (err)
                return err;
        err = entry_put(conf, name, value);
        if (err)
                snprintf(errstr, errstr_size, "%s: out of memory", name);
        return err;
}

ks_err_t ks_conf_get(const ks_conf_t *conf,
                     const char *name,
                     char *dest,
                     size_t dest_size) {
        const entry_t *e = entry_find(conf, name);
        const char *v    = e ? e->value : NULL;
        if (!v) {
                const prop_t *p = prop_find(name);
                if (!p)
                        return KS_ERR_NOT_FOUND;
                v = p->def;
        }
        if (strlen(v) >= dest_size)
                return KS_ERR_INVALID_ARG;
        memcpy(dest, v, strlen(v) + 1);
        return KS_OK;
}

const char *ks__conf_str(const ks_conf_t *conf, const char *name) {
        const entry_t *e = entry_find(conf, name);
        if (e)
                return e->value;
        const prop_t *p = prop_find(name);
        if (!p) {
                fprintf(stderr, "kstreams: BUG: no property %s\n", name);
                abort();
        }
        return p->def;
}

int64_t ks__conf_int(const ks_conf_t *conf, const char *name) {
        return strtoll(ks__conf_str(conf, name), NULL, 10);
}

bool ks__conf_is_set(const ks_conf_t *conf, const char *name) {
        return entry_find(conf, name) != NULL;
}

ks_handler_t ks__conf_handler(const ks_conf_t *conf, const char *name) {
        const char *v = ks__conf_str(conf, name);
        if (!strcmp(v, "log-and-continue"))
                return KS_HANDLER_LOG_AND_CONTINUE;
        if (!strcmp(v, "dead-letter"))
                return KS_HANDLER_DEAD_LETTER;
        return KS_HANDLER_FAIL;
}

int ks__conf_foreach_rdkafka(const ks_conf_t *conf,
                             ks_conf_side_t side,
                             int (*fn)(const char *, const char *, void *),
                             void *opaque) {
        static const char *const prefixes[] = {"consumer.", "producer.",
                                               "admin."};
        /* Plain names first, so a side-specific one overrides them. */
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < conf->cnt; i++) {
                        const char *name = conf->entries[i].name;
                        if (prop_find(name))
                                continue;
                        bool prefixed = false;
                        for (int s = 0; s < 3; s++)
                                if (!strncmp(name, prefixes[s],
                                             strlen(prefixes[s])))
                                        prefixed = true;
                        const char *mine = prefixes[side];
                        int r            = 0;
                        if (pass == 0 && !prefixed)
                                r = fn(name, conf->entries[i].value, opaque);
                        else if (pass == 1 &&
                                 !strncmp(name, mine, strlen(mine)))
                                r = fn(name + strlen(mine),
                                       conf->entries[i].value, opaque);
                        if (r)
                                return r;
                }
        }
        return 0;
}

static const char *type_name(const prop_t *p) {
        switch (p->type) {
        case PROP_INT:
                return "integer";
        case PROP_ENUM:
                return "enum";
        default:
                return "string";
        }
}

ks_err_t ks_conf_properties_markdown(ks_buf_t *out) {
        ks_err_t err = ks_buf_appendf(
                out,
                "# Configuration\n\n"
                "<!-- Generated by kstreams-confdoc from the property table "
                "in kstreams/src/conf.c; do not edit by hand. -->\n\n"
                "Set with `ks_conf_set(conf, name, value, errstr, "
                "size)`. Any other name is passed to librdkafka and "
                "validated against its table at once (`bootstrap.servers`, "
                "`security.protocol`, ...); prefix it with `consumer.`, "
                "`producer.` or `admin.` to reach one client only.\n\n"
                "librdkafka defaults kstreams changes (yours win, except "
                "where correctness needs ours):\n\n"
                "- group consumer: `queued.min.messages=100000`, "
                "`queued.max.messages.kbytes=65536` (what one thread may "
                "prefetch: it bounds memory), `session.timeout.ms=10000`, "
                "`auto.offset.reset=earliest`. librdkafka 2.0.2 stops "
                "fetching at those thresholds and looks again only after "
                "1 s; a stream thread about to wait for input asks its "
                "partitions' leaders for their end offsets (at most every "
                "20 ms), which wakes the fetcher at once. `make bench` "
                "(event-count, 1M events, medians of 3, "
                "bench/peer/README.md): 157k records/s and 145 MiB peak RSS "
                "with the wake, against 58k before it; raising "
                "`consumer.queued.min.messages` to 1000000 and "
                "`consumer.queued.max.messages.kbytes` to 131072 as well "
                "gave 149k at 401 MiB, so the defaults stay.\n"
                "- producer: `linger.ms=5`; `enable.idempotence=true` and "
                "the `murmur2_random` partitioner always.\n"
                "- restore consumer: `isolation.level=read_committed`, "
                "`enable.partition.eof=true` (restoration ends by "
                "position).\n\n"
                "Security: librdkafka's `security.protocol`, `sasl.*` and "
                "`ssl.*` properties, set without a prefix, reach every "
                "client the runtime makes: each stream thread's consumer, "
                "producer and restore consumer, and the admin client of "
                "start-up (`tests/unit/test_conf.c` checks it, "
                "`tests/system/test_security.sh` runs a topology over "
                "SASL/PLAIN and TLS only). Credentials or TLS the broker "
                "refuses fail ks_streams_start() at once with librdkafka's "
                "reason (`_AUTHENTICATION`, `_SSL`), not after "
                "`startup.timeout.ms`. Secrets (`sasl.password`, "
                "`ssl.key.password`, `ssl.keystore.password`) are never "
                "logged by kstreams; librdkafka's own configuration dump "
                "(`debug=conf`) prints them as `[redacted]`.\n\n"
                "| property | type | default | range / values | "
                "description |\n"
                "|---|---|---|---|---|\n");
        for (size_t i = 0; !err && i < PROP_CNT; i++) {
                const prop_t *p = &props[i];
                char range[128] = "";
                if (p->type == PROP_INT)
                        snprintf(range, sizeof(range), "%lld .. %lld",
                                 (long long)p->min, (long long)p->max);
                else if (p->type == PROP_ENUM)
                        snprintf(range, sizeof(range), "%s", p->enums);
                err = ks_buf_appendf(out, "| `%s` | %s | %s%s%s | %s | %s |\n",
                                     p->name, type_name(p), *p->def ? "`" : "",
                                     *p->def ? p->def : "(none)",
                                     *p->def ? "`" : "", range, p->doc);
        }
        return err;
}
