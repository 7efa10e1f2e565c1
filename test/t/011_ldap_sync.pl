# tools/vms-ldap-sync against a real OpenLDAP server: two directory groups
# mapped to two VMS roles; the tool creates the missing users, grants and
# revokes as the directory changes, leaves roles it did not create alone,
# never revokes on a failed read, audits everything, keeps the bind password
# to itself, and the synced users log in with their directory passwords.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;
use VmsLdap;

my $tool = "$ENV{PGVMS_TOOLS}/vms-ldap-sync";
plan skip_all => "$tool not built" unless -x $tool;

my $bindpw = 'Syncbot-secret-77';
my $ldap = VmsLdap->new('sync',
	ldif => join('',
		(map { VmsLdap::user_ldif($_, ucfirst($_) . '-ldap-1') } qw(alice bob carol dave)),
		VmsLdap::user_ldif('Erin', 'Erin-ldap-1'),
		VmsLdap::account_ldif('syncbot', $bindpw),
		VmsLdap::group_ldif('operators', qw(alice bob dave Erin)),
		VmsLdap::group_ldif('yardwatch', qw(alice bob))));
my $base = $ldap->{basedn};
my $operators = VmsLdap::group_dn('operators');
my $yardwatch = VmsLdap::group_dn('yardwatch');

# The postmaster checks LDAP passwords over LDAPS (trusting the test CA); the
# tool gets the CA only through --ca-file.
my $node;
{
	local $ENV{LDAPTLS_CACERT} = $ldap->{ca_file};
	local $ENV{LDAPTLS_REQCERT} = 'demand';
	local $ENV{LDAPTLS_CIPHER_SUITE} = $VmsLdap::TLS12_PRIORITY;
	$node = vms_node('ldap_sync', conf => "vms.lockout_threshold = 0\n");
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\n"
	  . qq{host all all 127.0.0.1/32 ldap ldapurl="$ldap->{ldaps_url}/$base?uid?sub" }
	  . qq{ldapbinddn="cn=pgsearch,$base" ldapbindpasswd="Search-pw-1"\n};
	close $hba;
	$node->restart;
}

# VMS roles; a role administrator that is no system manager (manage_roles,
# view_live everywhere); the sync account; dave is a VMS user made by hand.
vms_cameras($node);
$node->safe_psql('vms', <<'SQL');
SELECT vms.create_role('guards');
SELECT vms.grant_permission('guards', 'view_live', camera_group => 'lobby');
SELECT vms.create_role('yard_watch');
SELECT vms.grant_permission('yard_watch', 'view_live', camera_group => 'yard');
SELECT vms.create_role('role_admins');
SELECT vms.grant_permission('role_admins', 'manage_roles');
SELECT vms.grant_permission('role_admins', 'view_live');
SELECT vms.create_user('rolemgr');
SELECT vms.add_member('role_admins', 'rolemgr');
SELECT vms.create_user('ldapsync');
SELECT vms.add_member('vms_directory_sync', 'ldapsync');
SELECT vms.create_user('dave');
SQL

sub as_rolemgr
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('vms', "SET ROLE rolemgr; $sql");
	return $ret == 0 ? $out : "error: $err";
}
is(as_rolemgr(" SELECT vms.map_ldap_group('$operators', 'guards')"), '', 'a role administrator maps operators to guards');
is(as_rolemgr("SELECT vms.map_ldap_group('$yardwatch', 'yard_watch')"), '', 'and yardwatch to yard_watch');
like(as_rolemgr("SELECT vms.map_ldap_group('cn=x,$base', 'no_such_role')"),
	qr/VMS role "no_such_role" does not exist/, 'mapping to a role that does not exist: clear error');

# The bind password in a file only its owner may read.
my $pwfile = $ldap->{dir} . '/bindpw';
open my $pfh, '>', $pwfile or die $!;
print $pfh "$bindpw\n";
close $pfh;
chmod 0600, $pwfile;

