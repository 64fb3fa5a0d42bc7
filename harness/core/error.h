/* Error reporting: status codes returned up to main, one message per failure. */
#ifndef AMPBENCH_ERROR_H
#define AMPBENCH_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes double as process exit codes where main passes them through. */
enum amp_status {
    AMP_OK = 0,
    AMP_EFAIL = 1,   /* a check failed (verification verdicts) or an internal error */
    AMP_EINPUT = 2,  /* bad input: flag, file contents, configuration */
    AMP_EIO = 3,     /* I/O error writing results */
    AMP_ENOMEM = 4,  /* allocation failed */
    AMP_EINTR = 5,   /* stopped by SIGINT/SIGTERM (the process exits 128 + signal) */
    AMP_EDIST = 6,   /* a distributed run's other ranks did not answer within --dist-timeout */
};

/* Records the message for the current failure (printf-style); returns `status` so that
 * callers can write `return amp_fail(AMP_EINPUT, "%s: bad magic", path);`. */
int amp_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message recorded by the last amp_fail on this thread ("" when none). */
const char *amp_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
