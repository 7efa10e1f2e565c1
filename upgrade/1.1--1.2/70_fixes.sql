------------------------------------------------------------------------------
-- Fixes to 1.0 functions.
--
-- vms._ensure_partition: two sessions creating the same partition (the audit
-- worker and vms.create_partitions(), say) could both pass the existence
-- check; the second failed with "relation ... already exists" because an
-- advisory lock does not make a backend read newly committed catalog rows.
--
-- vms._covers: reads vms.grants itself, so it must also hold back
-- administrative permissions while a second factor is pending (1.2).
------------------------------------------------------------------------------
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
    -- Creators take turns on the parent (inserts are not blocked).  A relation
    -- lock, unlike an advisory lock, also makes this backend read the catalog
    -- changes the previous holder committed, so the check below sees its table.
    EXECUTE pg_catalog.format('LOCK TABLE vms.%I IN SHARE UPDATE EXCLUSIVE MODE', parent);
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


CREATE OR REPLACE FUNCTION vms._covers(permission text, scope text, camera_id integer, group_id integer,
                            recorded_window interval, valid_until timestamptz, check_limits boolean)
RETURNS boolean LANGUAGE plpgsql STABLE SET search_path = pg_catalog, vms, pg_temp AS $$
#variable_conflict use_variable
DECLARE
    inv oid := vms._invoker();
BEGIN
    IF vms._is_system_manager(inv::regrole) THEN
        RETURN true;
    END IF;
    -- Administrative permissions wait for a pending second factor here too.
    IF vms._second_factor_pending(inv::regrole)
       AND EXISTS (SELECT 1 FROM vms.permissions p
                    WHERE p.name OPERATOR(pg_catalog.=) permission AND p.administrative) THEN
        RETURN false;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM vms.grants g
         WHERE g.permission OPERATOR(pg_catalog.=) permission
           AND vms._role_has(inv, g.role)
           AND g.valid_from OPERATOR(pg_catalog.<=) pg_catalog.now()
           AND (g.valid_until IS NULL OR g.valid_until OPERATOR(pg_catalog.>) pg_catalog.now())
           AND (NOT check_limits OR
                ((g.recorded_window IS NULL OR recorded_window OPERATOR(pg_catalog.<=) g.recorded_window)
                 AND (g.valid_until IS NULL OR valid_until OPERATOR(pg_catalog.<=) g.valid_until)))
           AND (g.scope OPERATOR(pg_catalog.=) 'all'
                OR (scope OPERATOR(pg_catalog.=) 'group' AND g.scope OPERATOR(pg_catalog.=) 'group'
                    AND g.group_id OPERATOR(pg_catalog.=) group_id)
                OR (scope OPERATOR(pg_catalog.=) 'camera'
                    AND ((g.scope OPERATOR(pg_catalog.=) 'camera' AND g.camera_id OPERATOR(pg_catalog.=) camera_id)
                         OR (g.scope OPERATOR(pg_catalog.=) 'group' AND EXISTS (
                                SELECT 1 FROM vms.camera_group_members m
                                 WHERE m.group_id OPERATOR(pg_catalog.=) g.group_id
                                   AND m.camera_id OPERATOR(pg_catalog.=) camera_id))))));
END
$$;
