# Upgrade path: install the first version, ALTER EXTENSION pg_vms UPDATE to
# the default version, and compare the result with a fresh install of it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VmsTest;

my $node = vms_node('upgrade', create => 0);
$node->safe_psql('postgres', 'CREATE DATABASE vms');

my $default = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'pg_vms'");
my @versions = split /\n/, $node->safe_psql('postgres',
	"SELECT version FROM pg_available_extension_versions WHERE name = 'pg_vms' ORDER BY string_to_array(version, '.')::int[]");
is($versions[0], '1.0', 'the first version is 1.0');


# The schema after the update equals a fresh install: every member object,
# function bodies and privileges, columns, constraints, policies, triggers.
my $describe = <<'SQL';
SELECT string_agg(d, E'\n' ORDER BY d) FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, objsubid) AS d
    FROM pg_depend
   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_vms')
  UNION ALL
  SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' '
         || COALESCE(p.proacl::text, '') || ' ' || COALESCE(obj_description(p.oid, 'pg_proc'), '')
    FROM pg_proc p WHERE p.pronamespace = 'vms'::regnamespace
  UNION ALL
  SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
         || ' ' || a.attnotnull || ' ' || COALESCE(pg_get_expr(ad.adbin, ad.adrelid), '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE c.relnamespace = 'vms'::regnamespace AND NOT c.relispartition
     AND c.relkind IN ('r', 'p', 'v') AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' ' || c.relrowsecurity || c.relforcerowsecurity
         || ' ' || COALESCE(c.relacl::text, '') || ' ' || COALESCE(obj_description(c.oid, 'pg_class'), '')
    FROM pg_class c WHERE c.relnamespace = 'vms'::regnamespace AND NOT c.relispartition
  UNION ALL
  SELECT 'constraint ' || r.relname || ' ' || pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid
   WHERE r.relnamespace = 'vms'::regnamespace AND NOT r.relispartition
  UNION ALL
  SELECT 'policy ' || tablename || ' ' || policyname || ' ' || cmd || ' ' || COALESCE(qual, '')
    FROM pg_policies WHERE schemaname = 'vms'
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid)
    FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
   WHERE NOT t.tgisinternal AND r.relnamespace = 'vms'::regnamespace AND NOT r.relispartition
  UNION ALL
  SELECT 'config ' || extconfig::regclass[]::text || ' ' || COALESCE(extcondition::text, '')
    FROM pg_extension WHERE extname = 'pg_vms'
) x
SQL
sub schema_of { my ($db) = @_; return $node->safe_psql($db, $describe); }

# pg_vms lives in the one database vms.database_name names: first a fresh
# install of the default version, described, then removed ...
$node->safe_psql('vms', 'CREATE EXTENSION pg_vms CASCADE');
my $fresh = schema_of('vms');
$node->safe_psql('vms', 'DROP EXTENSION pg_vms');
# ... then the first version, with data, updated.
$node->safe_psql('vms', "CREATE EXTENSION pg_vms VERSION '1.0'");
$node->safe_psql('vms', "SELECT vms.add_camera('before-update'); SELECT vms.create_role('regress_upgrade_role')");
$node->safe_psql('vms', 'ALTER EXTENSION pg_vms UPDATE');
is($node->safe_psql('vms', "SELECT extversion FROM pg_extension WHERE extname = 'pg_vms'"),
	$default, "ALTER EXTENSION pg_vms UPDATE reaches $default");
my $upgraded = schema_of('vms');
ok($upgraded eq $fresh && $fresh =~ /function vms.authorize/ && $fresh =~ /policy segments/,
	'the updated schema equals a fresh install')
  or do
{
	my $dir = PostgreSQL::Test::Utils::tempdir;
	PostgreSQL::Test::Utils::append_to_file("$dir/upgraded.sql", $upgraded);
	PostgreSQL::Test::Utils::append_to_file("$dir/fresh.sql", $fresh);
	diag(`diff -u $dir/fresh.sql $dir/upgraded.sql | head -60`);
};
is($node->safe_psql('vms', "SELECT name FROM vms.cameras"), 'before-update', 'data kept across the update');
is($node->safe_psql('vms', "SELECT ok FROM vms.verify_audit()"), 't', 'audit chain intact across the update');
$node->safe_psql('vms', "SELECT vms.set_camera_credential(1, 'admin', 'pw')");
is($node->safe_psql('vms', 'SELECT count(*) FROM vms.camera_credentials WHERE camera_id = 1'), '1',
	'the new version works on the old data');

# Installing in another database is refused.
$node->safe_psql('postgres', 'CREATE DATABASE other');
my ($ret, $out, $err) = $node->psql('other', 'CREATE EXTENSION pg_vms CASCADE');
like($err, qr/pg_vms can only be installed in the database named by vms.database_name \("vms"\)/,
	'pg_vms refuses a second database');

$node->stop;
done_testing();
