#ifndef TOOLS_ERASE_H
#define TOOLS_ERASE_H

/*
 * `rlfeed erase --policy P (--user U | --conversation C) [--pseudonym-key FILE]
 * [--redis URL] [--who NAME] [--dry-run] [--json]`: remove one customer's records from a
 * policy's streams (storage/store.h, sto_erase) and leave an audit entry that names no id.
 * Refuses while an rlfeedd instance holds the policy. docs/security.md, "Erasure".
 * Return: the exit status (0, or 2 on any error).
 */
int rlfeed_erase_main(int argc, char **argv);

#endif
