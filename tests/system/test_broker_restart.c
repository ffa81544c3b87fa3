/* The brokers restart mid-run: the runtime rides it out (librdkafka
 * reconnects, commits wait) and nothing is lost. Runs its own 3-node KRaft
 * cluster and stops all three nodes, so every connection drops. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ks_check.h"
#include "ks_kafka.h"

static char cluster[64];

static void teardown(void) {
        char args[128];
        snprintf(args, sizeof(args), "cluster-down %s", cluster);
        kt_kafka_sh(args, NULL, 0);
}

START_TEST(brokers_restarted_mid_run_nothing_lost) {
        /* This test needs only Java and the jars, which the CI fixture
         * guarantees; it skips with a message elsewhere when they lack. */
        if (!ks_test_require_service("KS_BOOTSTRAP"))
                return;
        char args[160], bootstrap[256];
        snprintf(cluster, sizeof(cluster), "restart%d", (int)getpid());
        ck_assert_msg(kt_cluster_up(cluster, bootstrap, sizeof(bootstrap)),
                      "cluster-up %s failed", cluster);

        const char *app = kt_unique("restart");
        char in[160], outt[160], log[200];
        snprintf(in, sizeof(in), "%s-in", app);
        snprintf(outt, sizeof(outt), "%s-out", app);
        snprintf(log, sizeof(log), "%s/%s.log", KS_BINARY_DIR, app);
        kt_create_topic(bootstrap, in, 3);
        kt_create_topic(bootstrap, outt, 3);
        const int n = 3000;
        kt_produce(bootstrap, in, 0, n, "k", 50, "{\"id\":%d}");
        const char *argv[] = {"--bootstrap", bootstrap, "--app-id",
                              app,           "--input", in,
                              "--output",    outt,      NULL};
        pid_t pid          = kt_spawn_app(log, argv);
        kt_record_t *recs;
        size_t cnt = kt_consume_all(bootstrap, outt, (size_t)n, 60000, &recs);
        kt_records_free(recs, cnt);
        ck_assert_uint_eq(cnt, (size_t)n);

        /* Every node down, a pause, every node up again. */
        for (int i = 1; i <= 3; i++) {
                snprintf(args, sizeof(args), "stop-broker %d %s", i, cluster);
                ck_assert_int_eq(kt_kafka_sh(args, NULL, 0), 0);
        }
        sleep(5);
        /* Together: a KRaft node cannot finish starting without a quorum
         * of controllers, so one at a time would wait forever. */
        char cmd[1024];
        snprintf(cmd, sizeof(cmd),
                 "for i in 1 2 3; do bash %s/infra/kafka/kafka.sh "
                 "start-broker $i %s >/dev/null 2>&1 & done; "
                 "for j in $(jobs -p); do wait $j || exit 1; done",
                 KS_SOURCE_DIR, cluster);
        ck_assert_msg(system(cmd) == 0, "the nodes did not start again");
        kt_produce(bootstrap, in, n, n, "k", 50, "{\"id\":%d}");
        cnt = kt_consume_all(bootstrap, outt, 2 * (size_t)n, 90000, &recs);
        int *seen = calloc(2 * (size_t)n, sizeof(int));
        for (size_t i = 0; i < cnt; i++) {
                json_t *v = json_loads(recs[i].value, 0, NULL);
                int id    = (int)json_integer_value(json_object_get(v, "id"));
                if (id >= 0 && id < 2 * n)
                        seen[id]++;
                json_decref(v);
        }
        int missing = 0;
        for (int i = 0; i < 2 * n; i++)
                missing += !seen[i];
        fprintf(stderr,
                "broker restart: %zu outputs for %d inputs, %d "
                "missing\n",
                cnt, 2 * n, missing);
        int st = kt_stop(pid, SIGTERM, 30000);
        ck_assert_int_eq(missing, 0);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "the app did not survive the restart (see %s)", log);
        free(seen);
        kt_records_free(recs, cnt);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("broker-restart");
        TCase *tc = tcase_create("restart");
        tcase_add_checked_fixture(tc, NULL, teardown);
        tcase_set_timeout(tc, 280);
        tcase_add_test(tc, brokers_restarted_mid_run_nothing_lost);
        suite_add_tcase(s, tc);
        return s;
}
