#!/usr/bin/env python3
"""k8s-api.py: a loopback HTTPS server that answers GETs like a v1.30 kube-apiserver.

For the integration tests of coffer's kubernetes source (see README.md beside
this file, "The Kubernetes API harness"). Python 3 standard library and the
openssl CLI only.

- Discovery: the real documents of --discovery DIR (tests/data/k8s-discovery),
  served unchanged, plus the group example.com (the CRD widgets.example.com).
- A generated cluster, deterministic from --seed, of about --objects objects.
- Lists with the real JSON shapes (items without apiVersion/kind for built-in
  types), ?limit=&continue= pages, labelSelector; GETs of single objects.
- Auth: a bearer token (--token FILE) or a client certificate of the test CA.
- Faults: --forbid, --expire-continue-after, --slow-path/--slow-seconds,
  --unauthorized, also switchable at run time through DIR/control.json.

Other modes: --dump-expected FILE / --dump-json FILE write the generated
objects (one JSON line each; FILE "-" is stdout) and exit.
"""

import argparse
import base64
import bisect
import gc
import gzip
import hashlib
import http.server
import json
import os
import random
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

VERSION_INFO = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.2",
    "gitCommit": "39683505b630ff2121012f3c5b16215a1449d5ed",
    "gitTreeState": "clean",
    "buildDate": "2024-06-11T20:21:00Z",
    "goVersion": "go1.22.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
KUBE_VERSION = VERSION_INFO["gitVersion"]

# Base time of the generated cluster: 2024-05-06T08:00:00Z.
BASE_TIME = 1714982400
SAFE = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand's alphabet
FULL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

CRD_GROUP = "example.com"
CRD_VERSION = "v1"

# resource -> (group, version, kind, namespaced) of every generated type.
TYPES = {
    "namespaces": ("", "v1", "Namespace", False),
    "nodes": ("", "v1", "Node", False),
    "persistentvolumes": ("", "v1", "PersistentVolume", False),
    "configmaps": ("", "v1", "ConfigMap", True),
    "secrets": ("", "v1", "Secret", True),
    "services": ("", "v1", "Service", True),
    "endpoints": ("", "v1", "Endpoints", True),
    "pods": ("", "v1", "Pod", True),
    "persistentvolumeclaims": ("", "v1", "PersistentVolumeClaim", True),
    "serviceaccounts": ("", "v1", "ServiceAccount", True),
    "events": ("", "v1", "Event", True),
    "deployments": ("apps", "v1", "Deployment", True),
    "replicasets": ("apps", "v1", "ReplicaSet", True),
    "daemonsets": ("apps", "v1", "DaemonSet", True),
    "controllerrevisions": ("apps", "v1", "ControllerRevision", True),
    "roles": ("rbac.authorization.k8s.io", "v1", "Role", True),
    "rolebindings": ("rbac.authorization.k8s.io", "v1", "RoleBinding", True),
    "clusterroles": ("rbac.authorization.k8s.io", "v1", "ClusterRole", False),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", False),
    "ingresses": ("networking.k8s.io", "v1", "Ingress", True),
    "ingressclasses": ("networking.k8s.io", "v1", "IngressClass", False),
    "endpointslices": ("discovery.k8s.io", "v1", "EndpointSlice", True),
    "leases": ("coordination.k8s.io", "v1", "Lease", True),
    "storageclasses": ("storage.k8s.io", "v1", "StorageClass", False),
    "priorityclasses": ("scheduling.k8s.io", "v1", "PriorityClass", False),
    "customresourcedefinitions": ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", False),
    "widgets": (CRD_GROUP, CRD_VERSION, "Widget", True),
}

WORDS = ["api", "web", "worker", "cache", "billing", "search", "auth", "gateway", "mailer",
         "scheduler", "reports", "ingest", "frontend", "checkout", "catalog", "inventory",
         "payments", "notifier", "analytics", "media", "profile", "orders", "shipping", "pricing"]
TIERS = {"web": "frontend", "frontend": "frontend", "gateway": "frontend", "checkout": "frontend",
         "media": "frontend", "cache": "cache", "worker": "worker", "ingest": "worker",
         "scheduler": "worker", "notifier": "worker", "mailer": "worker", "reports": "worker"}
BASE_NAMESPACES = ["default", "kube-system", "app-a", "app-b", "app-c"]
WIDGET_NAMESPACES = ("app-a", "app-b")
NODES = ["coffer-control-plane", "coffer-worker", "coffer-worker2"]

ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
    "guaranteed across distributions of Kubernetes clusters.")
FAKE_CA_PEM = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIDBTCCAe2gAwIBAgIIT0m0xTn1AhswDQYJKoZIhvcNAQELBQAwFTETMBEGA1UE\n"
    "AxMKa3ViZXJuZXRlczAeFw0yNDA1MDYwNzU1MDBaFw0zNDA1MDQwODAwMDBaMBUx\n"
    "EzARBgNVBAMTCmt1YmVybmV0ZXMwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK\n"
    "AoIBAQDcoffertestcoffertestcoffertestcoffertestcoffertestcoffer0\n"
    "-----END CERTIFICATE-----\n")


def ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def micro(t, us):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % us


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Fields whose fieldsV1 set has no "." entry of its own.
STRUCTS = frozenset(("metadata", "spec", "status", "template", "data"))


class FV(dict):
    """A fieldsV1 subtree computed once and shared (e.g. a pod template's)."""


def fields_v1(v, top=True):
    """A managedFields fieldsV1 set for the fields present in v."""
    t = type(v)
    if t is FV:
        return v
    if t is dict:
        out = {} if top else {".": {}}
        for k, x in v.items():
            tx = type(x)
            if tx is dict or tx is FV:
                out["f:" + k] = fields_v1(x, k in STRUCTS)
            elif tx is list:
                out["f:" + k] = fields_v1(x, False)
            else:
                out["f:" + k] = {}
        return out
    if t is list and v and type(v[0]) is dict:
        out = {}
        for e in v:
            if "uid" in e:
                key = 'k:{"uid":"%s"}' % e["uid"]
            elif "name" in e:
                key = 'k:{"name":"%s"}' % e["name"]
            elif "containerPort" in e:
                key = 'k:{"containerPort":%d,"protocol":"%s"}' % (e["containerPort"], e.get("protocol", "TCP"))
            elif "port" in e and "protocol" in e:
                key = 'k:{"port":%d,"protocol":"%s"}' % (e["port"], e["protocol"])
            elif "type" in e:
                key = 'k:{"type":"%s"}' % e["type"]
            elif "ip" in e:
                key = 'k:{"ip":"%s"}' % e["ip"]
            else:
                return {}
            out[key] = fields_v1(e, False)
        return out
    return {}


