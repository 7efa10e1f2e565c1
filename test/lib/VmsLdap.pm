# A throw-away OpenLDAP server (Debian slapd, back_mdb) for the LDAP tests:
# a test CA and a server certificate for 127.0.0.1 made with the openssl
# CLI, ldap:// and ldaps:// on free loopback ports, TLS 1.2 or later, run as
# the test user and stopped at the end.
#
#   my $ldap = VmsLdap->new('auth', ldif => VmsLdap::user_ldif('alice', 'pw'));
#   $ldap->{url}, $ldap->{ldaps_url}, $ldap->{ca_file}, $ldap->{basedn}
#   $ldap->modify($ldif);   # ldapmodify as the directory manager
#   $ldap->stop;            # also done at exit
#
# weak_tls => 1 makes a server that speaks only TLS 1.0 and 1.1 (to show that
# clients refuse it); ca_from => $other signs its certificate with $other's CA.
package VmsLdap;

use strict;
use warnings;
use File::Path qw(make_path);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our $SLAPD = '/usr/sbin/slapd';
our $SLAPADD = '/usr/sbin/slapadd';
our $SCHEMA = '/etc/ldap/schema';
our $MODULES = '/usr/lib/ldap';
our $BASEDN = 'dc=example,dc=org';
our $ROOTDN = "cn=manager,$BASEDN";
# slapd links GnuTLS, which ignores TLSProtocolMin: the priority string
# is what holds the protocol floor.
our $TLS12_PRIORITY = 'NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2';
our $TLS11_ONLY_PRIORITY = 'NORMAL:-VERS-ALL:+VERS-TLS1.1:+VERS-TLS1.0';

my @servers;

sub new
{
	my ($class, $name, %opt) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir("ldap_$name");
	my $self = bless {
		name => $name,
		dir => $dir,
		basedn => $BASEDN,
		rootdn => $ROOTDN,
		rootpw => 'Manager-secret-' . int(rand(1e9)),
		port => PostgreSQL::Test::Cluster::get_free_port(),
		ldaps_port => PostgreSQL::Test::Cluster::get_free_port(),
	}, $class;
	$self->{url} = "ldap://127.0.0.1:$self->{port}";
	$self->{ldaps_url} = "ldaps://127.0.0.1:$self->{ldaps_port}";
	$self->_certificates($opt{ca_from});
	$self->_config($opt{weak_tls});
	$self->_load(base_ldif() . ($opt{ldif} // ''));
	$self->_start;
	push @servers, $self;
	return $self;
}

sub _run_or_bail
{
	my ($what, @cmd) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '<', \'', '>', \$out, '2>', \$err)
	  or BAIL_OUT("$what failed: @cmd\n$out$err");
	return $out;
}

sub _certificates
{
	my ($self, $ca_from) = @_;
	my $d = $self->{dir};
	if ($ca_from)
	{
		$self->{ca_file} = $ca_from->{ca_file};
		$self->{ca_key} = $ca_from->{ca_key};
	}
	else
	{
		$self->{ca_file} = "$d/ca.crt";
		$self->{ca_key} = "$d/ca.key";
		_run_or_bail('test CA', 'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
			'-keyout', $self->{ca_key}, '-out', $self->{ca_file}, '-days', '2',
			'-subj', "/CN=pg_vms test CA $self->{name}",
			'-addext', 'basicConstraints=critical,CA:TRUE',
			'-addext', 'keyUsage=critical,keyCertSign,cRLSign');
	}
	_run_or_bail('server key', 'openssl', 'req', '-newkey', 'rsa:2048', '-nodes',
		'-keyout', "$d/server.key", '-out', "$d/server.csr", '-subj', '/CN=127.0.0.1');
	open my $ext, '>', "$d/server.ext" or die $!;
	print $ext "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
	  . "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n";
	close $ext;
	_run_or_bail('server certificate', 'openssl', 'x509', '-req', '-in', "$d/server.csr",
		'-CA', $self->{ca_file}, '-CAkey', $self->{ca_key}, '-CAcreateserial',
		'-CAserial', "$d/ca.srl", '-out', "$d/server.crt", '-days', '2',
		'-extfile', "$d/server.ext");
	chmod 0600, "$d/server.key";
	return;
}

sub _config
{
	my ($self, $weak) = @_;
	my $d = $self->{dir};
	make_path("$d/data");
	my $priority = $weak ? $TLS11_ONLY_PRIORITY : $TLS12_PRIORITY;
	my $min = $weak ? '3.1' : '3.3';
	open my $conf, '>', "$d/slapd.conf" or die $!;
	print $conf <<"CONF";
include $SCHEMA/core.schema
include $SCHEMA/cosine.schema
include $SCHEMA/nis.schema
include $SCHEMA/inetorgperson.schema
pidfile $d/slapd.pid
argsfile $d/slapd.args
modulepath $MODULES
moduleload back_mdb
TLSCACertificateFile $self->{ca_file}
TLSCertificateFile $d/server.crt
TLSCertificateKeyFile $d/server.key
TLSProtocolMin $min
TLSCipherSuite $priority
database mdb
suffix "$BASEDN"
rootdn "$ROOTDN"
rootpw $self->{rootpw}
directory $d/data
maxsize 104857600
access to attrs=userPassword
  by anonymous auth
  by self read
  by * none
access to * by * read
CONF
	close $conf;
	return;
}

sub _load
{
	my ($self, $ldif) = @_;
	my $f = "$self->{dir}/tree.ldif";
	open my $fh, '>', $f or die $!;
	print $fh $ldif;
	close $fh;
	_run_or_bail('slapadd', $SLAPADD, '-f', "$self->{dir}/slapd.conf", '-l', $f);
	return;
}

sub _start
{
	my ($self) = @_;
	_run_or_bail('slapd', $SLAPD, '-f', "$self->{dir}/slapd.conf",
		'-h', "$self->{url} $self->{ldaps_url}");
	# slapd detaches; wait until it answers.
	for (1 .. 100)
	{
		my ($out, $err) = ('', '');
		if (-f "$self->{dir}/slapd.pid"
			&& IPC::Run::run([ 'ldapsearch', '-x', '-LLL', '-H', $self->{url}, '-b', $BASEDN, '-s', 'base', 'dn' ],
				'<', \'', '>', \$out, '2>', \$err))
		{
			open my $fh, '<', "$self->{dir}/slapd.pid" or die $!;
			($self->{pid}) = <$fh> =~ /(\d+)/;
			close $fh;
			note "slapd $self->{name} (pid $self->{pid}) on $self->{url} and $self->{ldaps_url}";
			return;
		}
		select(undef, undef, undef, 0.1);
	}
	BAIL_OUT("slapd $self->{name} did not start; see $self->{dir}");
}

# ldapmodify (changetype records) as the directory manager.
sub modify
{
	my ($self, $ldif) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'ldapmodify', '-x', '-H', $self->{url}, '-D', $ROOTDN, '-y', $self->_rootpw_file ],
		'<', \$ldif, '>', \$out, '2>', \$err)
	  or die "ldapmodify failed: $out$err";
	return $out;
}

