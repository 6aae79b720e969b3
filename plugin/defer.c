/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Deferred connects: the store on a worker thread (plugin/defer.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plugin/defer.h"

#define ERR_MAX 256
#define RETRY_MAX 65536		/* disconnects and aborts kept while the store is down */
#define WAIT_MAX_MS 1000	/* the worker looks at its clock at least this often */
#define CONNECTS_IN_A_ROW 8	/* then a disconnect or abort queued goes first */

enum job_kind { JOB_CONNECT, JOB_DISCONNECT, JOB_ABORT };

struct job {
	struct job *next;
	enum job_kind kind;
	struct vp_defer_ticket *t;	/* connect */
	int64_t session;
	uint16_t slot;
	size_t len;
	uint8_t *id;			/* in the job's own block, after it */
};

struct vp_defer_ticket {
	int refs;			/* the main thread's and the queue's */
	bool done, timed_out, abandoned, undo;
	int64_t deadline, session;
	int ret;
	struct vp_pg_result result;
	char error[ERR_MAX];
	struct job job;			/* its connect job (no id: below) */
	uint8_t *identity;
	size_t identity_len, n_vars;
	const char **names, **values;
	char real[VP_REAL_MAX];
};

struct msg {
	struct msg *next;
	struct vp_defer_msg m;
	char reason[16], node[128], instance[128], message[ERR_MAX];
	uint8_t identity[VP_IDENTITY_MAX];
};

/* A worker thread and its own connection to the store. */
struct worker {
	struct vp_defer *d;
	pthread_t thread;
	unsigned index;			/* 0: the first, which opens and starts
					 * the store and beats the heartbeat */
	bool running;			/* its thread was created */
	void *h;
	bool tried_open;		/* the others' open (the first's: d->opened) */
	bool started;			/* the first: vp_pg_start done; the others:
					 * joined it (at start_gen) */
	unsigned gen;
	bool ok;			/* its last call found the store working */
	const char *ended_reason;
	/* Under lock: the identity of the job it runs (busy). */
	bool busy;
	size_t cur_len;
	uint8_t cur[VP_IDENTITY_MAX];
};

struct vp_defer {
	const struct vp_defer_store_ops *ops;
	const struct vp_config *config;
	char *node;
	unsigned timeout_ms, heartbeat_s;
	int64_t (*now_ms)(void);

	pthread_mutex_t lock;
	pthread_cond_t wake, answered;	/* the workers'; the main thread's */
	struct job *head, *tail;		/* disconnects and aborts */
	struct job *chead, *ctail;		/* connects: taken first (see take) */
	struct job *retry, *retry_tail;	/* failed while the store was down */
	size_t queued, n_retry;
	struct msg *msgs, *msgs_tail;
	bool stop;
	int64_t stop_by;
	bool store_ok;			/* as last told (VP_DEFER_MSG_STORE) */
	unsigned start_gen;		/* the first worker's starts that worked */

	/* Asked by the main thread (under lock), done by the first worker. */
	bool open_asked, opened, has_server;
	int open_ret;
	char instance[VP_INSTANCE_NAME_MAX];
	struct vp_server server;

	/* The first worker's own. */
	bool wk_has_server;		/* its copy of has_server */
	int64_t next_beat, next_start, last_retry;
	unsigned connects_in_row;	/* connects taken since the last other job */

	unsigned n_workers;
	struct worker *w;

	atomic_int_fast64_t next_session;
	struct vp_defer_stats stats;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(struct vp_defer *d, uint64_t *n)
{
	pthread_mutex_lock(&d->lock);
	++*n;
	pthread_mutex_unlock(&d->lock);
}

static void push(struct job **head, struct job **tail, struct job *j)
{
	j->next = NULL;
	if (*tail)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static struct job *pop(struct job **head, struct job **tail)
{
	struct job *j = *head;

	if (j) {
		*head = j->next;
		if (!*head)
			*tail = NULL;
	}
	return j;
}

static struct job *job_new(enum job_kind kind, const uint8_t *id, size_t len, uint16_t slot,
			   int64_t session)
{
	struct job *j = malloc(sizeof(*j) + len);

	if (!j)
		return NULL;
	*j = (struct job){ .kind = kind, .session = session, .slot = slot, .len = len,
			   .id = (uint8_t *)(j + 1) };
	memcpy(j->id, id, len);
	return j;
}

/* Under lock. */
static void enqueue(struct vp_defer *d, struct job *j)
{
	if (j->kind == JOB_CONNECT)
		push(&d->chead, &d->ctail, j);
	else
		push(&d->head, &d->tail, j);
	d->queued++;
	/* Before the store starts, only the first worker takes connects. */
	if (j->kind == JOB_CONNECT && !d->start_gen)
		pthread_cond_broadcast(&d->wake);
	else
		pthread_cond_signal(&d->wake);
}

static bool has_job_of(const struct job *j, const uint8_t *id, size_t len)
{
	for (; j; j = j->next)
		if (j->len == len && !memcmp(j->id, id, len))
			return true;
	return false;
}

/* The identity a job is about. */
static const uint8_t *job_id(const struct job *j, size_t *len)
{
	if (j->kind == JOB_CONNECT) {
		*len = j->t->identity_len;
		return j->t->identity;
	}
	*len = j->len;
	return j->id;
}

/* Under lock: whether a worker runs a job of this identity now. */
static bool in_flight(const struct vp_defer *d, const uint8_t *id, size_t len)
{
	for (unsigned i = 0; i < d->n_workers; ++i)
		if (d->w[i].busy && d->w[i].cur_len == len && !memcmp(d->w[i].cur, id, len))
			return true;
	return false;
}

/* Under lock: the jobs kept for want of the database queued again. */
static void requeue_retries(struct vp_defer *d)
{
	struct job *j;

	d->last_retry = d->now_ms();
	while ((j = pop(&d->retry, &d->retry_tail))) {
		d->n_retry--;
		push(&d->head, &d->tail, j);
		d->queued++;
	}
	if (d->head)
		pthread_cond_broadcast(&d->wake);
}

/* Under lock: take j, whose predecessor in its list is prev. */
static struct job *unlink_job(struct job **head, struct job **tail, struct job *prev,
			      struct job *j)
{
	if (prev)
		prev->next = j->next;
	else
		*head = j->next;
	if (*tail == j)
		*tail = prev;
	j->next = NULL;
	return j;
}

/* The next job for w, under lock: a connect before the disconnects and
 * aborts queued (a client waits for it; nobody waits for them), unless one
 * of them is its identity's: a client's jobs run in the order queued, one
 * at a time.  A job whose identity another worker runs now is passed over,
 * and with it every later job of that identity (they are passed over for
 * the same reason).  Connects go only to a worker whose store is started
 * (the first worker starts it). */
static struct job *take_other(struct vp_defer *d)
{
	struct job *prev = NULL, *j;
	const uint8_t *id;
	size_t len;

	for (j = d->head; j; prev = j, j = j->next) {
		id = job_id(j, &len);
		if (!in_flight(d, id, len))
			return unlink_job(&d->head, &d->tail, prev, j);
	}
	return NULL;
}

static struct job *take(struct vp_defer *d, struct worker *w)
{
	struct job *prev = NULL, *j;

	/* Connects first, but not for ever: a disconnect or abort after
	 * every CONNECTS_IN_A_ROW of them, so that a steady stream of
	 * connects does not keep the ends of sessions from the database. */
	if (d->connects_in_row >= CONNECTS_IN_A_ROW && (j = take_other(d))) {
		d->connects_in_row = 0;
		return j;
	}
	if (w->index == 0 || w->started) {
		for (j = d->chead; j; prev = j, j = j->next) {
			const struct vp_defer_ticket *t = j->t;

			/* A disconnect or abort of its client kept for want
			 * of the database is tried again first (at most once
			 * a second). */
			if (d->retry && d->now_ms() - d->last_retry >= 1000 &&
			    has_job_of(d->retry, t->identity, t->identity_len))
				requeue_retries(d);
			if (!has_job_of(d->head, t->identity, t->identity_len) &&
			    !in_flight(d, t->identity, t->identity_len)) {
				d->connects_in_row++;
				return unlink_job(&d->chead, &d->ctail, prev, j);
			}
		}
	}
	d->connects_in_row = 0;
	return take_other(d);
}

static void ticket_unref(struct vp_defer_ticket *t)
{
	if (--t->refs)
		return;
	free(t->identity);
	free(t->names);
	free(t);
}

static void add_msg(struct vp_defer *d, struct msg *m)
{
	m->m.reason = m->reason;
	m->m.message = m->message;
	pthread_mutex_lock(&d->lock);
	m->next = NULL;
	if (d->msgs_tail)
		d->msgs_tail->next = m;
	else
		d->msgs = m;
	d->msgs_tail = m;
	pthread_mutex_unlock(&d->lock);
}

static void say(struct vp_defer *d, enum vp_defer_msg_type type, int error, const char *text,
		int64_t session, const uint8_t *id, size_t len)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (!m)
		return;
	m->m.type = type;
	m->m.error = error;
	m->m.session = session;
	snprintf(m->message, sizeof(m->message), "%s", text ? text : "");
	if (id && len <= sizeof(m->identity)) {
		memcpy(m->identity, id, len);
		m->m.ended.identity = m->identity;
		m->m.ended.identity_len = len;
	}
	add_msg(d, m);
}

/* The store failed for want of the database (not a refusal). */
static bool store_failure(int ret)
{
	return ret && ret != -ENOSPC && ret != -ENOENT && ret != -EINVAL && ret != -EAGAIN &&
	       ret != VP_DISCONNECT_MOVED && ret != -ECANCELED && ret != -EBUSY;
}

static const char *store_error(struct worker *w)
{
	return w->h ? w->d->ops->error(w->h) : "the store is not open";
}

/* A call's outcome, told when the store's state changes: a failure only
 * when it is news to the worker that met it (another worker's connection,
 * broken by the same outage, does not tell it again). */
static void note(struct worker *w, int ret)
{
	struct vp_defer *d = w->d;
	bool failed = store_failure(ret), tell = false;

	pthread_mutex_lock(&d->lock);
	if (failed && w->ok && d->store_ok) {
		d->store_ok = false;
		tell = true;
	} else if (!failed && !d->store_ok) {
		d->store_ok = true;
		tell = true;
		requeue_retries(d);
	}
	w->ok = !failed;
	pthread_mutex_unlock(&d->lock);
	if (tell)
		say(d, VP_DEFER_MSG_STORE, failed ? ret : 0, failed ? store_error(w) : "", 0, NULL,
		    0);
}

static void on_ended(void *ud, const struct vp_pg_ended *e)
{
	struct worker *w = ud;
	struct msg *m = calloc(1, sizeof(*m));

	if (!m)
		return;
	m->m.type = VP_DEFER_MSG_ENDED;
	m->m.ended = *e;
	snprintf(m->reason, sizeof(m->reason), "%s", w->ended_reason);
	snprintf(m->node, sizeof(m->node), "%s", e->node ? e->node : "");
	snprintf(m->instance, sizeof(m->instance), "%s", e->instance ? e->instance : "");
	m->m.ended.node = m->node;
	m->m.ended.instance = m->instance;
	m->m.ended.identity_len = e->identity_len <= sizeof(m->identity) ? e->identity_len : 0;
	memcpy(m->identity, e->identity, m->m.ended.identity_len);
	m->m.ended.identity = m->identity;
	add_msg(w->d, m);
}

/* ---- the workers ----------------------------------------------------------- */

static int open_store(struct worker *w)
{
	struct vp_defer *d = w->d;
	struct vp_pg_options o = { .config = d->config, .node = d->node, .instance = d->instance,
				   .timeout_ms = d->timeout_ms, .create_schema = true };
	int ret = d->ops->open(&w->h, &o);

	if (ret)
		w->h = NULL;
	return ret;
}

/* The first worker's open: its return code is the defer's. */
static void worker_open(struct worker *w)
{
	struct vp_defer *d = w->d;
	int ret = open_store(w);

	pthread_mutex_lock(&d->lock);
	d->opened = true;
	d->open_ret = ret;
	pthread_cond_broadcast(&d->answered);
	pthread_cond_broadcast(&d->wake);	/* the others open theirs */
	pthread_mutex_unlock(&d->lock);
}

/* The first worker starts the store; the others join it (no round trip). */
static void worker_start(struct worker *w)
{
	struct vp_defer *d = w->d;
	int ret;

	if (w->index) {
		pthread_mutex_lock(&d->lock);
		if (w->h && w->gen != d->start_gen) {
			w->gen = d->start_gen;
			w->started = !d->ops->join(w->h, d->w[0].h);
		}
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if (!w->h || w->started || !d->wk_has_server)
		return;
	w->ended_reason = "restart";
	ret = d->ops->start(w->h, &d->server, on_ended, w);
	note(w, ret);
	d->next_start = d->now_ms() + 1000;
	if (!ret) {
		w->started = true;
		d->next_beat = d->now_ms() + (int64_t)d->heartbeat_s * 1000;
		count(d, &d->stats.starts);
		pthread_mutex_lock(&d->lock);
		d->start_gen++;
		pthread_cond_broadcast(&d->wake);	/* the others join */
		pthread_mutex_unlock(&d->lock);
		say(d, VP_DEFER_MSG_STARTED, 0, "", 0, NULL, 0);
	}
}

static const char *ticket_getvar(void *ud, const char *name)
{
	const struct vp_defer_ticket *t = ud;

	for (size_t i = 0; i < t->n_vars; ++i)
		if (!strcmp(t->names[i], name))
			return t->values[i];
	return NULL;
}

/* Keep a disconnect or abort that failed for want of the database: tried
 * again at the next heartbeat. */
static void retry_later(struct vp_defer *d, struct job *j)
{
	pthread_mutex_lock(&d->lock);
	if (d->n_retry < RETRY_MAX) {
		push(&d->retry, &d->retry_tail, j);
		d->n_retry++;
		j = NULL;
	}
	pthread_mutex_unlock(&d->lock);
	free(j);
}

/* Under lock: w is done with its job; a job of that identity queued may
 * run now. */
static void job_done(struct vp_defer *d, struct worker *w)
{
	w->busy = false;
	if (d->queued > 1)
		pthread_cond_signal(&d->wake);
}

static void run_connect(struct worker *w, struct vp_defer_ticket *t, bool stopping)
{
	struct vp_defer *d = w->d;
	struct vp_request req = { .identity = t->identity, .identity_len = t->identity_len,
				  .getvar = ticket_getvar, .getvar_ud = t, .real = t->real };
	struct vp_pg_result r = { 0 };
	struct job *undo = NULL;
	bool skip, unsettled;
	int ret;

	pthread_mutex_lock(&d->lock);
	skip = t->abandoned || stopping;
	unsettled = has_job_of(d->retry, t->identity, t->identity_len);
	pthread_mutex_unlock(&d->lock);
	if (skip) {
		ret = -ECANCELED;
	} else if (unsettled) {
		/* An earlier connect of this client whose outcome is unknown
		 * is not undone yet: refused until it is (else the client
		 * would hold two leases). */
		ret = -EIO;
	} else if (!w->h) {
		ret = -ENOTCONN;
	} else {
		worker_start(w);
		ret = d->ops->connect(w->h, &req, t->session, &r);
		if (ret == -EAGAIN && !w->index && d->wk_has_server) {
			w->started = false;
			worker_start(w);
			ret = d->ops->connect(w->h, &req, t->session, &r);
		}
		count(d, &d->stats.connects);
		note(w, ret);
	}
	pthread_mutex_lock(&d->lock);
	t->done = true;
	t->ret = ret;
	t->result = r;
	snprintf(t->error, sizeof(t->error), "%s",
		 ret == -ECANCELED ? "the plugin is closing" :
		 unsettled ? "an earlier connect of this client is not undone yet" :
		 ret ? store_error(w) : "");
	/* Its outcome unknown (the answer lost), or nobody to use it: undone. */
	if (w->h && !t->undo && !unsettled && ((!ret && t->abandoned) || store_failure(ret))) {
		t->undo = true;
		undo = job_new(JOB_ABORT, t->identity, t->identity_len, 0, t->session);
	}
	if (undo)
		enqueue(d, undo);
	pthread_cond_broadcast(&d->answered);
	job_done(d, w);
	ticket_unref(t);
	pthread_mutex_unlock(&d->lock);
}

static void run_job(struct worker *w, struct job *j, bool stopping)
{
	struct vp_defer *d = w->d;
	int ret;

	if (j->kind == JOB_CONNECT) {
		run_connect(w, j->t, stopping);
		return;
	}
	if (!w->h) {
		ret = 0;
	} else if (j->kind == JOB_DISCONNECT) {
		ret = d->ops->disconnect(w->h, j->id, j->len, j->slot, j->session, NULL);
		count(d, &d->stats.disconnects);
	} else {
		ret = d->ops->abort(w->h, j->id, j->len, j->session);
		count(d, &d->stats.aborts);
		say(d, VP_DEFER_MSG_ABORTED, ret, ret ? store_error(w) : "", j->session, j->id,
		    j->len);
	}
	if (w->h)
		note(w, ret);
	if (w->h && store_failure(ret) && !stopping)
		retry_later(d, j);
	else
		free(j);
	pthread_mutex_lock(&d->lock);
	job_done(d, w);
	pthread_mutex_unlock(&d->lock);
}

/* Whether the first worker's heartbeat or start is due now. */
static bool timers_due(struct vp_defer *d, const struct worker *w)
{
	int64_t t = d->now_ms();

	if (w->h && w->started)
		return t >= d->next_beat;
	return w->h && d->wk_has_server && t >= d->next_start;
}

/* The first worker's: the heartbeat (and the crash-held sessions it finds),
 * the start not done yet, and the retries: when they are due. */
static void run_timers(struct worker *w)
{
	struct vp_defer *d = w->d;
	int64_t t = d->now_ms();
	int ret;

	if (w->h && d->wk_has_server && !w->started && t >= d->next_start)
		worker_start(w);
	if (!w->h || !w->started || t < d->next_beat)
		return;
	d->next_beat = t + (int64_t)d->heartbeat_s * 1000;
	w->ended_reason = "crash";
	ret = d->ops->heartbeat(w->h, on_ended, w);
	count(d, &d->stats.heartbeats);
	note(w, ret);
	if (store_failure(ret))
		return;
	pthread_mutex_lock(&d->lock);
	requeue_retries(d);
	pthread_mutex_unlock(&d->lock);
}

static void wait_ms(struct vp_defer *d, int64_t ms)
{
	struct timespec ts;

	if (ms > WAIT_MAX_MS)
		ms = WAIT_MAX_MS;
	if (ms < 1)
		ms = 1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&d->wake, &d->lock, &ts);
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct vp_defer *d = w->d;
	bool timed = false;
	struct job *j;
	const uint8_t *id;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		if (!w->index && d->open_asked && !d->opened) {
			pthread_mutex_unlock(&d->lock);
			worker_open(w);
			pthread_mutex_lock(&d->lock);
			continue;
		}
		/* The others open theirs once the first's open worked. */
		if (w->index && !w->tried_open && d->opened && !d->open_ret && !d->stop) {
			w->tried_open = true;
			pthread_mutex_unlock(&d->lock);
			open_store(w);
			pthread_mutex_lock(&d->lock);
			continue;
		}
		if (!w->index && d->has_server && !d->wk_has_server)
			d->wk_has_server = true;	/* d->server is set for good */
		if (w->index && w->h && w->gen != d->start_gen) {
			pthread_mutex_unlock(&d->lock);
			worker_start(w);
			pthread_mutex_lock(&d->lock);
		}
		if (d->stop && ((!d->head && !d->chead) || d->now_ms() >= d->stop_by ||
				(w->index && !w->h)))
			break;
		/* The first's timers when due, also while jobs keep coming:
		 * a heartbeat late by a busy queue would get this live
		 * server taken for dead by the others. */
		if (!w->index && timers_due(d, w)) {
			pthread_mutex_unlock(&d->lock);
			run_timers(w);
			pthread_mutex_lock(&d->lock);
			continue;
		}
		/* A worker without a store (its open failed) leaves the jobs
		 * to the others; the first answers them without one. */
		j = w->index && !w->h ? NULL : take(d, w);
		if (j) {
			d->queued--;
			id = job_id(j, &w->cur_len);
			memcpy(w->cur, id, w->cur_len);
			w->busy = true;
			pthread_mutex_unlock(&d->lock);
			run_job(w, j, d->stop);
			pthread_mutex_lock(&d->lock);
			timed = false;
			continue;
		}
		/* The first runs its timers, then looks at the queues again
		 * (jobs queued meanwhile) before it waits. */
		if (!w->index && !timed) {
			pthread_mutex_unlock(&d->lock);
			run_timers(w);
			pthread_mutex_lock(&d->lock);
			timed = true;
			continue;
		}
		timed = false;
		if (!(d->open_asked && !d->opened && !w->index))
			wait_ms(d, !w->index && w->started ? d->next_beat - d->now_ms() : 1000);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ---- the main thread ------------------------------------------------------- */

static void destroy(struct vp_defer *d)
{
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->wake);
	pthread_cond_destroy(&d->answered);
	free(d->w);
	free(d->node);
	free(d);
}

int vp_defer_open(struct vp_defer **out, const struct vp_defer_options *opts,
		  const char *instance)
{
	struct vp_defer *d = calloc(1, sizeof(*d));
	struct timespec rt;
	pthread_condattr_t ca;
	int ret = 0;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->ops = opts->ops;
	d->config = opts->config;
	d->node = strdup(opts->node ? opts->node : "");
	d->timeout_ms = opts->timeout_ms ? opts->timeout_ms : opts->config->store_timeout_ms;
	if (!d->timeout_ms)
		d->timeout_ms = 5000;
	d->heartbeat_s = opts->heartbeat_s;
	if (!d->heartbeat_s)
		d->heartbeat_s = opts->config->node_timeout / 3 > 1 ?
				 (unsigned)(opts->config->node_timeout / 3) : 1;
	d->now_ms = opts->now_ms ? opts->now_ms : mono_ms;
	d->store_ok = true;
	d->n_workers = opts->workers ? opts->workers : VP_DEFER_WORKERS;
	if (d->n_workers > 64)
		d->n_workers = 64;
	if (!d->ops->join)
		d->n_workers = 1;
	d->w = calloc(d->n_workers, sizeof(*d->w));
	clock_gettime(CLOCK_REALTIME, &rt);
	/* Milliseconds since 2024-01-01, a counter of 22 bits beside them:
	 * unique over restarts, and positive until 2093. */
	atomic_init(&d->next_session,
		    ((int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000 - INT64_C(1704067200000)) << 22);
	if (!d->node || !d->w) {
		free(d->w);
		free(d->node);
		free(d);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->wake, &ca);
	pthread_cond_init(&d->answered, &ca);
	pthread_condattr_destroy(&ca);
	if (instance) {
		snprintf(d->instance, sizeof(d->instance), "%s", instance);
		d->open_asked = true;
	}
	for (unsigned i = 0; i < d->n_workers; ++i) {
		d->w[i] = (struct worker){ .d = d, .index = i, .ok = true };
		ret = -pthread_create(&d->w[i].thread, NULL, worker, &d->w[i]);
		if (ret)
			break;
		d->w[i].running = true;
	}
	if (ret && !d->w[0].running) {
		destroy(d);
		return ret;
	}
	if (ret) {
		vp_defer_close(d);
		return ret;
	}
	if (instance) {
		pthread_mutex_lock(&d->lock);
		while (!d->opened)
			pthread_cond_wait(&d->answered, &d->lock);
		ret = d->open_ret;
		pthread_mutex_unlock(&d->lock);
		if (ret) {
			vp_defer_close(d);
			return ret;
		}
	}
	*out = d;
	return 0;
}

void vp_defer_close(struct vp_defer *d)
{
	struct msg *m;
	struct job *j;

	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	d->stop_by = d->now_ms() + d->timeout_ms;
	requeue_retries(d);	/* tried once more */
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->n_workers; ++i)
		if (d->w[i].running)
			pthread_join(d->w[i].thread, NULL);
	/* Past the time given: what is left is dropped (a connect's ticket
	 * answered as cancelled). */
	while ((j = pop(&d->chead, &d->ctail))) {
		j->t->done = true;
		j->t->ret = -ECANCELED;
		ticket_unref(j->t);
	}
	while ((j = pop(&d->head, &d->tail)))
		free(j);
	while ((j = pop(&d->retry, &d->retry_tail)))
		free(j);
	for (unsigned i = 0; i < d->n_workers; ++i)
		if (d->w[i].h)
			d->ops->close(d->w[i].h);
	while ((m = d->msgs)) {
		d->msgs = m->next;
		free(m);
	}
	destroy(d);
}

int vp_defer_start(struct vp_defer *d, const struct vp_server *server, const char *instance,
		   bool wait)
{
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	if (d->has_server) {
		pthread_mutex_unlock(&d->lock);
		return -EALREADY;
	}
	d->server = *server;
	d->has_server = true;
	if (!d->open_asked) {
		snprintf(d->instance, sizeof(d->instance), "%s", instance ? instance : "");
		d->open_asked = true;
	}
	pthread_cond_signal(&d->wake);
	while (wait && !d->opened)
		pthread_cond_wait(&d->answered, &d->lock);
	if (wait)
		ret = d->open_ret;
	pthread_mutex_unlock(&d->lock);
	return ret;
}

int64_t vp_defer_session_id(struct vp_defer *d)
{
	return atomic_fetch_add(&d->next_session, 1);
}

/* The names of every variable a match list reads. */
static size_t match_names(const struct vp_config *c, const char **names)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n_pools; ++i)
		for (size_t k = 0; k < c->pools[i].n_match; ++k)
			if (names)
				names[n++] = c->pools[i].match[k].var;
			else
				n++;
	for (size_t i = 0; i < c->n_routers; ++i)
		for (size_t k = 0; k < c->routers[i].n_match; ++k)
			if (names)
				names[n++] = c->routers[i].match[k].var;
			else
				n++;
	return n;
}

