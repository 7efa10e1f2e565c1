# A user's password never reaches the server log, the audit log or a dump,
# even with every statement logged and the call failing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $canary = 'Canary-Secret-4711';
my $node = vms_node('secrets', conf => <<'CONF');
log_statement = 'all'
log_min_duration_statement = 0
log_min_error_statement = error
CONF

$node->safe_psql('vms', "SELECT vms.create_user('regress_canary', '$canary')");
my ($ret) = $node->psql('vms', "SELECT vms.create_user('regress_canary', '$canary')");
isnt($ret, 0, 'creating the same user again fails (an error report with a STATEMENT line)');
$node->psql('vms', "select VMS.CREATE_USER('regress_canary2', '$canary', 'in capitals')");
$node->connect_ok(tcp_connstr($node, 'regress_canary', $canary), 'the password works for logging in',
	sql => 'SELECT 1');
ok(wait_for_audit($node, "action = 'create_user'", 3), 'the calls are audited');

my $log = slurp_file($node->logfile);
like($log, qr/statement hidden by pg_vms/, 'the server log shows that statements were hidden');
unlike($log, qr/\Q$canary\E/, 'the password is nowhere in the server log');

is($node->safe_psql('vms', "SELECT count(*) FROM vms.audit_log WHERE details::text LIKE '%$canary%' OR target LIKE '%$canary%'"),
	'0', 'nor in the audit log');

my $tmp = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dumpall', '--roles-only', '-h', $node->host, '-p', $node->port, '-f', "$tmp/roles.sql" ],
	'pg_dumpall --roles-only');
$node->command_ok([ 'pg_dump', '-h', $node->host, '-p', $node->port, '-d', 'vms', '-f', "$tmp/vms.sql" ], 'pg_dump');
my $dumps = slurp_file("$tmp/roles.sql") . slurp_file("$tmp/vms.sql");
like($dumps, qr/regress_canary.*SCRAM-SHA-256/, 'the dump carries the SCRAM verifier');
unlike($dumps, qr/\Q$canary\E/, 'and not the password');

# Ordinary statements are logged as usual.
$node->safe_psql('vms', "SELECT 'an ordinary statement'");
like(slurp_file($node->logfile), qr/statement: SELECT 'an ordinary statement'/, 'other statements are not hidden');

$node->stop;
done_testing();
