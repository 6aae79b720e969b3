/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vpnpool usage: the usage log summarised per identity. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "conf/load.h"
#include "core/htab.h"

#define ADD_LIT(b, lit) vp_strbuf_add(b, "" lit, sizeof(lit) - 1)

struct who {
	char *id;
	size_t len;
	uint64_t sessions, seconds, rx, tx, rejects, drops;
	int64_t last;
};

/* Refusals by reason and pool, leases dropped at reload by reason, warnings
 * by pool and threshold. */
struct tally {
	char *reason, *pool;		/* pool may be "" */
	unsigned percent;
	uint64_t count;
	int64_t last;
};

struct summary {
	int64_t since;
	bool has_since;
	struct who *who;
	size_t n_who, cap_who;
	struct vp_htab by_id;		/* items: index into who + 1 */
	struct tally *rej, *warn, *drop;
	size_t n_rej, n_warn, n_drop;
	uint64_t lines, events, malformed, reclaims;
	int64_t first, last;
};

/* ---- reading the files ------------------------------------------------------ */

/* A .gz file through "gzip -dc" (no shell: the name is passed as it is). */
static FILE *open_gz(const char *path, pid_t *pid)
{
	int fds[2];

	if (pipe(fds))
		return NULL;
	*pid = fork();
	if (*pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (*pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execlp("gzip", "gzip", "-dc", "--", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	return fdopen(fds[0], "r");
}

static uint64_t fnv(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; ++i)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

/* The items of by_id are indexes (+ 1, never NULL) into who, which moves as
 * it grows. */
struct who_key {
	const struct summary *s;
	const char *id;
	size_t len;
};

static bool who_eq(const void *item, const void *key)
{
	const struct who_key *k = key;
	const struct who *w = &k->s->who[(uintptr_t)item - 1];

	return w->len == k->len && !memcmp(w->id, k->id, k->len);
}

static struct who *who_get(struct summary *s, const char *id, size_t len)
{
	struct who_key k = { s, id, len };
	uint64_t h = fnv(id, len);
	uintptr_t found = (uintptr_t)vp_htab_find(&s->by_id, h, who_eq, &k);
	struct who *w;

	if (found)
		return &s->who[found - 1];
	if (s->n_who == s->cap_who) {
		size_t cap = s->cap_who ? s->cap_who * 2 : 64;
		struct who *n = realloc(s->who, cap * sizeof(*n));

		if (!n)
			return NULL;
		s->who = n;
		s->cap_who = cap;
	}
	w = &s->who[s->n_who];
	memset(w, 0, sizeof(*w));
	w->id = malloc(len + 1);
	if (!w->id)
		return NULL;
	memcpy(w->id, id, len);
	w->id[len] = '\0';
	w->len = len;
	if (vp_htab_insert(&s->by_id, h, (void *)(uintptr_t)(s->n_who + 1))) {
		free(w->id);
		return NULL;
	}
	s->n_who++;
	return w;
}

static struct tally *tally_get(struct tally **list, size_t *n, const char *reason,
			       const char *pool, unsigned percent)
{
	struct tally *t;

	for (size_t i = 0; i < *n; ++i) {
		t = &(*list)[i];
		if (!strcmp(t->reason, reason) && !strcmp(t->pool, pool) && t->percent == percent)
			return t;
	}
	t = realloc(*list, (*n + 1) * sizeof(*t));
	if (!t)
		return NULL;
	*list = t;
	t = &t[*n];
	memset(t, 0, sizeof(*t));
	t->reason = strdup(reason);
	t->pool = strdup(pool);
	t->percent = percent;
	if (!t->reason || !t->pool) {
		free(t->reason);
		free(t->pool);
		return NULL;
	}
	++*n;
	return t;
}

/* The fields of one line that the summary uses. */
struct event {
	int64_t time;
	char name[16];
	struct vp_strbuf identity;
	char pool[256], reason[64];
	uint64_t duration, rx, tx, percent;
	bool has_time, has_identity;
};

static uint64_t to_u64(const struct vp_strbuf *v)
{
	return v->len ? strtoull(v->s, NULL, 10) : 0;
}

static bool parse_line(const char *line, struct event *ev, struct vp_strbuf *val)
{
	char key[32];
	const char *cur = line;

	vp_strbuf_reset(&ev->identity);
	ev->name[0] = ev->pool[0] = ev->reason[0] = '\0';
	ev->duration = ev->rx = ev->tx = ev->percent = 0;
	ev->has_time = ev->has_identity = false;
	while (vp_logfmt_next(&cur, key, sizeof(key), val)) {
		if (!strcmp(key, "time"))
			ev->has_time = vp_parse_time(val->s, 0, &ev->time);
		else if (!strcmp(key, "event"))
			snprintf(ev->name, sizeof(ev->name), "%s", val->s);
		else if (!strcmp(key, "identity")) {
			vp_strbuf_add(&ev->identity, val->s, val->len);
			ev->has_identity = true;
		} else if (!strcmp(key, "pool"))
			snprintf(ev->pool, sizeof(ev->pool), "%s", val->s);
		else if (!strcmp(key, "reason"))
			snprintf(ev->reason, sizeof(ev->reason), "%s", val->s);
		else if (!strcmp(key, "duration"))
			ev->duration = to_u64(val);
		else if (!strcmp(key, "bytes_received"))
			ev->rx = to_u64(val);
		else if (!strcmp(key, "bytes_sent"))
			ev->tx = to_u64(val);
		else if (!strcmp(key, "percent"))
			ev->percent = to_u64(val);
	}
	while (*cur == ' ')
		cur++;
	return ev->has_time && ev->name[0] && (*cur == '\0' || *cur == '\n' || *cur == '\r');
}

static int account(struct summary *s, const struct event *ev)
{
	struct who *w = NULL;
	struct tally *t;

	if (s->has_since && ev->time < s->since)
		return 0;
	s->events++;
	if (!s->first || ev->time < s->first)
		s->first = ev->time;
	if (ev->time > s->last)
		s->last = ev->time;
	if (ev->has_identity && ev->identity.len) {
		w = who_get(s, ev->identity.s, ev->identity.len);
		if (!w)
			return -ENOMEM;
		if (ev->time > w->last)
			w->last = ev->time;
	}
	if (!strcmp(ev->name, "connect") && w) {
		w->sessions++;
	} else if (!strcmp(ev->name, "disconnect") && w) {
		w->seconds += ev->duration;
		w->rx += ev->rx;
		w->tx += ev->tx;
	} else if (!strcmp(ev->name, "reject")) {
		if (w)
			w->rejects++;
		t = tally_get(&s->rej, &s->n_rej, ev->reason[0] ? ev->reason : "unknown", ev->pool, 0);
		if (!t)
			return -ENOMEM;
		t->count++;
		if (ev->time > t->last)
			t->last = ev->time;
	} else if (!strcmp(ev->name, "warn")) {
		t = tally_get(&s->warn, &s->n_warn, "warn", ev->pool, (unsigned)ev->percent);
		if (!t)
			return -ENOMEM;
		t->count++;
		if (ev->time > t->last)
			t->last = ev->time;
	} else if (!strcmp(ev->name, "drop")) {
		if (w)
			w->drops++;
		t = tally_get(&s->drop, &s->n_drop, ev->reason[0] ? ev->reason : "unknown", "", 0);
		if (!t)
			return -ENOMEM;
		t->count++;
		if (ev->time > t->last)
			t->last = ev->time;
	} else if (!strcmp(ev->name, "reclaim")) {
		s->reclaims++;
	}
	return 0;
}

static int read_file(struct summary *s, const char *path)
{
	size_t len = strlen(path);
	bool gz = len > 3 && !strcmp(path + len - 3, ".gz");
	pid_t pid = -1;
	FILE *f = gz ? open_gz(path, &pid) : fopen(path, "r");
	struct vp_strbuf val = { 0 };
	struct event ev = { 0 };
	char *line = NULL;
	size_t cap = 0;
	int ret = 0, status;

	if (!f) {
		vp_cli_error("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while (!ret && getline(&line, &cap, f) > 0) {
		s->lines++;
		if (!parse_line(line, &ev, &val))
			s->malformed++;
		else
			ret = account(s, &ev);
	}
	if (ret)
		vp_cli_error("%s: %s", path, strerror(-ret));
	fclose(f);
	if (pid > 0 && waitpid(pid, &status, 0) == pid &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		vp_cli_error("gzip -dc %s failed", path);
		ret = -1;
	}
	free(line);
	vp_strbuf_free(&val);
	vp_strbuf_free(&ev.identity);
	return ret ? -1 : 0;
}

/* FILE, or with rotated: FILE.N(.gz) ... FILE.1(.gz), FILE (oldest first). */
static char **file_list(const char *log, bool rotated, size_t *n)
{
	char **list = calloc(1002, sizeof(*list)), path[4096];
	struct stat st;
	size_t k = 0, count = 0;

	if (!list)
		return NULL;
	while (rotated && k < 1000) {
		snprintf(path, sizeof(path), "%s.%zu", log, k + 1);
		if (stat(path, &st)) {
			snprintf(path, sizeof(path), "%s.%zu.gz", log, k + 1);
			if (stat(path, &st))
				break;
		}
		k++;
	}
	for (; k > 0; --k) {
		snprintf(path, sizeof(path), "%s.%zu", log, k);
		if (stat(path, &st))
			snprintf(path, sizeof(path), "%s.%zu.gz", log, k);
		list[count++] = strdup(path);
	}
	list[count++] = strdup(log);
	*n = count;
	return list;
}

/* ---- output ---------------------------------------------------------------------- */

static int by_time_online(const void *a, const void *b)
{
	const struct who *x = a, *y = b;
	int c;

	if (x->seconds != y->seconds)
		return x->seconds > y->seconds ? -1 : 1;
	if (x->sessions != y->sessions)
		return x->sessions > y->sessions ? -1 : 1;
	c = memcmp(x->id, y->id, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void print_tables(const struct summary *s, char **files, size_t n_files)
{
	static const char *const h1[] = { "IDENTITY", ">SESSIONS", ">ONLINE", ">RECEIVED", ">SENT",
					  ">REFUSED", "LAST SEEN (UTC)" };
	/* with a column of leases dropped at reload, when there are any */
	static const char *const h1d[] = { "IDENTITY", ">SESSIONS", ">ONLINE", ">RECEIVED", ">SENT",
					   ">REFUSED", ">DROPPED", "LAST SEEN (UTC)" };
	static const char *const h2[] = { "REFUSED", "POOL", ">COUNT", "LAST (UTC)" };
	static const char *const h3[] = { "WARNING", "POOL", ">COUNT", "LAST (UTC)" };
	static const char *const h4[] = { "DROPPED AT RELOAD", ">COUNT", "LAST (UTC)" };
	const struct tally *lists[] = { s->rej, s->warn, s->drop };
	const size_t counts[] = { s->n_rej, s->n_warn, s->n_drop };
	const char *const *heads[] = { h2, h3, h4 };
	bool drops = s->n_drop > 0;
	struct vp_strbuf cell = { 0 }, cell2 = { 0 };
	char t1[VP_FMT_LEN], t2[VP_FMT_LEN];
	struct vp_table *t;

	printf("%s%s: %llu events", files[0], n_files > 1 ? " and newer" : "",
	       (unsigned long long)s->events);
	if (s->events)
		printf(" from %s to %s UTC", vp_fmt_time_short(s->first, t1),
		       vp_fmt_time_short(s->last, t2));
	if (s->malformed)
		printf(", %llu lines not understood", (unsigned long long)s->malformed);
	printf("\n");
	if (s->n_who && (t = vp_table_new(drops ? 8 : 7, drops ? h1d : h1))) {
		putchar('\n');
		for (size_t i = 0; i < s->n_who; ++i) {
			const struct who *w = &s->who[i];
			char ses[24], on[VP_FMT_LEN], rx[VP_FMT_LEN], tx[VP_FMT_LEN], rej[24], drop[24],
				last[VP_FMT_LEN];
			const char *row[] = { vp_fmt_cell(&cell, w->id, w->len), ses,
					      vp_fmt_duration((int64_t)w->seconds, on), vp_fmt_bytes(w->rx, rx),
					      vp_fmt_bytes(w->tx, tx), rej, drops ? drop : last,
					      vp_fmt_time_short(w->last, last) };

			snprintf(ses, sizeof(ses), "%llu", (unsigned long long)w->sessions);
			snprintf(rej, sizeof(rej), "%llu", (unsigned long long)w->rejects);
			snprintf(drop, sizeof(drop), "%llu", (unsigned long long)w->drops);
			vp_table_row(t, row);
		}
		vp_table_print(t, stdout);
		vp_table_free(t);
	}
	for (int k = 0; k < 3; ++k) {
		const struct tally *list = lists[k];
		size_t n = counts[k];

		/* drops name no pool: three columns */
		if (!n || !(t = vp_table_new(k == 2 ? 3 : 4, heads[k])))
			continue;
		putchar('\n');
		for (size_t i = 0; i < n; ++i) {
			char full[24], cnt[24], last[VP_FMT_LEN];
			/* Reasons and pool names come from the log as they are:
			 * quoted and escaped like identities. */
			const char *row[] = {
				k == 1 ? full : vp_fmt_cell(&cell, list[i].reason, strlen(list[i].reason)),
				list[i].pool[0] ? vp_fmt_cell(&cell2, list[i].pool, strlen(list[i].pool)) :
						  "-",
				cnt, vp_fmt_time_short(list[i].last, last)
			};
			const char *row3[] = { row[0], row[2], row[3] };

			if (k == 1)
				snprintf(full, sizeof(full), "%u%% full", list[i].percent);
			snprintf(cnt, sizeof(cnt), "%llu", (unsigned long long)list[i].count);
			vp_table_row(t, k == 2 ? row3 : row);
		}
		vp_table_print(t, stdout);
		vp_table_free(t);
	}
	if (s->reclaims)
		printf("\n%llu lease%s reclaimed from clients offline longest\n",
		       (unsigned long long)s->reclaims, s->reclaims == 1 ? "" : "s");
	vp_strbuf_free(&cell);
	vp_strbuf_free(&cell2);
}

static void json_tally(struct vp_strbuf *b, const char *key, const struct tally *list, size_t n,
		       bool warn)
{
	char t[VP_FMT_LEN];

	vp_strbuf_addf(b, ",\"%s\":[", key);
	for (size_t i = 0; i < n; ++i) {
		vp_strbuf_add(b, i ? ",{" : "{", i ? 2 : 1);
		if (warn)
			vp_strbuf_addf(b, "\"percent\":%u", list[i].percent);
		else {
			ADD_LIT(b, "\"reason\":");
			vp_json_adds(b, list[i].reason);
		}
		ADD_LIT(b, ",\"pool\":");
		vp_json_adds(b, list[i].pool[0] ? list[i].pool : NULL);
		vp_strbuf_addf(b, ",\"count\":%llu,\"last\":\"%s\"}", (unsigned long long)list[i].count,
			       vp_fmt_time(list[i].last, t));
	}
	ADD_LIT(b, "]");
}

static void print_json(const struct summary *s, char **files, size_t n_files)
{
	struct vp_strbuf b = { 0 };
	char t[VP_FMT_LEN];

	ADD_LIT(&b, "{\"files\":[");
	for (size_t i = 0; i < n_files; ++i) {
		if (i)
			ADD_LIT(&b, ",");
		vp_json_adds(&b, files[i]);
	}
	ADD_LIT(&b, "],\"since\":");
	if (s->has_since)
		vp_strbuf_addf(&b, "\"%s\"", vp_fmt_time(s->since, t));
	else
		ADD_LIT(&b, "null");
	vp_strbuf_addf(&b, ",\"lines\":%llu,\"events\":%llu,\"malformed\":%llu,\"reclaims\":%llu",
		       (unsigned long long)s->lines, (unsigned long long)s->events,
		       (unsigned long long)s->malformed, (unsigned long long)s->reclaims);
	vp_strbuf_addf(&b, ",\"first\":%s%s%s", s->events ? "\"" : "",
		       s->events ? vp_fmt_time(s->first, t) : "null", s->events ? "\"" : "");
	vp_strbuf_addf(&b, ",\"last\":%s%s%s", s->events ? "\"" : "",
		       s->events ? vp_fmt_time(s->last, t) : "null", s->events ? "\"" : "");
	ADD_LIT(&b, ",\"identities\":[");
	for (size_t i = 0; i < s->n_who; ++i) {
		const struct who *w = &s->who[i];

		if (i)
			ADD_LIT(&b, ",");
		ADD_LIT(&b, "\n{\"identity\":");
		vp_json_add(&b, w->id, w->len);
		vp_strbuf_addf(&b, ",\"sessions\":%llu,\"seconds_online\":%llu,\"bytes_received\":%llu,\"bytes_sent\":%llu,\"rejects\":%llu,\"drops\":%llu,\"last_seen\":\"%s\"}",
			       (unsigned long long)w->sessions, (unsigned long long)w->seconds,
			       (unsigned long long)w->rx, (unsigned long long)w->tx,
			       (unsigned long long)w->rejects, (unsigned long long)w->drops,
			       vp_fmt_time(w->last, t));
		fwrite(b.s, 1, b.len, stdout);
		vp_strbuf_reset(&b);
	}
	ADD_LIT(&b, "]");
	json_tally(&b, "rejects", s->rej, s->n_rej, false);
	json_tally(&b, "warnings", s->warn, s->n_warn, true);
	json_tally(&b, "drops", s->drop, s->n_drop, false);
	ADD_LIT(&b, "}\n");
	fwrite(b.s, 1, b.len, stdout);
	vp_strbuf_free(&b);
}

static void summary_free(struct summary *s)
{
	for (size_t i = 0; i < s->n_who; ++i)
		free(s->who[i].id);
	for (size_t i = 0; i < s->n_rej; ++i) {
		free(s->rej[i].reason);
		free(s->rej[i].pool);
	}
	for (size_t i = 0; i < s->n_warn; ++i) {
		free(s->warn[i].reason);
		free(s->warn[i].pool);
	}
	for (size_t i = 0; i < s->n_drop; ++i) {
		free(s->drop[i].reason);
		free(s->drop[i].pool);
	}
	free(s->who);
	vp_htab_free(&s->by_id);
	free(s->rej);
	free(s->warn);
	free(s->drop);
}

int vp_cmd_usage(const struct vp_cli *cli, int argc, char **argv)
{
	struct summary s = { 0 };
	struct vp_config c = { 0 };
	const char *log = NULL;
	bool json = false, rotated = false, loaded = false;
	char **files = NULL, err[2048];
	size_t n_files = 0;
	int ret = VP_EXIT_FAIL;

	for (int i = 1; i < argc; ++i) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--rotated")) {
			rotated = true;
		} else if (!strcmp(argv[i], "--log") && i + 1 < argc) {
			log = argv[++i];
		} else if (!strcmp(argv[i], "--since") && i + 1 < argc) {
			s.has_since = true;
			if (!vp_parse_time(argv[++i], (int64_t)time(NULL), &s.since)) {
				vp_cli_error("usage: --since: `%s' is not a time (2026-11-25, \"2026-11-25 04:00\", @UNIXTIME, 12h, 7d)",
					     argv[i]);
				return VP_EXIT_USAGE;
			}
		} else {
			vp_cli_error("usage: unexpected argument `%s' (try vpnpool usage --help)", argv[i]);
			return VP_EXIT_USAGE;
		}
	}
	if (!log) {
		if (vp_conf_load(&c, cli->config_path, err, sizeof(err))) {
			fprintf(stderr, "%s\n", err);
			return VP_EXIT_FAIL;
		}
		loaded = true;
		if (!c.usage_log) {
			vp_cli_error("%s turns the usage log off (usage-log = \"\"); name one with --log FILE",
				     cli->config_path);
			goto out;
		}
		log = c.usage_log;
	}
	files = file_list(log, rotated, &n_files);
	if (!files)
		goto out;
	for (size_t i = 0; i < n_files; ++i)
		if (!files[i] || read_file(&s, files[i]))
			goto out;
	if (s.n_who)	/* qsort(NULL, 0, ...) is undefined */
		qsort(s.who, s.n_who, sizeof(*s.who), by_time_online);
	if (json)
		print_json(&s, files, n_files);
	else
		print_tables(&s, files, n_files);
	ret = fflush(stdout) ? VP_EXIT_FAIL : VP_EXIT_OK;
out:
	for (size_t i = 0; files && i < n_files; ++i)
		free(files[i]);
	free(files);
	summary_free(&s);
	if (loaded)
		vp_config_free(&c);
	return ret;
}
