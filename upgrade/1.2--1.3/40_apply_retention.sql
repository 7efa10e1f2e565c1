------------------------------------------------------------------------------
-- Expiry: vms.apply_retention().  docs/retention.md walks through it.
--
-- Daily tables (segments, events, face_events): a row has expired when its
-- time span ended before now() minus its camera's retention, and no active
-- hold covers it.  A partition whose rows have all expired is retired whole
-- (detached; held rows, if any, moved into a fresh partition of the same day);
-- other partitions lose their expired rows one by one.  Segment files are
-- queued for their recorder in the same transaction.
-- Audit log: monthly partitions older than vms.audit_retention are dropped
-- oldest first, after their part of the chain checks out; the hash at the cut
-- becomes the new anchor, so vms.verify_audit() still proves the rest.
--
-- Locks: the row work takes only row-level locks on partitions.  Retiring a
-- partition needs a brief ACCESS EXCLUSIVE lock on its parent, which this
-- function never queues for (queries would stall behind it, and a queued lock
-- can close a deadlock cycle): it tries with NOWAIT for vms.partition_lock_wait
-- and leaves what it cannot lock to the next run.
------------------------------------------------------------------------------

-- What retention needs to know of each partitioned table.
ALTER TABLE vms.partitioned_tables
    ADD COLUMN retention    text CHECK (retention IN ('camera', 'audit')),
    ADD COLUMN start_column text,
    ADD COLUMN end_column   text,
    ADD COLUMN max_span     interval NOT NULL DEFAULT '0',
    ADD COLUMN files        boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN vms.partitioned_tables.retention IS 'Whose retention applies: the row''s camera, or vms.audit_retention';
COMMENT ON COLUMN vms.partitioned_tables.start_column IS 'Partition key: when the row''s time span starts';
COMMENT ON COLUMN vms.partitioned_tables.end_column IS 'When the row''s time span ends (expiry is measured from here)';
COMMENT ON COLUMN vms.partitioned_tables.max_span IS 'Longest span a row may have (end - start), so expiry can use the key''s index; in hours, not days (a day depends on TimeZone)';
COMMENT ON COLUMN vms.partitioned_tables.files IS 'Rows name files on a recorder, which must be queued for removal';
UPDATE vms.partitioned_tables SET retention = 'camera', start_column = 'start_time', end_column = 'end_time',
       max_span = '24:00:00', files = true WHERE parent = 'segments';
UPDATE vms.partitioned_tables SET retention = 'camera', start_column = 'event_time', end_column = 'event_time'
 WHERE parent IN ('events', 'face_events');
UPDATE vms.partitioned_tables SET retention = 'audit', start_column = 'sealed_at', end_column = 'sealed_at'
 WHERE parent = 'audit_log';

-- Partitions of a parent that pg_vms made (<parent>_pYYYYMMDD or _pYYYYMM), with their range.
CREATE FUNCTION vms._time_partitions(parent text)
RETURNS TABLE (partition_name text, from_ts timestamptz, to_ts timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    -- Bounds from dates, as the partitions were made: independent of TimeZone.
    SELECT c.relname::text, (x.first::text || ' 00:00:00+00')::timestamptz,
           ((x.first OPERATOR(pg_catalog.+) t.step)::date::text || ' 00:00:00+00')::timestamptz
      FROM vms.partitioned_tables p
      JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(p.parent))
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
      CROSS JOIN LATERAL (SELECT CASE p.period WHEN 'day' THEN '1 day'::interval ELSE '1 month'::interval END AS step,
                                 CASE p.period WHEN 'day' THEN 'YYYYMMDD' ELSE 'YYYYMM' END AS fmt,
                                 CASE p.period WHEN 'day' THEN 8 ELSE 6 END AS digits) t
      CROSS JOIN LATERAL (SELECT pg_catalog.to_date(pg_catalog.right(c.relname::text, t.digits), t.fmt) AS first) x
     WHERE p.parent OPERATOR(pg_catalog.=) $1
       AND c.relname::text OPERATOR(pg_catalog.~) ('^' || p.parent || '_p[0-9]{' || t.digits || '}$')
     ORDER BY 2;