my $db = 'host=' . $node->host . ' port=' . $node->port . ' dbname=vms user=ldapsync';
my @ldaps = ('-H', $ldap->{ldaps_url}, '--ca-file', $ldap->{ca_file},
	'-D', "cn=syncbot,$base", '-y', $pwfile, '--lowercase-logins');
my @outputs;
# dave is in the operators group but was made by hand: every run says so.
my $dave = "skipped\tdave\t-\ta role of this name exists and was not created by the directory sync\n";

sub run_tool
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $tool, '-d', $db, @args ], '<', \'', '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	push @outputs, $out . $err;
	note "vms-ldap-sync @args\nexit $rc\n$out$err";
	return ($rc, $out, $err);
}

sub query { return $node->safe_psql('vms', $_[0]); }

sub members_of
{
	my ($role) = @_;
	return query("SELECT string_agg(m.rolname, ',' ORDER BY m.rolname) FROM pg_auth_members am "
		  . "JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE g.rolname = '$role'");
}

# Usage and configuration errors: exit 1, nothing read.
my ($rc, $out, $err) = run_tool('--help');
ok($rc == 0 && $out =~ /Usage: vms-ldap-sync/ && $out =~ /Exit status/, '--help');
($rc, $out, $err) = run_tool();
is($rc, 1, 'no --ldap-uri: exit 1');
chmod 0644, $pwfile;
($rc, $out, $err) = run_tool(@ldaps);
ok($rc == 1 && $err =~ /group or world access/, 'a password file others may read is refused (exit 1)');
chmod 0600, $pwfile;
($rc, $out, $err) = run_tool('-H', $ldap->{url}, '-D', "cn=syncbot,$base", '-y', $pwfile);
ok($rc == 1 && $err =~ /refusing to send the bind password over plain ldap/,
	'a password bind over plain ldap:// is refused (exit 1)');
($rc, $out, $err) = run_tool('-H', $ldap->{ldaps_url}, '-D', "cn=syncbot,$base", '-y', $pwfile);
ok($rc == 2 && $err =~ /could not bind/, 'without --ca-file the test CA is not trusted (exit 2)');
my $wrongfile = "$ldap->{dir}/wrongpw";
open my $wfh, '>', $wrongfile or die $!;
print $wfh "Not-the-password-1\n";
close $wfh;
chmod 0600, $wrongfile;
($rc, $out, $err) = run_tool(@ldaps[0 .. 3], '-D', "cn=syncbot,$base", '-y', $wrongfile);
ok($rc == 2 && $err =~ /Invalid credentials/, 'a wrong bind password: exit 2');
is(query('SELECT count(*) FROM vms.ldap_users'), '0', 'none of that changed anything');

# Dry run: the actions, and nothing changes.
($rc, $out, $err) = run_tool(@ldaps, '--dry-run');
is($rc, 0, 'dry run: exit 0');
my @expected = (
	"create_user\talice\t-\tuid=alice,ou=people,$base",
	"create_user\tbob\t-\tuid=bob,ou=people,$base",
	"skipped\tdave\t-\ta role of this name exists and was not created by the directory sync",
	"create_user\terin\t-\tuid=Erin,ou=people,$base",
	"grant\talice\tguards\t$operators",
	"grant\talice\tyard_watch\t$yardwatch",
	"grant\tbob\tguards\t$operators",
	"grant\tbob\tyard_watch\t$yardwatch",
	"grant\terin\tguards\t$operators");
is($out, join("\n", @expected) . "\n", 'dry run: one line per action');
like($err, qr/2 mapped groups, 2 read, 6 members; dry run, would be: 3 users created, 5 grants, 0 revokes, 1 skipped/,
	'dry run: summary on stderr');
is(query("SELECT count(*) FROM pg_roles WHERE rolname IN ('alice', 'bob', 'erin')") . query('SELECT count(*) FROM vms.ldap_users'),
	'00', 'dry run: no role created');

# The real run.
($rc, $out, $err) = run_tool(@ldaps);
is($rc, 0, 'sync: exit 0');
is($out, join("\n", @expected) . "\n", 'sync: the actions the dry run announced');
is(query('SELECT string_agg(login, \',\' ORDER BY login) FROM vms.ldap_users'), 'alice,bob,erin',
	'the users the sync created are recorded');
