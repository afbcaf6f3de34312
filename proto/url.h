#ifndef PROTO_URL_H
#define PROTO_URL_H

/*
 * Checks of the URLs rlfeed's endpoints are given, as text (nng parses them again when it
 * listens or dials): the daemon's listeners (service/config_client.c) and the client
 * library's dialers (client/client.c).
 */

#include <stdbool.h>
#include <stddef.h>

/* Whether @s is a port as a URL writes it: 1 to 5 digits, at most 65535. */
bool proto_url_port_ok(const char *s);

/*
 * The port written in URL @u ("9808" of "http://[::1]:9808/x") into @out, or false if the
 * text names none (nng fills in a scheme's default, as 80 for http:// and ws://).
 */
bool proto_url_written_port(const char *u, char *out, size_t size);

/*
 * Whether URL @u could ever be dialed, as far as its text tells: a port written out is
 * proto_url_port_ok(), and an ipc:// path is a file name a unix socket can have (not empty,
 * not ending in '/', at most 107 bytes). Other parts are left to nng.
 */
bool proto_url_dialable(const char *u);

#endif
