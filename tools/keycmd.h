#ifndef TOOLS_KEYCMD_H
#define TOOLS_KEYCMD_H

/*
 * `rlfeed key new NAME [--out FILE]`: a new client key (docs/security.md). Writes the key
 * file (client, secret, salt; mode 0600, never over an existing file; default NAME.key)
 * and prints the [client NAME] lines for rlfeedd's configuration, which hold only the salt
 * and the derived signing key (proto/auth.h), never the secret.
 * Return: the exit status (0, or 2 on a usage or file error).
 */
int rlfeed_key_main(int argc, char **argv);

#endif
