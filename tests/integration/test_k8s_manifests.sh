#!/bin/bash
# test_k8s_manifests: the Kubernetes packaging (packaging/kubernetes) is
# what docs/kubernetes.md says, without a cluster:
#  - every document of every *.yaml there parses (python3-yaml), and the
#    kinds a run needs are there: Namespace, ServiceAccount, ClusterRole,
#    ClusterRoleBinding, Secret, PersistentVolumeClaim, CronJob;
#  - RBAC: every rule of every role grants get and list only; coffer-read
#    grants no Secrets (neither by name nor by "*" in the core group or in
#    apiGroups "*"), yet grants get and list on every other listable
#    resource of the Kubernetes 1.30 discovery documents of tests/data
#    (so "every resource but Secrets" holds); coffer-read-secrets grants
#    get and list on Secrets and nothing else, and lives in its own file;
#    each binding names a role of these files and the service account coffer;
#  - the CronJobs: concurrencyPolicy Forbid, backoffLimit and
#    activeDeadlineSeconds, restartPolicy Never; every container (init ones
#    too) runs as non-root, with a read-only root file system, no privilege
#    escalation, no capabilities, the RuntimeDefault seccomp profile, and
#    requests and limits; the manifests CronJob runs 'backup cluster' as the
#    service account coffer, the PostgreSQL one mounts no token; each pod's
#    hostname is its CronJob's name, so every run records one host; every
#    volume, Secret and claim they name exists; the configuration is mounted
#    read-only at /etc/coffer, its catalog is on a claim, and the files its
#    signing_key and passfile name are written by the init container;
#  - each coffer.conf of a Secret loads in the real coffer (see
#    coffer_config_loads below for how), with mode 0440 as a Secret volume
#    gives it; unedited, it is refused at its recipients placeholder;
#  - the Dockerfile builds FROM debian:12-slim, installs the .deb, runs as a
#    user that is not root, the uid the CronJobs run as, and its entrypoint
#    is coffer.
# To show that the checks can fail, the checker is also run on copies of
# the manifests with a verb added, Secrets granted (by name, and through
# apiGroups "*"), a core resource left out, concurrencyPolicy Allow, a
# writable root file system and another service account; and each
# coffer.conf is loaded once more with a misspelled key.
. "$(dirname "$0")/lib.sh"
t_setup k8s_manifests

K8S=$COFFER_SRC/packaging/kubernetes
DISCOVERY=$COFFER_SRC/tests/data/k8s-discovery

if ! python3 -c 'import yaml' 2>/dev/null; then
	# A failure, not a skip: this is the only check of these files in CI.
	fail "python3-yaml is importable" "install python3-yaml (packaging/install-deps.sh --test)"
	t_finish
fi

# check_manifests.py DIR DISCOVERY OUTDIR: one line per check on stdout,
# "ok<TAB>what" or "FAIL<TAB>what<TAB>why"; writes OUTDIR/confs, one line
# "CRONJOB<TAB>FILE<TAB>SOURCE<TAB>TYPE" per CronJob, FILE being the
# coffer.conf of its Secret; exits 1 if a check failed.
cat >"$T/check_manifests.py" <<'PY'
import configparser, glob, json, os, sys
import yaml

kdir, discovery, outdir = sys.argv[1:4]
failed = False

def check(ok, what, why=""):
    global failed
    if ok:
        print("ok\t%s" % what)
    else:
        failed = True
        print("FAIL\t%s\t%s" % (what, why))
    return ok

docs = []  # (file name, document)
files = sorted(glob.glob(os.path.join(kdir, "*.yaml")))
check(files, "packaging/kubernetes holds YAML files", "none found in " + kdir)
for path in files:
    name = os.path.basename(path)
    try:
        with open(path, encoding="utf-8") as f:
            found = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        check(False, "%s parses" % name, str(e).replace("\n", " "))
        continue
    bad = [d for d in found if not (isinstance(d, dict) and d.get("apiVersion")
                                    and d.get("kind") and d.get("metadata", {}).get("name"))]
    check(found and not bad, "%s parses: %d documents, each with apiVersion, kind and name"
          % (name, len(found)), "%d documents, %d incomplete" % (len(found), len(bad)))
    docs += [(name, d) for d in found]

