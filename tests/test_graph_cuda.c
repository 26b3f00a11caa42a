/* CUDA graphs, the step block and TF32 on a GPU: replayed steps give the eager losses and
 * parameters bit for bit (short batches, a ViT, eager work between steps that moves the
 * scratch buffer), a step that is not capture-safe warns once and trains on eagerly, bad labels
 * and ids surface from the device with the op's message, and TF32 GEMMs really differ from
 * fp32 ones (which match the CPU). Exits 77 (automake SKIP) without a CUDA device. */
#include "graphtoy.h"
#include "imagecls.h"
#include <stdint.h>
#ifdef IMB_HAVE_CUDA
#include "cuda/backend.h"
#endif

static int fails;

static void check(int ok, const char *what, const char *detail) {
    printf("%-44s %s%s%s\n", what, ok ? "ok" : "FAIL", detail && *detail ? "  " : "", detail ? detail : "");
    fails += !ok;
}

/* ten steps, the fifth one short: replays, one eager step, replays again */
static const int batches[] = { 8, 8, 8, 8, 5, 8, 8, 8, 8, 8 };

static void replay_matches_eager(void) {
    toy_run a = { .steps = 10, .batch = batches, .bad_label_step = -1 }, b = a, c = a;
    char why[512] = "";
    int ok = !toy_train(IMB_CUDA, IMB_GRAPH_OFF, &a) && !toy_train(IMB_CUDA, IMB_GRAPH_ON, &b);
    if (!ok) snprintf(why, sizeof why, "%.250s%.250s", a.err, b.err);
    ok = ok && toy_same(&a, &b, why, sizeof why);
    ok = ok && b.stats.on && b.stats.captured == 1 && b.stats.replayed == 7 && b.stats.mismatched == 1;
    if (ok) snprintf(why, sizeof why, "%lld replayed, %lld captured, %lld eager", (long long)b.stats.replayed,
                     (long long)b.stats.captured, (long long)b.stats.eager);
    check(ok, "graph replay == eager (toy, short batch)", why);
    /* and the CPU agrees to fp32 round-off */
    if (!toy_train(IMB_CPU, IMB_GRAPH_OFF, &c)) {
        double worst = 0;
        for (int s = 0; s < 10; s++) worst = fmax(worst, fabs((double)c.loss[s] - b.loss[s]) / fabs((double)c.loss[s]));
        snprintf(why, sizeof why, "max rel loss diff %.2e", worst);
        check(worst < 1e-4, "graph replay ~ CPU (toy)", why);
    } else {
        check(0, "graph replay ~ CPU (toy)", c.err);
    }
    free(a.params);
    free(b.params);
    free(c.params);
}

/* work between steps that grows the backend scratch: the graph holds the old address, so
 * the next step captures again */
static void grow_scratch(imb_ctx *c, int step) {
    if (step != 3) return;
    imb_step_begin(c, 1);
    int64_t n = (int64_t)1 << 21;
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)(i % TOY_V);
    imb_param *emb = imb_param_find(c, "emb");
    imb_tensor *e = imb_embedding(c, emb->t, imb_input(c, IMB_I32, 1, IMB_SHAPE(n), ids));
    float *dy = malloc(sizeof *dy * (size_t)(n * TOY_D));
    for (int64_t i = 0; i < n * TOY_D; i++) dy[i] = 1e-3f;
    if (e) imb_backward_seed(c, e, dy);   /* the id sort's keys: 16 MiB of scratch */
    imb_check_report(c);                  /* waits: the ids were fine */
    free(ids);
    free(dy);
}

static void scratch_move_recaptures(void) {
    toy_run a = { .steps = 8, .batch = batches + 2, .bad_label_step = -1, .between = grow_scratch }, b = a;
    char why[512] = "";
    int ok = !toy_train(IMB_CUDA, IMB_GRAPH_OFF, &a) && !toy_train(IMB_CUDA, IMB_GRAPH_ON, &b);
    if (!ok) snprintf(why, sizeof why, "%.250s%.250s", a.err, b.err);
    ok = ok && toy_same(&a, &b, why, sizeof why) && b.stats.captured == 2 && b.stats.on;
    if (ok) snprintf(why, sizeof why, "%lld captures", (long long)b.stats.captured);
    check(ok, "scratch moved between steps: re-capture", why);
    free(a.params);
    free(b.params);
}

/* an op that waits for the device inside the step: one warning naming it, eager from then on */
static void unsafe_step_warns(void) {
    toy_run a = { .steps = 5, .batch = batches, .bad_label_step = -1, .host_read = 1 }, b = a;
    FILE *w = tmpfile();
    b.warn = w;
    char why[512] = "", text[1024] = "";
    int ok = w && !toy_train(IMB_CUDA, IMB_GRAPH_OFF, &a) && !toy_train(IMB_CUDA, IMB_GRAPH_ON, &b);
    if (!ok) snprintf(why, sizeof why, "%.250s%.250s", a.err, b.err);
    if (w) {
        rewind(w);
        size_t n = fread(text, 1, sizeof text - 1, w);
        text[n] = 0;
        fclose(w);
    }
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    ok = ok && toy_same(&a, &b, why, sizeof why) && !b.stats.on && b.stats.replayed == 0 && lines == 1 &&
         strstr(text, "CUDA graph capture failed at to_host");
    if (ok) snprintf(why, sizeof why, "%.*s", (int)strcspn(text, "\n"), text);
    else if (!why[0]) snprintf(why, sizeof why, "warning: '%s', on %d, replayed %lld", text, b.stats.on, (long long)b.stats.replayed);
    check(ok, "unsafe step: one warning, eager after", why);
    free(a.params);
    free(b.params);
}

