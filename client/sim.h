#ifndef CLIENT_SIM_H
#define CLIENT_SIM_H

/*
 * `rlfeed sim`: simulated chatbot traffic against a running rlfeedd.
 *
 * Each of C frontend threads owns one rlfeed_client. Interactions are
 * numbered 0..n-1; a thread takes the next number from a shared atomic
 * counter, looks up the example drawn for it (a seeded random order of the
 * dataset's rows, with replacement when n exceeds the rows), asks the
 * service to decide among the K action ids with the frozen base model's
 * logits and embedding (bench/dataset.h), and reports the outcome with
 * acknowledged feedback:
 *   "resolved"   value 1 if the chosen action is the true label, else 0;
 *   "thumbs_up" / "thumbs_down" with probability thumbs_rate, matching
 *   correctness but flipped with probability thumbs_noise (randomness seeded
 *   from (seed, interaction number)).
 * Event ids are "sim-<seed>-<number>", so a rerun with the same seed against
 * the same daemon is refused as duplicate_event: change --seed.
 *
 * Output (stdout, flushed per line): a header, then one row per block of B
 * interactions in number order, whichever thread finished them:
 *   block  interactions  base_acc  served_acc  model_version  decides_per_s
 *       1          5000    0.6790      0.6712              3           4100
 * and finally one JSON summary line. Setup details and errors go to stderr.
 *
 * Exit status: 0 if every request succeeded; 1 if any request failed (an
 * error reply or a transport error; all are counted and summarised);
 * 2 for usage errors, an unreadable dataset or no connection at start.
 */

/*
 * rlfeed_sim_main() - run the sim with @argv (the arguments after "sim").
 * @default_url: used when --url is absent (borrowed)
 * Must be called from the main thread; starts and joins its own threads.
 * Return: the process exit status described above.
 */
int rlfeed_sim_main(int argc, char **argv, const char *default_url);

/* rlfeed_sim_usage() - the option summary, for `rlfeed sim --help`. */
const char *rlfeed_sim_usage(void);

#endif
