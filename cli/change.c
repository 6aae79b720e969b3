/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vpnpool release and vpnpool import: the command changing leases, safe
 * while OpenVPN instances run (they see the change at their next lease
 * change).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/fmt.h"
#include "conf/load.h"
#include "core/ipp.h"
#include "core/pgstore.h"
#include "core/space.h"
#include "core/store.h"

/* ---- the writer ------------------------------------------------------------ */

/*
 * The engine, opened as a writer that is not an instance: each change takes
 * the state directory's lock and first reads what the running instances
 * wrote.  The server's addresses come from the file the plugin keeps; before
 * any plugin ran, from the config alone (subnet topology, no server address
 * to leave out).
 */
static int writer_open(struct vp_space **out, const struct vp_config *config, const char *cmd)
{
	struct vp_space_options opts = { .config = config, .no_drops = true };
	struct vp_server server = { 0 };
	char line[512];
	int ret;

	ret = vp_space_open(out, &opts, NULL, NULL);
	if (!ret) {
		if (vp_store_read_server(config->state_dir, line, sizeof(line)) ||
		    !vp_server_parse(line, &server)) {
			memset(&server, 0, sizeof(server));
			server.topology = config->topology == VP_TOPO_AUTO ? VP_TOPO_SUBNET :
									   config->topology;
		}
		ret = vp_space_set_server(*out, &server);
		if (ret) {
			vp_space_close(*out);
			*out = NULL;
		}
	}
	if (ret)
		vp_cli_error("%s: cannot open the state in %s: %s; nothing changed", cmd,
			     config->state_dir, strerror(-ret));
	return ret;
}

static void writer_close(struct vp_space *space)
{
	vp_space_close(space);
}