/* a bad label in a replayed step: found on the device, reported after the step */
static void bad_label_from_the_device(void) {
    toy_run r = { .steps = 6, .batch = batches, .bad_label_step = 3, .bad_label_row = 3 };
    int rc = toy_train(IMB_CUDA, IMB_GRAPH_ON, &r);
    check(rc == -1 && r.failed_step == 3 && strstr(r.err, "cross_entropy: label 12 at row 3 is out of range for 10 classes"),
          "bad label in a replayed step", r.err);
    free(r.params);
    toy_run e = r;
    memset(&e.stats, 0, sizeof e.stats);
    e.params = NULL;
    rc = toy_train(IMB_CUDA, IMB_GRAPH_OFF, &e);
    check(rc == -1 && e.failed_step == 3 && strstr(e.err, "cross_entropy: label 12 at row 3 is out of range for 10 classes"),
          "bad label in an eager step", e.err);
    free(e.params);
}

/* outside a step: the verdict arrives with the next read of device data */
static void bad_id_on_read(void) {
    char e[256];
    imb_ctx *c = imb_ctx_new(IMB_CUDA, 1, e, sizeof e);
    if (!c) { check(0, "bad id reported on read", e); return; }
    imb_tensor *tab = imb_param_new(c, "tab", 2, IMB_SHAPE(5, 3), IMB_INIT_NORMAL, 1.0f, 0);
    imb_params_alloc(c);
    imb_step_begin(c, 0);
    int32_t ids[6] = { 0, 3, 4, 1, 2, 12 };
    imb_tensor *out = imb_embedding(c, tab, imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 3), ids));
    int queued_ok = out != NULL && imb_ok(c);
    float h[18];
    int rc = out ? imb_to_host(c, out, h, 0) : -1;
    check(queued_ok && rc == -1 &&
              strstr(imb_error(c), "embedding: id 12 at position [1, 2] is out of range for a table of 5 rows"),
          "bad id reported on read", imb_error(c));
    /* cleared, the next step is clean */
    imb_error_clear(c);
    imb_step_begin(c, 0);
    ids[5] = 0;
    out = imb_embedding(c, tab, imb_input(c, IMB_I32, 2, IMB_SHAPE(2, 3), ids));
    check(out && !imb_to_host(c, out, h, 0) && imb_ok(c), "a good step after a bad id", imb_error(c));
    imb_ctx_free(c);
}

/* the image model (patch conv, ViT blocks with attention, fused MLP) through graphs */
typedef struct { imb_imagecls *m; imb_adamw opt; float *x; int32_t *y; int B; } vit_ud;

static int vit_step(imb_ctx *c, void *p) {
    vit_ud *u = p;
    imb_params_zero_grad(c);
    imb_step_begin(c, 1);
    imb_tensor *x = imb_input(c, IMB_F32, 4, IMB_SHAPE(u->B, 3, 16, 16), u->x);
    imb_tensor *l = imb_cross_entropy(c, imb_imagecls_forward(c, u->m, x), imb_input(c, IMB_I32, 1, IMB_SHAPE(u->B), u->y), 0.0f);
    imb_step_keep(c, 0, l);
    imb_backward(c, l);
    imb_grad_clip_async(c, 1.0f);
    imb_adamw_apply(c, &u->opt);
    return imb_ok(c) ? 0 : -1;
}

static int vit_train(imb_graph_use use, float *loss, int steps, imb_graph_stats *st, char *err, size_t errn) {
    imb_ctx *c = imb_ctx_new(IMB_CUDA, 4, err, errn);
    if (!c) return -1;
    imb_backbone_cfg cfg;
    int rc = -1;
    vit_ud u = { 0 };
    imb_graph *g = NULL;
    if (imb_backbone_parse("vit-nano:dim=32,depth=2,heads=2", &cfg, err, errn)) goto out;
    u.m = imb_imagecls_create(c, &cfg, 3, 16, 4, 7);
    if (!u.m || imb_params_alloc(c)) { snprintf(err, errn, "%s", imb_error(c)); goto out; }
    u.opt = imb_adamw_default(0.05f);
    u.x = malloc(sizeof *u.x * 6 * 3 * 16 * 16);
    u.y = malloc(sizeof *u.y * 6);
    g = imb_graph_new(c, use, NULL, NULL);
    for (int s = 0; s < steps; s++) {
        u.B = s == 3 ? 5 : 6;
        for (int i = 0; i < u.B * 3 * 16 * 16; i++) u.x[i] = imb_rng_normal(8, (uint64_t)s, (uint64_t)i);
        for (int i = 0; i < u.B; i++) u.y[i] = (int32_t)imb_rng_below(9, (uint64_t)s, (uint64_t)i, 7);
        if (imb_adamw_prepare(c, &u.opt, 1e-3f) || imb_graph_step(g, vit_step, &u)) {
            snprintf(err, errn, "step %d: %s", s, imb_error(c));
            goto out;
        }
        loss[s] = imb_step_result(c)->vals[0];
    }
    *st = *imb_graph_get_stats(g);
    rc = 0;
out:
    imb_graph_free(g);
    imb_imagecls_free(u.m);
    free(u.x);
    free(u.y);
    imb_ctx_free(c);
    return rc;
}

