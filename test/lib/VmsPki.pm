# The export tests' PKI, made with the openssl CLI only (test/t/016_export.pl):
#
#   my $pki = VmsPki::make_export_pki($dir, passphrase => 'x');
#
# returns a hash of file names:
#   ca, ca_key          the test CA (P-256, CA:TRUE, keyCertSign)
#   other_ca            an unrelated CA (to verify against: "untrusted")
#   signer, signer_key  a signer issued by the test CA: keyUsage=critical,
#                       digitalSignature,nonRepudiation, no extended key usage;
#                       its key PKCS#8-encrypted (AES-256) with the passphrase
#   signer_plain_key    the same key unencrypted
#   passphrase_file     the passphrase, one line, mode 0600
#   expired, expired_key  a signer of the test CA valid 2020-01-01..2020-01-02
#                       (openssl ca -startdate/-enddate), key unencrypted
#   self, self_key      a self-issued signer (no CA), key unencrypted
#   r1, r1_key          recipient 1, RSA 2048 (CMS KeyTransRecipientInfo)
#   r2, r2_key          recipient 2, EC P-256 (CMS KeyAgreeRecipientInfo)
#   tsa_ca              the TSA's own CA; tsa, tsa_key its TSA certificate
#                       (extendedKeyUsage=critical,timeStamping)
#   tsa_config          an `openssl ts -reply` configuration for it
# Each call uses fresh keys.  Everything dies (BAIL_OUT) on an openssl error.
package VmsPki;

use strict;
use warnings;
use Exporter 'import';
use File::Path qw(make_path);
use IPC::Run;
use Test::More;

our @EXPORT = qw(make_export_pki openssl_run);

# openssl_run(args...): (exit code, stdout, stderr) of the openssl CLI.
sub openssl_run
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'openssl', @args ], '<', \'', '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub _ossl
{
	my ($rc, $out, $err) = openssl_run(@_);
	BAIL_OUT("openssl @_ failed: $out$err") if $rc != 0;
	return $out;
}

sub _write
{
	my ($file, $text, $mode) = @_;
	open my $fh, '>', $file or die "$file: $!";
	print $fh $text;
	close $fh;
	chmod $mode, $file if defined $mode;
	return $file;
}

sub _ca
{
	my ($d, $name, $cn) = @_;
	_ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$d/$name.key", '-out', "$d/$name.pem", '-days', '3', '-subj', "/O=pg_vms tests/CN=$cn",
		'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
		'-addext', 'subjectKeyIdentifier=hash');
	chmod 0600, "$d/$name.key";
	return ("$d/$name.pem", "$d/$name.key");
}

# A certificate of $ca for a fresh key: $keyalg 'ec' or 'rsa'; $ext the
# extension lines.
sub _leaf
{
	my ($d, $name, $cn, $ca, $ca_key, $keyalg, $ext) = @_;
	my @key = $keyalg eq 'rsa' ? ('-newkey', 'rsa:2048') : ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
	_ossl('req', @key, '-nodes', '-keyout', "$d/$name.key", '-out', "$d/$name.csr",
		'-subj', "/O=pg_vms tests/CN=$cn");
	chmod 0600, "$d/$name.key";
	_write("$d/$name.ext", $ext);
	_ossl('x509', '-req', '-in', "$d/$name.csr", '-CA', $ca, '-CAkey', $ca_key, '-CAcreateserial',
		'-days', '3', '-sha256', '-extfile', "$d/$name.ext", '-out', "$d/$name.pem");
	return ("$d/$name.pem", "$d/$name.key");
}

sub make_export_pki
{
	my ($d, %opt) = @_;
	make_path($d);
	my %p;
	@p{qw(ca ca_key)} = _ca($d, 'ca', 'pg_vms test CA');
	@p{qw(other_ca other_ca_key)} = _ca($d, 'other-ca', 'pg_vms other CA');
	@p{qw(tsa_ca tsa_ca_key)} = _ca($d, 'tsa-ca', 'pg_vms TSA CA');
	my $signer_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
	  . "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

	# The signer: CA-issued, no EKU; its key encrypted with the passphrase.
	my $plain;
	@p{qw(signer signer_plain_key)} = _leaf($d, 'signer', 'Export Station 1', $p{ca}, $p{ca_key}, 'ec', $signer_ext);
	$p{passphrase_file} = _write("$d/signer.pass", ($opt{passphrase} // 'Sign-Me: 7 ways/%') . "\n", 0600);
	$p{signer_key} = "$d/signer-enc.key";
	_ossl('pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', $p{signer_plain_key}, '-out', $p{signer_key},
		'-passout', "file:$p{passphrase_file}");
	chmod 0600, $p{signer_key};

	# Expired: openssl ca with a start and end date in the past.
	my $db = "$d/cadb";
	make_path($db);
	_write("$db/index.txt", '');
	_write("$db/serial", "1000\n");
	_write("$d/ca.cnf", <<"CNF");
[ca]
default_ca = test_ca
[test_ca]
dir = $db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
organizationName = optional
commonName = supplied
[signer_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
	_ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', "$d/expired.key",
		'-out', "$d/expired.csr", '-subj', '/O=pg_vms tests/CN=Expired Export Station');
	chmod 0600, "$d/expired.key";
	_ossl('ca', '-batch', '-config', "$d/ca.cnf", '-cert', $p{ca}, '-keyfile', $p{ca_key}, '-in', "$d/expired.csr",
		'-out', "$d/expired.pem", '-startdate', '20200101000000Z', '-enddate', '20200102000000Z',
		'-extensions', 'signer_ext', '-notext');
	@p{qw(expired expired_key)} = ("$d/expired.pem", "$d/expired.key");

	# Self-issued signer (as docs/export.md shows).
	_ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', "$d/self.key",
		'-out', "$d/self.pem", '-days', '3', '-subj', '/O=pg_vms tests/CN=Self-issued Export Station',
		'-addext', 'keyUsage=critical,digitalSignature,nonRepudiation');
	chmod 0600, "$d/self.key";
	@p{qw(self self_key)} = ("$d/self.pem", "$d/self.key");

	# Recipients: RSA (key transport) and EC (key agreement).
	@p{qw(r1 r1_key)} = _leaf($d, 'recipient1', 'Police Evidence Unit', $p{ca}, $p{ca_key}, 'rsa',
		"basicConstraints=CA:FALSE\nkeyUsage=critical,keyEncipherment\n");
	@p{qw(r2 r2_key)} = _leaf($d, 'recipient2', 'Insurer Claims Desk', $p{ca}, $p{ca_key}, 'ec',
		"basicConstraints=CA:FALSE\nkeyUsage=critical,keyAgreement\n");

	# The TSA, under its own CA.
	@p{qw(tsa tsa_key)} = _leaf($d, 'tsa', 'pg_vms test TSA', $p{tsa_ca}, $p{tsa_ca_key}, 'ec',
		"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n");
	_write("$d/tsaserial", "01\n");
	$p{tsa_config} = _write("$d/tsa.cnf", <<"CNF");
[tsa]
default_tsa = tsa_config
[tsa_config]
dir = $d
serial = \$dir/tsaserial
crypto_device = builtin
signer_cert = $p{tsa}
signer_key = $p{tsa_key}
certs = $p{tsa_ca}
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1.1
other_policies = 1.3.6.1.4.1.99999.1.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
CNF
	$p{dir} = $d;
	return \%p;
}

1;