$$;
COMMENT ON FUNCTION vms._time_partitions(text) IS 'The time partitions of a pg_vms table, oldest first, with their range';

-- Renames a detached partition and its indexes, freeing the names for a new
-- partition of the same range.
CREATE FUNCTION vms._rename_detached(part text, new_name text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    idx text;
BEGIN
    EXECUTE pg_catalog.format('ALTER TABLE vms.%I RENAME TO %I', part, new_name);
    FOR idx IN SELECT c.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
                WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(new_name)) LOOP
        EXECUTE pg_catalog.format('ALTER INDEX vms.%I RENAME TO %I', idx,
                                  pg_catalog.left(pg_catalog.replace(idx, part, new_name), 63));
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._rename_detached(text, text) IS 'Renames a detached partition and its indexes';

-- SQL conditions on a row "s" of a daily table, given camera cutoffs ($1 ids,
-- $2 cutoffs) and holds ($3 cameras, $4 from, $5 to).  Each keeps to the
-- partition key's index: (camera_id, start) within max_span of the time.
CREATE FUNCTION vms._row_conditions(t vms.partitioned_tables, OUT unexpired text, OUT expired text, OUT held text)
RETURNS record LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, vms, pg_temp AS $$
    SELECT pg_catalog.format('EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[])) c(id, cutoff) '
                             'WHERE c.id OPERATOR(pg_catalog.=) s.camera_id AND s.%1$I OPERATOR(pg_catalog.>) c.cutoff)',
                             t.end_column),
           pg_catalog.format('EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[])) c(id, cutoff) '
                             'WHERE c.id OPERATOR(pg_catalog.=) s.camera_id AND s.%1$I OPERATOR(pg_catalog.<=) c.cutoff)',
                             t.end_column),
           pg_catalog.format('EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($3::integer[]), pg_catalog.unnest($4::timestamptz[]), pg_catalog.unnest($5::timestamptz[])) h(cam, f, t) '
                             'WHERE h.cam OPERATOR(pg_catalog.=) s.camera_id AND s.%1$I OPERATOR(pg_catalog.<) h.t '
                             'AND s.%2$I OPERATOR(pg_catalog.>=) h.f)',
                             t.start_column, t.end_column);
$$;
COMMENT ON FUNCTION vms._row_conditions(vms.partitioned_tables) IS 'Expiry and hold conditions on a row s of a daily table';

-- Does a daily partition hold a row that has not expired, or one a hold
-- covers?  One index probe per camera and per hold; none for expiry when the
-- partition ends (plus the longest span) before every camera's cutoff.
CREATE FUNCTION vms._partition_keeps(t vms.partitioned_tables, part text, to_ts timestamptz,
                                     cams integer[], cuts timestamptz[],
                                     hcams integer[], hfrom timestamptz[], hto timestamptz[],
                                     OUT unexpired boolean, OUT held boolean)
RETURNS record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    IF to_ts OPERATOR(pg_catalog.+) t.max_span OPERATOR(pg_catalog.<=) (SELECT pg_catalog.min(x) FROM pg_catalog.unnest(cuts) x) THEN
        unexpired := false;
    ELSE
        EXECUTE pg_catalog.format(
            'SELECT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[])) c(id, cutoff) '
            '  WHERE EXISTS (SELECT 1 FROM vms.%1$I s WHERE s.camera_id OPERATOR(pg_catalog.=) c.id '
            '    AND s.%2$I OPERATOR(pg_catalog.>) (c.cutoff OPERATOR(pg_catalog.-) $3) AND s.%3$I OPERATOR(pg_catalog.>) c.cutoff))',
            part, t.start_column, t.end_column)
        INTO unexpired USING cams, cuts, t.max_span;
    END IF;
    EXECUTE pg_catalog.format(
        'SELECT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest($1::integer[]), pg_catalog.unnest($2::timestamptz[]), pg_catalog.unnest($3::timestamptz[])) h(cam, f, t) '
        '  WHERE EXISTS (SELECT 1 FROM vms.%1$I s WHERE s.camera_id OPERATOR(pg_catalog.=) h.cam '
        '    AND s.%2$I OPERATOR(pg_catalog.<) h.t AND s.%2$I OPERATOR(pg_catalog.>=) (h.f OPERATOR(pg_catalog.-) $4) '
        '    AND s.%3$I OPERATOR(pg_catalog.>=) h.f))',
        part, t.start_column, t.end_column)
        INTO held USING hcams, hfrom, hto, t.max_span;
