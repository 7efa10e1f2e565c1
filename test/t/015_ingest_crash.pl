# tools/vms-ingest under crashes and database outages (real RTSP camera, real
# cluster, recorder over TLS with a client certificate):
#  1. 20 cycles of: start the worker (2 s segments), wait a random 0.5-4 s,
#     SIGKILL it; then one clean run of 6 s.  Afterwards every registered
#     segment exists with its size and SHA-256 and is readable H.264, no
#     segments overlap, no .partial is left anywhere under the root, no
#     completed segment file is unregistered (no orphans), and every
#     recording_gap event runs from the end of a registered segment to the
#     start of one.  PGVMS_SEED=N repeats a run's kill times.
#  2. The database stops (fast) for 10 s while the worker records: the worker
#     keeps recording to disk and registers the backlog when the database is
#     back; the recording has no hole across the outage, every file is
#     registered, and no recording_gap event is made.
#  3. The same with --backlog-bytes of about 1.5 segments: the worker stops
#     recording when the bound is reached (the unregistered bytes on disk stay
#     within it), and when the database is back it registers what it kept and
#     a recording_gap event (reason database_backlog_full) exactly over the
#     hole, then records again.
use strict;
use warnings;
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;
use VmsIngest;

my $bin = worker_bin();
plan skip_all => "$bin not built" unless -x $bin;

my $seed = $ENV{PGVMS_SEED} // int(rand(1_000_000));
srand($seed);
note "random seed $seed (PGVMS_SEED=$seed repeats the kill times)";

my $ing = VmsIngest::setup('crash');
my $node = $ing->{node};
my $root = $ing->{root};
sub query { return $node->safe_psql('vms', $_[0]); }

my $campw = 'Crash:cam/pw%1';
my $cam = start_camera(name => 'crashcam', auth => 'digest', user => 'cam', password => $campw,
	size => '320x240', fps => 25, gop => 25);
sub new_camera
{
	my ($name) = @_;
	return add_ingest_camera($ing, $name, $cam->{url}, credential => [ 'cam', $campw ],
		settings => { segment_seconds => 2 });
}

# Files of a camera below the root: completed segments and .partial ones.
sub camera_files
{
	my ($id) = @_;
	return map { "$id/$_" } storage_files("$root/$id");
}

# Completed segment files of the camera that are not registered.
sub orphans
{
	my ($id) = @_;
	my %reg = map { $_->{path} => 1 } camera_segments($node, $id);
	return grep { !/\.partial$/ && !$reg{$_} } camera_files($id);
}

sub overlaps
{
	my ($segs) = @_;
	return map { "segment $segs->[$_ - 1]{id} ends at $segs->[$_ - 1]{end}, $segs->[$_]{id} starts at $segs->[$_]{start}" }
	  grep { $segs->[ $_ - 1 ]{end} > $segs->[$_]{start} } 1 .. $#$segs;
}

my @outputs;

# ============================================================================
# 1. kill -9, 20 times
# ============================================================================
my $crash = new_camera('crash');
my (@early, @delays);
my $t1 = time;
for my $cycle (1 .. 20)
{
	my $w = start_worker($ing, $crash, '--io-timeout', 3);
	my $delay = 0.5 + rand(3.5);
	push @delays, sprintf('%.2f', $delay);
	my $rc = wait_proc($w, $delay);
	push @early, "cycle $cycle: exit $rc before the kill: " . slurp($w->{err}) if defined $rc;
	signal_proc($w, 'KILL');
	wait_proc($w, 10);
	push @outputs, slurp($w->{err});
}
note 'kill delays: ' . join(' ', @delays) . sprintf(' (%.1f s in all)', time - $t1);
is_deeply(\@early, [], 'the worker was running at each of the 20 kills');
my @partials_before = grep { /\.partial$/ } camera_files($crash);
note scalar(@partials_before) . ' .partial files left by the kills; '
  . scalar(camera_segments($node, $crash)) . ' segments registered so far';

my ($rc, $err) = run_worker($ing, $crash, '--duration', 6, '--io-timeout', 3);
push @outputs, $err;
is($rc, 0, 'a clean run after the crashes, --duration 6: exit 0');
my @segs = camera_segments($node, $crash);
ok(@segs >= 3, scalar(@segs) . ' segments registered in all');
is_deeply([ segment_problems($root, $crash, \@segs) ], [],
	'every registered segment exists with the registered size and SHA-256, at a path of the layout');
