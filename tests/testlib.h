/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers for the engine's tests: configs built in code, a clock the test
 * drives, a client environment, scratch directories. */
#ifndef VP_TESTLIB_H
#define VP_TESTLIB_H

#include <stdint.h>

#include "config.h"
#include "space.h"

/* A config with defaults and state-dir = dir (copied). */
struct vp_config *tl_config_new(const char *dir);
/* Append sections.  Lists are NULL-terminated; NULL for none.  Strings
 * must parse: the helper aborts the test otherwise. */
void tl_add_pool(struct vp_config *c, const char *name, const char *network, const char *range,
		 const char *const *exclude, const char *network6, const char *const *match);
void tl_add_router(struct vp_config *c, const char *name, const char *network, unsigned prefix,
		   const char *network6, unsigned prefix6, const char *const *match);
void tl_add_static(struct vp_config *c, const char *identity, const char *address,
		   const char *address6, const char *subnet, const char *subnet6);
void tl_set_warn(struct vp_config *c, unsigned a, unsigned b);

/* A client environment of up to 8 NAME=VALUE pairs. */
struct tl_env {
	const char *name[8];
	const char *value[8];
	unsigned n;
};
const char *tl_getvar(void *ud, const char *name);

struct vp_addr tl_addr(const char *text);
struct vp_prefix tl_prefix(const char *text);
/* A subnet-topology server: local4 with netbits, optional local6. */
struct vp_server tl_server(enum vp_topology topo, const char *local4, unsigned netbits,
			   const char *local6);

/* mkdtemp under TMPDIR; tl_rmtree removes it recursively. */
char *tl_tmpdir(void);
void tl_rmtree(const char *dir);

/* Clock and event recorder handed to the space as ud. */
struct tl_world {
	int64_t now;
	unsigned events[8];		/* count per enum vp_event_type */
	struct vp_event last[8];	/* last of each type (pointers not kept) */
	char last_from[64];
};
int64_t tl_now(void *ud);
void tl_on_event(void *ud, const struct vp_event *ev);
struct vp_space_options tl_options(const struct vp_config *c, struct tl_world *w);

#endif
