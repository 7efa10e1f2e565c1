# vms.security_report(): every check is flipped and its row changes.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $node = vms_node('report', second_factor => 1);
my $hba_file = $node->data_dir . '/pg_hba.conf';
my $good_hba = "local all all peer\nhost all +vms_user 127.0.0.1/32 scram-sha-256\n";

sub hba
{
	my ($text) = @_;
	open my $fh, '>', $hba_file or die $!;
	print $fh $text;
	close $fh;
	$node->reload;
	sleep 0.3;
}
sub set
{
	my ($setting) = @_;
	$node->safe_psql('vms', "ALTER SYSTEM SET $setting");
	$node->safe_psql('vms', 'SELECT pg_reload_conf()');
	sleep 0.3;
}
sub row
{
	my ($check) = @_;
	return $node->safe_psql('vms', "SELECT status || ' | ' || detail FROM vms.security_report() WHERE check_name = '$check'");
}
sub status { return (split / \| /, row($_[0]))[0]; }

hba($good_hba);
# A certificate so that ssl can be switched on.
my $dir = $node->data_dir;
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
	'-keyout', "$dir/server.key", '-out', "$dir/server.crt") == 0 or die 'openssl failed';
chmod 0600, "$dir/server.key";

my @checks = split /\n/, $node->safe_psql('vms', 'SELECT check_name FROM vms.security_report() ORDER BY 1');
ok(@checks >= 20, scalar(@checks) . ' checks');
is($node->safe_psql('vms', "SELECT count(*) FROM vms.security_report() WHERE status NOT IN ('pass', 'warn', 'fail') OR detail IS NULL"),
	'0', 'each row has a status of pass, warn or fail and a detail');
is($node->safe_psql('vms', "SELECT count(*) FROM vms.security_report() WHERE status <> 'pass' AND remediation IS NULL"),
	'0', 'each row that is not a pass says how to fix it');

# password_encryption
is(status('password_encryption'), 'pass', 'password_encryption scram-sha-256: pass');
set("password_encryption = 'md5'");
like(row('password_encryption'), qr/^fail \| password_encryption = md5/, 'md5: fail');
set('password_encryption = DEFAULT');

# stored hashes
$node->safe_psql('vms', "CREATE ROLE legacy LOGIN");
is(status('stored_password_hashes'), 'pass', 'only SCRAM verifiers stored: pass');
$node->safe_psql('vms', "UPDATE pg_authid SET rolpassword = 'md5' || md5('secretlegacy') WHERE rolname = 'legacy'");
like(row('stored_password_hashes'), qr/^fail \| 1 roles/, 'an md5 hash in pg_authid: fail');
$node->safe_psql('vms', "DROP ROLE legacy");

# pg_hba: weak methods, errors, TLS, LDAP over TLS
is(status('hba_weak_methods'), 'pass', 'no weak pg_hba lines: pass');
hba($good_hba . "host all all 127.0.0.1/32 md5\n");
like(row('hba_weak_methods'), qr/^fail \| pg_hba.conf lines 3 \(md5\)/, 'an md5 line for all: fail');
hba($good_hba . "host all +vms_user 10.0.0.0/8 trust\n");
like(row('hba_weak_methods'), qr/^fail .*3 \(trust\)/, 'trust for VMS users: fail');
hba($good_hba . "host all all 127.0.0.1/32 nonsense\n");
is(status('hba_errors'), 'fail', 'a broken pg_hba line: fail');
hba($good_hba);
is(status('hba_errors'), 'pass', 'no broken lines: pass');
is(status('hba_tls_only'), 'pass', 'only hostssl from the network: pass');
hba($good_hba . "host all +vms_user 10.0.0.0/8 scram-sha-256\n");
is(status('hba_tls_only'), 'warn', 'a non-TLS network line: warn');
hba($good_hba . qq{host all +vms_user 10.0.0.0/8 ldap ldapserver=ldap.example.org ldapprefix="uid=" ldapsuffix=",dc=example,dc=org"\n});
is(status('hba_ldap_tls'), 'fail', 'ldap without TLS: fail');
hba($good_hba . qq{host all +vms_user 10.0.0.0/8 ldap ldapserver=ldap.example.org ldapscheme=ldaps ldapprefix="uid=" ldapsuffix=",dc=example,dc=org"\n});
is(status('hba_ldap_tls'), 'pass', 'ldaps: pass');
hba($good_hba);

# TLS
is(status('ssl'), 'fail', 'ssl off: fail');
set("ssl = on");
is(status('ssl'), 'pass', 'ssl on: pass');
is(status('ssl_min_protocol_version'), 'pass', 'TLSv1.2 minimum: pass');
set("ssl_min_protocol_version = 'TLSv1.1'");
is(status('ssl_min_protocol_version'), 'fail', 'TLSv1.1 allowed: fail');
set("ssl_min_protocol_version = 'TLSv1.3'");
is(status('ssl_min_protocol_version'), 'pass', 'TLSv1.3 minimum: pass');

