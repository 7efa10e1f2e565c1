------------------------------------------------------------------------------
-- Audit sealing and verification, fixed (found while testing retention).
--
-- vms.seal_audit took an advisory lock whose key any login can compute and
-- hold (pg_advisory_lock is PUBLIC): sealing, and the audit worker that also
-- drains the shared-memory queue, then waited forever, and denied calls
-- overflowed the queue.  It now locks the log in a mode no user may take.
-- vms.verify_audit compared the log with the head the sealer notes in shared
-- memory before its commit, so a seal in progress looked like entries cut
-- from the end; it now waits for that seal and looks again.
------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION vms.seal_audit(max_entries integer DEFAULT 10000)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    head_seq bigint;
    head_hash bytea;
    head_sealed timestamptz;
    t timestamptz;
    r record;
    h bytea;
    n bigint := 0;
BEGIN
    -- One sealer at a time: the chain has a single writer.  A lock on the
    -- log itself, which readers (ACCESS SHARE) never meet and no user may
    -- take in this mode; an advisory key anyone can compute let any login
    -- stall sealing, and with it the worker that drains the audit queue.
    LOCK TABLE ONLY vms.audit_log IN SHARE ROW EXCLUSIVE MODE;
    SELECT l.seq, l.hash, l.sealed_at INTO head_seq, head_hash, head_sealed
      FROM vms.audit_log l ORDER BY l.seq DESC LIMIT 1;
    IF head_seq IS NULL THEN
        SELECT a.seq, a.hash INTO head_seq, head_hash FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1;
    END IF;
    -- sealed_at never goes backwards, so partitions hold contiguous seq ranges.
    t := GREATEST(pg_catalog.clock_timestamp(), head_sealed);
    FOR r IN SELECT * FROM vms.audit_pending p ORDER BY p.id LIMIT max_entries LOOP
        IF n = 0 THEN
            PERFORM vms._ensure_audit_partition((t AT TIME ZONE 'UTC')::date);
        END IF;
        head_seq := head_seq + 1;
        h := vms.audit_hash(head_hash, head_seq, t, r.logged_at, r.actor, r.session_user_name,
                            r.client_addr, r.action, r.camera_id, r.target, r.outcome, r.details);
        INSERT INTO vms.audit_log (seq, sealed_at, logged_at, actor, session_user_name, client_addr,
                                   action, camera_id, target, outcome, details, hash)
        VALUES (head_seq, t, r.logged_at, r.actor, r.session_user_name, r.client_addr,
                r.action, r.camera_id, r.target, r.outcome, r.details, h);
        DELETE FROM vms.audit_pending p WHERE p.id OPERATOR(pg_catalog.=) r.id;
        head_hash := h;
        n := n + 1;
    END LOOP;
    IF n > 0 THEN
        PERFORM vms._audit_note_head(head_seq, head_hash);
        -- A witness outside the database: the server log keeps the head.
        RAISE LOG 'pg_vms: audit chain sealed through seq %, head hash %', head_seq, pg_catalog.encode(head_hash, 'hex');
    END IF;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION vms._verify_audit(OUT ok boolean, OUT entries_checked bigint,
                                 OUT first_broken_seq bigint, OUT problem text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, vms, pg_temp AS $$
DECLARE
    anchor_seq bigint;
    anchor_hash bytea;
    last_seq bigint;
    last_hash bytea;
    head record;
BEGIN
    BEGIN
        PERFORM vms._require_all('view_audit');
    EXCEPTION WHEN OTHERS THEN
        PERFORM vms._fail('verify_audit', NULL, NULL, SQLSTATE, SQLERRM);
        RAISE;
    END;

    SELECT a.seq, a.hash INTO anchor_seq, anchor_hash FROM vms.audit_anchor a ORDER BY a.seq DESC LIMIT 1;

    SELECT x.broken_seq, x.problem INTO first_broken_seq, problem FROM (
        SELECT l.seq,
               CASE WHEN l.seq OPERATOR(pg_catalog.>) COALESCE(l.prev_seq, anchor_seq) + 1
                    THEN COALESCE(l.prev_seq, anchor_seq) + 1 ELSE l.seq END AS broken_seq,
               CASE
                 WHEN l.seq OPERATOR(pg_catalog.=) l.prev_seq THEN
                     pg_catalog.format('entry %s appears more than once', l.seq)
                 WHEN l.seq OPERATOR(pg_catalog.<>) COALESCE(l.prev_seq, anchor_seq) + 1 THEN
                     pg_catalog.format('entry %s is missing', COALESCE(l.prev_seq, anchor_seq) + 1)
                 WHEN l.hash OPERATOR(pg_catalog.<>) vms.audit_hash(COALESCE(l.prev_hash, anchor_hash),
                         l.seq, l.sealed_at, l.logged_at, l.actor, l.session_user_name, l.client_addr,
                         l.action, l.camera_id, l.target, l.outcome, l.details) THEN
                     pg_catalog.format('entry %s does not match its hash: it was changed, or entries were reordered', l.seq)
               END AS problem
          FROM (SELECT e.*, pg_catalog.lag(e.seq) OVER w AS prev_seq, pg_catalog.lag(e.hash) OVER w AS prev_hash
                  FROM vms.audit_log e
                 WHERE e.seq OPERATOR(pg_catalog.>) anchor_seq
                WINDOW w AS (ORDER BY e.seq, e.sealed_at)) l
    ) x WHERE x.problem IS NOT NULL ORDER BY x.seq LIMIT 1;

    SELECT pg_catalog.count(*), pg_catalog.max(e.seq) INTO entries_checked, last_seq
      FROM vms.audit_log e WHERE e.seq OPERATOR(pg_catalog.>) anchor_seq;

    -- A valid but shortened chain: compare with the head this server sealed.
    IF problem IS NULL THEN
        SELECT * INTO head FROM vms._audit_sealed_head();
        -- The sealer notes its head before it commits: if the log looks
        -- shorter, wait for a seal in progress and look again.
        IF head.seq IS NOT NULL AND COALESCE(last_seq, anchor_seq) < head.seq THEN
            LOCK TABLE ONLY vms.audit_log IN SHARE MODE;
            SELECT pg_catalog.max(e.seq) INTO last_seq FROM vms.audit_log e WHERE e.seq OPERATOR(pg_catalog.>) anchor_seq;
            SELECT * INTO head FROM vms._audit_sealed_head();
        END IF;
        IF head.seq IS NOT NULL THEN
            SELECT e.hash INTO last_hash FROM vms.audit_log e WHERE e.seq OPERATOR(pg_catalog.=) head.seq;
            IF COALESCE(last_seq, anchor_seq) < head.seq THEN
                first_broken_seq := COALESCE(last_seq, anchor_seq) + 1;
                problem := pg_catalog.format('entries %s to %s are missing from the end of the log',
                                             first_broken_seq, head.seq);
            ELSIF last_hash IS DISTINCT FROM head.hash THEN
                first_broken_seq := head.seq;
                problem := pg_catalog.format('entry %s differs from the chain head sealed by this server', head.seq);
            END IF;
        END IF;
    END IF;

    ok := problem IS NULL;
    PERFORM vms._audit('verify_audit', NULL, NULL,
                       pg_catalog.jsonb_build_object('ok', ok, 'entries_checked', entries_checked,
                                                     'first_broken_seq', first_broken_seq, 'problem', problem));
END
$$;
