/* valid_event_serde(): user_event_serde() plus the analytics rules, so that
 * every invalid event takes one path: the deserialization handler, which
 * dead-letters it with the reason. */
#include <stdio.h>
#include <string.h>

#include "common/user_event_serde.h"
#include "jobs.h"

static const char *const known_types[] = {"page_view",   "button_click",
                                          "form_submit", "purchase",
                                          "add_to_cart", "remove_from_cart",
                                          "search",      "login",
                                          "logout",      "signup"};

static bool known_type(const char *t) {
        for (size_t i = 0; i < sizeof(known_types) / sizeof(*known_types); i++)
                if (!strcmp(t, known_types[i]))
                        return true;
        return false;
}

static bool three_letters(const char *s) {
        if (!s || strlen(s) != 3)
                return false;
        for (int i = 0; i < 3; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= 'a' && s[i] <= 'z')))
                        return false;
        return true;
}

static ks_err_t ser(const void *obj,
                    ks_buf_t *out,
                    void *opaque,
                    char *errstr,
                    size_t errstr_size) {
        return ks_serde_serialize(opaque, obj, out, errstr, errstr_size);
}

static ks_err_t de(ks_arena_t *arena,
                   const void *data,
                   size_t len,
                   const void **obj_out,
                   void *opaque,
                   char *errstr,
                   size_t errstr_size) {
        const void *obj;
        ks_err_t err = ks_serde_deserialize(opaque, arena, data, len, &obj,
                                            errstr, errstr_size);
        if (err)
                return err;
        const user_event_t *ev = obj;
        if (!known_type(ev->event_type)) {
                snprintf(errstr, errstr_size,
                         "invalid event: unknown event_type \"%.64s\"",
                         ev->event_type);
                return KS_ERR_SERDE;
        }
        if (!strcmp(ev->event_type, "purchase")) {
                if (!ev->has_amount) {
                        snprintf(errstr, errstr_size,
                                 "invalid event: purchase without "
                                 "data.amount");
                        return KS_ERR_SERDE;
                }
                if (!three_letters(ev->currency)) {
                        snprintf(errstr, errstr_size,
                                 "invalid event: purchase whose "
                                 "data.currency is not 3 letters");
                        return KS_ERR_SERDE;
                }
        }
        *obj_out = ev;
        return KS_OK;
}

static void inner_free(void *p) {
        ks_serde_destroy(p);
}

ks_serde_t *valid_event_serde(void) {
        ks_serde_t *inner = user_event_serde();
        if (!inner)
                return NULL;
        ks_serde_t *s = ks_serde_new("valid_event", ser, de, inner, inner_free);
        if (!s)
                ks_serde_destroy(inner);
        return s;
}
