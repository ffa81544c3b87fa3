#include "kstreams/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct ks_error_s {
        ks_err_t code;
        bool retriable;
        bool fatal;
        bool is_static;
        char message[];
};

static struct {
        struct ks_error_s e;
        char msg[32];
} oom_error = {{KS_ERR_NOMEM, false, true, true}, "out of memory"};

ks_error_t *ks_error_new(ks_err_t code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        ks_error_t *err = malloc(sizeof(*err) + (size_t)n + 1);
        if (!err)
                return &oom_error.e;
        err->code      = code;
        err->retriable = false;
        err->fatal     = false;
        err->is_static = false;
        va_start(ap, fmt);
        vsnprintf(err->message, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return err;
}

ks_error_t *ks_error_set_retriable(ks_error_t *err, bool v) {
        if (!err->is_static)
                err->retriable = v;
        return err;
}

ks_error_t *ks_error_set_fatal(ks_error_t *err, bool v) {
        if (!err->is_static)
                err->fatal = v;
        return err;
}

ks_err_t ks_error_code(const ks_error_t *err) {
        return err->code;
}

const char *ks_error_message(const ks_error_t *err) {
        return err->message;
}

bool ks_error_is_retriable(const ks_error_t *err) {
        return err->retriable;
}

bool ks_error_is_fatal(const ks_error_t *err) {
        return err->fatal;
}

void ks_error_destroy(ks_error_t *err) {
        if (err && !err->is_static)
                free(err);
}
