#!/usr/bin/env bash
# Run a throwaway OpenLDAP slapd on a loopback port for tests: its own config and data in a
# temporary directory, loaded from scripts/ldap/directory.ldif. Foreground; Ctrl-C or SIGTERM stops it.
#   scripts/slapd.sh PORT [DIR] [TLS_PORT]
# With TLS_PORT, slapd also listens for LDAPS there and offers StartTLS on PORT, with a
# throwaway CA and server certificate for 127.0.0.1 made in DIR/tls (the CA is DIR/tls/ca.pem).
# Base: dc=stagekeeper,dc=test. Service account: cn=stagekeeper,ou=services,dc=stagekeeper,dc=test
# (password service-secret). Users and groups: see the LDIF.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:?usage: scripts/slapd.sh PORT [DIR] [TLS_PORT]}
dir=${2:-$(mktemp -d /tmp/stagekeeper-slapd.XXXXXX)}
tls_port=${3:-}
mkdir -p "$dir/data"
# A restart on the same directory keeps its data (tests stop and start it to simulate outages).
fresh=1
if [ -f "$dir/data/data.mdb" ]; then fresh=0; fi
schema=/etc/ldap/schema
tls_conf=""
urls="ldap://127.0.0.1:$port/"
if [ -n "$tls_port" ]; then
  tls=$dir/tls
  mkdir -p "$tls"
  if [ ! -f "$tls/server.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Stagekeeper test CA" \
      -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$tls/san.cnf"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
      -extfile "$tls/san.cnf" -out "$tls/server.pem" 2>/dev/null
  fi
  tls_conf="TLSCACertificateFile $tls/ca.pem
TLSCertificateFile $tls/server.pem
TLSCertificateKeyFile $tls/server.key"
  urls="$urls ldaps://127.0.0.1:$tls_port/"
fi
cat > "$dir/slapd.conf" <<CONF
include $schema/core.schema
include $schema/cosine.schema
include $schema/nis.schema
include $schema/inetorgperson.schema
pidfile $dir/slapd.pid
$tls_conf
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
exec slapd -d none -f "$dir/slapd.conf" -h "$urls"
