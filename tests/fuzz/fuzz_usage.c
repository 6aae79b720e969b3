/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `vpnpool usage` over any usage log: the input is the log file.  The JSON
 * output must be one valid JSON document (strings valid UTF-8, no raw
 * control bytes), the tables nothing but printable text and newlines, and
 * both runs must succeed: a log line the reader cannot make sense of is
 * counted as malformed, never fatal.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fuzz.h"

/* What cli/main.c gives the subcommands. */
void vp_cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool vp_cli_wants_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return false;
}

/* ---- a strict JSON reader (RFC 8259), just enough to say yes or no ---- */

struct json {
	const unsigned char *p, *end;
	int depth;
};

static void skip_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

static bool lit(struct json *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n))
		return false;
	j->p += n;
	return true;
}

static bool utf8_seq(struct json *j)
{
	unsigned char c = *j->p;
	size_t n = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 :
		   c >= 0xf0 && c < 0xf5 ? 4 : 0;

	if (!n || (size_t)(j->end - j->p) < n)
		return false;
	for (size_t k = 1; k < n; ++k)
		if ((j->p[k] & 0xc0) != 0x80)
			return false;
	j->p += n;
	return true;
}

static bool string(struct json *j)
{
	if (j->p >= j->end || *j->p++ != '"')
		return false;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p < 0x20)
			return false;
		if (*j->p == '\\') {
			j->p++;
			if (j->p >= j->end)
				return false;
			if (*j->p == 'u') {
				if (j->end - j->p < 5)
					return false;
				for (int k = 1; k <= 4; ++k)
					if (!strchr("0123456789abcdefABCDEF", j->p[k]) || !j->p[k])
						return false;
				j->p += 5;
			} else if (strchr("\"\\/bfnrt", *j->p) && *j->p) {
				j->p++;
			} else {
				return false;
			}
		} else if (!utf8_seq(j)) {
			return false;
		}
	}
	if (j->p >= j->end)
		return false;
	j->p++;
	return true;
}

static bool number(struct json *j)
{
	const unsigned char *start = j->p;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	return j->p > start && j->p[-1] != '-' && j->p[-1] != '.';
}

static bool value(struct json *j);

static bool members(struct json *j, char close, bool keyed)
{
	j->p++;
	skip_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		skip_ws(j);
		if (keyed) {
			if (!string(j))
				return false;
			skip_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return false;
		}
		if (!value(j))
			return false;
		skip_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			return true;
		}
		return false;
	}
}

static bool value(struct json *j)
{
	bool ok;

	skip_ws(j);
	if (j->p >= j->end || ++j->depth > 64)
		return false;
	switch (*j->p) {
	case '{': ok = members(j, '}', true); break;
	case '[': ok = members(j, ']', false); break;
	case '"': ok = string(j); break;
	case 't': ok = lit(j, "true"); break;
	case 'f': ok = lit(j, "false"); break;
	case 'n': ok = lit(j, "null"); break;
	default: ok = number(j); break;
	}
	j->depth--;
	return ok;
}

static bool json_valid(const char *text, size_t len)
{
	struct json j = { (const unsigned char *)text, (const unsigned char *)text + len, 0 };

	if (!value(&j))
		return false;
	skip_ws(&j);
	return j.p == j.end;
}

/* ---- the target ------------------------------------------------------------ */

static char out_path[4200];

/* Run `vpnpool usage --log LOG [--json]` with its standard output going to
 * out_path (the process's own is put back after); that output. */
static char *run_usage(const char *log, bool json, size_t *len)
{
	struct vp_cli cli = { .config_path = "/nonexistent/vpnpool.conf", .prog = "vpnpool" };
	char a0[] = "usage", a1[] = "--log", a3[] = "--json", *a2 = strdup(log);
	char *argv[] = { a0, a1, a2, json ? a3 : NULL, NULL };
	int saved, fd, ret;

	FUZZ_CHECK(a2 != NULL);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(saved >= 0 && fd >= 0 && dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
	close(fd);
	ret = vp_cmd_usage(&cli, json ? 4 : 3, argv);
	fflush(stdout);
	FUZZ_CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
	close(saved);
	free(a2);
	FUZZ_CHECK(ret == VP_EXIT_OK);
	return fuzz_read_file(out_path, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *dir = fuzz_dir();
	char log[4200], *out;
	size_t len;

	snprintf(log, sizeof(log), "%s/usage.log", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	fuzz_write_file(dir, "usage.log", data, size);

	out = run_usage(log, true, &len);
	FUZZ_CHECK(out != NULL);
	FUZZ_CHECK(json_valid(out, len));
	free(out);

	out = run_usage(log, false, &len);
	FUZZ_CHECK(out != NULL);
	for (size_t i = 0; i < len; ++i)
		FUZZ_CHECK(out[i] == '\n' || ((unsigned char)out[i] >= 0x20 && out[i] != 0x7f));
	free(out);
	return 0;
}