# The default PostgreSQL account
like(row('bootstrap_superuser'), qr/^pass \| \S+ has no password and only peer access/, 'no password, peer only: pass');
hba($good_hba . "host all all 127.0.0.1/32 scram-sha-256\n");
is(status('bootstrap_superuser'), 'fail', 'no password but reachable over TCP: fail');
my $su = $node->safe_psql('vms', 'SELECT current_user');
$node->safe_psql('vms', "ALTER ROLE \"$su\" PASSWORD 'Bootstrap-Su-pw-71!x'");
like(row('bootstrap_superuser'), qr/^pass \| \S+ has a password/, 'with a password: pass');
hba($good_hba);

# Who holds power
is(status('superusers'), 'pass', 'one superuser: pass');
$node->safe_psql('vms', 'CREATE ROLE extra_su SUPERUSER LOGIN');
like(row('superusers'), qr/^warn \| 2 superusers/, 'two superusers: warn');
$node->safe_psql('vms', 'DROP ROLE extra_su');
like(row('system_managers'), qr/^warn \| 0 system managers/, 'no system manager: warn');
$node->safe_psql('vms', "SELECT vms.create_user('chief', 'Granite-Beacon-42!'); SELECT vms.add_member('vms_system_manager', 'chief')");
like(row('system_managers'), qr/^pass \| 1 system managers: chief/, 'one system manager: pass');
like(row('second_factor_enrolled'), qr/^fail \| 1 users need a second factor .*: chief/, 'a system manager without TOTP: fail');
my $uri = $node->safe_psql('vms', 'SET ROLE chief; SELECT vms.totp_enroll();');
is(status('second_factor_enrolled'), 'fail', 'enrolled but not confirmed: still fail');
# The code comes from oathtool, an independent RFC 6238 implementation, fed
# with the secret of the otpauth:// URI: what an authenticator app does.
my ($secret) = $uri =~ /[?&]secret=([A-Z2-7]+)/;
my $code = `oathtool --totp -b $secret`;
chomp $code;
like($code, qr/^\d{6}$/, 'oathtool reads the enrolment secret');
is($node->safe_psql('vms', "SET ROLE chief; SELECT vms.totp_verify('$code') > now();"), 't',
	'and its code is accepted by vms.totp_verify()');
is(status('second_factor_enrolled'), 'pass', 'confirmed: pass');

# The elevation ends after vms.totp_elevation_time (in one session: the
# elevation belongs to it).  The next step's code (within the drift window).
set("vms.totp_elevation_time = '2s'");
my $next = `oathtool --totp -b $secret -N \@@{[ time() + 30 ]}`;
chomp $next;
my $bg = $node->background_psql('vms', on_error_stop => 0);
$bg->query_safe('SET ROLE chief');
$bg->query_safe("SELECT vms.totp_verify('$next')");
is($bg->query_safe("SELECT vms.add_camera('elevated-cam') > 0"), 't', 'elevated: administration works');
sleep 2.5;
my ($out, $failed) = $bg->query("SELECT vms.add_camera('late-cam')");
ok($failed && $bg->{stderr} =~ /permission denied: manage_cameras/, 'when the elevation time is over it is refused again');
is(scalar $bg->query('SELECT vms.elevated_until() IS NULL'), 't', 'and the session is no longer elevated');
$bg->quit;
set('vms.totp_elevation_time = DEFAULT');
is(status('second_factor_required'), 'pass', 'system managers need a second factor: pass');
$node->safe_psql('vms', "SELECT vms.set_second_factor_required('vms_system_manager', false)");
is(status('second_factor_required'), 'fail', 'switched off: fail');
$node->safe_psql('vms', "SELECT vms.set_second_factor_required('vms_system_manager', true)");
is(status('roles_without_members'), 'pass', 'no empty VMS role: pass');
$node->safe_psql('vms', "SELECT vms.create_role('night_shift')");
like(row('roles_without_members'), qr/^warn \| 1 VMS roles have no members: night_shift/, 'an empty VMS role: warn');
$node->safe_psql('vms', "SELECT vms.create_user('owl', 'Lantern-Moss-43!'); SELECT vms.add_member('night_shift', 'owl')");
is(status('roles_without_members'), 'pass', 'with a member: pass');

