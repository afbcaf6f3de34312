#include "tools/sim_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "proto/stats.h"
#include "storage/store.h"

/*
 * The sim drives the registry with the rlfeed program itself (/proc/self/exe),
 * as an operator or a cron job would: `rlfeed serve` before the traffic,
 * `rlfeed promote` at the --promote-at points. Each child writes to a
 * temporary file, printed afterwards under print_lk, so its lines never cut
 * through a row.
 */

extern char **environ;

#define OUT_LINE_MAX 512

/* Run `rlfeed @args...` with stdout and stderr into the open file @fd. Its exit status, or -1. */
static int run_rlfeed(const char *const *args, int fd)
{
    char *argv[32];
    int n = 0;
    argv[n++] = "rlfeed";
    for (int k = 0; args[k] != NULL && n < 31; k++) {
        argv[n++] = (char *)(uintptr_t)args[k];
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    int st = 0;
    if (posix_spawn_file_actions_init(&fa) != 0) {
        return -1;
    }
    int rc = posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
    if (rc == 0) {
        rc = posix_spawn_file_actions_adddup2(&fa, fd, STDERR_FILENO);
    }
    if (rc == 0) {
        rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    }
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        return -1;
    }
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A temporary file, already unlinked; -1 on failure. */
static int temp_file(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/rlfeed-sim.XXXXXX",
                   dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd >= 0) {
        (void)unlink(path);
    }
    return fd;
}

/* Copy what the child wrote to @fd onto @out, each line after @indent. */
static void copy_out(int fd, FILE *out, const char *indent)
{
    char line[OUT_LINE_MAX];
    FILE *in = NULL;
    if (lseek(fd, 0, SEEK_SET) == 0) {
        in = fdopen(dup(fd), "r");
    }
    while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
        fprintf(out, "%s%s", indent, line);
    }
    if (in != NULL) {
        fclose(in);
    }
}

/* Whether the daemon serves policy @o->policy as --serve/--canary asked. */
static bool daemon_follows(const sim_opts *o, rlfeed_client *c)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    proto_stats st;
    bool ok = false;
    if (rlfeed_client_stats(c, o->policy, &rep, &len) != BASE_OK ||
        proto_stats_decode(rep, len, &st) != BASE_OK) {
        base_free(rep);
        return false;
    }
    if (st.n_policies == 1) {
        const proto_policy_stats *p = &st.policies[0];
        ok = (o->serve == NULL || strcmp(p->serve, o->serve) == 0) &&
             (o->canary == NULL || fabs(p->canary - strtod(o->canary, NULL)) < 1e-6);
    }
    proto_stats_fini(&st);
    base_free(rep);
    return ok;
}

/* Wait (up to 5 s) until the daemon serves as asked: it follows the registry within a second. */
static bool wait_for_daemon(const sim_opts *o, rlfeed_client *c)
{
    uint64_t deadline = base_mono_ns() + 5000000000ull;
    while (!daemon_follows(o, c)) {
        if (base_mono_ns() > deadline) {
            return false;
        }
        struct timespec nap = {0, 10000000L}; /* 10 ms between polls */
        (void)nanosleep(&nap, NULL);
    }
    return true;
}

bool sim_apply_serving(sim_run *run, rlfeed_client *c)
{
    const sim_opts *o = run->o;
    /* The Redis URL (maybe with a password) reaches the child as $RLFEED_REDIS (sim_opts.c). */
    const char *args[16] = {"serve", "--policy", o->policy, "--who", "rlfeed-sim"};
    int n = 5;
    if (o->serve == NULL && o->canary == NULL) {
        return true;
    }
    if (o->serve != NULL) {
        args[n++] = "--mode";
        args[n++] = o->serve;
    }
    if (o->canary != NULL) {
        args[n++] = "--canary";
        args[n++] = o->canary;
    }
    args[n] = NULL;
    int fd = temp_file();
    int rc = fd >= 0 ? run_rlfeed(args, fd) : -1;
    if (rc != 0) {
        fprintf(stderr, "rlfeed sim: `rlfeed serve` failed (exit %d):\n", rc);
        if (fd >= 0) {
            copy_out(fd, stderr, "  ");
        }
    } else if (!wait_for_daemon(o, c)) {
        char shown[1024];
        sto_url_redact(o->redis, shown, sizeof(shown)); /* never its password */
        fprintf(stderr,
                "rlfeed sim: the registry says serve %s, canary %s, but the daemon at %s "
                "does not serve so within 5 s: is it using that Redis (%s)?\n",
                o->serve != NULL ? o->serve : "(unchanged)",
                o->canary != NULL ? o->canary : "(unchanged)", o->url, shown);
        rc = 2;
    } else {
        char shown[1024];
        sto_url_redact(o->redis, shown, sizeof(shown));
        fprintf(stderr, "rlfeed sim: serving from %s, canary %s (registry of %s at %s)\n",
                o->serve != NULL ? o->serve : "(unchanged)",
                o->canary != NULL ? o->canary : "(unchanged)", o->policy, shown);
    }
    if (fd >= 0) {
        (void)close(fd);
    }
    return rc == 0;
}

static const char *verdict_of(int rc)
{
    switch (rc) {
    case 0:
        return "promoted";
    case 3:
        return "held by the gate";
    case 4:
        return "data not fit for evaluation";
    default:
        return "failed";
    }
}

void sim_note_finished(sim_run *run)
{
    uint64_t n = atomic_fetch_add(&run->n_finished, 1) + 1;
    if (n == atomic_load(&run->wake_at)) {
        pthread_mutex_lock(&run->print_lk);
        pthread_cond_broadcast(&run->printed);
        pthread_mutex_unlock(&run->print_lk);
    }
}

void *sim_promoter_main(void *arg)
{
    sim_run *run = arg;
    const sim_opts *o = run->o;

    for (uint32_t k = 0; k < o->n_promote; k++) {
        uint64_t at = o->promote_at[k];
        if (at > o->n) {
            fprintf(stderr,
                    "rlfeed sim: --promote-at %" PRIu64 " is past the run's %" PRIu64
                    " interactions: not run\n",
                    at, o->n);
            break;
        }
        pthread_mutex_lock(&run->print_lk);
        atomic_store(&run->wake_at, at);
        while (!atomic_load(&run->stop) && atomic_load(&run->n_finished) < at) {
            pthread_cond_wait(&run->printed, &run->print_lk);
        }
        bool go = !atomic_load(&run->stop);
        pthread_mutex_unlock(&run->print_lk);
        if (!go) {
            break;
        }
        const char *args[] = {"promote",    "--policy", o->policy, "--who",
                              "rlfeed-sim", "--window", "1h",      NULL};
        int fd = temp_file();
        int rc = fd >= 0 ? run_rlfeed(args, fd) : -1;
        pthread_mutex_lock(&run->print_lk);
        printf("== rlfeed promote after %" PRIu64 " interactions: %s (exit %d)\n", at,
               verdict_of(rc), rc);
        if (fd >= 0) {
            copy_out(fd, stdout, "   ");
        }
        fflush(stdout);
        run->promotions_done++;
        pthread_mutex_unlock(&run->print_lk);
        if (fd >= 0) {
            (void)close(fd);
        }
        if (rc != 0 && rc != 3 && rc != 4) {
            atomic_fetch_add(&run->n_job_failed, 1); /* a failed job fails the run */
            atomic_fetch_add(&run->n_errors, 1);
        }
    }
    return NULL;
}
