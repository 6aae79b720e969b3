/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TEMPORARY (branch cliw): see cli/space_tmp.h.  A private struct vp_space
 * that never reaches core/space.c: the journal under its lock, the leases
 * read once through the view, the checks of the engine's placement done
 * here by hand.  Linear searches: fine for a stand-in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/space_tmp.h"
#include "core/store.h"
#include "core/view.h"

struct tmp_lease {
	uint8_t *id;
	size_t len;
	uint16_t slot;
	uint8_t state;
	struct vp_addr a4, a6;
	bool gone;
};

struct vp_space {
	const struct vp_config *config;
	struct vp_store *store;
	struct vp_server server;
	bool has_server;
	struct tmp_lease *leases;
	size_t n, cap;
	char msg[VP_IDENTITY_MAX + 64];
};

static int keep(struct vp_space *s, const uint8_t *id, size_t len, uint16_t slot, uint8_t state,
		const struct vp_addr *a4, const struct vp_addr *a6)
{
	struct tmp_lease *l;

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;

		l = realloc(s->leases, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		s->leases = l;
		s->cap = cap;
	}
	l = &s->leases[s->n];
	l->id = malloc(len);
	if (!l->id)
		return -ENOMEM;
	memcpy(l->id, id, len);
	l->len = len;
	l->slot = slot;
	l->state = state;
	l->a4 = *a4;
	l->a6 = *a6;
	l->gone = false;
	s->n++;
	return 0;
}

static int keep_viewed(void *ud, const struct vp_view_lease *v)
{
	const struct vp_lease_rec *r = &v->rec;

	return keep(ud, r->identity, r->identity_len, r->slot, r->state, &r->addr4, &r->addr6);
}

int vp_tmp_writer_open(struct vp_space **out, const struct vp_config *config, pid_t *holder)
{
	struct vp_space *s = calloc(1, sizeof(*s));
	struct vp_view *view = NULL;
	char line[512];
	int ret;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->config = config;
	ret = vp_store_open(&s->store, config->state_dir, config->fsync, NULL, NULL, NULL, holder);
	if (ret)
		goto out_free;
	s->has_server = !vp_store_read_server(config->state_dir, line, sizeof(line)) &&
			vp_server_parse(line, &s->server);
	ret = vp_view_open(&view, config, s->has_server ? &s->server : NULL, NULL);
	if (!ret)
		ret = vp_view_each(view, false, keep_viewed, s);
	vp_view_free(view);
	if (ret)
		goto out_free;
	*out = s;
	return 0;

out_free:
	vp_tmp_writer_close(s);
	return ret;
}

void vp_tmp_writer_close(struct vp_space *s)
{
	if (!s)
		return;
	vp_store_close(s->store);
	for (size_t i = 0; i < s->n; ++i)
		free(s->leases[i].id);
	free(s->leases);
	free(s);
}

static bool same_id(const struct tmp_lease *l, const uint8_t *id, size_t len)
{
	return !l->gone && l->len == len && !memcmp(l->id, id, len);
}

int vp_space_release(struct vp_space *s, const uint8_t *id, size_t len)
{
	bool found = false;
	int ret;

	for (size_t i = 0; i < s->n; ++i)
		if (same_id(&s->leases[i], id, len)) {
			if (s->leases[i].state == VP_LEASE_ONLINE)
				return -EBUSY;
			found = true;
		}
	if (!found)
		return -ENOENT;
	for (size_t i = 0; i < s->n; ++i)
		if (same_id(&s->leases[i], id, len)) {
			ret = vp_store_del(s->store, id, len, s->leases[i].slot);
			if (ret)
				return ret;
			s->leases[i].gone = true;
		}
	return 0;
}

/* Why a may not be handed out to id, or NULL. */
static const char *refused(struct vp_space *s, const uint8_t *id, size_t len,
			   const struct vp_addr *a)
{
	const struct vp_config *c = s->config;
	bool v4 = a->family == VP_INET;

	for (size_t i = 0; i < c->n_statics; ++i) {
		const struct vp_static_config *st = &c->statics[i];

		if ((v4 ? st->has_address : st->has_address6) &&
		    vp_addr_eq(a, v4 ? &st->address : &st->address6)) {
			if (strlen(st->identity) == len && !memcmp(st->identity, id, len))
				return NULL;
			snprintf(s->msg, sizeof(s->msg), "reserved for client %s", st->identity);
			return s->msg;
		}
	}
	if (s->has_server && (vp_addr_eq(a, &s->server.local4) || vp_addr_eq(a, &s->server.remote4) ||
			      vp_addr_eq(a, &s->server.local6)))
		return "a server address";
	for (size_t i = 0; i < c->n_pools; ++i) {
		const struct vp_pool_config *pc = &c->pools[i];
		struct vp_range all = vp_prefix_range(v4 ? &pc->network : &pc->network6);

		if (v4 ? !vp_prefix_contains(&pc->network, a) :
			 !(pc->has_network6 && vp_prefix_contains(&pc->network6, a)))
			continue;
		if (v4 && pc->has_range && !vp_range_contains(&pc->range, a))
			return "outside the pool's range";
		if (v4 && !pc->has_range && pc->network.len < 31 &&
		    (vp_addr_eq(a, &all.first) || vp_addr_eq(a, &all.last)))
			return "outside the pool's range";
		for (size_t k = 0; k < pc->n_exclude; ++k)
			if (vp_range_contains(&pc->exclude[k], a))
				return "excluded";
		return NULL;
	}
	return "outside every pool";
}

int vp_space_import(struct vp_space *s, const uint8_t *id, size_t len,
		    const struct vp_addr *a4, const struct vp_addr *a6, const char **why)
{
	const struct vp_addr none = { 0 };
	struct vp_lease_rec rec = { .identity = id, .identity_len = len, .state = VP_LEASE_HELD };
	int ret;

	a4 = a4 ? a4 : &none;
	a6 = a6 ? a6 : &none;
	for (size_t i = 0; i < s->n; ++i)
		if (same_id(&s->leases[i], id, len))
			return -EEXIST;
	if ((a4->family && (*why = refused(s, id, len, a4))) ||
	    (a6->family && (*why = refused(s, id, len, a6))))
		return -EDOM;
	for (size_t i = 0; i < s->n; ++i) {
		const struct tmp_lease *l = &s->leases[i];

		if (!l->gone && ((a4->family && vp_addr_eq(&l->a4, a4)) ||
				 (a6->family && vp_addr_eq(&l->a6, a6))))
			return -EADDRINUSE;
	}
	rec.created = rec.since = time(NULL);
	rec.addr4 = *a4;
	rec.addr6 = *a6;
	ret = vp_store_put(s->store, &rec);
	if (!ret)
		ret = keep(s, id, len, 0, VP_LEASE_HELD, a4, a6);
	return ret;
}
