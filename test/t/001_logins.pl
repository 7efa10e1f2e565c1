# Real logins over TCP with SCRAM: each user sees only what they may, denied
# calls are audited with the client's address, and a change made in another
# session applies to the next statement.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $node = vms_node('logins');
vms_scenario($node);

my $alice = tcp_connstr($node, 'regress_alice', 'Alice-pw-1-Zephyr');
my $bob = tcp_connstr($node, 'regress_bob', 'Bob-pw-1-Zephyr');

$node->connect_ok($alice, 'alice logs in with her password (SCRAM over TCP)');
$node->connect_fails(tcp_connstr($node, 'regress_alice', 'wrong-password'),
	'a wrong password is refused',
	expected_stderr => qr/password authentication failed/);
is($node->safe_psql('vms',
		"SELECT rolpassword LIKE 'SCRAM-SHA-256\$%' FROM pg_authid WHERE rolname = 'regress_alice'"),
	't', 'the password is stored as a SCRAM verifier');

sub as_user
{
	my ($connstr, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('vms', $sql, connstr => $connstr);
	return wantarray ? ($ret, $out, $err) : $out;
}

is(as_user($alice, "SELECT string_agg(name, ',' ORDER BY name) FROM vms.cameras"),
	'entrance', 'alice sees the lobby camera only');
is(as_user($bob, 'SELECT count(*) FROM vms.cameras'), '0', 'bob sees no camera');
is(as_user($alice, "SELECT vms.authorize('view_live', (SELECT id FROM vms.cameras WHERE name = 'entrance'))"),
	't', 'alice may watch the entrance live');

# A denied call: the statement fails, the audit entry stays.
my ($ret, $out, $err) = as_user($alice, "SELECT vms.add_camera('rogue')");
isnt($ret, 0, 'alice may not add cameras');
like($err, qr/permission denied: manage_cameras/, 'with a clear message');
ok(wait_for_audit($node, "action = 'add_camera' AND target = 'rogue'"),
	'the denied call reaches the audit log');
is($node->safe_psql('vms',
		"SELECT actor || '|' || session_user_name || '|' || host(client_addr) || '|' || outcome "
		  . "FROM vms.audit_log WHERE action = 'add_camera' AND target = 'rogue'"),
	'regress_alice|regress_alice|127.0.0.1|denied',
	'with actor, session user, client address and outcome');

# Cross-session invalidation.  The watcher is alice's own session.
my $watch = $node->background_psql('vms', extra_params => [ '-d', $alice ]);
my $cam = $node->safe_psql('vms', "SELECT id FROM vms.cameras WHERE name = 'entrance'");
my $gate = $node->safe_psql('vms', "SELECT id FROM vms.cameras WHERE name = 'gate'");
is($watch->query_safe("SELECT vms.authorize('view_live', $cam)"), 't', 'watcher: allowed before');

$node->safe_psql('vms',
	"SELECT vms.revoke_permission(id) FROM vms.grants WHERE role = 'regress_guards' AND permission = 'view_live'");
is($watch->query_safe("SELECT vms.authorize('view_live', $cam)"), 'f',
	'a revocation in another session applies to the next statement');

$node->safe_psql('vms', "SELECT vms.grant_permission('regress_guards', 'view_live', camera_group => 'lobby')");
is($watch->query_safe("SELECT vms.authorize('view_live', $cam)"), 't', 'a new grant applies at once');

is($watch->query_safe("SELECT vms.authorize('view_live', $gate)"), 'f', 'gate not in the lobby group');
$node->safe_psql('vms', "SELECT vms.add_camera_to_group('lobby', $gate)");
is($watch->query_safe("SELECT vms.authorize('view_live', $gate)"), 't',
	'a camera added to the group is covered at once');

# Inside an open transaction too.
$watch->query_safe('BEGIN');
is($watch->query_safe("SELECT vms.authorize('view_live', $cam)"), 't', 'in a transaction: allowed');
$node->safe_psql('vms', "SELECT vms.remove_member('regress_guards', 'regress_alice')");
is($watch->query_safe("SELECT vms.authorize('view_live', $cam)"), 'f',
	'a membership removed by another session applies to the next statement of an open transaction');
$watch->query_safe('COMMIT');

# A REPEATABLE READ transaction must not leave stale grants in the cache.
$watch->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$watch->query_safe('SELECT count(*) FROM vms.cameras');
$node->safe_psql('vms', "SELECT vms.add_member('regress_guards', 'regress_alice')");
is($watch->query_safe("SELECT vms.authorize('view_live', $cam)"), 't',
	'grant made after a REPEATABLE READ snapshot is seen by the decision');
$watch->query_safe('COMMIT');
is($watch->query_safe("SELECT vms.authorize('view_live', $cam)"), 't', 'and after it');

$watch->quit;

# RLS with an index: one camera's range uses the primary key.
my $plan = as_user($alice,
	"EXPLAIN (COSTS OFF) SELECT * FROM vms.segments WHERE camera_id = $cam AND start_time > now() - interval '1 hour'");
like($plan, qr/Index (Only )?Scan|Bitmap Index Scan/, 'the RLS query for one camera uses an index');

$node->stop;
done_testing();
