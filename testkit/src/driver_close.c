/* ks_test_driver_close_windows(): the end of input, for windowed results. */
#include "close_windows_int.h"
#include "driver_int.h"

ks_error_t *ks_test_driver_close_windows(ks_test_driver_t *drv,
                                         size_t *emitted_out) {
        size_t total = 0;
        /* Everything piped is processed and every cache flushed first, so
         * the suppressions hold every update. Emitting may feed a
         * repartition topic whose sub-topology suppresses again: repeat
         * until a round emits nothing. */
        ks_error_t *err = ks__drv_commit(drv);
        for (bool again = true; !err && again;) {
                again = false;
                for (int i = 0; !err && i < drv->task_cnt; i++) {
                        size_t n = 0;
                        err      = ks__task_close_windows(drv->tasks[i], &n);
                        if (!err && n) {
                                total += n;
                                again = true;
                                err   = ks__drv_commit(drv);
                        }
                }
        }
        if (emitted_out)
                *emitted_out = total;
        return ks__drv_eos_failed(drv, err);
}
