-- As bench_user (half the cameras allowed, mixed recorded times): the same
-- scan calling vms.authorize() and a no-op C function of the same signature.
SET ROLE bench_user;
SELECT best_ms('SELECT count(*) FROM public.bench_decisions WHERE vms._noop_authorize(''view_recorded'', camera_id, at)') AS noop_ms \gset
SELECT best_ms('SELECT count(*) FROM public.bench_decisions WHERE vms.authorize(''view_recorded'', camera_id, at)') AS authorize_ms \gset
SELECT best_ms('SELECT count(*) FROM public.bench_decisions') AS scan_ms \gset
SELECT count(*) FILTER (WHERE vms.authorize('view_recorded', camera_id, at)) AS allowed, count(*) AS decisions
  FROM public.bench_decisions \gset
RESET ROLE;
\echo 'decisions:                          ' :decisions ' (' :allowed ' allowed)'
\echo 'scan alone:                         ' :scan_ms ' ms'
\echo 'scan + trivial C function:          ' :noop_ms ' ms'
\echo 'scan + vms.authorize():             ' :authorize_ms ' ms'
SELECT format('authorize / trivial function time: %s  (target at most 2)', round(:authorize_ms / :noop_ms, 3));
SELECT format('decisions per second, one core:    %s  (target at least 1,000,000)', round(:decisions / (:authorize_ms / 1000.0)));