is(query("SELECT string_agg(rolname || ':' || rolcanlogin || rolsuper || rolcreaterole || (rolpassword IS NULL), ',' ORDER BY rolname) "
	  . "FROM pg_authid WHERE rolname IN ('alice', 'bob', 'erin')"),
	'alice:truefalsefalsetrue,bob:truefalsefalsetrue,erin:truefalsefalsetrue',
	'LOGIN roles, no superuser, no CREATEROLE, no password');
is(members_of('guards'), 'alice,bob,erin', 'guards: the operators group (dave left out)');
is(members_of('yard_watch'), 'alice,bob', 'yard_watch: the yardwatch group');
is(query("SELECT count(*) FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member WHERE m.rolname = 'dave'")
	  . query("SELECT pg_has_role('dave', 'guards', 'USAGE')"),
	'1f', 'dave, made by hand, was not touched (still only vms_user)');

($rc, $out, $err) = run_tool(@ldaps);
ok($rc == 0 && $out eq $dave, 'a second run finds nothing to do (but dave is still skipped)');

# The directory changes: carol joins the operators, bob leaves.
$ldap->modify("dn: $operators\nchangetype: modify\nadd: member\nmember: uid=carol,ou=people,$base\n-\n"
	  . "delete: member\nmember: uid=bob,ou=people,$base\n");
($rc, $out, $err) = run_tool(@ldaps);
is($rc, 0, 'after the change: exit 0');
is($out, "create_user\tcarol\t-\tuid=carol,ou=people,$base\n$dave" . "grant\tcarol\tguards\t$operators\n"
	  . "revoke\tbob\tguards\tnot a member of $operators\n",
	'carol is created and given guards, guards is taken from bob');
is(members_of('guards'), 'alice,carol,erin', 'guards now');
is(members_of('yard_watch'), 'alice,bob', 'bob keeps yard_watch (still in yardwatch)');

# A mapped group that cannot be read leaves its role alone: bob leaves
# yardwatch, but a second group mapped to yard_watch does not exist.
$ldap->modify("dn: $yardwatch\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=people,$base\n");
my $ghost = VmsLdap::group_dn('ghost');
is(as_rolemgr("SELECT vms.map_ldap_group('$ghost', 'yard_watch')"), '', 'map a group the directory lacks');
($rc, $out, $err) = run_tool(@ldaps);
is($rc, 4, 'a group could not be read: exit 4');
like($err, qr/could not read group "\Q$ghost\E": No such object/, 'with a warning naming it');
is($out, "not_read\t-\tyard_watch\t$ghost\n$dave", 'the database reports it not read');
is(members_of('yard_watch'), 'alice,bob', 'and revokes nothing of yard_watch');
is(as_rolemgr("SELECT vms.unmap_ldap_group('$ghost')"), '', 'unmap it');
($rc, $out, $err) = run_tool(@ldaps);
ok($rc == 0 && $out eq "$dave" . "revoke\tbob\tyard_watch\tnot a member of $yardwatch\n", 'now bob loses yard_watch');