sub _rootpw_file
{
	my ($self) = @_;
	my $f = "$self->{dir}/rootpw";
	unless (-f $f)
	{
		open my $fh, '>', $f or die $!;
		print $fh $self->{rootpw};
		close $fh;
		chmod 0600, $f;
	}
	return $f;
}

sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill 'TERM', $self->{pid};
	for (1 .. 100)
	{
		last unless kill 0, $self->{pid};
		select(undef, undef, undef, 0.1);
	}
	delete $self->{pid};
	return;
}

END
{
	my $status = $?;
	$_->stop for @servers;
	$? = $status;
}

# The tree every server starts with: people, groups, and the search account
# cn=pgsearch (password 'Search-pw-1') for pg_hba search+bind.
sub base_ldif
{
	return <<"LDIF";
dn: $BASEDN
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,$BASEDN
objectClass: organizationalUnit
ou: people

dn: ou=groups,$BASEDN
objectClass: organizationalUnit
ou: groups

dn: cn=pgsearch,$BASEDN
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: pgsearch
userPassword: Search-pw-1

LDIF
}

sub user_dn { return "uid=$_[0],ou=people,$BASEDN"; }
sub group_dn { return "cn=$_[0],ou=groups,$BASEDN"; }

# A person (inetOrgPerson) with a password.
sub user_ldif
{
	my ($uid, $password) = @_;
	my $dn = user_dn($uid);
	return "dn: $dn\nobjectClass: inetOrgPerson\nuid: $uid\ncn: $uid\nsn: $uid\n"
	  . "userPassword: $password\n\n";
}

# A service account (for binding) with a password.
sub account_ldif
{
	my ($cn, $password) = @_;
	return "dn: cn=$cn,$BASEDN\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
	  . "cn: $cn\nuserPassword: $password\n\n";
}

# A groupOfNames with members (uids).
sub group_ldif
{
	my ($cn, @uids) = @_;
	my $ldif = "dn: " . group_dn($cn) . "\nobjectClass: groupOfNames\ncn: $cn\n";
	$ldif .= "member: " . user_dn($_) . "\n" for @uids;
	return "$ldif\n";
}

1;
