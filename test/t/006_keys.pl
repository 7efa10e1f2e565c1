# The master key: sources and their checks, no key at all, rotation while
# recorders read credentials, restart after rotation, and no camera password
# in the server log, pg_stat_statements, the tables or a dump.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $pq_exec = "$ENV{PGVMS_BIN}/pq_exec";

sub setup_camera
{
	my ($node) = @_;
	$node->safe_psql('vms', <<'SQL');
SELECT vms.add_camera('entrance');
SELECT vms.create_user('regress_rec', 'Recorder-pw-1-Zephyr');
SELECT vms.add_member('vms_recorder', 'regress_rec');
SELECT vms.assign_recorder(1, 'regress_rec');
SQL
}

# 1. No key source: what needs the key fails clearly; the rest works.
{
	my $node = vms_node('nokey', no_key => 1);
	setup_camera($node);
	my ($ret, $out, $err) = $node->psql('vms', "SELECT vms.set_camera_credential(1, 'admin', 'pw')");
	isnt($ret, 0, 'without a key, storing a credential fails');
	like($err, qr/pg_vms has no master key/, 'with a clear error');
	like($err, qr/vms\.key_file or vms\.key_command/, 'naming the settings');
	is($node->safe_psql('vms', "SELECT vms.authorize('view_live', 1)"), 't', 'everything else works');
	ok($node->log_contains('pg_vms: no master key'), 'the server log says why at start');
	$node->stop;
}

# 2. A key file readable by others is refused.
{
	my $node = vms_node('badmode');
	chmod 0644, $node->basedir . '/keys/master-1.key';
	$node->restart;
	setup_camera($node);
	my ($ret, $out, $err) = $node->psql('vms', "SELECT vms.set_camera_credential(1, 'admin', 'pw')");
	like($err, qr/pg_vms has no master key/, 'a key file of mode 0644 is refused');
	unlike($err, qr/master-1\.key/, 'the client is not told the key file path');
	ok($node->log_contains('mode 0644; it must be 0600'), 'the server log says why');
	$node->stop;
}

# 3. vms.key_command; rotation while recorders read; restart after rotation.
my $node = vms_node('keycmd', no_key => 1, conf => "restart_after_crash = on\n");
my $keydir = $node->basedir . '/keys';
mkdir $keydir;
for my $v (1 .. 4)
{
	open my $fh, '>', "$keydir/k$v" or die $!;
	print $fh random_key(), "\n";
	close $fh;
}
$node->append_conf('postgresql.conf', "vms.key_command = 'cat $keydir/k%v'\n");
$node->restart;
setup_camera($node);
$node->safe_psql('vms', "SELECT vms.set_camera_credential(1, 'admin', 'Rotate-Secret-1')");
my $rec = tcp_connstr($node, 'regress_rec', 'Recorder-pw-1-Zephyr');
is($node->safe_psql('vms', 'SELECT master_key_version FROM vms.key_status()'), '1', 'key version 1 from vms.key_command');

# Readers: pgbench as the recorder, reading the credential for 6 seconds,
# while the master key is rotated twice.
my $script = $node->basedir . '/read.sql';
open my $sfh, '>', $script or die $!;
print $sfh "SELECT password FROM vms.camera_credential(1);\n";
close $sfh;
my ($stdout, $stderr) = ('', '');
my $readers = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '6', '-f', $script, '-d', $rec ],
	'>', \$stdout, '2>', \$stderr);
sleep 1;
is($node->safe_psql('vms', 'SELECT new_version FROM vms.rotate_master_key()'), '2', 'rotated to version 2');
sleep 1;
is($node->safe_psql('vms', 'SELECT new_version FROM vms.rotate_master_key()'), '3', 'rotated to version 3');
$readers->finish;
like($stdout, qr/number of transactions actually processed: [1-9]/, 'the readers kept reading');
like($stdout, qr/number of failed transactions: 0 /, 'no reader transaction failed during the rotations');
unlike($stdout . $stderr, qr/aborted|ERROR/, 'no reader saw an error');

is($node->safe_psql('vms', 'SELECT master_version FROM vms.data_keys'), '3', 'the data key is wrapped by version 3');
$node->restart;
is($node->safe_psql('vms', 'SELECT master_key_version FROM vms.key_status()'), '3', 'after a restart version 3 is current');
my $pw = `$pq_exec '$rec' 'SELECT password FROM vms.camera_credential(\$1)' 1`;
chomp $pw;
is($pw, 'Rotate-Secret-1', 'and the credential still decrypts');

# A wrong key for the current version: nothing decrypts, with a clear error,
# and nothing is changed.
my $saved = slurp_file("$keydir/k3");
open my $wfh, '>', "$keydir/k3" or die $!;
print $wfh random_key(), "\n";
close $wfh;
$node->restart;
my ($wret, $wout, $werr) = $node->psql('vms', 'SELECT password FROM vms.camera_credential(1)',
	connstr => $rec);
