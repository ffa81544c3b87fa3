/* The HTTP endpoint of an instance on librdkafka's mock cluster: /metrics
 * parses strictly, promtool accepts it, and its counts are the records
 * produced; /health and /ready; keys read over HTTP equal counts computed
 * here; bad requests (unknown store, malformed keys, oversized requests,
 * a body, a slow client) get a clear 4xx while others are still served.
 * The remote (forwarding) half is in tests/system/test_http_iq.c. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fs_int.h"
#include "ks_check.h"
#include "ks_kafka.h"
#include "ks_prom.h"

#define KEYS    23
#define RECORDS 500

static int port;

static size_t collect(char *p, size_t size, size_t n, void *opaque) {
        ks_buf_t *b = opaque;
        ks_buf_append(b, p, size * n);
        return size * n;
}

/* GET (or @p method) @p path; the body in @p body. @returns the status. */
static long http(const char *method, const char *path, ks_buf_t *body) {
        char url[16384];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        ks_buf_clear(body);
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (!strcmp(method, "POST"))
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        ks_buf_append(body, "", 1);
        body->len--;
        return status;
}

/* Sends @p req raw and reads the status line's code (0: closed). */
static int raw(const char *req, size_t len) {
        int fd                = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port   = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        size_t off = 0;
        while (off < len) {
                ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
                if (w <= 0)
                        break; /* the server may close early */
                off += (size_t)w;
        }
        char buf[64] = "";
        ssize_t r    = recv(fd, buf, sizeof(buf) - 1, 0);
        close(fd);
        int code = 0;
        if (r > 0)
                sscanf(buf, "HTTP/1.%*d %d", &code);
        return code;
}

static double metric(const char *text,
                     const char *name,
                     const char *lname,
                     const char *lvalue,
                     int *n) {
        kp_doc_t doc;
        char why[256];
        ck_assert_msg(kp_parse(text, &doc, why, sizeof(why)), "%s", why);
        double v = kp_sum(&doc, name, lname, lvalue, n);
        kp_free(&doc);
        return v;
}

