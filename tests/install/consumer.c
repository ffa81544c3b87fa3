/* An outside program: builds against the installed kstreams and runs a
 * topology in the installed test driver. It calls jansson itself, as a
 * user of ks_serde_json() does: that links only if kstreams.pc lists
 * jansson under Requires. */
#include <jansson.h>
#include <kstreams/kstreams.h>
#include <kstreams/test_driver.h>
#include <stdio.h>
#include <string.h>

static bool keep(const void *k, const void *v, void *o) {
        (void)k, (void)o;
        return v && strlen(v) > 2;
}

int main(void) {
        char err[256];
        ks_builder_t *b = ks_builder_new();
        ks_stream_to(
                ks_stream_filter(ks_builder_stream(b, "in", ks_serde_string(),
                                                   ks_serde_string()),
                                 NULL, keep, NULL),
                "out", NULL, NULL);
        ks_topology_t *t = ks_builder_build(b, err, sizeof(err));
        ks_builder_destroy(b);
        ks_test_driver_t *d = ks_test_driver_new(t, NULL, err, sizeof(err));
        if (!t || !d) {
                fprintf(stderr, "consumer: %s\n", err);
                return 1;
        }
        ks_error_destroy(ks_test_driver_pipe_str(d, "in", "a", "hi", 1));
        ks_error_destroy(ks_test_driver_pipe_str(d, "in", "b", "hello", 2));
        ks_test_record_t r;
        int ok = ks_test_driver_read(d, "out", &r) &&
                 !strcmp(r.value.data, "hello") &&
                 !ks_test_driver_read(d, "out", &r);
        ks_test_driver_destroy(d);
        ks_topology_destroy(t);
        json_t *j   = json_pack("{s:i}", "n", 7);
        ks_buf_t jb = {0};
        ok          = ok && j &&
             !ks_serde_serialize(ks_serde_json(), j, &jb, err, sizeof(err)) &&
             jb.len == 7 && !memcmp(jb.data, "{\"n\":7}", 7);
        json_decref(j);
        ks_buf_free(&jb);
        printf("consumer: %s\n", ok ? "ok" : "WRONG OUTPUT");
        return ok ? 0 : 1;
}
