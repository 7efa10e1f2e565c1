-- 100,000 persons with 512-dimension embeddings in one watch list, written
-- directly by the owner with the extension's own encryption (this measures
-- the search, not enrolment).  The same embeddings go, in plaintext, into a
-- scratch table for the baselines.
\set ON_ERROR_STOP 1
SELECT vms.create_watch_list('bench_faces', 512) AS list \gset
CREATE UNLOGGED TABLE public.bench_embeddings AS
SELECT i AS n, array(SELECT (random() - 0.5 + i * 0)::real FROM generate_series(1, 512)) AS e
  FROM generate_series(1, 100000) i;
CREATE UNLOGGED TABLE public.bench_ids AS
SELECT n, nextval('vms.persons_id_seq') AS pid, nextval('vms.data_keys_id_seq') AS kid FROM public.bench_embeddings;
SELECT vms._wrap_version() AS v \gset
INSERT INTO vms.data_keys (id, purpose, subject_id, master_version, wrapped)
SELECT kid, 'facex_subject', pid, :v, vms._new_data_key(kid, 'facex_subject', pid, :v) FROM public.bench_ids;
INSERT INTO vms.persons (id, watch_list_id, key_id, name, embedding, created_by)
SELECT i.pid, :list, i.kid,
       vms._encrypt(i.kid, convert_to('Person ' || i.n, 'UTF8'), 'vms.persons.name:' || i.pid),
       vms._encrypt(i.kid, vms._embedding_pack(b.e, 512), 'vms.persons.embedding:' || i.pid), 'bench'
  FROM public.bench_ids i JOIN public.bench_embeddings b USING (n);
-- The baseline: the same C scan over plaintext embeddings, in a table of the
-- same shape as vms.persons (same columns, same row width, same TOAST), so
-- the ratio isolates what decryption costs.
CREATE TABLE vms._face_bench_plain AS
SELECT p.id AS person_id, vms._embedding_pack(b.e, 512) AS embedding, p.key_id, p.watch_list_id,
       p.name, p.notes, p.photo, p.created_by, p.created_at
  FROM public.bench_ids i JOIN public.bench_embeddings b USING (n) JOIN vms.persons p ON p.id = i.pid;
ANALYZE vms.persons;
ANALYZE vms._face_bench_plain;
ANALYZE public.bench_embeddings;

-- A probe near person 4242.
SELECT array(SELECT x + 0.01 FROM unnest(e) x)::real[] AS probe FROM public.bench_embeddings WHERE n = 4242 \gset
SELECT pid AS target FROM public.bench_ids WHERE n = 4242 \gset

SELECT best_ms(format('SELECT * FROM vms._face_scan(%L, 10, 0, ARRAY[%s], true)', :'probe', :list), 1) AS cold_ms \gset
SELECT best_ms(format('SELECT * FROM vms._face_scan(%L, 10, 0, ARRAY[%s], true)', :'probe', :list), 3) AS enc_ms \gset
SELECT best_ms(format('SELECT * FROM vms._face_scan(%L, 10, 0, ARRAY[%s], false)', :'probe', :list), 3) AS plain_ms \gset
SELECT best_ms(format('SELECT * FROM vms.face_search(%L, 10)', :'probe'), 3) AS api_ms \gset
SELECT best_ms(format($q$
    SELECT n, (SELECT sum(a * b) FROM unnest(e, %L::real[]) AS t(a, b))
              / sqrt((SELECT sum(a * a) FROM unnest(e) AS a)) AS score
      FROM public.bench_embeddings ORDER BY score DESC LIMIT 10 $q$, :'probe'), 1) AS sql_ms \gset
SELECT (SELECT person_id FROM vms.face_search(:'probe', 10) LIMIT 1) = :target AS finds_the_person \gset

\echo 'persons searched:                                 100000 x 512 dimensions'
\echo 'top-10, C scan, encrypted, first run (keys unwrapped): ' :cold_ms ' ms'
\echo 'top-10, C scan, encrypted, warm key cache:        ' :enc_ms ' ms'
\echo 'top-10, same C scan over plaintext embeddings:    ' :plain_ms ' ms'
\echo 'top-10, vms.face_search() (API, checks, audit):   ' :api_ms ' ms'
\echo 'top-10, plain SQL brute force over real[]:        ' :sql_ms ' ms'
\echo 'the best match is the probe''s person:             ' :finds_the_person
SELECT format('encrypted / plaintext C search time: %s  (target at most 1.5)', round(:enc_ms / :plain_ms, 3));
SELECT format('plain SQL / encrypted C search time: %s', round(:sql_ms / :enc_ms, 1));
DROP TABLE vms._face_bench_plain, public.bench_ids, public.bench_embeddings;