def of_kind(kind):
    return [(f, d) for f, d in docs if d.get("kind") == kind]

def named(kind, name):
    for f, d in of_kind(kind):
        if d["metadata"]["name"] == name:
            return f, d
    return None, None

kinds = sorted({d["kind"] for _, d in docs})
for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret",
             "PersistentVolumeClaim", "CronJob"):
    check(kind in kinds, "a %s is defined" % kind, "kinds found: %s" % ", ".join(kinds))

# --- RBAC ---------------------------------------------------------------------------
ALLOWED = {"get", "list"}
for f, d in of_kind("ClusterRole") + of_kind("Role"):
    rname = "%s %s" % (d["kind"], d["metadata"]["name"])
    check("aggregationRule" not in d, "%s has no aggregationRule (its rules are all it grants)"
          % rname, "an aggregated role takes rules from elsewhere")
    rules = d.get("rules") or []
    check(rules, "%s has rules" % rname, "no rules")
    for i, r in enumerate(rules):
        verbs = set(r.get("verbs") or [])
        check(verbs and verbs <= ALLOWED, "%s rule %d: verbs %s are get/list only"
              % (rname, i + 1, sorted(verbs)), "beyond get and list: %s"
              % sorted(verbs - ALLOWED) if verbs else "no verbs")

def grants(role, group, resource, verb):
    """Whether a rule of role grants verb on group/resource (RBAC's matching)."""
    for r in role.get("rules") or []:
        groups = r.get("apiGroups") or []
        resources = r.get("resources") or []
        if r.get("resourceNames"):
            continue  # grants named objects only, never a list
        if ("*" in groups or group in groups) and ("*" in resources or resource in resources) \
                and ("*" in (r.get("verbs") or []) or verb in (r.get("verbs") or [])):
            return True
    return False

_, read = named("ClusterRole", "coffer-read")
if check(read is not None, "ClusterRole coffer-read is defined", "missing"):
    for verb in ("get", "list"):
        check(not grants(read, "", "secrets", verb),
              "coffer-read does not grant %s on secrets" % verb,
              "a rule matches core secrets (by name, or by \"*\" in resources or apiGroups)")
    for i, r in enumerate(read.get("rules") or []):
        groups = r.get("apiGroups") or []
        check("*" not in groups, "coffer-read rule %d: apiGroups is not \"*\" (that includes "
              "the core group, so Secrets)" % (i + 1), "apiGroups %s" % groups)
        if "" in groups:
            check("*" not in (r.get("resources") or []) and not any(
                  x.startswith("secrets") for x in r.get("resources") or []),
                  "coffer-read: the core group's resources are named, secrets not among them",
                  "resources %s" % r.get("resources"))
    # Every listable resource of a 1.30 API server, but core secrets.
    wanted = []
    with open(os.path.join(discovery, "api__v1.json"), encoding="utf-8") as f:
        wanted += [("", r["name"]) for r in json.load(f)["resources"]
                   if "/" not in r["name"] and "list" in r.get("verbs", [])]
    with open(os.path.join(discovery, "apis.json"), encoding="utf-8") as f:
        groups = json.load(f)["groups"]
    for g in groups:
        for v in g["versions"]:
            p = os.path.join(discovery, "apis__%s__%s.json" % (g["name"], v["version"]))
            if not os.path.exists(p):
                continue
            with open(p, encoding="utf-8") as f:
                wanted += [(g["name"], r["name"]) for r in json.load(f)["resources"]
                           if "/" not in r["name"] and "list" in r.get("verbs", [])]
    wanted = sorted(set(wanted) - {("", "secrets")})
    missing = ["%s.%s" % (res, grp or "core") for grp, res in wanted
               if not (grants(read, grp, res, "get") and grants(read, grp, res, "list"))]
    check(len(wanted) > 50 and not missing,
          "coffer-read grants get and list on all %d listable resources of the 1.30 "
          "discovery documents but secrets" % len(wanted),
          "not granted: %s" % ", ".join(missing) if missing else "too few resources found")

