/* Training progress: a one-line bar redrawn in place on a terminal, plain lines in logs.
 *
 * On a TTY: "\r 37% [#######.............] 1730/4690  loss 0.4213  5123.4 samples/s  ETA 2m41s",
 * redrawn at most 10 times a second (the last step always). Otherwise (a file, a pipe):
 * "step 1730/4690  loss 0.4213  5123.4 samples/s  elapsed 1m02s  ETA 2m41s" for the
 * first step, every interval steps and the last step. ETA is the remaining steps at
 * the mean rate since the first update. */
#ifndef IMB_PROGRESS_H
#define IMB_PROGRESS_H
#include <stdint.h>
#include <stdio.h>

typedef struct imb_progress imb_progress;

/* total_steps > 0; out is not closed by finish. Picks the TTY mode when isatty(out).
 * The plain-line interval defaults to total_steps / 20 (at least 1). NULL when out of
 * memory. */
imb_progress *imb_progress_new(int64_t total_steps, FILE *out);
void imb_progress_set_interval(imb_progress *p, int64_t every_steps);
/* Forces the mode (tests, or a terminal log the user wants plain). */
void imb_progress_set_tty(imb_progress *p, int tty);
/* step: steps done so far (1..total). loss may be NaN (printed "nan"). */
void imb_progress_update(imb_progress *p, int64_t step, double loss, double samples_per_s);
/* A line of its own (an evaluation result) without breaking the bar: clears it, prints
 * the text and a newline, and the next update redraws the bar. */
void imb_progress_note(imb_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the bar with a newline (TTY) or prints the last step if not yet printed, then a
 * "done" line with the wall time; frees p. NULL is accepted. */
void imb_progress_finish(imb_progress *p);
#endif