# StartTLS on the ldap:// port works the same way.
($rc, $out, $err) = run_tool('-H', $ldap->{url}, '-Z', @ldaps[2 .. $#ldaps]);
ok($rc == 0 && $out eq $dave, 'StartTLS: reads the same directory, nothing to do');

# TLS 1.2 or later: a server offering only TLS 1.0/1.1 is refused.
my $weak = VmsLdap->new('sync_weak', weak_tls => 1, ca_from => $ldap,
	ldif => VmsLdap::account_ldif('syncbot', $bindpw));
($rc, $out, $err) = run_tool('-H', $weak->{ldaps_url}, @ldaps[2 .. $#ldaps]);
ok($rc == 2 && $err =~ /could not bind/, 'a directory server offering only TLS 1.1 is refused (exit 2)');
$weak->stop;

# Unmapped groups or malformed input: a clear error, nothing changed.
my ($ret, $qout, $qerr) = $node->psql('vms',
	qq{SELECT * FROM vms.ldap_sync('{"groups": [{"dn": "@{[ VmsLdap::group_dn('unmapped') ]}", "members": []}]}', false)},
	connstr => $db);
like($qerr, qr/directory group "cn=unmapped,ou=groups,dc=example,dc=org" is not mapped to a VMS role/,
	'vms.ldap_sync with an unmapped group: clear error');
($ret, $qout, $qerr) = $node->psql('vms', q{SELECT * FROM vms.ldap_sync('{"groups": 1}', false)}, connstr => $db);
like($qerr, qr/directory must be a JSON object with an array "groups"/, 'malformed input: clear error');
($ret, $qout, $qerr) = $node->psql('vms', q{SELECT * FROM vms.ldap_sync('{"groups": []}', false)},
	connstr => 'host=' . $node->host . ' port=' . $node->port . ' dbname=vms user=rolemgr');
like($qerr, qr/permission denied: vms.ldap_sync\(\) needs the privileges of vms_directory_sync/,
	'a role administrator without vms_directory_sync may not sync');

# Audited, under the sync account's name.
ok(wait_for_audit($node, "action = 'ldap_create_user' AND target = 'carol' AND actor = 'ldapsync'"),
	'ldap_create_user is audited');
ok(wait_for_audit($node, "action = 'ldap_grant' AND target = 'carol' AND details->>'vms_role' = 'guards'"),
	'ldap_grant is audited');
ok(wait_for_audit($node, "action = 'ldap_revoke' AND target = 'bob' AND details->>'vms_role' = 'guards'"),
	'ldap_revoke is audited');
ok(wait_for_audit($node, "action = 'ldap_sync' AND outcome = 'ok' AND details->>'dry_run' = 'true'"),
	'dry runs leave a summary entry');
ok(wait_for_audit($node, "action = 'ldap_sync' AND outcome = 'ok' AND details->>'groups_not_read' = '1'"),
	'the run with an unreadable group says so');
ok(wait_for_audit($node, "action = 'ldap_sync' AND outcome <> 'ok' AND details->>'message' LIKE '%is not mapped%'"),
	'the refused call is audited');
ok(wait_for_audit($node, "action = 'map_ldap_group' AND actor = 'rolemgr'"), 'mappings are audited');

# The synced users log in with their directory passwords and have their roles' permissions.
sub cameras_of
{
	my ($user, $pw) = @_;
	my ($r, $o, $e) = $node->psql('vms', "SELECT coalesce(string_agg(name, ',' ORDER BY name), '-') FROM vms.cameras",
		connstr => tcp_connstr($node, $user, $pw));
	return $r == 0 ? $o : "error: $e";
}
is(cameras_of('alice', 'Alice-ldap-1'), 'entrance,gate', 'alice (guards, yard_watch) sees both cameras');
is(cameras_of('carol', 'Carol-ldap-1'), 'entrance', 'carol (guards) sees the entrance');
is(cameras_of('bob', 'Bob-ldap-1'), '-', 'bob (no mapped group left) sees nothing');
is(cameras_of('erin', 'Erin-ldap-1'), 'entrance', 'erin (Erin in the directory) logs in lower-case');
$node->connect_fails(tcp_connstr($node, 'carol', 'Carol-wrong-1'), 'a wrong directory password is refused',
	expected_stderr => qr/LDAP authentication failed for user "carol"/);

# Dropping a synced user forgets it; the next run creates it again.
$node->safe_psql('vms', "SELECT vms.drop_user('carol')");
($rc, $out, $err) = run_tool(@ldaps);
like($out, qr/^create_user\tcarol\t.*\ngrant\tcarol\tguards\t/s, 'a dropped user still in the group is created again');

# The bind password never appears in what the tool printed.
is(scalar(grep { index($_, $bindpw) >= 0 } @outputs), 0, 'the bind password is in no output of the tool');

$ldap->stop;
done_testing();
