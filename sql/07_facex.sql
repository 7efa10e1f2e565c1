-- FaceX-style person data: watch lists scoped by camera group, persons
-- encrypted under their own keys, face events, erasure, access reports,
-- the encrypted face search.
\set VERBOSITY terse
SELECT id AS cam1 FROM vms.cameras WHERE name = 'entrance' \gset
SELECT id AS cam3 FROM vms.cameras WHERE name = 'gate' \gset

-- Roles: lobby face analysts (view, search, manage over the lobby group).
SET ROLE regress_manager;
SELECT vms.create_watch_list('lobby_vip', 4, 'lobby', 'Known visitors') AS lobby_list \gset
SELECT vms.create_watch_list('yard_banned', 4, 'yard') AS yard_list \gset
SELECT vms.create_role('regress_face_analysts');
SELECT vms.grant_permission('regress_face_analysts', p, camera_group => 'lobby') > 0 AS granted
  FROM unnest(ARRAY['facex_view', 'facex_search', 'facex_manage']) AS p;
SELECT vms.create_user('regress_fiona', 'Fiona-pw-1-Zephyr');
SELECT vms.add_member('regress_face_analysts', 'regress_fiona');
SELECT vms.add_person('yard_banned', 'Yard Person', '{0.9,0.1,0.1,0.1}') AS yard_person \gset
RESET ROLE;

SET ROLE regress_fiona;
SELECT vms.add_person('lobby_vip', 'Jane Roe', '{0.1,0.2,0.3,0.4}', 'VIP since 2024', '\x89504e47') AS jane \gset
SELECT vms.add_person('lobby_vip', 'John Doe', '{0.4,0.3,0.2,0.1}') AS john \gset
-- Reading a person decrypts; only lists in scope.
SELECT watch_list, name, notes, photo, embedding FROM vms.person(:jane);
SELECT expect_error(format('SELECT vms.person(%s)', :yard_person));
SELECT expect_error($$SELECT vms.add_person('yard_banned', 'X', '{1,1,1,1}')$$);
-- Tables show ciphertext only, and only lists in scope.
SELECT name FROM vms.watch_lists ORDER BY name;
SELECT count(*) AS persons_visible,
       bool_and(position(convert_to('Jane', 'UTF8') IN name) = 0) AS names_hidden
  FROM vms.persons;
-- Search: lobby list only, best first.
SELECT person_id = :jane AS is_jane, watch_list, round(score::numeric, 3) AS score
  FROM vms.face_search('{0.1,0.2,0.3,0.41}', 5);
SELECT count(*) AS above_threshold FROM vms.face_search('{0.1,0.2,0.3,0.41}', 5, 0.9);
RESET ROLE;
-- A master key rotation between searches: the cached subject keys are
-- dropped and unwrapped again under the new version.
SET ROLE regress_manager;
SELECT new_version > old_version AS rotated, data_keys_rewrapped >= 3 AS rewrapped FROM vms.rotate_master_key();
RESET ROLE;
SET ROLE regress_fiona;
SELECT person_id = :jane AS is_jane, round(score::numeric, 3) AS score
  FROM vms.face_search('{0.1,0.2,0.3,0.41}', 1);
RESET ROLE;
SET ROLE regress_alice;
SELECT expect_error($$SELECT * FROM vms.face_search('{0.1,0.2,0.3,0.4}')$$);
SELECT count(*) AS persons_alice_sees FROM vms.persons;
RESET ROLE;

-- Each person has a key of their own; fields are bound to person and column.
SELECT count(DISTINCT key_id) = count(*) AS own_keys FROM vms.persons;
SELECT name AS jane_name_ct FROM vms.persons WHERE id = :jane \gset
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', :'jane_name_ct', 'vms.persons.name:' || :john)) AS other_person;
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', :'jane_name_ct', 'vms.persons.notes:' || :jane)) AS other_column;

