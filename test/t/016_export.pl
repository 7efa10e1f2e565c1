# Privacy zones and evidence export end to end (pg_vms 1.5, tools/vms-export,
# tools/vms-verify), with real components only: a cluster as VmsIngest sets
# it up, 40 s of 1280x720 H.264 (testsrc2, GOP 2 s) recorded by vms-ingest
# from a file camera into 10 s segments, a test PKI made with the openssl CLI
# (test/lib/VmsPki.pm), a local RFC 3161 TSA (test/tools/tsa_server.py:
# `openssl ts -reply`), and the stock openssl, sha256sum, ffprobe and ffmpeg
# as the independent checkers.
#  1. Round trip, CA-issued signer (no EKU, passphrase-protected key read
#     from --passphrase-file), timestamped: the package's files, the manifest
#     (key order, fields, segments = the index, output hash), the register
#     row and audit rows; vms-verify (and its --tsa-ca-file); plain
#     `openssl cms -verify`, `sha256sum -c`, `openssl ts -verify`; the MP4
#     plays, H.264 as recorded, duration = the range.  A range inside a
#     segment is cut to about its length.
#  2. Round trip with a self-issued profile certificate; the same package
#     against the test CA is untrusted; an expired signer is refused by the
#     verifier.  Signing refusals: unencrypted key for a passphrase profile,
#     wrong passphrase, a key of another certificate.
#  3. Tampering: a flipped byte in the video, in the manifest, in the
#     signature (its value, its header), in the timestamp; an extra payload
#     file; a missing signature.  Each a precise message, exit 2, and the
#     stock tools disagree too.
#  4. Encryption: recipients (RSA key transport, EC key agreement) in 1 MiB
#     chunks, and a password (PWRI): vms-verify and `openssl cms -decrypt`
#     (-recip/-inkey, -pwri_password) give the identical MP4, whose SHA-256 is
#     the manifest's; a wrong recipient or password: exit 3 and no output
#     left.  A profile that requires encryption refuses a plain export.
#  5. A segment file swapped (and one missing) on disk before the export:
#     exit 3, nothing written, the register row failed, export_fail audited.
#  6. Refusals by the database: no export permission, a range before the
#     user's recorded-video window, no snapshot permission, a profile without
#     png: exit 2, no package directory, an export_begin row with outcome
#     denied, no register row.
#  7. Privacy masks in the pixels (the Y plane of a decoded frame): a
#     permanent black zone (mean luma about 16), a permanent blur zone
#     (detail gone), a liftable zone that stays black for a user without
#     lift_privacy_mask and is as recorded for the user whose lift a second
#     person approved (the requester cannot approve it); masks and lifts in
#     the manifest; the lift and the approval audited.
#  8. A signed snapshot: PNG of the frame, masks applied, verifies.
#  9. No passphrase or password in any tool's output or in `ps`.
# 10. vms-verify's libFuzzer target, when built (make -C tools fuzz), for a
#     stated number of runs without a crash.
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path remove_tree);
use File::Copy qw(copy move);
use IPC::Run;
use JSON::PP;
use Encode ();
use POSIX qw(strftime floor);
use Time::HiRes qw(time sleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;
use VmsIngest;
use VmsPki;

my $tools = $ENV{PGVMS_TOOLS} // '';
my $export_bin = "$tools/vms-export";
my $verify_bin = "$tools/vms-verify";
my $fuzz_bin = "$tools/fuzz-vms-verify";
plan skip_all => "$export_bin not built" unless -x $export_bin;
plan skip_all => "$verify_bin not built" unless -x $verify_bin;
plan skip_all => worker_bin() . ' not built' unless -x worker_bin();
my $t_begin = time;

my $ing = VmsIngest::setup('export');
my $node = $ing->{node};
my $root = $ing->{root};
my $base = $ing->{base};
sub query { return $node->safe_psql('vms', $_[0]); }
if (query("SELECT extversion FROM pg_extension WHERE extname = 'pg_vms'") ne '1.5')
{
	query("ALTER EXTENSION pg_vms UPDATE TO '1.5'");
}
is(query("SELECT extversion FROM pg_extension WHERE extname = 'pg_vms'"), '1.5', 'pg_vms 1.5 is installed');

# ============================================================================
# Set-up: PKI, TSA, users, the recording
# ============================================================================
my $passphrase = 'Sign-Me: 7 ways/%q';
my $password = 'Evidence pw:9 %x/ "q"';
my $pki = make_export_pki("$base/pki", passphrase => $passphrase);
sub write_file
{
	my ($file, $text, $mode) = @_;
	open my $fh, '>:raw', $file or die "$file: $!";
	print $fh $text;
	close $fh;
	chmod $mode, $file if defined $mode;
	return $file;
}
my $password_file = write_file("$base/export.password", "$password\n", 0600);
my $wrong_password_file = write_file("$base/wrong.password", "Not the password 1\n", 0600);
my $wrong_pass_file = write_file("$base/wrong.pass", "not the passphrase\n", 0600);

my $tsa = start_proc(name => 'tsa',
	cmd => [ $PYTHON, "$ENV{TESTDIR}/tools/tsa_server.py", '--config', $pki->{tsa_config} ]);
my $tsa_url = poll_until(20, sub { slurp($tsa->{out}) =~ /^ready (\S+)$/m ? $1 : undef });
BAIL_OUT('tsa_server.py did not start: ' . slurp($tsa->{err})) unless $tsa_url;
note "TSA at $tsa_url";
sub tsa_requests { my @r = slurp($tsa->{err}) =~ /^request \d+: application\/timestamp-query \d+ bytes -> 200$/mg; return scalar @r; }

# Users: each their own VMS role.  Passwords in a pgpass file (never argv).
my %pw;
my $pgpass = "$base/pgpass-users";
sub add_user
{
	my ($user, @grants) = @_;
	$pw{$user} = "Pw-" . join('', map { ('a' .. 'z', 0 .. 9)[ rand 36 ] } 1 .. 12) . ':/%';
	query("SET log_statement = 'none';\nSELECT vms.create_user(" . sql_quote($user) . ', ' . sql_quote($pw{$user}) . ')');
	query("SELECT vms.create_role('role_$user'); SELECT vms.add_member('role_$user', '$user')");
	for my $g (@grants)
	{
		my ($perm, $window) = @$g;
		query("SELECT vms.grant_permission('role_$user', '$perm', camera_id => $g->[2]"
			  . (defined $window ? ", recorded_window => '$window'" : '') . ')');
	}
	return;
}

# The camera: a file source recorded by vms-ingest, 40 s into 4 segments.
my $src = "$base/source.mp4";
my ($ffout, $fferr) = ('', '');
IPC::Run::run([ 'ffmpeg', '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi',
		'-i', 'testsrc2=size=1280x720:rate=25', '-t', '40', '-c:v', 'libx264', '-preset', 'veryfast',
		'-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', $src ],
	'<', \'', '>', \$ffout, '2>', \$fferr) or BAIL_OUT("ffmpeg: $fferr");
my $cam = add_ingest_camera($ing, 'Gate "North" / Yard', "file://$src", settings => { segment_seconds => 10 });
my $t_rec = floor(time) - 7200;
my $start_iso = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($t_rec));
my ($irc, $ierr) = run_worker($ing, { timeout => 120 }, $cam, '--no-realtime', '--exit-at-eof', '--start-time', $start_iso);
is($irc, 0, 'vms-ingest recorded the file camera (--no-realtime --exit-at-eof), exit 0');
my @segs = camera_segments($node, $cam);
is(scalar(@segs), 4, '4 segments of 10 s registered') or diag explain \@segs;
is_deeply([ segment_problems($root, $cam, \@segs) ], [], 'each segment file matches the index');
BAIL_OUT('no recording to export') unless @segs >= 4;

add_user('alice', [ 'view_recorded', '4 hours', $cam ], [ 'export', '4 hours', $cam ], [ 'snapshot', '4 hours', $cam ]);
add_user('bob', [ 'view_recorded', '4 hours', $cam ], [ 'view_live', undef, $cam ]);
add_user('carol', [ 'view_recorded', '30 minutes', $cam ], [ 'export', '30 minutes', $cam ]);
add_user('dave', [ 'view_recorded', '4 hours', $cam ], [ 'export', '4 hours', $cam ],
	[ 'lift_privacy_mask', undef, $cam ], [ 'approve_privacy_lift', undef, $cam ]);
