#ifndef BENCH_LEARN_H
#define BENCH_LEARN_H

/*
 * `rlfeed bench learn`: the learning benchmark. Supervised data becomes a
 * contextual bandit (each row once, in a seeded random order): the head
 * decides among the K labels, the reward is 1 when it chose the label and 0
 * otherwise, and the example goes through the real reward join and the real
 * learner before the next row. Reports progressive accuracy (accuracy of
 * the exploring policy's choices, as Vowpal Wabbit's progressive loss), the
 * base model's accuracy, the same head's accuracy when trained with every
 * label's reward (the full-information ceiling), and decide+learn
 * throughput on one core. The last line printed is one JSON object.
 *
 * Usage and options: rlfeed bench learn --help; docs/benchmarks.md.
 */

/* Returns the process exit status: 0 ok, 1 failure, 2 usage. */
int rlfeed_bench_main(int argc, char **argv);

#endif