class Gen:
    """Generates the cluster. Objects are kept without apiVersion/kind."""

    def __init__(self, seed, objects, extra_namespaces, event_alias=True):
        self.r = random.Random(seed)
        self.rv = 400 + self.r.randint(0, 2000)
        self.t = BASE_TIME + self.r.randint(0, 3600)
        self.out = []      # (resource, obj)
        self.aliases = []  # (group, version, resource, obj): events.k8s.io/v1 events
        self.event_alias = event_alias
        self.ip_n = 20
        self.pod_n = 2
        self.node_port = 30000
        self.target = objects
        self.namespaces = BASE_NAMESPACES + ["ns-%03d" % i for i in range(1, extra_namespaces + 1)]
        self.ns_uid = {}
        self.app_counter = {}
        self.node_uid = {}
        self.build()

    # --- small helpers ---------------------------------------------------------
    def uid(self):
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def now(self, step=None):
        self.t += self.r.randint(1, 40) if step is None else step
        return self.t

    def suffix(self, n=5):
        return "".join(self.r.choice(SAFE) for _ in range(n))

    def hexstr(self, nbytes):
        return "%0*x" % (nbytes * 2, self.r.getrandbits(nbytes * 8))

    def cluster_ip(self):
        n = self.ip_n
        self.ip_n += 1
        return "10.96.%d.%d" % (n // 250, n % 250 + 1)

    def pod_ip(self, node):
        n = self.pod_n
        self.pod_n += 1
        return "10.244.%d.%d" % (NODES.index(node) * 64 + (n // 250) % 64, n % 250 + 2)

    def meta(self, name, ns=None, labels=None, ann=None, gen=None, owners=None, fin=None,
             gname=None, t=None):
        m = {"name": name}
        if gname:
            m["generateName"] = gname
        if ns is not None:
            m["namespace"] = ns
        m["uid"] = self.uid()
        self.rv += self.r.randint(1, 37)
        m["resourceVersion"] = str(self.rv)
        if gen:
            m["generation"] = gen
        m["creationTimestamp"] = ts(self.now() if t is None else t)
        if labels:
            m["labels"] = labels
        if ann:
            m["annotations"] = ann
        if owners:
            m["ownerReferences"] = owners
        if fin:
            m["finalizers"] = fin
        return m

    def add(self, resource, obj, managers):
        """managers: (manager, operation, fields dict, subresource or None)."""
        g, v = TYPES[resource][:2]
        api = g + "/" + v if g else v
        when = obj["metadata"]["creationTimestamp"]
        mf = []
        for manager, op, fields, sub in managers:
            e = {"manager": manager, "operation": op, "apiVersion": api, "time": when,
                 "fieldsType": "FieldsV1", "fieldsV1": fields_v1(fields)}
            if sub:
                e["subresource"] = sub
            mf.append(e)
        obj["metadata"]["managedFields"] = mf
        self.out.append((resource, obj))
        return obj

    @staticmethod
    def owner(api, kind, obj, controller=True):
        o = {"apiVersion": api, "kind": kind, "name": obj["metadata"]["name"],
             "uid": obj["metadata"]["uid"]}
        if controller:
            o["controller"] = True
            o["blockOwnerDeletion"] = True
        return o

    @staticmethod
    def user_meta(m):
        """The metadata fields a client sets (for managedFields)."""
        f = {}
        for k in ("labels", "annotations"):
            if k in m:
                f[k] = {a: b for a, b in m[k].items() if a != "deployment.kubernetes.io/revision"}
        return f

    def last_applied(self, api, kind, name, ns, labels, body):
        cfg = {"apiVersion": api, "kind": kind,
               "metadata": {"annotations": {}, "labels": labels, "name": name, "namespace": ns}}
        cfg.update(body)
        return json.dumps(cfg, sort_keys=True, separators=(",", ":")) + "\n"

    # --- the cluster ---------------------------------------------------------------
    def build(self):
        for ns in self.namespaces:
            self.namespace(ns)
        self.cluster_objects()
        self.kube_system()
        for ns in self.namespaces:
            if ns != "kube-system":
                self.ns_basics(ns)
        app_ns = [n for n in self.namespaces if n != "kube-system"]
        i = 0
        # At least one application per namespace, then more until the target.
        while i < len(app_ns) or len(self.out) < self.target:
            self.app(app_ns[i % len(app_ns)])
            i += 1

    def namespace(self, ns):
        labels = {"kubernetes.io/metadata.name": ns}
        if ns.startswith("app-"):
            labels["team"] = ns[4:]
        m = self.meta(ns, labels=labels)
        self.ns_uid[ns] = m["uid"]
        o = {"metadata": m, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        mgr = "kube-apiserver" if ns in ("default", "kube-system") else "kubectl-create"
        self.add("namespaces", o, [(mgr, "Update", {"metadata": {"labels": labels}}, None)])

    def cluster_objects(self):
        for i, n in enumerate(NODES):
            cp = i == 0
            labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": n,
                      "kubernetes.io/os": "linux"}
            if cp:
                labels["node-role.kubernetes.io/control-plane"] = ""
                labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
            ann = {"kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
                   "node.alpha.kubernetes.io/ttl": "0",
                   "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
            m = self.meta(n, labels=labels, ann=ann)
            self.node_uid[n] = m["uid"]
            t = m["creationTimestamp"]
            cidr = "10.244.%d.0/18" % (i * 64)
            spec = {"podCIDR": cidr, "podCIDRs": [cidr],
                    "providerID": "kind://docker/coffer/" + n}
            if cp:
                spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
            res = {"cpu": "8", "ephemeral-storage": "102626232Ki", "hugepages-1Gi": "0",
                   "hugepages-2Mi": "0", "memory": "32795880Ki", "pods": "110"}
            conds = []
            for typ, st, reason, msg in (
                    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    ("Ready", "True", "KubeletReady", "kubelet is posting ready status")):
                conds.append({"type": typ, "status": st, "lastHeartbeatTime": ts(BASE_TIME + 86400 * 30),
                              "lastTransitionTime": t, "reason": reason, "message": msg})
            status = {
                "capacity": res, "allocatable": dict(res), "conditions": conds,
                "addresses": [{"type": "InternalIP", "address": "172.18.0.%d" % (i + 2)},
                              {"type": "Hostname", "address": n}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {"machineID": self.hexstr(16), "systemUUID": self.uid(),
                             "bootID": self.uid(), "kernelVersion": "6.1.0-21-amd64",
                             "osImage": "Debian GNU/Linux 12 (bookworm)",
                             "containerRuntimeVersion": "containerd://1.7.15",
                             "kubeletVersion": KUBE_VERSION, "kubeProxyVersion": KUBE_VERSION,
                             "operatingSystem": "linux", "architecture": "amd64"},
                "images": [{"names": ["registry.k8s.io/etcd:3.5.12-0"], "sizeBytes": 57236178},
                           {"names": ["registry.k8s.io/kube-apiserver:" + KUBE_VERSION], "sizeBytes": 32768601},
                           {"names": ["docker.io/library/nginx:1.25.4"], "sizeBytes": 70544635}],
            }
            o = {"metadata": m, "spec": spec, "status": status}
            self.add("nodes", o, [
                ("kubeadm", "Update", {"metadata": {"annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": ""}}}, None),
                ("kubelet", "Update", {"metadata": {"labels": labels}}, None),
                ("kube-controller-manager", "Update", {"spec": {"podCIDR": "", "podCIDRs": []}}, None),
                ("kubelet", "Update", {"status": {"conditions": conds, "nodeInfo": {}}}, "status")])

        for name, default, prov, binding in (("standard", True, "rancher.io/local-path", "WaitForFirstConsumer"),
                                             ("fast-ssd", False, "pd.csi.example.com", "Immediate")):
            ann = {}
            if default:
                ann["storageclass.kubernetes.io/is-default-class"] = "true"
            ann["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
                {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                 "metadata": {"annotations": {k: v for k, v in ann.items()}, "name": name},
                 "provisioner": prov, "reclaimPolicy": "Delete", "volumeBindingMode": binding},
                sort_keys=True, separators=(",", ":")) + "\n"
            o = {"metadata": self.meta(name, ann=ann), "provisioner": prov, "reclaimPolicy": "Delete",
                 "volumeBindingMode": binding}
            if name == "fast-ssd":
                o["parameters"] = {"type": "pd-ssd"}
                o["allowVolumeExpansion"] = True
            self.add("storageclasses", o, [("kubectl-client-side-apply", "Update",
                                             {"metadata": {"annotations": ann}, "provisioner": prov}, None)])

        o = {"metadata": self.meta("nginx", labels={"app.kubernetes.io/component": "controller",
                                                    "app.kubernetes.io/name": "ingress-nginx"},
                                   ann={"ingressclass.kubernetes.io/is-default-class": "true"}, gen=1),
             "spec": {"controller": "k8s.io/ingress-nginx"}}
        self.add("ingressclasses", o, [("kubectl-create", "Update", {"spec": o["spec"]}, None)])

        for name, value, desc in (("system-cluster-critical", 2000000000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
                                  ("system-node-critical", 2000001000, "Used for system critical pods that must not be moved from their current node.")):
            o = {"metadata": self.meta(name, gen=1), "value": value, "description": desc,
                 "preemptionPolicy": "PreemptLowerPriority"}
            self.add("priorityclasses", o, [("kube-apiserver", "Update", {"value": 0, "description": ""}, None)])

        boot = {"kubernetes.io/bootstrapping": "rbac-defaults"}
        auto = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
        all_rule = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]
        roles = [
            ("cluster-admin", all_rule, None),
            ("admin", [], "admin"), ("edit", [], "edit"), ("view", [], "view"),
            ("system:aggregate-to-view", [{"apiGroups": [""], "resources": ["configmaps", "endpoints", "persistentvolumeclaims", "pods", "services"], "verbs": ["get", "list", "watch"]}], None),
            ("system:aggregate-to-edit", [{"apiGroups": [""], "resources": ["configmaps", "secrets", "services"], "verbs": ["create", "delete", "patch", "update"]}], None),
            ("system:aggregate-to-admin", [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}], None),
            ("system:discovery", [{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}], None),
            ("system:basic-user", [{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]}], None),
            ("system:public-info-viewer", [{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}], None),
            ("system:coredns", [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]}, {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}], None),
            ("system:kube-scheduler", [{"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch", "update"]}, {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create", "get", "update"]}], None),
            ("widgets-viewer", [{"apiGroups": [CRD_GROUP], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}], "widgets"),
        ]
        for name, rules, agg in roles:
            labels = dict(boot)
            ann = dict(auto)
            o = {"metadata": None, "rules": rules}
            if agg in ("admin", "edit", "view"):
                labels["kubernetes.io/bootstrapping"] = "rbac-defaults"
                o["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-" + agg: "true"}}]}
            if name.startswith("system:aggregate-to-"):
                labels["rbac.authorization.k8s.io/aggregate-to-" + name.split("-")[-1]] = "true"
            if agg == "widgets":
                labels = {"app.kubernetes.io/part-of": "widgets", "rbac.authorization.k8s.io/aggregate-to-view": "true"}
                ann = {}
            o["metadata"] = self.meta(name, labels=labels, ann=ann or None)
            o = {"metadata": o["metadata"], **{k: v for k, v in o.items() if k != "metadata"}}
            self.add("clusterroles", o, [("kube-apiserver" if agg != "widgets" else "kubectl-create", "Update",
                                          {"metadata": self.user_meta(o["metadata"]), "rules": rules}, None)])
        for name, role, subjects in (
                ("cluster-admin", "cluster-admin", [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]),
                ("kubeadm:cluster-admins", "cluster-admin", [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "kubeadm:cluster-admins"}]),
                ("system:discovery", "system:discovery", [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]),
                ("system:basic-user", "system:basic-user", [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]),
                ("system:public-info-viewer", "system:public-info-viewer", [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}, {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:unauthenticated"}]),
                ("system:coredns", "system:coredns", [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]),
                ("system:kube-scheduler", "system:kube-scheduler", [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:kube-scheduler"}])):
            o = {"metadata": self.meta(name, labels=dict(boot), ann=dict(auto)),
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                 "subjects": subjects}
            self.add("clusterrolebindings", o, [("kube-apiserver", "Update", {"metadata": self.user_meta(o["metadata"]), "roleRef": {}, "subjects": {}}, None)])

        schema = {"openAPIV3Schema": {
            "description": "Widget is a test custom resource.", "type": "object",
            "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "string", "enum": ["small", "medium", "large"]},
                    "color": {"type": "string"},
                    "replicas": {"type": "integer", "format": "int32", "minimum": 0},
                    "selector": {"type": "object", "additionalProperties": {"type": "string"}}}},
                "status": {"type": "object", "properties": {
                    "phase": {"type": "string"}, "observedGeneration": {"type": "integer", "format": "int64"}}}}}}
        spec = {"group": CRD_GROUP,
                "names": {"plural": "widgets", "singular": "widget", "shortNames": ["wd"], "kind": "Widget",
                          "listKind": "WidgetList", "categories": ["all"]},
                "scope": "Namespaced",
                "versions": [{"name": CRD_VERSION, "served": True, "storage": True, "schema": schema,
                              "subresources": {"status": {}},
                              "additionalPrinterColumns": [
                                  {"name": "Size", "type": "string", "jsonPath": ".spec.size"},
                                  {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                                  {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}],
                "conversion": {"strategy": "None"}}
        m = self.meta("widgets." + CRD_GROUP, gen=1, labels={"app.kubernetes.io/part-of": "widgets"})
        t = m["creationTimestamp"]
        status = {"conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}],
            "acceptedNames": dict(spec["names"]), "storedVersions": [CRD_VERSION]}
        o = {"metadata": m, "spec": spec, "status": status}
        self.add("customresourcedefinitions", o, [
            ("kubectl-create", "Update", {"metadata": {"labels": m["labels"]}, "spec": spec}, None),
            ("kube-apiserver", "Update", {"status": status}, "status")])

    def kube_system(self):
        ns = "kube-system"
        self.ns_basics(ns, sa_names=["attachdetach-controller", "coredns", "deployment-controller",
                                     "endpoint-controller", "kube-proxy", "namespace-controller",
                                     "replicaset-controller", "service-account-controller"])
        for name, data in (
                ("coredns", {"Corefile": ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30\n    loop\n    reload\n    loadbalance\n}\n"}),
                ("kube-proxy", {"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCIDR: 10.244.0.0/16\nmode: iptables\n", "kubeconfig.conf": "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt\n    server: https://coffer-control-plane:6443\n  name: default\n"}),
                ("kubeadm-config", {"ClusterConfiguration": "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nclusterName: coffer\nkubernetesVersion: %s\nnetworking:\n  dnsDomain: cluster.local\n  podSubnet: 10.244.0.0/16\n  serviceSubnet: 10.96.0.0/16\n" % KUBE_VERSION}),
                ("kubelet-config", {"kubelet": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\nclusterDNS:\n- 10.96.0.10\nclusterDomain: cluster.local\n"}),
                ("extension-apiserver-authentication", {"client-ca-file": FAKE_CA_PEM, "requestheader-allowed-names": "[\"front-proxy-client\"]", "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]", "requestheader-group-headers": "[\"X-Remote-Group\"]", "requestheader-username-headers": "[\"X-Remote-User\"]"})):
            o = {"metadata": self.meta(name, ns), "data": data}
            self.add("configmaps", o, [("kubeadm" if name != "extension-apiserver-authentication" else "kube-apiserver", "Update", {"data": data}, None)])
        # coredns: a Deployment with its ReplicaSet, Pods, Service kube-dns
        self.app(ns, name="coredns", image="registry.k8s.io/coredns/coredns:v1.11.1", port=53,
                 labels={"k8s-app": "kube-dns"}, svc_name="kube-dns", svc_ip="10.96.0.10", replicas=2,
                 extras=False)
        # kube-proxy: a DaemonSet, its ControllerRevision and one Pod a node
        labels = {"k8s-app": "kube-proxy"}
        pod_spec = self.pod_spec("kube-proxy", "registry.k8s.io/kube-proxy:" + KUBE_VERSION, None, "kube-proxy", None, None)
        pod_spec["hostNetwork"] = True
        pod_spec["priorityClassName"] = "system-node-critical"
        spec = {"selector": {"matchLabels": labels},
                "template": {"metadata": {"creationTimestamp": None, "labels": labels}, "spec": pod_spec},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10}
        m = self.meta("kube-proxy", ns, labels=dict(labels), ann={"deprecated.daemonset.template.generation": "1"}, gen=1)
        n = len(NODES)
        status = {"currentNumberScheduled": n, "numberMisscheduled": 0, "desiredNumberScheduled": n,
                  "numberReady": n, "observedGeneration": 1, "updatedNumberScheduled": n, "numberAvailable": n}
        ds = self.add("daemonsets", {"metadata": m, "spec": spec, "status": status}, [
            ("kubeadm", "Update", {"metadata": self.user_meta(m), "spec": spec}, None),
            ("kube-controller-manager", "Update", {"status": status}, "status")])
        rev_hash = self.suffix(9)
        cr_labels = dict(labels, **{"controller-revision-hash": rev_hash})
        o = {"metadata": self.meta("kube-proxy-" + rev_hash, ns, labels=cr_labels,
                                   owners=[self.owner("apps/v1", "DaemonSet", ds)]),
             "data": {"spec": {"template": {"$patch": "replace", "metadata": {"creationTimestamp": None, "labels": labels}, "spec": pod_spec}}},
             "revision": 1}
        self.add("controllerrevisions", o, [("kube-controller-manager", "Update", {"metadata": {"labels": cr_labels, "ownerReferences": {}}, "data": {}, "revision": 1}, None)])
        for node in NODES:
            self.pod(ns, "kube-proxy-" + self.suffix(), "kube-proxy-", dict(cr_labels, **{"pod-template-generation": "1"}),
                     self.owner("apps/v1", "DaemonSet", ds), "kube-proxy", "registry.k8s.io/kube-proxy:" + KUBE_VERSION,
                     None, node, "kube-proxy", None, None, host_network=True)
        # the static (mirror) Pods of the control plane, owned by the Node
        cp = NODES[0]
        for comp, image in (("etcd", "registry.k8s.io/etcd:3.5.12-0"),
                            ("kube-apiserver", "registry.k8s.io/kube-apiserver:" + KUBE_VERSION),
                            ("kube-controller-manager", "registry.k8s.io/kube-controller-manager:" + KUBE_VERSION),
                            ("kube-scheduler", "registry.k8s.io/kube-scheduler:" + KUBE_VERSION)):
            owner = {"apiVersion": "v1", "kind": "Node", "name": cp, "uid": self.node_uid[cp], "controller": True}
            self.pod(ns, comp + "-" + cp, None, {"component": comp, "tier": "control-plane"}, owner, comp, image,
                     None, cp, None, None, None, host_network=True,
                     extra_ann={"kubernetes.io/config.hash": self.hexstr(16), "kubernetes.io/config.mirror": self.hexstr(16),
                                "kubernetes.io/config.seen": ts(BASE_TIME + 60) .replace("Z", ".000000000Z"),
                                "kubernetes.io/config.source": "file"})
        for name in ("kube-controller-manager", "kube-scheduler"):
            self.lease(ns, name, "%s_%s" % (cp, self.uid()), 15)
        for name, rules in (("extension-apiserver-authentication-reader", [{"apiGroups": [""], "resourceNames": ["extension-apiserver-authentication"], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]),
                            ("kube-proxy", [{"apiGroups": [""], "resourceNames": ["kube-proxy"], "resources": ["configmaps"], "verbs": ["get"]}]),
                            ("kubeadm:kubelet-config", [{"apiGroups": [""], "resourceNames": ["kubelet-config"], "resources": ["configmaps"], "verbs": ["get"]}])):
            o = {"metadata": self.meta(name, ns), "rules": rules}
            self.add("roles", o, [("kubeadm", "Update", {"rules": rules}, None)])
            subj = [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": ns}] if name == "kube-proxy" else \
                [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}]
            o = {"metadata": self.meta(name, ns), "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                 "subjects": subj}
            self.add("rolebindings", o, [("kubeadm", "Update", {"roleRef": {}, "subjects": {}}, None)])

    def ns_basics(self, ns, sa_names=()):
        data = {"ca.crt": FAKE_CA_PEM}
        o = {"metadata": self.meta("kube-root-ca.crt", ns, ann={"kubernetes.io/description": ROOT_CA_DESCRIPTION}),
             "data": data}
        self.add("configmaps", o, [("kube-controller-manager", "Update", {"data": data, "metadata": {"annotations": o["metadata"]["annotations"]}}, None)])
        for sa in ["default"] + list(sa_names):
            o = {"metadata": self.meta(sa, ns)}
            self.add("serviceaccounts", o, [])
            del o["metadata"]["managedFields"]  # as the service-account controller makes them

    def sa_token(self, ns, sa):
        """A legacy service-account token Secret (and the SA's secrets list)."""
        name = "%s-token-%s" % (sa["metadata"]["name"], self.suffix())
        header = b64url(json.dumps({"alg": "RS256", "kid": self.hexstr(16)}, separators=(",", ":")))
        payload = b64url(json.dumps({
            "iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": ns,
            "kubernetes.io/serviceaccount/secret.name": name,
            "kubernetes.io/serviceaccount/service-account.name": sa["metadata"]["name"],
            "kubernetes.io/serviceaccount/service-account.uid": sa["metadata"]["uid"],
            "sub": "system:serviceaccount:%s:%s" % (ns, sa["metadata"]["name"])}, separators=(",", ":")))
        token = "%s.%s.%s" % (header, payload, b64url(self.r.getrandbits(2048).to_bytes(256, "big")))
        ann = {"kubernetes.io/service-account.name": sa["metadata"]["name"],
               "kubernetes.io/service-account.uid": sa["metadata"]["uid"]}
        labels = {"kubernetes.io/legacy-token-last-used": time.strftime("%Y-%m-%d", time.gmtime(self.t + 86400 * 20))}
        data = {"ca.crt": b64(FAKE_CA_PEM), "namespace": b64(ns), "token": b64(token)}
        o = {"metadata": self.meta(name, ns, labels=labels, ann=ann), "data": data,
             "type": "kubernetes.io/service-account-token"}
        self.add("secrets", o, [("kubectl-create", "Update", {"metadata": {"annotations": {"kubernetes.io/service-account.name": ""}}, "type": ""}, None),
                                ("kube-controller-manager", "Update", {"data": data, "metadata": {"annotations": {"kubernetes.io/service-account.uid": ""}}}, None),
                                ("kube-apiserver", "Update", {"metadata": {"labels": labels}}, None)])
        sa["secrets"] = [{"name": name}]

    def lease(self, ns, name, holder, duration):
        t = self.now()
        spec = {"holderIdentity": holder, "leaseDurationSeconds": duration,
                "acquireTime": micro(t, self.r.randint(0, 999999)),
                "renewTime": micro(BASE_TIME + 86400 * 30, self.r.randint(0, 999999)),
                "leaseTransitions": self.r.randint(0, 3)}
        o = {"metadata": self.meta(name, ns, t=t), "spec": spec}
        self.add("leases", o, [(name.split("-")[0] if ns != "kube-system" else name, "Update", {"spec": spec}, None)])

    def pod_spec(self, name, image, port, sa, cm, pvc):
        c = {"name": name, "image": image}
        if port:
            c["ports"] = [{"name": "http" if port != 53 else "dns", "containerPort": port, "protocol": "TCP"}]
        c["env"] = [{"name": "LOG_LEVEL", "value": "info"}]
        c["resources"] = {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}
        vols, mounts = [], []
        if cm:
            vols.append({"name": "config", "configMap": {"name": cm, "defaultMode": 420}})
            mounts.append({"name": "config", "mountPath": "/etc/" + name})
        if pvc:
            vols.append({"name": "data", "persistentVolumeClaim": {"claimName": pvc}})
            mounts.append({"name": "data", "mountPath": "/var/lib/" + name})
        if mounts:
            c["volumeMounts"] = mounts
        c["terminationMessagePath"] = "/dev/termination-log"
        c["terminationMessagePolicy"] = "File"
        c["imagePullPolicy"] = "IfNotPresent"
        s = {}
        if vols:
            s["volumes"] = vols
        s["containers"] = [c]
        s["restartPolicy"] = "Always"
        s["terminationGracePeriodSeconds"] = 30
        s["dnsPolicy"] = "ClusterFirst"
        if sa:
            s["serviceAccountName"] = sa
            s["serviceAccount"] = sa
        s["securityContext"] = {}
        s["schedulerName"] = "default-scheduler"
        return s

    def pod(self, ns, name, gname, labels, owner, cname, image, port, node, sa, cm, pvc,
            host_network=False, extra_ann=None, spec_fields=None):
        spec = self.pod_spec(cname, image, port, sa, cm, pvc)
        if spec_fields is None:
            spec_fields = FV(fields_v1(spec))
        if host_network:
            spec["hostNetwork"] = True
        if sa:
            vol = "kube-api-access-" + self.suffix()
            spec.setdefault("volumes", []).append({"name": vol, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
                "defaultMode": 420}})
            spec["containers"][0].setdefault("volumeMounts", []).append(
                {"name": vol, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
        spec["nodeName"] = node
        spec["tolerations"] = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                               {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        spec["priority"] = 0
        spec["enableServiceLinks"] = True
        spec["preemptionPolicy"] = "PreemptLowerPriority"
        m = self.meta(name, ns, labels=labels, ann=extra_ann, owners=[owner] if owner else None, gname=gname)
        t = self.t
        ip = "172.18.0.%d" % (NODES.index(node) + 2) if host_network else self.pod_ip(node)
        host_ip = "172.18.0.%d" % (NODES.index(node) + 2)
        conds = [{"type": typ, "status": "True", "lastProbeTime": None, "lastTransitionTime": ts(t + d)}
                 for typ, d in (("PodReadyToStartContainers", 3), ("Initialized", 1), ("Ready", 4),
                                ("ContainersReady", 4), ("PodScheduled", 0))]
        status = {"phase": "Running", "conditions": conds, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                  "podIP": ip, "podIPs": [{"ip": ip}], "startTime": ts(t + 1),
                  "containerStatuses": [{"name": cname, "state": {"running": {"startedAt": ts(t + 3)}},
                                         "lastState": {}, "ready": True, "restartCount": 0, "image": image,
                                         "imageID": image.split(":")[0] + "@sha256:" + self.hexstr(32),
                                         "containerID": "containerd://" + self.hexstr(32), "started": True}],
                  "qosClass": "Burstable"}
        o = {"metadata": m, "spec": spec, "status": status}
        ctrl = "kube-controller-manager" if owner and owner["kind"] != "Node" else "kubelet"
        status_fields = {"conditions": conds, "containerStatuses": None, "hostIP": None, "hostIPs": None,
                         "phase": None, "podIP": None, "podIPs": None, "startTime": None}
        self.add("pods", o, [(ctrl, "Update", {"metadata": {"labels": labels, **({"ownerReferences": {}} if owner else {})},
                                               "spec": spec_fields}, None),
                             ("kubelet", "Update", {"status": status_fields}, "status")])
        return o, ip

    def event(self, ns, involved, api, kind, reason, message, component, host, typ="Normal"):
        t = self.now()
        name = "%s.%x" % (involved["metadata"]["name"], (t * 1000000000 + self.r.randint(0, 999999999)))
        inv = {"kind": kind, "namespace": ns, "name": involved["metadata"]["name"],
               "uid": involved["metadata"]["uid"], "apiVersion": api,
               "resourceVersion": involved["metadata"]["resourceVersion"]}
        if kind == "Pod":
            inv["fieldPath"] = "spec.containers{%s}" % involved["spec"]["containers"][0]["name"]
        source = {"component": component}
        if host:
            source["host"] = host
        count = self.r.choice([1, 1, 1, 2, 5])
        m = self.meta(name, ns, t=t)
        o = {"metadata": m, "involvedObject": inv, "reason": reason, "message": message, "source": source,
             "firstTimestamp": ts(t), "lastTimestamp": ts(t + (count - 1) * 30), "count": count, "type": typ,
             "eventTime": None, "reportingComponent": component, "reportingInstance": host or ""}
        self.add("events", o, [(component, "Update", {"count": 0, "firstTimestamp": "", "involvedObject": inv,
                                                      "lastTimestamp": "", "message": "", "reason": "",
                                                      "reportingComponent": "", "reportingInstance": "",
                                                      "source": source, "type": ""}, None)])
        if self.event_alias:
            a = {"metadata": dict(m), "eventTime": None, "reportingController": component,
                 "reportingInstance": host or "", "reason": reason, "regarding": inv, "note": message,
                 "type": typ, "deprecatedSource": source, "deprecatedFirstTimestamp": ts(t),
                 "deprecatedLastTimestamp": ts(t + (count - 1) * 30), "deprecatedCount": count}
            a["metadata"]["managedFields"] = [dict(e, apiVersion="v1") for e in m["managedFields"]]
            self.aliases.append(("events.k8s.io", "v1", "events", a))

    def helm_release(self, ns, name, chart, version, manifest):
        rel = {"name": name, "info": {"first_deployed": ts(self.t), "last_deployed": ts(self.t),
                                      "deleted": "", "description": "Install complete", "status": "deployed"},
               "chart": {"metadata": {"name": chart, "version": version, "description": "A Helm chart for " + chart,
                                      "apiVersion": "v2", "appVersion": "1.0.0", "type": "application"},
                         "lock": None, "templates": [{"name": "templates/deployment.yaml",
                                                      "data": b64(manifest)}],
                         "values": {"replicaCount": 1, "image": {"repository": "ghcr.io/example/" + name}},
                         "schema": None, "files": []},
               "config": {}, "manifest": manifest, "version": 1, "namespace": ns}
        packed = b64(gzip.compress(json.dumps(rel, separators=(",", ":")).encode(), mtime=0))
        labels = {"modifiedAt": str(self.t), "name": name, "owner": "helm", "status": "deployed", "version": "1"}
        data = {"release": b64(packed)}
        o = {"metadata": self.meta("sh.helm.release.v1.%s.v1" % name, ns, labels=labels), "data": data,
             "type": "helm.sh/release.v1"}
        self.add("secrets", o, [("helm", "Update", {"metadata": {"labels": labels}, "data": data, "type": ""}, None)])

    def app(self, ns, name=None, image=None, port=None, labels=None, svc_name=None, svc_ip=None,
            replicas=None, extras=True):
        r = self.r
        k = self.app_counter.get(ns, 0)
        self.app_counter[ns] = k + 1
        if name is None:
            w = WORDS[k % len(WORDS)]
            name = w if k < len(WORDS) else "%s-%d" % (w, k // len(WORDS))
        tier = TIERS.get(name.split("-")[0], "backend")
        helm = extras and k == 0
        lab = dict(labels) if labels else {"app": name, "tier": tier}
        sel = dict(labels) if labels else {"app": name}
        if helm:
            lab["app.kubernetes.io/managed-by"] = "Helm"
        helm_ann = {"meta.helm.sh/release-name": name, "meta.helm.sh/release-namespace": ns} if helm else {}
        applied = extras and not helm and r.random() < 0.5
        if replicas is None:
            replicas = r.choice([1, 2, 2, 3])
        if image is None:
            image = {"cache": "docker.io/library/redis:7.2.4", "frontend": "docker.io/library/nginx:1.25.4"}.get(
                tier, "ghcr.io/example/%s:v1.%d.%d" % (name.split("-")[0], r.randint(0, 9), r.randint(0, 20)))
        if port is None:
            port = {"cache": 6379, "frontend": 80}.get(tier, 8080)
        node_of = lambda i: NODES[1 + (i + k) % (len(NODES) - 1)]
        api_ver = "apps/v1"

        cm = None
        if extras:
            cm = name + "-config"
            data = {"LOG_LEVEL": r.choice(["info", "debug", "warn"]),
                    "app.properties": "server.port=%d\nfeature.flags=%s\ncache.ttl=%ds\n" % (
                        port, ",".join(r.sample(["alpha", "beta", "gamma", "delta"], 2)), r.randint(10, 600))}
            ann = dict(helm_ann)
            if applied:
                ann["kubectl.kubernetes.io/last-applied-configuration"] = self.last_applied(
                    "v1", "ConfigMap", cm, ns, lab, {"data": data})
            o = {"metadata": self.meta(cm, ns, labels=dict(lab), ann=ann or None), "data": data}
            if r.random() < 0.1:
                o["binaryData"] = {"logo.bin": b64(bytes(r.getrandbits(8) for _ in range(48)))}
            self.add("configmaps", o, [("kubectl-client-side-apply" if applied else "helm" if helm else "kubectl-create",
                                        "Update", {"metadata": self.user_meta(o["metadata"]), "data": data}, None)])
            sdata = {"username": b64(name), "password": b64(self.hexstr(12))}
            o = {"metadata": self.meta(name + "-credentials", ns, labels=dict(lab), ann=dict(helm_ann) or None),
                 "data": sdata, "type": "Opaque"}
            self.add("secrets", o, [("helm" if helm else "kubectl-create", "Update",
                                     {"metadata": self.user_meta(o["metadata"]), "data": sdata, "type": ""}, None)])

        sa_name = None
        if extras:
            sa_name = name
            sa = {"metadata": self.meta(name, ns, labels=dict(lab), ann=dict(helm_ann) or None)}
            self.add("serviceaccounts", sa, [("helm" if helm else "kubectl-create", "Update",
                                              {"metadata": self.user_meta(sa["metadata"])}, None)])
            if r.random() < 0.5:
                self.sa_token(ns, sa)
        elif ns == "kube-system":
            sa_name = name

        pvc_name = None
        if extras and r.random() < 0.5:
            pvc_name = "data-" + name
            node = node_of(0)
            size = r.choice(["1Gi", "5Gi", "10Gi"])
            ann = {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes",
                   "volume.beta.kubernetes.io/storage-provisioner": "rancher.io/local-path",
                   "volume.kubernetes.io/selected-node": node,
                   "volume.kubernetes.io/storage-provisioner": "rancher.io/local-path"}
            spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}},
                    "storageClassName": "standard", "volumeMode": "Filesystem"}
            m = self.meta(pvc_name, ns, labels=dict(lab), ann=ann, fin=["kubernetes.io/pvc-protection"])
            pv_name = "pvc-" + m["uid"]
            spec["volumeName"] = pv_name
            status = {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}}
            pvc = self.add("persistentvolumeclaims", {"metadata": m, "spec": spec, "status": status}, [
                ("kubectl-create", "Update", {"metadata": {"labels": lab}, "spec": {"accessModes": [], "resources": {}, "storageClassName": "", "volumeMode": ""}}, None),
                ("kube-scheduler", "Update", {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": ""}}}, None),
                ("kube-controller-manager", "Update", {"metadata": {"annotations": ann}, "spec": {"volumeName": ""}}, None),
                ("kube-controller-manager", "Update", {"status": status}, "status")])
            pv_ann = {"local.path.provisioner/selected-node": node, "pv.kubernetes.io/provisioned-by": "rancher.io/local-path"}
            pv_spec = {"capacity": {"storage": size},
                       "hostPath": {"path": "/var/local-path-provisioner/%s_%s_%s" % (pv_name, ns, pvc_name), "type": "DirectoryOrCreate"},
                       "accessModes": ["ReadWriteOnce"],
                       "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": pvc_name,
                                    "uid": m["uid"], "apiVersion": "v1", "resourceVersion": m["resourceVersion"]},
                       "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard", "volumeMode": "Filesystem",
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}
            pv_status = {"phase": "Bound", "lastPhaseTransitionTime": ts(self.t + 2)}
            o = {"metadata": self.meta(pv_name, ann=pv_ann, fin=["kubernetes.io/pv-protection"]), "spec": pv_spec, "status": pv_status}
            self.add("persistentvolumes", o, [("local-path-provisioner", "Update", {"metadata": {"annotations": pv_ann}, "spec": pv_spec}, None),
                                              ("kube-controller-manager", "Update", {"status": pv_status}, "status")])

        # Deployment, ReplicaSet(s), Pods
        pod_spec = self.pod_spec(name, image, port, sa_name, cm, pvc_name)
        spec_fields = FV(fields_v1(pod_spec))
        tmpl = {"metadata": {"creationTimestamp": None, "labels": dict(lab)}, "spec": pod_spec}
        tmpl_fields = {"metadata": {"labels": lab}, "spec": spec_fields}
        spec = {"replicas": replicas, "selector": {"matchLabels": sel}, "template": tmpl,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}
        old_rs = extras and r.random() < 0.33
        gen = 2 if old_rs else 1
        ann = {"deployment.kubernetes.io/revision": str(gen)}
        ann.update(helm_ann)
        if applied:
            ann["kubectl.kubernetes.io/last-applied-configuration"] = self.last_applied(
                api_ver, "Deployment", name, ns, lab, {"spec": {"replicas": replicas, "selector": {"matchLabels": sel}, "template": tmpl}})
        m = self.meta(name, ns, labels=dict(lab), ann=ann, gen=gen)
        rs_hashes = [self.suffix(r.choice([9, 10])) for _ in range(gen)]
        rs_name = name + "-" + rs_hashes[-1]
        t1 = ts(self.t + 5)
        status = {"observedGeneration": gen, "replicas": replicas, "updatedReplicas": replicas,
                  "readyReplicas": replicas, "availableReplicas": replicas,
                  "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": t1, "lastTransitionTime": t1,
                                  "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                                 {"type": "Progressing", "status": "True", "lastUpdateTime": t1, "lastTransitionTime": m["creationTimestamp"],
                                  "reason": "NewReplicaSetAvailable",
                                  "message": 'ReplicaSet "%s" has successfully progressed.' % rs_name}]}
        mgr = "kubectl-client-side-apply" if applied else "helm" if helm else "kubectl-create" if extras else "kubeadm"
        dep = self.add("deployments", {"metadata": m, "spec": spec, "status": status}, [
            (mgr, "Update", {"metadata": self.user_meta(m), "spec": dict(spec, template=tmpl_fields)}, None),
            ("kube-controller-manager", "Update", {"metadata": {"annotations": {"deployment.kubernetes.io/revision": ""}}}, None),
            ("kube-controller-manager", "Update", {"status": status}, "status")])
        dep_owner = self.owner(api_ver, "Deployment", dep)
        pods = []
        for rev, h in enumerate(rs_hashes, 1):
            current = rev == gen
            rl = dict(lab, **{"pod-template-hash": h})
            n = replicas if current else 0
            rs_ann = {"deployment.kubernetes.io/desired-replicas": str(replicas),
                      "deployment.kubernetes.io/max-replicas": str(replicas + (replicas + 3) // 4),
                      "deployment.kubernetes.io/revision": str(rev)}
            rs_ann.update(helm_ann)
            rs_tmpl = {"metadata": {"creationTimestamp": None, "labels": rl}, "spec": pod_spec}
            rs_spec = {"replicas": n, "selector": {"matchLabels": dict(sel, **{"pod-template-hash": h})}, "template": rs_tmpl}
            rs_status = {"replicas": n, "observedGeneration": 1 if current else 2}
            if n:
                rs_status.update({"fullyLabeledReplicas": n, "readyReplicas": n, "availableReplicas": n})
            rs = self.add("replicasets", {"metadata": self.meta(name + "-" + h, ns, labels=rl, ann=rs_ann, gen=1 if current else 2,
                                                                owners=[dep_owner]),
                                          "spec": rs_spec, "status": rs_status}, [
                ("kube-controller-manager", "Update", {"metadata": {"annotations": rs_ann, "labels": rl, "ownerReferences": {}},
                                                       "spec": dict(rs_spec, template={"metadata": {"labels": rl}, "spec": spec_fields})}, None),
                ("kube-controller-manager", "Update", {"status": rs_status}, "status")])
            if current:
                rs_owner = self.owner(api_ver, "ReplicaSet", rs)
                for i in range(replicas):
                    node = node_of(i)
                    p, ip = self.pod(ns, rs_name + "-" + self.suffix(), rs_name + "-", dict(rl), rs_owner, name,
                                     image, port, node, sa_name, cm, pvc_name, spec_fields=spec_fields)
                    pods.append((p, ip, node))

        # Service, Endpoints, EndpointSlice
        svc_name = svc_name or name
        node_port = extras and r.random() < 0.33 and self.node_port < 32767
        ip = svc_ip or self.cluster_ip()
        if port == 53:
            ports = [{"name": "dns", "protocol": "UDP", "port": 53, "targetPort": 53},
                     {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": 53},
                     {"name": "metrics", "protocol": "TCP", "port": 9153, "targetPort": 9153}]
        else:
            ports = [{"name": "http", "protocol": "TCP", "port": 80 if port != 6379 else 6379, "targetPort": port}]
        if node_port:
            ports[0]["nodePort"] = self.node_port
            self.node_port += 1
        sspec = {"ports": ports, "selector": sel, "clusterIP": ip, "clusterIPs": [ip],
                 "type": "NodePort" if node_port else "ClusterIP", "sessionAffinity": "None"}
        if node_port:
            sspec["externalTrafficPolicy"] = "Cluster"
        sspec.update({"ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster"})
        s_ann = dict(helm_ann)
        if applied:
            s_ann["kubectl.kubernetes.io/last-applied-configuration"] = self.last_applied(
                "v1", "Service", svc_name, ns, lab, {"spec": {"ports": [{k: v for k, v in p.items() if k != "nodePort"} for p in ports],
                                                             "selector": sel, "type": sspec["type"]}})
        svc_labels = dict(lab)
        if port == 53:
            svc_labels.update({"kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"})
        svc = self.add("services", {"metadata": self.meta(svc_name, ns, labels=svc_labels, ann=s_ann or None),
                                    "spec": sspec, "status": {"loadBalancer": {}}},
                       [(mgr, "Update", {"metadata": self.user_meta({"labels": svc_labels, "annotations": s_ann}),
                                         "spec": {k: v for k, v in sspec.items() if k not in ("clusterIP", "clusterIPs")}}, None)])
        eports = [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"]} for p in ports]
        addrs = [{"ip": ip_, "nodeName": node, "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"],
                                                            "uid": p["metadata"]["uid"]}} for p, ip_, node in pods]
        trig = {"endpoints.kubernetes.io/last-change-trigger-time": ts(self.t)}
        ep = {"metadata": self.meta(svc_name, ns, labels=dict(svc_labels), ann=trig), "subsets": [{"addresses": addrs, "ports": eports}]}
        self.add("endpoints", ep, [("kube-controller-manager", "Update", {"metadata": {"annotations": trig, "labels": svc_labels}, "subsets": {}}, None)])
        es_labels = dict(svc_labels, **{"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                                        "kubernetes.io/service-name": svc_name})
        es_labels.pop("app.kubernetes.io/managed-by", None)
        es = {"metadata": self.meta(svc_name + "-" + self.suffix(), ns, labels=es_labels, ann=dict(trig), gen=1,
                                    owners=[self.owner("v1", "Service", svc)], gname=svc_name + "-"),
              "addressType": "IPv4",
              "endpoints": [{"addresses": [a["ip"]], "conditions": {"ready": True, "serving": True, "terminating": False},
                             "targetRef": a["targetRef"], "nodeName": a["nodeName"]} for a in addrs],
              "ports": [{"name": p["name"], "protocol": p["protocol"], "port": p["port"]} for p in eports]}
        self.add("endpointslices", es, [("kube-controller-manager", "Update", {"addressType": "", "endpoints": {}, "metadata": {"annotations": trig, "labels": es_labels, "ownerReferences": {}}, "ports": {}}, None)])

        if not extras:
            return
        # Role + RoleBinding
        if r.random() < 0.5:
            rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
                     {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
            o = {"metadata": self.meta(name, ns, labels=dict(lab)), "rules": rules}
            self.add("roles", o, [("kubectl-create", "Update", {"metadata": {"labels": lab}, "rules": rules}, None)])
            o = {"metadata": self.meta(name, ns, labels=dict(lab)),
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                 "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": ns}]}
            self.add("rolebindings", o, [("kubectl-create", "Update", {"metadata": {"labels": lab}, "roleRef": {}, "subjects": {}}, None)])
        # Ingress (with a TLS secret on some)
        if tier == "frontend" or r.random() < 0.2:
            host = "%s.%s.example.test" % (name, ns)
            ispec = {"ingressClassName": "nginx", "rules": [{"host": host, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": svc_name, "port": {"number": ports[0]["port"]}}}}]}}]}
            if r.random() < 0.5:
                tls_name = name + "-tls"
                ispec["tls"] = [{"hosts": [host], "secretName": tls_name}]
                data = {"tls.crt": b64(FAKE_CA_PEM),
                        "tls.key": b64("-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % b64(self.hexstr(48)))}
                o = {"metadata": self.meta(tls_name, ns, labels=dict(lab)), "data": data, "type": "kubernetes.io/tls"}
                self.add("secrets", o, [("cert-manager-certificates-issuing", "Update", {"data": data, "metadata": {"labels": lab}, "type": ""}, None)])
            i_ann = {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}
            i_ann.update(helm_ann)
            istatus = {"loadBalancer": {"ingress": [{"ip": "172.18.0.240"}]}}
            o = {"metadata": self.meta(name, ns, labels=dict(lab), ann=i_ann, gen=1), "spec": ispec, "status": istatus}
            self.add("ingresses", o, [(mgr, "Update", {"metadata": self.user_meta(o["metadata"]), "spec": ispec}, None),
                                      ("nginx-ingress-controller", "Update", {"status": istatus}, "status")])
        # Lease (leader election of the workers)
        if tier == "worker" or r.random() < 0.1:
            self.lease(ns, name + "-leader", "%s_%s" % (pods[0][0]["metadata"]["name"], self.uid()), 15)
        # Widget
        if ns in WIDGET_NAMESPACES:
            wgen = r.choice([1, 1, 2, 3])
            wspec = {"size": r.choice(["small", "medium", "large"]), "color": r.choice(["red", "green", "blue"]),
                     "replicas": replicas, "selector": {"app": name}}
            wstatus = {"phase": "Ready", "observedGeneration": wgen}
            o = {"metadata": self.meta(name, ns, labels=dict(lab), gen=wgen), "spec": wspec, "status": wstatus}
            self.add("widgets", o, [("kubectl-create", "Update", {"metadata": {"labels": lab}, "spec": wspec}, None),
                                    ("widget-controller", "Update", {"status": wstatus}, "status")])
        # Events
        for _ in range(r.choice([1, 2, 2, 3])):
            c = r.random()
            if pods and c < 0.6:
                p, _, node = r.choice(pods)
                reason, msg = r.choice([("Pulled", 'Container image "%s" already present on machine' % image),
                                        ("Created", "Created container " + name),
                                        ("Started", "Started container " + name)])
                self.event(ns, p, "v1", "Pod", reason, msg, "kubelet", node)
            elif c < 0.85:
                self.event(ns, dep, api_ver, "Deployment", "ScalingReplicaSet",
                           "Scaled up replica set %s to %d" % (rs_name, replicas), "deployment-controller", None)
            else:
                self.event(ns, dep, api_ver, "Deployment", "ScalingReplicaSet",
                           "Scaled down replica set %s-%s to 0 from 1" % (name, rs_hashes[0]), "deployment-controller",
                           None, typ="Normal")
        if helm:
            manifest = "---\n# Source: %s/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\n" % (name, name)
            self.helm_release(ns, name, name, "0.%d.0" % r.randint(1, 9), manifest)


# --- the object store ----------------------------------------------------------------

class Item:
    __slots__ = ("ns", "name", "labels", "obj", "enc")

    def __init__(self, ns, name, labels, obj):
        self.ns, self.name, self.labels, self.obj, self.enc = ns, name, labels, obj, None


class Collection:
    """The objects of one resource in one group version, sorted like etcd keys."""

    def __init__(self, group, version, resource, kind, namespaced, typemeta_in_items):
        self.group, self.version, self.resource, self.kind = group, version, resource, kind
        self.namespaced = namespaced
        self.api_version = group + "/" + version if group else version
        self.typemeta = typemeta_in_items
        self.items = []
        self.keys = []
        self.by_ns = {}
        self.prefix = ('{"kind":%s,"apiVersion":%s,' % (json.dumps(kind), json.dumps(self.api_version))).encode()

    def finish(self):
        self.items.sort(key=lambda i: (i.ns, i.name))
        self.keys = [(i.ns, i.name) for i in self.items]
        for n, i in enumerate(self.items):
            lo_hi = self.by_ns.get(i.ns)
            self.by_ns[i.ns] = (lo_hi[0] if lo_hi else n, n + 1)

    def enc(self, item):
        e = item.enc
        if e is None:
            e = json.dumps(item.obj, separators=(",", ":")).encode()
            item.enc = e
        return e

    def with_typemeta(self, item):
        return self.prefix + self.enc(item)[1:]

    def list_item(self, item):
        return self.with_typemeta(item) if self.typemeta else self.enc(item)


class Cluster:
    def __init__(self, seed, objects, namespaces, event_alias=True):
        gc.disable()  # millions of small dicts, no cycles: the collector only costs time
        try:
            g = Gen(seed, objects, namespaces, event_alias)
        finally:
            gc.enable()
            gc.freeze()
        self.colls = {}
        for resource, obj in g.out:
            group, version, kind, namespaced = TYPES[resource]
            self._add(group, version, resource, kind, namespaced, obj)
        for group, version, resource, obj in g.aliases:
            self._add(group, version, resource, "Event", True, obj)
        for c in self.colls.values():
            c.finish()
        self.generated = g.out
        self.namespaces = g.namespaces
        self.resource_version = g.rv + 7

    def _add(self, group, version, resource, kind, namespaced, obj):
        key = (group, version, resource)
        c = self.colls.get(key)
        if c is None:
            c = self.colls[key] = Collection(group, version, resource, kind, namespaced, group == CRD_GROUP)
        m = obj["metadata"]
        c.items.append(Item(m.get("namespace", ""), m["name"], m.get("labels") or {}, obj))

    def expected(self):
        """(apiVersion, kind, namespace, name, uid, resource) of every object, sorted."""
        rows = []
        for resource, obj in self.generated:
            group, version, kind, _ = TYPES[resource]
            m = obj["metadata"]
            rows.append((group + "/" + version if group else version, kind, m.get("namespace", ""), m["name"],
                         m["uid"], resource))
        rows.sort()
        return rows

    def dump_expected(self, fp):
        for api, kind, ns, name, uid, resource in self.expected():
            fp.write(json.dumps({"apiVersion": api, "kind": kind, "namespace": ns, "name": name, "uid": uid,
                                 "resource": resource}, separators=(",", ":")) + "\n")

    def dump_json(self, fp):
        order = {}
        for resource, obj in self.generated:
            group, version, kind, _ = TYPES[resource]
            api = group + "/" + version if group else version
            m = obj["metadata"]
            order.setdefault((api, kind, m.get("namespace", ""), m["name"]), (api, kind, obj))
        for key in sorted(order):
            api, kind, obj = order[key]
            fp.write(json.dumps({"apiVersion": api, "kind": kind, **obj}, separators=(",", ":")) + "\n")


# --- discovery -----------------------------------------------------------------------

def to_aggregated_resources(rl):
    """APIResourceList resources -> apidiscovery.k8s.io/v2 APIResourceDiscovery list."""
    out, subs = [], {}
    for r in rl["resources"]:
        if "/" in r["name"]:
            base, sub = r["name"].split("/", 1)
            subs.setdefault(base, []).append({"responseKind": {"group": r.get("group", ""), "kind": r["kind"],
                                                               "version": r.get("version", "")},
                                              "subresource": sub, "verbs": r["verbs"]})
    for r in rl["resources"]:
        if "/" in r["name"]:
            continue
        d = {}
        if r.get("categories"):
            d["categories"] = r["categories"]
        d["resource"] = r["name"]
        d["responseKind"] = {"group": "", "kind": r["kind"], "version": ""}
        d["scope"] = "Namespaced" if r["namespaced"] else "Cluster"
        if r.get("shortNames"):
            d["shortNames"] = r["shortNames"]
        d["singularResource"] = r.get("singularName", "")
        if r["name"] in subs:
            d["subresources"] = subs[r["name"]]
        d["verbs"] = r["verbs"]
        out.append(d)
    return out


class Discovery:
    def __init__(self, folder):
        def load(name):
            with open(os.path.join(folder, name), "rb") as f:
                raw = f.read()
            return raw, json.loads(raw)

        self.api_raw, _ = load("api.json")
        self.v1_raw, v1 = load("api__v1.json")
        apis_raw, apis = load("apis.json")
        _, agg = load("aggregated_v2.json")
        self.gv_raw = {}      # "group/version" -> bytes
        self.resources = {}   # (group, version) -> {name: resource dict}
        self.groups = {}      # group -> APIGroup dict
        self.resources[("", "v1")] = {r["name"]: r for r in v1["resources"]}
        for g in apis["groups"]:
            self.groups[g["name"]] = g
            for v in g["versions"]:
                raw, doc = load("apis__%s__%s.json" % (g["name"], v["version"]))
                self.gv_raw[v["groupVersion"]] = raw
                self.resources[(g["name"], v["version"])] = {r["name"]: r for r in doc["resources"]}
        # The CRD's group, as the API server adds it.
        gv = CRD_GROUP + "/" + CRD_VERSION
        crd_group = {"name": CRD_GROUP, "versions": [{"groupVersion": gv, "version": CRD_VERSION}],
                     "preferredVersion": {"groupVersion": gv, "version": CRD_VERSION}}
        crd_rl = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": "widgets", "singularName": "widget", "namespaced": True, "kind": "Widget",
             "verbs": ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
             "shortNames": ["wd"], "categories": ["all"], "storageVersionHash": "p1GvlLkEkW8="},
            {"name": "widgets/status", "singularName": "", "namespaced": True, "kind": "Widget",
             "verbs": ["get", "patch", "update"]}]}
        self.groups[CRD_GROUP] = crd_group
        self.gv_raw[gv] = json.dumps(crd_rl, separators=(",", ":")).encode()
        self.resources[(CRD_GROUP, CRD_VERSION)] = {r["name"]: r for r in crd_rl["resources"]}
        apis["groups"].append(crd_group)
        self.apis = json.dumps(apis, separators=(",", ":")).encode()
        self.apis_file = apis_raw
        agg["items"].append({"metadata": {"creationTimestamp": None, "name": CRD_GROUP},
                             "versions": [{"freshness": "Current", "resources": to_aggregated_resources(crd_rl),
                                           "version": CRD_VERSION}]})
        self.apis_aggregated = json.dumps(agg, separators=(",", ":")).encode()
        core = {"apiVersion": "apidiscovery.k8s.io/v2", "items": [
            {"metadata": {"creationTimestamp": None},
             "versions": [{"freshness": "Current", "resources": to_aggregated_resources(v1), "version": "v1"}]}],
            "kind": "APIGroupDiscoveryList", "metadata": {}}
        self.api_aggregated = json.dumps(core, separators=(",", ":")).encode()


# --- TLS material ------------------------------------------------------------------------

def run_parallel(cmds, cwd):
    """Runs the openssl command lines of cmds side by side; raises on the first failure."""
    procs = [(c, subprocess.Popen(["openssl"] + c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
             for c in cmds]
    errors = []
    for c, p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            errors.append("openssl %s: %s" % (" ".join(c[:2]), err.decode(errors="replace").strip()))
    if errors:
        raise RuntimeError("; ".join(errors))


def make_certs(d, key_type):
    """CA, server, client, and an unrelated CA with a client cert of its own, in d (kept if present).
    Two rounds of openssl runs side by side: the CAs and the leaf keys, then the leaf certs."""
    names = ["ca", "server", "client", "other-ca", "other-client"]
    if all(os.path.exists(os.path.join(d, n + ".crt")) and os.path.exists(os.path.join(d, n + ".key")) for n in names):
        return False
    newkey = ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key_type == "ec" else ["rsa:2048"]
    round1 = []
    for ca, cn in (("ca", "kubernetes"), ("other-ca", "unrelated-ca")):
        round1.append(["req", "-x509", "-newkey"] + newkey + [
            "-nodes", "-keyout", ca + ".key", "-sha256", "-days", "3650", "-subj", "/CN=" + cn,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign", "-out", ca + ".crt"])
    leaves = (("server", "ca", "/CN=kube-apiserver", "serverAuth"),
              ("client", "ca", "/O=system:masters/CN=coffer-test", "clientAuth"),
              ("other-client", "other-ca", "/O=system:masters/CN=coffer-test", "clientAuth"))
    for name, _, _, _ in leaves:
        if key_type == "ec":
            round1.append(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", name + ".key"])
        else:  # PKCS#1 ("BEGIN RSA PRIVATE KEY"), as kubeadm and kind write them
            round1.append(["genrsa", "-traditional", "-out", name + ".key", "2048"])
    run_parallel(round1, d)
    round2 = []
    for name, ca, subj, eku in leaves:
        c = ["req", "-new", "-key", name + ".key", "-x509", "-CA", ca + ".crt", "-CAkey", ca + ".key",
             "-sha256", "-days", "3650", "-set_serial", str(int.from_bytes(os.urandom(8), "big") >> 1),
             "-subj", subj, "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
             "-addext", "extendedKeyUsage=" + eku]
        if name == "server":
            c += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
                  "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1"]
        round2.append(c + ["-out", name + ".crt"])
    run_parallel(round2, d)
    for n in names:
        os.chmod(os.path.join(d, n + ".key"), 0o600)
    return True


# --- the server ------------------------------------------------------------------------

LABEL_KEY = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)$")
SET_REQ = re.compile(r"^\s*(\S+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_selector(s):
    """labelSelector -> list of (key, op, values); ValueError when malformed."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    reqs = []
    for p in parts:
        p = p.strip()
        if not p:
            if s.strip():
                raise ValueError("found '', expected: identifier")
            continue
        m = SET_REQ.match(p)
        if m:
            k, op, vals = m.group(1), m.group(2), [v.strip() for v in m.group(3).split(",")]
            if not LABEL_KEY.match(k) or not all(LABEL_VALUE.match(v) for v in vals):
                raise ValueError("invalid requirement %r" % p)
            reqs.append((k, op, set(vals)))
            continue
        for op in ("!=", "==", "="):
            if op in p:
                k, v = (x.strip() for x in p.split(op, 1))
                if not LABEL_KEY.match(k) or not LABEL_VALUE.match(v):
                    raise ValueError("invalid requirement %r" % p)
                reqs.append((k, "!=" if op == "!=" else "=", {v}))
                break
        else:
            neg = p.startswith("!")
            k = p[1:].strip() if neg else p
            if not LABEL_KEY.match(k):
                raise ValueError("invalid requirement %r" % p)
            reqs.append((k, "!" if neg else "exists", None))
    return reqs


def selector_matches(reqs, labels):
    for k, op, vals in reqs:
        v = labels.get(k)
        if op == "=" or op == "in":
            if v is None or v not in vals:
                return False
        elif op == "!=" or op == "notin":
            if v is not None and v in vals:
                return False
        elif op == "exists":
            if v is None:
                return False
        elif op == "!":
            if v is not None:
                return False
    return True


def status_body(code, reason, message, details=None, continue_token=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": reason}
    if continue_token:
        s["metadata"] = {"continue": continue_token}
    if details is not None:
        s["details"] = details
    s["code"] = code
    return s


class HttpError(Exception):
    def __init__(self, code, reason, message, details=None, continue_token=None):
        super().__init__(message)
        self.code = code
        self.body = json.dumps(status_body(code, reason, message, details, continue_token),
                               separators=(",", ":")).encode()


def not_found():
    return HttpError(404, "NotFound", "the server could not find the requested resource", {})


class State:
    """Flags, overridden at run time by DIR/control.json."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.base = {"forbid": list(args.forbid), "expire_continue_after": args.expire_continue_after,
                     "slow_path": args.slow_path, "slow_seconds": args.slow_seconds,
                     "unauthorized": args.unauthorized}
        self.control_path = os.path.join(args.dir, "control.json")
        self.control_sig = None
        self.eff = dict(self.base)
        self.continues = 0
        self.expired_fired = False

    def current(self):
        with self.lock:
            try:
                st = os.stat(self.control_path)
                sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            except FileNotFoundError:
                sig = None
            if sig != self.control_sig:
                eff = dict(self.base)
                if sig is not None:
                    try:
                        with open(self.control_path) as f:
                            ctl = json.load(f)
                        for k in self.base:
                            if k in ctl:
                                eff[k] = ctl[k]
                    except (OSError, ValueError) as e:
                        log("control.json unreadable, kept the previous settings: %s" % e)
                        eff = self.eff
                if eff.get("expire_continue_after") != self.eff.get("expire_continue_after"):
                    self.continues = 0
                    self.expired_fired = False
                self.eff = eff
                self.control_sig = sig
            return self.eff

    def continue_used(self, eff):
        """Counts a continue token; True when this one must get 410 Expired."""
        with self.lock:
            self.continues += 1
            n = eff.get("expire_continue_after") or 0
            if n and not self.expired_fired and self.continues >= n:
                self.expired_fired = True
                return True
            return False


def log(msg):
    sys.stderr.write("k8s-api: %s\n" % msg)
    sys.stderr.flush()


def forbidden_match(spec, group, resource):
    """--forbid KIND.GROUP: "secrets." or "secrets" (core), "widgets.example.com", "*" for all."""
    if spec == "*":
        return True
    if "." in spec:
        r, g = spec.split(".", 1)
    else:
        r, g = spec, ""
    return r == resource and g == group


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-api.py"
    timeout = 120

    def log_message(self, fmt, *a):
        pass

    def version_string(self):
        return ""

    def do_GET(self):
        self.handle_request(body=True)

    def do_HEAD(self):
        self.handle_request(body=False)

    def _method_not_allowed(self):
        self.close_connection = True  # a chunked body would not have been read
        self.handle_request(body=True, forced=HttpError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}))

    do_POST = do_PUT = do_PATCH = do_DELETE = _method_not_allowed

    def handle_request(self, body, forced=None):
        srv = self.server
        t0 = time.monotonic()
        eff = srv.state.current()
        who = "-"
        ctype = "application/json"
        try:
            if self.headers.get("Content-Length"):
                self.rfile.read(int(self.headers["Content-Length"]))
            who = self.authenticate(eff)
            if forced:
                raise forced
            sp = eff.get("slow_path")
            if sp and sp in self.path and eff.get("slow_seconds"):
                time.sleep(float(eff["slow_seconds"]))
            code, data, ctype = self.route(eff)
        except HttpError as e:
            code, data = e.code, e.body
        except Exception as e:  # a bug here: say so, as a 500 Status
            log("internal error on %s: %r" % (self.path, e))
            code, data = 500, json.dumps(status_body(500, "InternalError", "internal error: %r" % e, {}),
                                         separators=(",", ":")).encode()
        enc = None
        if (len(data) > 128 * 1024 and not srv.args.no_gzip
                and "gzip" in self.headers.get("Accept-Encoding", "")):
            data = gzip_level4(data)
            enc = "gzip"
        self.send_response(code)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", ctype)
        if enc:
            self.send_header("Content-Encoding", enc)
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("X-Kubernetes-Pf-Flowschema-Uid", srv.flowschema_uid)
        self.send_header("X-Kubernetes-Pf-Prioritylevel-Uid", srv.prioritylevel_uid)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)
        ms = int((time.monotonic() - t0) * 1000)
        srv.log_request_line("%s %s %d ms=%d bytes=%d auth=%s%s\n" % (
            self.command, self.path, code, ms, len(data), who, " gzip" if enc else ""))

    def authenticate(self, eff):
        srv = self.server
        if eff.get("unauthorized"):
            raise HttpError(401, "Unauthorized", "Unauthorized")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            if auth[7:].strip() == srv.token:
                return "token"
            raise HttpError(401, "Unauthorized", "Unauthorized")
        cert = self.connection.getpeercert() if hasattr(self.connection, "getpeercert") else None
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        return "cert:" + v
            return "cert"
        raise HttpError(401, "Unauthorized", "Unauthorized")

    def route(self, eff):
        srv = self.server
        d = srv.discovery
        u = urllib.parse.urlsplit(self.path)
        path = u.path.rstrip("/") or "/"
        q = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        accept = self.headers.get("Accept", "")
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, b"ok", "text/plain; charset=utf-8"
        if path == "/version":
            return 200, json.dumps(VERSION_INFO, indent=2).encode(), "application/json"
        if path == "/api":
            if wants_aggregated(accept):
                return 200, d.api_aggregated, AGG_CTYPE
            return 200, d.api_raw, "application/json"
        if path == "/apis":
            if wants_aggregated(accept):
                return 200, d.apis_aggregated, AGG_CTYPE
            return 200, d.apis, "application/json"
        parts = path.split("/")[1:]
        if parts[0] == "api" and len(parts) >= 2:
            if parts[1] != "v1":
                raise not_found()
            if len(parts) == 2:
                return 200, d.v1_raw, "application/json"
            return self.resource_request("", "v1", parts[2:], q, eff)
        if parts[0] == "apis" and len(parts) >= 2:
            group = parts[1]
            if group not in d.groups:
                raise not_found()
            if len(parts) == 2:
                g = dict(kind="APIGroup", apiVersion="v1", **d.groups[group])
                return 200, json.dumps(g, separators=(",", ":")).encode(), "application/json"
            gv = group + "/" + parts[2]
            if gv not in d.gv_raw:
                raise not_found()
            if len(parts) == 3:
                return 200, d.gv_raw[gv], "application/json"
            return self.resource_request(group, parts[2], parts[3:], q, eff)
        raise not_found()

    def resource_request(self, group, version, parts, q, eff):
        srv = self.server
        res = srv.discovery.resources[(group, version)]
        ns = None
        if parts[0] == "namespaces" and len(parts) >= 3 and parts[2] in res and res[parts[2]]["namespaced"] \
                and "/" not in parts[2]:
            ns, parts = parts[1], parts[2:]
        resource = parts[0]
        rd = res.get(resource)
        if rd is None or "/" in resource:
            raise not_found()
        name = parts[1] if len(parts) > 1 else None
        sub = "/".join(parts[2:]) if len(parts) > 2 else None
        verb = "get" if name else "list"
        if sub:
            sd = res.get(resource + "/" + sub)
            if sd is None:
                raise not_found()
            if sub != "status" or "get" not in sd["verbs"]:
                raise HttpError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
        elif verb not in rd["verbs"]:
            raise HttpError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
        for spec in eff.get("forbid") or ():
            if forbidden_match(spec, group, resource):
                scope = 'in the namespace "%s"' % ns if ns else "at the cluster scope"
                details = {"kind": resource} if not group else {"group": group, "kind": resource}
                if name:
                    details["name"] = name
                raise HttpError(403, "Forbidden", '%s%s is forbidden: User "coffer-test" cannot %s resource "%s" in API group "%s" %s' % (
                    resource + ("." + group if group else ""), ' "%s"' % name if name else "", verb, resource, group, scope), details)
        coll = srv.cluster.colls.get((group, version, resource))
        if name:
            if coll is not None:
                key = (ns or "", name)
                i = bisect.bisect_left(coll.keys, key)
                if i < len(coll.keys) and coll.keys[i] == key and (ns is not None) == coll.namespaced:
                    return 200, coll.with_typemeta(coll.items[i]), "application/json"
            details = {"name": name, "kind": resource}
            if group:
                details["group"] = group
            raise HttpError(404, "NotFound", '%s "%s" not found' % (resource + ("." + group if group else ""), name), details)
        return self.list_response(group, version, rd, coll, ns, q, eff)

    def list_response(self, group, version, rd, coll, ns, q, eff):
        srv = self.server
        api_version = group + "/" + version if group else version
        list_kind = rd["kind"] + "List"
        sel_s = q.get("labelSelector", [""])[0]
        try:
            sel = parse_selector(sel_s) if sel_s else []
        except ValueError as e:
            raise HttpError(400, "BadRequest", "unable to parse requirement: %s" % e)
        limit = 0
        if q.get("limit", [""])[0]:
            try:
                limit = int(q["limit"][0])
            except ValueError:
                raise HttpError(400, "BadRequest", 'strconv.ParseInt: parsing "%s": invalid syntax' % q["limit"][0])
        cont = q.get("continue", [""])[0]
        rv = srv.cluster.resource_version
        if q.get("resourceVersion", [""])[0] == "0" and not cont:
            limit = 0  # served from the watch cache: no pages, as the real server
        start = 0
        items = coll.items if coll else []
        lo, hi = 0, len(items)
        if ns is not None and coll:
            lo, hi = coll.by_ns.get(ns, (0, 0))
        if cont:
            try:
                tok = json.loads(base64.urlsafe_b64decode(cont + "=" * (-len(cont) % 4)))
                if tok.get("v") != "meta.k8s.io/v1" or not isinstance(tok.get("start"), str):
                    raise ValueError("bad version")
                tok_rv = int(tok["rv"])
                skey = tok["start"].rstrip("\x00")
            except (ValueError, KeyError, TypeError):
                raise HttpError(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
            if srv.state.continue_used(eff):
                inconsistent = base64.urlsafe_b64encode(json.dumps(
                    {"v": "meta.k8s.io/v1", "rv": -1, "start": tok["start"]}, separators=(",", ":")).encode()).decode().rstrip("=")
                raise HttpError(410, "Expired",
                                "The provided continue parameter is too old to display a consistent list result. "
                                "You can start a new list without the continue parameter, or use the continue token "
                                "in this response to retrieve the remainder of the results. Continuing with the "
                                "provided token results in an inconsistent list - objects that were created, modified, "
                                "or deleted between the time the first chunk was returned and now may show up in the list.",
                                continue_token=inconsistent)
            if tok_rv > 0:
                rv = tok_rv
            if coll:
                if coll.namespaced:
                    key = tuple(skey.split("/", 1)) if "/" in skey else (skey, "")
                else:
                    key = ("", skey)
                start = bisect.bisect_right(coll.keys, key)
        start = max(start, lo)
        page = []
        i = start
        while i < hi and (limit <= 0 or len(page) < limit):
            it = items[i]
            if not sel or selector_matches(sel, it.labels):
                page.append(it)
            i += 1
        meta = {"resourceVersion": str(rv)}
        if limit > 0 and i < hi and page:
            last = page[-1]
            start_key = ("%s/%s" % (last.ns, last.name) if coll.namespaced else last.name) + "\x00"
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                {"v": "meta.k8s.io/v1", "rv": rv, "start": start_key}, separators=(",", ":")).encode()).decode().rstrip("=")
            if not sel:
                meta["remainingItemCount"] = hi - i
        out = [b'{"kind":', json.dumps(list_kind).encode(), b',"apiVersion":', json.dumps(api_version).encode(),
               b',"metadata":', json.dumps(meta, separators=(",", ":")).encode(), b',"items":[',
               b",".join(coll.list_item(it) for it in page) if page else b"", b"]}"]
        return 200, b"".join(out), "application/json"


AGG_CTYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept):
    for clause in accept.split(","):
        params = {}
        for p in clause.split(";")[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip()] = v.strip()
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" \
                and params.get("v") == "v2":
            return True
    return False


def gzip_level4(data):
    c = zlib.compressobj(4, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def server_bind(self):
        # HTTPServer.server_bind would look the host name up (getfqdn): not needed
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            conn = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("TLS handshake with %s:%d failed: %s" % (client_address[0], client_address[1], e))
            self.log_request_line("TLS - handshake-failed %s\n" % str(e).replace("\n", " ")[:200], tls=True)
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def log_request_line(self, line, tls=False):
        with self.log_lock:
            target = self.tls_log if tls else self.req_log
            target.write(line)
            target.flush()


def default_discovery():
    return os.path.normpath(os.path.join(HERE, "..", "data", "k8s-discovery"))


def write_atomic(path, text, mode=0o644):
    tmp = path + ".tmp%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", help="state folder: certs, token, port, logs (required to serve)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one, written to DIR/port)")
    ap.add_argument("--discovery", default=default_discovery(), help="folder of the discovery documents")
    ap.add_argument("--token", help="file holding the bearer token (default DIR/token, made when missing)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the generated cluster (default 1)")
    ap.add_argument("--objects", type=int, default=5000, help="about how many objects (default 5000)")
    ap.add_argument("--namespaces", type=int, default=0, help="extra namespaces ns-001... (default 0)")
    ap.add_argument("--no-event-alias", action="store_true",
                    help="events.k8s.io/v1 events: empty (default: the core Events again, as a real server)")
    ap.add_argument("--forbid", action="append", default=[], metavar="RESOURCE.GROUP",
                    help="403 on that resource (secrets. or secrets for core, widgets.example.com, *); repeatable")
    ap.add_argument("--expire-continue-after", type=int, default=0, metavar="N",
                    help="the Nth continue token used gets 410 Expired, once")
    ap.add_argument("--slow-path", default="", metavar="SUBSTR", help="delay requests whose path+query holds SUBSTR")
    ap.add_argument("--slow-seconds", type=float, default=0.0, metavar="S")
    ap.add_argument("--unauthorized", action="store_true", help="401 for every request")
    ap.add_argument("--key-type", choices=["rsa", "ec"], default="rsa", help="keys of the generated certs (default rsa 2048)")
    ap.add_argument("--no-gzip", action="store_true", help="never gzip (default: bodies > 128 KiB when asked, as the real server)")
    ap.add_argument("--dump-expected", metavar="FILE", help="write {apiVersion,kind,namespace,name,uid,resource} lines and exit")
    ap.add_argument("--dump-json", metavar="FILE", help="write every generated object (one JSON line each) and exit")
    args = ap.parse_args()

    t0 = time.monotonic()
    if args.dump_expected or args.dump_json:
        cluster = Cluster(args.seed, args.objects, args.namespaces, not args.no_event_alias)
        for path, fn in ((args.dump_expected, cluster.dump_expected), (args.dump_json, cluster.dump_json)):
            if path == "-":
                fn(sys.stdout)
            elif path:
                with open(path, "w") as f:
                    fn(f)
        log("generated %d objects in %.2f s" % (len(cluster.generated), time.monotonic() - t0))
        return 0
    if not args.dir:
        ap.error("--dir is required to serve")
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    for f in ("port", "ready"):
        try:
            os.unlink(os.path.join(d, f))
        except FileNotFoundError:
            pass

    cert_err = []

    def certs():
        try:
            cert_err.append(make_certs(d, args.key_type))
        except Exception as e:  # reported below
            cert_err.append(e)

    th = threading.Thread(target=certs)
    th.start()
    discovery = Discovery(args.discovery)
    cluster = Cluster(args.seed, args.objects, args.namespaces, not args.no_event_alias)
    t_gen = time.monotonic() - t0
    with open(os.path.join(d, "expected.jsonl"), "w") as f:
        cluster.dump_expected(f)
    th.join()
    if isinstance(cert_err[0], Exception):
        log(str(cert_err[0]))
        return 1

    token_file = args.token or os.path.join(d, "token")
    if not os.path.exists(token_file):
        write_atomic(token_file, "coffer-test-%s\n" % os.urandom(16).hex(), 0o600)
    with open(token_file) as f:
        token = f.read().strip()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "server.crt"), os.path.join(d, "server.key"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.load_verify_locations(os.path.join(d, "ca.crt"))
    ctx.set_alpn_protocols(["http/1.1"])

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.ssl_ctx = ctx
    srv.args = args
    srv.token = token
    srv.discovery = discovery
    srv.cluster = cluster
    srv.state = State(argparse.Namespace(**{**vars(args), "dir": d}))
    srv.log_lock = threading.Lock()
    srv.req_log = open(os.path.join(d, "requests.log"), "a")
    srv.tls_log = open(os.path.join(d, "tls.log"), "a")
    r = random.Random(args.seed)
    srv.flowschema_uid = str(uuid.UUID(int=r.getrandbits(128), version=4))
    srv.prioritylevel_uid = str(uuid.UUID(int=r.getrandbits(128), version=4))
    port = srv.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    write_atomic(os.path.join(d, "pid"), "%d\n" % os.getpid())
    write_atomic(os.path.join(d, "port"), "%d\n" % port)
    log("listening on https://127.0.0.1:%d: %d objects (generated in %.2f s), ready in %.2f s" % (
        port, len(cluster.generated), t_gen, time.monotonic() - t0))
    write_atomic(os.path.join(d, "ready"), "%d objects, generated in %.3f s, ready in %.3f s\n" % (
        len(cluster.generated), t_gen, time.monotonic() - t0))
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
