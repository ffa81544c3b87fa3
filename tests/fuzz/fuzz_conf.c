/* Fuzz target: configuration values. Input: lines "name=value"; each goes
 * through ks_conf_set() (kstreams' table, or librdkafka's for other
 * names), then the configuration is read back, copied and applied to
 * librdkafka configurations for every client side, as the runtime does. */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kstreams/kstreams.h>

#include "conf_int.h"
#include "streams_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char errstr[512], value[4096];
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size]      = '\0';
        ks_conf_t *conf = ks_conf_new();
        for (char *line = text, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *eq = strchr(line, '=');
                if (!eq)
                        continue;
                *eq = '\0';
                if (ks_conf_set(conf, line, eq + 1, errstr, sizeof(errstr)) ==
                    KS_OK) {
                        if (ks_conf_get(conf, line, value, sizeof(value)) ==
                                    KS_OK &&
                            strcmp(value, eq + 1))
                                abort(); /* what was set reads back */
                } else if (!memchr(errstr, '\0', sizeof(errstr))) {
                        abort();
                }
        }
        ks_conf_t *copy = ks_conf_dup(conf);
        for (int side = 0; copy && side < 3; side++) {
                rd_kafka_conf_t *rd = rd_kafka_conf_new();
                ks_error_destroy(ks__rdkafka_conf(copy, side, rd));
                rd_kafka_conf_destroy(rd);
        }
        /* Every integer property reads as a number within its range. */
        static const char *const ints[] = {"num.stream.threads",
                                           "commit.interval.ms",
                                           "statestore.map.size", "poll.ms"};
        for (size_t i = 0; copy && i < sizeof(ints) / sizeof(*ints); i++)
                (void)ks__conf_int(copy, ints[i]);
        ks_conf_destroy(copy);
        ks_conf_destroy(conf);
        free(text);
        return 0;
}
