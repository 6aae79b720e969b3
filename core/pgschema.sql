-- vpnpool: the PostgreSQL store, schema version 1 (PostgreSQL 14 or later).
-- Apply as the role that owns the database vpnpool uses (servers create it
-- themselves at first start when that role may).
--
-- Why it is race-free:
--  * Nothing twice.  lease has UNIQUE (addr4), UNIQUE (addr6) and an
--    exclusion constraint (gist, inet_ops, &&) on subnet4 and on subnet6:
--    whatever the functions below choose, two leases can never commit the
--    same address or overlapping subnets; a transaction that would is
--    rolled back whole (the caller retries once).
--  * One lease per (identity, slot): the primary key.  Connects of one
--    identity are serialised by a transaction-scoped advisory lock on a
--    hash of the identity and by FOR UPDATE on its rows, so the sticky
--    lease, the choice of slot (duplicate-cn) and a move between servers
--    are decided on the committed state.
--  * Free addresses: a row of free is removed by exactly one transaction
--    (DELETE of a row picked FOR UPDATE SKIP LOCKED); concurrent connects
--    skip each other's picks instead of waiting.
--  * Never-used addresses: each segment of a pool has a SEQUENCE; nextval()
--    hands each offset to one caller only, is never rolled back and locks
--    nothing, so the mark is not a hot row.  An offset lost to a rollback
--    is found again by a bounded gap scan, run only when the pool is
--    otherwise full and its counters say a block is unaccounted for.
--  * Reclaim: the held lease offline longest, hold-time passed, picked
--    FOR UPDATE SKIP LOCKED and deleted in the same transaction that takes
--    its address: two connects never reclaim the same lease.  A connect of
--    the owner of that lease waits on its row (FOR UPDATE) and finds it
--    gone, so it gets a new address.
--  * A connect the server gave up on (timed out) but the database ran
--    late: abort() marks the session in aborted under the identity's lock,
--    and connect() checks the mark under the same lock, so the late
--    connect either is undone by the abort or refuses itself.
--  * A node is judged dead only by a node that has itself been in contact
--    (heartbeats without a gap of node-timeout / 2) for node-timeout, so a
--    database that was away makes nobody look dead.
--  * Dead nodes: their online leases are turned held by UPDATE ... WHERE
--    online, row by row under FOR UPDATE; concurrent reapers see a row
--    already held and skip it, so each session is reported once.
--  * in_use: a counter row per area and backend (shard = its pid), updated
--    by a trigger in the transaction that inserts or deletes the lease, so
--    no two transactions ever wait on a counter; summed on read (shard 0
--    holds what heartbeats folded in from backends that have gone).
--  * No deadlock: a connect locks its own identity (advisory lock, then its
--    rows), takes other leases only with SKIP LOCKED and its counters are
--    its backend's own; reapers lock the leases of dead nodes in one order
--    (identity, slot).

