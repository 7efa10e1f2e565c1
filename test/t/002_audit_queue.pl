# The shared-memory audit queue: entries for denied calls survive a clean
# shutdown and the crash of a backend; losing the postmaster itself loses
# what was still queued (docs/audit.md says so, and this test shows it).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $node = vms_node('queue', conf => "restart_after_crash = on\n");
vms_scenario($node);
my $alice = tcp_connstr($node, 'regress_alice', 'Alice-pw-1-Zephyr');

# Keep the worker away from the queue: point it at a database that does
# not exist (it retries every few seconds and never drains).
sub worker_database
{
	my ($db) = @_;
	$node->append_conf('postgresql.conf', "vms.database_name = '$db'\n");
	$node->restart;
}

sub deny
{
	my ($tag, $n) = @_;
	for my $i (1 .. $n)
	{
		my ($ret) = $node->psql('vms', "SELECT vms.add_camera('$tag-$i')", connstr => $alice);
		die "call $tag-$i was not denied" if $ret == 0;
	}
}

sub queued { return $node->safe_psql('vms', 'SELECT vms.audit_queue_length()'); }

sub logged
{
	my ($tag) = @_;
	return $node->safe_psql('vms',
		"SELECT count(*) FROM vms.audit_log WHERE action = 'add_camera' AND target LIKE '$tag-%' AND outcome = 'denied'");
}

worker_database('no_such_database');

# 1. Clean shutdown with entries queued.
deny('clean', 25);
is(queued(), '25', '25 denied calls wait in the queue');
$node->stop('fast');
ok(-f $node->data_dir . '/pg_vms_audit_queue.dat', 'the postmaster saved the queue on shutdown');
$node->start;
ok(!-f $node->data_dir . '/pg_vms_audit_queue.dat', 'and read it back at start');
is(queued(), '25', 'the queue holds all 25 again');

# 2. A backend crashes: the postmaster reinitialises shared memory.
deny('crash', 10);
is(queued(), '35', '35 entries queued');
my $victim = $node->safe_psql('vms',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");
kill 'KILL', $victim;
$node->poll_query_until('vms', 'SELECT true') or die 'server did not come back';
ok($node->log_contains('restored 35 queued audit entries'), 'crash restart restored the queue');
is(queued(), '35', 'no entry lost to the crash of a child process');

# Let the worker drain everything and check the chain.
worker_database('vms');
ok($node->poll_query_until('vms', 'SELECT vms.audit_queue_length() = 0'), 'the worker drains the queue');
ok(wait_for_audit($node, "action = 'add_camera' AND target LIKE 'crash-%'", 10), 'entries are sealed');
is(logged('clean'), '25', 'all 25 entries queued before the clean shutdown are in the log');
is(logged('crash'), '10', 'all 10 entries queued before the crash are in the log');
is($node->safe_psql('vms', 'SELECT ok FROM vms.verify_audit()'), 't', 'the chain verifies');

# 3. The postmaster itself is killed: what was queued is lost.
worker_database('no_such_database');
deny('lost', 5);
is(queued(), '5', '5 entries queued');
my @children = split /\n/, $node->safe_psql('vms',
	'SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()');
my $postmaster = $node->{_pid};
$node->kill9;
kill 'KILL', @children;
for (1 .. 100)
{
	last unless kill(0, $postmaster) || grep { kill(0, $_) } @children;
	select(undef, undef, undef, 0.1);
}
$node->append_conf('postgresql.conf', "vms.database_name = 'vms'\n");
$node->start;
ok($node->poll_query_until('vms', "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pg_vms audit worker'"),
	'the worker runs again');
$node->safe_psql('vms', 'SELECT pg_sleep(0.5)');
is(logged('lost'), '0', 'entries queued when the postmaster was killed are lost (documented)');
is($node->safe_psql('vms', 'SELECT ok FROM vms.verify_audit()'), 't', 'the chain still verifies');
is(logged('clean'), '25', 'sealed entries are unaffected');

# 3b. No login can stall sealing (and with it the worker that drains the
# queue) by holding the lock the sealer uses: it is not an advisory key.
my $staller = $node->background_psql('vms', on_error_stop => 0,
	connstr => $alice);
$staller->query_safe("SELECT pg_advisory_lock(hashtext('pg_vms audit sealer'))");
$staller->query_safe('BEGIN');
$staller->query_safe('SELECT count(*) FROM vms.audit_log');
deny('stalled', 3);
ok(wait_for_audit($node, "action = 'add_camera' AND target LIKE 'stalled-%'", 3),
	'a user holding the old sealer key and reading the log in an open transaction does not stop sealing');
$staller->quit;

# 4. A full queue: refusals are counted and reported as one overflow entry.
$node->append_conf('postgresql.conf', "vms.audit_queue_size = 64\nvms.database_name = 'no_such_database'\n");
$node->restart;
deny('flood', 70);
is(queued(), '64', 'the queue holds its 64 slots');
worker_database('vms');
ok(wait_for_audit($node, "action = 'audit_queue_overflow'"), 'an overflow entry is written');
is($node->safe_psql('vms', "SELECT details->>'dropped' FROM vms.audit_log WHERE action = 'audit_queue_overflow'"),
	'6', 'it counts the 6 entries that did not fit');

$node->stop;
done_testing();