-- Face events from the recorder.
SET ROLE regress_rec;
SELECT vms.register_face_event(:cam1, now() - interval '2 minutes', :jane, 0.93, 'faces/entrance/1.jpg') > 0 AS known;
SELECT vms.register_face_event(:cam1, now() - interval '1 minute', NULL, 0.41, 'faces/entrance/2.jpg') > 0 AS unknown;
RESET ROLE;
SELECT count(*) AS face_events, count(person_id) AS known_persons,
       bool_and(position(convert_to('faces/', 'UTF8') IN snapshot) = 0) AS snapshot_hidden
  FROM vms.face_events;

-- Jane also passed the gate, a camera Fiona may not see.
SET ROLE regress_rec;
SELECT vms.register_face_event(:cam3, now() - interval '3 minutes', :jane, 0.88, 'faces/gate/7.jpg') > 0 AS at_gate;
RESET ROLE;

-- Access report: everything held about Jane that Fiona may see, decrypted,
-- audited; events on cameras outside her grants are counted, not shown.
SET ROLE regress_fiona;
SELECT r->>'name' AS name, r->>'notes' AS notes, r->>'photo_base64' AS photo, r->'embedding' AS embedding,
       jsonb_array_length(r->'face_events') AS events, r->'face_events'->0->>'snapshot_ref' AS snapshot,
       r->>'face_events_withheld' AS withheld
  FROM vms.subject_access_report(:jane) AS r;
RESET ROLE;

-- Probing with basis vectors does not read templates back: scores below
-- vms.face_search_min_score (0.5) are never returned, and users cannot lower it.
SET ROLE regress_fiona;
SELECT count(*) AS returned, bool_and(score >= 0.5) AS all_above_floor
  FROM vms.face_search('{1,0,0,0}', 100, -1);
SELECT expect_error('SET vms.face_search_min_score = -1');
SELECT regexp_replace(expect_error(format('SELECT vms.person(%s)', 999999)), '[0-9]+', 'N', 'g')
     = regexp_replace(expect_error(format('SELECT vms.person(%s)', :yard_person)), '[0-9]+', 'N', 'g')
       AS missing_and_forbidden_look_alike;
RESET ROLE;

-- Bad input: clear errors, nothing changed.
SELECT (SELECT count(*) FROM vms.persons) || '/' || (SELECT count(*) FROM vms.data_keys) || '/' ||
       (SELECT count(*) FROM vms.face_events) || '/' || (SELECT count(*) FROM vms.watch_lists) AS state_before \gset
SET ROLE regress_fiona;
SELECT stmt, expect_error(stmt) FROM (VALUES
    ($$SELECT vms.add_person('lobby_vip', 'X', '{0.1,NaN,0.3,0.4}')$$),
    ($$SELECT vms.add_person('lobby_vip', 'X', '{0.1,Infinity,0.3,0.4}')$$),
    ($$SELECT vms.add_person('lobby_vip', 'X', '{0.1,0.2,0.3}')$$),
    ($$SELECT vms.add_person('lobby_vip', 'X', '{0,0,0,0}')$$),
    ($$SELECT vms.add_person('lobby_vip', 'X', '{0.1,NULL,0.3,0.4}')$$),
    ($$SELECT vms.add_person('lobby_vip', 'X', '{{0.1,0.2},{0.3,0.4}}')$$),
    ($$SELECT vms.add_person('lobby_vip', 'X', NULL)$$),
    ($$SELECT vms.add_person('lobby_vip', '', '{0.1,0.2,0.3,0.4}')$$),
    ($$SELECT vms.add_person('no_such_list', 'X', '{0.1,0.2,0.3,0.4}')$$),
    ($$SELECT * FROM vms.face_search('{0.1,NaN,0.3,0.4}')$$),
    ($$SELECT * FROM vms.face_search(NULL)$$),
    ($$SELECT * FROM vms.face_search('{0.1,0.2,0.3,0.4}', 0)$$),
    ($$SELECT * FROM vms.face_search('{0.1,0.2,0.3,0.4}', 5, 2)$$),
    ($$SELECT vms.person(NULL)$$),
    ($$SELECT vms.person(999999)$$),
    ($$SELECT vms.erase_subject(999999, 'x')$$),
    ($$SELECT vms.create_watch_list('bad', 1, 'lobby')$$)
) AS t(stmt);
RESET ROLE;
SET ROLE regress_rec;
SELECT expect_error(format('SELECT vms.register_face_event(%s, now(), 999999, 0.5)', :cam1));
SELECT expect_error(format('SELECT vms.register_face_event(%s, now(), NULL, 1.5)', :cam1));
SELECT expect_error(format('SELECT vms.register_face_event(%s, now(), NULL, %L)', :cam1, 'NaN'));
RESET ROLE;
SELECT (SELECT count(*) FROM vms.persons) || '/' || (SELECT count(*) FROM vms.data_keys) || '/' ||
       (SELECT count(*) FROM vms.face_events) || '/' || (SELECT count(*) FROM vms.watch_lists) = :'state_before'
       AS nothing_changed;