isnt($wret, 0, 'with a wrong master key the credential cannot be read');
like($werr, qr/data key \d+ does not unwrap with master key version 3/, 'and the error says which key does not unwrap');
unlike($werr, qr/Rotate-Secret-1/, 'without any plaintext');
open $wfh, '>', "$keydir/k3" or die $!;
print $wfh $saved;
close $wfh;
$node->restart;
$pw = `$pq_exec '$rec' 'SELECT password FROM vms.camera_credential(\$1)' 1`;
chomp $pw;
is($pw, 'Rotate-Secret-1', 'with the right key back, it decrypts again');

# The version file lost (a restore, a failover): versions the data keys name
# are loaded from the key source on demand, and new keys follow the table.
unlink($node->data_dir . '/pg_vms_master_key_version') or die $!;
$node->restart;
$pw = `$pq_exec '$rec' 'SELECT password FROM vms.camera_credential(\$1)' 1`;
chomp $pw;
is($pw, 'Rotate-Secret-1', 'without the version file, the credential still decrypts (version 3 loaded on demand)');
is($node->safe_psql('vms', 'SELECT master_key_version FROM vms.key_status()'), '3',
	'and the current version is taken from the data keys');

# A rotation rolled back to a savepoint changes nothing.
$node->safe_psql('vms', <<'SQL');
BEGIN;
SAVEPOINT s;
SELECT vms.rotate_master_key();
ROLLBACK TO SAVEPOINT s;
COMMIT;
SQL
is($node->safe_psql('vms', "SELECT array_to_string(versions_in_use, ',') FROM vms.key_status()"), '3',
	'a rotation rolled back to a savepoint leaves version 3 in use');
ok(!-e $node->data_dir . '/pg_vms_master_key_version', 'and writes no version file');

# A rotation the key source cannot serve fails cleanly and changes nothing.
unlink("$keydir/k4");
my ($ret, $out, $err) = $node->psql('vms', 'SELECT vms.rotate_master_key()');
like($err, qr/could not load master key version 4/, 'rotation to a version the source lacks fails clearly');
is($node->safe_psql('vms', 'SELECT master_key_version FROM vms.key_status()'), '3', 'and leaves version 3 current');
$node->stop;

# 4. Secrets: every statement logged, pg_stat_statements on.
my $canary = 'Camera-Canary-8265';
my $sec = vms_node('camsecrets', conf => <<'CONF');
log_statement = 'all'
log_min_duration_statement = 0
log_min_error_statement = error
shared_preload_libraries = 'pg_vms,pg_cron,pg_stat_statements'
CONF
$sec->safe_psql('vms', 'CREATE EXTENSION pg_stat_statements');
setup_camera($sec);
# The recommended path: bind parameters (any driver), here through libpq.
my $su = 'host=' . $sec->host . ' port=' . $sec->port . ' dbname=vms user=' . $ENV{USER};
system($pq_exec, "host=" . $sec->host . " port=" . $sec->port . " dbname=vms",
	'SELECT vms.set_camera_credential($1, $2, $3)', '1', 'admin', $canary) == 0
  or die 'pq_exec failed';
# A literal in the statement, and a failing call, too.
$sec->safe_psql('vms', "SELECT vms.set_camera_credential(1, 'admin', '$canary')");
$sec->psql('vms', "SELECT vms.set_camera_credential(999, 'admin', '$canary')");
my $got = `$pq_exec '@{[tcp_connstr($sec, 'regress_rec', 'Recorder-pw-1-Zephyr')]}' 'SELECT password FROM vms.camera_credential(\$1)' 1`;
chomp $got;
is($got, $canary, 'the recorder reads the password back');

my $log = slurp_file($sec->logfile);
like($log, qr/parameters: hidden by pg_vms/, 'bind parameters of the call are hidden in the log');
unlike($log, qr/\Q$canary\E/, 'the camera password is nowhere in the server log');
is($sec->safe_psql('vms', "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%$canary%'"), '0',
	'nor in pg_stat_statements');
is($sec->safe_psql('vms', "SELECT count(*) FROM vms.camera_credentials WHERE position(convert_to('$canary', 'UTF8') IN password) > 0"),
	'0', 'nor in the table');
my $tmp = PostgreSQL::Test::Utils::tempdir;
$sec->command_ok([ 'pg_dump', '-h', $sec->host, '-p', $sec->port, '-d', 'vms', '-f', "$tmp/vms.sql" ], 'pg_dump');
my $dump = slurp_file("$tmp/vms.sql");
like($dump, qr/camera_credentials/, 'the dump carries the encrypted credentials');
unlike($dump, qr/\Q$canary\E/, 'but not the password');
$sec->stop;

done_testing();