END
$$;
COMMENT ON FUNCTION vms._partition_keeps(vms.partitioned_tables, text, timestamptz, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]) IS
    'Whether a daily partition still holds unexpired or held rows';

-- The row path on one daily partition: delete the expired rows no hold
-- covers; queue the files of segments in the same statement.
CREATE FUNCTION vms._expire_rows(t vms.partitioned_tables, part text, cams integer[], cuts timestamptz[],
                                 hcams integer[], hfrom timestamptz[], hto timestamptz[],
                                 OUT rows bigint, OUT files bigint, OUT bytes bigint)
RETURNS record LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    cond record;
BEGIN
    SELECT * INTO cond FROM vms._row_conditions(t);
    files := 0;
    bytes := 0;
    IF t.files THEN
        EXECUTE pg_catalog.format(
            'WITH gone AS (DELETE FROM vms.%1$I s WHERE %2$s AND NOT %3$s '
            '              RETURNING s.id, s.camera_id, s.recorder, s.start_time, s.end_time, s.path, s.bytes, s.sha256), '
            '     q AS (INSERT INTO vms.purge_queue (segment_id, camera_id, recorder, start_time, end_time, path, bytes, sha256) '
            '           SELECT * FROM gone RETURNING bytes) '
            'SELECT pg_catalog.count(*), COALESCE(pg_catalog.sum(q.bytes), 0) FROM q',
            part, cond.expired, cond.held)
            INTO files, bytes USING cams, cuts, hcams, hfrom, hto;
        rows := files;
    ELSE
        EXECUTE pg_catalog.format('DELETE FROM vms.%1$I s WHERE %2$s AND NOT %3$s', part, cond.expired, cond.held)
            USING cams, cuts, hcams, hfrom, hto;
        GET DIAGNOSTICS rows = ROW_COUNT;
    END IF;
END
$$;
COMMENT ON FUNCTION vms._expire_rows(vms.partitioned_tables, text, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]) IS
    'Deletes the expired, unheld rows of one daily partition and queues their files';

-- Retires a daily partition whose rows have all expired (the caller holds the
-- locks): detach it; move held rows into a fresh partition of the same day;
-- queue the files (the detached table becomes a purge batch) or drop it.
-- Returns the number of held rows moved.
CREATE FUNCTION vms._retire_partition(t vms.partitioned_tables, part text, from_ts timestamptz, to_ts timestamptz,
                                      hcams integer[], hfrom timestamptz[], hto timestamptz[], move_held boolean)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    old text := 'expired_' || part;
    n integer := 1;
    cols text;
    cond record;
    moved bigint := 0;
    empty boolean;
