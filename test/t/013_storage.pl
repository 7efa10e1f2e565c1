# tools/vms-storage against a real cluster and a real storage tree.  A
# recorder login (SCRAM over TCP) registers files it wrote; retention releases
# the old ones (row by row and as a whole retired day); `purge` removes exactly
# those, fsyncs, confirms, removes the emptied day directories, is idempotent
# and never removes a file outside the root; `check` finds orphans, missing
# files and altered files, reports and audits them, stays read-only unless
# --repair, and --repair tidies orphans and missing rows but never touches a
# mismatched file (evidence).  Bad input and a wrong password give clear
# errors and their exit codes; the recorder's password is in no output.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use IPC::Run;
use POSIX qw(strftime);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $tool = "$ENV{PGVMS_TOOLS}/vms-storage";
plan skip_all => "$tool not built" unless -x $tool;

my $node = vms_node('storage');
my $recpw = 'Quartz-Lantern-71';
my $viewerpw = 'Copper-Meadow-42';

sub query { return $node->safe_psql('vms', $_[0]); }

# Cameras: dock (1-day retention) and lobby (the default, 30 days) recorded by
# rec_one; roof recorded by nobody.  viewer is a user but no recorder.
my $dock = query("SELECT vms.add_camera('dock')");
my $lobby = query("SELECT vms.add_camera('lobby')");
my $roof = query("SELECT vms.add_camera('roof')");
query(<<"SQL");
SELECT vms.create_user('rec_one', '$recpw');
SELECT vms.add_member('vms_recorder', 'rec_one');
SELECT vms.assign_recorder($dock, 'rec_one');
SELECT vms.assign_recorder($lobby, 'rec_one');
SELECT vms.set_retention($dock, '1 day');
SELECT vms.create_user('viewer', '$viewerpw');
SQL

# The storage root, and a directory outside it the tool must never touch.
my $base = PostgreSQL::Test::Utils::tempdir();
my $root = "$base/storage";
my $outside = "$base/outside";
make_path($root, $outside);

my $recorder = tcp_connstr($node, 'rec_one', $recpw);
my $now = query('SELECT extract(epoch FROM now())::bigint');
sub day_of { return strftime('%Y-%m-%d', gmtime($_[0])); }
sub midnight { return int($_[0] / 86400) * 86400; }

# Writes a segment file of the layout <camera>/<day>/<name> and registers it
# as rec_one with its real size and SHA-256.  Returns its id and path.
my %seg;    # name => { id, path, file, content }
sub add_segment
{
	my ($name, $camera, $start, $size) = @_;
	my $rel = "$camera/" . day_of($start) . "/$name";
	my $content = join '', map { chr(int(rand(256))) } 1 .. $size;
	make_path("$root/$camera/" . day_of($start));
	open my $fh, '>:raw', "$root/$rel" or die $!;
	print $fh $content;
	close $fh;
	my $id = $node->safe_psql('vms',
		"SELECT vms.register_segment($camera, to_timestamp($start), to_timestamp($start + 60), '$rel', $size, "
		  . "decode('" . sha256_hex($content) . "', 'hex'))",
		connstr => $recorder);
	$seg{$name} = { id => $id, path => $rel, file => "$root/$rel", content => $content };
	return $id;
}

# dock, expired (1-day retention): two files 3 days ago, in a day that lobby
# also recorded (so its rows are removed one by one), and three 5 days ago, a
# day nobody else recorded (so the whole partition is retired).  Recent: four.
my $d3 = midnight($now - 3 * 86400) + 3600;
my $d5 = midnight($now - 5 * 86400) + 3600;
my $recent = $now - 2 * 3600;
add_segment('d3a.mp4', $dock, $d3, 240000);
add_segment('d3b.mp4', $dock, $d3 + 60, 240000);
add_segment("d5$_.mp4", $dock, $d5 + 60 * ord($_), 240000) for qw(a b c);
add_segment("r$_.mp4", $dock, $recent + 60 * $_, 4096 + $_) for 1 .. 4;
add_segment('l3.mp4', $lobby, $d3 + 600, 5000);
add_segment('lr.mp4', $lobby, $recent + 600, 6000);
my @expired = qw(d3a.mp4 d3b.mp4 d5a.mp4 d5b.mp4 d5c.mp4);
my @kept = ((map { "r$_.mp4" } 1 .. 4), 'l3.mp4', 'lr.mp4');

