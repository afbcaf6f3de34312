#ifndef TOOLS_SIM_H
#define TOOLS_SIM_H

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
 * Conversations (--turns T > 1): a thread takes T consecutive numbers at once,
 * c*T .. c*T+T-1, and decides them in order as turns 1..T of conversation
 * "sim-<seed>-c<c>" (the last one may be shorter). Each turn gets its thumbs
 * as above; "resolved" is sent once, after the final turn, addressed by
 * conversation_id, value 1 if the final turn served the label, else 0, and
 * the daemon's credit rule spreads it over the conversation's open decisions.
 *
 * Delays (--delay-ms D > 0): the feedback of an interaction is posted D' ms
 * after its decide, D' uniform in [0, D) from hash(number, seed). Each thread
 * keeps its own min-heap of pending feedbacks by due time (at most
 * SIM_MAX_PENDING, 65536; a full heap first sends its earliest entry, at its
 * due time), sends those due before each decide, and drains the rest at the
 * end. D (plus the span of a conversation) must stay below the policy's
 * window_ms: later outcomes are answered "late" and never learned from; the
 * sim counts them and warns.
 *
 * Output (stdout, flushed per line): a header, then one row per block of B
 * interactions in number order, whichever thread finished them:
 *   block interactions base_acc served_acc online_acc prod_acc model_version prod_version
 *       1         5000   0.6790     0.6712     0.6712       nan             3            -
 *   (and decides_per_s), accuracies split by the slot that served;
 * and finally one JSON summary line (with "turns", "delay_ms",
 * "conversation_outcomes" and "late_outcomes"). Setup details and errors go to
 * stderr.
 *
 * Slots (--redis, --serve, --canary, --promote-at): the registry is set
 * and promotions run through the rlfeed program itself (tools/sim_control.c,
 * docs/client.md).
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