BEGIN
    SELECT * INTO cond FROM vms._row_conditions(t);
    -- A day retired before (a late segment made it again) may still be a batch.
    WHILE pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(old)) IS NOT NULL LOOP
        n := n + 1;
        old := 'expired_' || part || '_' || n;
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE vms.%I DETACH PARTITION vms.%I', t.parent, part);
    PERFORM vms._rename_detached(part, old);
    IF move_held THEN
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(t.parent))
           AND a.attnum > 0 AND NOT a.attisdropped;
        PERFORM vms._ensure_partition(t.parent, from_ts, to_ts, pg_catalog.substr(part, pg_catalog.length(t.parent) + 3));
        EXECUTE pg_catalog.format('WITH m AS (DELETE FROM vms.%1$I s WHERE %3$s RETURNING s.*) '
                                  'INSERT INTO vms.%2$I (%4$s) SELECT %4$s FROM m',
                                  old, part, cond.held, cols)
            USING NULL::integer[], NULL::timestamptz[], hcams, hfrom, hto;
        GET DIAGNOSTICS moved = ROW_COUNT;
    END IF;
    EXECUTE pg_catalog.format('SELECT NOT EXISTS (SELECT 1 FROM vms.%I)', old) INTO empty;
    IF t.files AND NOT empty THEN
        -- The detached table is the list of files to remove; only the owner reads it.
        EXECUTE pg_catalog.format('ALTER TABLE vms.%I ENABLE ROW LEVEL SECURITY', old);
        EXECUTE pg_catalog.format('ALTER TABLE vms.%I FORCE ROW LEVEL SECURITY', old);
        EXECUTE pg_catalog.format('COMMENT ON TABLE vms.%I IS %L', old,
            pg_catalog.format('Expired segments of [%s, %s): files waiting for their recorder to remove them (vms.purge_batches)',
                              from_ts, to_ts));
        INSERT INTO vms.purge_batches (table_name, day) VALUES (old, (from_ts AT TIME ZONE 'UTC')::date);
    ELSE
        EXECUTE pg_catalog.format('DROP TABLE vms.%I', old);
    END IF;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION vms._retire_partition(vms.partitioned_tables, text, timestamptz, timestamptz, integer[], timestamptz[], timestamptz[], boolean) IS
    'Detaches an expired daily partition, keeps its held rows, and queues its files or drops it';

-- Checks the chain through one audit partition from the current anchor.
-- Returns the last entry (the new anchor), or a problem.
CREATE FUNCTION vms._audit_partition_end(part text, anchor_seq bigint, anchor_hash bytea,
                                         OUT last_seq bigint, OUT last_hash bytea, OUT entries bigint, OUT problem text)
RETURNS record LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    nxt vms.audit_log;
BEGIN
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.min(x.seq) FILTER (WHERE NOT x.ok) FROM ('
        '  SELECT l.seq, l.seq OPERATOR(pg_catalog.=) (COALESCE(l.prev_seq, $1) OPERATOR(pg_catalog.+) 1)'
        '         AND l.hash OPERATOR(pg_catalog.=) vms.audit_hash(COALESCE(l.prev_hash, $2), l.seq, l.sealed_at, l.logged_at,'
        '             l.actor, l.session_user_name, l.client_addr, l.action, l.camera_id, l.target, l.outcome, l.details) AS ok'
        '    FROM (SELECT e.*, pg_catalog.lag(e.seq) OVER w AS prev_seq, pg_catalog.lag(e.hash) OVER w AS prev_hash'
        '            FROM vms.%I e WINDOW w AS (ORDER BY e.seq)) l) x', part)
        INTO last_seq USING anchor_seq, anchor_hash;
    IF last_seq IS NOT NULL THEN
        problem := pg_catalog.format('the chain breaks at entry %s (or an entry before it is missing)', last_seq);
        last_seq := NULL;
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('SELECT e.seq, e.hash, (SELECT pg_catalog.count(*) FROM vms.%1$I) FROM vms.%1$I e '
                              'ORDER BY e.seq DESC LIMIT 1', part)
        INTO last_seq, last_hash, entries;
    entries := COALESCE(entries, 0);
    IF last_seq IS NULL THEN
        RETURN;
    END IF;
    -- Entries cut from the end of the month would not show inside it: the
    -- next entry must chain from its last one.
    SELECT * INTO nxt FROM vms.audit_log l WHERE l.seq OPERATOR(pg_catalog.=) last_seq + 1;
    IF NOT FOUND OR nxt.hash OPERATOR(pg_catalog.<>) vms.audit_hash(last_hash, nxt.seq, nxt.sealed_at, nxt.logged_at,
            nxt.actor, nxt.session_user_name, nxt.client_addr, nxt.action, nxt.camera_id, nxt.target, nxt.outcome, nxt.details) THEN
        problem := pg_catalog.format('entry %s, after the month''s last entry %s, is missing or does not chain from it',
                                     last_seq + 1, last_seq);
        last_seq := NULL;
        last_hash := NULL;
    END IF;
