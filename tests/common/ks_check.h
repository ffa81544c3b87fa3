/* Shared scaffolding for the Check test programs: each test file defines
 * ks_test_suite() and this file's main() runs it, every test in its own
 * process (CK_FORK) with Check's timeout. */
#ifndef KS_CHECK_H
#define KS_CHECK_H

#include <check.h>

/** Each test program defines this. */
Suite *ks_test_suite(void);

/**
 * Looks up a service address for system tests: the environment variable
 * @p name (KS_BOOTSTRAP, KS_PG_DSN) if set, else the line NAME=value in the
 * file named by KS_SERVICES_FILE (written by infra/services.sh up).
 * @returns a string valid until the process exits (one per name, so a
 * later lookup never overwrites it), or NULL when the service is not
 * available.
 */
const char *ks_test_service(const char *name);

/** The exit status of a test program that skipped tests (ctest's
 *  SKIP_RETURN_CODE, as the shell tests use). */
#define KS_TEST_SKIP_CODE 77

/**
 * As ks_test_service(), but a missing service is a failed test when
 * CI=true, and a skipped one otherwise: it returns NULL with a message,
 * the test returns, and the program exits with KS_TEST_SKIP_CODE (unless
 * another test failed), so ctest reports it as skipped, not passed.
 */
const char *ks_test_require_service(const char *name);

/**
 * For a whole test program: when one of the NULL-ended @p names is not
 * available, exits with status 77 (ctest's SKIP_RETURN_CODE, so the test
 * shows as skipped rather than passed), or with 1 when CI=true. Call it
 * from ks_test_suite().
 */
void ks_test_skip_unless_services(const char *const *names);

#endif
