#define _XOPEN_SOURCE 700 /* realpath() */
#include "tools/keycmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/buf.h"
#include "proto/auth.h"
#include "service/config.h"

#define EXIT_USAGE 2

/* Write @b to a new file @path, mode 0600; false (and why on stderr) if it exists or fails. */
static bool write_new(const char *path, const base_buf *b)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "rlfeed key: %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (not overwritten: remove it or choose --out)" : "");
        return false;
    }
    bool ok = write(fd, b->data, b->len) == (ssize_t)b->len;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "rlfeed key: cannot write %s\n", path);
        (void)unlink(path);
    }
    return ok;
}

/* `rlfeed key pseudonym --out FILE`: 32 random bytes as 64 hex digits, mode 0600. */
static int pseudonym_main(int argc, char **argv)
{
    uint8_t key[PROTO_AUTH_KEY_BYTES];
    char hex[2 * PROTO_AUTH_KEY_BYTES + 2];
    base_buf b;
    if (argc != 3 || strcmp(argv[1], "--out") != 0) {
        fprintf(stderr, "usage: rlfeed key pseudonym --out FILE\n");
        return EXIT_USAGE;
    }
    base_entropy_fill(key, sizeof(key));
    proto_auth_hex(key, sizeof(key), hex);
    strcat(hex, "\n");
    base_buf_init(&b, 4096);
    bool ok = base_buf_append(&b, hex, strlen(hex)) == BASE_OK && write_new(argv[2], &b);
    base_buf_fini(&b);
    if (ok) {
        /* pseudonym_key takes an absolute path: print the one to paste. */
        char *abs = realpath(argv[2], NULL);
        printf("# pseudonym key: %s (keep it private, and back it up: records already stored "
               "can only be matched with it)\n[server]\npseudonym_key = %s\n",
               argv[2], abs != NULL ? abs : argv[2]);
        free(abs);
    }
    return ok ? 0 : EXIT_USAGE;
}

int rlfeed_key_main(int argc, char **argv)
{
    proto_auth_keyfile kf;
    char stored[PROTO_AUTH_KEY_STRING_LEN + 1], out_path[512] = "", why[160];
    const char *name = NULL;
    base_buf b;
    int status = EXIT_USAGE;

    if (argc >= 1 && strcmp(argv[0], "pseudonym") == 0) {
        return pseudonym_main(argc, argv);
    }
    if (argc < 1 || strcmp(argv[0], "new") != 0) {
        fprintf(stderr, "usage: rlfeed key new NAME [--out FILE]\n"
                        "       rlfeed key pseudonym --out FILE\n");
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
    base_entropy_fill(kf.secret, sizeof(kf.secret));
    base_entropy_fill(kf.salt, sizeof(kf.salt));
    base_buf_init(&b, 4096);
    /* Parse what will be written: the same checks a client makes when it loads the file. */
    if (proto_auth_keyfile_format(&kf, &b) != BASE_OK || b.len == 0 ||
        base_buf_append(&b, "", 1) != BASE_OK ||
        proto_auth_keyfile_parse((const char *)b.data, &kf, why, sizeof(why)) != BASE_OK ||
        strcmp(kf.client, name) != 0 || strlen(name) > SVC_SECTION_NAME_MAX) {
        fprintf(stderr,
                "rlfeed key new: bad client name \"%s\" (1..%d bytes of " PROTO_AUTH_NAME_RULE
                ")\n",
                name, SVC_SECTION_NAME_MAX);
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
