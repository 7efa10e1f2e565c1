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
                            OPERATOR(pg_catalog.+) vms._setting_int('vms.partition_lock_wait') * '1 ms'::interval;
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
                EXECUTE pg_catalog.format('LOCK TABLE vms.%I IN %s MODE NOWAIT', rel, mode);
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
    -- it first and without queueing: a creator that waits while holding the
    -- lock of another parent can close a deadlock cycle with a reader that
    -- reads both.  Only a parent busy for all of vms.partition_lock_wait is
    -- waited for.  A relation lock also makes this backend read the catalog
    -- changes the previous holder committed, so the check below sees its table.
    IF NOT vms._lock_nowait(ARRAY[parent]) THEN
        EXECUTE pg_catalog.format('LOCK TABLE vms.%I IN ACCESS EXCLUSIVE MODE', parent);
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