struct vp_defer_ticket *vp_defer_connect(struct vp_defer *d, const struct vp_request *req,
					 int64_t session)
{
	struct vp_defer_ticket *t = calloc(1, sizeof(*t));
	size_t n = match_names(d->config, NULL), bytes = req->identity_len + 1;
	const char *v;
	char *text;

	if (!t)
		return NULL;
	t->names = calloc(2 * n + 1, sizeof(*t->names));
	if (!t->names) {
		free(t);
		return NULL;
	}
	t->values = t->names + n;
	match_names(d->config, t->names);
	/* Names point into the config; values, with the identity, into one
	 * block. */
	for (size_t i = 0; i < n; ++i) {
		v = req->getvar ? req->getvar(req->getvar_ud, t->names[i]) : NULL;
		bytes += v ? strlen(v) + 1 : 0;
	}
	t->identity = malloc(bytes);
	if (!t->identity) {
		free(t->names);
		free(t);
		return NULL;
	}
	if (req->identity_len)
		memcpy(t->identity, req->identity, req->identity_len);
	t->identity[req->identity_len] = 0;
	t->identity_len = req->identity_len;
	text = (char *)t->identity + req->identity_len + 1;
	for (size_t i = 0; i < n; ++i) {
		v = req->getvar ? req->getvar(req->getvar_ud, t->names[i]) : NULL;
		if (!v)
			continue;
		t->values[t->n_vars] = text;
		t->names[t->n_vars] = t->names[i];
		strcpy(text, v);
		text += strlen(v) + 1;
		t->n_vars++;
	}
	snprintf(t->real, sizeof(t->real), "%s", req->real ? req->real : "");
	t->session = session;
	t->deadline = d->now_ms() + d->timeout_ms;
	t->refs = 2;
	t->job.kind = JOB_CONNECT;
	t->job.t = t;
	pthread_mutex_lock(&d->lock);
	enqueue(d, &t->job);
	pthread_mutex_unlock(&d->lock);
	return t;
}