fsec, sec = named("ClusterRole", "coffer-read-secrets")
if check(sec is not None, "ClusterRole coffer-read-secrets is defined", "missing"):
    rules = sec.get("rules") or []
    check(len(rules) == 1 and rules[0].get("apiGroups") == [""]
          and rules[0].get("resources") == ["secrets"]
          and sorted(rules[0].get("verbs") or []) == ["get", "list"]
          and not rules[0].get("resourceNames"),
          "coffer-read-secrets grants get and list on core secrets, nothing else",
          "rules %s" % rules)
    bound = [f for f, d in of_kind("ClusterRoleBinding")
             if d.get("roleRef", {}).get("name") == "coffer-read-secrets"]
    check(bound and fsec != "manifests-backup.yaml" and set(bound) == {fsec},
          "coffer-read-secrets and its binding are in their own file (opt-in): %s" % fsec,
          "role in %s, bound in %s" % (fsec, bound))

sas = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for _, d in of_kind("ServiceAccount")}
for f, d in of_kind("ClusterRoleBinding"):
    ref = d.get("roleRef", {})
    bname = "ClusterRoleBinding %s" % d["metadata"]["name"]
    check(ref.get("kind") == "ClusterRole" and named("ClusterRole", ref.get("name"))[1],
          "%s binds a ClusterRole of these files (%s)" % (bname, ref.get("name")),
          "roleRef %s" % ref)
    subjects = d.get("subjects") or []
    check(subjects and all(s.get("kind") == "ServiceAccount" and
                           (s.get("namespace"), s.get("name")) == ("coffer", "coffer")
                           for s in subjects),
          "%s binds the service account coffer/coffer only" % bname, "subjects %s" % subjects)
check(("coffer", "coffer") in sas, "ServiceAccount coffer/coffer is defined", "found %s" % sas)

# --- CronJobs -----------------------------------------------------------------------
namespaces = {d["metadata"]["name"] for _, d in of_kind("Namespace")}
secrets = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for _, d in of_kind("Secret")}
claims = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for _, d in of_kind("PersistentVolumeClaim")}

def secret_data(ns, name, key):
    s = secrets.get((ns, name)) or {}
    return (s.get("stringData") or {}).get(key)

def quantity(res, kind, what):
    return (res.get(kind) or {}).get(what) is not None