my @outputs;
sub run_tool
{
	my $env = ref $_[0] eq 'HASH' ? shift : {};
	my (@args) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGHOST} = '127.0.0.1';
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'vms';
	local $ENV{PGUSER} = $env->{user} // 'rec_one';
	local $ENV{PGPASSWORD} = $env->{password} // $recpw;
	local $ENV{PGSSLMODE} = 'disable';
	local $ENV{PGGSSENCMODE} = 'disable';
	IPC::Run::run([ $tool, @args ], '<', \'', '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	push @outputs, $out . $err;
	note "vms-storage @args\nexit $rc\n$out$err";
	return ($rc, $out, $err);
}

sub as_recorder
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('vms', $sql, connstr => $recorder);
	return $ret == 0 ? $out : "error: $err";
}

sub exists_all { return scalar(grep { -e $seg{$_}{file} } @_) == @_; }
sub exists_none { return scalar(grep { -e $seg{$_}{file} } @_) == 0; }
sub slurp_raw
{
	open my $fh, '<:raw', $_[0] or return undef;
	local $/;
	my $c = <$fh>;
	close $fh;
	return $c;
}

# --- Retention releases the expired files ---------------------------------
my $ret = query('SELECT files_queued FROM vms.apply_retention()');
is($ret, '2', 'apply_retention queues the two dock files of the shared day one by one');
is(as_recorder("SELECT string_agg(path, ',') FROM vms.purge_claim($dock)"),
	join(',', map { $seg{$_}{path} } @expired),
	'purge_claim: exactly the five expired dock files, oldest first (queue and retired day)');
is(as_recorder("SELECT count(*) FROM vms.purge_claim($lobby)"), '0', 'nothing of lobby (30 days) is released');
is(as_recorder("SELECT string_agg(state, ',' ORDER BY segment_id) FROM vms.storage_manifest($dock)"),
	'released,released,released,released,released,recorded,recorded,recorded,recorded',
	'storage_manifest: released files and recorded ones');
ok(exists_all(@expired, @kept), 'the database removed no file');

# Before the purge the storage matches the index: released files are no orphans.
my ($rc, $out, $err) = run_tool('--root', $root, '--verify-hashes', 'check');
is($rc, 0, 'check before the purge: clean (exit 0)');
like($out, qr/^camera $dock: checked 9 files \(sizes and SHA-256\), 0 orphans, 0 missing, 0 mismatched \(check \d+\)$/m,
	'check: a summary line for dock');
like($out, qr/^camera $lobby: checked 2 files \(sizes and SHA-256\), 0 orphans, 0 missing, 0 mismatched/m,
	'and one for lobby');

# --- purge -------------------------------------------------------------------
# An earlier run died after unlinking d5a: gone already, still to confirm.
unlink $seg{'d5a.mp4'}{file} or die $!;
# Three released rows whose paths leave the root (only a corrupted index
# could hold the first two; register_segment refuses such paths; the third
# goes through a symbolic link planted in the storage): never unlinked.
my $canary1 = "$base/canary-rel.mp4";
my $canary2 = "$outside/canary-abs.mp4";
my $canary3 = "$outside/canary-link.mp4";
for my $f ($canary1, $canary2, $canary3)
{
	open my $fh, '>', $f or die $!;
	print $fh "do not remove\n";
	close $fh;
}
symlink($outside, "$root/$dock/linked") or die $!;
query("INSERT INTO vms.purge_queue (segment_id, camera_id, recorder, start_time, path, bytes, sha256) VALUES "
	  . "(900000001, $dock, 'rec_one', now() - interval '10 days', '../canary-rel.mp4', 14, '\\x00'), "
	  . "(900000002, $dock, 'rec_one', now() - interval '10 days', '$canary2', 14, '\\x00'), "
	  . "(900000003, $dock, 'rec_one', now() - interval '10 days', '$dock/linked/canary-link.mp4', 14, '\\x00')");

($rc, $out, $err) = run_tool('--root', $root, '--max-files', '2', 'purge');
is($rc, 1, 'purge with three refused paths: exit 1');
is($out, "camera $dock: removed 5 files (1.2 MB), 3 errors\ncamera $lobby: removed 0 files (0 B), 0 errors\n",
	'purge: one summary line per camera (a file already gone counts as removed)');
