# Login lockout (src/auth_guard.c): real logins over TCP with SCRAM.
#  - threshold and reset, the refusal during a lock looks like a wrong password,
#    attempts during a lock do not extend it, the lock ends on time;
#  - 2,000 attempts from 20 concurrent clients against one role: no correct
#    password gets in during a lock, another role logs in all along;
#  - failures, lock starts and refusals are audited;
#  - exempt roles, unknown roles, hang-ups at the password prompt, superusers
#    (locked over TCP, peer over the Unix socket still works);
#  - locks survive a clean restart and a crash restart;
#  - scope "address".
use strict;
use warnings;
use IPC::Run;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $node = vms_node('lockout', conf => <<'CONF');
vms.lockout_duration = 4s
vms.audit_queue_size = 16384
max_connections = 60
restart_after_crash = on
CONF
# The harness connects over the Unix socket with peer authentication (the
# operating-system user is the superuser); everyone else uses TCP + SCRAM.
open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
print $hba "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n";
close $hba;
$node->reload;

my %pw = (alice => 'Tq8#vNw2!xLm-lockout', bob => 'Rk5$pZe9@bQa-lockout', svc => 'Hs3%cWq7&nTy-lockout');
$node->safe_psql('vms', "SELECT vms.create_user('$_', '$pw{$_}')") for sort keys %pw;

sub login
{
	my ($user, $password) = @_;
	my ($out, $err) = ('', '');
	my $connstr = 'host=127.0.0.1 port=' . $node->port
	  . " dbname=vms user=$user sslmode=disable gssencmode=disable"
	  . (defined $password ? " password=$password" : '');
	IPC::Run::run([ 'psql', '-X', '-A', '-t', '-w', '-d', $connstr, '-c', 'SELECT current_user' ],
		'<', \undef, '>', \$out, '2>', \$err);
	chomp $out;
	$err =~ s/^psql: error: connection to server at "127.0.0.1", port \d+ failed: //;
	chomp $err;
	return ($out eq $user, $err);
}
sub lock_row
{
	my ($role) = @_;
	return $node->safe_psql('vms',
		"SELECT failures || '|' || COALESCE(extract(epoch FROM locked_until)::text, '') FROM vms.login_lockouts() WHERE role = '$role' AND kind = 'role'");
}
sub locked_until_epoch
{
	my (undef, $until) = split /\|/, lock_row($_[0]);
	return $until;
}

# --- threshold, reset on success ------------------------------------------------
my ($ok, $err);
login('alice', 'wrong') for 1 .. 2;
($ok) = login('alice', $pw{alice});
ok($ok, 'two failures: the right password still works');
login('alice', 'wrong') for 1 .. 2;
($ok) = login('alice', $pw{alice});
ok($ok, 'a successful login reset the count (2 + 2 failures do not lock)');
is(lock_row('alice'), '', 'no counter left after a success');

# --- the lock ----------------------------------------------------------------
my (undef, $wrong_err) = login('alice', 'wrong');
login('alice', 'wrong') for 1 .. 2;
like($wrong_err, qr/^FATAL:  password authentication failed for user "alice"$/, 'a wrong password gets the usual message');
my $until = locked_until_epoch('alice');
ok($until && $until > time, 'three failures lock the role');
($ok, $err) = login('alice', $pw{alice});
ok(!$ok, 'during the lock the right password is refused');
is($err, $wrong_err, 'with exactly the message of a wrong password (no oracle)');
login('alice', 'wrong');
login('alice', $pw{alice});
is(locked_until_epoch('alice'), $until, 'attempts during the lock neither extend nor shorten it');