static int load_config(struct vp_config *c, const char *path)
{
	char err[2048];

	if (vp_conf_load(c, path, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

/* ---- release --------------------------------------------------------------- */

bool vp_cli_release_said(const char *id, int ret)
{
	if (!ret)
		printf("released the held lease of %s\n", id);
	else if (ret == -EBUSY)
		vp_cli_error("release: %s is online; nothing changed", id);
	else if (ret == -ENOENT)
		vp_cli_error("release: %s has no lease; nothing changed", id);
	else
		return false;
	return true;
}

int vp_cmd_release(const struct vp_cli *cli, int argc, char **argv)
{
	struct vp_config config;
	struct vp_space *space;
	const char *id;
	int ret;

	if (argc == 3 && !strcmp(argv[1], "--"))
		id = argv[2];
	else if (argc == 2 && argv[1][0] != '-')
		id = argv[1];
	else {
		vp_cli_error("release: expected one IDENTITY (try vpnpool release --help)");
		return VP_EXIT_USAGE;
	}
	if (!*id || strlen(id) > VP_IDENTITY_MAX) {
		vp_cli_error("release: an identity is 1 to %d bytes", VP_IDENTITY_MAX);
		return VP_EXIT_USAGE;
	}
	if (load_config(&config, cli->config_path))
		return VP_EXIT_FAIL;
	if (config.store) {
		ret = vp_cli_pg_release(&config, id);
		vp_config_free(&config);
		return ret;
	}
	ret = writer_open(&space, &config, "release");
	if (!ret) {
		ret = vp_space_release(space, (const uint8_t *)id, strlen(id));
		writer_close(space);
		if (!vp_cli_release_said(id, ret))
			vp_cli_error("release: cannot write the state in %s: %s; nothing changed",
				     config.state_dir, strerror(-ret));
	}
	vp_config_free(&config);
	if (fflush(stdout))
		ret = -EIO;
	return ret ? VP_EXIT_FAIL : VP_EXIT_OK;
}

/* ---- import ---------------------------------------------------------------- */

struct importing {
	const char *file;
	struct vp_space *space;
	struct vp_pg *pg;		/* instead of space: the PostgreSQL store */
	const char *state_dir;
	unsigned imported, reported;
	struct vp_strbuf cell;
};

/* "10.8.0.5", "fd00::5" or "10.8.0.5 and fd00::5". */
static const char *addresses(const struct vp_ipp_entry *e, char *buf, size_t len)
{
	char a4[VP_ADDR_STRLEN] = "", a6[VP_ADDR_STRLEN] = "";

	if (e->addr4.family)
		vp_addr_format(&e->addr4, a4);
	if (e->addr6.family)
		vp_addr_format(&e->addr6, a6);
	snprintf(buf, len, "%s%s%s", a4, *a4 && *a6 ? " and " : "", a6);
	return buf;
}

static int import_entry(void *ud, unsigned line, const struct vp_ipp_entry *e, const char *why)
{
	struct importing *im = ud;
	char addrs[2 * VP_ADDR_STRLEN + 8];
	const char *refused = NULL;
	int ret;

	if (!e) {
		fprintf(stderr, "%s:%u: %s\n", im->file, line, why);
		im->reported++;
		return 0;
	}
	if (im->pg)
		ret = vp_pg_import(im->pg, (const uint8_t *)e->identity, e->identity_len,
				   &e->addr4, &e->addr6, &refused);
	else
		ret = vp_space_import(im->space, (const uint8_t *)e->identity, e->identity_len,
				      &e->addr4, &e->addr6, &refused);
	if (!ret) {
		im->imported++;
		return 0;
	}
	if (ret == -EEXIST)
		why = "it already has a lease";
	else if (ret == -EADDRINUSE)
		why = "leased to another identity";
	else if (ret == -EDOM)
		why = refused ? refused : "not an address a pool hands out";
	else
		return ret;
	fprintf(stderr, "%s:%u: %s: cannot import %s: %s\n", im->file, line,
		vp_fmt_cell(&im->cell, e->identity, e->identity_len),
		addresses(e, addrs, sizeof(addrs)), why);
	im->reported++;
	return 0;
}

/* The whole file into *text (NUL-terminated); 0 or -errno. */
static int read_file(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	int ret = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (cap - n < 4096) {
			char *more = realloc(buf, cap ? 2 * cap : 65536);

			if (!more) {
				ret = -ENOMEM;
				break;
			}
			buf = more;
			cap = cap ? 2 * cap : 65536;
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);

		n += got;
		if (got == 0) {
			if (ferror(f))
				ret = -EIO;
			break;
		}
	}
	fclose(f);
	if (ret) {
		free(buf);
		return ret;
	}
	buf[n] = '\0';
	*text = buf;
	*len = n;
	return 0;
}

int vp_cmd_import(const struct vp_cli *cli, int argc, char **argv)
{
	struct importing im = { 0 };
	struct vp_config config;
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (argc == 3 && !strcmp(argv[1], "--"))
		im.file = argv[2];
	else if (argc == 2 && argv[1][0] != '-')
		im.file = argv[1];
	else {
		vp_cli_error("import: expected one FILE (try vpnpool import --help)");
		return VP_EXIT_USAGE;
	}
	if (load_config(&config, cli->config_path))
		return VP_EXIT_FAIL;
	ret = read_file(im.file, &text, &len);
	if (ret) {
		vp_cli_error("import: cannot read %s: %s; nothing changed", im.file, strerror(-ret));
		vp_config_free(&config);
		return VP_EXIT_FAIL;
	}
	im.state_dir = config.state_dir;
	if (config.store) {
		ret = vp_cli_pg_import_open(&im.pg, &config) ? -EIO : 0;
		if (!ret) {
			ret = vp_ipp_each(text, len, import_entry, &im);
			if (ret)
				vp_cli_pg_import_failed(im.pg, &config, ret, im.imported);
			vp_pg_close(im.pg);
			im.pg = NULL;
		}
	} else {
		ret = writer_open(&im.space, &config, "import");
	}
	if (!ret && config.store) {
		printf("imported %u lease%s from %s, %u line%s skipped\n", im.imported,
		       im.imported == 1 ? "" : "s", im.file, im.reported, im.reported == 1 ? "" : "s");
	} else if (!ret) {
		ret = vp_ipp_each(text, len, import_entry, &im);
		writer_close(im.space);
		if (ret)
			vp_cli_error("import: cannot write the state in %s: %s; stopped after %u leases imported",
				     config.state_dir, strerror(-ret), im.imported);
		else
			printf("imported %u lease%s from %s, %u line%s skipped\n", im.imported,
			       im.imported == 1 ? "" : "s", im.file, im.reported,
			       im.reported == 1 ? "" : "s");
	}
	free(text);
	vp_strbuf_free(&im.cell);
	vp_config_free(&config);
	if (fflush(stdout))
		ret = -EIO;
	return ret || im.reported ? VP_EXIT_FAIL : VP_EXIT_OK;
}