like($err, qr/^vms-storage: camera $dock: refusing to remove segment 900000001: its path is absolute or has a "\.\." component$/m,
	'the relative path leaving the root is refused');
like($err, qr/refusing to remove segment 900000002/, 'the absolute path is refused');
like($err, qr/refusing to remove segment 900000003: a directory on its path is a symbolic link \(not followed\)/,
	'the path through a symbolic link is refused');
ok(-e $canary1 && -e $canary2 && -e $canary3, 'the files outside the root are still there');
ok(exists_none(@expired), 'the expired files are gone from disk');
ok(exists_all(@kept), 'the recent files and lobby\'s are still there');
ok(!-e ("$root/$dock/" . day_of($d5)) && !-e ("$root/$dock/" . day_of($d3)),
	'the emptied day directories of dock are removed');
ok(-d ("$root/$lobby/" . day_of($d3)) && -d "$root/$dock", 'lobby\'s day directory and the camera directory stay');
is(as_recorder("SELECT string_agg(segment_id::text, ',' ORDER BY segment_id) FROM vms.purge_claim($dock)"),
	'900000001,900000002,900000003', 'purge_claim still returns only the three refused rows');
query('DELETE FROM vms.purge_queue WHERE segment_id IN (900000001, 900000002, 900000003)');
unlink "$root/$dock/linked" or die $!;
is(as_recorder("SELECT count(*) FROM vms.purge_claim($dock)"), '0', 'purge_claim now returns nothing');

($rc, $out, $err) = run_tool('--root', $root, 'purge');
ok($rc == 0 && $out eq "camera $dock: removed 0 files (0 B), 0 errors\ncamera $lobby: removed 0 files (0 B), 0 errors\n"
	  && $err eq '', 'a second purge is a no-op (exit 0)');
ok(exists_all(@kept), 'and removes nothing');
($rc, $out, $err) = run_tool('--root', $root, '--quiet', '--camera', $dock, 'purge');
ok($rc == 0 && $out eq '' && $err eq '', '--quiet: nothing printed');

ok($node->poll_query_until('vms',
		"SELECT coalesce(sum((details->>'files_confirmed')::int), 0) = 5 FROM vms.audit_log "
		  . "WHERE action = 'purge_confirm' AND actor = 'rec_one' AND camera_id = $dock AND outcome = 'ok'"),
	'purge_confirm is audited: 5 files confirmed by rec_one');
is(query("SELECT count(*) FROM vms.audit_log WHERE action = 'purge_confirm' AND camera_id = $dock "
		  . "AND (details->>'files_confirmed')::int = 0"), '0', 'no empty confirmation was sent');

# --- check -------------------------------------------------------------------
my $day = day_of($recent + 60);
my $dir = "$root/$dock/$day";
# An orphan (old), an abandoned .partial (old): both orphans; a .partial being
# written (new): not.  A symbolic link to a directory outside: not followed.
for my $f ('stray.mp4', 'old.mp4.partial', 'live.mp4.partial')
{
	open my $fh, '>', "$dir/$f" or die $!;
	print $fh "x" x 100;
	close $fh;
}
utime($now - 7200, $now - 7200, "$dir/stray.mp4", "$dir/old.mp4.partial") or die $!;
open my $ofh, '>', "$outside/lured.mp4" or die $!;
print $ofh "outside\n";
close $ofh;
utime($now - 7200, $now - 7200, "$outside/lured.mp4");
symlink($outside, "$dir/elsewhere") or die $!;
# r1 is lost, one byte of r2 is flipped (same size), r3 grew.
unlink $seg{'r1.mp4'}{file} or die $!;
{
	my $c = $seg{'r2.mp4'}{content};
	substr($c, 100, 1) = chr(ord(substr($c, 100, 1)) ^ 0x01);
	open my $fh, '>:raw', $seg{'r2.mp4'}{file} or die $!;
	print $fh $c;
	close $fh;
	open $fh, '>>:raw', $seg{'r3.mp4'}{file} or die $!;
	print $fh 'appended';
	close $fh;
}
my $r2_altered = slurp_raw($seg{'r2.mp4'}{file});
my $r3_altered = slurp_raw($seg{'r3.mp4'}{file});
my ($r1, $r2, $r3) = map { $seg{"r$_.mp4"}{id} } 1 .. 3;
my $orphans = "{$dock/$day/old.mp4.partial,$dock/$day/stray.mp4}";

