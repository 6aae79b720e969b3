#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# core/pgschema.c from core/pgschema.sql (run after editing the SQL).
cd "$(dirname "$0")/.." || exit 1
{
	printf '/* SPDX-License-Identifier: GPL-2.0-or-later */\n'
	printf '/* The SQL of the PostgreSQL store, generated from core/pgschema.sql (edit\n'
	printf ' * that file, then run tests/gen_pgschema.sh). */\n'
	printf '#include "pgstore.h"\n\nstatic const char schema_sql[] =\n'
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' -e 's/^/\t"/' -e 's/$/\\n"/' \
		core/pgschema.sql | sed '$ s/$/;/'
	printf '\nconst char *vp_pg_schema_sql(void)\n{\n\treturn schema_sql;\n}\n'
} >core/pgschema.c.tmp && mv core/pgschema.c.tmp core/pgschema.c