# A second factor belongs to the person who logged in: a system manager who
# has not verified one cannot SET ROLE around it, nor enrol one for the role.
$node->safe_psql('vms', "SELECT vms.create_user('deputy', 'Basalt-Harbor-45!'); SELECT vms.add_member('vms_system_manager', 'deputy')");
# deputy logs in over TCP, SETs ROLE vms_system_manager and runs one statement; stderr.
sub as_deputy_manager
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-d', tcp_connstr($node, 'deputy', 'Basalt-Harbor-45!'),
			'-c', 'SET ROLE vms_system_manager', '-c', $sql ],
		'<', \undef, '>', \$out, '2>', \$err);
	return $err;
}
like(as_deputy_manager("SELECT vms.create_role('deputy_made')"), qr/permission denied: manage_roles is required/,
	'SET ROLE vms_system_manager does not skip the second factor');
like(as_deputy_manager('SELECT vms.totp_enroll()'), qr/a second factor belongs to the user who logged in/,
	'nor enrol a second factor for the role');
is($node->safe_psql('vms', "SELECT count(*) FROM pg_roles WHERE rolname = 'deputy_made'"), '0', 'nothing was created');

# Lockout and password policy: each setting moved off its default fails the row.
is(status('login_lockout'), 'pass', '3 failures, 30 s: pass');
is(status('password_policy'), 'pass', 'default password policy: pass');
for my $flip (
	[ 'login_lockout',   'vms.lockout_threshold = 0',          'lockout off' ],
	[ 'login_lockout',   "vms.lockout_duration = '5s'",        'a 5 s lockout' ],
	[ 'password_policy', 'vms.password_min_length = 8',        'shorter passwords' ],
	[ 'password_policy', 'vms.password_allow_hashed = on',     'pre-hashed passwords allowed' ],
	[ 'password_policy', "vms.password_common_list = ''",      'no common-password list' ])
{
	my ($check, $setting, $what) = @$flip;
	my ($name) = $setting =~ /^(\S+)/;
	set($setting);
	is(status($check), 'fail', "$what: $check fails");
	set("$name = DEFAULT");
	is(status($check), 'pass', "$name back to its default: $check passes");
}

# Other settings
is(status('master_key'), 'pass', 'master key loaded: pass');
is(status('log_connections'), 'warn', 'log_connections off: warn');
set('log_connections = on');
is(status('log_connections'), 'pass', 'log_connections on: pass');
is(status('pg_cron_loaded'), 'pass', 'pg_cron preloaded: pass');
is(status('audit_queue_overflow'), 'pass', 'no audit queue overflow: pass');
like(row('retention_cap'), qr/^pass \| vms.max_retention = 30 days$/, 'retention cap of 30 days: pass');
set("vms.max_retention = '90d'");
like(row('retention_cap'), qr/^warn \| vms.max_retention = 90 days$/, 'a cap raised past 30 days: warn');
set('vms.max_retention = DEFAULT');
is(status('retention_scheduled'), 'warn', 'retention not scheduled: warn');
$node->safe_psql('vms', "CREATE EXTENSION IF NOT EXISTS pg_cron; SELECT vms.schedule_maintenance('17 * * * *')");
is(status('retention_scheduled'), 'pass', 'retention scheduled with pg_cron: pass');
is(status('retention_applied'), 'pass', 'nothing kept past retention: pass');
$node->safe_psql('vms', q{
	SELECT vms.set_retention(min(id), '1 day') FROM vms.cameras;
	SELECT vms._ensure_day_partitions((now() - interval '3 days')::date);
	INSERT INTO vms.segments (camera_id, start_time, end_time, path, bytes, sha256, recorder)
	SELECT min(id), now() - interval '3 days', now() - interval '3 days' + interval '6 s', 'old.ts', 1,
	       sha256('x'), 'nobody' FROM vms.cameras;});
like(row('retention_applied'), qr/^warn \| 1 cameras keep recordings past their retention/, 'a recording past retention: warn');
$node->safe_psql('vms', 'SELECT vms.apply_retention()');
is(status('retention_applied'), 'pass', 'after vms.apply_retention(): pass');
is(status('storage_integrity'), 'pass', 'no storage check found a mismatch: pass');
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pg_vms'\n");
$node->restart;
is(status('pg_cron_loaded'), 'warn', 'without pg_cron: warn');

# Who may read it
$node->safe_psql('vms', "SELECT vms.create_user('aud', 'Cobalt-River-44!'); SELECT vms.add_member('vms_auditor', 'aud')");
is($node->safe_psql('vms', "SET ROLE aud; SELECT count(*) > 0 FROM vms.security_report()"), 't', 'auditors may read the report');
my ($ret, $out, $err) = $node->psql('vms', "SET ROLE owl; SELECT * FROM vms.security_report()");
like($err, qr/permission denied: the security report is for system managers and auditors/, 'a plain user may not');

$node->stop;
done_testing();
