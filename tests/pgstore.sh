#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make check: the PostgreSQL store's unit tests and its randomised
# concurrency test, on a cluster of their own (tests/pg_unit.sh).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/pg_unit.sh" ./tests/test_pgstore -- ./tests/pg_random