END
$$;
COMMENT ON FUNCTION vms._audit_partition_end(text, bigint, bytea) IS
    'Verifies one audit partition''s entries against the chain from the anchor; returns its last entry';

CREATE FUNCTION vms._apply_retention(OUT partitions_retired integer, OUT rows_deleted bigint, OUT files_queued bigint,
                                     OUT bytes_queued bigint, OUT held_rows_kept bigint, OUT audit_partitions_dropped integer,
                                     OUT partitions_deferred integer, OUT purge_batches_finished integer)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp
SET TimeZone = 'UTC' AS $$
DECLARE
    cams integer[];
    cuts timestamptz[];
    cap interval;
    dflt interval;
    max_cut timestamptz;
    hcams integer[];
    hfrom timestamptz[];
    hto timestamptz[];
    t vms.partitioned_tables;
    p record;
    h record;
    keeps record;
    cond record;
    gone record;
    par text;
    locked boolean;
    still boolean;
    n bigint;
    nbytes bigint;
    reltuples double precision;
    held_count bigint;
    -- Partitions to retire: parent, name, range, whether held rows move.
    ret_parent text[] := '{}';
    ret_part text[] := '{}';
    ret_from timestamptz[] := '{}';
    ret_to timestamptz[] := '{}';
    ret_move boolean[] := '{}';
    audit_parts text[] := '{}';
    audit_ends bigint[] := '{}';
    audit_hashes bytea[] := '{}';
    audit_counts bigint[] := '{}';
    anchor_seq bigint;
    anchor_hash bytea;
    audit_cut timestamptz;
    audit_problem text;
    ends record;
    lock_list text[];
    i integer;
    per_table jsonb := '{}';
