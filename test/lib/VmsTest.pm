# Shared set-up for pg_vms TAP tests: a cluster with pg_vms and pg_cron
# preloaded, SCRAM logins over 127.0.0.1, and a small camera scenario.
package VmsTest;

use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(vms_node vms_cameras vms_scenario tcp_connstr wait_for_audit random_key);

# vms_node(name, database => 'vms', conf => '...', create => 1)
sub vms_node
{
	my ($name, %opt) = @_;
	my $db = $opt{database} // 'vms';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	# Master keys: versions 1-3 in files of mode 0600, unless told otherwise.
	my $keydir = $node->basedir . '/keys';
	my $keyconf = '';
	unless ($opt{no_key})
	{
		mkdir $keydir;
		my @keys = @{ $opt{keys} // [ map { random_key() } 1 .. 3 ] };
		for my $v (1 .. @keys)
		{
			my $f = "$keydir/master-$v.key";
			open my $fh, '>', $f or die $!;
			print $fh $keys[ $v - 1 ], "\n";
			close $fh;
			chmod 0600, $f;
		}
		$node->{vms_keys} = \@keys;
		$keyconf = "vms.key_file = '$keydir/master-%v.key'\n";
	}
	$node->append_conf('postgresql.conf', $keyconf . <<"CONF" . ($opt{conf} // ''));
shared_preload_libraries = 'pg_vms,pg_cron'
vms.database_name = '$db'
cron.database_name = 'vms'
vms.audit_flush_interval = 100ms
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
CONF
	# Passwords over TCP; the test harness itself over the Unix socket.
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
	close $hba;
	$node->start;
	if ($opt{create} // 1)
	{
		$node->safe_psql('postgres', 'CREATE DATABASE vms');
		$node->safe_psql('vms', 'CREATE EXTENSION pg_vms CASCADE');
		# System managers need a TOTP code for administration by default;
		# tests of other features switch that off unless they ask for it.
		$node->safe_psql('vms', "SELECT vms.set_second_factor_required('vms_system_manager', false)")
		  unless $opt{second_factor};
	}
	return $node;
}

sub random_key
{
	return join '', map { sprintf '%02x', int(rand(256)) } 1 .. 32;
}

sub tcp_connstr
{
	my ($node, $user, $password, $db) = @_;
	$db //= 'vms';
	# sslmode/gssencmode pinned so that libpq makes exactly one attempt.
	return 'host=127.0.0.1 port=' . $node->port
	  . " dbname=$db user=$user password=$password sslmode=disable gssencmode=disable";
}

# Cameras entrance (lobby) and gate (yard); role regress_guards sees the lobby
# live and 4 hours back; alice holds it, bob holds nothing.
# Camera groups lobby and yard with cameras entrance and gate.
sub vms_cameras
{
	my ($node) = @_;
	$node->safe_psql('vms', <<'SQL');
SELECT vms.add_camera_group('lobby');
SELECT vms.add_camera_group('yard');
SELECT vms.add_camera('entrance', camera_group => 'lobby');
SELECT vms.add_camera('gate', camera_group => 'yard');
SQL
}

sub vms_scenario
{
	my ($node) = @_;
	vms_cameras($node);
	$node->safe_psql('vms', <<'SQL');
SELECT vms.create_partitions();
SELECT vms.create_role('regress_guards');
SELECT vms.grant_permission('regress_guards', 'view_live', camera_group => 'lobby');
SELECT vms.grant_permission('regress_guards', 'view_recorded', camera_group => 'lobby', recorded_window => '4 hours');
SELECT vms.create_user('regress_alice', 'Alice-pw-1-Zephyr');
SELECT vms.create_user('regress_bob', 'Bob-pw-1-Zephyr');
SELECT vms.add_member('regress_guards', 'regress_alice');
SQL
}

# Wait until the worker has stored and sealed audit rows matching a condition.
sub wait_for_audit
{
	my ($node, $where, $count) = @_;
	$count //= 1;
	return $node->poll_query_until('vms',
		"SELECT count(*) >= $count FROM vms.audit_log WHERE $where");
}

1;
