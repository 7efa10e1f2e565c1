# Client address allow-lists at login (src/client_address.c): rules on a user
# and on a VMS role, refusals look like a failed login and are audited,
# changes apply at commit (not before, not after a rollback), the lists hold
# after a restart, and the audit worker republishes them from the table when
# the saved copy is gone (after a restore, say).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $node = vms_node('addresses');
my %pw = (carol => 'Wm4!tRz8#qLp-address', dave => 'Jy6@kVn3$hXs-address');
$node->safe_psql('vms', <<"SQL");
SELECT vms.create_user('carol', '$pw{carol}');
SELECT vms.create_user('dave', '$pw{dave}');
SELECT vms.create_role('control_room');
SELECT vms.add_member('control_room', 'dave');
SQL

sub login
{
	my ($user) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-w', '-d', tcp_connstr($node, $user, $pw{$user}), '-c', 'SELECT current_user' ],
		'<', \undef, '>', \$out, '2>', \$err);
	chomp $out;
	return $out eq $user ? 'ok' : ($err =~ /(FATAL:.*)/ ? $1 : $err);
}

is(login('carol'), 'ok', 'no rules: carol logs in from 127.0.0.1');

# A rule on the user that does not contain 127.0.0.1.
$node->safe_psql('vms', "SELECT vms.allow_client_address('carol', '10.20.0.0/16', 'office')");
is(login('carol'), 'FATAL:  password authentication failed for user "carol"',
	'a login from outside the list is refused like a wrong password');
is(login('dave'), 'ok', 'other roles are not affected');
ok(wait_for_audit($node, "action = 'login' AND target = 'carol' AND details->>'reason' = 'client_address'"),
	'the refusal is audited with its reason');
ok($node->log_contains('client address is not in the allow-list of role "carol"'),
	'the server log (not the client) says why');

# Adding the loopback network lets carol in; rules of one role are alternatives.
$node->safe_psql('vms', "SELECT vms.allow_client_address('carol', '127.0.0.0/8')");
is(login('carol'), 'ok', 'one matching rule of the role is enough');

# A change that rolls back changes nothing; a change applies at commit.
$node->safe_psql('vms', <<'SQL');
BEGIN;
SELECT vms.remove_client_address('carol', '127.0.0.0/8');
ROLLBACK;
SQL
is(login('carol'), 'ok', 'a rolled-back removal leaves the rule in force');
$node->safe_psql('vms', <<'SQL');
BEGIN;
SAVEPOINT s;
SELECT vms.remove_client_address('carol', '127.0.0.0/8');
ROLLBACK TO SAVEPOINT s;
SELECT vms.allow_client_address('carol', '192.0.2.0/24');
COMMIT;
SQL
is(login('carol'), 'ok', 'a removal rolled back to a savepoint is not published either');
is($node->safe_psql('vms', "SELECT string_agg(network::text, ' ' ORDER BY network) FROM vms.client_address_rules WHERE role = 'carol'"),
	'10.20.0.0/16 127.0.0.0/8 192.0.2.0/24', 'what commits is what the table holds');
$node->safe_psql('vms', "SELECT vms.remove_client_address('carol', '192.0.2.0/24')");
my ($pret, $pout, $perr) = $node->psql('vms', "BEGIN; SELECT vms.allow_client_address('carol', '198.51.100.0/24'); PREPARE TRANSACTION 'x';");
like($perr, qr/cannot PREPARE a transaction that changed client address rules/, 'PREPARE TRANSACTION is refused');
my $tx = $node->background_psql('vms', on_error_stop => 1);
$tx->query_safe('BEGIN');
$tx->query_safe("SELECT vms.remove_client_address('carol', '127.0.0.0/8')");
is(login('carol'), 'ok', 'an uncommitted removal is not yet in force');
$tx->query_safe('COMMIT');
is(login('carol'), 'FATAL:  password authentication failed for user "carol"', 'the committed removal is');
$tx->quit;

# A rule on a VMS role restricts its members.
$node->safe_psql('vms', "SELECT vms.allow_client_address('control_room', '192.0.2.0/24')");
is(login('dave'), 'FATAL:  password authentication failed for user "dave"', 'a VMS role\'s list restricts its members');
$node->safe_psql('vms', "SELECT vms.allow_client_address('control_room', '127.0.0.1/32')");
is(login('dave'), 'ok', 'and its rules admit them');

# The lists hold across a restart (the postmaster reads its saved copy before
# accepting connections).
$node->restart;
is(login('carol'), 'FATAL:  password authentication failed for user "carol"', 'after a restart carol is still refused');
is(login('dave'), 'ok', 'and dave still admitted');

# Lost copy (a restored data directory, say): the worker republishes the table.
$node->stop;
unlink $node->data_dir . '/pg_vms_client_addresses.dat' or die "no saved rules file: $!";
$node->start;
ok($node->poll_query_until('vms', "SELECT (pg_stat_file('pg_vms_client_addresses.dat', true)).size IS NOT NULL"),
	'the worker republished the rules from the table');
is(login('carol'), 'FATAL:  password authentication failed for user "carol"', 'and carol is refused again');

# A Unix-socket login counts as loopback.
$node->safe_psql('vms', "SELECT vms.remove_client_address('carol', '10.20.0.0/16')");
$node->safe_psql('vms', "SELECT vms.allow_client_address('carol', '10.30.0.0/16')");
my ($out, $err) = ('', '');
IPC::Run::run([ 'psql', '-X', '-A', '-t', '-h', $node->host, '-p', $node->port, '-U', 'carol', '-d', 'vms', '-c', 'SELECT 1' ],
	'<', \undef, '>', \$out, '2>', \$err);
like($err, qr/"trust" authentication failed for user "carol"/, 'a Unix-socket login is checked as coming from loopback');
$node->safe_psql('vms', "SELECT vms.allow_client_address('carol', '::1/128')");
($out, $err) = ('', '');
IPC::Run::run([ 'psql', '-X', '-A', '-t', '-h', $node->host, '-p', $node->port, '-U', 'carol', '-d', 'vms', '-c', 'SELECT 1' ],
	'<', \undef, '>', \$out, '2>', \$err);
chomp $out;
is($out, '1', 'and admitted by a loopback rule');

# Dropping the rules makes the role unrestricted again.
$node->safe_psql('vms', "DELETE FROM vms.client_address_rules WHERE role = 'carol'");
is(login('carol'), 'ok', 'direct changes by a superuser are published too (statement trigger)');

$node->stop;
done_testing();