BEGIN
    IF NOT vms._role_has(vms._invoker(), 'vms_maintenance') THEN
        PERFORM vms._require_all('manage_retention');
    END IF;
    partitions_retired := 0; rows_deleted := 0; files_queued := 0; bytes_queued := 0; held_rows_kept := 0;
    audit_partitions_dropped := 0; partitions_deferred := 0; purge_batches_finished := 0;
    -- Each statement must see the holds as they are once locked below.
    IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
        RAISE EXCEPTION 'vms.apply_retention() runs only at READ COMMITTED isolation'
            USING ERRCODE = 'invalid_transaction_state',
                  HINT = 'A snapshot taken before the run would not see holds placed since.';
    END IF;
    -- One run at a time (pg_cron and a manual call, say).  The lock is on a
    -- table only the owner may lock, so no user can hold retention off.
    IF NOT vms._lock_nowait(ARRAY['purge_batches'], 'SHARE ROW EXCLUSIVE') THEN
        RAISE EXCEPTION 'vms.apply_retention() is already running in another session'
            USING ERRCODE = 'lock_not_available';
    END IF;
    -- No hold may be placed or released while this run decides what goes:
    -- the holds read below stay true until it commits.  A hold change left
    -- open in a transaction fails the run, visibly (pg_cron's run log, audit).
    IF NOT vms._lock_nowait(ARRAY['evidence_holds'], 'SHARE') THEN
        RAISE EXCEPTION 'evidence holds are being changed in a transaction that stays open'
            USING ERRCODE = 'lock_not_available',
                  HINT = 'pg_stat_activity shows the session; retention runs again on its next schedule.';
    END IF;

    -- Holds that ended by their expiry since the last run: audited once.
    FOR h IN UPDATE vms.evidence_holds x SET expiry_recorded_at = pg_catalog.now()
              WHERE x.released_at IS NULL AND x.expiry_recorded_at IS NULL
                AND x.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
             RETURNING x.* LOOP
        PERFORM vms._audit('hold_expired', h.camera_id, h.id::text,
                           pg_catalog.jsonb_build_object('from_time', h.from_time, 'to_time', h.to_time,
                                                         'expires_at', h.expires_at, 'reason', h.reason));
    END LOOP;

    -- The cap and the default once, not per camera.
    cap := vms._setting_interval('vms.max_retention');
    dflt := vms._default_retention();
    SELECT pg_catalog.array_agg(c.id ORDER BY c.id),
           pg_catalog.array_agg(pg_catalog.now() OPERATOR(pg_catalog.-) LEAST(COALESCE(c.retention, dflt), cap) ORDER BY c.id)
      INTO cams, cuts FROM vms.cameras c;
    SELECT pg_catalog.max(x) INTO max_cut FROM pg_catalog.unnest(cuts) x;
    SELECT COALESCE(pg_catalog.array_agg(a.camera_id), '{}'), COALESCE(pg_catalog.array_agg(a.from_time), '{}'),
           COALESCE(pg_catalog.array_agg(a.to_time), '{}')
      INTO hcams, hfrom, hto FROM vms.active_holds a;

    -- Daily tables: the row work now; partitions to retire are collected.
    FOR t IN SELECT * FROM vms.partitioned_tables x
              WHERE x.retention OPERATOR(pg_catalog.=) 'camera' ORDER BY x.parent LOOP
        EXIT WHEN max_cut IS NULL;
        SELECT * INTO cond FROM vms._row_conditions(t);
        n := 0;
        FOR p IN SELECT * FROM vms._time_partitions(t.parent) x WHERE x.from_ts OPERATOR(pg_catalog.<) max_cut LOOP
            SELECT * INTO keeps FROM vms._partition_keeps(t, p.partition_name, p.to_ts, cams, cuts, hcams, hfrom, hto);
            IF NOT keeps.unexpired THEN
                -- Held rows move out when they are few; otherwise delete the rest.
                held_count := 0;
                IF keeps.held THEN
                    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM vms.%I s WHERE %s', p.partition_name, cond.held)
                        INTO held_count USING NULL::integer[], NULL::timestamptz[], hcams, hfrom, hto;
                    SELECT c.reltuples INTO reltuples FROM pg_catalog.pg_class c
                     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(p.partition_name));
                    IF reltuples < 0 THEN
                        -- Never analysed: count (still far cheaper than deleting).
                        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM vms.%I', p.partition_name) INTO reltuples;
                    END IF;
                END IF;
                IF NOT keeps.held OR held_count::double precision <= GREATEST(reltuples, 0) / 2 THEN
                    ret_parent := ret_parent || t.parent;
                    ret_part := ret_part || p.partition_name::text;
                    ret_from := ret_from || p.from_ts;
                    ret_to := ret_to || p.to_ts;
                    ret_move := ret_move || keeps.held;
                    CONTINUE;
                END IF;
            END IF;
            SELECT * INTO gone FROM vms._expire_rows(t, p.partition_name, cams, cuts, hcams, hfrom, hto);
            n := gone.rows;
            files_queued := files_queued + gone.files;
            bytes_queued := bytes_queued + gone.bytes;
            rows_deleted := rows_deleted + n;
            per_table := per_table OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(t.parent,
                COALESCE((per_table OPERATOR(pg_catalog.->>) t.parent)::bigint, 0) + n);
        END LOOP;
    END LOOP;

    -- Audit log: whole months past vms.audit_retention (never shorter than
    -- vms.max_retention), oldest first, each checked against the chain.
    audit_cut := pg_catalog.now() OPERATOR(pg_catalog.-)
                 GREATEST(vms._setting_interval('vms.audit_retention'), vms._setting_interval('vms.max_retention'));
    SELECT a.seq, a.hash INTO anchor_seq, anchor_hash FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1;
    FOR p IN SELECT * FROM vms._time_partitions('audit_log') x WHERE x.to_ts OPERATOR(pg_catalog.<=) audit_cut LOOP
        SELECT * INTO ends FROM vms._audit_partition_end(p.partition_name, anchor_seq, anchor_hash);
        IF ends.problem IS NOT NULL THEN
            audit_problem := pg_catalog.format('%s: %s', p.partition_name, ends.problem);
            RAISE WARNING 'pg_vms: audit partition % is past retention but not dropped: %', p.partition_name, ends.problem
                USING HINT = 'Run vms.verify_audit(); a broken chain is evidence and is kept.';
            EXIT;
        END IF;
        audit_parts := audit_parts || p.partition_name::text;
        audit_ends := audit_ends || COALESCE(ends.last_seq, anchor_seq);
        audit_hashes := audit_hashes || COALESCE(ends.last_hash, anchor_hash);
        audit_counts := audit_counts || ends.entries;
        anchor_seq := COALESCE(ends.last_seq, anchor_seq);
        anchor_hash := COALESCE(ends.last_hash, anchor_hash);
    END LOOP;

    -- The brief exclusive part, one parent at a time in name order.  A parent
    -- that cannot be locked in time (a reader left a transaction open, say)
    -- has its partitions expired row by row instead: slower, never later.
    IF pg_catalog.cardinality(audit_parts) > 0 THEN
        IF vms._lock_nowait(ARRAY['audit_log'] || audit_parts) THEN
            FOR i IN 1 .. pg_catalog.cardinality(audit_parts) LOOP
                IF audit_ends[i] OPERATOR(pg_catalog.>) (SELECT a.seq FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1) THEN
                    INSERT INTO vms.audit_anchor (seq, hash, reason)
                    VALUES (audit_ends[i], audit_hashes[i],
                            pg_catalog.format('retention: dropped vms.%s (%s entries through seq %s)',
                                              audit_parts[i], audit_counts[i], audit_ends[i]));
                END IF;
                EXECUTE pg_catalog.format('ALTER TABLE vms.audit_log DETACH PARTITION vms.%I', audit_parts[i]);
                EXECUTE pg_catalog.format('DROP TABLE vms.%I', audit_parts[i]);
                audit_partitions_dropped := audit_partitions_dropped + 1;
            END LOOP;
        ELSE
            partitions_deferred := partitions_deferred + pg_catalog.cardinality(audit_parts);
            RAISE NOTICE 'pg_vms: % audit partitions past retention wait for the next run: vms.audit_log could not be locked within vms.partition_lock_wait',
                         pg_catalog.cardinality(audit_parts);
        END IF;
    END IF;
    -- An autovacuum worker on a partition to retire would hold it off, and a
    -- lock taken with NOWAIT never makes PostgreSQL cancel the worker the way
    -- a waiting one does.  Cancel it here, as a waiting lock would.
    PERFORM pg_catalog.pg_cancel_backend(a.pid) FROM pg_catalog.pg_stat_activity a
     WHERE a.backend_type OPERATOR(pg_catalog.=) 'autovacuum worker'
       AND (a.pid IN (SELECT v.pid FROM pg_catalog.pg_stat_progress_vacuum v
                       WHERE v.relid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(x))::oid
                                                                        FROM pg_catalog.unnest(ret_part) x)))
            OR a.pid IN (SELECT v.pid FROM pg_catalog.pg_stat_progress_analyze v
                          WHERE v.relid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(x))::oid
                                                                           FROM pg_catalog.unnest(ret_part) x))));
    FOR par IN SELECT DISTINCT x FROM pg_catalog.unnest(ret_parent) x ORDER BY 1 LOOP
        SELECT * INTO t FROM vms.partitioned_tables x WHERE x.parent OPERATOR(pg_catalog.=) par;
        locked := vms._lock_nowait(ARRAY[par] || ARRAY(SELECT ret_part[k] FROM pg_catalog.generate_subscripts(ret_part, 1) k
                                                       WHERE ret_parent[k] OPERATOR(pg_catalog.=) par ORDER BY k));
        FOR i IN 1 .. pg_catalog.cardinality(ret_part) LOOP
            CONTINUE WHEN ret_parent[i] OPERATOR(pg_catalog.<>) par;
            IF locked THEN
                -- Under the lock nothing changes any more; a row may have come meanwhile.
                SELECT * INTO keeps FROM vms._partition_keeps(t, ret_part[i], ret_to[i], cams, cuts, hcams, hfrom, hto);
                IF NOT (keeps.unexpired OR (keeps.held AND NOT ret_move[i])) THEN
                    held_rows_kept := held_rows_kept + vms._retire_partition(t, ret_part[i], ret_from[i], ret_to[i],
                                                                             hcams, hfrom, hto, keeps.held);
                    partitions_retired := partitions_retired + 1;
                    CONTINUE;
                END IF;
            ELSE
                partitions_deferred := partitions_deferred + 1;
            END IF;
            SELECT * INTO gone FROM vms._expire_rows(t, ret_part[i], cams, cuts, hcams, hfrom, hto);
            rows_deleted := rows_deleted + gone.rows;
            files_queued := files_queued + gone.files;
            bytes_queued := bytes_queued + gone.bytes;
            per_table := per_table OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(t.parent,
                COALESCE((per_table OPERATOR(pg_catalog.->>) t.parent)::bigint, 0) + gone.rows);
        END LOOP;
        IF NOT locked THEN
            RAISE NOTICE 'pg_vms: vms.% could not be locked within vms.partition_lock_wait: its expired partitions were emptied row by row',
                         par;
        END IF;
    END LOOP;

    -- Purge batches whose files have all been confirmed: dropped when they
    -- can be locked at once (a recorder confirming holds it for a moment).
    FOR p IN SELECT b.id, b.table_name FROM vms.purge_batches b ORDER BY b.id LOOP
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM vms.%I)', p.table_name) INTO still;
        CONTINUE WHEN still;
        BEGIN
            EXECUTE pg_catalog.format('LOCK TABLE vms.%I IN ACCESS EXCLUSIVE MODE NOWAIT', p.table_name);
            EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM vms.%I)', p.table_name) INTO still;
            IF NOT still THEN
                EXECUTE pg_catalog.format('DROP TABLE vms.%I', p.table_name);
                DELETE FROM vms.purge_batches b WHERE b.id OPERATOR(pg_catalog.=) p.id;
                purge_batches_finished := purge_batches_finished + 1;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END LOOP;

    PERFORM vms._audit('apply_retention', NULL, NULL,
                       pg_catalog.jsonb_build_object('partitions_retired', partitions_retired, 'rows_deleted', rows_deleted,
                                                     'rows_deleted_by_table', per_table,
                                                     'files_queued', files_queued, 'bytes_queued', bytes_queued,
                                                     'held_rows_kept', held_rows_kept,
                                                     'audit_partitions_dropped', audit_partitions_dropped,
                                                     'audit_problem', audit_problem,
                                                     'partitions_deferred', partitions_deferred,
                                                     'purge_batches_finished', purge_batches_finished));
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('apply_retention', NULL, NULL, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._apply_retention() IS 'Body of vms.apply_retention(): runs as the owner, for the caller the trampoline recorded';
CREATE FUNCTION vms.apply_retention(OUT partitions_retired integer, OUT rows_deleted bigint, OUT files_queued bigint,
                                    OUT bytes_queued bigint, OUT held_rows_kept bigint, OUT audit_partitions_dropped integer,
                                    OUT partitions_deferred integer, OUT purge_batches_finished integer)
RETURNS record AS 'MODULE_PATHNAME', 'vms_api_call' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION vms.apply_retention() IS
    'Removes recordings, events and face events past their camera''s retention and audit entries past vms.audit_retention, except what holds keep; queues the files for their recorders (vms_maintenance, or manage_retention with scope all)';

REVOKE ALL ON FUNCTION vms._time_partitions(text), vms._rename_detached(text, text),
                       vms._row_conditions(vms.partitioned_tables),
                       vms._partition_keeps(vms.partitioned_tables, text, timestamptz, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]),
                       vms._retire_partition(vms.partitioned_tables, text, timestamptz, timestamptz, integer[], timestamptz[], timestamptz[], boolean),
                       vms._audit_partition_end(text, bigint, bytea),
                       vms._expire_rows(vms.partitioned_tables, text, integer[], timestamptz[], integer[], timestamptz[], timestamptz[]),
                       vms._apply_retention(), vms.apply_retention() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vms.apply_retention() TO vms_user;
