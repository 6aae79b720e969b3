#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make check: the plugin's entry points with a PostgreSQL store (deferred
# connects), on a cluster of their own (tests/pg_unit.sh).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/pg_unit.sh" ./tests/test_pgplugin
