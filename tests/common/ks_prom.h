/* A strict parser of the Prometheus text exposition format (0.0.4), for
 * tests: written from the format's description, not from our writer. */
#ifndef KS_PROM_TEST_H
#define KS_PROM_TEST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kp_sample_s {
        char name[128];
        int label_cnt;
        char label[8][2][256]; /* name, unescaped value */
        double value;
} kp_sample_t;

typedef struct kp_doc_s {
        kp_sample_t *samples;
        size_t cnt;
} kp_doc_t;

/** Parses @p text; false with @p why set on the first violation. */
bool kp_parse(const char *text, kp_doc_t *doc, char *why, size_t why_size);
void kp_free(kp_doc_t *doc);
/** The value of label @p name of @p s, or NULL. */
const char *kp_label(const kp_sample_t *s, const char *name);
/** Sums the samples named @p name whose label @p lname is @p lvalue
 *  (lname NULL: all); @p n gets how many matched. */
double kp_sum(const kp_doc_t *doc,
              const char *name,
              const char *lname,
              const char *lvalue,
              int *n);

#endif