static void vit_replay_matches_eager(void) {
    float a[8], b[8];
    imb_graph_stats sa, sb;
    char e[512] = "";
    int ok = !vit_train(IMB_GRAPH_OFF, a, 8, &sa, e, sizeof e) && !vit_train(IMB_GRAPH_ON, b, 8, &sb, e, sizeof e);
    for (int s = 0; ok && s < 8; s++)
        if (memcmp(&a[s], &b[s], sizeof *a)) {
            ok = 0;
            snprintf(e, sizeof e, "step %d: %.9g vs %.9g", s, a[s], b[s]);
        }
    ok = ok && sb.replayed >= 4 && sb.on;
    if (ok) snprintf(e, sizeof e, "%lld replayed; last loss %.6g", (long long)sb.replayed, b[7]);
    check(ok, "graph replay == eager (vit, 8 steps)", e);
}

/* TF32: the same GEMMs with 10-bit-mantissa products differ from fp32 by ~1e-4..1e-3; fp32
 * matches the CPU */
static int gemm_on(imb_device dev, imb_precision prec, float *y, char *err, size_t errn) {
    imb_ctx *c = imb_ctx_new(dev, 2, err, errn);
    if (!c) return -1;
    c->precision = prec;
    imb_step_begin(c, 0);
    enum { M = 192, K = 384, N = 160 };
    float *a = malloc(sizeof *a * M * K), *w = malloc(sizeof *w * N * K), *b = malloc(sizeof *b * N);
    for (int i = 0; i < M * K; i++) a[i] = imb_rng_normal(1, 1, (uint64_t)i);
    for (int i = 0; i < N * K; i++) w[i] = imb_rng_normal(1, 2, (uint64_t)i) * 0.05f;
    for (int i = 0; i < N; i++) b[i] = imb_rng_normal(1, 3, (uint64_t)i);
    imb_tensor *out = imb_linear_gelu(c, imb_input(c, IMB_F32, 2, IMB_SHAPE(M, K), a), imb_input(c, IMB_F32, 2, IMB_SHAPE(N, K), w),
                                      imb_input(c, IMB_F32, 1, IMB_SHAPE(N), b));
    int rc = out && !imb_to_host(c, out, y, 0) ? 0 : -1;
    if (rc) snprintf(err, errn, "%s", imb_error(c));
    free(a);
    free(w);
    free(b);
    imb_ctx_free(c);
    return rc;
}

static double rel(const float *a, const float *b, int n) {
    double num = 0, den = 1e-30;
    for (int i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

static void tf32_differs(void) {
    enum { n = 192 * 160 };
    float *cpu = malloc(sizeof *cpu * n), *f32 = malloc(sizeof *f32 * n), *t32 = malloc(sizeof *t32 * n);
    char e[512] = "";
    int ok = !gemm_on(IMB_CPU, IMB_PREC_FP32, cpu, e, sizeof e) && !gemm_on(IMB_CUDA, IMB_PREC_FP32, f32, e, sizeof e) &&
             !gemm_on(IMB_CUDA, IMB_PREC_TF32, t32, e, sizeof e);
    if (ok) {
        double r32 = rel(f32, cpu, n), rtf = rel(t32, cpu, n);
        snprintf(e, sizeof e, "fp32 vs CPU %.2e, tf32 vs CPU %.2e", r32, rtf);
        ok = r32 <= 1e-5 && rtf > 2e-5 && rtf < 1e-2;
    }
    check(ok, "tf32 GEMMs differ from fp32, fp32 = CPU", e);
    free(cpu);
    free(f32);
    free(t32);
}

int main(void) {
    if (!imb_have_cuda()) {
        printf("graph cuda: no CUDA device in this build/machine: SKIP\n");
        return 77;
    }
    replay_matches_eager();
    vit_replay_matches_eager();
    scratch_move_recaptures();
    unsafe_step_warns();
    bad_label_from_the_device();
    bad_id_on_read();
    tf32_differs();
#ifdef IMB_HAVE_CUDA
    imb_cuda_shutdown();
#endif
    printf("%s\n", fails ? "FAILED" : "all passed");
    return fails ? EXIT_FAILURE : EXIT_SUCCESS;
}
