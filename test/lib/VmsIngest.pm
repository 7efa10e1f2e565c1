# Shared set-up for the vms-ingest TAP tests (014_ingest.pl, 015_ingest_crash.pl):
# real RTSP cameras (test/tools/rtsp_camera.py: gst-rtsp-server), misbehaving
# ones (test/tools/bad_camera.py), test certificates made with the openssl
# CLI, a cluster that requires TLS + client certificates of the recorder,
# the worker started and stopped as a process, and the checks every test
# makes on what it recorded (files, hashes, sizes, layout, ffprobe).
#
#   my $ing = VmsIngest::setup('ingest');     # node + recorder rec_one + certs
#   my $cam = start_camera(auth => 'digest', password => 'pw');   # $cam->{url}
#   my $id  = add_ingest_camera($ing, 'lobby', $cam->{url}, credential => ['cam', 'pw'],
#                               settings => { segment_seconds => 4 });
#   my $w   = start_worker($ing, $id, '--duration', 10);
#   my $rc  = wait_proc($w, 40);
#   my @seg = camera_segments($ing->{node}, $id);
#   is_deeply([ segment_problems($ing->{root}, $id, \@seg) ], [], '...');
#
# Every process started here is stopped at exit (SIGKILL after SIGTERM).
package VmsIngest;

use strict;
use warnings;
use Digest::SHA;
use Exporter 'import';
use File::Find;
use File::Path qw(make_path);
use IPC::Run;
use POSIX qw(:sys_wait_h strftime);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use VmsTest;

our @EXPORT = qw(poll_until start_proc wait_proc signal_proc proc_alive slurp
  start_camera restart_camera start_bad_camera make_ca make_cert spki_sha256_hex
  add_ingest_camera set_ingest_settings start_worker run_worker wait_watching worker_bin
  camera_segments segment_problems contiguity_problems ffprobe_file storage_files
  sanitizer_report log_format_problems sample_ps ingest_state sql_quote
  free_port $PYTHON);

our $PYTHON = '/usr/bin/python3';    # has gi (GStreamer); PATH's python3 may not
my $tools_dir = $ENV{TESTDIR} ? "$ENV{TESTDIR}/tools" : 'tools';
my @procs;
my $counter = 0;
my $procdir;

# --- processes ------------------------------------------------------------

# Polls $cond every 0.1 s until it returns true or $timeout seconds pass.
# Returns the (true) value, or undef on timeout.
sub poll_until
{
	my ($timeout, $cond) = @_;
	my $deadline = time + $timeout;
	while (1)
	{
		my $v = $cond->();
		return $v if $v;
		return undef if time > $deadline;
		sleep 0.1;
	}
}

sub slurp
{
	my ($file) = @_;
	open my $fh, '<:raw', $file or return '';
	local $/;
	my $c = <$fh>;
	close $fh;
	return $c // '';
}

