/* Helpers shared by the benchmarks that talk to a real broker. */
#ifndef KS_BENCH_KAFKA_H
#define KS_BENCH_KAFKA_H

#include <librdkafka/rdkafka.h>

double bench_now_s(void);
/** CPU seconds (user + system) this process has used. */
double bench_cpu_s(void);
/** A producer (large batches) or a consumer in @p group; exits on error. */
rd_kafka_t *bench_client(rd_kafka_type_t type,
                         const char *bootstrap,
                         const char *group);
void bench_create_topic(rd_kafka_t *rk,
                        const char *name,
                        int partitions,
                        const char *cleanup_policy);
/** Produces user events (keyed by user) into @p topic; MB written. */
double bench_produce_events(const char *bootstrap, const char *topic, long n);
/** Seconds for a raw librdkafka read of @p n records of @p topic. */
double bench_raw_consume(const char *bootstrap, const char *topic, long n);
/** Seconds for a raw librdkafka consume + produce of @p n records. */
double bench_raw_pipe(const char *bootstrap,
                      const char *topic,
                      const char *out,
                      long n);

#endif
