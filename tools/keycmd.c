#include "tools/keycmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/buf.h"
#include "proto/auth.h"

#define EXIT_USAGE 2

static void fill_random(uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
        }
    }
}

/* Write @b to a new file @path, mode 0600; false (and why on stderr) if it exists or fails. */
static bool write_new(const char *path, const base_buf *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "rlfeed key new: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (not overwritten: remove it or choose --out)" : "");
        return false;
    }
    bool ok = write(fd, b->data, b->len) == (ssize_t)b->len;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "rlfeed key new: cannot write %s\n", path);
        (void)unlink(path);
    }
    return ok;
}

int rlfeed_key_main(int argc, char **argv)
{
    proto_auth_keyfile kf;
    char stored[PROTO_AUTH_KEY_STRING_LEN + 1], out_path[512] = "", why[160];
    const char *name = NULL;
    base_buf b;
    int status = EXIT_USAGE;

    if (argc < 1 || strcmp(argv[0], "new") != 0) {
        fprintf(stderr, "usage: rlfeed key new NAME [--out FILE]\n");
        return EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            snprintf(out_path, sizeof(out_path), "%s", argv[++i]);
        } else if (argv[i][0] != '-' && name == NULL) {
            name = argv[i];
        } else {
            fprintf(stderr, "usage: rlfeed key new NAME [--out FILE]\n");
            return EXIT_USAGE;
        }
    }
    if (name == NULL) {
        fprintf(stderr, "usage: rlfeed key new NAME [--out FILE]\n");
        return EXIT_USAGE;
    }
    memset(&kf, 0, sizeof(kf));
    snprintf(kf.client, sizeof(kf.client), "%s", name);
    fill_random(kf.secret, sizeof(kf.secret));
    fill_random(kf.salt, sizeof(kf.salt));
    base_buf_init(&b, 4096);
    /* Parse what will be written: the same checks a client makes when it loads the file. */
    if (proto_auth_keyfile_format(&kf, &b) != BASE_OK || b.len == 0 ||
        base_buf_append(&b, "", 1) != BASE_OK ||
        proto_auth_keyfile_parse((const char *)b.data, &kf, why, sizeof(why)) != BASE_OK ||
        strcmp(kf.client, name) != 0) {
        fprintf(stderr,
                "rlfeed key new: bad client name \"%s\" (1..64 bytes of UTF-8 without "
                "blanks, ',', '=', '$' or '\"')\n",
                name);
        goto done;
    }
    b.len--; /* the NUL */
    if (out_path[0] == '\0') {
        snprintf(out_path, sizeof(out_path), "%s.key", name);
    }
    if (!write_new(out_path, &b)) {
        goto done;
    }
    proto_auth_key_string(kf.salt, kf.key, stored);
    printf("# key file: %s (give it to the client; keep it private)\n"
           "# add to rlfeedd's configuration (the key line may list up to 4 keys, for rotation):\n"
           "[client %s]\n"
           "key = %s\n"
           "ops = decide, feedback\n"
           "policies = *\n",
           out_path, name, stored);
    status = 0;
done:
    base_buf_fini(&b);
    return status;
}