conf_lines = []
for f, cj in of_kind("CronJob"):
    n = cj["metadata"]["name"]
    ns = cj["metadata"].get("namespace")
    check(ns in namespaces, "CronJob %s: its namespace %s is defined" % (n, ns), "namespaces %s" % namespaces)
    spec = cj.get("spec") or {}
    check(spec.get("concurrencyPolicy") == "Forbid", "CronJob %s: concurrencyPolicy Forbid" % n,
          "concurrencyPolicy %s" % spec.get("concurrencyPolicy"))
    job = (spec.get("jobTemplate") or {}).get("spec") or {}
    check(isinstance(job.get("backoffLimit"), int) and isinstance(job.get("activeDeadlineSeconds"), int),
          "CronJob %s: backoffLimit and activeDeadlineSeconds are set" % n,
          "backoffLimit %s, activeDeadlineSeconds %s" % (job.get("backoffLimit"), job.get("activeDeadlineSeconds")))
    pod = (job.get("template") or {}).get("spec") or {}
    psc = pod.get("securityContext") or {}
    check(pod.get("restartPolicy") == "Never", "CronJob %s: restartPolicy Never" % n,
          "restartPolicy %s" % pod.get("restartPolicy"))
    check(pod.get("hostname") == n, "CronJob %s: the pods' hostname is %s (one host in the "
          "records for every run)" % (n, n), "hostname %s" % pod.get("hostname"))
    check(psc.get("runAsNonRoot") is True and isinstance(psc.get("runAsUser"), int)
          and psc.get("runAsUser") > 0,
          "CronJob %s: the pod runs as non-root uid %s" % (n, psc.get("runAsUser")),
          "securityContext %s" % psc)
    print("uid\t%s\t%s" % (n, psc.get("runAsUser")))
    containers = pod.get("containers") or []
    inits = pod.get("initContainers") or []
    for c in inits + containers:
        cn = "CronJob %s container %s" % (n, c.get("name"))
        sc = c.get("securityContext") or {}
        nonroot = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        check(nonroot is True, "%s: runAsNonRoot true" % cn, "runAsNonRoot %s" % nonroot)
        check(sc.get("readOnlyRootFilesystem") is True, "%s: readOnlyRootFilesystem true" % cn,
              "readOnlyRootFilesystem %s" % sc.get("readOnlyRootFilesystem"))
        check(sc.get("allowPrivilegeEscalation") is False, "%s: allowPrivilegeEscalation false" % cn,
              "allowPrivilegeEscalation %s" % sc.get("allowPrivilegeEscalation"))
        check((sc.get("capabilities") or {}).get("drop") == ["ALL"]
              and not (sc.get("capabilities") or {}).get("add"),
              "%s: drops ALL capabilities, adds none" % cn, "capabilities %s" % sc.get("capabilities"))
        check(seccomp == "RuntimeDefault", "%s: seccomp profile RuntimeDefault" % cn,
              "seccomp %s" % seccomp)
        res = c.get("resources") or {}
        check(all(quantity(res, k, w) for k in ("requests", "limits") for w in ("cpu", "memory")),
              "%s: cpu and memory requests and limits" % cn, "resources %s" % res)
        vols = {v["name"] for v in pod.get("volumes") or []}
        unknown = [m["name"] for m in c.get("volumeMounts") or [] if m["name"] not in vols]
        check(not unknown, "%s: every volumeMount names a volume" % cn, "unknown %s" % unknown)
    check(len(containers) == 1, "CronJob %s: one container" % n, "%d containers" % len(containers))
    if not containers:
        continue
    main = containers[0]
    args = main.get("args") or []
    check(len(args) == 2 and args[0] == "backup", "CronJob %s: runs 'coffer backup SOURCE' (%s)"
          % (n, " ".join(args)), "args %s" % args)
    # Secrets and claims the pod names exist.
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    named_secrets = []
    for v in volumes.values():
        if "secret" in v:
            named_secrets.append(v["secret"]["secretName"])
        for s in (v.get("projected") or {}).get("sources") or []:
            if "secret" in s:
                named_secrets.append(s["secret"]["name"])
        if "persistentVolumeClaim" in v:
            cl = v["persistentVolumeClaim"]["claimName"]
            check((ns, cl) in claims, "CronJob %s: claim %s is defined" % (n, cl), "missing")
    for c in inits + containers:
        named_secrets += [e["secretRef"]["name"] for e in c.get("envFrom") or [] if "secretRef" in e]
    for s in sorted(set(named_secrets)):
        check((ns, s) in secrets, "CronJob %s: Secret %s is defined" % (n, s), "missing")
    # The configuration: a Secret's coffer.conf, read-only at /etc/coffer.
    mounts = {m["mountPath"]: m for m in main.get("volumeMounts") or []}
    cm = mounts.get("/etc/coffer")
    cvol = volumes.get(cm["name"]) if cm else None
    if not check(cm and cm.get("readOnly") is True and cvol and "secret" in cvol,
                 "CronJob %s: a Secret is mounted read-only at /etc/coffer" % n, "mount %s" % cm):
        continue
    items = cvol["secret"].get("items") or []
    check(any(i["key"] == "coffer.conf" and i["path"] == "coffer.conf" for i in items),
          "CronJob %s: /etc/coffer/coffer.conf is the Secret's key coffer.conf" % n, "items %s" % items)
    text = secret_data(ns, cvol["secret"]["secretName"], "coffer.conf")
    if not check(text, "CronJob %s: Secret %s holds coffer.conf" % (n, cvol["secret"]["secretName"]),
                 "no stringData coffer.conf"):
        continue
    conf = os.path.join(outdir, "%s.conf" % n)
    with open(conf, "w", encoding="utf-8") as out:
        out.write(text)
    ini = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"),
                                    comment_prefixes=(";", "#"), delimiters=("=",))
    ini.read_string(text)
    source = args[1] if len(args) == 2 else ""
    stype = ini.get("source " + source, "type", fallback="")
    check(stype, "CronJob %s: coffer.conf has [source %s]" % (n, source), "sections %s" % ini.sections())
    conf_lines.append("%s\t%s\t%s\t%s" % (n, conf, source, stype))
    # Where coffer writes: the catalog on a claim, not on the read-only root.
    cat = ini.get("catalog", "path", fallback="/var/lib/coffer/catalog")
    on = [m for p, m in mounts.items() if cat.startswith(p.rstrip("/") + "/")]
    check(on and "persistentVolumeClaim" in volumes[on[0]["name"]] and not on[0].get("readOnly"),
          "CronJob %s: the catalog %s is on a writable claim" % (n, cat), "mounts %s" % on)
    tmp = mounts.get("/tmp")
    check(tmp and not tmp.get("readOnly") and "emptyDir" in volumes[tmp["name"]],
          "CronJob %s: /tmp is a writable emptyDir" % n, "mount %s" % tmp)
    # signing_key and passfile: copied into place by an init container.
    copied = set()
    for c in inits:
        cmd = c.get("command") or []
        if cmd[:1] == ["install"] and "0600" in cmd:
            if "-t" in cmd:
                dest = cmd[cmd.index("-t") + 1]
                copied |= {os.path.join(dest, os.path.basename(s)) for s in cmd[cmd.index("-t") + 2:]}
            else:
                copied.add(cmd[-1])
    for section, key in (("encryption", "signing_key"), ("source " + source, "passfile")):
        p = ini.get(section, key, fallback=None)
        if p is None:
            continue
        check(p in copied, "CronJob %s: %s %s is written with mode 0600 by an init container"
              % (n, key, p), "the init containers write %s" % sorted(copied))
    check(ini.get("encryption", "signing_key", fallback=None),
          "CronJob %s: signing_key is set (a key of the default path would be lost with "
          "the volume)" % n, "no signing_key in [encryption]")
    check(not ini.has_option("repository", "secret_key"),
          "CronJob %s: no secret_key in coffer.conf (a Secret volume's file is group-readable)" % n,
          "secret_key is set")
    token = pod.get("automountServiceAccountToken")
    if stype == "kubernetes":
        check(pod.get("serviceAccountName") == "coffer" and token is not False,
              "CronJob %s: runs as the service account coffer, with its token" % n,
              "serviceAccountName %s, automountServiceAccountToken %s"
              % (pod.get("serviceAccountName"), token))
        check(ini.get("source " + source, "in_cluster", fallback="") == "true",
              "CronJob %s: in_cluster = true" % n, "in_cluster is not true")
    else:
        check(token is False and pod.get("serviceAccountName") in (None, "default"),
              "CronJob %s: no service account token (it does not call the API server)" % n,
              "serviceAccountName %s, automountServiceAccountToken %s"
              % (pod.get("serviceAccountName"), token))

