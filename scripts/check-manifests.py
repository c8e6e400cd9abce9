"""Consistency checks on the rendered Kubernetes manifests (run by check-manifests.sh).

Usage: check-manifests.py BASE.yaml EXAMPLE.yaml ALL_COMPONENTS.yaml (kubectl kustomize
output of deploy/kubernetes, overlays/example, and the base with every component).
Checks what the schemas cannot; prints every problem and exits 1 when there is one.
"""

import pathlib
import re
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
# Settings of contract v2 that this build of par may not read yet (set in the manifests so
# that they take effect when it does; unknown variables are ignored by par).
PENDING: dict = {}
# Secrets the manifests may reference; they are created by the operator, never rendered.
SECRETS = {"par-oidc", "par-usage-postgres", "par-s3"}

problems = []
notes = set()


def problem(where, text):
    problems.append(f"{where}: {text}")


def load(path):
    docs = [d for d in yaml.safe_load_all(pathlib.Path(path).read_text()) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def known_env_names():
    source = (REPO / "crates/par-cli/src/env_names.rs").read_text()
    return set(re.findall(r'"((?:PAR|PACKAGES)_[A-Z0-9_]+)"', source))


def one(objs, kind, where):
    found = [o for (k, _), o in objs.items() if k == kind]
    if len(found) != 1:
        problem(where, f"expected one {kind}, found {len(found)}")
        return None
    return found[0]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check(objs, where, expect_replicas=None):
    deploy = one(objs, "Deployment", where)
    if deploy is None:
        return
    pod = deploy["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    if not matches(deploy["spec"]["selector"]["matchLabels"], labels):
        problem(where, "Deployment selector does not match its pod labels")
    containers = spec["containers"]
    par = next((c for c in containers if c["name"] == "par"), None)
    if par is None:
        problem(where, "no container named par")
        return
    ports = {p["name"]: p["containerPort"] for p in par.get("ports", [])}

    # Probes.
    for probe, path in (("readinessProbe", "/runtime/ready"), ("livenessProbe", "/runtime/health")):
        got = par.get(probe, {}).get("httpGet", {})
        if got.get("path") != path:
            problem(where, f"{probe} must GET {path}, not {got.get('path')}")
        if got.get("port") not in ports and got.get("port") not in ports.values():
            problem(where, f"{probe} port {got.get('port')} is not a container port")

    # Security context.
    psc = spec.get("securityContext", {})
    csc = par.get("securityContext", {})
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        problem(where, "runAsNonRoot is not set")
    if "ALL" not in csc.get("capabilities", {}).get("drop", []):
        problem(where, "capabilities are not all dropped")
    if csc.get("allowPrivilegeEscalation") is not False:
        problem(where, "allowPrivilegeEscalation is not false")
    if not csc.get("readOnlyRootFilesystem"):
        problem(where, "readOnlyRootFilesystem is not true")
    if "seccompProfile" not in psc and "seccompProfile" not in csc:
        problem(where, "no seccompProfile")
    if not spec.get("topologySpreadConstraints"):
        problem(where, "no topologySpreadConstraints")
    if "cpu" not in par.get("resources", {}).get("requests", {}):
        problem(where, "no CPU request (the HPA scales on CPU utilisation)")

    # Settings: the ConfigMaps the pod reads, and every variable name.
    env = {}
    for source in par.get("envFrom", []):
        name = source.get("configMapRef", {}).get("name")
        if name:
            cm = objs.get(("ConfigMap", name))
            if cm is None:
                problem(where, f"envFrom ConfigMap {name} is not rendered")
            else:
                env.update(cm.get("data", {}))
        if "secretRef" in source and source["secretRef"]["name"] not in SECRETS:
            problem(where, f"unexpected Secret {source['secretRef']['name']}")
    for var in par.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref and ref["name"] not in SECRETS:
            problem(where, f"{var['name']}: unexpected Secret {ref['name']}")
        env[var["name"]] = var.get("value", "<from " + next(iter(var.get("valueFrom", {"?": 0}))) + ">")
    known = known_env_names()
    for name in sorted(env):
        if not name.startswith(("PAR_", "PACKAGES_")):
            continue
        if name in known:
            continue
        if name in PENDING:
            notes.add(f"note: {name} is set but not read by this build of par yet ({PENDING[name]})")
        else:
            problem(where, f"{name} is not a variable par reads (crates/par-cli/src/env_names.rs)")
    listen = env.get("PAR_LISTEN", "")
    if not listen.endswith(":" + str(ports.get("http"))):
        problem(where, f"PAR_LISTEN={listen!r} does not match container port http={ports.get('http')}")
    if not listen.startswith("127.") and env.get("PAR_AUTH") in (None, ""):
        problem(where, "PAR_AUTH must be set: par refuses a non-loopback listener without it")
    if "oidc" in env.get("PAR_AUTH", "") and not {"PAR_OIDC_ISSUER", "PAR_OIDC_AUDIENCE"} <= env.keys():
        problem(where, "PAR_AUTH=oidc without PAR_OIDC_ISSUER and PAR_OIDC_AUDIENCE")

    # Volumes: every mount has a volume, every ConfigMap volume is rendered, the cache,
    # ledger and /tmp are writable although the root filesystem is read-only.
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in par.get("volumeMounts", [])}
    for m in mounts.values():
        if m["name"] not in volumes:
            problem(where, f"volumeMount {m['name']} has no volume")
    for v in volumes.values():
        if "configMap" in v and ("ConfigMap", v["configMap"]["name"]) not in objs:
            problem(where, f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not rendered")
    for var, default in (("PAR_CACHE_DIR", None), ("PAR_USAGE_DB", None)):
        path = env.get(var)
        if path and not any(
            (path + "/").startswith(mp.rstrip("/") + "/") and not m.get("readOnly") for mp, m in mounts.items()
        ):
            problem(where, f"{var}={path} is not on a writable volume")
    if "/tmp" not in mounts:
        problem(where, "/tmp is not a volume (the root filesystem is read-only)")
    policy = env.get("PAR_POLICY")
    if policy and not any(policy.startswith(mp.rstrip("/") + "/") for mp in mounts):
        problem(where, f"PAR_POLICY={policy} is not on a mounted volume")

    # Shutdown timing: preStop + drain grace + shutdown grace + 5 s for workers + 10 s
    # for the usage tail must fit in terminationGracePeriodSeconds.
    pre_stop = 0
    command = par.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if command[:1] == ["/bin/sleep"]:
        pre_stop = int(command[1])
    sleep = par.get("lifecycle", {}).get("preStop", {}).get("sleep")
    if sleep:
        pre_stop = int(sleep["seconds"])
    if "preStop" not in par.get("lifecycle", {}):
        problem(where, "no preStop hook")
    drain = int(env.get("PAR_DRAIN_GRACE_SECS", 5))
    grace = int(env.get("PAR_SHUTDOWN_GRACE_SECS", 30))
    needed = pre_stop + drain + grace + 5 + 10
    period = spec.get("terminationGracePeriodSeconds", 30)
    if period < needed:
        problem(
            where,
            f"terminationGracePeriodSeconds={period} < preStop {pre_stop} + drain grace {drain}"
            f" + shutdown grace {grace} + 5 (workers) + 10 (usage shipping) = {needed}",
        )
    if drain != 5:
        problem(where, f"PAR_DRAIN_GRACE_SECS={drain}, the fleet is designed for 5")

    # Service, PDB, NetworkPolicy and HPA point at these pods.
    svc = one(objs, "Service", where)
    if svc:
        if not matches(svc["spec"].get("selector"), labels):
            problem(where, "Service selector does not match the pods")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports and p["targetPort"] not in ports.values():
                problem(where, f"Service targetPort {p['targetPort']} is not a container port")
    pdb = one(objs, "PodDisruptionBudget", where)
    if pdb and not matches(pdb["spec"]["selector"].get("matchLabels"), labels):
        problem(where, "PodDisruptionBudget selector does not match the pods")
    netpol = one(objs, "NetworkPolicy", where)
    if netpol and not matches(netpol["spec"]["podSelector"].get("matchLabels"), labels):
        problem(where, "NetworkPolicy podSelector does not match the pods")
    hpa = one(objs, "HorizontalPodAutoscaler", where)
    if hpa:
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) != ("Deployment", deploy["metadata"]["name"]):
            problem(where, f"HPA targets {ref['kind']}/{ref['name']}")
        if expect_replicas and hpa["spec"]["minReplicas"] > expect_replicas:
            problem(where, "HPA minReplicas above the Deployment's replicas")
    one(objs, "ServiceAccount", where)
    if spec.get("serviceAccountName") not in {n for (k, n) in objs if k == "ServiceAccount"}:
        problem(where, "serviceAccountName does not name the rendered ServiceAccount")
    for (kind, name), obj in objs.items():
        if kind == "Secret":
            problem(where, f"Secret {name} is rendered: reference Secrets, never carry values")
        if kind == "ServiceMonitor":
            sel = obj["spec"]["selector"]["matchLabels"]
            if not svc or not matches(sel, svc["metadata"].get("labels", {})):
                problem(where, "ServiceMonitor selector does not match the Service")
            for endpoint in obj["spec"]["endpoints"]:
                if svc and endpoint.get("port") not in {p["name"] for p in svc["spec"]["ports"]}:
                    problem(where, f"ServiceMonitor port {endpoint.get('port')} is not a Service port")
                if endpoint.get("path", "/metrics") != "/metrics":
                    problem(where, "ServiceMonitor path is not /metrics")
    if expect_replicas is not None and deploy["spec"].get("replicas") != expect_replicas:
        problem(where, f"replicas {deploy['spec'].get('replicas')}, expected {expect_replicas}")

    # The dashboard ConfigMap holds deploy/grafana/par-overview.json as it is.
    dashboards = [o for (k, n), o in objs.items() if k == "ConfigMap" and n.startswith("par-grafana-dashboard")]
    original = (REPO / "deploy/grafana/par-overview.json").read_text()
    if len(dashboards) != 1:
        problem(where, "no par-grafana-dashboard ConfigMap")
    elif dashboards[0]["data"].get("par-overview.json") != original:
        problem(
            where,
            "the dashboard ConfigMap differs from deploy/grafana/par-overview.json: "
            "cp deploy/grafana/par-overview.json deploy/kubernetes/base/grafana/",
        )
    elif dashboards[0]["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
        problem(where, "dashboard ConfigMap lacks the grafana_dashboard=1 label")


def main():
    base, example, everything = (load(p) for p in sys.argv[1:4])
    check(base, "base")
    check(example, "overlays/example", expect_replicas=3)
    check(everything, "base+components")
    image = one(example, "Deployment", "overlays/example")
    if image and ":" not in image["spec"]["template"]["spec"]["containers"][0]["image"]:
        problem("overlays/example", "the image has no tag")
    sandboxed = one(everything, "Deployment", "base+components")
    if sandboxed:
        env = {e["name"]: e.get("value") for e in sandboxed["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        if env.get("PAR_SANDBOX") != "strict":
            problem("components/sandbox", "does not set PAR_SANDBOX=strict")
    for note in sorted(notes):
        print(note)
    if problems:
        for p in problems:
            print(f"check-manifests: {p}", file=sys.stderr)
        sys.exit(1)
    print(f"consistency checks passed ({len(base)} objects in the base)")


main()
