/*
 * Corpus replay driver for the fuzz targets when built without libFuzzer:
 * runs LLVMFuzzerTestOneInput over every file in the directories (or files)
 * given on the command line, and prints TAP. A crash or sanitizer report
 * fails the test.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int n_run;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        printf("not ok %d - cannot open %s\n", ++n_run, path);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf == NULL) {
        printf("not ok %d - out of memory reading %s\n", ++n_run, path);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    printf("ok %d - %s\n", ++n_run, path);
    return 0;
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("not ok %d - missing %s\n", ++n_run, path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return run_file(path);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        printf("not ok %d - cannot open %s\n", ++n_run, path);
        return 1;
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char p[4096];
        int n = snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(p)) {
            continue;
        }
        bad |= run_file(p);
    }
    closedir(d);
    return bad;
}

int main(int argc, char **argv)
{
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        bad |= run_path(argv[i]);
    }
    printf("1..%d\n", n_run);
    return bad;
}
