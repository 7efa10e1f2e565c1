# pg_dump of a database using pg_vms restores into a fresh cluster with all
# its data: cameras, groups, roles' grants, recordings index, the audit chain,
# retention settings, evidence holds and files waiting for removal.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $old = vms_node('old');
vms_scenario($old);
$old->safe_psql('vms', <<'SQL');
SELECT vms.create_user('regress_rec', 'Recorder-pw-1-Zephyr');
SELECT vms.add_member('vms_recorder', 'regress_rec');
SELECT vms.assign_recorder(id, 'regress_rec') FROM vms.cameras;
SQL
$old->safe_psql('vms', <<'SQL');
SET ROLE regress_rec;
SELECT vms.register_segment(c.id, now() - make_interval(mins => g * 10), now() - make_interval(mins => g * 10) + interval '6 s',
                            format('%s/%s.ts', c.name, g), 1000 + g, sha256(g::text::bytea))
  FROM vms.cameras c, generate_series(1, 20) g;
SELECT vms.register_event(c.id, now() - interval '5 minutes', 'motion', '{"zone": 2}') FROM vms.cameras c;
SQL
$old->safe_psql('vms', "SELECT vms.set_camera_credential(id, 'admin', 'Dump-Secret-' || id) FROM vms.cameras");
# Retention state: settings, a hold, files released row by row (day -3 has
# both cameras) and as a whole day (day -4 has only the entrance).
$old->safe_psql('vms', <<'SQL');
SET ROLE regress_rec;
SELECT vms.register_segment(c.id, t, t + interval '6 s', format('%s/old-%s.ts', c.name, d), 500, sha256(convert_to(c.name || d, 'UTF8')))
  FROM vms.cameras c, (VALUES (3), (4)) v(d),
       LATERAL (SELECT (((now() AT TIME ZONE 'UTC')::date - d)::text || ' 12:00:00+00')::timestamptz AS t) x
 WHERE c.name = 'entrance' OR d = 3;
RESET ROLE;
SELECT vms.set_retention((SELECT id FROM vms.cameras WHERE name = 'entrance'), '2 days');
SELECT vms.set_default_retention('20 days');
SELECT vms.place_hold((SELECT id FROM vms.cameras WHERE name = 'gate'), now() - interval '1 day', now(), 'case 11: vandalism',
                      owner => 'det. Lund');
SELECT vms.apply_retention();
SQL

ok(wait_for_audit($old, "action = 'set_camera_credential'", 2), 'audit entries sealed');

# What must survive, as one text per table.
my %snapshot_sql = (
	cameras => 'SELECT string_agg(format(\'%s|%s|%s|%s\', id, name, recorder, enabled), \',\' ORDER BY id) FROM vms.cameras',
	groups => 'SELECT string_agg(format(\'%s|%s\', g.name, m.camera_id), \',\' ORDER BY g.name, m.camera_id) FROM vms.camera_groups g JOIN vms.camera_group_members m ON m.group_id = g.id',
	principals => 'SELECT string_agg(format(\'%s|%s\', name, kind), \',\' ORDER BY name) FROM vms.principals',
	grants => 'SELECT string_agg(format(\'%s|%s|%s|%s|%s|%s\', id, role, permission, scope, group_id, recorded_window), \',\' ORDER BY id) FROM vms.grants',
	segments => 'SELECT string_agg(format(\'%s|%s|%s|%s|%s\', id, camera_id, start_time, path, encode(sha256, \'hex\')), \',\' ORDER BY id) FROM vms.segments',
	events => 'SELECT string_agg(format(\'%s|%s|%s\', id, camera_id, details), \',\' ORDER BY id) FROM vms.events',
	credentials => 'SELECT string_agg(format(\'%s|%s\', camera_id, encode(password, \'hex\')), \',\' ORDER BY camera_id) FROM vms.camera_credentials',
	data_keys => 'SELECT string_agg(format(\'%s|%s|%s\', id, master_version, encode(wrapped, \'hex\')), \',\' ORDER BY id) FROM vms.data_keys',
	audit => 'SELECT count(*) || \'|\' || max(seq) || \'|\' || encode((SELECT hash FROM vms.audit_log ORDER BY seq DESC LIMIT 1), \'hex\') FROM vms.audit_log',
	memberships => "SELECT string_agg(r.rolname || '>' || m.rolname, ',' ORDER BY r.rolname, m.rolname) FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE m.rolname LIKE 'regress%'",
	retention => "SELECT string_agg(id || '=' || COALESCE(retention::text, '-'), ',' ORDER BY id) || '/' || (SELECT default_retention FROM vms.retention_settings) FROM vms.cameras",
	holds => "SELECT string_agg(format('%s|%s|%s|%s|%s', id, camera_id, reason, owner, from_time), ',' ORDER BY id) FROM vms.evidence_holds",
	purge_queue => "SELECT string_agg(format('%s|%s|%s|%s', segment_id, camera_id, path, encode(sha256, 'hex')), ',' ORDER BY segment_id) FROM vms.purge_queue",
	purge_batches => "SELECT string_agg(b.table_name || ':' || (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM vms.%I', b.table_name), false, true, '')))[1]::text, ',' ORDER BY b.id) FROM vms.purge_batches b",
);
# Stop new audit activity from the snapshot queries themselves changing things.
$old->safe_psql('vms', 'SELECT vms.seal_audit()');
my %before = map { $_ => $old->safe_psql('vms', $snapshot_sql{$_}) } keys %snapshot_sql;
ok($before{segments} ne '' && $before{audit} =~ /^\d+\|/, 'the old cluster has data');
like($before{purge_queue}, qr/entrance\/old-3\.ts/, 'a file released row by row waits in the queue');
like($before{purge_batches}, qr/^expired_segments_p\d{8}:1$/, 'a whole day waits as a purge batch');