-- Erasure: the key is destroyed, the person and their face events deleted,
-- and what remains of the old tuples does not decrypt, even for a superuser.
SELECT key_id AS jane_key FROM vms.persons WHERE id = :jane \gset
SELECT wrapped AS jane_wrapped FROM vms.data_keys WHERE id = :jane_key \gset
SET ROLE regress_fiona;
SELECT expect_error(format('SELECT vms.erase_subject(%s, %L)', :jane, ''));
SELECT face_events_deleted, key_destroyed = :jane_key AS key_destroyed FROM vms.erase_subject(:jane, 'GDPR request 2026-117');
SELECT expect_error(format('SELECT vms.person(%s)', :jane));
SELECT count(*) AS jane_in_search FROM vms.face_search('{0.1,0.2,0.3,0.41}', 5) WHERE person_id = :jane;
RESET ROLE;
SELECT count(*) AS jane_rows FROM vms.persons WHERE id = :jane;
SELECT count(*) AS jane_events FROM vms.face_events WHERE person_id = :jane;
SELECT wrapped IS NULL AS wrapped_gone, destroyed_at IS NOT NULL AS destroyed FROM vms.data_keys WHERE id = :jane_key;
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', :'jane_name_ct', 'vms.persons.name:' || :jane)) AS old_ciphertext;
-- The superuser reads the dead tuple itself: ciphertext, and it does not decrypt.
CREATE EXTENSION pageinspect;
SELECT count(*) > 0 AS dead_tuple_still_on_page
  FROM heap_page_items(get_raw_page('vms.persons', 0)) h
 WHERE h.t_data IS NOT NULL AND position(substring(:'jane_name_ct'::bytea FROM 22 FOR 16) IN h.t_data) > 0;
SELECT expect_error(format('SELECT vms._decrypt(%L::bytea, %L)', :'jane_name_ct', 'vms.persons.name:' || :jane)) AS from_dead_tuple;
-- Until vacuumed, the key table's page still holds the old wrapped key (see
-- docs/keys.md); VACUUM removes it.
SELECT count(*) AS old_wrapped_key_on_page
  FROM heap_page_items(get_raw_page('vms.data_keys', 0)) h
 WHERE position(:'jane_wrapped'::bytea IN h.t_data) > 0;
VACUUM vms.data_keys;
SELECT count(*) AS old_wrapped_key_after_vacuum
  FROM heap_page_items(get_raw_page('vms.data_keys', 0)) h
 WHERE position(:'jane_wrapped'::bytea IN h.t_data) > 0;
DROP EXTENSION pageinspect;

-- Audited: reveals, search (probe hash, count), report, erasure with its reason.
SELECT audit_settle();
SELECT action, outcome, count(*) AS n
  FROM vms.audit_log WHERE actor = 'regress_fiona'
 GROUP BY action, outcome ORDER BY action, outcome;
SELECT details->>'reason' AS reason, (details->>'face_events_deleted')::int AS events
  FROM vms.audit_log WHERE action = 'erase_subject' AND outcome = 'ok';
SELECT details ? 'probe_sha256' AS probe_hashed, (details->>'returned')::int AS returned
  FROM vms.audit_log WHERE action = 'face_search' AND outcome = 'ok' ORDER BY seq LIMIT 1;
SELECT count(*) AS audit_rows_with_names FROM vms.audit_log WHERE details::text ~ 'Jane|John' OR target ~ 'Jane|John';