# start_proc(name => 'x', cmd => [...], env => {...}): runs cmd with stdout and
# stderr in files (kept after a SIGKILL), stdin from /dev/null.
sub start_proc
{
	my (%opt) = @_;
	$procdir //= PostgreSQL::Test::Utils::tempdir('proc');
	my $dir = $opt{dir} // $procdir;
	my $tag = "$opt{name}-" . ++$counter;
	my $p = {
		name => $opt{name},
		cmd => $opt{cmd},
		out => "$dir/$tag.out",
		err => "$dir/$tag.err",
		started => time,
	};
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		%ENV = (%ENV, %{ $opt{env} // {} });
		delete @ENV{ @{ $opt{unset} // [] } };
		open STDIN, '<', '/dev/null' or POSIX::_exit(127);
		open STDOUT, '>', $p->{out} or POSIX::_exit(127);
		open STDERR, '>', $p->{err} or POSIX::_exit(127);
		exec { $opt{cmd}[0] } @{ $opt{cmd} } or POSIX::_exit(127);
	}
	$p->{pid} = $pid;
	push @procs, $p;
	return $p;
}

sub _reap
{
	my ($p) = @_;
	return 1 if defined $p->{status};
	my $r = waitpid($p->{pid}, WNOHANG);
	return 0 unless $r == $p->{pid};
	my $st = $?;
	$p->{ended} = time;
	if (WIFSIGNALED($st))
	{
		$p->{signal} = WTERMSIG($st);
		$p->{status} = 128 + $p->{signal};
	}
	else
	{
		$p->{status} = WEXITSTATUS($st);
	}
	return 1;
}

sub proc_alive { my ($p) = @_; return !_reap($p); }

# Waits up to $timeout seconds for the process to end; returns its exit code
# (128 + signal if a signal ended it) or undef if it is still running.
sub wait_proc
{
	my ($p, $timeout) = @_;
	poll_until($timeout, sub { _reap($p) });
	return $p->{status};
}

sub signal_proc
{
	my ($p, $sig) = @_;
	return 0 if !proc_alive($p);
	return kill $sig, $p->{pid};
}

END
{
	my $status = $?;
	for my $p (@procs)
	{
		next unless proc_alive($p);
		kill 'CONT', $p->{pid};
		kill 'TERM', $p->{pid};
	}
	for my $p (@procs)
	{
		next if defined wait_proc($p, 5);
		kill 'KILL', $p->{pid};
		wait_proc($p, 5);
	}
	$? = $status;
}

sub free_port { return PostgreSQL::Test::Cluster::get_free_port(); }

# --- cameras ----------------------------------------------------------------

# A gst-rtsp-server camera.  Options as rtsp_camera.py's (auth, user,
# password, tls_cert, size, fps, gop, file, bitrate, port).  Returns the
# process with {url} (rtsp[s]://127.0.0.1:PORT/test) and {port} once it serves.
sub start_camera
{
	my (%opt) = @_;
	my $p = _try_camera(%opt);
	BAIL_OUT("rtsp_camera.py did not start: $@") unless $p;
	return $p;
}

# Starts a camera again on the same port with the same options (after a kill
# or a stop); retries while the port is still taken.
sub restart_camera
{
	my ($cam) = @_;
	my %opt = (%{ $cam->{opt} }, port => $cam->{port});
	my $new = poll_until(15, sub { _try_camera(%opt) });
	BAIL_OUT("camera $cam->{name} could not be restarted on port $cam->{port}: $@") unless $new;
	return $new;
}

sub _try_camera
{
	my (%opt) = @_;
	my @cmd = ($PYTHON, "$tools_dir/rtsp_camera.py", '--port', $opt{port} // 0);
	# The password goes through a file: `ps` must show no password at all.
	if (defined $opt{password})
	{
		$procdir //= PostgreSQL::Test::Utils::tempdir('proc');
		my $pwfile = "$procdir/camera-password-" . ++$counter;
		open my $fh, '>', $pwfile or die $!;
		print $fh "$opt{password}\n";
		close $fh;
		chmod 0600, $pwfile;
		push @cmd, '--password-file', $pwfile;
	}
	for my $k (qw(auth user tls_cert size fps gop file bitrate))
	{
		next unless defined $opt{$k};
		(my $flag = "--$k") =~ tr/_/-/;
		push @cmd, $flag, $opt{$k};
	}
	my $p = start_proc(name => $opt{name} // 'camera', cmd => \@cmd);
	my $line = poll_until(30, sub {
		return $1 if slurp($p->{out}) =~ /^(ready \S+ auth=\S+)$/m;
		return 'exited' unless proc_alive($p);
		return undef;
	});
	if (!$line || $line eq 'exited')
	{
		$@ = slurp($p->{err});
		signal_proc($p, 'KILL');
		return undef;
	}
	($p->{url}) = $line =~ /^ready (\S+)/;
	($p->{port}) = $p->{url} =~ /:(\d+)\//;
	$p->{opt} = \%opt;
	note "camera $p->{name} (pid $p->{pid}): $line";
	return $p;
}

# A misbehaving camera (bad_camera.py --mode MODE); {port}, {url} (rtsp://).
sub start_bad_camera
{
	my ($mode) = @_;
	my $p = start_proc(name => "bad-$mode", cmd => [ $PYTHON, "$tools_dir/bad_camera.py", '--mode', $mode ]);
	my $port = poll_until(20, sub {
		return $1 if slurp($p->{out}) =~ /^ready tcp:\/\/127\.0\.0\.1:(\d+) /m;
		BAIL_OUT('bad_camera.py exited: ' . slurp($p->{err})) unless proc_alive($p);
		return undef;
	});
	BAIL_OUT("bad_camera.py --mode $mode did not become ready") unless $port;
	$p->{port} = $port;
	$p->{url} = "rtsp://127.0.0.1:$port/test";
	return $p;
}

# --- certificates (openssl CLI) -------------------------------------------------

sub _openssl
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'openssl', @args ], '<', \'', '>', \$out, '2>', \$err)
	  or BAIL_OUT("openssl @args failed: $out$err");
	return $out;
}

# A test CA: { cert, key, dir }.
sub make_ca
{
	my ($dir, $name) = @_;
	make_path($dir);
	my $ca = { cert => "$dir/$name-ca.pem", key => "$dir/$name-ca.key", dir => $dir, name => $name };
	_openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', $ca->{key}, '-out', $ca->{cert}, '-days', '2', '-subj', "/CN=pg_vms test CA $name",
		'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
	chmod 0600, $ca->{key};
	return $ca;
}

# A certificate signed by $ca: make_cert($ca, 'name', cn => 'x', server => 1 | client => 1).
# Returns { cert, key, bundle (cert + key in one file) }; keys are mode 0600.
sub make_cert
{
	my ($ca, $name, %opt) = @_;
	my $d = $ca->{dir};
	my $c = { cert => "$d/$name.pem", key => "$d/$name.key", bundle => "$d/$name-bundle.pem" };
	_openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', $c->{key}, '-out', "$d/$name.csr", '-subj', '/CN=' . ($opt{cn} // '127.0.0.1'));
	open my $ext, '>', "$d/$name.ext" or die $!;
	if ($opt{client})
	{
		print $ext "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";
	}
	else
	{
		print $ext 'subjectAltName=' . ($opt{san} // 'IP:127.0.0.1,DNS:localhost')
		  . "\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
	}
	close $ext;
	_openssl('x509', '-req', '-in', "$d/$name.csr", '-CA', $ca->{cert}, '-CAkey', $ca->{key},
		'-CAcreateserial', '-CAserial', "$d/$ca->{name}-ca.srl", '-out', $c->{cert}, '-days', '2',
		'-extfile', "$d/$name.ext");
	chmod 0600, $c->{key};
	open my $b, '>', $c->{bundle} or die $!;
	print $b slurp($c->{cert}), slurp($c->{key});
	close $b;
	chmod 0600, $c->{bundle};
	return $c;
}

# SHA-256 of the certificate's SubjectPublicKeyInfo (DER), hex: the pin.
# openssl x509 -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary
sub spki_sha256_hex
{
	my ($cert) = @_;
	my $pem = _openssl('x509', '-pubkey', '-noout', '-in', $cert);
	my ($der, $err) = ('', '');
	IPC::Run::run([ 'openssl', 'pkey', '-pubin', '-outform', 'DER' ], '<', \$pem, '>', \$der, '2>', \$err)
	  or BAIL_OUT("openssl pkey: $err");
	my ($dig) = ('');
	IPC::Run::run([ 'openssl', 'dgst', '-sha256', '-binary' ], '<', \$der, '>', \$dig, '2>', \$err)
	  or BAIL_OUT("openssl dgst: $err");
	return unpack('H*', $dig);
}

# --- the cluster -----------------------------------------------------------------

# setup('name'): a pg_vms cluster that takes the recorder rec_one only over
# TLS with a client certificate (CN=rec_one, `hostssl ... cert`), rec_one
# also over plain TCP with SCRAM (`hostnossl`, so that the worker's own
# refusal of a non-TLS connection can be seen), everybody else as VmsTest
# sets up.  Returns { node, root (storage root), connstr (verify-full +
# client certificate), plain_connstr (sslmode=disable), passfile (for
# plain_connstr), db_password, dbca, recorder }.
sub setup
{
	my ($name, %opt) = @_;
	my $node = vms_node($name, conf => $opt{conf});
	my $base = PostgreSQL::Test::Utils::tempdir("ingest_$name");
	my $pki = "$base/pki";
	my $dbca = make_ca($pki, 'db');
	my $server = make_cert($dbca, 'db-server', cn => '127.0.0.1');
	my $client = make_cert($dbca, 'rec_one', cn => 'rec_one', client => 1);
	my $db_password = 'Db-pw:7 q/%@x';
	# Statements that carry a password are kept out of the server log
	# (the TAP cluster logs every statement): the tests search it for them.
	$node->safe_psql('vms', "SET log_statement = 'none';\n"
		  . 'SELECT vms.create_user(' . sql_quote('rec_one') . ', ' . sql_quote($db_password) . ')');
	$node->safe_psql('vms', <<'SQL');
SELECT vms.add_member('vms_recorder', 'rec_one');
SELECT vms.create_user('rec_two', 'Other-Recorder-pw-4');
SELECT vms.add_member('vms_recorder', 'rec_two');
SQL
	$node->append_conf('postgresql.conf', <<"CONF");
ssl = on
ssl_cert_file = '$server->{cert}'
ssl_key_file = '$server->{key}'
ssl_ca_file = '$dbca->{cert}'
ssl_min_protocol_version = 'TLSv1.2'
CONF
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\n"
	  . "hostssl vms rec_one 127.0.0.1/32 cert\n"
	  . "hostnossl vms rec_one 127.0.0.1/32 scram-sha-256\n"
	  . "host all all 127.0.0.1/32 scram-sha-256\n";
	close $hba;
	$node->restart;
	my $passfile = "$base/pgpass";
	open my $pf, '>', $passfile or die $!;
	(my $escaped = $db_password) =~ s/([:\\])/\\$1/g;
	print $pf "127.0.0.1:" . $node->port . ":vms:rec_one:$escaped\n";
	close $pf;
	chmod 0600, $passfile;
	my $root = "$base/storage";
	make_path($root);
	return {
		node => $node,
		base => $base,
		root => $root,
		pki => $pki,
		dbca => $dbca,
		recorder => 'rec_one',
		db_password => $db_password,
		passfile => $passfile,
		connstr => 'host=127.0.0.1 port=' . $node->port . ' dbname=vms user=rec_one sslmode=verify-full'
		  . " sslrootcert=$dbca->{cert} sslcert=$client->{cert} sslkey=$client->{key} gssencmode=disable",
		plain_connstr => 'host=127.0.0.1 port=' . $node->port
		  . ' dbname=vms user=rec_one sslmode=disable gssencmode=disable',
	};
}

sub sql_quote
{
	my ($v) = @_;
	return 'NULL' unless defined $v;
	$v =~ s/'/''/g;
	return "'$v'";
}

# add_ingest_camera($ing, name, url, recorder => 'rec_one' (undef: none),
#                   credential => [user, password], settings => {...}): camera id.
sub add_ingest_camera
{
	my ($ing, $name, $url, %opt) = @_;
	my $node = $ing->{node};
	my $id = $node->safe_psql('vms', 'SELECT vms.add_camera(' . sql_quote($name) . ', stream_url => ' . sql_quote($url) . ')');
	my $recorder = exists $opt{recorder} ? $opt{recorder} : $ing->{recorder};
	$node->safe_psql('vms', "SELECT vms.assign_recorder($id, " . sql_quote($recorder) . ')') if defined $recorder;
	if ($opt{credential})
	{
		$node->safe_psql('vms', "SET log_statement = 'none';\nSELECT vms.set_camera_credential($id, "
			  . sql_quote($opt{credential}[0]) . ', ' . sql_quote($opt{credential}[1]) . ')');
	}
	set_ingest_settings($ing, $id, %{ $opt{settings} }) if $opt{settings};
	return $id;
}

# set_ingest_settings($ing, id, segment_seconds => 4, tls_ca_pem => '...', tls_pin_sha256_hex => '...', ...)
sub set_ingest_settings
{
	my ($ing, $id, %s) = @_;
	my @args;
	for my $k (qw(transport tls_ca_pem tls_server_name))
	{
		push @args, "$k => " . sql_quote($s{$k}) if exists $s{$k};
	}
	push @args, "segment_seconds => $s{segment_seconds}" if exists $s{segment_seconds};
	push @args, "burn_in_privacy => $s{burn_in_privacy}" if exists $s{burn_in_privacy};
	push @args, "tls_pin_sha256 => decode(" . sql_quote($s{tls_pin_sha256_hex}) . ", 'hex')"
	  if exists $s{tls_pin_sha256_hex};
	$ing->{node}->safe_psql('vms', "SELECT vms.set_ingest_settings($id, " . join(', ', @args) . ')');
	return;
}

# --- the worker ------------------------------------------------------------------

# The worker binary: the AddressSanitizer build when asan => 1 and it exists.
sub worker_bin
{
	my (%opt) = @_;
	my $dir = $ENV{PGVMS_TOOLS} // '';
	return "$dir/vms-ingest-asan" if $opt{asan} && -x "$dir/vms-ingest-asan";
	return "$dir/vms-ingest";
}

# start_worker($ing, camera_id, extra args...; with a leading hash ref of
# options: { asan => 1, dbname => '...', env => {...}, root => '...' }).
sub start_worker
{
	my $ing = shift;
	my $o = ref $_[0] eq 'HASH' ? shift : {};
	my ($camera, @args) = @_;
	my $bin = worker_bin(asan => $o->{asan});
	my @cmd = ($bin, '--camera', $camera, '--storage-root', $o->{root} // $ing->{root},
		'--dbname', $o->{dbname} // $ing->{connstr}, @args);
	my $p = start_proc(name => "ingest-$camera", cmd => \@cmd, env => { PGPASSFILE => $ing->{passfile}, %{ $o->{env} // {} } },
		unset => [qw(PGPASSWORD PGUSER PGHOST PGPORT PGDATABASE PGSSLMODE PGSERVICE)]);
	note "started (pid $p->{pid}): @cmd";
	return $p;
}

# Runs the worker to its end (timeout: die); returns (exit code, stderr, proc).
sub run_worker
{
	my $ing = shift;
	my $o = ref $_[0] eq 'HASH' ? $_[0] : {};
	my $timeout = $o->{timeout} // 60;
	my $p = start_worker($ing, @_);
	my $rc = wait_proc($p, $timeout);
	if (!defined $rc)
	{
		kill 'KILL', $p->{pid};
		wait_proc($p, 5);
		$rc = 'timeout';
	}
	my $err = slurp($p->{err});
	note "exit $rc after " . sprintf('%.1f', time - $p->{started}) . " s; stderr:\n$err";
	return ($rc, $err, $p);
}

# Waits for several workers to end (up to $timeout s in all), noting every
# state vms.ingest_status shows for their cameras meanwhile.  $runs: hash
# name => { id => camera id, p => process }.  Sets {rc} and {states} (hash
# state => 1) in each run.
sub wait_watching
{
	my ($ing, $runs, $timeout) = @_;
	my %by_id = map { $runs->{$_}{id} => $runs->{$_} } keys %$runs;
	my $ids = join ',', keys %by_id;
	my $watch = sub {
		for my $row (split /\n/, $ing->{node}->safe_psql('vms',
				"SELECT camera_id, state FROM vms.ingest_status WHERE camera_id IN ($ids)"))
		{
			my ($id, $state) = split /\|/, $row;
			$by_id{$id}{states}{$state} = 1;
		}
	};
	poll_until($timeout, sub {
		$watch->();
		return !grep { proc_alive($_->{p}) } values %by_id;
	});
	$watch->();
	for my $r (values %by_id)
	{
		$r->{rc} = wait_proc($r->{p}, 0);
		if (!defined $r->{rc})
		{
			signal_proc($r->{p}, 'KILL');
			wait_proc($r->{p}, 5);
			$r->{rc} = 'timeout';
		}
	}
	return;
}

# The state the worker last reported for a camera (vms.ingest_status).
sub ingest_state
{
	my ($ing, $id) = @_;
	return $ing->{node}->safe_psql('vms', "SELECT state FROM vms.ingest_status WHERE camera_id = $id");
}

# --- what was recorded ---------------------------------------------------------

# The camera's registered segments, oldest first: hashes with id, start (epoch,
# ms precision), end, start_name (YYYYMMDDTHHMMSS.mmmZ), day, path, bytes,
# sha256 (hex), codec, width, height, recorder.
sub camera_segments
{
	my ($node, $id) = @_;
	my $rows = $node->safe_psql('vms', <<"SQL");
SELECT id, extract(epoch FROM start_time)::numeric(20,3), extract(epoch FROM end_time)::numeric(20,3),
       to_char(start_time AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS.MS"Z"'),
       to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
       path, bytes, encode(sha256, 'hex'), coalesce(codec, ''), coalesce(width, 0), coalesce(height, 0), recorder,
       ((extract(epoch FROM end_time) - extract(epoch FROM start_time)) * 1000)::numeric(20,3)
  FROM vms.segments WHERE camera_id = $id ORDER BY start_time
SQL
	my @segs;
	for my $line (split /\n/, $rows)
	{
		my @f = split /\|/, $line, -1;
		push @segs, {
			id => $f[0], start => $f[1], end => $f[2], start_name => $f[3], day => $f[4],
			path => $f[5], bytes => $f[6], sha256 => $f[7], codec => $f[8], width => $f[9],
			height => $f[10], recorder => $f[11], dur_ms => $f[12],
		};
	}
	return @segs;
}

# Everything wrong with the registered segments' files: missing, size or hash
# differs, or a path not of the layout <camera>/<UTC day>/<start>_<ms>.ts with
# the registered start and duration.  Empty list when all is well.
sub segment_problems
{
	my ($root, $camera, $segs) = @_;
	my @bad;
	for my $s (@$segs)
	{
		my $f = "$root/$s->{path}";
		if ($s->{path} !~ m{^\Q$camera\E/(\d{4}-\d\d-\d\d)/(\d{8}T\d{6}\.\d{3}Z)_(\d+)\.ts$})
		{
			push @bad, "segment $s->{id}: path $s->{path} is not <camera>/<day>/<start>_<ms>.ts";
		}
		else
		{
			my ($day, $start, $ms) = ($1, $2, $3);
			push @bad, "segment $s->{id}: day directory $day, start is on $s->{day}" if $day ne $s->{day};
			push @bad, "segment $s->{id}: file name start $start, registered $s->{start_name}" if $start ne $s->{start_name};
			push @bad, "segment $s->{id}: file name duration $ms ms, registered " . ($s->{dur_ms} + 0) . ' ms'
			  if $ms != $s->{dur_ms};
		}
		if (!-f $f)
		{
			push @bad, "segment $s->{id}: $s->{path} does not exist";
			next;
		}
		my $size = -s $f;
		push @bad, "segment $s->{id}: $s->{path} has $size bytes, registered $s->{bytes}" if $size != $s->{bytes};
		my $sha = Digest::SHA->new(256)->addfile($f, 'b')->hexdigest;
		push @bad, "segment $s->{id}: $s->{path} SHA-256 $sha, registered $s->{sha256}" if $sha ne $s->{sha256};
	}
	return @bad;
}

# Gaps and overlaps between consecutive segments (end of one = start of the next).
sub contiguity_problems
{
	my ($segs) = @_;
	my @bad;
	for my $i (1 .. $#$segs)
	{
		my ($a, $b) = ($segs->[ $i - 1 ], $segs->[$i]);
		push @bad, "segment $a->{id} ends at $a->{end}, segment $b->{id} starts at $b->{start}"
		  if $a->{end} != $b->{start};
	}
	return @bad;
}

# ffprobe's view of a file: { format, codec, width, height, duration, frames }
# (frames only with count => 1: every frame is decoded).
sub ffprobe_file
{
	my ($file, %opt) = @_;
	my @cmd = ('ffprobe', '-v', 'error', '-select_streams', 'v:0',
		($opt{count} ? ('-count_frames') : ()),
		'-show_entries', 'stream=codec_name,width,height' . ($opt{count} ? ',nb_read_frames' : '')
		  . ':format=format_name,duration',
		'-of', 'default=noprint_wrappers=1', $file);
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \'', '>', \$out, '2>', \$err);
	my %r = (ok => $? == 0, errors => $err);
	$r{codec} = $1 if $out =~ /^codec_name=(\S+)/m;
	$r{width} = $1 if $out =~ /^width=(\d+)/m;
	$r{height} = $1 if $out =~ /^height=(\d+)/m;
	$r{frames} = $1 if $out =~ /^nb_read_frames=(\d+)/m;
	$r{format} = $1 if $out =~ /^format_name=(\S+)/m;
	$r{duration} = $1 if $out =~ /^duration=([\d.]+)/m;
	return \%r;
}

# Every file below the root, relative to it, sorted.
sub storage_files
{
	my ($root) = @_;
	my @files;
	find({ wanted => sub { push @files, substr($File::Find::name, length($root) + 1) if -f $_ }, no_chdir => 1 },
		$root) if -d $root;
	return sort @files;
}

# An AddressSanitizer / UBSan report in a stderr text, or '' (none).
sub sanitizer_report
{
	my ($err) = @_;
	return $1 if $err =~ /^(.*(?:AddressSanitizer|LeakSanitizer|runtime error:).*)$/m;
	return '';
}

# Lines of the worker's stderr that are not `vms-ingest[camera=ID]: LEVEL: message`.
sub log_format_problems
{
	my ($err, $camera) = @_;
	return grep { !/^vms-ingest\[camera=\Q$camera\E\]: (error|warning|info|debug): \S/ } split /\n/, $err;
}

# `ps -eo args` once: the text.
sub sample_ps
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'ps', '-eo', 'args' ], '<', \'', '>', \$out, '2>', \$err);
	return $out;
}

1;