START_TEST(the_endpoint_serves_metrics_queries_and_refuses_bad_requests) {
        char err[256];
        int64_t want[KEYS]  = {0};
        rd_kafka_conf_t *mc = rd_kafka_conf_new();
        rd_kafka_conf_set(mc, "log_level", "0", err, sizeof(err));
        rd_kafka_t *host =
                rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof(err));
        rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(host, 1);
        const char *bootstrap         = rd_kafka_mock_cluster_bootstraps(mock);
        rd_kafka_mock_topic_create(mock, "in", 4, 1);
        rd_kafka_mock_topic_create(mock, "mock-http-counts-changelog", 4, 1);
        kt_produce(bootstrap, "in", 0, RECORDS, "k", KEYS, "%d");
        for (int i = 0; i < RECORDS; i++)
                want[i % KEYS]++;

        ks_builder_t *b = ks_builder_new();
        ks_grouped_count(ks_stream_group_by_key(
                                 ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_string()),
                                 NULL, NULL),
                         "counts");
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        char dir[] = "/tmp/ks_http_mock_XXXXXX";
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ks_conf_t *c = ks_conf_new();
        ks_conf_set(c, "application.id", "mock-http", err, sizeof(err));
        ks_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
        ks_conf_set(c, "state.dir", dir, err, sizeof(err));
        ks_conf_set(c, "commit.interval.ms", "100", err, sizeof(err));
        ks_conf_set(c, "consumer.session.timeout.ms", "6000", err, sizeof(err));
        ks_conf_set(c, "consumer.statistics.interval.ms", "500", err,
                    sizeof(err));
        ck_assert_int_eq(
                ks_conf_set(c, "http.listen", "127.0.0.1:0", err, sizeof(err)),
                KS_OK);
        ks_conf_set(c, "http.timeout.ms", "1000", err, sizeof(err));
        ks_streams_t *s = ks_streams_new(t, c, err, sizeof(err));
        ck_assert_msg(s, "%s", err);
        ck_assert_int_eq(ks_streams_http_port(s), -1);
        ks_error_t *e = ks_streams_start(s);
        ck_assert_msg(!e, "%s", e ? ks_error_message(e) : "");
        port = ks_streams_http_port(s);
        ck_assert_int_gt(port, 0);

        ks_buf_t body = {0};
        ck_assert_int_eq(http("GET", "/health", &body), 200);
        /* Ready once RUNNING with nothing restoring; processed == produced
         * once everything is consumed, and lag known for 4 partitions. */
        long ready       = 0;
        double processed = 0;
        int lag_series   = 0;
        for (int i = 0; i < 300; i++) {
                ready = http("GET", "/ready", &body);
                ck_assert_int_eq(http("GET", "/metrics", &body), 200);
                processed =
                        metric(body.data, "kstreams_records_processed_total",
                               NULL, NULL, NULL);
                metric(body.data, "kstreams_consumer_lag_records", "topic",
                       "in", &lag_series);
                if (ready == 200 && processed == RECORDS && lag_series == 4)
                        break;
                usleep(200 * 1000);
        }
        ck_assert_int_eq(ready, 200);
        ck_assert(processed == RECORDS);
        ck_assert_int_eq(lag_series, 4);
        ck_assert(metric(body.data, "kstreams_state", "state", "RUNNING",
                         NULL) == 1);
        char out[4096] = "";
        char path[]    = "/tmp/ks-http-metrics-XXXXXX";
        int fd         = mkstemp(path);
        ck_assert_int_eq(write(fd, body.data, body.len), (ssize_t)body.len);
        close(fd);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
        FILE *p                                = popen(cmd, "r");
        out[fread(out, 1, sizeof(out) - 1, p)] = '\0';
        ck_assert_msg(pclose(p) == 0, "promtool: %s", out);
        unlink(path);

        /* Every key over HTTP: the count computed above, once committed. */
        int right = 0;
        for (int tries = 0; tries < 100 && right < KEYS; tries++) {
                right = 0;
                for (int k = 0; k < KEYS; k++) {
                        char q[128];
                        snprintf(
                                q, sizeof(q),
                                "/v1/stores/counts/keys/k%d?value.format=int64",
                                k);
                        long st   = http("GET", q, &body);
                        json_t *j = json_loads(body.data, 0, NULL);
                        right +=
                                st == 200 && json_integer_value(json_object_get(
                                                     j, "value")) == want[k];
                        json_decref(j);
                }
                if (right < KEYS)
                        usleep(200 * 1000);
        }
        ck_assert_int_eq(right, KEYS);
        ck_assert_int_eq(http("GET", "/metrics", &body), 200);
        int sizes;
        ck_assert(metric(body.data, "kstreams_store_size_bytes", "store",
                         "counts", &sizes) > 0);
        ck_assert_int_eq(sizes, 4);

        /* Bad requests: clear 4xx, and the endpoint goes on. */
        ck_assert_int_eq(http("GET", "/v1/stores/nope/keys/k1", &body), 404);
        ck_assert_ptr_nonnull(strstr(body.data, "no store named nope"));
        ck_assert_int_eq(http("GET", "/v1/stores/counts/keys/k%zz", &body),
                         400);
        ck_assert_int_eq(http("GET", "/v1/stores/counts/keys/", &body), 400);
        ck_assert_int_eq(
                http("GET", "/v1/stores/counts/keys/k1?key.format=yaml", &body),
                400);
        ck_assert_int_eq(
                http("GET", "/v1/stores/counts/keys/zz?key.format=hex", &body),
                400);
        ck_assert_int_eq(http("GET", "/v1/stores/counts/keys/nokey", &body),
                         404);
        ck_assert_int_eq(http("POST", "/metrics", &body), 405);
        ck_assert_int_eq(http("GET", "/nothing", &body), 404);
        char *big = malloc(12000);
        memset(big, 'a', 11999);
        big[11999] = '\0';
        char *url  = malloc(12100);
        snprintf(url, 12100, "/v1/stores/counts/keys/%s", big);
        long st = http("GET", url, &body);
        ck_assert_msg(st >= 400 && st < 500, "a 12 KB URL: %ld", st);
        /* 40 KB of headers: past the connection's memory. */
        size_t hl = 40000;
        char *req = malloc(hl + 200);
        int n     = snprintf(req, hl + 200,
                             "GET /health HTTP/1.1\r\nHost: "
                                 "x\r\nX-Big: ");
        memset(req + n, 'b', hl);
        memcpy(req + n + hl, "\r\n\r\n", 5);
        int code = raw(req, (size_t)n + hl + 4);
        ck_assert_msg(code >= 400 && code < 500, "40 KB of headers: %d", code);
        free(req);
        free(url);
        free(big);
        /* A slow client: half a request, never finished. Others are served
         * meanwhile, and the server drops it after http.timeout.ms. */
        int slow              = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port   = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        ck_assert_int_eq(connect(slow, (struct sockaddr *)&sa, sizeof(sa)), 0);
        send(slow, "GET /metr", 9, MSG_NOSIGNAL);
        ck_assert_int_eq(http("GET", "/health", &body), 200);
        struct timeval tv = {10, 0};
        setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        char buf[16];
        int64_t t0 = ks_now_ms();
        ck_assert_int_le(recv(slow, buf, sizeof(buf), 0), 0);
        ck_assert_int_lt(ks_now_ms() - t0, 5000);
        close(slow);

        ks_buf_free(&body);
        ck_assert_ptr_null(ks_streams_close(s, 30000));
        ck_assert_int_eq(ks_streams_http_port(s), port); /* until destroy */
        ks_streams_destroy(s);
        ks_conf_destroy(c);
        ks_topology_destroy(t);
        rd_kafka_mock_cluster_destroy(mock);
        rd_kafka_destroy(host);
        ck_assert_int_eq(ks__rmtree(dir), 0);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("http_mock");
        TCase *tc = tcase_create("http");
        tcase_set_timeout(tc, 120);
        tcase_add_test(
                tc,
                the_endpoint_serves_metrics_queries_and_refuses_bad_requests);
        suite_add_tcase(s, tc);
        return s;
}
