------------------------------------------------------------------------------
-- The time-partitioned tables no longer carry foreign keys to vms.cameras.
-- Each partition had its own, so creating, detaching or dropping a partition
-- locked vms.cameras, which every API call and every row-level security check
-- reads: retention could then hardly ever retire a partition under load, and
-- waited in the lock queue in front of every API call (TAP 012).  The API
-- keeps the reference sound instead: rows are only registered for a camera
-- that exists, and vms.remove_camera() refuses a camera that still has any.
------------------------------------------------------------------------------
ALTER TABLE vms.segments DROP CONSTRAINT segments_camera_id_fkey;
ALTER TABLE vms.events DROP CONSTRAINT events_camera_id_fkey;
ALTER TABLE vms.face_events DROP CONSTRAINT face_events_camera_id_fkey;

CREATE OR REPLACE FUNCTION vms._remove_camera(camera_id integer)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    cam_name text;
BEGIN
    PERFORM vms._require_camera('manage_cameras', camera_id);
    SELECT c.name INTO cam_name FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id FOR UPDATE;
    -- No registration may slip in between the check and the delete: SHARE
    -- waits for inserts in progress (readers are not held up) and keeps new
    -- ones out until this commits.  Camera removal is rare; inserts are short.
    LOCK TABLE ONLY vms.segments, vms.events, vms.face_events IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM vms.segments s WHERE s.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.events e WHERE e.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.face_events f WHERE f.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.purge_queue q WHERE q.camera_id OPERATOR(pg_catalog.=) camera_id)
       OR EXISTS (SELECT 1 FROM vms.purge_batches b
                   WHERE vms._batch_has_camera(b.table_name, camera_id)) THEN
        RAISE EXCEPTION 'camera % still has recordings, events or files waiting for removal', camera_id
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Disable it with vms.update_camera(camera_id, enabled => false); retention removes the recordings.';
    END IF;
    DELETE FROM vms.cameras c WHERE c.id OPERATOR(pg_catalog.=) camera_id;
    PERFORM vms._audit('remove_camera', camera_id, cam_name, NULL);
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail('remove_camera', camera_id, cam_name, SQLSTATE, SQLERRM);
    RAISE;
END
$$;

CREATE FUNCTION vms._batch_has_camera(table_name text, camera_id integer)
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM vms.%I s WHERE s.camera_id OPERATOR(pg_catalog.=) $1)', table_name)
        INTO found USING camera_id;
    RETURN found;
EXCEPTION WHEN undefined_table THEN
    RETURN false;
END
$$;
COMMENT ON FUNCTION vms._batch_has_camera(text, integer) IS 'Does a purge batch still list files of the camera?';
REVOKE ALL ON FUNCTION vms._batch_has_camera(text, integer) FROM PUBLIC;

------------------------------------------------------------------------------
-- Exclusive locks for partition changes, taken without queueing.
--
-- Adding or retiring a partition needs an ACCESS EXCLUSIVE lock on its parent.
-- A session queued for such a lock stalls every query behind it, and one that
-- waits while already holding the lock of another parent can close a deadlock
-- cycle with a reader of both (found by TAP 009: the worker creating segments
-- and audit_log partitions against a report reading audit_log, then segments).
-- So pg_vms takes these locks with NOWAIT, retried for vms.partition_lock_wait.
------------------------------------------------------------------------------
-- Takes ACCESS EXCLUSIVE locks on the given tables (schema vms) without ever
-- queueing: all or none, retried with NOWAIT until vms.partition_lock_wait.
CREATE FUNCTION vms._lock_nowait(tables text[], mode text DEFAULT 'ACCESS EXCLUSIVE')
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    deadline timestamptz := pg_catalog.clock_timestamp()
                            OPERATOR(pg_catalog.+) vms._setting_interval('vms.partition_lock_wait');
    rel text;