add_user('erin', [ 'view_live', undef, $cam ], [ 'approve_privacy_lift', undef, $cam ]);
add_user('frank', [ 'view_recorded', '4 hours', $cam ], [ 'export', '4 hours', $cam ]);
{
	my $port = $node->port;
	write_file($pgpass, join('', map { (my $p = $pw{$_}) =~ s/([:\\])/\\$1/g; "127.0.0.1:$port:vms:$_:$p\n" } sort keys %pw), 0600);
}
sub conninfo { return 'host=127.0.0.1 port=' . $node->port . " dbname=vms user=$_[0] sslmode=disable gssencmode=disable"; }

# SQL as a user over TCP (password from the pgpass file): (ok, stdout, stderr).
sub user_sql
{
	my ($user, $sql) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGPASSFILE} = $pgpass;
	IPC::Run::run([ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', conninfo($user), '-c', $sql ],
		'<', \'', '>', \$out, '2>', \$err);
	chomp $out;
	return ($? == 0, $out, $err);
}

# Profiles (as superuser = system manager).
sub pem { return slurp($_[0]); }
sub set_profile
{
	my ($name, $cert, %o) = @_;
	my @a = ('signer_certificate => ' . sql_quote(pem($cert)));
	push @a, 'signer_chain => ' . sql_quote(pem($o{chain})) if $o{chain};
	push @a, "key_needs_passphrase => " . ($o{passphrase} ? 'true' : 'false');
	push @a, "formats => '$o{formats}'" if $o{formats};
	push @a, 'encryption_required => true' if $o{encrypt};
	push @a, 'tsa_url => ' . sql_quote($o{tsa}) if $o{tsa};
	query("SELECT vms.set_export_profile('$name', " . join(', ', @a) . ')');
}
set_profile('court', $pki->{signer}, chain => $pki->{ca}, passphrase => 1, formats => '{mp4,png}');
set_profile('stamped', $pki->{signer}, chain => $pki->{ca}, passphrase => 1, tsa => $tsa_url);
set_profile('self', $pki->{self}, formats => '{mp4}');
set_profile('old', $pki->{expired}, chain => $pki->{ca});
set_profile('sealed', $pki->{signer}, chain => $pki->{ca}, passphrase => 1, encrypt => 1);

# Times of the segments, as the tools take them.
sub iso { my ($t) = @_; my $s = floor($t + 0.0005); return strftime('%Y-%m-%dT%H:%M:%S', gmtime($s)) . sprintf('.%03dZ', int(($t - $s) * 1000 + 0.5)); }
my @S = map { { %$_, from => iso($_->{start}), to => iso($_->{end}) } } @segs;

