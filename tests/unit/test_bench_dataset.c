/* The simulator's data: CSV loading and standardisation, the synthetic
 * intents, and the frozen base model's determinism and calibration. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/dataset.h"
#include "proc.h"
#include "tap.h"

static char *write_file(const char *dir, const char *name, const char *text)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void csv_loads_and_standardises(const char *dir)
{
    char *p = write_file(dir, "ok.csv", "label,a,b\n0,1,10\n1,3,10\n2,5,10\n1,3,10\n");
    rlfeed_dataset *d = NULL;
    char err[256] = "";
    TST_OK(rlfeed_dataset_load_csv(p, &d, err, sizeof(err)));
    if (d != NULL) {
        TST_EQ(d->n_rows, 4);
        TST_EQ(d->n_features, 2);
        TST_EQ(d->n_classes, 3);
        TST_EQ(d->label[2], 2);
        /* feature a: mean 3, population sd sqrt(2); b is constant: centred only */
        TST_NEAR(d->x[0 * 2 + 0], -2.0 / sqrt(2.0), 1e-9);
        TST_NEAR(d->x[2 * 2 + 0], 2.0 / sqrt(2.0), 1e-9);
        TST_NEAR(d->x[1 * 2 + 1], 0.0, 1e-12);
    }
    rlfeed_dataset_free(d);
    free(p);
}

static void bad_csv_is_rejected_with_the_line(const char *dir)
{
    struct {
        const char *text;
        base_err want;
    } cases[] = {
        {"label,a\n0,1\n1,x\n", BASE_EINVAL},   /* not a number */
        {"label,a\n0,1\n1,2,3\n", BASE_EINVAL}, /* ragged row */
        {"label,a\n0,1\n-1,2\n", BASE_EINVAL},  /* negative label */
        {"label,a\n0,1\n0,2\n", BASE_EINVAL},   /* one class */
        {"label,a\n0,1\n1,nan\n", BASE_EINVAL}, /* not finite */
        {"label,a\n", BASE_EINVAL},             /* no rows */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = write_file(dir, "bad.csv", cases[i].text);
        rlfeed_dataset *d = NULL;
        char err[256] = "";
        TST_EQ(rlfeed_dataset_load_csv(p, &d, err, sizeof(err)), cases[i].want);
        TST_TRUE(d == NULL && err[0] != '\0');
        free(p);
    }
    rlfeed_dataset *d = NULL;
    char err[256] = "";
    TST_EQ(rlfeed_dataset_load_csv("/nonexistent.csv", &d, err, sizeof(err)), BASE_EIO);
    /* A NUL byte in a line is named as such, not as a line too long. */
    static const char nul[] = "label,a\n0,1\n1,\0"
                              "2\n0,3\n";
    size_t n = strlen(dir) + 10;
    char *p = malloc(n);
    snprintf(p, n, "%s/nul.csv", dir);
    FILE *f = fopen(p, "w");
    if (f != NULL) {
        fwrite(nul, 1, sizeof(nul) - 1, f);
        fclose(f);
    }
    TST_EQ(rlfeed_dataset_load_csv(p, &d, err, sizeof(err)), BASE_EINVAL);
    TST_TRUE(strstr(err, "line 3: holds a NUL byte") != NULL);
    free(p);
}

static void base_model_is_deterministic_and_calibrated(void)
{
    rlfeed_dataset *d = NULL;
    TST_OK(rlfeed_dataset_synthetic(1, &d));
    TST_EQ(d->n_classes, RLFEED_SYNTH_CLASSES);
    rlfeed_base_model *a = NULL, *b = NULL;
    TST_OK(rlfeed_base_model_new(d, 16, 7, 0.68, &a));
    TST_OK(rlfeed_base_model_new(d, 16, 7, 0.68, &b));
    float ea[16], eb[16], la[RLFEED_SYNTH_CLASSES], lb[RLFEED_SYNTH_CLASSES];
    rlfeed_base_model_embed(a, 123, ea);
    rlfeed_base_model_embed(b, 123, eb);
    rlfeed_base_model_logits(a, 123, la);
    rlfeed_base_model_logits(b, 123, lb);
    TST_TRUE(memcmp(ea, eb, sizeof(ea)) == 0);
    TST_TRUE(memcmp(la, lb, sizeof(la)) == 0);
    /* Measured argmax accuracy over the whole set is near the target (tol 0.03). */
    uint32_t hit = 0;
    for (uint32_t r = 0; r < d->n_rows; r++) {
        rlfeed_base_model_logits(a, r, la);
        uint32_t best = 0;
        for (uint32_t k = 1; k < d->n_classes; k++) {
            best = la[k] > la[best] ? k : best;
        }
        hit += best == d->label[r];
    }
    double acc = (double)hit / d->n_rows;
    printf("# base accuracy %.4f (target 0.68)\n", acc);
    TST_NEAR(acc, 0.68, 0.03);
    rlfeed_base_model_free(a);
    rlfeed_base_model_free(b);
    rlfeed_dataset_free(d);
}

int main(void)
{
    char *dir = tst_mkdtemp("rlfeed-dataset");
    csv_loads_and_standardises(dir);
    bad_csv_is_rejected_with_the_line(dir);
    base_model_is_deterministic_and_calibrated();
    tst_rm_rf(dir);
    free(dir);
    return tst_done();
}