sub last_check
{
	my ($camera) = @_;
	return query("SELECT files_checked || ' ' || hashes_verified || ' ' || orphan_paths::text || ' ' || "
		  . "missing_segment_ids::text || ' ' || mismatched_segment_ids::text || ' ' || orphans_removed "
		  . "FROM vms.storage_checks WHERE camera_id = $camera AND recorder = 'rec_one' ORDER BY id DESC LIMIT 1");
}

($rc, $out, $err) = run_tool('--root', $root, '--camera', $dock, 'check');
is($rc, 1, 'check (sizes only): findings, exit 1');
is(last_check($dock), "6 false $orphans {$r1} {$r3} 0",
	'storage_checks: the two orphans, r1 missing, r3 of another size (a flipped byte needs --verify-hashes)');
like($out, qr/^camera $dock: missing segment $r1 \Q$seg{'r1.mp4'}{path}\E$/m, 'a line for the missing file');
like($out, qr/^camera $dock: orphan \Q$dock\/$day\/stray.mp4\E$/m, 'a line for each orphan');
like($out, qr/^camera $dock: mismatched segment $r3 \Q$seg{'r3.mp4'}{path}\E \(4107 bytes, the index says 4099\)$/m,
	'a line for the size mismatch');
ok(-e "$dir/stray.mp4" && -e "$dir/old.mp4.partial" && -e "$outside/lured.mp4",
	'check without --repair removes nothing');
is(query("SELECT count(*) FROM vms.segments WHERE id = $r1"), '1', 'and forgets nothing');

($rc, $out, $err) = run_tool('--root', $root, '--camera', $dock, '--verify-hashes', 'check');
is($rc, 1, 'check --verify-hashes: exit 1');
is(last_check($dock), "6 true $orphans {$r1} {$r2,$r3} 0", 'storage_checks: now r2\'s altered content too');
like($out, qr/^camera $dock: mismatched segment $r2 .* \(SHA-256 differs from the index\)$/m,
	'a line for the hash mismatch');
like($out, qr/^camera $dock: checked 6 files \(sizes and SHA-256\), 2 orphans, 1 missing, 2 mismatched \(check \d+\)$/m,
	'the summary line');
ok(wait_for_audit($node, "action = 'storage_hash_mismatch' AND camera_id = $dock AND actor = 'rec_one' "
		  . "AND details->'segment_ids' = '[$r2, $r3]'"),
	'storage_hash_mismatch is audited with the segments');
ok(wait_for_audit($node, "action = 'storage_file_missing' AND camera_id = $dock AND actor = 'rec_one' "
		  . "AND details->'segment_ids' = '[$r1]'"),
	'storage_file_missing is audited with the segment');
ok(wait_for_audit($node, "action = 'storage_check' AND camera_id = $dock AND details->>'hashes_verified' = 'true' "
		  . "AND (details->>'orphans')::int = 2"), 'the check itself is audited');

($rc, $out, $err) = run_tool('--root', $root, '--camera', $dock, '--verify-hashes', '--repair', 'check');
is($rc, 1, 'check --repair: exit 1 (the mismatches remain)');
is(last_check($dock), "6 true $orphans {$r1} {$r2,$r3} 2", 'storage_checks: the same findings, 2 orphans removed');
like($out, qr/repaired: 2 orphans removed, 1 missing rows forgotten/, 'the summary says what was repaired');
ok(!-e "$dir/stray.mp4" && !-e "$dir/old.mp4.partial", 'the old orphans are removed');
ok(-e "$dir/live.mp4.partial", 'the .partial being written is left alone');
ok(-e "$outside/lured.mp4" && -l "$dir/elsewhere", 'the symbolic link was not followed (its target is not an orphan)');
is(query("SELECT count(*) FROM vms.segments WHERE id = $r1"), '0', 'the missing row is forgotten');
ok(slurp_raw($seg{'r2.mp4'}{file}) eq $r2_altered && slurp_raw($seg{'r3.mp4'}{file}) eq $r3_altered,
	'the mismatched files are left exactly as they are');
is(query("SELECT count(*) FROM vms.segments WHERE id IN ($r2, $r3)"), '2', 'and their rows are kept');
ok(wait_for_audit($node, "action = 'storage_forget_missing' AND camera_id = $dock AND actor = 'rec_one' "
		  . "AND (details->>'rows_removed')::int = 1"), 'storage_forget_missing is audited');