# ============================================================================
# Running the tools
# ============================================================================
my (@outputs, @ps_samples);
my $run_no = 0;
# run_tool({ env => {...}, timeout => s }, cmd...): runs it with stdout and
# stderr in files, sampling `ps` while it runs.  Returns { rc, out, err, took }.
sub run_tool
{
	my $o = ref $_[0] eq 'HASH' ? shift : {};
	my (@cmd) = @_;
	my $p = start_proc(name => 'tool', cmd => \@cmd, env => { PGPASSFILE => $pgpass, %{ $o->{env} // {} } },
		unset => [qw(PGPASSWORD PGUSER PGHOST PGPORT PGDATABASE PGSERVICE)]);
	my $deadline = time + ($o->{timeout} // 90);
	while (proc_alive($p) && time < $deadline)
	{
		push @ps_samples, sample_ps();
		sleep 0.05;
	}
	my $rc = wait_proc($p, 0);
	if (!defined $rc)
	{
		signal_proc($p, 'KILL');
		wait_proc($p, 5);
		$rc = 'timeout';
	}
	my $r = { rc => $rc, out => slurp($p->{out}), err => slurp($p->{err}), took => time - $p->{started} };
	push @outputs, $r->{out}, $r->{err};
	note sprintf("%s\n  exit %s after %.1f s\n%s%s", join(' ', map { /[\s"']/ ? "'$_'" : $_ } @cmd),
		$rc, $r->{took}, $r->{out}, $r->{err});
	return $r;
}

# export($user, out => DIR, from =>, to =>, profile =>, reason =>, key =>,
#        pass => file | undef, args => [...]): runs vms-export.
sub export
{
	my ($user, %o) = @_;
	my $out = $o{out} // die;
	make_path($out);
	my @cmd = ($export_bin, '--camera', $o{camera} // $cam, '--from', $o{from}, '--to', $o{to},
		'--reason', $o{reason} // "Incident 2026-117: request of $user", '--profile', $o{profile} // 'court',
		'--storage-root', $root, '--out', $out, '-d', conninfo($user), '--quiet');
	my $key = exists $o{key} ? $o{key} : $pki->{signer_key};
	push @cmd, '--key', $key if defined $key;
	my $pass = exists $o{pass} ? $o{pass} : $pki->{passphrase_file};
	push @cmd, '--passphrase-file', $pass if defined $pass;
	push @cmd, @{ $o{args} // [] };
	my $r = run_tool({ timeout => $o{timeout} // 120 }, @cmd);
	($r->{dir}) = $r->{out} =~ /^(\S*export-\d+)\s*$/m;
	($r->{id}) = ($r->{dir} // '') =~ /export-(\d+)$/;
	return $r;
}

sub verify { return run_tool($verify_bin, @_); }
sub ossl { my ($rc, $out, $err) = openssl_run(@_); return { rc => $rc, out => $out, err => $err }; }
sub sh
{
	my ($cmd, $dir) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'sh', '-c', $dir ? "cd '$dir' && $cmd" : $cmd ], '<', \'', '>', \$out, '2>', \$err);
	return { rc => $? >> 8, out => $out, err => $err };
}
sub sha_file { return Digest::SHA->new(256)->addfile($_[0], 'b')->hexdigest; }
sub ls_dir { my ($d) = @_; opendir my $dh, $d or return (); my @f = sort grep { !/^\.\.?$/ } readdir $dh; return @f; }
sub manifest { my $t = slurp("$_[0]/manifest.json"); my $m = eval { JSON::PP->new->utf8->decode($t) }; return $m // {}; }
sub copy_package
{
	my ($src, $name) = @_;
	my $dst = "$base/tamper/$name";
	remove_tree($dst);
	make_path("$base/tamper");
	if (!-d $src)    # (the export failed: its checks fail on an empty package)
	{
		make_path($dst);
		return $dst;
	}
	system('cp', '-a', $src, $dst) == 0 or die "cp -a $src $dst";
	return $dst;
}
sub flip_byte
{
	my ($file, $offset, $mask) = @_;
	open my $fh, '+<:raw', $file or die "$file: $!";
	my $size = -s $fh;
	$offset += $size if $offset < 0;
	seek $fh, $offset, 0;
	read $fh, my $c, 1;
	seek $fh, $offset, 0;
	print $fh chr(ord($c) ^ ($mask // 0x01));
	close $fh;
	return;
}
sub register_row
{
	my ($id) = @_;
	my $r = query("SELECT state, segments, encode(manifest_sha256, 'hex'), encode(output_sha256, 'hex'), "
		  . "encode(signer_sha256, 'hex'), timestamped, coalesce(encrypted, ''), requested_by, kind, coalesce(failure, '') "
		  . "FROM vms.exports WHERE id = " . ($id // 0));
	my @f = split /\|/, $r, -1;
	return { state => $f[0] // '', segments => $f[1], manifest_sha256 => $f[2], output_sha256 => $f[3],
		signer_sha256 => $f[4], timestamped => $f[5], encrypted => $f[6], requested_by => $f[7], kind => $f[8],
		failure => $f[9] };
}
sub audit_count { return query("SELECT count(*) FROM vms.audit_log WHERE $_[0]"); }
sub der_sha256
{
	my ($pemfile) = @_;
	my ($der, $err) = ('', '');
	IPC::Run::run([ 'openssl', 'x509', '-in', $pemfile, '-outform', 'DER' ], '<', \'', '>', \$der, '2>', \$err);
	return sha256_hex($der);
}
sub subject_cn { my $r = ossl('x509', '-in', $_[0], '-noout', '-subject'); return $r->{out} =~ /CN\s*=\s*([^,\n]+)/ ? $1 : ''; }
sub probe { return ffprobe_file(@_); }

# The Y plane of the frame at $t seconds (ffmpeg extractplanes: raw luma,
# black = 16; an RGB PNG is converted to limited-range YUV first): { w, h, y (bytes) }.
sub y_plane
{
	my ($file, $t) = @_;
	my $p = probe($file);
	my ($raw, $err) = ('', '');
	my @ss = defined $t ? ('-ss', $t) : ();
	IPC::Run::run([ 'ffmpeg', '-v', 'error', '-nostdin', @ss, '-i', $file, '-frames:v', '1', '-vf', 'format=yuv420p,extractplanes=y',
			'-f', 'rawvideo', '-pix_fmt', 'gray', '-' ], '<', \'', '>', \$raw, '2>', \$err);
	my ($w, $h) = ($p->{width} // 0, $p->{height} // 0);
	return { w => $w, h => $h, y => (length($raw) == $w * $h && $w ? $raw : undef), err => $err };
}
# Mean luma and mean absolute horizontal difference inside a normalised
# rectangle [x0, y0, x1, y1], 8 pixels in from its edges.
sub zone_stats
{
	my ($img, $r) = @_;
	return { mean => -1, grad => -1 } unless $img->{y};
	my ($w, $h) = ($img->{w}, $img->{h});
	my ($x0, $y0, $x1, $y1) = (int($r->[0] * $w) + 8, int($r->[1] * $h) + 8, int($r->[2] * $w) - 8, int($r->[3] * $h) - 8);
	my ($sum, $n, $g, $gn) = (0, 0, 0, 0);
	for my $y ($y0 .. $y1)
	{
		my @row = unpack('C*', substr($img->{y}, $y * $w + $x0, $x1 - $x0 + 1));
		$sum += $_ for @row;
		$n += @row;
		for my $i (1 .. $#row) { $g += abs($row[$i] - $row[ $i - 1 ]); $gn++; }
	}
	return { mean => $sum / $n, grad => $gn ? $g / $gn : 0 };
}

# Common checks of a finished package.
sub package_files_ok
{
	my ($r, $what, @want) = @_;
	is($r->{rc}, 0, "$what: vms-export exit 0") or diag("stderr: $r->{err}");
	ok($r->{dir} && -d $r->{dir}, "$what: the package directory is printed and exists ($r->{dir})")
	  or return 0;
	is_deeply([ ls_dir($r->{dir}) ], [ sort(@want) ], "$what: the package holds exactly " . join(', ', sort @want));
	return 1;
}

# ============================================================================
# 0. Usage
# ============================================================================
{
	my $r = run_tool($export_bin, '--help');
	is($r->{rc}, 0, 'vms-export --help: exit 0');
	like($r->{out} . $r->{err}, qr/--passphrase-file/, '--help lists the options');
	$r = run_tool($export_bin, '--version');
	like($r->{out}, qr/vms-export.*1\.5\.0/, 'vms-export --version: 1.5.0');
	$r = run_tool($export_bin, '--camera', $cam, '--bogus');
	is($r->{rc}, 1, 'vms-export: an unknown option is a usage error, exit 1');
	$r = run_tool($verify_bin, '--help');
	is($r->{rc}, 0, 'vms-verify --help: exit 0');
	$r = run_tool($verify_bin, '--ca-file', $pki->{ca});
	is($r->{rc}, 1, 'vms-verify without a package: usage, exit 1');
}

# ============================================================================
# 1. Round trip: CA-issued signer, passphrase, timestamp
# ============================================================================
my $out1 = "$base/out1";
# (The database refuses control characters in a reason; quotes, a backslash
# and UTF-8 must come through.)
my $reason_a = "Incident 2026-117: \"gate\" \\ Z\xc3\xbcrich";
my $A = export('alice', out => $out1, from => $S[0]{from}, to => $S[1]{to}, reason => $reason_a);
my $pa = $A->{dir};
package_files_ok($A, 'round trip', qw(video.mp4 manifest.json SHA256SUMS manifest.json.p7s))
  or BAIL_OUT('the first export failed: nothing else can be checked');
is_deeply([ ls_dir($out1) ], [ "export-$A->{id}" ], 'nothing else in --out (no .partial left)');

my $mtext = slurp("$pa/manifest.json");
my $m = manifest($pa);
my @keys = $mtext =~ /^  "([a-z_]+)":/mg;
is_deeply(\@keys, [qw(format export_id kind camera from to exported_by session_user reason profile created_at tool
		  segments masks lifts holds output encryption)], 'manifest.json: the top-level keys in the contract\'s order, two-space indent');
like($mtext, qr/\n\z/, 'manifest.json ends with a newline');
like($mtext, qr/"reason": "Incident 2026-117: \\"gate\\" \\\\ Z(\xc3\xbc|\\u00fc)rich"/, 'the reason is escaped per RFC 8259 (\\", \\\\, UTF-8)');
is($m->{reason}, Encode::decode_utf8($reason_a), 'the reason as given');
is($m->{format}, 'pg_vms-evidence/1', 'format pg_vms-evidence/1');
is($m->{export_id}, $A->{id}, 'export_id is the register id');
is($m->{kind}, 'video', 'kind video');
is_deeply($m->{camera}, { id => $cam + 0, name => 'Gate "North" / Yard' }, 'camera id and name');
is("$m->{from} $m->{to}", "$S[0]{from} $S[1]{to}", 'from and to as asked (UTC, ms, Z)');
is("$m->{exported_by} $m->{session_user} $m->{profile}", 'alice alice court', 'exported_by, session_user, profile');
like($m->{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'created_at is UTC with ms');
is_deeply($m->{tool}, { name => 'vms-export', version => '1.5.0' }, 'tool vms-export 1.5.0');
is_deeply([ map { "$_->{id} $_->{start} $_->{end} $_->{bytes} $_->{sha256}" } @{ $m->{segments} // [] } ],
	[ map { "$_->{id} $_->{from} $_->{to} $_->{bytes} $_->{sha256}" } @S[ 0, 1 ] ],
	'segments: the two indexed segments of the range, with their times, sizes and SHA-256');
is_deeply([ $m->{masks}, $m->{lifts}, $m->{holds}, $m->{encryption} ], [ [], [], [], undef ], 'no masks, lifts, holds; not encrypted');
my $vsha = sha_file("$pa/video.mp4");
is_deeply($m->{output}, { file => 'video.mp4', bytes => -s "$pa/video.mp4", sha256 => $vsha }, 'output: video.mp4 with its size and SHA-256');
is(slurp("$pa/SHA256SUMS"), "$vsha  video.mp4\n", 'SHA256SUMS: one line, sha256sum format');

my $reg = register_row($A->{id});
is_deeply([ @$reg{qw(state segments requested_by kind timestamped encrypted)} ], [ 'finished', 2, 'alice', 'video', 'f', '' ],
	'register: finished, 2 segments, by alice, video, not timestamped, not encrypted');
is_deeply([ @$reg{qw(manifest_sha256 output_sha256 signer_sha256)} ],
	[ sha_file("$pa/manifest.json"), $vsha, der_sha256($pki->{signer}) ],
	'register: the manifest\'s and the output\'s SHA-256, the signer certificate\'s');
like(query("SELECT signer_subject FROM vms.exports WHERE id = " . ($A->{id} // 0)), qr/CN\s*=\s*\Q@{[ subject_cn($pki->{signer}) ]}\E/,
	'register: the signer\'s subject');
ok(wait_for_audit($node, "action = 'export_begin' AND actor = 'alice' AND outcome = 'ok' AND camera_id = $cam"),
	'audited: export_begin (ok)');
ok(wait_for_audit($node, "action = 'export_finish' AND actor = 'alice' AND outcome = 'ok' AND camera_id = $cam "
		  . "AND details::text LIKE '%" . sha_file("$pa/manifest.json") . "%'"),
	'audited: export_finish (ok) with the manifest hash');

# vms-verify
my $V = verify('--ca-file', $pki->{ca}, $pa);
is($V->{rc}, 0, 'vms-verify: exit 0');
my $vout = $V->{out} . $V->{err};
like($vout, qr/\b$A->{id}\b/, 'vms-verify prints the export id');
like($vout, qr/Gate "North" \/ Yard/, '... the camera name');
like($vout, qr/alice/, '... who exported');
like($vout, qr/Incident 2026-117/, '... why');
like($vout, qr/Export Station 1/, '... the signer');
# The stock tools
my $c = ossl('cms', '-verify', '-binary', '-inform', 'DER', '-in', "$pa/manifest.json.p7s", '-content', "$pa/manifest.json",
	'-CAfile', $pki->{ca}, '-out', '/dev/null');
ok($c->{rc} == 0 && $c->{err} =~ /Verification successful/, 'openssl cms -verify: CMS Verification successful') or diag $c->{err};
$c = ossl('cms', '-cmsout', '-print', '-inform', 'DER', '-in', "$pa/manifest.json.p7s");
like($c->{out}, qr/eContent: <ABSENT>/, 'the signature is detached');
like($c->{out}, qr/algorithm: sha256/, 'SHA-256 digest');
like($c->{out}, qr/signingCertificateV2|id-smime-aa-signingCertificateV2/i, 'CAdES-BES: the signing-certificate-v2 attribute');
like($c->{out}, qr/pg_vms test CA.*Export Station 1|Export Station 1.*pg_vms test CA/s, 'the signer certificate and the chain are included');
$c = sh('sha256sum -c SHA256SUMS', $pa);
ok($c->{rc} == 0 && $c->{out} =~ /^video\.mp4: OK$/m, 'sha256sum -c SHA256SUMS: video.mp4: OK');
# The MP4
my $pr = probe("$pa/video.mp4", count => 1);
is(join(' ', map { $pr->{$_} // '?' } qw(codec width height)), 'h264 1280 720', 'video.mp4: H.264 1280x720 (as recorded)');
like($pr->{format} // '', qr/mp4/, 'an MP4 container');
ok(abs(($pr->{duration} // 0) - 20) < 0.5, "duration $pr->{duration} s for a 20 s range");
is($pr->{frames}, 500, 'every frame of 20 s at 25 fps is there');
{
	my ($o, $e) = ('', '');
	IPC::Run::run([ 'ffmpeg', '-v', 'error', '-nostdin', '-i', "$pa/video.mp4", '-f', 'null', '-' ], '<', \'', '>', \$o, '2>', \$e);
	is($e, '', 'ffmpeg decodes the whole MP4 without an error');
}
# Without masks the H.264 is remuxed, not re-encoded: the first second
# decodes to exactly the recorded pictures (a re-encode, however good, would
# change them).
{
	my ($a, $b, $e) = ('', '', '');
	IPC::Run::run([ 'ffmpeg', '-v', 'error', '-nostdin', '-i', "$pa/video.mp4", '-frames:v', '25', '-f', 'framemd5', '-' ],
		'<', \'', '>', \$a, '2>', \$e);
	IPC::Run::run([ 'ffmpeg', '-v', 'error', '-nostdin', '-i', "$root/$S[0]{path}", '-frames:v', '25', '-f', 'framemd5', '-' ],
		'<', \'', '>', \$b, '2>', \$e);
	my @ha = map { (split /,\s*/)[-1] } grep { !/^#/ } split /\n/, $a;
	my @hb = map { (split /,\s*/)[-1] } grep { !/^#/ } split /\n/, $b;
	my $same = grep { defined $hb[$_] && $ha[$_] eq $hb[$_] } 0 .. $#ha;
	ok(@ha == 25 && $same == 25, "remuxed without re-encoding: $same of the first 25 decoded frames are the recorded ones");
}

# A range inside a segment is cut to it (to the keyframe before its start at most: GOP 2 s).
{
	my $r = export('alice', out => "$base/out1b", from => iso($S[1]{start} + 3), to => iso($S[1]{start} + 9), pass => $pki->{passphrase_file});
	is($r->{rc}, 0, 'a 6 s range inside a segment: exit 0');
	my $d = probe(($r->{dir} // '') . '/video.mp4')->{duration} // 0;
	ok($d >= 5.8 && $d <= 8.2, "its MP4 lasts $d s: the range, give or take the keyframe before it");
}

# ============================================================================
# 1b. Timestamp (the profile's TSA)
# ============================================================================
my $tsa_before = tsa_requests();
my $T = export('alice', out => "$base/out-ts", from => $S[2]{from}, to => $S[2]{to}, profile => 'stamped');
my $pt = $T->{dir} // "$base/none";
package_files_ok($T, 'timestamped', qw(video.mp4 manifest.json SHA256SUMS manifest.json.p7s manifest.json.p7s.tsr));
is(tsa_requests(), $tsa_before + 1, 'the profile\'s TSA was asked once (POST application/timestamp-query)');
is(register_row($T->{id})->{timestamped}, 't', 'register: timestamped');
$V = verify('--ca-file', $pki->{ca}, '--tsa-ca-file', $pki->{tsa_ca}, $pt);
is($V->{rc}, 0, 'timestamped: vms-verify --tsa-ca-file: exit 0');
like($V->{out} . $V->{err}, qr/time ?stamp.*\d{4}-\d\d-\d\d|\d{4}-\d\d-\d\d.*time ?stamp/i, '... prints the timestamp\'s time');
my $Vq = verify('--ca-file', $pki->{ca}, $pt);
is($Vq->{rc}, 2, 'without --tsa-ca-file the timestamp is checked against --ca-file: exit 2 (another CA issued the TSA)');
like($Vq->{out} . $Vq->{err}, qr/^(vms-verify: )?timestamp\b/mi, '... and the message says the timestamp failed');
$c = ossl('ts', '-verify', '-data', "$pt/manifest.json.p7s", '-in', "$pt/manifest.json.p7s.tsr", '-CAfile', $pki->{tsa_ca});
ok($c->{rc} == 0 && $c->{out} =~ /Verification: OK/, 'openssl ts -verify over manifest.json.p7s: OK') or diag "$c->{out}$c->{err}";
$c = ossl('ts', '-reply', '-in', "$pt/manifest.json.p7s.tsr", '-text');
like($c->{out}, qr/Hash Algorithm: sha256/, 'the timestamp\'s imprint is SHA-256');
like($c->{out}, qr/Status: Granted/, 'the TSA granted it');
like($c->{out}, qr/Nonce: 0x/i, 'the request carried a nonce');
{
	my $d = copy_package($pt, 'timestamp byte flipped');
	flip_byte("$d/manifest.json.p7s.tsr", -3);
	my $r = verify('--ca-file', $pki->{ca}, '--tsa-ca-file', $pki->{tsa_ca}, $d);
	is($r->{rc}, 2, 'timestamp byte flipped: vms-verify exit 2');
	like($r->{out} . $r->{err}, qr/^(vms-verify: )?timestamp\b.*\S/mi, 'timestamp byte flipped: a "timestamp: ..." message');
	$c = ossl('ts', '-verify', '-data', "$d/manifest.json.p7s", '-in', "$d/manifest.json.p7s.tsr", '-CAfile', $pki->{tsa_ca});
	isnt($c->{rc}, 0, 'timestamp byte flipped: openssl ts -verify fails');
}
{
	# --tsa-url overrides; a TSA that does not answer: exit 4, nothing left.
	my $dead = 'http://127.0.0.1:' . free_port() . '/';
	my $o = "$base/out-ts-dead";
	my $r = export('alice', out => $o, from => $S[2]{from}, to => $S[2]{to}, profile => 'stamped', args => [ '--tsa-url', $dead ]);
	is($r->{rc}, 4, '--tsa-url of a TSA that does not answer: exit 4');
	like($r->{err}, qr/^vms-export: .*timestamp/mi, '... a "timestamp" message');
	is_deeply([ ls_dir($o) ], [], '... nothing written');
}

# ============================================================================
# 2. Self-issued certificate; untrusted; expired; signing refusals
# ============================================================================
my $B = export('alice', out => "$base/out2", from => $S[2]{from}, to => $S[2]{to}, profile => 'self',
	key => $pki->{self_key}, pass => undef);
package_files_ok($B, 'self-issued profile', qw(video.mp4 manifest.json SHA256SUMS manifest.json.p7s));
my $pb = $B->{dir} // "$base/none";
$V = verify('--ca-file', $pki->{self}, $pb);
is($V->{rc}, 0, 'self-issued: vms-verify with the certificate itself as the trust anchor: exit 0');
$c = ossl('cms', '-verify', '-binary', '-inform', 'DER', '-in', "$pb/manifest.json.p7s", '-content', "$pb/manifest.json",
	'-CAfile', $pki->{self}, '-out', '/dev/null');
is($c->{rc}, 0, 'self-issued: openssl cms -verify -CAfile self.pem succeeds');
is(register_row($B->{id})->{signer_sha256}, der_sha256($pki->{self}), 'self-issued: the register names its certificate');
$V = verify('--ca-file', $pki->{ca}, $pb);
is($V->{rc}, 2, 'self-issued against the test CA: exit 2');
like($V->{out} . $V->{err}, qr/^(vms-verify: )?signer certificate: self[- ]signed certificate$/m,
	'self-issued against the test CA: "signer certificate: self-signed certificate"');
$c = ossl('cms', '-verify', '-binary', '-inform', 'DER', '-in', "$pb/manifest.json.p7s", '-content', "$pb/manifest.json",
	'-CAfile', $pki->{ca}, '-out', '/dev/null');
isnt($c->{rc}, 0, 'openssl cms -verify against the test CA fails too');
$V = verify('--ca-file', $pki->{other_ca}, $pa);
is($V->{rc}, 2, 'a CA-issued package against another CA: exit 2');
like($V->{out} . $V->{err}, qr/^(vms-verify: )?signer certificate: (unable to get local issuer certificate|self[- ]signed certificate in certificate chain)$/m,
	'... "signer certificate: unable to get local issuer certificate" (untrusted)');

my $E = export('alice', out => "$base/out3", from => $S[2]{from}, to => $S[2]{to}, profile => 'old',
	key => $pki->{expired_key}, pass => undef);
is($E->{rc}, 0, 'the expired signer still signs (vms-export: exit 0); the receiver must refuse it');
if ($E->{dir})
{
	$V = verify('--ca-file', $pki->{ca}, $E->{dir});
	is($V->{rc}, 2, 'expired signer: vms-verify exit 2');
	like($V->{out} . $V->{err}, qr/^(vms-verify: )?signer certificate: certificate has expired$/m,
		'expired signer: "signer certificate: certificate has expired"');
	$c = ossl('cms', '-verify', '-binary', '-inform', 'DER', '-in', "$E->{dir}/manifest.json.p7s", '-content',
		"$E->{dir}/manifest.json", '-CAfile', $pki->{ca}, '-out', '/dev/null');
	like($c->{err}, qr/certificate has expired/, 'openssl cms -verify: certificate has expired');
}
else
{
	fail('expired signer: no package to verify') for 1 .. 3;
}

# Signing refusals: nothing is written.
{
	my $o = "$base/out-refused-key";
	my $r = export('alice', out => $o, from => $S[2]{from}, to => $S[2]{to}, key => $pki->{signer_plain_key}, pass => undef);
	ok($r->{rc} != 0 && $r->{rc} ne 'timeout', "an unencrypted key for a profile that needs a passphrase: refused (exit $r->{rc})");
	like($r->{err}, qr/^vms-export: .*passphrase/mi, '... the message says the key needs a passphrase');
	is_deeply([ ls_dir($o) ], [], '... and nothing is written');
	{
		my $open_pass = write_file("$base/open.pass", slurp($pki->{passphrase_file}), 0644);
		my $r2 = export('alice', out => $o, from => $S[2]{from}, to => $S[2]{to}, pass => $open_pass);
		ok($r2->{rc} != 0 && $r2->{err} =~ /^vms-export: .*group or world access/m,
			"a passphrase file others may read: refused (exit $r2->{rc})");
		my $two = write_file("$base/two-lines.pass", slurp($pki->{passphrase_file}) . "second line\n", 0600);
		$r2 = export('alice', out => $o, from => $S[2]{from}, to => $S[2]{to}, pass => $two);
		ok($r2->{rc} != 0 && $r2->{err} =~ /^vms-export: .*more than one line/m,
			"a passphrase file of two lines: refused (exit $r2->{rc})");
		is_deeply([ ls_dir($o) ], [], '... nothing written');
	}
	$r = export('alice', out => $o, from => $S[2]{from}, to => $S[2]{to}, pass => $wrong_pass_file);
	is($r->{rc}, 4, 'a wrong passphrase: exit 4');
	like($r->{err}, qr/^vms-export: .*(passphrase|decrypt|key)/mi, '... a message about the key');
	is_deeply([ ls_dir($o) ], [], '... nothing written');
	$r = export('alice', out => $o, from => $S[2]{from}, to => $S[2]{to}, key => $pki->{r2_key}, pass => undef,
		profile => 'self');
	ok($r->{rc} != 0 && $r->{rc} ne 'timeout', "a key that is not the profile certificate's: refused (exit $r->{rc})");
	like($r->{err}, qr/^vms-export: .*(match|certificate)/mi, '... the message says the key does not match');
	is_deeply([ ls_dir($o) ], [], '... nothing written');
}

# The package's place already taken (an --out reused across databases): the
# export fails before the register says finished, and the directory there is
# left alone.
{
	my $o = "$base/out-taken";
	my $next = query("SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM vms.exports_id_seq");
	make_path("$o/export-$next");
	write_file("$o/export-$next/keep.txt", "not ours\n");
	my $r = export('alice', out => $o, from => $S[2]{from}, to => $S[2]{to}, pass => $pki->{passphrase_file});
	is($r->{rc}, 4, 'export-<id> already in --out: exit 4');
	like($r->{err}, qr/^vms-export: .*already exists/m, '... "already exists"');
	is_deeply([ ls_dir($o) ], [ "export-$next" ], '... no partial directory left');
	is(slurp("$o/export-$next/keep.txt"), "not ours\n", '... and the directory there is untouched');
	is(register_row($next)->{state}, 'failed', '... and the register says failed, not finished');
}

# ============================================================================
# 3. Tampering (copies of the round-trip package)
# ============================================================================
sub tamper_case
{
	my ($name, $change, $want_rc, $msg) = @_;
	my $d = copy_package($pa, $name);
	$change->($d);
	my $r = verify('--ca-file', $pki->{ca}, $d);
	is($r->{rc}, $want_rc, "$name: vms-verify exit $want_rc");
	like($r->{out} . $r->{err}, $msg, "$name: the message is precise ($msg)");
	return $d;
}
my $d = tamper_case('video byte flipped', sub { flip_byte("$_[0]/video.mp4", int((-s "$_[0]/video.mp4") / 2)) }, 2,
	qr/^(vms-verify: )?video\.mp4: SHA-256 differs from the manifest$/m);
$c = sh('sha256sum -c SHA256SUMS', $d);
ok($c->{rc} != 0 && $c->{out} =~ /video\.mp4: FAILED/, 'video byte flipped: sha256sum -c says FAILED');

# A bit of the reason flipped: still valid JSON, no longer what was signed.
$d = tamper_case('manifest byte flipped', sub {
		my $t = slurp("$_[0]/manifest.json");
		my $at = index($t, 'Incident 2026-117');
		flip_byte("$_[0]/manifest.json", $at + 1, 0x20);    # "Incident" -> "iNcident"... one letter's case
	}, 2, qr/^(vms-verify: )?signature: the manifest was altered after signing$/m);
$c = ossl('cms', '-verify', '-binary', '-inform', 'DER', '-in', "$d/manifest.json.p7s", '-content', "$d/manifest.json",
	'-CAfile', $pki->{ca}, '-out', '/dev/null');
isnt($c->{rc}, 0, 'manifest byte flipped: openssl cms -verify fails');
like($c->{err}, qr/digest failure|content verify error/i, '... with a digest failure');

# Re-signed by the real signer key, but without signed attributes (so no
# CAdES signing-certificate attribute), or with SHA-1: both refused, though
# the chain is good.
for my $case ([ 'no signed attributes', [ '-md', 'sha256', '-noattr' ], qr/^(vms-verify: )?signature: no signed attributes/m ],
	[ 'SHA-1 digest', [ '-md', 'sha1' ], qr/^(vms-verify: )?signature: the digest is not SHA-256$/m ])
{
	my ($name, $args, $msg) = @$case;
	tamper_case("re-signed, $name", sub {
			my $r = ossl('cms', '-sign', '-binary', '-outform', 'DER', '-in', "$_[0]/manifest.json", '-signer', $pki->{signer},
				'-inkey', $pki->{signer_plain_key}, @$args, '-out', "$_[0]/manifest.json.p7s");
			die "openssl cms -sign failed: $r->{err}" if $r->{rc} != 0;
		}, 2, $msg);
}

# The last byte of the DER is in the signature value (ECDSA s).
$d = tamper_case('signature value byte flipped', sub { flip_byte("$_[0]/manifest.json.p7s", -1) }, 2,
	qr/^(vms-verify: )?signature: \S/m);
$c = ossl('cms', '-verify', '-binary', '-inform', 'DER', '-in', "$d/manifest.json.p7s", '-content', "$d/manifest.json",
	'-CAfile', $pki->{ca}, '-out', '/dev/null');
isnt($c->{rc}, 0, 'signature value byte flipped: openssl cms -verify fails');
tamper_case('signature header byte flipped', sub { flip_byte("$_[0]/manifest.json.p7s", 0, 0xff) }, 2,
	qr/^(vms-verify: )?signature: not a CMS signature$/m);
tamper_case('extra payload file', sub { write_file("$_[0]/video2.mp4", 'x' x 100) }, 2, qr/video2\.mp4/);
tamper_case('signature removed', sub { unlink "$_[0]/manifest.json.p7s" }, 2, qr/manifest\.json\.p7s/);
tamper_case('SHA256SUMS disagrees', sub { write_file("$_[0]/SHA256SUMS", ('0' x 64) . "  video.mp4\n") }, 2,
	qr/SHA256SUMS/);

# ============================================================================
# 4. Encryption
# ============================================================================
my $out4 = "$base/out4";
my $R = export('alice', out => $out4, from => $S[1]{from}, to => $S[1]{to},
	args => [ '--recipient', $pki->{r1}, '--chunk-size', 1048576 ]);
my $pr_ = $R->{dir} // "$base/none";
my $mr = manifest($pr_);
my @chunks = grep { /^video\.mp4\.\d{4}\.p7m$/ } ls_dir($pr_);
is($R->{rc}, 0, 'encrypted for recipient 1 (RSA), 1 MiB chunks: exit 0');
ok(@chunks >= 2, scalar(@chunks) . ' chunks video.mp4.NNNN.p7m');
is_deeply([ ls_dir($pr_) ], [ sort(qw(manifest.json SHA256SUMS manifest.json.p7s), @chunks) ],
	'no plaintext video.mp4 in the package, only the chunks');
is_deeply([ map { $_->{file} } @{ $mr->{encryption}{chunks} // [] } ], [ map { sprintf 'video.mp4.%04d.p7m', $_ } 1 .. @chunks ],
	'the manifest lists the chunks from 0001, in order');
is($mr->{encryption}{scheme} // '', 'cms-authenveloped-aes-256-gcm', 'scheme cms-authenveloped-aes-256-gcm');
ok(ref $mr->{encryption}{recipients} eq 'ARRAY' && @{ $mr->{encryption}{recipients} } == 1
	  && $mr->{encryption}{recipients}[0] =~ /Police Evidence Unit/, 'recipients: the subject of recipient 1')
  or diag explain $mr->{encryption};
ok(!grep({ ($_->{plain_bytes} // 0) > 1048576 } @{ $mr->{encryption}{chunks} // [] }), 'no chunk holds more than --chunk-size of plaintext');
is(slurp("$pr_/SHA256SUMS"), join('', map { sha_file("$pr_/$_") . "  $_\n" } @chunks), 'SHA256SUMS lists each chunk');
$c = sh('sha256sum -c SHA256SUMS', $pr_);
is($c->{rc}, 0, 'sha256sum -c SHA256SUMS: every chunk OK');
$c = ossl('cms', '-cmsout', '-print', '-inform', 'DER', '-in', "$pr_/$chunks[0]") if @chunks;
like($c->{out}, qr/id-smime-ct-authEnvelopedData|authEnvelopedData/i, 'a chunk is CMS AuthEnvelopedData');
like($c->{out}, qr/aes-256-gcm|id-aes256-GCM/i, '... AES-256-GCM');
is(register_row($R->{id})->{encrypted}, 'recipients', 'register: encrypted = recipients');

$V = verify('--ca-file', $pki->{ca}, $pr_);
is($V->{rc}, 0, 'vms-verify without a key checks the encrypted package: exit 0');
my $dec = "$base/decrypted-r1.mp4";
$V = verify('--ca-file', $pki->{ca}, '--key', $pki->{r1_key}, '--cert', $pki->{r1}, '--decrypt-to', $dec, $pr_);
is($V->{rc}, 0, 'vms-verify --key --cert (recipient 1) --decrypt-to: exit 0');
is(-e $dec ? sha_file($dec) : 'missing', $mr->{output}{sha256} // 'none', 'the decrypted MP4\'s SHA-256 is the manifest\'s output hash');
my $osl_dec = "$base/openssl-r1.mp4";
$c = sh(join(' ', 'for c in', map({ "'$pr_/$_'" } @chunks),
		"; do openssl cms -decrypt -binary -inform DER -in \"\$c\" -recip '$pki->{r1}' -inkey '$pki->{r1_key}' || exit 1; done > '$osl_dec'"));
is($c->{rc}, 0, 'openssl cms -decrypt -recip of each chunk, in order: success') or diag $c->{err};
is(-e $osl_dec ? sha_file($osl_dec) : 'x', -e $dec ? sha_file($dec) : 'y', 'openssl\'s decryption is the identical MP4');
ok(abs((probe($dec)->{duration} // 0) - 10) < 0.5, 'the decrypted MP4 plays: 10 s');

my $wrong_dec = "$base/decrypted-wrong.mp4";
$V = verify('--ca-file', $pki->{ca}, '--key', $pki->{r2_key}, '--cert', $pki->{r2}, '--decrypt-to', $wrong_dec, $pr_);
is($V->{rc}, 3, 'a wrong recipient (recipient 2): exit 3');
like($V->{out} . $V->{err}, qr/^(vms-verify: )?decrypt: no recipient in the package matches this key$/m,
	'... "decrypt: no recipient in the package matches this key"');
ok(!-e $wrong_dec && !-e "$wrong_dec.partial", '... and no output (nor .partial) is left');
$c = ossl('cms', '-decrypt', '-binary', '-inform', 'DER', '-in', "$pr_/$chunks[0]", '-recip', $pki->{r2}, '-inkey', $pki->{r2_key},
	'-out', "$base/openssl-wrong.bin") if @chunks;
isnt($c->{rc}, 0, 'openssl cms -decrypt with recipient 2 fails too');

# A file already where the partial output would go (another run's, or a
# link to someone's file) is neither written nor removed.
{
	my $target = "$base/decrypted-busy.mp4";
	write_file("$target.partial", "someone else's bytes\n");
	my $r = verify('--ca-file', $pki->{ca}, '--key', $pki->{r1_key}, '--cert', $pki->{r1}, '--decrypt-to', $target, $pr_);
	is($r->{rc}, 3, 'an existing <target>.partial: exit 3');
	like($r->{out} . $r->{err}, qr/already exists/, '... saying it exists');
	is(slurp("$target.partial"), "someone else's bytes\n", '... and that file is untouched');
	ok(!-e $target, '... and no output');
}

# A flipped byte inside a chunk: the hash check says so; decryption leaves nothing.
{
	my $t = copy_package($pr_, 'chunk byte flipped');
	flip_byte("$t/$chunks[-1]", -20) if @chunks;
	my $r = verify('--ca-file', $pki->{ca}, $t);
	is($r->{rc}, 2, 'a chunk byte flipped: exit 2');
	like($r->{out} . $r->{err}, qr/^(vms-verify: )?\Q$chunks[-1]\E: SHA-256 differs from the manifest$/m, '... "<chunk>: SHA-256 differs from the manifest"');
}

# Password (PWRI)
my $P = export('alice', out => "$base/out5", from => $S[2]{from}, to => $S[2]{to}, args => [ '--password-file', $password_file ]);
my $pp = $P->{dir} // "$base/none";
my $mp = manifest($pp);
is($P->{rc}, 0, 'encrypted with a password (--password-file): exit 0');
is($mp->{encryption}{recipients} // '', 'password', 'manifest: recipients "password"');
is(register_row($P->{id})->{encrypted}, 'password', 'register: encrypted = password');
my @pchunks = grep { /\.p7m$/ } ls_dir($pp);
$c = ossl('cms', '-cmsout', '-print', '-inform', 'DER', '-in', "$pp/$pchunks[0]") if @pchunks;
# (openssl cms -print shows the INTEGER in hex: 0x0927C0 = 600000)
like($c->{out}, qr/(?:\b600000\b|:0?927C0\b)/i, 'PWRI: PBKDF2 with 600000 iterations');
like($c->{out}, qr/aes-256-cbc/i, '... key encryption AES-256-CBC');
$dec = "$base/decrypted-pw.mp4";
$V = verify('--ca-file', $pki->{ca}, '--password-file', $password_file, '--decrypt-to', $dec, $pp);
is($V->{rc}, 0, 'vms-verify --password-file: exit 0');
is(-e $dec ? sha_file($dec) : 'missing', $mp->{output}{sha256} // 'none', 'the decrypted MP4 is the manifest\'s output');
$osl_dec = "$base/openssl-pw.mp4";
{
	my ($o, $e) = ('', '');
	my $ok = 1;
	open my $fh, '>:raw', $osl_dec or die;
	for my $ch (@pchunks)
	{
		IPC::Run::run([ 'openssl', 'cms', '-decrypt', '-binary', '-inform', 'DER', '-in', "$pp/$ch", '-pwri_password', $password ],
			'<', \'', '>', \$o, '2>', \$e) or $ok = 0;
		print $fh $o;
	}
	close $fh;
	ok($ok && @pchunks, 'openssl cms -decrypt -pwri_password of each chunk: success') or diag $e;
	is(sha_file($osl_dec), -e $dec ? sha_file($dec) : 'x', '... the identical MP4');
}
$wrong_dec = "$base/decrypted-wrongpw.mp4";
$V = verify('--ca-file', $pki->{ca}, '--password-file', $wrong_password_file, '--decrypt-to', $wrong_dec, $pp);
is($V->{rc}, 3, 'a wrong password: exit 3');
like($V->{out} . $V->{err}, qr/^(vms-verify: )?decrypt: \S/m, '... a "decrypt: ..." message');
ok(!-e $wrong_dec && !-e "$wrong_dec.partial", '... and nothing left behind');

# A profile that requires encryption
{
	my $o = "$base/out-sealed";
	my $r = export('alice', out => $o, from => $S[3]{from}, to => $S[3]{to}, profile => 'sealed');
	ok($r->{rc} != 0 && $r->{rc} ne 'timeout', "profile sealed (encryption required), no recipient: refused (exit $r->{rc})");
	like($r->{err}, qr/^vms-export: .*encrypt/mi, '... the message says encryption is required');
	is_deeply([ ls_dir($o) ], [], '... nothing written');
	is(query("SELECT count(*) FROM vms.exports WHERE profile = 'sealed' AND state = 'finished'"), '0', '... no finished export in the register');
	$r = export('alice', out => $o, from => $S[3]{from}, to => $S[3]{to}, profile => 'sealed',
		args => [ '--recipient', $pki->{r1}, '--recipient', $pki->{r2} ]);
	is($r->{rc}, 0, 'profile sealed with recipients 1 (RSA) and 2 (EC): exit 0');
	my $ms = manifest($r->{dir} // "$base/none");
	is(scalar(@{ ref $ms->{encryption}{recipients} ? $ms->{encryption}{recipients} : [] }), 2, '... both recipients in the manifest');
	my @sc = grep { /\.p7m$/ } ls_dir($r->{dir} // "$base/none");
	my $plain = "$base/openssl-r2.mp4";
	$c = sh(join(' ', 'for c in', map({ "'$r->{dir}/$_'" } @sc),
			"; do openssl cms -decrypt -binary -inform DER -in \"\$c\" -recip '$pki->{r2}' -inkey '$pki->{r2_key}' || exit 1; done > '$plain'"));
	ok($c->{rc} == 0 && @sc, 'recipient 2 (EC key agreement) decrypts with openssl cms -decrypt') or diag $c->{err};
	is(sha_file($plain), $ms->{output}{sha256} // '', '... to the manifest\'s output');
}

# ============================================================================
# 5. A segment file changed on disk before the export
# ============================================================================
{
	my $victim = "$root/$S[3]{path}";
	move($victim, "$victim.orig") or die;
	copy("$root/$S[2]{path}", $victim) or die;
	my $o = "$base/out-swapped";
	my $before = query('SELECT coalesce(max(id), 0) FROM vms.exports');
	my $r = export('alice', out => $o, from => $S[3]{from}, to => $S[3]{to});
	is($r->{rc}, 3, 'a swapped segment file: exit 3');
	like($r->{err}, qr/^vms-export: .*segment $S[3]{id} \(\Q$S[3]{path}\E\): SHA-256 differs from the index/m,
		'... "segment N (path): SHA-256 differs from the index"');
	is_deeply([ ls_dir($o) ], [], '... nothing written (no package, no .partial)');
	my $row = query("SELECT id || ' ' || state || ' ' || requested_by FROM vms.exports WHERE id > $before ORDER BY id");
	like($row, qr/^\d+ failed alice$/, '... the register row is failed');
	my ($fid) = $row =~ /^(\d+)/;
	like(register_row($fid)->{failure}, qr/segment $S[3]{id}.*SHA-256 differs/, '... with the reason');
	ok(wait_for_audit($node, "action = 'export_fail' AND actor = 'alice' AND outcome = 'error' AND camera_id = $cam"),
		'... export_fail audited with outcome error');
	unlink $victim;
	$r = export('alice', out => $o, from => $S[3]{from}, to => $S[3]{to});
	is($r->{rc}, 3, 'a missing segment file: exit 3');
	like($r->{err}, qr/^vms-export: .*segment $S[3]{id}\b/m, '... the message names the segment');
	is_deeply([ ls_dir($o) ], [], '... nothing written');
	move("$victim.orig", $victim) or die;
}

# ============================================================================
# 6. Refusals by the database
# ============================================================================
sub refused
{
	my ($what, $user, $msg, %o) = @_;
	my $o = "$base/out-refused-$user-" . ++$run_no;
	my $outcome = $o{outcome} // 'denied';
	delete $o{outcome};
	my $before = audit_count("action = 'export_begin' AND actor = '$user' AND outcome = '$outcome'");
	my $r = export($user, out => $o, from => $o{from} // $S[0]{from}, to => $o{to} // $S[0]{to}, %o);
	is($r->{rc}, 2, "$what: exit 2");
	like($r->{err}, $msg, "$what: the message says why");
	is_deeply([ ls_dir($o) ], [], "$what: no package directory");
	ok(wait_for_audit($node, "action = 'export_begin' AND actor = '$user' AND outcome = '$outcome'", $before + 1),
		"$what: audited (export_begin, outcome $outcome)");
	is(query("SELECT count(*) FROM vms.exports WHERE requested_by = '$user'"), $o{register} // '0', "$what: nothing in the register");
	return $r;
}
refused('bob (no export permission)', 'bob', qr/^vms-export: .*(permission|export)/mi);
refused('carol (range before her 30-minute window)', 'carol', qr/^vms-export: .*window/mi);
refused('frank (snapshot without the snapshot permission)', 'frank', qr/^vms-export: .*snapshot/mi,
	args => [ '--snapshot-at', iso($S[0]{start} + 5) ]);

# ============================================================================
# 7. Privacy masks, lifts, the pixels
# ============================================================================
# Zones over static parts of testsrc2: the yellow bar (window), the cyan bar
# (door), the moving checkerboard (screen).
my %zone = (
	window => [ 0.35, 0.08, 0.48, 0.40 ],
	door => [ 0.86, 0.30, 0.98, 0.55 ],
	screen => [ 0.64, 0.64, 0.85, 0.85 ],
);
sub rect_points { my ($r) = @_; return "[[$r->[0],$r->[1]],[$r->[2],$r->[1]],[$r->[2],$r->[3]],[$r->[0],$r->[3]]]"; }
my $zw = query("SELECT vms.add_privacy_zone($cam, 'window', '" . rect_points($zone{window}) . "', 'black', false)");
my $zd = query("SELECT vms.add_privacy_zone($cam, 'door', '" . rect_points($zone{door}) . "', 'black', true)");
my $zs = query("SELECT vms.add_privacy_zone($cam, 'screen', '" . rect_points($zone{screen}) . "', 'blur', false)");
query("SELECT vms.set_privacy_lift_policy($cam, true)");

my ($ok, $o, $e) = user_sql('dave', "SELECT vms.lift_privacy_mask($cam, 'Door camera needed for incident 2026-117', '30 minutes', $zd)");
ok($ok && $o =~ /^\d+$/, 'dave (lift_privacy_mask) asks for a lift of the door zone') or diag $e;
my $lift = $o;
($ok, $o, $e) = user_sql('dave', "SELECT zone_id FROM vms.masks_for($cam) ORDER BY zone_id");
is($o, join("\n", sort { $a <=> $b } $zw, $zd, $zs), 'while it awaits approval, masks_for(dave) still has every zone');
($ok, $o, $e) = user_sql('dave', "SELECT vms.approve_privacy_lift($lift)");
ok(!$ok && $e =~ /a lift cannot be approved by the person who asked for it/, 'dave cannot approve his own lift (he holds approve_privacy_lift)');
($ok, $o, $e) = user_sql('erin', "SELECT vms.approve_privacy_lift($lift)");
ok($ok, 'erin, a second person with approve_privacy_lift, approves it') or diag $e;
($ok, $o, $e) = user_sql('dave', "SELECT zone_id FROM vms.masks_for($cam) ORDER BY zone_id");
is($o, join("\n", sort { $a <=> $b } $zw, $zs), 'masks_for(dave): the door is lifted, the permanent zones stay');
($ok, $o, $e) = user_sql('alice', "SELECT zone_id FROM vms.masks_for($cam) ORDER BY zone_id");
is($o, join("\n", sort { $a <=> $b } $zw, $zd, $zs), 'masks_for(alice): every zone (the lift is dave\'s)');
ok(wait_for_audit($node, "action = 'privacy_lift' AND actor = 'dave' AND camera_id = $cam AND outcome = 'ok'"), 'the lift is audited');
ok(wait_for_audit($node, "action = 'privacy_lift_approve' AND actor = 'erin' AND camera_id = $cam AND outcome = 'ok'"),
	'the approval is audited');

my $ref = y_plane("$pa/video.mp4", 5);
ok($ref->{y}, 'a frame of the unmasked export decodes (1280x720 luma)') or diag $ref->{err};
my %rs = map { $_ => zone_stats($ref, $zone{$_}) } keys %zone;
note 'unmasked: ' . join(', ', map { sprintf '%s mean %.1f grad %.2f', $_, $rs{$_}{mean}, $rs{$_}{grad} } sort keys %rs);
ok($rs{window}{mean} > 150 && $rs{door}{mean} > 120 && $rs{screen}{grad} > 4,
	'(unmasked: the zones are bright / detailed, so a mask shows)');

my $DV = export('dave', out => "$base/out-dave", from => $S[0]{from}, to => $S[0]{to});
my $AL = export('alice', out => "$base/out-alice", from => $S[0]{from}, to => $S[0]{to});
for my $x ([ 'dave (lift in force)', $DV, 0 ], [ 'alice (no lift_privacy_mask)', $AL, 1 ])
{
	my ($who, $r, $door_masked) = @$x;
	my $dir = $r->{dir} // "$base/none";
	is($r->{rc}, 0, "masked export by $who: exit 0");
	my $mm = manifest($dir);
	is_deeply([ sort map { "$_->{zone_id} $_->{name} " . ($_->{liftable} ? 'liftable' : 'permanent') . " $_->{fill}" } @{ $mm->{masks} // [] } ],
		[ sort("$zw window permanent black", "$zs screen permanent blur", $door_masked ? ("$zd door liftable black") : ()) ],
		"$who: the manifest lists the masks applied");
	is_deeply([ map { "$_->{lift_id} $_->{zone_id} $_->{requested_by} " . ($_->{approved_by} // '') } @{ $mm->{lifts} // [] } ],
		$door_masked ? [] : ["$lift $zd dave erin"], "$who: the manifest lists the lifts in force");
	is(verify('--ca-file', $pki->{ca}, $dir)->{rc}, 0, "$who: the package verifies");
	my $p = probe("$dir/video.mp4");
	ok(($p->{codec} // '') eq 'h264' && abs(($p->{duration} // 0) - 10) < 0.5, "$who: H.264 (libx264), 10 s");
	my $img = y_plane("$dir/video.mp4", 5);
	my %st = map { $_ => zone_stats($img, $zone{$_}) } keys %zone;
	note "$who: " . join(', ', map { sprintf '%s mean %.1f grad %.2f', $_, $st{$_}{mean}, $st{$_}{grad} } sort keys %st);
	ok(abs($st{window}{mean} - 16) <= 4 && $st{window}{grad} < 1, sprintf("$who: the permanent black zone is black (mean luma %.1f)", $st{window}{mean}));
	if ($door_masked)
	{
		ok(abs($st{door}{mean} - 16) <= 4, sprintf("$who: the liftable zone stays black (mean luma %.1f)", $st{door}{mean}));
	}
	else
	{
		ok(abs($st{door}{mean} - $rs{door}{mean}) <= 6, sprintf("$who: the lifted zone is as recorded (mean luma %.1f, unmasked %.1f)",
				$st{door}{mean}, $rs{door}{mean}));
	}
	ok($st{screen}{grad} < $rs{screen}{grad} / 2 && abs($st{screen}{mean} - $rs{screen}{mean}) < 40,
		sprintf("$who: the blur zone lost its detail (mean |dx| %.2f, unmasked %.2f) but not its brightness", $st{screen}{grad}, $rs{screen}{grad}));
	my $outside = zone_stats($img, [ 0.02, 0.60, 0.15, 0.95 ]);    # the red bar, no zone
	my $outside_ref = zone_stats($ref, [ 0.02, 0.60, 0.15, 0.95 ]);
	ok(abs($outside->{mean} - $outside_ref->{mean}) <= 6, "$who: outside the zones the picture is as recorded");
}

# ============================================================================
# 8. Snapshot
# ============================================================================
{
	my $r = export('alice', out => "$base/out-snap", from => $S[0]{from}, to => $S[0]{to},
		args => [ '--snapshot-at', iso($S[0]{start} + 5) ]);
	package_files_ok($r, 'snapshot', qw(snapshot.png manifest.json SHA256SUMS manifest.json.p7s));
	my $dir = $r->{dir} // "$base/none";
	my $ms = manifest($dir);
	is($ms->{kind} // '', 'snapshot', 'snapshot: kind snapshot');
	is($ms->{output}{file} // '', 'snapshot.png', 'snapshot: output snapshot.png');
	is(register_row($r->{id})->{kind}, 'snapshot', 'snapshot: register kind snapshot');
	is(substr(slurp("$dir/snapshot.png"), 0, 8), "\x89PNG\r\n\x1a\n", 'snapshot.png is a PNG');
	my $p = probe("$dir/snapshot.png");
	is(join(' ', map { $p->{$_} // '?' } qw(codec width height)), 'png 1280 720', 'ffprobe: png 1280x720');
	is(verify('--ca-file', $pki->{ca}, $dir)->{rc}, 0, 'snapshot: vms-verify exit 0');
	$c = ossl('cms', '-verify', '-binary', '-inform', 'DER', '-in', "$dir/manifest.json.p7s", '-content', "$dir/manifest.json",
		'-CAfile', $pki->{ca}, '-out', '/dev/null');
	is($c->{rc}, 0, 'snapshot: openssl cms -verify succeeds');
	my $img = y_plane("$dir/snapshot.png");
	my %st = map { $_ => zone_stats($img, $zone{$_}) } keys %zone;
	ok(abs($st{window}{mean} - 16) <= 4 && abs($st{door}{mean} - 16) <= 4,
		sprintf('snapshot: the permanent and the liftable zone are black for alice (%.1f, %.1f)', $st{window}{mean}, $st{door}{mean}));
	refused('alice, snapshot with a profile that offers only mp4', 'alice', qr/^vms-export: .*(png|format)/mi,
		profile => 'self', key => $pki->{self_key}, pass => undef, args => [ '--snapshot-at', iso($S[0]{start} + 5) ],
		register => query("SELECT count(*) FROM vms.exports WHERE requested_by = 'alice'"),
		outcome => 'error');    # a bad request (22023), not a permission refusal
}

# ============================================================================
# 9. Secrets
# ============================================================================
{
	my @secrets = ($passphrase, $password, values %pw);
	my @leaks;
	for my $s (@secrets)
	{
		push @leaks, "tool output: $s" if grep { index($_, $s) >= 0 } @outputs;
		push @leaks, "ps: $s" if grep { index($_, $s) >= 0 } @ps_samples;
	}
	is_deeply(\@leaks, [], 'no passphrase, password or database password in the tools\' output or in ps ('
		  . scalar(@ps_samples) . ' samples)');
	ok(grep({ /vms-export --camera/ } @ps_samples), '(ps sampling saw vms-export running)');
	my $log = slurp($node->logfile);
	is_deeply([ grep { index($log, $_) >= 0 } ($passphrase, $password) ], [], 'nor in the server log');
}

# ============================================================================
# 10. Fuzzing vms-verify's package parsing
# ============================================================================
SKIP:
{
	skip "$fuzz_bin not built (make -C tools fuzz)", 2 unless -x $fuzz_bin;
	my $runs = 20000;
	my $corpus = "$base/fuzz-corpus";
	make_path($corpus);
	my @seed_dirs = grep { -d } map { "$ENV{PGVMS_TOP}/tools/vms-verify/$_" } qw(corpus fuzz-corpus seed-corpus);
	my $r = run_tool({ timeout => 150 }, $fuzz_bin, "-runs=$runs", '-seed=1', '-max_len=65536', '-rss_limit_mb=2048',
		'-print_final_stats=1', $corpus, @seed_dirs);
	is($r->{rc}, 0, "fuzz-vms-verify: $runs runs, exit 0 (seeds: " . (join(', ', @seed_dirs) || 'none') . ')');
	like($r->{err}, qr/^Done $runs runs/m, "fuzz-vms-verify: \"Done $runs runs\", no crash") or diag substr($r->{err}, -3000);
}

note sprintf('016_export.pl took %.0f s', time - $t_begin);
done_testing();
