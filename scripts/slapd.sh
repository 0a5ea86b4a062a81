#!/usr/bin/env bash
# Run a throwaway OpenLDAP slapd on a loopback port for tests: its own config and data in a
# temporary directory, loaded from scripts/ldap/directory.ldif. Foreground; Ctrl-C or SIGTERM stops it.
#   scripts/slapd.sh PORT [DIR]
# Base: dc=stagekeeper,dc=test. Service account: cn=stagekeeper,ou=services,dc=stagekeeper,dc=test
# (password service-secret). Users and groups: see the LDIF.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:?usage: scripts/slapd.sh PORT [DIR]}
dir=${2:-$(mktemp -d /tmp/stagekeeper-slapd.XXXXXX)}
mkdir -p "$dir/data"
# A restart on the same directory keeps its data (tests stop and start it to simulate outages).
fresh=1
[ -f "$dir/data/data.mdb" ] && fresh=0
schema=/etc/ldap/schema
cat > "$dir/slapd.conf" <<CONF
include $schema/core.schema
include $schema/cosine.schema
include $schema/nis.schema
include $schema/inetorgperson.schema
pidfile $dir/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 104857600
suffix "dc=stagekeeper,dc=test"
rootdn "cn=root,dc=stagekeeper,dc=test"
rootpw $(slappasswd -s root-secret)
directory $dir/data
index objectClass,uid,cn,member,memberUid eq
access to attrs=userPassword
  by anonymous auth
  by self write
  by * none
access to *
  by users read
  by * none
CONF
# Replace {PASSWORD:clear} markers with salted hashes, then load the data offline.
if [ $fresh = 1 ]; then
python3 - "$dir/directory.ldif" <<'PY'
import re, subprocess, sys
text = open("scripts/ldap/directory.ldif").read()
def hashed(match):
    return subprocess.run(["slappasswd", "-s", match.group(1)], capture_output=True, text=True, check=True).stdout.strip()
open(sys.argv[1], "w").write(re.sub(r"\{PASSWORD:([^}]*)\}", hashed, text))
PY
slapadd -q -f "$dir/slapd.conf" -l "$dir/directory.ldif"
fi
exec slapd -d none -f "$dir/slapd.conf" -h "ldap://127.0.0.1:$port/"
