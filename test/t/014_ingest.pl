# tools/vms-ingest end to end: real RTSP cameras (gst-rtsp-server through
# test/tools/rtsp_camera.py, digest auth, TLS), misbehaving ones
# (test/tools/bad_camera.py), a real cluster that takes the recorder only
# over TLS with a client certificate.
#  1. A digest camera (a password full of URL-special characters) recorded
#     for 20 s in 4 s segments: every segment registered by rec_one, its file
#     at the registered path with the registered size and SHA-256, named after
#     its registered start and duration, contiguous, the total close to the
#     time recorded, H.264 of the registered size to ffprobe; exit 0.  The
#     database connection was TLS with rec_one's client certificate.  A
#     released file of the camera is purged by the worker (--purge-interval).
#  2. Wrong credentials: exit 3, a 401 error line, state auth_failed, audited.
#  3. A database connection without TLS is refused by the worker (exit 2)
#     unless --insecure-db; a connection without the client certificate fails.
#  4. TLS to the camera (rtsps:// and the RTSP-over-HTTPS tunnel): the right
#     CA (tls_ca_pem or --ca-file) and the right pin record; a wrong CA, no
#     CA, a wrong pin or a wrong server name fail with tls_failed.
#  5. The camera freezes (SIGSTOP) for 8 s: reconnecting, then recording
#     again, a recording_gap event (camera_lost) exactly over the hole.
#  6. Bad input, with the AddressSanitizer build when there is one: garbage
#     bytes, a silent server (bounded by --io-timeout), RTSP answers followed
#     by garbage, a file:// source that is no video, an unknown camera, a
#     camera of another recorder, bad options, and a camera killed mid-GOP
#     (the open segment is closed, registered and playable; the worker keeps
#     retrying and records again when the camera is back).  No sanitizer
#     report, a clear error line, the expected exit code.
#  7. Secrets: neither the camera passwords (raw or percent-encoded) nor the
#     database password appear in the worker's output (--verbose, FFmpeg's
#     log included), the server log, the audit log, or `ps -eo args`.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use IPC::Run;
use POSIX qw(strftime);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;
use VmsIngest;

my $bin = worker_bin();
plan skip_all => "$bin not built" unless -x $bin;
my $asan_bin = worker_bin(asan => 1);
my $have_asan = $asan_bin ne $bin;
diag($have_asan ? "bad-input cases run $asan_bin" : "vms-ingest-asan not built: bad-input cases run the plain $bin");

my $ing = VmsIngest::setup('ingest');
my $node = $ing->{node};
my $root = $ing->{root};
my $base = $ing->{base};
sub query { return $node->safe_psql('vms', $_[0]); }

# Everything the worker printed, for the secrets check at the end.
my @outputs;
my @ps_samples;
sub worker
{
	my ($rc, $err, $p) = run_worker($ing, @_);
	push @outputs, $err, slurp($p->{out});
	return ($rc, $err, $p);
}
sub collect { my ($p) = @_; push @outputs, slurp($p->{err}), slurp($p->{out}); return slurp($p->{err}); }

my $campw = 'p@ss:w/rd%!';
my $tlspw = 'tls:Pw/%40 #x';
my $wrongpw = 'not-the:pass@word';
my @secrets = ($campw, $tlspw, $wrongpw, $ing->{db_password});
sub uri_escape { my ($s) = @_; $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord($1))/ge; return $s; }
push @secrets, map { (uri_escape($_), lc(uri_escape($_))) } @secrets[ 0 .. 3 ];

# ============================================================================
# 1. Digest camera, 20 s in 4 s segments; retention purge on the side
# ============================================================================
my $cam = start_camera(name => 'digest', auth => 'digest', user => 'cam', password => $campw,
	size => '640x360', fps => 25, gop => 25);
my $lobby = add_ingest_camera($ing, 'lobby', $cam->{url}, credential => [ 'cam', $campw ],
	settings => { segment_seconds => 4 });
my $wrong = add_ingest_camera($ing, 'wrongpw', $cam->{url}, credential => [ 'cam', $wrongpw ],
	settings => { segment_seconds => 4 });

