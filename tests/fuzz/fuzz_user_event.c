/* Fuzz target: the apps' event validator, user_event_decode() and the
 * analytics rules of valid_event_serde() (apps/app/valid_event.c). An
 * event the validator accepts must encode again (user_event_encode()) to
 * a record it accepts with the same fields: what the producer writes and
 * the jobs read must agree. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <kstreams/kstreams.h>

#include "app/jobs.h"
#include "common/user_event.h"

static bool same_str(const char *a, const char *b) {
        return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Strings with an embedded NUL are cut by the C form: skip those. */
static bool has_inner_nul(const uint8_t *data, size_t size) {
        return memchr(data, '\0', size) != NULL ||
               memmem(data, size, "\\u0000", 6) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static user_event_decoder_t *d;
        static ks_serde_t *valid;
        static ks_arena_t *arena;
        char errstr[256];
        if (!d) {
                d     = user_event_decoder_new();
                valid = valid_event_serde();
                arena = ks_arena_new(0);
                if (!d || !valid || !arena)
                        abort();
        }
        ks_arena_reset(arena);
        const void *obj = NULL;
        ks_err_t verr   = ks_serde_deserialize(valid, arena, data, size, &obj,
                                               errstr, sizeof(errstr));
        if (!verr && !obj)
                abort();

        user_event_t ev;
        if (user_event_decode(d, data, size, &ev, errstr, sizeof(errstr))) {
                if (!verr)
                        abort(); /* the validator accepted what fails */
                return 0;
        }
        if (ev.timestamp_ms < 0 || (ev.has_amount && !(ev.amount >= 0)))
                abort();
        if (has_inner_nul(data, size))
                return 0;
        /* The decoder's strings are borrowed until its next call: copy the
         * event before decoding again. */
        user_event_t copy   = ev;
        const char **strs[] = {
                &copy.event_id,   &copy.user_id, &copy.event_type,
                &copy.session_id, &copy.page,    &copy.currency,
                &copy.device,     &copy.browser, &copy.version};
        for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
                if (*strs[i])
                        *strs[i] = ks_arena_strdup(arena, *strs[i]);
        ks_buf_t buf = {0};
        if (user_event_encode(&copy, &buf))
                abort();
        user_event_t again;
        if (user_event_decode(d, buf.data, buf.len, &again, errstr,
                              sizeof(errstr)))
                abort(); /* an accepted event must encode to a valid one */
        if (!same_str(copy.event_id, again.event_id) ||
            !same_str(copy.user_id, again.user_id) ||
            !same_str(copy.event_type, again.event_type) ||
            !same_str(copy.currency, again.currency) ||
            copy.timestamp_ms != again.timestamp_ms ||
            copy.has_amount != again.has_amount ||
            (copy.has_amount && copy.amount != again.amount))
                abort();
        ks_buf_free(&buf);
        return 0;
}