is_deeply([ overlaps(\@segs) ], [], 'no two segments overlap');
my @unreadable = grep {
	my $p = ffprobe_file("$root/$_->{path}");
	!($p->{ok} && ($p->{codec} // '') eq 'h264' && ($p->{width} // 0) == 320)
} @segs;
is_deeply([ map { $_->{path} } @unreadable ], [], 'ffprobe reads every registered file (salvaged ones too) as 320x240 H.264');
is_deeply([ grep { /\.partial$/ } storage_files($root) ], [], 'no .partial file is left anywhere under the root');
is_deeply([ orphans($crash) ], [], 'no completed segment file is unregistered (no orphans)');
my $holes = () = contiguity_problems(\@segs);
my $gaps = query("SELECT count(*) FROM vms.events WHERE camera_id = $crash AND kind = 'recording_gap'");
note "$holes holes between segments, $gaps recording_gap events";
is(query("SELECT count(*) FROM vms.events e WHERE camera_id = $crash AND kind = 'recording_gap' AND NOT EXISTS "
		  . "(SELECT 1 FROM vms.segments s WHERE s.camera_id = $crash AND s.end_time = e.event_time)"), '0',
	'every recording_gap event starts at the end of a registered segment');
# A gap ends where recording resumed: a restart killed before its first
# segment was kept must not leave a gap "until" a recording that does not exist.
is(query("SELECT string_agg(to_char(event_time AT TIME ZONE 'UTC', 'HH24:MI:SS.MS') || '..' || "
		  . "to_char((details->>'until')::timestamptz AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'), ' ' ORDER BY event_time) "
		  . "FROM vms.events e WHERE camera_id = $crash AND kind = 'recording_gap' AND NOT EXISTS "
		  . "(SELECT 1 FROM vms.segments s WHERE s.camera_id = $crash AND s.start_time = (e.details->>'until')::timestamptz)"), '',
	'every recording_gap event ends at the start of a registered segment');
is(ingest_state($ing, $crash), 'stopped', 'ingest_status: stopped after the clean run');

# ============================================================================
# 2. The database goes away for 10 s
# ============================================================================
my $dbr = new_camera('dbrestart');
my $w = start_worker($ing, $dbr, '--io-timeout', 3);
ok(poll_until(40, sub { camera_segments($node, $dbr) >= 2 }), 'dbrestart: recording, 2 segments registered');
my @before = camera_segments($node, $dbr);
my $t_down = time;
$node->stop('fast');
# While the database is away: recording goes on to disk.
ok(poll_until(30, sub { time >= $t_down + 10 }), '(the database stays down for 10 s)');
my @ondisk = grep { !/\.partial$/ } camera_files($dbr);
ok(@ondisk >= @before + 3, 'while the database was down the worker kept writing segments ('
	  . (@ondisk - @before) . ' new files)');
ok(proc_alive($w), 'the worker is still running');
$node->start;
my $t_up = time;
ok(poll_until(40, sub { (grep { $_->{start} > $t_up } camera_segments($node, $dbr)) >= 2 }),
	'dbrestart: the database is back, new segments registered');
signal_proc($w, 'TERM');
$rc = wait_proc($w, 30);
$err = slurp($w->{err});
push @outputs, $err;
note "dbrestart: exit " . ($rc // 'none') . "\n$err";
is($rc, 0, 'SIGTERM: exit 0');
my @dsegs = camera_segments($node, $dbr);
is_deeply([ segment_problems($root, $dbr, \@dsegs) ], [], 'dbrestart: every registered file verified');
is_deeply([ contiguity_problems(\@dsegs) ], [], 'dbrestart: no hole across the outage (the camera stayed up)');
ok((grep { $_->{start} > $t_down && $_->{end} < $t_up } @dsegs) >= 3,
	'the segments recorded during the outage are registered');
is_deeply([ orphans($dbr) ], [], 'dbrestart: every segment file is registered');
is_deeply([ grep { /\.partial$/ } camera_files($dbr) ], [], 'dbrestart: no .partial left');
is(query("SELECT count(*) FROM vms.events WHERE camera_id = $dbr AND kind = 'recording_gap'"), '0',
	'dbrestart: no recording_gap event');

# ============================================================================
# 3. The same with a backlog bound of about 1.5 segments
# ============================================================================
my $avg = 0;
$avg += $_->{bytes} for @dsegs;
$avg = int($avg / @dsegs) if @dsegs;
my $bound = int(1.5 * $avg);
note "2 s segments average $avg bytes: --backlog-bytes $bound";
my $bl = new_camera('backlog');
$w = start_worker($ing, $bl, '--io-timeout', 3, '--backlog-bytes', $bound);
ok(poll_until(40, sub { camera_segments($node, $bl) >= 2 }), 'backlog: recording, 2 segments registered');
my %registered = map { $_->{path} => 1 } camera_segments($node, $bl);
$t_down = time;
$node->stop('fast');
my $max_unreg = 0;
poll_until(30, sub {
	my $b = 0;
	$b += -s "$root/$_" // 0 for grep { !$registered{$_} } camera_files($bl);
	$max_unreg = $b if $b > $max_unreg;
	return time >= $t_down + 10;
});
# The worker learns a segment's size when it closes it: allow the segment
# that crossed the bound, no more.
my $maxseg = 0;
$maxseg < $_->{bytes} and $maxseg = $_->{bytes} for @dsegs;
ok($max_unreg <= $bound + $maxseg,
	"while the database was down, the unregistered bytes on disk stayed within the bound + one segment ($max_unreg <= $bound + $maxseg)");
ok($max_unreg > 0, '(and the worker did keep some)');
like(slurp($w->{err}), qr/^vms-ingest\[camera=$bl\]: (warning|error): .*backlog/mi, 'the worker says the backlog is full');
$node->start;
$t_up = time;
ok(poll_until(40, sub {
			query("SELECT count(*) FROM vms.events WHERE camera_id = $bl AND kind = 'recording_gap'") > 0
			  && (grep { $_->{start} > $t_up } camera_segments($node, $bl)) >= 2 }),
	'backlog: the database is back: a recording_gap event, then new segments');
signal_proc($w, 'TERM');
$rc = wait_proc($w, 30);
$err = slurp($w->{err});
push @outputs, $err;
note "backlog: exit " . ($rc // 'none') . "\n$err";
is($rc, 0, 'SIGTERM: exit 0');
my @bsegs = camera_segments($node, $bl);
is_deeply([ segment_problems($root, $bl, \@bsegs) ], [], 'backlog: every registered file verified');
is_deeply([ orphans($bl) ], [], 'backlog: every segment file kept is registered');
my @bholes = grep { $bsegs[$_]{end} != $bsegs[ $_ + 1 ]{start} } 0 .. $#bsegs - 1;
is(scalar(@bholes), 1, 'backlog: exactly one hole in the recording');
my $gap = query("SELECT extract(epoch FROM event_time)::numeric(20,3) || ' ' || "
	  . "extract(epoch FROM (details->>'until')::timestamptz)::numeric(20,3) || ' ' || (details->>'reason') "
	  . "FROM vms.events WHERE camera_id = $bl AND kind = 'recording_gap'");
if (@bholes)
{
	my ($a, $b) = ($bsegs[ $bholes[0] ], $bsegs[ $bholes[0] + 1 ]);
	is($gap, "$a->{end} $b->{start} database_backlog_full",
		'one recording_gap event over the hole, reason database_backlog_full');
	ok($a->{end} > $t_down && $a->{end} < $t_down + 7 && $b->{start} >= $t_up - 1,
		sprintf('the hole begins after the outage began (+%.1f s) and ends when the database is back (%+.1f s)',
			$a->{end} - $t_down, $b->{start} - $t_up));
	my $kept = 0;
	$kept += $_->{bytes} for grep { $_->{start} >= $t_down && $_->{end} <= $a->{end} } @bsegs;
	ok($kept <= $bound + $maxseg, "the segments kept during the outage total $kept bytes <= $bound + one segment ($maxseg)");
}
else
{
	fail("no hole: $_") for qw(event position kept);
}

like(join('', @outputs), qr/\S/, '(the workers wrote logs)');
is(scalar(grep { index($_, $campw) >= 0 } @outputs), 0, 'the camera password is in no worker output');

done_testing();