names = {d["metadata"]["name"] for _, d in of_kind("CronJob")}
check({"coffer-manifests", "coffer-postgres"} <= names, "CronJobs coffer-manifests and "
      "coffer-postgres are defined", "found %s" % sorted(names))
check(any(l.split("\t")[3] == "kubernetes" for l in conf_lines)
      and any(l.split("\t")[3] == "postgres" for l in conf_lines),
      "one CronJob backs up a kubernetes source, one a postgres source",
      "types %s" % [l.split("\t")[3] for l in conf_lines])
with open(os.path.join(outdir, "confs"), "w", encoding="utf-8") as out:
    out.write("".join(l + "\n" for l in conf_lines))
sys.exit(1 if failed else 0)
PY

# run_checker DIR OUTDIR: runs check_manifests.py on DIR; its lines go to
# OUTDIR/checks; exit status that of the script.
run_checker() {
	mkdir -p "$2"
	python3 "$T/check_manifests.py" "$1" "$DISCOVERY" "$2" >"$2/checks" 2>&1
}

mkdir -p "$T/real"
run_checker "$K8S" "$T/real"
checker_rc=$?
while IFS=$'\t' read -r status what why; do
	case $status in
	ok) pass "$what" ;;
	FAIL) fail "$what" "$why" ;;
	uid) ;;
	*) fail "check_manifests.py printed an unexpected line" "$status $what $why" ;;
	esac
