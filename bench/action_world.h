#ifndef BENCH_ACTION_WORLD_H
#define BENCH_ACTION_WORLD_H

/*
 * `rlfeed bench features`: per-action head against an open action set's shared head in a
 * world of answers described by features, new ones appearing over time (bench/action_world.c).
 * Returns the process exit status: 0 ok, 1 failure, 2 usage.
 */
int rlfeed_bench_features(int argc, char **argv);

#endif