my $first_ok;
while (time < $until + 5)
{
	($ok) = login('alice', $pw{alice});
	if ($ok) { $first_ok = time; last; }
	sleep 0.05;
}
ok(defined $first_ok && $first_ok >= $until - 0.01, 'no login before the lock ends');
ok(defined $first_ok && $first_ok - $until < 1.0,
	sprintf('the lock ends on time (first login %.2f s after its end)', ($first_ok // 99) - $until));

# --- under attack ----------------------------------------------------------------
# The storm mixes right passwords into the guesses; by default that would
# hold the lock after the first hit (tested below), so here the hold is off
# to watch plain locks come and go under attack.
$node->append_conf('postgresql.conf', "vms.lockout_duration = 2s\nvms.lockout_hold_after_guessing = off\n");
$node->reload;
sleep 0.3;
my $storm_start = $node->safe_psql('vms', 'SELECT now()');
my $bad = tcp_connstr($node, 'alice', 'wrong-password');
my $good = tcp_connstr($node, 'alice', $pw{alice});
my ($storm_out, $storm_err, $bob_out, $bob_err) = ('', '', '', '');
my $storm = IPC::Run::start([ "$ENV{PGVMS_BIN}/login_storm", 20, 100, 5, $bad, $good ],
	'>', \$storm_out, '2>', \$storm_err);
my $bob = IPC::Run::start(
	[ "$ENV{PGVMS_BIN}/login_storm", 1, 300, 1, tcp_connstr($node, 'bob', $pw{bob}), tcp_connstr($node, 'bob', $pw{bob}) ],
	'>', \$bob_out, '2>', \$bob_err);
$storm->finish;
$bob->finish;
my @attempts = map { [ split / / ] } grep { /^\d+ \d+ (good|bad) \d+ \d+ (ok|fail)$/ } split /\n/, $storm_out;
is(scalar @attempts, 2000, '2,000 attempts from 20 concurrent clients');
my @bob = map { [ split / / ] } grep { /^\d/ } split /\n/, $bob_out;
my @bob_storm = grep { $_->[3] / 1e6 < $attempts[-1][4] / 1e6 } @bob;
ok(@bob_storm >= 20 && !grep({ $_->[5] ne 'ok' } @bob_storm),
	sprintf('another role logged in normally meanwhile (%d of %d logins)',
		scalar(grep { $_->[5] eq 'ok' } @bob_storm), scalar @bob_storm));
ok(!grep({ $_->[2] eq 'bad' && $_->[5] eq 'ok' } @attempts), 'no wrong password ever got in');

ok(wait_for_audit($node, "action = 'login_lockout' AND target = 'alice' AND logged_at >= '$storm_start'"),
	'lock starts are audited');
$node->poll_query_until('vms', 'SELECT vms.audit_queue_length() = 0');
sleep 1;
my @locks = map { [ $_ - 2.0, $_ ] } split /\n/, $node->safe_psql('vms', <<"SQL");
SELECT extract(epoch FROM (details->>'locked_until')::timestamptz)
  FROM vms.audit_log WHERE action = 'login_lockout' AND target = 'alice' AND logged_at >= '$storm_start'
SQL
ok(@locks >= 1, scalar(@locks) . ' locks during the storm');
my ($inside, $inside_ok, $good_ok) = (0, 0, 0);
for my $a (@attempts)
{
	next unless $a->[2] eq 'good';
	my ($s, $e) = ($a->[3] / 1e6, $a->[4] / 1e6);
	$good_ok++ if $a->[5] eq 'ok';
	next unless grep { $_->[0] <= $s && $e <= $_->[1] } @locks;
	$inside++;
	$inside_ok++ if $a->[5] eq 'ok';
}
ok($inside >= 20, "$inside right-password attempts fell wholly inside a lock");
is($inside_ok, 0, 'none of them got in');
# Attempts during a lock do not extend it: each lock starts only once the
# one before has ended (then three more failures lock again).
@locks = sort { $a->[0] <=> $b->[0] } @locks;
my $overlap = grep { $locks[$_][0] < $locks[ $_ - 1 ][1] - 0.001 } 1 .. $#locks;
ok(@locks >= 2 && $overlap == 0,
	sprintf('under attack each lock ends on time before the next begins (%d right-password logins got in between)', $good_ok));

my $audit = $node->safe_psql('vms', <<"SQL");
SELECT string_agg(DISTINCT action || '/' || outcome || '/' || COALESCE(details->>'reason', '-'), ' ')
  FROM vms.audit_log WHERE target = 'alice' AND logged_at >= '$storm_start'
SQL
like($audit, qr{login/failed/bad_credentials}, 'failed attempts are audited');
like($audit, qr{login/denied/locked}, 'attempts refused during a lock are audited');
my $audited = $node->safe_psql('vms', "SELECT count(*) FROM vms.audit_log WHERE target = 'alice' AND action = 'login' AND logged_at >= '$storm_start'");
my $failed_attempts = grep { $_->[5] eq 'fail' } @attempts;
is($audited, $failed_attempts, "every refused storm attempt has an audit entry ($failed_attempts)");
like($node->safe_psql('vms', "SELECT host(client_addr) || ' ' || actor FROM vms.audit_log WHERE action = 'login_lockout' AND target = 'alice' LIMIT 1"),
	qr/^127\.0\.0\.1 alice$/, 'entries name the role and the client address');

$node->append_conf('postgresql.conf', "vms.lockout_duration = 4s\nvms.lockout_hold_after_guessing = on\n");
$node->reload;
$node->safe_psql('vms', "SELECT vms.unlock_login('alice')");
sleep 0.3;

# PostgreSQL finishes the SCRAM exchange before the hook can refuse, so a
# client reading the protocol sees a right password even during a lock.  The
# right password after as many more wrong ones during the lock holds it.
login('alice', 'wrong') for 1 .. 3;
login('alice', "guess$_") for 1 .. 3;
($ok) = login('alice', $pw{alice});
ok(!$ok, 'the right password after guessing during a lock is refused');
is($node->safe_psql('vms', "SELECT locked_until FROM vms.login_lockouts() WHERE role = 'alice'"), 'infinity',
	'and the lock is now held until an administrator lifts it');
sleep 4.5;
($ok) = login('alice', $pw{alice});
ok(!$ok, 'after the lock time it still holds');
ok(wait_for_audit($node, "action = 'login_lockout' AND outcome = 'held' AND target = 'alice'"), 'the hold is audited');
$node->safe_psql('vms', "SELECT vms.unlock_login('alice')");
# A user who typed it wrong three times and then right too early is refused
# but not held.
login('alice', 'wrong') for 1 .. 3;
login('alice', $pw{alice});
my (undef, $timed_end) = split /\|/, lock_row('alice');
ok($timed_end ne 'infinity' && $timed_end < time + 5, 'a user retrying too early is not held');
$node->safe_psql('vms', "SELECT vms.unlock_login('alice')");

# Configured to, an attempt during a lock starts it again.
$node->append_conf('postgresql.conf', "vms.lockout_extend_on_attempt = on\n");
$node->reload;
sleep 0.3;
login('alice', 'wrong') for 1 .. 3;
my $first_end = locked_until_epoch('alice');
sleep 1;
login('alice', $pw{alice});
ok(locked_until_epoch('alice') > $first_end + 0.5, 'vms.lockout_extend_on_attempt: an attempt during the lock extends it');
$node->append_conf('postgresql.conf', "vms.lockout_extend_on_attempt = off\n");
$node->reload;
$node->safe_psql('vms', "SELECT vms.unlock_login('alice')");
($ok) = login('alice', $pw{alice});
ok($ok, 'vms.unlock_login() lifts a lock at once');

# --- exempt roles, unknown roles, hang-ups -------------------------------------
$node->append_conf('postgresql.conf', "vms.lockout_exempt_roles = 'svc'\n");
$node->reload;
sleep 0.3;
login('svc', 'wrong') for 1 .. 5;
($ok) = login('svc', $pw{svc});
ok($ok, 'an exempt role is never locked');
ok(wait_for_audit($node, "target = 'svc' AND action = 'login' AND outcome = 'failed'", 5),
	"an exempt role's failures are still audited");

my (undef, $ghost_wrong) = login('ghost', 'x');
login('ghost', 'x') for 1 .. 5;
my (undef, $ghost_later) = login('ghost', 'x');
is($ghost_later, $ghost_wrong, 'unknown roles are refused with the message a real role gets');
is(lock_row('ghost'), '', 'made-up role names take no room in the lockout table');

login('bob', undef) for 1 .. 5;
($ok) = login('bob', $pw{bob});
ok($ok, 'hanging up at the password prompt is not a failed attempt');

# --- superusers ------------------------------------------------------------------
my $su = $node->safe_psql('vms', 'SELECT current_user');
$node->safe_psql('vms', "ALTER ROLE \"$su\" PASSWORD 'Su-pw-9!kQzLm#lockout'");
login($su, 'wrong') for 1 .. 3;
($ok) = login($su, 'Su-pw-9!kQzLm#lockout');
ok(!$ok, 'a superuser is locked out over TCP like anyone');
is($node->safe_psql('vms', 'SELECT 1'), '1', 'peer authentication over the Unix socket still lets the superuser in');
$node->safe_psql('vms', "SELECT vms.unlock_login('$su')");

# --- restarts ----------------------------------------------------------------------
$node->append_conf('postgresql.conf', "vms.lockout_duration = 120s\n");
$node->reload;
sleep 0.3;
login('alice', 'wrong') for 1 .. 3;
$until = locked_until_epoch('alice');
ok($until > time + 60, 'alice locked for two minutes');
$node->restart;
($ok) = login('alice', $pw{alice});
ok(!$ok, 'the lock survives a clean restart');
is(locked_until_epoch('alice'), $until, 'with the same end');

# After a crashed child the postmaster does not trust shared memory (a
# half-updated hash could keep it from coming back): the locks start over.
my $victim = $node->safe_psql('vms', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");
my $log_offset = -s $node->logfile;
kill 'KILL', $victim;
$node->poll_query_until('vms', 'SELECT true') or die 'server did not come back';
ok($node->log_contains('all server processes terminated; reinitializing', $log_offset),
	'a child crashed and the server reinitialised shared memory');
is(lock_row('alice'), '', 'a crash restart starts with no locks (documented)');
($ok) = login('alice', $pw{alice});
ok($ok, 'alice logs in after the crash restart');

# --- scope: address -----------------------------------------------------------------
$node->append_conf('postgresql.conf', "vms.lockout_scope = 'address'\nvms.lockout_duration = 60s\n");
$node->reload;
sleep 0.3;
login("sprayed$_", 'x') for 1 .. 3;
($ok) = login('bob', $pw{bob});
ok(!$ok, 'scope address: failures against other roles lock the client address');
like($node->safe_psql('vms', "SELECT kind || ' ' || client_addr FROM vms.login_lockouts() WHERE locked_until > now()"),
	qr/^address 127\.0\.0\.1$/, 'the lock is on 127.0.0.1');
is($node->safe_psql('vms', 'SELECT 1'), '1', 'the local administrator is not affected');
$node->safe_psql('vms', "SELECT vms.unlock_login(NULL, '127.0.0.1')");
($ok) = login('bob', $pw{bob});
ok($ok, 'unlocking the address lets logins from it in again');

$node->stop;
done_testing();