enum vp_defer_state vp_defer_poll(struct vp_defer *d, struct vp_defer_ticket *t, int *ret,
				  struct vp_pg_result *result, const char **error)
{
	enum vp_defer_state s;

	pthread_mutex_lock(&d->lock);
	if (t->timed_out) {
		s = VP_DEFER_TIMEOUT;
	} else if (t->done) {
		s = VP_DEFER_DONE;
		*ret = t->ret;
		if (result)
			*result = t->result;
		if (error)
			*error = t->error;
	} else if (d->now_ms() >= t->deadline) {
		s = VP_DEFER_TIMEOUT;
		t->timed_out = true;
		t->abandoned = true;
	} else {
		s = VP_DEFER_PENDING;
	}
	pthread_mutex_unlock(&d->lock);
	return s;
}

void vp_defer_put(struct vp_defer *d, struct vp_defer_ticket *t, bool used)
{
	struct job *undo = NULL;

	if (!t)
		return;
	pthread_mutex_lock(&d->lock);
	if (!used) {
		t->abandoned = true;
		if (t->done && !t->ret && !t->undo) {
			t->undo = true;
			undo = job_new(JOB_ABORT, t->identity, t->identity_len, 0, t->session);
			if (undo)
				enqueue(d, undo);
		}
	}
	ticket_unref(t);
	pthread_mutex_unlock(&d->lock);
}

int vp_defer_disconnect(struct vp_defer *d, const uint8_t *id, size_t len, uint16_t slot,
			int64_t session)
{
	struct job *j = job_new(JOB_DISCONNECT, id, len, slot, session);

	if (!j)
		return -ENOMEM;
	pthread_mutex_lock(&d->lock);
	enqueue(d, j);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

size_t vp_defer_messages(struct vp_defer *d, void (*fn)(void *ud, const struct vp_defer_msg *m),
			 void *ud)
{
	struct msg *m, *next;
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	m = d->msgs;
	d->msgs = d->msgs_tail = NULL;
	pthread_mutex_unlock(&d->lock);
	for (; m; m = next, ++n) {
		next = m->next;
		fn(ud, &m->m);
		free(m);
	}
	return n;
}

void vp_defer_stats(struct vp_defer *d, struct vp_defer_stats *out)
{
	pthread_mutex_lock(&d->lock);
	*out = d->stats;
	out->queued = d->queued;
	pthread_mutex_unlock(&d->lock);
}
