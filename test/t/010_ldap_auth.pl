# LDAP logins against a real OpenLDAP server (slapd on 127.0.0.1): pg_hba
# `ldap` with simple bind, search+bind, LDAPS and StartTLS; the right
# password logs in, a wrong one or an unknown user does not; TLS below 1.2
# is refused on both sides; and an LDAP user has exactly the permissions of
# the VMS roles it holds.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;
use VmsLdap;

my $ldap = VmsLdap->new('auth',
	ldif => VmsLdap::user_ldif('alice', 'Alice-ldap-1')
	  . VmsLdap::user_ldif('bob', 'Bob-ldap-1')
	  . VmsLdap::group_ldif('operators', 'alice'));
my $base = $ldap->{basedn};

# The postmaster's libldap trusts the test CA, verifies the certificate and
# speaks TLS 1.2 or later (libldap reads LDAP<option> variables as ldap.conf
# options; Debian's GnuTLS build needs the cipher-suite priority for the
# protocol floor, OpenSSL builds TLS_PROTOCOL_MIN).
$ENV{LDAPTLS_CACERT} = $ldap->{ca_file};
$ENV{LDAPTLS_REQCERT} = 'demand';
$ENV{LDAPTLS_PROTOCOL_MIN} = '3.3';
$ENV{LDAPTLS_CIPHER_SUITE} = $VmsLdap::TLS12_PRIORITY;

# Lockout off: this file fails logins on purpose, many times.
my $node = vms_node('ldap_auth', conf => "vms.lockout_threshold = 0\n");
# Cameras entrance (lobby) and gate (yard); regress_guards watches the lobby.
# PostgreSQL roles for the directory's users, without passwords: LDAP checks them.
# carol exists in PostgreSQL only, not in the directory.
vms_cameras($node);
$node->safe_psql('vms', <<'SQL');
SELECT vms.create_role('regress_guards');
SELECT vms.grant_permission('regress_guards', 'view_live', camera_group => 'lobby');
SELECT vms.create_user('alice');
SELECT vms.create_user('bob');
SELECT vms.create_user('carol');
SELECT vms.add_member('regress_guards', 'alice');
SQL

sub set_hba
{
	my ($method) = @_;
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\nhost all all 127.0.0.1/32 $method\n";
	close $hba;
	$node->restart;
}

# Right password, wrong password, PostgreSQL role unknown to the directory,
# and a name unknown to both.
sub check_logins
{
	my ($mode) = @_;
	$node->connect_ok(tcp_connstr($node, 'alice', 'Alice-ldap-1'),
		"$mode: alice logs in with her directory password");
	$node->connect_fails(tcp_connstr($node, 'alice', 'Alice-wrong-1'),
		"$mode: a wrong password is refused",
		expected_stderr => qr/LDAP authentication failed for user "alice"/);
	$node->connect_fails(tcp_connstr($node, 'carol', 'Alice-ldap-1'),
		"$mode: a role the directory does not know is refused",
		expected_stderr => qr/LDAP authentication failed for user "carol"/);
	$node->connect_fails(tcp_connstr($node, 'mallory', 'Alice-ldap-1'),
		"$mode: an unknown user is refused",
		expected_stderr => qr/authentication failed for user "mallory"/);
	return;
}

# Binds as alice with ldapwhoami under extra environment; true on success.
sub ldap_whoami
{
	my ($url, %env) = @_;
	local @ENV{ keys %env } = values %env;
	my ($out, $err) = ('', '');
	return IPC::Run::run([ 'ldapwhoami', '-x', '-H', $url, '-D', "uid=alice,ou=people,$base",
			'-w', 'Alice-ldap-1' ], '<', \'', '>', \$out, '2>', \$err);
}

my $port = $ldap->{port};
my $ldaps_port = $ldap->{ldaps_port};

# 1. Simple bind: the DN is ldapprefix + user name + ldapsuffix.
set_hba(qq{ldap ldapserver=127.0.0.1 ldapport=$port ldapprefix="uid=" ldapsuffix=",ou=people,$base"});
check_logins('simple bind');
# The SCRAM password of a VMS user plays no part under ldap.
$node->safe_psql('vms', "SELECT vms.create_user('dora', 'Tulip-Orbit-47x')");
$node->connect_fails(tcp_connstr($node, 'dora', 'Tulip-Orbit-47x'),
	'simple bind: a PostgreSQL password does not log in when pg_hba says ldap',
	expected_stderr => qr/LDAP authentication failed for user "dora"/);

# 2. Search+bind: find the entry (uid=<user>) as the search account, then bind as it.
my $search = qq{ldapbasedn="$base" ldapbinddn="cn=pgsearch,$base" ldapbindpasswd="Search-pw-1" ldapsearchattribute=uid};
set_hba(qq{ldap ldapserver=127.0.0.1 ldapport=$port $search});
check_logins('search+bind');
set_hba(qq{ldap ldapserver=127.0.0.1 ldapport=$port ldapbasedn="$base" ldapbinddn="cn=pgsearch,$base" ldapbindpasswd="wrong" ldapsearchattribute=uid});
$node->connect_fails(tcp_connstr($node, 'alice', 'Alice-ldap-1'),
	'search+bind: nobody logs in when the search account cannot bind',
	expected_stderr => qr/LDAP authentication failed for user "alice"/);
ok($node->log_contains(qr/could not perform initial LDAP bind for ldapbinddn "cn=pgsearch,$base"/),
	'search+bind: the server log says why');

