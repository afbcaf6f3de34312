#ifndef SERVICE_DASHBOARD_PAGE_H
#define SERVICE_DASHBOARD_PAGE_H

/*
 * The page GET /dashboard serves: service/dashboard.html, embedded at build
 * time by scripts/embed.py (service/meson.build), so the daemon needs no
 * file of its own at run time. Not NUL-terminated. Immutable: any thread.
 */

#include <stddef.h>

extern const unsigned char svc_dashboard_html[];
extern const size_t svc_dashboard_html_len;

#endif