BEGIN
    IF mode NOT IN ('ACCESS EXCLUSIVE', 'SHARE ROW EXCLUSIVE', 'SHARE') THEN
        RAISE EXCEPTION 'lock mode % is not one pg_vms uses', mode USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.cardinality(tables) IS NULL OR pg_catalog.cardinality(tables) = 0 THEN
        RETURN true;
    END IF;
    LOOP
        BEGIN
            FOREACH rel IN ARRAY tables LOOP
                -- ONLY: a partitioned parent alone, not every partition under it.
                EXECUTE pg_catalog.format('LOCK TABLE ONLY vms.%I IN %s MODE NOWAIT', rel, mode);
            END LOOP;
            RETURN true;
        EXCEPTION WHEN lock_not_available THEN
            -- The subtransaction let go of the locks it had taken.
            NULL;
        END;
        IF pg_catalog.clock_timestamp() >= deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_catalog.pg_sleep(0.005 + pg_catalog.random() * 0.02);
    END LOOP;
END
$$;
COMMENT ON FUNCTION vms._lock_nowait(text[], text) IS
    'Locks tables without queueing (NOWAIT, retried until vms.partition_lock_wait); all or none';

CREATE OR REPLACE FUNCTION vms._ensure_partition(parent text, from_ts timestamptz, to_ts timestamptz, suffix text)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    part text := parent || '_p' || suffix;
    t vms.partitioned_tables%ROWTYPE;
    cols text;