# 3. LDAPS (TLS from the first byte), simple bind and search+bind (ldapurl form).
set_hba(qq{ldap ldapserver=127.0.0.1 ldapscheme=ldaps ldapport=$ldaps_port ldapprefix="uid=" ldapsuffix=",ou=people,$base"});
check_logins('ldaps');
set_hba(qq{ldap ldapurl="ldaps://127.0.0.1:$ldaps_port/$base?uid?sub" ldapbinddn="cn=pgsearch,$base" ldapbindpasswd="Search-pw-1"});
check_logins('ldaps search+bind (ldapurl)');

# 4. StartTLS on the ldap:// port.
set_hba(qq{ldap ldapserver=127.0.0.1 ldapport=$port ldaptls=1 $search});
check_logins('starttls');

# The certificate is verified: a server whose certificate another CA signed is refused.
my $stranger = VmsLdap->new('stranger', ldif => VmsLdap::user_ldif('alice', 'Alice-ldap-1'));
set_hba(qq{ldap ldapserver=127.0.0.1 ldapscheme=ldaps ldapport=$stranger->{ldaps_port} ldapprefix="uid=" ldapsuffix=",ou=people,$base"});
$node->connect_fails(tcp_connstr($node, 'alice', 'Alice-ldap-1'),
	'ldaps: a server certificate the CA did not sign is refused',
	expected_stderr => qr/LDAP authentication failed for user "alice"/);
ok(ldap_whoami($stranger->{ldaps_url}, LDAPTLS_CACERT => $stranger->{ca_file}),
	'(control: the same server is reachable by a client that trusts its CA)');
$stranger->stop;

# TLS 1.2 or later, client side: a server that offers only TLS 1.0/1.1 is refused.
my $weak = VmsLdap->new('weak', weak_tls => 1, ca_from => $ldap,
	ldif => VmsLdap::user_ldif('alice', 'Alice-ldap-1'));
set_hba(qq{ldap ldapserver=127.0.0.1 ldapscheme=ldaps ldapport=$weak->{ldaps_port} ldapprefix="uid=" ldapsuffix=",ou=people,$base"});
$node->connect_fails(tcp_connstr($node, 'alice', 'Alice-ldap-1'),
	'ldaps: the postmaster refuses a directory server that offers only TLS 1.1',
	expected_stderr => qr/LDAP authentication failed for user "alice"/);
ok($node->log_contains(qr/LDAP diagnostics: A packet with illegal or unsupported version was received/),
	'ldaps: the server log names the protocol version as the reason');
ok(ldap_whoami($weak->{ldaps_url}, LDAPTLS_CIPHER_SUITE => 'NORMAL', LDAPTLS_PROTOCOL_MIN => '3.1'),
	'(control: the same server is reachable by a client that allows TLS 1.1)');
$weak->stop;

# TLS 1.2 or later, server side (openssl s_client; SECLEVEL=0 lets it offer TLS 1.1).
SKIP:
{
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'openssl', 's_client', '-connect', "127.0.0.1:$ldaps_port", '-tls1_1',
			'-cipher', 'DEFAULT@SECLEVEL=0', '-CAfile', $ldap->{ca_file} ],
		'<', \'', '>', \$out, '2>', \$err);
	skip 'this openssl cannot offer TLS 1.1', 2 if "$out$err" =~ /no protocols available|unknown option/i;
	ok(!$ok && $out =~ /Cipher is \(NONE\)/, 'slapd refuses a TLS 1.1 handshake');
	($out, $err) = ('', '');
	$ok = IPC::Run::run([ 'openssl', 's_client', '-connect', "127.0.0.1:$ldaps_port", '-tls1_2',
			'-CAfile', $ldap->{ca_file}, '-verify_return_error' ],
		'<', \'', '>', \$out, '2>', \$err);
	ok($ok && $out =~ /Protocol\s*:\s*TLSv1\.2/ && $out =~ /Verify return code: 0 \(ok\)/,
		'slapd completes a TLS 1.2 handshake with a certificate the test CA signed');
}

# Permissions: an LDAP user has exactly what its VMS roles give.
set_hba(qq{ldap ldapserver=127.0.0.1 ldapscheme=ldaps ldapport=$ldaps_port $search});
my $alice = tcp_connstr($node, 'alice', 'Alice-ldap-1');
my $bob = tcp_connstr($node, 'bob', 'Bob-ldap-1');
sub as_user
{
	my ($connstr, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('vms', $sql, connstr => $connstr);
	return $ret == 0 ? $out : "error: $err";
}
my $entrance = $node->safe_psql('vms', "SELECT id FROM vms.cameras WHERE name = 'entrance'");
my $gate = $node->safe_psql('vms', "SELECT id FROM vms.cameras WHERE name = 'gate'");
is(as_user($alice, "SELECT string_agg(name, ',' ORDER BY name) FROM vms.cameras"), 'entrance',
	'alice (LDAP, regress_guards) sees the lobby camera only');
is(as_user($alice, "SELECT vms.authorize('view_live', $entrance)::text || vms.authorize('view_live', $gate)::text"),
	'truefalse', 'alice may watch the entrance live, not the gate');
is(as_user($alice, "SELECT vms.has_permission('manage_roles')"), 'f', 'alice holds no administration');
is(as_user($bob, 'SELECT count(*) FROM vms.cameras'), '0', 'bob (LDAP, no VMS role) sees no camera');
$node->safe_psql('vms', "SELECT vms.add_member('regress_guards', 'bob')");
is(as_user($bob, "SELECT string_agg(name, ',' ORDER BY name) FROM vms.cameras"), 'entrance',
	'bob sees the lobby camera once he holds regress_guards');
like(as_user($bob, "SELECT vms.add_camera('rogue')"), qr/permission denied: manage_cameras/,
	'and may not do more than the role allows');
ok(wait_for_audit($node, "action = 'add_camera' AND target = 'rogue' AND actor = 'bob' AND outcome = 'denied'"),
	'the LDAP user\'s denied call is audited under its name');

$ldap->stop;
done_testing();