my $tmp = PostgreSQL::Test::Utils::tempdir;
$old->command_ok([ 'pg_dumpall', '--roles-only', '-p', $old->port, '-h', $old->host, '-f', "$tmp/roles.sql" ],
	'pg_dumpall --roles-only');
$old->command_ok([ 'pg_dump', '-Fc', '-p', $old->port, '-h', $old->host, '-d', 'vms', '-f', "$tmp/vms.dump" ],
	'pg_dump of the VMS database');

# The new cluster gets the same master keys: keys are backed up apart from data.
my $new = vms_node('new', create => 0, keys => $old->{vms_keys});
# pg_dumpall writes SCRAM verifiers, which the password policy refuses unless
# a superuser allows them for the restore (docs/password-policy.md).
{
	local $ENV{PGOPTIONS} = '-c vms.password_allow_hashed=on';
	$new->command_ok([ 'psql', '-X', '-q', '-p', $new->port, '-h', $new->host, '-d', 'postgres',
			'-f', "$tmp/roles.sql" ], 'roles restored');
}
$new->safe_psql('postgres', 'CREATE DATABASE vms');
$new->command_ok([ 'pg_restore', '--exit-on-error', '-p', $new->port, '-h', $new->host, '-d', 'vms', "$tmp/vms.dump" ],
	'pg_restore into a fresh cluster');

for my $t (sort keys %snapshot_sql)
{
	is($new->safe_psql('vms', $snapshot_sql{$t}), $before{$t}, "$t restored");
}
is($new->safe_psql('vms', 'SELECT ok FROM vms.verify_audit()'), 't', 'the restored audit chain verifies');

# The restored database works: decisions, RLS, new ids continue.
my $alice = tcp_connstr($new, 'regress_alice', 'Alice-pw-1-Zephyr');
my ($ret, $out) = $new->psql('vms', 'SELECT count(*) FROM vms.segments', connstr => $alice);
is($out, '20', 'alice logs in to the restored cluster and sees the lobby recordings within her window');
my ($r2, $creds) = $new->psql('vms',
	"SELECT string_agg(password, ',' ORDER BY password) FROM (SELECT (vms.camera_credential(id)).password FROM vms.cameras) x",
	connstr => tcp_connstr($new, 'regress_rec', 'Recorder-pw-1-Zephyr'));
is($creds, 'Dump-Secret-1,Dump-Secret-2', 'encrypted credentials decrypt after restore with the same master key');
my $next = $new->safe_psql('vms', "SELECT vms.add_camera('after-restore')");
ok($next > 2, 'camera ids continue after the restored ones');
ok($new->safe_psql('vms', "SELECT vms.create_partitions() >= 0"), 'partition maintenance runs after restore');
# The recorder can still remove what retention released before the dump.
($ret, $out) = $new->psql('vms', "SELECT string_agg(path, ',' ORDER BY path) FROM vms.purge_claim((SELECT id FROM vms.cameras WHERE name = 'entrance'))",
	connstr => tcp_connstr($new, 'regress_rec', 'Recorder-pw-1-Zephyr'));
is($out, 'entrance/old-3.ts,entrance/old-4.ts', 'released files are claimable after restore (queue and batch)');
is($new->safe_psql('vms', 'SELECT partitions_deferred FROM vms.apply_retention()'), '0', 'retention runs after restore');

$old->stop;
$new->stop;
done_testing();