done <"$T/real/checks"
if [ "$checker_rc" = 0 ]; then
	pass "check_manifests.py passed"
else
	fail "check_manifests.py passed" "exit status $checker_rc; its output is in $T/real/checks"
fi

# --- The configuration files load in coffer --------------------------------------
# coffer has no command that only loads a configuration, and 'coffer check'
# reaches the bucket and the sources. 'backup --dry-run SOURCE' loads the
# whole file first (every section and key, each source's own keys and
# checks, the repository as a whole) and only then refuses a source that is
# not of type files, before touching the catalog or the network. So exit 2
# with "--dry-run is for files sources; source S is of type T" means the
# file loaded; an unknown or misspelled key, a bad value or a bad recipient
# stops it earlier with "FILE:LINE: ...".
coffer_config_loads() { # FILE SOURCE TYPE
	cf_conf "$1" backup --dry-run "$2"
	[ "$RC" = 2 ] && grep -q "^coffer: error: --dry-run is for files sources; source $2 is of type $3\$" "$ERR"
}

PLACEHOLDER=age1-REPLACE-with-your-recipient
n_confs=0
while IFS=$'\t' read -r cronjob file source type; do
	n_confs=$((n_confs + 1))
	# As a Secret volume with defaultMode 0440 and fsGroup gives it.
	chmod 0440 "$file"
	check_grep "$cronjob: coffer.conf has the recipient placeholder" "$file" "^recipients = $PLACEHOLDER\$"
	cf_conf "$file" backup --dry-run "$source"
	check_rc "$cronjob: coffer.conf as shipped is refused (placeholder recipient)" 2
	check_grep "$cronjob: ... at its recipients line" "$ERR" \
		"^coffer: error: .*\.conf:[0-9]+: recipients: '$PLACEHOLDER' is not an age X25519 recipient"
	sed "s/^recipients = $PLACEHOLDER\$/recipients = $RECIPIENT/" "$file" >"$file.filled"
	chmod 0440 "$file.filled"
	if coffer_config_loads "$file.filled" "$source" "$type"; then
		pass "$cronjob: coffer.conf loads in coffer with a real recipient ([source $source], type $type)"
	else
		fail "$cronjob: coffer.conf loads in coffer with a real recipient" "exit $RC"
		t_dump_last
	fi
	# The method itself: a misspelled key in the source section is caught.
	sed "s/^type = $type\$/type = $type\nsecretz = false/" "$file.filled" >"$file.typo"
	if ! coffer_config_loads "$file.typo" "$source" "$type" &&
		grep -q "unknown key 'secretz'" "$ERR"; then
		pass "$cronjob: the same check fails on a misspelled key (unknown key 'secretz')"
	else
		fail "$cronjob: the same check fails on a misspelled key" "exit $RC"
		t_dump_last
	fi