-- Limits: a block lost to a rollback is found again only in an area's main
-- family (IPv4 of a pool; a router pool's IPv4, else IPv6); a freed block
-- that the published segments no longer hold is dropped when it comes up,
-- but leases are not checked against a changed config (servers are
-- expected to share one config).

CREATE SCHEMA IF NOT EXISTS vpnpool;

CREATE TABLE IF NOT EXISTS vpnpool.meta (version int NOT NULL);

-- A pool (router = false) or router pool as the servers published it.
CREATE TABLE IF NOT EXISTS vpnpool.area (
	id serial PRIMARY KEY,
	router boolean NOT NULL,
	name text NOT NULL,
	size bigint NOT NULL DEFAULT 0,		-- blocks of its main family
	main_family int NOT NULL DEFAULT 4,
	has4 boolean NOT NULL DEFAULT false,
	has6 boolean NOT NULL DEFAULT false,
	published timestamptz NOT NULL DEFAULT now(),
	UNIQUE (router, name)
);

-- The blocks an area may hand out: count blocks of length block_len from
-- first.  mark: the sequence of offsets never used.
CREATE TABLE IF NOT EXISTS vpnpool.segment (
	area int NOT NULL REFERENCES vpnpool.area ON DELETE CASCADE,
	family int NOT NULL,
	first inet NOT NULL,
	block_len int NOT NULL,
	count bigint NOT NULL,
	mark regclass NOT NULL,
	PRIMARY KEY (area, family, first, block_len)
);

-- Blocks handed out before and freed since.
CREATE TABLE IF NOT EXISTS vpnpool.free (
	area int NOT NULL,
	family int NOT NULL,
	value inet NOT NULL,
	PRIMARY KEY (area, family, value)
);

-- in_use of an area: sum(n) over its shards (0, and the pid of each backend
-- that changed it).
CREATE TABLE IF NOT EXISTS vpnpool.usage (
	area int NOT NULL,
	shard int NOT NULL,
	n bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (area, shard)
);

CREATE TABLE IF NOT EXISTS vpnpool.node (
	node text NOT NULL,
	instance text NOT NULL,
	heartbeat timestamptz NOT NULL DEFAULT now(),
	started timestamptz NOT NULL DEFAULT now(),
	pid int NOT NULL DEFAULT 0,
	-- since when its heartbeats came without a gap of half the timeout: a
	-- node judges others only after node-timeout of contact itself, so
	-- that after the database was away nobody is taken for dead before it
	-- had the time to beat again
	contact timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (node, instance)
);

-- Sessions given up by their server (its connect timed out, or its client
-- left before the answer): a connect of one of these, run late by the
-- database, refuses itself.  Kept an hour.
CREATE TABLE IF NOT EXISTS vpnpool.aborted (
	node text NOT NULL,
	instance text NOT NULL,
	session bigint NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (node, instance, session)
);

-- since: when the session began (online) or ended (held).
CREATE TABLE IF NOT EXISTS vpnpool.lease (
	identity bytea NOT NULL CHECK (length(identity) BETWEEN 1 AND 4096),
	slot int NOT NULL,
	online boolean NOT NULL,
	node text NOT NULL DEFAULT '',
	instance text NOT NULL DEFAULT '',
	session bigint,
	pool int,
	router int,
	addr4 inet,
	addr6 inet,
	subnet4 cidr,
	subnet6 cidr,
	static4 boolean NOT NULL DEFAULT false,
	static6 boolean NOT NULL DEFAULT false,
	static_subnet boolean NOT NULL DEFAULT false,
	created timestamptz NOT NULL DEFAULT now(),
	since timestamptz NOT NULL DEFAULT now(),
	sessions int NOT NULL DEFAULT 1,
	real text NOT NULL DEFAULT '',
	PRIMARY KEY (identity, slot),
	CONSTRAINT lease_addr4 UNIQUE (addr4),
	CONSTRAINT lease_addr6 UNIQUE (addr6),
	CONSTRAINT lease_subnet4 EXCLUDE USING gist (subnet4 inet_ops WITH &&)
		WHERE (subnet4 IS NOT NULL),
	CONSTRAINT lease_subnet6 EXCLUDE USING gist (subnet6 inet_ops WITH &&)
		WHERE (subnet6 IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS lease_held_pool ON vpnpool.lease (pool, since) WHERE NOT online;
CREATE INDEX IF NOT EXISTS lease_held_router ON vpnpool.lease (router, since) WHERE NOT online;
CREATE INDEX IF NOT EXISTS lease_online ON vpnpool.lease (node, instance) WHERE online;

INSERT INTO vpnpool.meta SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM vpnpool.meta);

-- The counters follow every lease inserted or deleted.
CREATE OR REPLACE FUNCTION vpnpool.count_lease() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	r vpnpool.lease;
	d int;
BEGIN
	IF TG_OP = 'INSERT' THEN r := NEW; d := 1; ELSE r := OLD; d := -1; END IF;
	IF r.pool IS NOT NULL AND NOT r.static4 THEN
		UPDATE vpnpool.usage SET n = n + d
		 WHERE area = r.pool AND shard = pg_backend_pid();
		IF NOT FOUND THEN
			INSERT INTO vpnpool.usage VALUES (r.pool, pg_backend_pid(), d);
		END IF;
	END IF;
	IF r.router IS NOT NULL AND NOT r.static_subnet THEN
		UPDATE vpnpool.usage SET n = n + d
		 WHERE area = r.router AND shard = pg_backend_pid();
		IF NOT FOUND THEN
			INSERT INTO vpnpool.usage VALUES (r.router, pg_backend_pid(), d);
		END IF;
	END IF;
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER lease_count AFTER INSERT OR DELETE ON vpnpool.lease
	FOR EACH ROW EXECUTE FUNCTION vpnpool.count_lease();

CREATE OR REPLACE FUNCTION vpnpool.in_use(p_area int) RETURNS bigint
LANGUAGE sql STABLE AS $$
	SELECT coalesce(sum(n), 0)::bigint FROM vpnpool.usage WHERE area = p_area
$$;

-- IPv6 address plus a number too big for bigint.
CREATE OR REPLACE FUNCTION vpnpool.inet6_add(p_base inet, p_n numeric) RETURNS inet
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	b bytea := inet_send(p_base);
	v numeric := 0;
	t text := '';
BEGIN
	FOR i IN 4..19 LOOP v := v * 256 + get_byte(b, i); END LOOP;
	v := v + p_n;
	FOR i IN 1..8 LOOP
		t := lpad(to_hex(mod(v, 65536)::int), 4, '0') || CASE WHEN i = 1 THEN '' ELSE ':' END || t;
		v := div(v, 65536);
	END LOOP;
	RETURN t::inet;
END $$;

-- Block n of a segment.
CREATE OR REPLACE FUNCTION vpnpool.block_at(p_first inet, p_len int, p_n bigint) RETURNS inet
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF family(p_first) = 4 THEN
		RETURN set_masklen(host(p_first)::inet + (p_n << (32 - p_len)), p_len);
	ELSIF p_len = 128 THEN
		RETURN host(p_first)::inet + p_n;
	END IF;
	RETURN set_masklen(vpnpool.inet6_add(p_first, p_n::numeric * 2::numeric ^ (128 - p_len)), p_len);
END $$;

-- Whether a lease holds the block v of an area.
CREATE OR REPLACE FUNCTION vpnpool.taken(p_router boolean, p_family int, v inet) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT CASE
	  WHEN NOT p_router AND p_family = 4 THEN EXISTS (SELECT 1 FROM vpnpool.lease WHERE addr4 = v)
	  WHEN NOT p_router THEN EXISTS (SELECT 1 FROM vpnpool.lease WHERE addr6 = v)
	  WHEN p_family = 4 THEN EXISTS (SELECT 1 FROM vpnpool.lease WHERE subnet4 && v)
	  ELSE EXISTS (SELECT 1 FROM vpnpool.lease WHERE subnet6 && v) END
$$;

-- A free or never-used block of an area and family, or NULL.
CREATE OR REPLACE FUNCTION vpnpool.take(p_area int, p_family int) RETURNS inet
LANGUAGE plpgsql AS $$
DECLARE
	v inet;
	s record;
	n bigint;
	a vpnpool.area;
BEGIN
	-- A freed block, if it is still one the area hands out (the servers'
	-- config may have excluded it since: then it is dropped).
	LOOP
		DELETE FROM vpnpool.free f
		 WHERE (f.area, f.family, f.value) =
		       (SELECT x.area, x.family, x.value FROM vpnpool.free x
			 WHERE x.area = p_area AND x.family = p_family
			 LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING f.value INTO v;
		EXIT WHEN v IS NULL;
		IF EXISTS (SELECT 1 FROM vpnpool.segment g
			    WHERE g.area = p_area AND g.family = p_family AND v >= g.first
			      AND v <= vpnpool.block_at(g.first, g.block_len, g.count - 1)) THEN
			RETURN v;
		END IF;
	END LOOP;
	SELECT * INTO a FROM vpnpool.area WHERE id = p_area;
	FOR s IN SELECT * FROM vpnpool.segment
		  WHERE area = p_area AND family = p_family ORDER BY first LOOP
		LOOP
			EXIT WHEN coalesce(pg_sequence_last_value(s.mark), 0) >= s.count;
			n := nextval(s.mark) - 1;
			EXIT WHEN n >= s.count;
			v := vpnpool.block_at(s.first, s.block_len, n);
			-- an imported lease may hold it already
			IF NOT vpnpool.taken(a.router, p_family, v) THEN
				RETURN v;
			END IF;
		END LOOP;
	END LOOP;
	-- Last resort: a block lost to a rolled back transaction.  Only when
	-- the counters say one is unaccounted for (main family).
	IF p_family = a.main_family AND vpnpool.in_use(p_area) < a.size THEN
		FOR s IN SELECT * FROM vpnpool.segment
			  WHERE area = p_area AND family = p_family ORDER BY first LOOP
			SELECT b INTO v
			  FROM generate_series(0::bigint, s.count - 1) g,
			       LATERAL vpnpool.block_at(s.first, s.block_len, g) b
			 WHERE NOT vpnpool.taken(a.router, p_family, b)
			   AND NOT EXISTS (SELECT 1 FROM vpnpool.free x
					    WHERE x.area = p_area AND x.family = p_family AND x.value = b)
			 LIMIT 1;
			IF v IS NOT NULL THEN
				RETURN v;
			END IF;
		END LOOP;
	END IF;
	RETURN NULL;
END $$;

-- Give back the dynamic blocks of a lease that ends (its row is deleted
-- by the caller).
CREATE OR REPLACE FUNCTION vpnpool.give_back(l vpnpool.lease) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF l.pool IS NOT NULL AND l.addr4 IS NOT NULL AND NOT l.static4 THEN
		INSERT INTO vpnpool.free VALUES (l.pool, 4, l.addr4) ON CONFLICT DO NOTHING;
	END IF;
	IF l.pool IS NOT NULL AND l.addr6 IS NOT NULL AND NOT l.static6 THEN
		INSERT INTO vpnpool.free VALUES (l.pool, 6, l.addr6) ON CONFLICT DO NOTHING;
	END IF;
	IF l.router IS NOT NULL AND NOT l.static_subnet THEN
		IF l.subnet4 IS NOT NULL THEN
			INSERT INTO vpnpool.free VALUES (l.router, 4, l.subnet4) ON CONFLICT DO NOTHING;
		END IF;
		IF l.subnet6 IS NOT NULL THEN
			INSERT INTO vpnpool.free VALUES (l.router, 6, l.subnet6) ON CONFLICT DO NOTHING;
		END IF;
	END IF;
END $$;

CREATE OR REPLACE FUNCTION vpnpool.drop_lease(l vpnpool.lease) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM vpnpool.lease WHERE identity = l.identity AND slot = l.slot;
	PERFORM vpnpool.give_back(l);
END $$;

CREATE OR REPLACE FUNCTION vpnpool.identity_lock(p_id bytea) RETURNS void
LANGUAGE sql AS $$
	SELECT pg_advisory_xact_lock(1987006, hashtext(encode(p_id, 'hex')))
$$;

-- Refuse: the whole transaction is rolled back.  kind: p (pool) or r.
CREATE OR REPLACE FUNCTION vpnpool.refuse(p_code text, p_area int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION USING ERRCODE = p_code,
		MESSAGE = format('%s %s %s', coalesce(p_area, 0),
				 coalesce(vpnpool.in_use(p_area), 0),
				 coalesce((SELECT size FROM vpnpool.area WHERE id = p_area), 0));
END $$;

-- A connect (the rules of openvpn-plugin-vpnpool(8)).  p_pools and
-- p_routers: the areas whose match lists hold, in file order.  s_*: the
-- client's reservation (slot 0 only), s_pool/s_router where it lies.
CREATE OR REPLACE FUNCTION vpnpool.connect(
	p_id bytea, p_node text, p_instance text, p_session bigint, p_real text,
	p_pools int[], p_routers int[], p_hold bigint,
	s_addr4 inet, s_addr6 inet, s_subnet4 cidr, s_subnet6 cidr, s_pool int, s_router int,
	OUT o_slot int, OUT o_pool int, OUT o_router int, OUT o_addr4 inet, OUT o_addr6 inet,
	OUT o_subnet4 cidr, OUT o_subnet6 cidr, OUT o_static boolean, OUT o_sticky boolean,
	OUT o_reclaimed boolean, OUT o_from bytea, OUT o_moved boolean,
	OUT o_in_use bigint, OUT o_size bigint)
LANGUAGE plpgsql AS $$
DECLARE
	l vpnpool.lease;
	v vpnpool.lease;
	have boolean;
	fits boolean;
	a vpnpool.area;
	st6 boolean := false;
	st_sub boolean := false;
	last int;
	aid int;
	t4 inet;
	t6 inet;
	fam int;
BEGIN
	PERFORM vpnpool.identity_lock(p_id);
	IF EXISTS (SELECT 1 FROM vpnpool.aborted WHERE node = p_node AND instance = p_instance
		   AND session = p_session) THEN
		RAISE EXCEPTION USING ERRCODE = 'VPE57', MESSAGE = 'given up by its server';
	END IF;
	o_sticky := false; o_reclaimed := false; o_moved := false; o_static := false;
	o_slot := 0;
	SELECT * INTO l FROM vpnpool.lease WHERE identity = p_id AND slot = 0 FOR UPDATE;
	have := FOUND;
	IF have AND l.online AND (l.node <> p_node OR l.instance <> p_instance) THEN
		o_moved := true;	-- the newest session takes it over
	ELSE
		WHILE have AND l.online LOOP
			o_slot := o_slot + 1;
			SELECT * INTO l FROM vpnpool.lease
			 WHERE identity = p_id AND slot = o_slot FOR UPDATE;
			have := FOUND;
		END LOOP;
	END IF;
	IF o_slot > 0 THEN
		s_addr4 := NULL; s_addr6 := NULL; s_subnet4 := NULL; s_subnet6 := NULL;
	END IF;

	IF have THEN
		SELECT * INTO a FROM vpnpool.area WHERE area.id = l.pool;
		fits := FOUND AND (CASE WHEN l.static4 THEN s_addr4 IS NOT NULL AND l.addr4 = s_addr4
					AND l.pool IS NOT DISTINCT FROM s_pool
				   ELSE s_addr4 IS NULL AND l.pool = ANY (p_pools) END)
			AND (NOT l.static6 OR l.addr6 IS NOT DISTINCT FROM s_addr6)
			AND (NOT l.static_subnet OR s_subnet4 IS NOT NULL OR s_subnet6 IS NOT NULL)
			AND (l.static_subnet OR (s_subnet4 IS NULL AND s_subnet6 IS NULL))
			AND (l.router IS NULL OR l.static_subnet OR l.router = ANY (p_routers))
			AND (l.router IS NOT NULL OR cardinality(p_routers) = 0);
		-- Its pool has IPv6 now (network6 added): it keeps its IPv4
		-- address and gets an IPv6 one; none left: start afresh.
		IF fits AND a.has6 AND l.addr6 IS NULL THEN
			l.addr6 := vpnpool.take(l.pool, 6);
			fits := l.addr6 IS NOT NULL;
			IF fits THEN
				UPDATE vpnpool.lease SET addr6 = l.addr6
				 WHERE identity = p_id AND slot = o_slot;
			END IF;
		END IF;
		IF fits THEN
			UPDATE vpnpool.lease SET online = true, node = p_node, instance = p_instance,
				session = p_session, since = now(), sessions = sessions + 1,
				real = p_real
			 WHERE identity = p_id AND slot = o_slot;
			o_pool := l.pool; o_router := l.router; o_addr4 := l.addr4;
			o_addr6 := l.addr6; o_subnet4 := l.subnet4; o_subnet6 := l.subnet6;
			o_static := l.static4; o_sticky := true;
			o_in_use := vpnpool.in_use(o_pool); o_size := a.size;
			RETURN;
		END IF;
		PERFORM vpnpool.drop_lease(l);	-- no longer suits it: start afresh
	END IF;

	-- The address: the reservation, else the first matching pool with
	-- room, else the first where a reclaim makes room.
	IF s_addr4 IS NOT NULL THEN
		IF s_pool IS NULL THEN
			PERFORM vpnpool.refuse('VPE02', NULL);
		END IF;
		-- Another client's lease on the reserved address (the
		-- reservation is newer): a held one is dropped, as a reload of
		-- the journal drops it; an online one keeps it for now.
		SELECT * INTO v FROM vpnpool.lease
		 WHERE addr4 = s_addr4 AND identity <> p_id FOR UPDATE;
		IF FOUND THEN
			IF v.online THEN
				RAISE EXCEPTION USING ERRCODE = 'VPE23', MESSAGE = format(
					'its reserved address %s is online with another client until that session ends',
					host(s_addr4));
			END IF;
			PERFORM vpnpool.drop_lease(v);
		END IF;
		o_pool := s_pool; o_addr4 := s_addr4; o_static := true;
		SELECT * INTO a FROM vpnpool.area WHERE area.id = s_pool;
		IF a.has6 THEN
			IF s_addr6 IS NOT NULL THEN
				o_addr6 := s_addr6; st6 := true;
			ELSE
				o_addr6 := vpnpool.take(s_pool, 6);
				IF o_addr6 IS NULL THEN
					PERFORM vpnpool.refuse('VPE28', s_pool);
				END IF;
			END IF;
		END IF;
	ELSE
		<<pools>>
		FOR pass IN 0..1 LOOP
			FOREACH aid IN ARRAY p_pools LOOP
				last := aid;
				SELECT * INTO a FROM vpnpool.area WHERE area.id = aid;
				IF pass = 0 THEN
					t4 := vpnpool.take(aid, 4);
					CONTINUE WHEN t4 IS NULL;
					t6 := NULL;
					IF a.has6 THEN
						t6 := vpnpool.take(aid, 6);
						IF t6 IS NULL THEN
							INSERT INTO vpnpool.free VALUES (aid, 4, t4);
							CONTINUE;
						END IF;
					END IF;
				ELSE
					SELECT * INTO v FROM vpnpool.lease
					 WHERE pool = aid AND NOT online AND NOT static4
					   AND since <= now() - make_interval(secs => p_hold)
					 ORDER BY since LIMIT 1 FOR UPDATE SKIP LOCKED;
					CONTINUE WHEN NOT FOUND;
					PERFORM vpnpool.drop_lease(v);
					DELETE FROM vpnpool.free WHERE area = aid AND family = 4 AND value = v.addr4;
					t4 := v.addr4;
					t6 := NULL;
					IF a.has6 THEN
						IF v.addr6 IS NOT NULL AND NOT v.static6 THEN
							DELETE FROM vpnpool.free
							 WHERE area = aid AND family = 6 AND value = v.addr6;
							t6 := v.addr6;
						ELSE
							t6 := vpnpool.take(aid, 6);
							IF t6 IS NULL THEN
								PERFORM vpnpool.refuse('VPE28', aid);
							END IF;
						END IF;
					END IF;
					o_reclaimed := true; o_from := v.identity;
				END IF;
				o_pool := aid; o_addr4 := t4; o_addr6 := t6;
				EXIT pools;
			END LOOP;
		END LOOP;
		IF o_pool IS NULL THEN
			PERFORM vpnpool.refuse(CASE WHEN last IS NULL THEN 'VPE02' ELSE 'VPE28' END, last);
		END IF;
		IF s_addr6 IS NOT NULL AND o_addr6 IS NOT NULL THEN
			-- the reservation replaces the dynamic IPv6 address
			INSERT INTO vpnpool.free VALUES (o_pool, 6, o_addr6) ON CONFLICT DO NOTHING;
			o_addr6 := s_addr6; st6 := true;
		END IF;
	END IF;

	-- The routed subnet: the reservation, else a router pool's.
	IF s_subnet4 IS NOT NULL OR s_subnet6 IS NOT NULL THEN
		o_router := s_router; o_subnet4 := s_subnet4; o_subnet6 := s_subnet6;
		st_sub := true;
	ELSIF cardinality(p_routers) > 0 THEN
		last := NULL;
		<<routers>>
		FOR pass IN 0..1 LOOP
			FOREACH aid IN ARRAY p_routers LOOP
				last := aid;
				SELECT * INTO a FROM vpnpool.area WHERE area.id = aid;
				IF pass = 0 THEN
					t4 := NULL; t6 := NULL;
					IF a.has4 THEN
						t4 := vpnpool.take(aid, 4);
						CONTINUE WHEN t4 IS NULL;
					END IF;
					IF a.has6 THEN
						t6 := vpnpool.take(aid, 6);
						IF t6 IS NULL THEN
							IF t4 IS NOT NULL THEN
								INSERT INTO vpnpool.free VALUES (aid, 4, t4);
							END IF;
							CONTINUE;
						END IF;
					END IF;
				ELSE
					SELECT * INTO v FROM vpnpool.lease
					 WHERE router = aid AND NOT online AND NOT static_subnet
					   AND since <= now() - make_interval(secs => p_hold)
					 ORDER BY since LIMIT 1 FOR UPDATE SKIP LOCKED;
					CONTINUE WHEN NOT FOUND;
					PERFORM vpnpool.drop_lease(v);
					t4 := NULL; t6 := NULL;
					FOREACH fam IN ARRAY ARRAY[4, 6] LOOP
						CONTINUE WHEN (fam = 4 AND NOT a.has4) OR (fam = 6 AND NOT a.has6);
						IF fam = 4 THEN t4 := v.subnet4; ELSE t6 := v.subnet6; END IF;
						IF (fam = 4 AND t4 IS NULL) OR (fam = 6 AND t6 IS NULL) THEN
							IF fam = 4 THEN t4 := vpnpool.take(aid, 4);
							ELSE t6 := vpnpool.take(aid, 6); END IF;
							IF (fam = 4 AND t4 IS NULL) OR (fam = 6 AND t6 IS NULL) THEN
								PERFORM vpnpool.refuse('VPE28', aid);
							END IF;
						ELSE
							DELETE FROM vpnpool.free WHERE area = aid AND family = fam
							   AND value = CASE fam WHEN 4 THEN t4 ELSE t6 END;
						END IF;
					END LOOP;
					o_reclaimed := true; o_from := v.identity;
				END IF;
				o_router := aid; o_subnet4 := t4::cidr; o_subnet6 := t6::cidr;
				EXIT routers;
			END LOOP;
		END LOOP;
		IF o_router IS NULL THEN
			PERFORM vpnpool.refuse('VPE28', last);
		END IF;
	END IF;

	INSERT INTO vpnpool.lease (identity, slot, online, node, instance, session, pool, router,
				   addr4, addr6, subnet4, subnet6, static4, static6,
				   static_subnet, real)
	VALUES (p_id, o_slot, true, p_node, p_instance, p_session, o_pool, o_router,
		o_addr4, o_addr6, o_subnet4, o_subnet6, o_static, st6, st_sub, p_real);
	o_in_use := vpnpool.in_use(o_pool);
	o_size := (SELECT size FROM vpnpool.area WHERE area.id = o_pool);
END $$;

-- What a session had, for the functions below.
CREATE OR REPLACE FUNCTION vpnpool.ended(l vpnpool.lease,
	OUT o_pool int, OUT o_router int, OUT o_addr4 inet, OUT o_addr6 inet,
	OUT o_subnet4 cidr, OUT o_subnet6 cidr, OUT o_static boolean, OUT o_since bigint)
LANGUAGE sql IMMUTABLE AS $$
	SELECT l.pool, l.router, l.addr4, l.addr6, l.subnet4, l.subnet6, l.static4,
	       extract(epoch FROM l.since)::bigint
$$;

-- End of a session.  o_rc: 0, 1 (moved: another session has it), -2 (none).
CREATE OR REPLACE FUNCTION vpnpool.disconnect(p_id bytea, p_slot int, p_session bigint,
	p_node text, p_instance text,
	OUT o_rc int, OUT o_pool int, OUT o_router int, OUT o_addr4 inet, OUT o_addr6 inet,
	OUT o_subnet4 cidr, OUT o_subnet6 cidr, OUT o_static boolean, OUT o_since bigint)
LANGUAGE plpgsql AS $$
DECLARE
	l vpnpool.lease;
BEGIN
	SELECT * INTO l FROM vpnpool.lease WHERE identity = p_id AND slot = p_slot FOR UPDATE;
	IF NOT FOUND OR NOT l.online THEN
		o_rc := -2;
		RETURN;
	END IF;
	SELECT * INTO o_pool, o_router, o_addr4, o_addr6, o_subnet4, o_subnet6, o_static, o_since
	  FROM vpnpool.ended(l);
	IF l.session IS DISTINCT FROM p_session OR l.node <> p_node OR l.instance <> p_instance THEN
		o_rc := 1;
		RETURN;
	END IF;
	o_rc := 0;
	IF p_slot > 0 THEN
		PERFORM vpnpool.drop_lease(l);
	ELSE
		UPDATE vpnpool.lease SET online = false, since = now()
		 WHERE identity = p_id AND slot = 0;
	END IF;
END $$;

-- Undo a connect whose answer was lost.
CREATE OR REPLACE FUNCTION vpnpool.abort(p_id bytea, p_session bigint, p_node text,
	p_instance text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	l vpnpool.lease;
	n int := 0;
BEGIN
	-- Under the identity's lock, as its connect: either that connect
	-- committed first (undone below) or it sees the mark and refuses.
	PERFORM vpnpool.identity_lock(p_id);
	INSERT INTO vpnpool.aborted (node, instance, session)
	VALUES (p_node, p_instance, p_session) ON CONFLICT DO NOTHING;
	FOR l IN SELECT * FROM vpnpool.lease
		  WHERE identity = p_id AND session = p_session AND online
		    AND node = p_node AND instance = p_instance FOR UPDATE LOOP
		IF l.slot > 0 THEN
			PERFORM vpnpool.drop_lease(l);
		ELSE
			UPDATE vpnpool.lease SET online = false, since = now()
			 WHERE identity = p_id AND slot = 0;
		END IF;
		n := n + 1;
	END LOOP;
	RETURN n;
END $$;

-- Heartbeat of (p_node, p_instance), then end the sessions of every
-- (node, instance) silent for p_timeout seconds (p_self: of this one, which
-- starts again).
CREATE OR REPLACE FUNCTION vpnpool.reap(p_node text, p_instance text, p_timeout bigint,
	p_self boolean, p_pid int)
RETURNS TABLE (o_identity bytea, o_slot int, o_node text, o_instance text,
	o_pool int, o_router int, o_addr4 inet, o_addr6 inet, o_subnet4 cidr, o_subnet6 cidr,
	o_static boolean, o_duration bigint, o_freed boolean)
LANGUAGE plpgsql AS $$
DECLARE
	l vpnpool.lease;
	my_contact timestamptz;
	judge boolean := false;
BEGIN
	IF p_self THEN
		INSERT INTO vpnpool.node (node, instance, pid) VALUES (p_node, p_instance, p_pid)
		ON CONFLICT (node, instance) DO UPDATE
		   SET heartbeat = now(), started = now(), pid = p_pid, contact = now();
	ELSIF p_node IS NOT NULL THEN
		UPDATE vpnpool.node
		   SET contact = CASE WHEN heartbeat < now() - make_interval(secs => p_timeout / 2.0)
				      THEN now() ELSE contact END,
		       heartbeat = now()
		 WHERE node = p_node AND instance = p_instance
		RETURNING contact INTO my_contact;
		IF NOT FOUND THEN
			INSERT INTO vpnpool.node (node, instance, pid)
			VALUES (p_node, p_instance, p_pid) ON CONFLICT DO NOTHING;
			my_contact := now();
		END IF;
		-- Not in contact for node-timeout yet: judge nobody.
		judge := my_contact <= now() - make_interval(secs => p_timeout);
		DELETE FROM vpnpool.aborted WHERE at < now() - interval '1 hour';
	END IF;
	-- The counters of backends gone fold into shard 0 (one folder at a time).
	IF NOT p_self AND pg_try_advisory_xact_lock(1987006, 2) THEN
		WITH gone AS (
			DELETE FROM vpnpool.usage u WHERE u.shard <> 0 AND NOT EXISTS (
				SELECT 1 FROM pg_stat_activity a WHERE a.pid = u.shard)
			RETURNING u.area, u.n)
		UPDATE vpnpool.usage b SET n = b.n + g.n
		  FROM (SELECT area, sum(n) AS n FROM gone GROUP BY area) g
		 WHERE b.area = g.area AND b.shard = 0;
	END IF;
	-- (the dead nodes first, then their online leases by index)
	FOR l IN SELECT x.* FROM vpnpool.node n
		  JOIN vpnpool.lease x ON x.node = n.node AND x.instance = n.instance AND x.online
		  WHERE CASE WHEN p_self THEN n.node = p_node AND n.instance = p_instance
			ELSE judge AND NOT (n.node = p_node AND n.instance = p_instance)
			     AND n.heartbeat < now() - make_interval(secs => p_timeout) END
		  ORDER BY x.identity, x.slot
		  FOR UPDATE OF x LOOP
		CONTINUE WHEN NOT l.online;
		o_identity := l.identity; o_slot := l.slot; o_node := l.node;
		o_instance := l.instance; o_pool := l.pool; o_router := l.router;
		o_addr4 := l.addr4; o_addr6 := l.addr6; o_subnet4 := l.subnet4;
		o_subnet6 := l.subnet6; o_static := l.static4;
		o_duration := greatest(0, extract(epoch FROM now() - l.since))::bigint;
		o_freed := l.slot > 0;
		IF l.slot > 0 THEN
			PERFORM vpnpool.drop_lease(l);
		ELSE
			UPDATE vpnpool.lease SET online = false, since = now()
			 WHERE identity = l.identity AND slot = 0;
		END IF;
		RETURN NEXT;
	END LOOP;
END $$;

-- A server publishes a pool (p_router false) or router pool: its blocks.
CREATE OR REPLACE FUNCTION vpnpool.publish(p_router boolean, p_name text, p_main int,
	p_has4 boolean, p_has6 boolean, p_size bigint,
	p_family int[], p_first inet[], p_len int[], p_count bigint[]) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	aid int;
	seq text;
BEGIN
	PERFORM pg_advisory_xact_lock(1987006, 1);
	INSERT INTO vpnpool.area AS x (router, name, size, main_family, has4, has6)
	VALUES (p_router, p_name, p_size, p_main, p_has4, p_has6)
	ON CONFLICT (router, name) DO UPDATE
	   SET size = p_size, main_family = p_main, has4 = p_has4, has6 = p_has6,
	       published = now()
	RETURNING x.id INTO aid;
	INSERT INTO vpnpool.usage (area, shard) VALUES (aid, 0) ON CONFLICT DO NOTHING;
	DELETE FROM vpnpool.segment s
	 WHERE s.area = aid AND NOT EXISTS (
		SELECT 1 FROM unnest(p_family, p_first, p_len) u(f, a, b)
		 WHERE u.f = s.family AND u.a = s.first AND u.b = s.block_len);
	FOR i IN 1..coalesce(cardinality(p_family), 0) LOOP
		seq := format('vpnpool.mark_%s_%s', aid,
			      md5(p_family[i] || ' ' || p_first[i] || ' ' || p_len[i]));
		EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %s MINVALUE 1', seq);
		INSERT INTO vpnpool.segment AS s (area, family, first, block_len, count, mark)
		VALUES (aid, p_family[i], p_first[i], p_len[i], p_count[i], seq::regclass)
		ON CONFLICT (area, family, first, block_len) DO UPDATE SET count = p_count[i];
	END LOOP;
	RETURN aid;
END $$;

-- The command: end a held lease.  0, -16 (online), -2 (none).
CREATE OR REPLACE FUNCTION vpnpool.release(p_id bytea) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	l vpnpool.lease;
	n int := 0;
BEGIN
	PERFORM vpnpool.identity_lock(p_id);
	PERFORM 1 FROM vpnpool.lease WHERE identity = p_id FOR UPDATE;
	IF EXISTS (SELECT 1 FROM vpnpool.lease WHERE identity = p_id AND online) THEN
		RETURN -16;
	END IF;
	FOR l IN SELECT * FROM vpnpool.lease WHERE identity = p_id LOOP
		PERFORM vpnpool.drop_lease(l);
		n := n + 1;
	END LOOP;
	RETURN CASE WHEN n = 0 THEN -2 ELSE 0 END;
END $$;

-- The command: a held lease with these addresses.  0, -17 (the identity
-- has a lease), -98 (leased to another), -33 (not a published block of the
-- pool; o_why), -28 (no IPv6 address left), -2 (no such pool).
CREATE OR REPLACE FUNCTION vpnpool.import(p_id bytea, p_pool text, p_addr4 inet,
	p_addr6 inet, OUT o_rc int, OUT o_why text)
LANGUAGE plpgsql AS $$
DECLARE
	a vpnpool.area;
	v6 inet := p_addr6;
BEGIN
	PERFORM vpnpool.identity_lock(p_id);
	SELECT * INTO a FROM vpnpool.area WHERE NOT router AND name = p_pool;
	IF NOT FOUND THEN
		o_rc := -2; o_why := 'the pool is not published (no server started with it)';
		RETURN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM vpnpool.segment s WHERE s.area = a.id AND s.family = 4
		   AND p_addr4 >= s.first AND p_addr4 <= vpnpool.block_at(s.first, 32, s.count - 1)) THEN
		o_rc := -33; o_why := 'not an address the pool hands out';
		RETURN;
	END IF;
	IF v6 IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vpnpool.segment s WHERE s.area = a.id
		   AND s.family = 6 AND v6 >= s.first
		   AND v6 <= vpnpool.block_at(s.first, 128, s.count - 1)) THEN
		o_rc := -33; o_why := 'not an IPv6 address the pool hands out';
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM vpnpool.lease WHERE identity = p_id) THEN
		o_rc := -17;
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM vpnpool.lease WHERE addr4 = p_addr4 OR addr6 = v6) THEN
		o_rc := -98;
		RETURN;
	END IF;
	DELETE FROM vpnpool.free WHERE area = a.id AND family = 4 AND value = p_addr4;
	IF v6 IS NOT NULL THEN
		DELETE FROM vpnpool.free WHERE area = a.id AND family = 6 AND value = v6;
	ELSIF a.has6 THEN
		v6 := vpnpool.take(a.id, 6);
		IF v6 IS NULL THEN
			o_rc := -28;
			RETURN;
		END IF;
	END IF;
	INSERT INTO vpnpool.lease (identity, slot, online, pool, addr4, addr6, sessions)
	VALUES (p_id, 0, false, a.id, p_addr4, v6, 0);
	o_rc := 0;
END $$;