($rc, $out, $err) = run_tool('--root', $root, '--camera', $dock, '--verify-hashes', 'check');
ok($rc == 1 && last_check($dock) eq "4 true {} {} {$r2,$r3} 0", 'checked again: only the mismatches remain');

($rc, $out, $err) = run_tool('--root', $root, '--camera', $lobby, '--verify-hashes', 'check');
is($rc, 0, 'a clean camera: exit 0');
is(last_check($lobby), '2 true {} {} {} 0', 'and a clean report');
is($err, '', 'and no message');

# --- Bad input -----------------------------------------------------------------
($rc, $out, $err) = run_tool('--help');
ok($rc == 0 && $out =~ /Usage: vms-storage/ && $out =~ /Exit status: 0 clean/, '--help');
($rc, $out, $err) = run_tool('--root', $root, '--camera', 'abc', 'check');
ok($rc == 2 && $err eq "vms-storage: invalid camera id \"abc\": a camera id is a positive whole number\n",
	'--camera abc: exit 2, clear message');
($rc, $out, $err) = run_tool('--root', $root, '--camera', $roof, 'purge');
ok($rc == 2 && $err =~ /^vms-storage: camera $roof is not assigned to recorder "rec_one"/,
	'a camera not assigned to the recorder: exit 2, clear message');
($rc, $out, $err) = run_tool('check');
ok($rc == 2 && $err =~ /--root is required/, 'no --root: exit 2');
($rc, $out, $err) = run_tool('--root', "$base/nowhere", 'check');
ok($rc == 2 && $err =~ /could not open storage root ".*nowhere": No such file or directory/, 'a root that does not exist: exit 2');
($rc, $out, $err) = run_tool('--root', $root, '--bogus', 'check');
ok($rc == 2 && $err eq "vms-storage: unknown option \"--bogus\" (try \"vms-storage --help\")\n", 'an unknown option: exit 2');
($rc, $out, $err) = run_tool('check', '--root');
ok($rc == 2 && $err =~ /^vms-storage: option "--root" needs a value/, 'an option without its value: exit 2');
($rc, $out, $err) = run_tool('--root', $root);
ok($rc == 2 && $err =~ /no command given/, 'no command: exit 2');
($rc, $out, $err) = run_tool('--root', $root, 'tidy');
ok($rc == 2 && $err =~ /unknown command "tidy"/, 'an unknown command: exit 2');
($rc, $out, $err) = run_tool('--root', $root, '--repair', 'purge');
ok($rc == 2 && $err =~ /apply to check only/, '--repair with purge: exit 2');
($rc, $out, $err) = run_tool('--root', $root, '--max-files', '0', 'purge');
ok($rc == 2 && $err =~ /invalid --max-files "0"/, '--max-files 0: exit 2');
($rc, $out, $err) = run_tool('--root', $root, '--dbname', 'host=127.0.0.1 password=Not-on-the-command-line-3', 'check');
ok($rc == 2 && $err =~ /refusing a password in --dbname/ && $err !~ /Not-on-the-command-line-3/,
	'a password in --dbname is refused (exit 2), and not repeated');
($rc, $out, $err) = run_tool('--root', $root, '--dbname', "host=127.0.0.1 port='", 'check');
ok($rc == 2 && $err =~ /^vms-storage: invalid --dbname: /, 'a malformed --dbname: exit 2');
($rc, $out, $err) = run_tool({ password => 'Not-the-password-9' }, '--root', $root, 'check');
ok($rc == 3 && $err =~ /^vms-storage: could not connect to the database: .*password authentication failed for user "rec_one"$/m,
	'a wrong password: exit 3, libpq\'s message on one line');
($rc, $out, $err) = run_tool({ user => 'viewer', password => $viewerpw }, '--root', $root, 'check');
ok($rc == 3 && $err =~ /user "viewer" is not a recording server/, 'a user that is no recorder: exit 3');
like(as_recorder("SELECT vms.storage_forget_missing($dock, ARRAY[$r2]::bigint[])"),
	qr/were not reported missing by the latest storage check/, 'a mismatched row cannot be forgotten through the API either');

# The recorder's password never appears in what the tool printed.
is(scalar(grep { index($_, $recpw) >= 0 } @outputs), 0, 'the recorder\'s password is in no output of the tool');

done_testing();
