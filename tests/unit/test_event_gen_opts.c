/* The generator's options for the analytics apps (event_gen_opts_t): the
 * ten event types, a fixed time step, and bad records that stay text. */
#include <stdlib.h>
#include <string.h>

#include "common/event_gen.h"
#include "ks_check.h"

static const char *const ten[] = {"page_view",   "button_click",
                                  "form_submit", "purchase",
                                  "add_to_cart", "remove_from_cart",
                                  "search",      "login",
                                  "logout",      "signup"};

START_TEST(all_types_gives_the_ten_types_and_a_browser) {
        event_gen_t *g        = event_gen_new(5, INT64_C(1765535400000), 100);
        event_gen_opts_t opts = {.all_types = true, .time_step_ms = 250};
        int seen[10]          = {0};
        int64_t prev          = INT64_C(1765535400000);
        event_gen_set_opts(g, &opts);
        for (int i = 0; i < 20000; i++) {
                user_event_t ev;
                event_gen_next(g, &ev);
                int k = -1;
                for (int t = 0; t < 10; t++)
                        if (!strcmp(ev.event_type, ten[t]))
                                k = t;
                ck_assert_msg(k >= 0, "type %s", ev.event_type);
                seen[k]++;
                ck_assert_ptr_nonnull(ev.browser);
                ck_assert_int_eq(ev.timestamp_ms - prev, 250);
                ck_assert_int_eq(event_gen_last_timestamp_ms(g),
                                 ev.timestamp_ms);
                prev = ev.timestamp_ms;
        }
        for (int t = 0; t < 10; t++)
                ck_assert_msg(seen[t] > 100, "%s: %d", ten[t], seen[t]);
        event_gen_destroy(g);
}
END_TEST

/* UTF-8 well-formedness, as a JSON lines dump needs it. */
static bool utf8_ok(const unsigned char *p, size_t n) {
        for (size_t i = 0; i < n;) {
                int len = p[i] < 0x80             ? 1
                          : (p[i] & 0xE0) == 0xC0 ? 2
                          : (p[i] & 0xF0) == 0xE0 ? 3
                          : (p[i] & 0xF8) == 0xF0 ? 4
                                                  : 0;
                if (!len || i + (size_t)len > n)
                        return false;
                for (int k = 1; k < len; k++)
                        if ((p[i + k] & 0xC0) != 0x80)
                                return false;
                i += (size_t)len;
        }
        return true;
}

START_TEST(text_only_bad_records_are_utf8_and_some_pass_the_decoder) {
        event_gen_t *g          = event_gen_new(9, INT64_C(1765535400000), 100);
        event_gen_opts_t opts   = {.all_types = true, .text_only = true};
        user_event_decoder_t *d = user_event_decoder_new();
        ks_buf_t b              = {0};
        int bad = 0, bad_but_decodes = 0;
        char err[256];
        event_gen_set_opts(g, &opts);
        event_gen_set_bad_ratio(g, 0.5);
        for (int i = 0; i < 5000; i++) {
                bool is_bad;
                ks_buf_clear(&b);
                ck_assert_int_eq(event_gen_next_raw(g, &b, &is_bad), KS_OK);
                ck_assert((utf8_ok((const unsigned char *)b.data, b.len)));
                if (!is_bad)
                        continue;
                bad++;
                user_event_t ev;
                /* Decoder-valid bad records break the apps' own rules. */
                if (user_event_decode(d, b.data, b.len, &ev, err,
                                      sizeof(err)) == KS_OK) {
                        bad_but_decodes++;
                        ck_assert(!strcmp(ev.event_type, "page_viewed") ||
                                  (!strcmp(ev.event_type, "purchase") &&
                                   (!ev.has_amount || !ev.currency ||
                                    strlen(ev.currency) != 3)));
                }
        }
        ck_assert_int_gt(bad, 2000);
        ck_assert_int_gt(bad_but_decodes, 200);
        ks_buf_free(&b);
        user_event_decoder_destroy(d);
        event_gen_destroy(g);
}
END_TEST

START_TEST(zipf_users_follow_one_over_k) {
        event_gen_t *g        = event_gen_new(3, INT64_C(1765535400000), 1000);
        event_gen_opts_t opts = {.zipf_s = 1.0};
        int n = 200000, first = 0, second = 0, tenth = 0;
        ck_assert_int_eq(event_gen_set_opts(g, &opts), KS_OK);
        for (int i = 0; i < n; i++) {
                user_event_t ev;
                event_gen_next(g, &ev);
                int u = atoi(ev.user_id + 5);
                ck_assert(u >= 1 && u <= 1000);
                first += u == 1;
                second += u == 2;
                tenth += u == 10;
        }
        /* P(k) = (1/k) / H_1000, H_1000 = 7.4855: 13.36%, 6.68%, 1.34%. */
        ck_assert_int_gt(first, n * 128 / 1000);
        ck_assert_int_lt(first, n * 139 / 1000);
        ck_assert_int_gt(second, n * 63 / 1000);
        ck_assert_int_lt(second, n * 71 / 1000);
        ck_assert_int_gt(tenth, n * 115 / 10000);
        ck_assert_int_lt(tenth, n * 155 / 10000);
        event_gen_destroy(g);
}
END_TEST

Suite *ks_test_suite(void) {
        Suite *s  = suite_create("event_gen_opts");
        TCase *tc = tcase_create("event_gen_opts");
        tcase_add_test(tc, all_types_gives_the_ten_types_and_a_browser);
        tcase_add_test(
                tc, text_only_bad_records_are_utf8_and_some_pass_the_decoder);
        tcase_add_test(tc, zipf_users_follow_one_over_k);
        suite_add_tcase(s, tc);
        return s;
}
