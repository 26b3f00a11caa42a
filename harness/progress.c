/* Training progress: TTY bar (carriage-return redraw, throttled) or plain log lines. */
#include "progress.h"
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

struct imb_progress {
    FILE *out;
    int64_t total, interval;
    int tty;
    double t_new, t_first, t_draw;
    int64_t first_step, step, printed;   /* printed: last step written in plain mode */
    double loss, sps;
    int updates, bar_visible;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_dur(double s, char *buf, size_t n) {
    if (!isfinite(s) || s < 0) { snprintf(buf, n, "--"); return; }
    long long t = llround(s);
    if (t < 60) snprintf(buf, n, "%llds", t);
    else if (t < 3600) snprintf(buf, n, "%lldm%02llds", t / 60, t % 60);
    else snprintf(buf, n, "%lldh%02lldm", t / 3600, t / 60 % 60);
}

static void fmt_loss(double l, char *buf, size_t n) {
    if (isnan(l)) snprintf(buf, n, "nan");
    else if (isinf(l)) snprintf(buf, n, l > 0 ? "inf" : "-inf");
    else snprintf(buf, n, "%.4f", l);
}

imb_progress *imb_progress_new(int64_t total_steps, FILE *out) {
    imb_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->out = out;
    p->total = total_steps > 0 ? total_steps : 1;
    p->interval = p->total / 20 > 0 ? p->total / 20 : 1;
    p->tty = isatty(fileno(out));
    p->t_new = now_s();
    p->printed = -1;
    return p;
}

void imb_progress_set_interval(imb_progress *p, int64_t every_steps) { p->interval = every_steps > 0 ? every_steps : 1; }
void imb_progress_set_tty(imb_progress *p, int tty) { p->tty = tty != 0; }

/* Seconds left at the mean rate since the first update; the first step is left out of
 * the rate because it carries start-up costs (allocation, first-touch, warm caches). */
static double eta(const imb_progress *p, double t) {
    if (p->step <= p->first_step || t <= p->t_first) return NAN;
    double rate = (double)(p->step - p->first_step) / (t - p->t_first);
    return (double)(p->total - p->step) / rate;
}

static int term_cols(FILE *f) {
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    return 80;
}

static void draw_bar(imb_progress *p, double t) {
    char l[32], e[32], text[200];
    fmt_loss(p->loss, l, sizeof l);
    fmt_dur(eta(p, t), e, sizeof e);
    int tl = snprintf(text, sizeof text, " %lld/%lld  loss %s  %.1f samples/s  ETA %s", (long long)p->step,
                      (long long)p->total, l, p->sps, e);
    double frac = p->step >= p->total ? 1.0 : (double)p->step / (double)p->total;
    /* keep the whole line narrower than the terminal: a wrapped line cannot be redrawn with \r */
    int bw = term_cols(p->out) - 1 - tl - 8;
    if (bw > 40) bw = 40;
    char bar[48] = "";
    if (bw >= 5) {
        int fill = (int)(frac * bw);
        bar[0] = '[';
        for (int i = 0; i < bw; i++) bar[1 + i] = i < fill ? '#' : '.';
        bar[bw + 1] = ']';
        bar[bw + 2] = 0;
    }
    fprintf(p->out, "\r%3d%% %s%s\033[K", (int)(100 * frac), bar, text);
    fflush(p->out);
    p->bar_visible = 1;
    p->t_draw = t;
}

static void plain_line(imb_progress *p, double t) {
    char l[32], e[32], el[32];
    fmt_loss(p->loss, l, sizeof l);
    fmt_dur(eta(p, t), e, sizeof e);
    fmt_dur(t - p->t_new, el, sizeof el);
    fprintf(p->out, "step %lld/%lld  loss %s  %.1f samples/s  elapsed %s  ETA %s\n", (long long)p->step,
            (long long)p->total, l, p->sps, el, e);
    fflush(p->out);
    p->printed = p->step;
}

void imb_progress_update(imb_progress *p, int64_t step, double loss, double samples_per_s) {
    if (!p) return;
    double t = now_s();
    if (!p->updates++) { p->first_step = step; p->t_first = t; }
    p->step = step;
    p->loss = loss;
    p->sps = samples_per_s;
    if (p->tty) {
        if (step >= p->total || p->updates == 1 || t - p->t_draw >= 0.1) draw_bar(p, t);
    } else if (p->updates == 1 || step % p->interval == 0 || step >= p->total) {
        plain_line(p, t);
    }
}

void imb_progress_note(imb_progress *p, const char *fmt, ...) {
    if (!p) return;
    if (p->tty && p->bar_visible) fputs("\r\033[K", p->out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    if (p->tty && p->bar_visible) draw_bar(p, now_s());
    fflush(p->out);
}

void imb_progress_finish(imb_progress *p) {
    if (!p) return;
    double t = now_s();
    if (p->tty) {
        if (p->updates) { draw_bar(p, t); fputc('\n', p->out); }
    } else if (p->updates && p->printed != p->step) {
        plain_line(p, t);
    }
    char d[32];
    fmt_dur(t - p->t_new, d, sizeof d);
    fprintf(p->out, "done: %lld/%lld steps in %s\n", (long long)p->step, (long long)p->total, d);
    fflush(p->out);
    free(p);
}