BEGIN
    IF pg_catalog.to_regclass(pg_catalog.format('vms.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    SELECT * INTO t FROM vms.partitioned_tables p WHERE p.parent OPERATOR(pg_catalog.=) _ensure_partition.parent;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'vms.% is not a partitioned table of pg_vms', parent USING ERRCODE = 'undefined_table';
    END IF;
    -- Creating a partition takes an ACCESS EXCLUSIVE lock on the parent.  Take
    -- it first and never queue: a creator that waits while holding another parent's lock
    -- can close a deadlock cycle with a reader of both (TAP 009, TAP 012).
    -- A relation lock also makes this backend read the catalog changes the
    -- previous holder committed, so the check below sees its table.
    IF NOT vms._lock_nowait(ARRAY[parent]) THEN
        RAISE EXCEPTION 'partition vms.% could not be created now: its tables stayed busy for vms.partition_lock_wait', part
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Try again.  The worker creates partitions days ahead; only late or early data meets this.';
    END IF;
    IF pg_catalog.to_regclass(pg_catalog.format('vms.%I', part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format('CREATE TABLE vms.%I PARTITION OF vms.%I FOR VALUES FROM (%L) TO (%L)',
                              part, parent, from_ts, to_ts);
    -- Keys on each partition, not on the parent (see the note at vms.segments).
    EXECUTE pg_catalog.format('ALTER TABLE vms.%I ADD PRIMARY KEY (%s)', part, t.key_columns);
    FOREACH cols IN ARRAY t.extra_indexes LOOP
        EXECUTE pg_catalog.format('CREATE INDEX ON vms.%I (%s)', part, cols);
    END LOOP;
    -- Statement triggers are not cloned to partitions.
    IF t.append_only THEN
        EXECUTE pg_catalog.format('CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON vms.%I '
                                  'FOR EACH STATEMENT EXECUTE FUNCTION vms._append_only()', part);
    END IF;
    EXECUTE pg_catalog.format('COMMENT ON TABLE vms.%I IS %L', part,
                              pg_catalog.format('Partition of vms.%s for [%s, %s)', parent, from_ts, to_ts));
    RETURN true;
END
$$;

REVOKE ALL ON FUNCTION vms._lock_nowait(text[], text) FROM PUBLIC;

-- A day's partitions of every daily table, locked together (all or none) so
-- that a creator never holds one parent while waiting for the next.  Used
-- ahead of time (vms.create_partitions); a registration needs only its own
-- table's partition (vms._ensure_day_partition) and then tries this, best
-- effort.  Returns how many it made, or NULL when the tables stayed busy.
CREATE OR REPLACE FUNCTION vms._ensure_day_partitions(day date)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    from_ts timestamptz := (day::text || ' 00:00:00+00')::timestamptz;
    to_ts timestamptz := ((day + 1)::text || ' 00:00:00+00')::timestamptz;
    suffix text := pg_catalog.to_char(day, 'YYYYMMDD');
    missing text[];
    t text;
    n integer := 0;
BEGIN
    SELECT pg_catalog.array_agg(p.parent ORDER BY p.parent) INTO missing FROM vms.partitioned_tables p
     WHERE p.period OPERATOR(pg_catalog.=) 'day'
       AND pg_catalog.to_regclass(pg_catalog.format('vms.%I', p.parent || '_p' || suffix)) IS NULL;
    IF missing IS NULL THEN
        RETURN 0;
    END IF;
    IF NOT vms._lock_nowait(missing) THEN
        RETURN NULL;  -- busy: left for the next call
    END IF;
    FOREACH t IN ARRAY missing LOOP
        IF vms._ensure_partition(t, from_ts, to_ts, suffix) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;

-- As before, but a day whose tables stay busy is left for the next call
-- instead of failing the rest.
CREATE OR REPLACE FUNCTION vms.create_partitions(days_ahead integer DEFAULT 7, days_behind integer DEFAULT 1)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    today date := (pg_catalog.now() AT TIME ZONE 'UTC')::date;
    n integer := 0;
    busy integer := 0;
    k integer;
    d integer;
    m date;
BEGIN
    IF days_ahead IS NULL OR days_behind IS NULL OR days_ahead < 0 OR days_behind < 0
       OR days_ahead > 366 OR days_behind > 366 THEN
        RAISE EXCEPTION 'days_ahead and days_behind must be between 0 and 366'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR d IN -days_behind .. days_ahead LOOP
        k := vms._ensure_day_partitions(today + d);
        IF k IS NULL THEN
            busy := busy + 1;
        ELSE
            n := n + k;
        END IF;
    END LOOP;
    FOREACH m IN ARRAY ARRAY[today, (today + '1 month'::interval)::date] LOOP
        BEGIN
            n := n + vms._ensure_audit_partition(m);
        EXCEPTION WHEN lock_not_available THEN
            busy := busy + 1;
        END;
    END LOOP;
    IF busy > 0 THEN
        RAISE NOTICE 'pg_vms: % days of partitions were left for the next call: their tables stayed busy', busy;
    END IF;
    RETURN n;
END
$$;

-- The partition of one daily table for one day, which a registration is
-- about to insert into.  Tried without queueing first; then queued, for at
-- most ten times vms.partition_lock_wait: safe from deadlock, because the
-- caller holds no other parent's exclusive lock at this point.
CREATE FUNCTION vms._ensure_day_partition(parent text, day date)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    suffix text := pg_catalog.to_char(day, 'YYYYMMDD');
BEGIN
    IF day IS NULL OR pg_catalog.to_regclass(pg_catalog.format('vms.%I', parent || '_p' || suffix)) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF NOT vms._lock_nowait(ARRAY[parent]) THEN
        -- Bounded, so that a reader idle in a transaction cannot make every
        -- later reader queue behind this request for long.
        PERFORM pg_catalog.set_config('lock_timeout', (10 * vms._setting_int('vms.partition_lock_wait'))::text, true);
        EXECUTE pg_catalog.format('LOCK TABLE ONLY vms.%I IN ACCESS EXCLUSIVE MODE', parent);
    END IF;
    RETURN vms._ensure_partition(parent, (day::text || ' 00:00:00+00')::timestamptz,
                                 ((day + 1)::text || ' 00:00:00+00')::timestamptz, suffix);
END
$$;
COMMENT ON FUNCTION vms._ensure_day_partition(text, date) IS
    'Creates the partition of one daily table for one UTC day, for a registration about to insert into it';

-- The registrations: their own partition first (after the caller's right is
-- checked: no one else may make partitions), then the 1.0/1.1 bodies, whose
-- vms._ensure_day_partitions call is best effort now.
ALTER FUNCTION vms._register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer)
    RENAME TO _register_segment_body;
ALTER FUNCTION vms._register_event(integer, timestamptz, text, jsonb) RENAME TO _register_event_body;
ALTER FUNCTION vms._register_face_event(integer, timestamptz, bigint, real, text) RENAME TO _register_face_event_body;
COMMENT ON FUNCTION vms._register_segment_body(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer) IS
    'Checks and insert of vms.register_segment() (called by vms._register_segment)';
COMMENT ON FUNCTION vms._register_event_body(integer, timestamptz, text, jsonb) IS
    'Checks and insert of vms.register_event() (called by vms._register_event)';
COMMENT ON FUNCTION vms._register_face_event_body(integer, timestamptz, bigint, real, text) IS
    'Checks and insert of vms.register_face_event() (called by vms._register_face_event)';

-- Its own partition for a registration; a lock that stays busy is audited
-- like any failed registration.
CREATE FUNCTION vms._partition_for_registration(action text, parent text, camera_id integer, t timestamptz, target text)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    day date := (t AT TIME ZONE 'UTC')::date;
    part text := parent || '_p' || pg_catalog.to_char((t AT TIME ZONE 'UTC')::date, 'YYYYMMDD');
BEGIN
    PERFORM vms._require_recorder(camera_id);
    IF t IS NULL THEN
        RETURN;  -- the body reports it
    END IF;
    -- Hold the partition (ROW EXCLUSIVE, as the insert would) so that a
    -- retention run cannot retire it between here and the insert; if one
    -- retired it meanwhile, make it again.
    FOR attempt IN 1 .. 5 LOOP
        PERFORM vms._ensure_day_partition(parent, day);
        BEGIN
            EXECUTE pg_catalog.format('LOCK TABLE ONLY vms.%I IN ROW EXCLUSIVE MODE', part);
        EXCEPTION WHEN undefined_table THEN
            CONTINUE;
        END;
        EXIT WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                           WHERE i.inhrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(part))
                             AND i.inhparent OPERATOR(pg_catalog.=) pg_catalog.to_regclass('vms.' || pg_catalog.quote_ident(parent)));
    END LOOP;
EXCEPTION WHEN OTHERS THEN
    PERFORM vms._fail(action, camera_id, target, SQLSTATE, SQLERRM);
    RAISE;
END
$$;
COMMENT ON FUNCTION vms._partition_for_registration(text, text, integer, timestamptz, text) IS
    'Checks the recorder, then makes the day partition a registration inserts into';

CREATE FUNCTION vms._register_segment(camera_id integer, start_time timestamptz, end_time timestamptz,
                                     path text, bytes bigint, sha256 bytea, codec text DEFAULT NULL,
                                     width integer DEFAULT NULL, height integer DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._partition_for_registration('register_segment', 'segments', camera_id, start_time, path);
    RETURN vms._register_segment_body(camera_id, start_time, end_time, path, bytes, sha256, codec, width, height);
END
$$;
COMMENT ON FUNCTION vms._register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer) IS 'Body of vms.register_segment(): runs as the owner, for the caller the trampoline recorded';

CREATE FUNCTION vms._register_event(camera_id integer, event_time timestamptz, kind text, details jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._partition_for_registration('register_event', 'events', camera_id, event_time, kind);
    RETURN vms._register_event_body(camera_id, event_time, kind, details);
END
$$;
COMMENT ON FUNCTION vms._register_event(integer, timestamptz, text, jsonb) IS 'Body of vms.register_event(): runs as the owner, for the caller the trampoline recorded';

CREATE FUNCTION vms._register_face_event(camera_id integer, event_time timestamptz, person_id bigint,
                                         score real, snapshot_ref text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
BEGIN
    PERFORM vms._partition_for_registration('register_face_event', 'face_events', camera_id, event_time, NULL);
    RETURN vms._register_face_event_body(camera_id, event_time, person_id, score, snapshot_ref);
END
$$;
COMMENT ON FUNCTION vms._register_face_event(integer, timestamptz, bigint, real, text) IS 'Body of vms.register_face_event(): runs as the owner, for the caller the trampoline recorded';

REVOKE ALL ON FUNCTION vms._ensure_day_partition(text, date),
                       vms._partition_for_registration(text, text, integer, timestamptz, text),
                       vms._register_segment(integer, timestamptz, timestamptz, text, bigint, bytea, text, integer, integer),
                       vms._register_event(integer, timestamptz, text, jsonb),
                       vms._register_face_event(integer, timestamptz, bigint, real, text) FROM PUBLIC;