done <"$T/real/confs"
check_eq "two coffer.conf files were loaded" 2 "$n_confs"

# --- Dockerfile ---------------------------------------------------------------------
DOCKERFILE=$K8S/Dockerfile
check_eq "Dockerfile: one FROM, debian:12-slim" "FROM debian:12-slim" "$(grep -E '^FROM ' "$DOCKERFILE")"
check_grep "Dockerfile: copies the package from the build context" "$DOCKERFILE" '^COPY coffer_\*\.deb '
# RUN lines joined at their backslashes.
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$DOCKERFILE" >"$T/Dockerfile.joined"
check_grep "Dockerfile: installs it with apt-get (so its Depends come too)" "$T/Dockerfile.joined" \
	'apt-get install -y .*coffer_\*\.deb'
user=$(grep -E '^USER ' "$DOCKERFILE" | tail -n 1 | awk '{print $2}')
uid=${user%%:*}
if [ -n "$uid" ] && [ "$uid" != root ] && [ "$uid" != 0 ]; then
	pass "Dockerfile: runs as USER $user, not root"
else
	fail "Dockerfile: runs as a user that is not root" "USER line: '$user'"
fi
while IFS=$'\t' read -r _ cronjob run_uid; do
	check_eq "$cronjob runs as the image's uid" "$uid" "$run_uid"
done < <(grep '^uid' "$T/real/checks")
check_grep "Dockerfile: ENTRYPOINT is coffer" "$DOCKERFILE" '^ENTRYPOINT \["coffer"\]$'

# --- The checker fails on bad manifests ---------------------------------------------
# mutate NAME REGEX PYTHON: checks a copy of the manifests whose
# manifests-backup.yaml is the value of the Python expression PYTHON (on
# its text, t); passes when the checker fails with a FAIL line matching
# REGEX.
mutate() {
	local dir=$T/mut-$1
	mkdir -p "$dir/in"
	cp "$K8S"/*.yaml "$dir/in/"
	python3 - "$dir/in/manifests-backup.yaml" "$3" <<'PY'
import sys
path, code = sys.argv[1:3]
t = open(path, encoding="utf-8").read()
new = eval(code, {"t": t})
assert new != t, "the edit changed nothing"
open(path, "w", encoding="utf-8").write(new)
PY
	if run_checker "$dir/in" "$dir/out"; then
		fail "checker fails on manifests with $1" "it passed"
	elif grep -Eq "^FAIL	.*$2" "$dir/out/checks"; then
		pass "checker fails on manifests with $1"
	else
		fail "checker fails on manifests with $1" "no FAIL line matches /$2/:"
		sed 's/^/      | /' "$dir/out/checks" | grep FAIL | head -n 5
	fi
}
mutate "a watch verb" 'verbs .*get/list only' \
	't.replace("resources: [\"*\"]\n    verbs: [\"get\", \"list\"]", "resources: [\"*\"]\n    verbs: [\"get\", \"list\", \"watch\"]", 1)'
mutate "secrets in coffer-read" 'does not grant (get|list) on secrets' \
	't.replace("      - serviceaccounts\n", "      - serviceaccounts\n      - secrets\n", 1)'
mutate "apiGroups \"*\" in coffer-read" 'does not grant (get|list) on secrets' \
	't.replace("  - apiGroups:\n      - admissionregistration.k8s.io", "  - apiGroups:\n      - \"*\"\n      - admissionregistration.k8s.io", 1)'
mutate "a core resource left out" 'all [0-9]+ listable resources.*' \
	't.replace("      - configmaps\n", "", 1)'
mutate "concurrencyPolicy Allow" 'concurrencyPolicy Forbid' \
	't.replace("concurrencyPolicy: Forbid", "concurrencyPolicy: Allow", 1)'
mutate "a writable root file system" 'readOnlyRootFilesystem true' \
	't.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1)'
mutate "another service account" 'service account coffer' \
	't.replace("serviceAccountName: coffer", "serviceAccountName: default", 1)'

t_finish
