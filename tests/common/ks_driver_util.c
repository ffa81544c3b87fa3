#include "ks_driver_util.h"

#include "ks_check.h"

int64_t kt_be64(const void *p) {
        const unsigned char *b = p;
        uint64_t v             = 0;
        for (int i = 0; i < 8; i++)
                v = (v << 8) | b[i];
        return (int64_t)v;
}

ks_test_driver_t *kd_start(ks_builder_t *b,
                           const char *app_id,
                           const char *const *conf,
                           ks_topology_t **topo) {
        char err[512];
        *topo = ks_builder_build(b, err, sizeof(err));
        ck_assert_msg(*topo, "build: %s", err);
        ks_builder_destroy(b);
        ks_conf_t *c = ks_conf_new();
        ck_assert_int_eq(
                ks_conf_set(c, "application.id", app_id, err, sizeof(err)),
                KS_OK);
        for (int i = 0; conf && conf[i]; i += 2)
                ck_assert_msg(ks_conf_set(c, conf[i], conf[i + 1], err,
                                          sizeof(err)) == KS_OK,
                              "%s", err);
        ks_test_driver_t *drv = ks_test_driver_new(*topo, c, err, sizeof(err));
        ks_conf_destroy(c);
        ck_assert_msg(drv, "driver: %s", err);
        return drv;
}

void kd_stop(ks_test_driver_t **drv, ks_topology_t **topo) {
        ks_test_driver_destroy(*drv);
        ks_topology_destroy(*topo);
        *drv  = NULL;
        *topo = NULL;
}

void kd_pipe(ks_test_driver_t *drv,
             const char *topic,
             const char *key,
             const char *value,
             int64_t ts) {
        ks_error_t *e = ks_test_driver_pipe_str(drv, topic, key, value, ts);
        ck_assert_msg(!e, "pipe: %s", e ? ks_error_message(e) : "");
}