# A file of lobby's written 3 days ago, registered by rec_one, released by a
# 1-day retention: the worker must remove it and confirm.
my $old_start = int(time) - 3 * 86400;
my $old_day = strftime('%Y-%m-%d', gmtime($old_start));
my $old_rel = "$lobby/$old_day/" . strftime('%Y%m%dT%H%M%S', gmtime($old_start)) . '.000Z_4000.ts';
make_path("$root/$lobby/$old_day");
my $old_content = join '', map { chr(int(rand(256))) } 1 .. 4096;
{
	open my $fh, '>:raw', "$root/$old_rel" or die $!;
	print $fh $old_content;
	close $fh;
}
my $old_id = $node->safe_psql('vms',
	"SELECT vms.register_segment($lobby, to_timestamp($old_start), to_timestamp($old_start + 4), '$old_rel', 4096, "
	  . "decode('" . sha256_hex($old_content) . "', 'hex'), 'h264', 640, 360)",
	connstr => $ing->{connstr});
query("SELECT vms.set_retention($lobby, '1 day')");
my ($parts, $rows, $queued) = split /\|/, query('SELECT partitions_retired, rows_deleted, files_queued FROM vms.apply_retention()');
ok($parts + $queued >= 1, "retention released the old file of lobby (retired $parts days, queued $queued files)");

