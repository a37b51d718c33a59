"""A real OpenLDAP `slapd` for the LDAP tests: own config, mdb databases and
certificates in a temporary directory, loopback ports, stopped and removed
afterwards.

Two directories in one slapd:
  dc=example,dc=test  OpenLDAP style: inetOrgPerson, groupOfNames,
                      mailLocalAddress (misc.schema) for alternate addresses
  dc=ad,dc=test       Active Directory style, through a small schema of our
                      own: user/group/computer classes, userPrincipalName,
                      sAMAccountName, proxyAddresses, memberOf,
                      userAccountControl
Both get users and groups from LDIF (see users_ldif()/ad_ldif()). TLS: a test
CA signs the server certificate (127.0.0.1); a second, unrelated CA is there
to check that verification fails with the wrong one.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from conftest import free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = "/etc/ldap/schema"
ADMIN_PW = "adminpw"
SERVICE_PW = "servicepw"

AD_SCHEMA = """
attributetype ( 1.3.6.1.4.1.99999.1.1 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.2 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.3 NAME 'proxyAddresses'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.99999.1.4 NAME 'memberOf'
  EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
attributetype ( 1.3.6.1.4.1.99999.1.5 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.1.6 NAME 'mailQuota'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.2.1 NAME 'user' SUP inetOrgPerson STRUCTURAL
  MAY ( userPrincipalName $ sAMAccountName $ proxyAddresses $ memberOf $
        userAccountControl $ mailQuota ) )
objectclass ( 1.3.6.1.4.1.99999.2.2 NAME 'computer' SUP user STRUCTURAL )
objectclass ( 1.3.6.1.4.1.99999.2.3 NAME 'group' SUP top STRUCTURAL
  MUST cn MAY ( member $ mail $ description $ memberOf $ sAMAccountName ) )
objectclass ( 1.3.6.1.4.1.99999.2.4 NAME 'roostQuotaUser' SUP top AUXILIARY
  MAY mailQuota )
"""


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s%s" % (cmd[0], r.stdout, r.stderr))
    return r


def make_ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
          "-subj", "/CN=%s" % name, "-keyout", key, "-out", crt,
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return key, crt


def make_server_cert(d, ca_key, ca_crt):
    key, csr, crt = (os.path.join(d, "server." + x) for x in ("key", "csr", "crt"))
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
          "-keyout", key, "-out", csr])
    _run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
          "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt])
    return key, crt


def users_ldif(domain):
    """The OpenLDAP-style directory. Groups: staff@ -> alice + eng; eng@ ->
    bob + staff (a loop); admins (no address) -> ops -> dave."""
    base = "dc=example,dc=test"
    people, groups = "ou=people," + base, "ou=groups," + base
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n" % base,
           "dn: %s\nobjectClass: organizationalUnit\nou: people\n" % people,
           "dn: %s\nobjectClass: organizationalUnit\nou: groups\n" % groups,
           "dn: cn=roost,%s\nobjectClass: person\ncn: roost\nsn: service\nuserPassword: %s\n"
           % (base, SERVICE_PW)]

    def person(uid, cn, pw, extra=""):
        out.append("dn: uid=%s,%s\nobjectClass: inetOrgPerson\nobjectClass: inetLocalMailRecipient\n"
                   "objectClass: roostQuotaUser\nuid: %s\ncn: %s\nsn: %s\nmail: %s@%s\n"
                   "userPassword: %s\n%s" % (uid, people, uid, cn, uid, uid, domain, pw, extra))

    person("alice", "Alice Smith", "alice-pw",
           "mailLocalAddress: a.smith@%s\nmailLocalAddress: alice.smith@%s\nmailQuota: 1000000\n"
           % (domain, domain))
    person("bob", "Bob Brown", "bob-pw")
    person("carol", "Carol White", "carol-pw")
    person("dave", "Dave Admin", "dave-pw")
    for i in range(50):
        person("user%d" % i, "User %d" % i, "pw-%d" % i,
               "mailLocalAddress: u%d.alt@%s\n" % (i, domain))

    def group(cn, members, mail=True):
        # groupOfNames has no mail attribute: extensibleObject allows one.
        lines = "dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\n" % (cn, groups, cn)
        if mail:
            lines += "objectClass: extensibleObject\nmail: %s@%s\n" % (cn, domain)
        for m in members:
            lines += "member: %s\n" % m
        out.append(lines)
    group("staff", ["uid=alice," + people, "cn=eng," + groups])
    group("eng", ["uid=bob," + people, "cn=staff," + groups])
    group("ops", ["uid=dave," + people], mail=False)
    group("admins", ["cn=ops," + groups], mail=False)
    text = "\n".join(out)
    return text


def ad_ldif(domain):
    base = "dc=ad,dc=test"
    users = "cn=Users," + base
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\no: AD\ndc: ad\n" % base,
           "dn: %s\nobjectClass: organizationalUnit\nou: Users\n" % users.replace("cn=Users", "ou=Users"),
           "dn: cn=roost,%s\nobjectClass: person\ncn: roost\nsn: service\nuserPassword: %s\n"
           % (base, SERVICE_PW)]
    users = "ou=Users," + base

    def user(sam, name, pw, uac, extra=""):
        out.append("dn: cn=%s,%s\nobjectClass: user\ncn: %s\nsn: %s\ndisplayName: %s\n"
                   "sAMAccountName: %s\nuserPrincipalName: %s@%s\nmail: %s@%s\n"
                   "proxyAddresses: SMTP:%s@%s\nproxyAddresses: smtp:%s.alt@%s\n"
                   "proxyAddresses: X500:/o=Example/cn=%s\n"
                   "userAccountControl: %d\nuserPassword: %s\n%s"
                   % (name, users, name, name, name, sam, sam, domain, sam, domain,
                      sam, domain, sam, domain, sam, uac, pw, extra))
    user("erin", "Erin Jones", "erin-pw", 512, "memberOf: cn=Sales,%s\n" % users)
    user("frank", "Frank Off", "frank-pw", 514)
    out.append("dn: cn=Sales,%s\nobjectClass: group\ncn: Sales\nmail: sales@%s\n"
               "member: cn=Erin Jones,%s\n" % (users, domain, users))
    out.append("dn: cn=WS1,%s\nobjectClass: computer\ncn: WS1\nsn: ws\nsAMAccountName: ws1\n"
               "mail: ws1@%s\nuserPassword: ws-pw\n" % (users, domain))
    return "\n".join(out)


def stop_roost(r):
    """Stops a conftest.Roost installation and its managed PostgreSQL."""
    import glob
    import pwd
    r.stop()
    pg = os.path.join(r.data_dir, "pgdata")
    if os.path.isdir(pg):
        pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))[-1]
        cmd = [pg_ctl, "-D", pg, "-m", "immediate", "stop"]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", pwd.getpwuid(os.stat(pg).st_uid).pw_name, "--"] + cmd
        subprocess.run(cmd, capture_output=True)


class Slapd:
    def __init__(self, domain, ad_domain, base_dir=None):
        self.dir = tempfile.mkdtemp(prefix="roost-slapd-", dir=base_dir)
        os.chmod(self.dir, 0o755)
        self.domain, self.ad_domain = domain, ad_domain
        self.port, self.tls_port = free_port(), free_port()
        self.url = "ldap://127.0.0.1:%d" % self.port
        self.ldaps_url = "ldaps://127.0.0.1:%d" % self.tls_port
        self.proc = None
        self._setup()

    def _setup(self):
        d = self.dir
        ca_key, self.ca_file = make_ca(d, "testca")
        _, self.wrong_ca_file = make_ca(d, "otherca")
        key, crt = make_server_cert(d, ca_key, self.ca_file)
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o644)
        with open(os.path.join(d, "ad.schema"), "w") as f:
            f.write(AD_SCHEMA)
        for name in ("example", "ad"):
            os.makedirs(os.path.join(d, "db-" + name))
        self.conf = os.path.join(d, "slapd.conf")
        with open(self.conf, "w") as f:
            f.write(self._conf(key, crt))
        self._load("dc=example,dc=test", users_ldif(self.domain))
        self._load("dc=ad,dc=test", ad_ldif(self.ad_domain))

    def _conf(self, key, crt):
        d = self.dir
        schemas = "".join("include %s/%s.schema\n" % (SCHEMA_DIR, s)
                          for s in ("core", "cosine", "inetorgperson", "misc"))
        dbs = ""
        for name, suffix in (("example", "dc=example,dc=test"), ("ad", "dc=ad,dc=test")):
            dbs += ("database mdb\nmaxsize 104857600\nsuffix \"%s\"\nrootdn \"cn=admin,%s\"\n"
                    "rootpw %s\ndirectory %s/db-%s\n"
                    "index objectClass,uid,mail,cn,member eq\n"
                    "access to attrs=userPassword by self write by anonymous auth by * none\n"
                    "access to * by * read\n\n" % (suffix, suffix, ADMIN_PW, d, name))
        return ("%s" "include %s/ad.schema\n"
                "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
                "pidfile %s/slapd.pid\nargsfile %s/slapd.args\n"
                "TLSCACertificateFile %s\nTLSCertificateFile %s\nTLSCertificateKeyFile %s\n"
                "threads 8\n\n%s" % (schemas, d, d, d, self.ca_file, crt, key, dbs))

    def _load(self, suffix, ldif):
        path = os.path.join(self.dir, suffix.split(",")[0].split("=")[1] + ".ldif")
        with open(path, "w") as f:
            f.write(ldif)
        _run([SLAPADD, "-f", self.conf, "-b", suffix, "-l", path])

    def start(self, timeout=15):
        assert self.proc is None
        self.proc = subprocess.Popen(
            [SLAPD, "-f", self.conf, "-h", "%s/ %s/" % (self.url, self.ldaps_url), "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "slapd.log"), "ab"))
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("slapd exited: " + open(os.path.join(self.dir, "slapd.log")).read())
                time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def stop(self):
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def modify(self, suffix, ldif):
        """Applies an LDIF change (ldapmodify) as the suffix's admin."""
        return _run(["ldapmodify", "-x", "-H", self.url, "-D", "cn=admin," + suffix,
                     "-w", ADMIN_PW], input=ldif)

    def delete(self, suffix, dn):
        return _run(["ldapdelete", "-x", "-H", self.url, "-D", "cn=admin," + suffix,
                     "-w", ADMIN_PW, dn])

    def settings_openldap(self, url=None, **over):
        s = {"preset": "openldap", "urls": url or self.url, "ca_file": self.ca_file,
             "bind_dn": "cn=roost,dc=example,dc=test", "bind_password": SERVICE_PW,
             "base_dn": "ou=people,dc=example,dc=test",
             "group_base": "ou=groups,dc=example,dc=test",
             "admin_group": "cn=admins,ou=groups,dc=example,dc=test",
             "quota_attr": "mailQuota", "domains": self.domain, "timeout": "2"}
        s.update(over)
        return s

    def settings_ad(self, url=None, **over):
        s = {"preset": "ad", "urls": url or self.url, "ca_file": self.ca_file,
             "bind_dn": "cn=roost,dc=ad,dc=test", "bind_password": SERVICE_PW,
             "base_dn": "ou=Users,dc=ad,dc=test", "group_base": "ou=Users,dc=ad,dc=test",
             "admin_group": "cn=Sales,ou=Users,dc=ad,dc=test",
             "domains": self.ad_domain, "timeout": "2"}
        s.update(over)
        return s
