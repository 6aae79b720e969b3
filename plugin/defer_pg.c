/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The worker's store: core/pgstore.h behind vp_defer_store_ops. */
#include "plugin/defer.h"

static int pg_open(void **out, const struct vp_pg_options *opts)
{
	struct vp_pg *pg = NULL;
	int ret = vp_pg_open(&pg, opts);

	*out = pg;
	return ret;
}

static void pg_close(void *h)
{
	vp_pg_close(h);
}

static const char *pg_error(const void *h)
{
	return vp_pg_error(h);
}

static int pg_start(void *h, const struct vp_server *server, vp_defer_ended_fn *fn, void *ud)
{
	return vp_pg_start(h, server, fn, ud);
}

static int pg_heartbeat(void *h, vp_defer_ended_fn *fn, void *ud)
{
	return vp_pg_heartbeat(h, fn, ud);
}

static int pg_connect(void *h, const struct vp_request *req, int64_t session,
		      struct vp_pg_result *result)
{
	return vp_pg_connect(h, req, session, result);
}

static int pg_disconnect(void *h, const uint8_t *id, size_t len, uint16_t slot, int64_t session,
			 struct vp_grant *ended)
{
	return vp_pg_disconnect(h, id, len, slot, session, ended);
}

static int pg_abort(void *h, const uint8_t *id, size_t len, int64_t session)
{
	return vp_pg_abort(h, id, len, session);
}

static int pg_join(void *h, const void *started)
{
	return vp_pg_join(h, started);
}

const struct vp_defer_store_ops vp_defer_pg_ops = {
	.open = pg_open, .close = pg_close, .error = pg_error, .start = pg_start,
	.heartbeat = pg_heartbeat, .connect = pg_connect, .disconnect = pg_disconnect,
	.abort = pg_abort, .join = pg_join,
};
