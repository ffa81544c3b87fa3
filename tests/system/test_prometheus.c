/* A real Prometheus server (Debian's binary, on a free port, with its own
 * data directory) scrapes a running instance's GET /metrics on the real
 * broker: queried through Prometheus' HTTP API, the processed count is the
 * number of records produced, and there is one lag series per input
 * partition. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs_int.h"
#include "ks_check.h"
#include "ks_kafka.h"

#define PARTS   3
#define RECORDS 2000
#define KEYS    50

static int free_port(void) {
        int fd                = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        socklen_t len = sizeof(sa);
        bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        getsockname(fd, (struct sockaddr *)&sa, &len);
        close(fd);
        return ntohs(sa.sin_port);
}

static size_t collect(char *p, size_t size, size_t n, void *opaque) {
        ks_buf_append(opaque, p, size * n);
        return size * n;
}

/* The value of instant query @p q (the sum of its samples) and how many
 * samples it gave, or -1 when Prometheus did not answer. */
static double query(int port, const char *q, int *samples) {
        CURL *c  = curl_easy_init();
        char *eq = curl_easy_escape(c, q, 0);
        char url[2048];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v1/query?query=%s",
                 port, eq);
        curl_free(eq);
        ks_buf_t body = {0};
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        CURLcode rc = curl_easy_perform(c);
        curl_easy_cleanup(c);
        *samples = 0;
        if (rc != CURLE_OK) {
                ks_buf_free(&body);
                return -1;
        }
        json_t *j = json_loadb(body.data, body.len, 0, NULL);
        ks_buf_free(&body);
        json_t *res = json_object_get(json_object_get(j, "data"), "result");
        double sum  = 0;
        size_t i;
        json_t *r;
        json_array_foreach(res, i, r) {
                const char *v = json_string_value(
                        json_array_get(json_object_get(r, "value"), 1));
                sum += v ? atof(v) : 0;
                (*samples)++;
        }
        json_decref(j);
        return sum;
}

START_TEST(prometheus_scrapes_the_processed_count_and_lag) {
        const char *bootstrap = ks_test_require_service("KS_BOOTSTRAP");
        if (!bootstrap)
                return;
        if (system("command -v prometheus >/dev/null 2>&1")) {
                ck_assert_msg(!getenv("CI"), "no prometheus binary");
                return;
        }
        char err[256], app_id[160], topic[200];
        snprintf(app_id, sizeof(app_id), "%s", kt_unique("prom"));
        snprintf(topic, sizeof(topic), "%s-in", app_id);
        kt_create_topic(bootstrap, topic, PARTS);
        kt_produce(bootstrap, topic, 0, RECORDS, "k", KEYS, "%d");

        ks_builder_t *b = ks_builder_new();
        ks_grouped_count(ks_stream_group_by_key(
                                 ks_builder_stream(b, topic, ks_serde_string(),
                                                   ks_serde_string()),
                                 NULL, NULL),
                         "counts");
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        char dir[] = "/tmp/ks_prom_XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        char state[300];
        snprintf(state, sizeof(state), "%s/state", dir);
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", app_id, err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "state.dir", state, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "500", err, sizeof(err));
        ks_conf_set(c, "http.listen", "127.0.0.1:0", err, sizeof(err));
        ks_conf_set(c, "consumer.statistics.interval.ms", "1000", err,
                    sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_msg(s, "%s", err);
        ks_error_t *e = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");

        char cfg[400], data[400], listen[64];
        int prom_port = free_port();
        snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
        snprintf(data, sizeof(data), "%s/data", dir);
        snprintf(listen, sizeof(listen), "127.0.0.1:%d", prom_port);
        FILE *f = fopen(cfg, "w");
        fprintf(f,
                "global: {scrape_interval: 1s}\n"
                "scrape_configs:\n"
                "  - job_name: kstreams\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n",
                ks_streams_http_port(s));
        fclose(f);
        char log[400];
        snprintf(log, sizeof(log), "%s/prometheus.log", dir);
        pid_t pid = fork();
        if (!pid) {
                freopen(log, "w", stderr);
                execlp("prometheus", "prometheus", "--config.file", cfg,
                       "--storage.tsdb.path", data, "--web.listen-address",
                       listen, (char *)NULL);
                _exit(127);
        }
        char q1[600], q2[600];
        snprintf(q1, sizeof(q1),
                 "sum(kstreams_records_processed_total{application_id=\"%s\"})",
                 app_id);
        snprintf(q2, sizeof(q2),
                 "kstreams_consumer_lag_records{application_id=\"%s\","
                 "topic=\"%s\"}",
                 app_id, topic);
        double processed = -1;
        int n = 0, lag_series = 0;
        for (int i = 0; i < 120; i++) {
                processed = query(prom_port, q1, &n);
                query(prom_port, q2, &lag_series);
                if (processed == RECORDS && lag_series == PARTS)
                        break;
                sleep(1);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        ck_assert_msg(processed == RECORDS,
                      "Prometheus says %g records processed, %d produced "
                      "(log: %s)",
                      processed, RECORDS, log);
        ck_assert_int_eq(lag_series, PARTS);
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        ck_assert_int_eq(ks__rmtree(dir), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("prometheus");
        TCase *tc = tcase_create("scrape");
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, prometheus_scrapes_the_processed_count_and_lag);
        suite_add_tcase(s, tc);
        return s;
}