my $t0 = time;
my $main = start_worker($ing, $lobby, '--duration', 20, '--verbose', '--purge-interval', 2);
my $wrongrun = start_worker($ing, $wrong, '--duration', 8, '--io-timeout', 3, '--verbose');
my ($db_tls, $saw_worker_in_ps, %seen) = ('', 0);
while (proc_alive($main) && time < $t0 + 60)
{
	for my $row (split /\n/, query("SELECT camera_id, state FROM vms.ingest_status WHERE camera_id IN ($lobby, $wrong)"))
	{
		my ($id, $state) = split /\|/, $row;
		$seen{$id}{$state} = 1;
	}
	my $ps = sample_ps();
	push @ps_samples, $ps;
	$saw_worker_in_ps = 1 if $ps =~ /vms-ingest --camera $lobby /;
	$db_tls ||= query("SELECT a.usename || ' ' || s.ssl || ' ' || coalesce(s.client_dn, '') FROM pg_stat_activity a "
		  . "JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'rec_one' AND a.client_addr IS NOT NULL LIMIT 1");
	sleep 0.25;
}
my $rc = wait_proc($main, 30);
my $err = collect($main);
note "main run: exit " . ($rc // 'none') . ' after ' . sprintf('%.1f s', time - $t0) . "\n$err";
is($rc, 0, 'digest camera, --duration 20: exit 0');
ok($saw_worker_in_ps, '(ps sampling saw the worker)');
is($db_tls, 'rec_one true /CN=rec_one', 'the worker\'s database session is TLS, authenticated by rec_one\'s client certificate');
is_deeply([ log_format_problems($err, $lobby) ], [], 'every stderr line (FFmpeg\'s too) is "vms-ingest[camera=ID]: LEVEL: message"');
like($err, qr/^vms-ingest\[camera=$lobby\]: (info|debug): .*segment/m, '--verbose: segment lines are logged');

# (The released file of 3 days ago must not be among them: checked below.)
my @segs = grep { $_->{start} >= $t0 - 2 } camera_segments($node, $lobby);
ok(@segs >= 3, scalar(@segs) . ' segments registered for 20 s of 4 s segments');
is_deeply([ segment_problems($root, $lobby, \@segs) ], [],
	'each file exists at its registered path with the registered size and SHA-256, named <start>_<ms>.ts');
is_deeply([ contiguity_problems(\@segs) ], [], 'the segments are contiguous (end of one = start of the next)');
my $total = 0;
$total += $_->{end} - $_->{start} for @segs;
ok($total >= 14 && $total <= 20.5, "total recorded duration $total s is within 14..20.5 s of a 20 s run");
my @long = grep { $_->{dur_ms} < 4000 || $_->{dur_ms} > 5100 } @segs[ 0 .. $#segs - 1 ];
is_deeply([ map { "$_->{id}: $_->{dur_ms} ms" } @long ], [],
	'every segment but the last is cut at the first keyframe at or after 4 s (4.0..5.1 s, GOP 1 s)');
ok(@segs && $segs[0]{start} >= $t0 - 1 && $segs[-1]{end} <= time + 1, 'the segment times are the wall-clock time of the run');
is_deeply([ grep { $_->{recorder} ne 'rec_one' || $_->{codec} ne 'h264' || $_->{width} != 640 || $_->{height} != 360 } @segs ],
	[], 'every segment: recorder rec_one, codec h264, 640x360');
my @probe_bad;
for my $s (@segs)
{
	my $p = ffprobe_file("$root/$s->{path}");
	my $d = $p->{duration} // -1;
	push @probe_bad, "$s->{path}: " . join(' ', map { "$_=" . ($p->{$_} // 'undef') } sort keys %$p)
	  unless $p->{ok} && ($p->{format} // '') eq 'mpegts' && ($p->{codec} // '') eq 'h264'
	  && ($p->{width} // 0) == $s->{width} && ($p->{height} // 0) == $s->{height}
	  && abs($d - $s->{dur_ms} / 1000) < 0.5;
}
is_deeply(\@probe_bad, [], 'ffprobe reads every file as MPEG-TS/H.264 of the registered size and about the registered duration');
if (@segs)
{
	my $f = "$root/$segs[0]{path}";
	(my $dir = $f) =~ s{/[^/]+$}{};
	is(sprintf('%04o %04o', (stat $f)[2] & 07777, (stat $dir)[2] & 07777), '0640 0750',
		'segment files are 0640, day directories 0750');
}
is_deeply([ grep { /\.partial$/ } storage_files("$root/$lobby") ], [], 'no .partial is left after a clean stop');
ok($seen{$lobby}{recording}, 'ingest_status: recording while it ran');
is(ingest_state($ing, $lobby), 'stopped', 'ingest_status: stopped after the run');
ok(wait_for_audit($node, "action = 'ingest_recording' AND camera_id = $lobby AND outcome = 'ok'"),
	'the start of recording is audited (ingest_recording)');

# Retention: the released file is gone and confirmed.
ok(!-e "$root/$old_rel", 'the file released by retention was removed by the worker (--purge-interval 2)');
is(query("SELECT count(*) FROM vms.purge_queue WHERE segment_id = $old_id"), '0', 'it is no longer in vms.purge_queue');
is($node->safe_psql('vms', "SELECT count(*) FROM vms.purge_claim($lobby)", connstr => $ing->{connstr}), '0',
	'purge_claim has nothing more for lobby');
ok(wait_for_audit($node, "action = 'purge_confirm' AND camera_id = $lobby AND actor = 'rec_one' "
		  . "AND (details->>'files_confirmed')::int >= 1"), 'the removal was confirmed (purge_confirm audited)');
is(query("SELECT count(*) FROM vms.segments WHERE camera_id = $lobby AND path = '$old_rel'"), '0',
	'the released file was not registered again (by the start-up recovery scan)');
is(query("SELECT count(*) FROM vms.events WHERE camera_id = $lobby AND event_time < now() - interval '1 day'"), '0',
	'no event older than the camera\'s retention was registered (no "gap" since the released file)');

# ============================================================================
# 2. Wrong credentials (ran alongside)
# ============================================================================
$rc = wait_proc($wrongrun, 40);
$err = collect($wrongrun);
note "wrong password: exit " . ($rc // 'none') . "\n$err";
is($rc, 3, 'wrong camera password, --duration 8: exit 3 (stopped while the camera was failing)');
like($err, qr/^vms-ingest\[camera=$wrong\]: error: .*401/m, 'an error line names the 401 refusal');
ok($seen{$wrong}{auth_failed}, 'ingest_status: auth_failed while it ran');
ok(!$seen{$wrong}{recording}, 'and never recording');
ok(wait_for_audit($node, "action = 'ingest_auth_failed' AND camera_id = $wrong AND outcome = 'error'"),
	'audited: ingest_auth_failed with outcome error');
is(scalar(camera_segments($node, $wrong)), 0, 'nothing was registered');

# ============================================================================
# 3. The database connection: TLS is required; the client certificate too
# ============================================================================
my $plaincam = add_ingest_camera($ing, 'plaindb', $cam->{url}, credential => [ 'cam', $campw ],
	settings => { segment_seconds => 2 });
my ($prc, $perr) = worker({ dbname => $ing->{plain_connstr} }, $plaincam, '--duration', 5);
is($prc, 2, 'a TCP database connection without TLS: exit 2');
like($perr, qr/^vms-ingest\[camera=$plaincam\]: error: .*(TLS|SSL).*--insecure-db/mi,
	'the error says the connection is not TLS and names --insecure-db');
is(scalar(camera_segments($node, $plaincam)), 0, 'nothing registered over the refused connection');
($prc, $perr) = worker({ dbname => $ing->{plain_connstr} }, $plaincam, '--duration', 5, '--insecure-db', '--verbose');
is($prc, 0, '--insecure-db: the same connection (SCRAM, password from PGPASSFILE) records, exit 0');
my @plain = camera_segments($node, $plaincam);
ok(@plain >= 1 && !segment_problems($root, $plaincam, \@plain), scalar(@plain) . ' segments registered and verified');
(my $nocert = $ing->{connstr}) =~ s/ sslcert=\S+ sslkey=\S+//;
($prc, $perr) = worker({ dbname => $nocert }, $plaincam, '--duration', 5);
is($prc, 2, 'verify-full without the client certificate: exit 2');
like($perr, qr/^vms-ingest\[camera=$plaincam\]: error: .*connect/mi, 'a clear "could not connect" error line');
($prc, $perr) = worker({ dbname => $ing->{connstr} =~ s/sslrootcert=\S+/sslrootcert=$ing->{pki}\/rec_one.pem/r },
	$plaincam, '--duration', 5);
is($prc, 2, 'a database server certificate the given root does not sign: exit 2');

# ============================================================================
# 4. TLS to the camera: rtsps:// and the HTTPS tunnel
# ============================================================================
my $camca = make_ca("$base/campki", 'camera');
my $otherca = make_ca("$base/campki", 'other');
my $camcert = make_cert($camca, 'camera-server', cn => '127.0.0.1');
my $othercert = make_cert($otherca, 'other-server', cn => '127.0.0.1');
my $capem = slurp($camca->{cert});
my $otherpem = slurp($otherca->{cert});
my $pin = spki_sha256_hex($camcert->{cert});
my $wrongpin = spki_sha256_hex($othercert->{cert});
my $tls = start_camera(name => 'tls', auth => 'digest', user => 'cam', password => $tlspw,
	tls_cert => $camcert->{bundle}, size => '320x240', fps => 25, gop => 25);
like($tls->{url}, qr{^rtsps://127\.0\.0\.1:\d+/test$}, 'the TLS camera serves rtsps://');
(my $tunnel_url = $tls->{url}) =~ s/^rtsps:/rtsp:/;
my %tlscase = (
	tls_ok => [ $tls->{url}, { tls_ca_pem => $capem }, [], 0 ],
	tls_pin_ok => [ $tls->{url}, { tls_ca_pem => $capem, tls_pin_sha256_hex => $pin }, [], 0 ],
	tunnel_ok => [ $tunnel_url, { transport => 'https' }, [ '--ca-file', $camca->{cert} ], 0 ],
	tls_wrongca => [ $tls->{url}, { tls_ca_pem => $otherpem }, [], 3, qr/not trusted/i ],
	tls_noca => [ $tls->{url}, {}, [], 3, qr/not trusted/i ],
	tunnel_wrongca => [ $tunnel_url, { transport => 'https', tls_ca_pem => $otherpem }, [], 3, qr/not trusted/i ],
	tls_wrongpin => [ $tls->{url}, { tls_ca_pem => $capem, tls_pin_sha256_hex => $wrongpin }, [], 3, qr/pin/i ],
	tls_badname => [ $tls->{url}, { tls_ca_pem => $capem, tls_server_name => 'camera.example.org' }, [], 3,
		qr/camera\.example\.org|name/i ],
);
my %tlsrun;
for my $name (sort keys %tlscase)
{
	my ($url, $settings, $args) = @{ $tlscase{$name} };
	my $id = add_ingest_camera($ing, $name, $url, credential => [ 'cam', $tlspw ],
		settings => { segment_seconds => 2, %$settings });
	$tlsrun{$name} = { id => $id, p => start_worker($ing, $id, '--duration', 7, '--io-timeout', 3, @$args) };
}
wait_watching($ing, \%tlsrun, 60);
for my $name (sort keys %tlscase)
{
	my (undef, undef, undef, $want, $msg) = @{ $tlscase{$name} };
	my ($id, $p, $rc, $states) = @{ $tlsrun{$name} }{qw(id p rc states)};
	my $err = collect($p);
	note "$name: exit " . ($rc // 'none') . "\n$err";
	my @s = camera_segments($node, $id);
	if ($want == 0)
	{
		is($rc, 0, "$name: records (exit 0)");
		ok(@s >= 1 && !segment_problems($root, $id, \@s) && $s[0]{width} == 320,
			"$name: " . scalar(@s) . ' segments registered and verified');
		ok($states->{recording} && !$states->{tls_failed}, "$name: state recording, never tls_failed");
	}
	else
	{
		is($rc, 3, "$name: exit 3");
		like($err, qr/^vms-ingest\[camera=$id\]: error: .*$msg/m, "$name: the error line says why ($msg)");
		ok($states->{tls_failed} && !$states->{recording}, "$name: state tls_failed, never recording");
		ok(wait_for_audit($node, "action = 'ingest_tls_failed' AND camera_id = $id AND outcome = 'error'"),
			"$name: audited (ingest_tls_failed, outcome error)");
		is(scalar(@s), 0, "$name: nothing registered");
	}
}

# ============================================================================
# 5. The camera freezes for 8 s and comes back
# ============================================================================
my $flaky = start_camera(name => 'flaky', auth => 'digest', user => 'cam', password => $campw,
	size => '320x240', fps => 25, gop => 25);
my $flakyid = add_ingest_camera($ing, 'flaky', $flaky->{url}, credential => [ 'cam', $campw ],
	settings => { segment_seconds => 2 });
my $fw = start_worker($ing, $flakyid, '--duration', 90, '--io-timeout', 2, '--backoff-max', 2);
ok(poll_until(30, sub { camera_segments($node, $flakyid) >= 2 && ingest_state($ing, $flakyid) eq 'recording' }),
	'flaky: recording, 2 segments registered');
my $t_stop = time;
signal_proc($flaky, 'STOP');
ok(poll_until(20, sub { ingest_state($ing, $flakyid) eq 'reconnecting' }),
	'camera frozen (SIGSTOP): the state goes to reconnecting within --io-timeout and a bit');
note sprintf('reconnecting after %.1f s', time - $t_stop);
# Keep it frozen for 8 s in all, so that several reconnect attempts time out.
ok(poll_until(20, sub { time >= $t_stop + 8 && proc_alive($fw) }), 'the worker survives the frozen camera');
signal_proc($flaky, 'CONT');
my $t_cont = time;
ok(poll_until(30, sub {
			ingest_state($ing, $flakyid) eq 'recording'
			  && (grep { $_->{start} > $t_stop } camera_segments($node, $flakyid)) >= 2 }),
	'camera back (SIGCONT): recording again, new segments registered');
note sprintf('recording again %.1f s after SIGCONT', time - $t_cont);
signal_proc($fw, 'TERM');
$rc = wait_proc($fw, 30);
$err = collect($fw);
note "flaky: exit " . ($rc // 'none') . "\n$err";
is($rc, 0, 'SIGTERM while recording: exit 0');
my @fs = camera_segments($node, $flakyid);
is_deeply([ segment_problems($root, $flakyid, \@fs) ], [], 'flaky: every file verified');
my @holes = contiguity_problems(\@fs);
is(scalar(@holes), 1, 'exactly one hole in the recording') or diag explain \@holes;
my ($hole) = grep { $fs[$_]{end} != $fs[ $_ + 1 ]{start} } 0 .. $#fs - 1;
my $gap = query("SELECT extract(epoch FROM event_time)::numeric(20,3) || ' ' || "
	  . "extract(epoch FROM (details->>'until')::timestamptz)::numeric(20,3) || ' ' || (details->>'reason') "
	  . "FROM vms.events WHERE camera_id = $flakyid AND kind = 'recording_gap'");
if (defined $hole)
{
	ok($fs[$hole]{end} <= $t_stop + 0.5 && $fs[ $hole + 1 ]{start} >= $t_stop + 7,
		"the hole ($fs[$hole]{end} .. $fs[$hole + 1]{start}) spans the freeze ($t_stop + 8 s)");
	is($gap, "$fs[$hole]{end} $fs[$hole + 1]{start} camera_lost",
		'one recording_gap event: from the end of the last segment to the start of the next, reason camera_lost');
}
else
{
	fail("no hole in the recording: $_") for ('span', 'event');
}
my $states = query("SELECT string_agg(action || ':' || coalesce(details->>'previous', ''), ' ' ORDER BY seq) "
	  . "FROM vms.audit_log WHERE camera_id = $flakyid AND action LIKE 'ingest\\_%' AND action <> 'ingest_config'");
# (A reconnect attempt that fails while the camera is frozen may show as
# stream_error in between.)
like($states, qr/ingest_recording:\S* ingest_reconnecting:recording (ingest_stream_error:reconnecting )?ingest_recording:(reconnecting|stream_error)/,
	"audited state changes: recording -> reconnecting -> recording ($states)");

# ============================================================================
# 6. Bad input (AddressSanitizer build when there is one)
# ============================================================================
my %bad = map { $_ => start_bad_camera($_) } qw(garbage silent rtsp-then-garbage);
my $notvideo = "$base/notvideo.mp4";
{
	open my $fh, '>:raw', $notvideo or die $!;
	print $fh 'ftypisom', map { chr(int(rand(256))) } 1 .. 65536;
	close $fh;
}
my %badcase;
$badcase{$_} = add_ingest_camera($ing, "bad_$_", $bad{$_}{url}, credential => [ 'cam', $campw ],
	settings => { segment_seconds => 2 }) for keys %bad;
$badcase{notvideo} = add_ingest_camera($ing, 'notvideo', "file://$notvideo", settings => { segment_seconds => 2 });
my %badrun;
for my $name (sort keys %badcase)
{
	$badrun{$name} = { id => $badcase{$name}, p => start_worker($ing, { asan => 1 }, $badcase{$name}, '--duration', 7,
			'--io-timeout', 2, '--backoff-max', 1, '--verbose') };
}
my $elsewhere = add_ingest_camera($ing, 'elsewhere', $cam->{url}, recorder => 'rec_two');
my @quick = (
	[ 'unknown camera', [ 999999 ], 2, qr/999999.*(does not exist|unknown|not found)|(does not exist|unknown|not found).*999999/i ],
	[ 'camera of another recorder', [$elsewhere], 2, qr/not assigned|permission|not allowed/i ],
	[ 'camera id "abc"', [ 'abc', '--duration', 5 ], 1, qr/abc/ ],
	[ 'unknown option', [ $lobby, '--bogus' ], 1, qr/--bogus/ ],
	[ 'a bad number', [ $lobby, '--backlog-bytes', '12abc' ], 1, qr/backlog-bytes/ ],
);
for my $q (@quick)
{
	my ($what, $args, $want, $msg) = @$q;
	my $t = time;
	my ($rc, $err) = worker({ asan => 1, timeout => 30 }, @$args);
	is($rc, $want, "$what: exit $want");
	like($err, qr/^vms-ingest(\[camera=[^\]]*\])?: (error: )?.*$msg/m, "$what: a clear message");
	is(sanitizer_report($err), '', "$what: no sanitizer report");
	ok(time - $t < 15, "$what: fails fast");
}
wait_watching($ing, \%badrun, 40);
for my $name (sort keys %badcase)
{
	my ($id, $p, $rc, $states) = @{ $badrun{$name} }{qw(id p rc states)};
	my $took = ($p->{ended} // time) - $p->{started};
	my $err = collect($p);
	note "$name: exit " . ($rc // 'none') . sprintf(' after %.1f s', $took) . "\n$err";
	is($rc, 3, "$name: exit 3");
	is(sanitizer_report($err), '', "$name: no sanitizer report");
	like($err, qr/^vms-ingest\[camera=$id\]: error: \S/m, "$name: an error line");
	ok($took < 7 + 2 * 2 + 5, sprintf("$name: stopped on time (%.1f s for --duration 7, --io-timeout 2)", $took));
	ok(($states->{stream_error} || $states->{reconnecting}) && !$states->{recording},
		"$name: state stream_error or reconnecting while it ran, never recording (" . join(',', sort keys %$states) . ')');
	like($err, qr/^vms-ingest\[camera=$id\]: error: .*(no answer|timed? ?out)/mi, "$name: the error line says the camera did not answer")
	  if $name eq 'silent';
	is(scalar(camera_segments($node, $id)), 0, "$name: nothing registered");
}
my @silent_conns = slurp($bad{silent}{err}) =~ /connection \d+/g;
ok(@silent_conns >= 2, scalar(@silent_conns) . ' connections to the silent camera in 7 s: each attempt was bounded by --io-timeout');

# A stream that stops mid-GOP: SIGKILL the camera while a segment is open.
my $mg = start_camera(name => 'midgop', auth => 'digest', user => 'cam', password => $campw,
	size => '320x240', fps => 25, gop => 50);
my $mgid = add_ingest_camera($ing, 'midgop', $mg->{url}, credential => [ 'cam', $campw ],
	settings => { segment_seconds => 4 });
my $mw = start_worker($ing, { asan => 1 }, $mgid, '--duration', 90, '--io-timeout', 2, '--backoff-max', 1);
ok(poll_until(40, sub { camera_segments($node, $mgid) >= 1 }), 'midgop: a first segment registered');
# 1.5 s into the next segment: between two keyframes (GOP 2 s).
my $t_reg = time;
poll_until(5, sub { time >= $t_reg + 1.5 });
my @pre = camera_segments($node, $mgid);
signal_proc($mg, 'KILL');
wait_proc($mg, 10);
my $t_kill = time;
ok(poll_until(20, sub { camera_segments($node, $mgid) > @pre }), 'midgop: after the kill, the open segment is registered');
my @post = camera_segments($node, $mgid);
my $cut = $post[ scalar @pre ];
if ($cut)
{
	ok($cut->{dur_ms} < 4000, "the cut segment is short ($cut->{dur_ms} ms): it ends with the stream, not at a keyframe");
	is_deeply([ segment_problems($root, $mgid, [$cut]) ], [], 'its file matches the registered size and SHA-256');
	my $pr = ffprobe_file("$root/$cut->{path}", count => 1);
	ok($pr->{ok} && ($pr->{codec} // '') eq 'h264' && ($pr->{frames} // 0) >= 10,
		'it is playable: ffprobe decodes ' . ($pr->{frames} // 0) . ' frames');
	my ($dout, $derr) = ('', '');
	IPC::Run::run([ 'ffmpeg', '-v', 'error', '-i', "$root/$cut->{path}", '-f', 'null', '-' ], '<', \'', '>', \$dout, '2>', \$derr);
	is($derr, '', 'ffmpeg decodes it without an error');
}
else
{
	fail('the cut segment was not registered') for 1 .. 4;
}
ok(poll_until(20, sub { ingest_state($ing, $mgid) =~ /^(reconnecting|stream_error)$/ }),
	'midgop: the worker reports that it is reconnecting');
my $failures = sub { my @l = slurp($mw->{err}) =~ /^vms-ingest\[camera=$mgid\]: (?:warning|error): /mg; scalar @l };
my $failures_at_kill = $failures->();
ok(poll_until(20, sub { proc_alive($mw) && $failures->() >= $failures_at_kill + 2 }),
	'midgop: the worker keeps retrying (failed attempts logged, still running)');
$mg = VmsIngest::restart_camera($mg);
ok(poll_until(40, sub { (grep { $_->{start} > $t_kill } camera_segments($node, $mgid)) >= 1 }),
	'midgop: the camera restarted on the same port is recorded again');
signal_proc($mw, 'TERM');
$rc = wait_proc($mw, 30);
$err = collect($mw);
note "midgop: exit " . ($rc // 'none') . "\n$err";
is($rc, 0, 'midgop: SIGTERM while recording again: exit 0');
is(sanitizer_report($err), '', 'midgop: no sanitizer report');
my @mgall = camera_segments($node, $mgid);
is_deeply([ segment_problems($root, $mgid, \@mgall) ], [], 'midgop: every registered file verified');
is(query("SELECT count(*) FROM vms.events WHERE camera_id = $mgid AND kind = 'recording_gap' "
		  . "AND details->>'reason' = 'camera_lost' AND event_time = to_timestamp($cut->{end})"), '1',
	'midgop: a recording_gap event from the end of the cut segment') if $cut;

# ============================================================================
# 7. Secrets
# ============================================================================
push @outputs, slurp($node->logfile);
my $audit = query("SELECT string_agg(coalesce(details::text, '') || ' ' || coalesce(target, ''), E'\\n') FROM vms.audit_log")
  . query("SELECT string_agg(coalesce(detail, ''), E'\\n') FROM vms.ingest_status");
my @leaks;
for my $s (@secrets)
{
	push @leaks, "worker output or server log: $s" if grep { index($_, $s) >= 0 } @outputs;
	push @leaks, "ps -eo args: $s" if grep { index($_, $s) >= 0 } @ps_samples;
	push @leaks, "audit log / ingest_status: $s" if index($audit, $s) >= 0;
}
is_deeply(\@leaks, [], 'no password (camera or database, raw or percent-encoded) in the worker\'s output, the server log, '
	  . 'the audit log, ingest_status or ps (' . scalar(@ps_samples) . ' samples)');
ok(length(join '', @outputs) > 10000, '(the secrets check had output to search)');

done_testing();
