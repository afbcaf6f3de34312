#ifndef TOOLS_POLICYCMD_H
#define TOOLS_POLICYCMD_H

/*
 * `rlfeed policy put|get|list|retire` (tools/policycmd.c): the policy catalog in Redis.
 * @argv[0] is the subcommand. Returns the exit status (tools/regcmd.h: 0 done, 2 error).
 */
int rlfeed_policy_main(int argc, char **argv);

#endif
