#!/usr/bin/env python3
"""Drives a running drover agent with the unmodified python-nomad client library.

Usage: NOMAD_ADDR=http://127.0.0.1:4646 python3 tests/python/test_python_nomad.py

Each check calls python-nomad exactly as a user of the library would. The script stops at
the first failed check, prints what was expected and what the server answered, and exits 1.
Exit status 3 means python-nomad is not installed.
"""

import importlib.metadata
import os
import sys
import threading
import time
import traceback
import urllib.parse

try:
    import nomad
    import nomad.api.exceptions as nexc
    import requests
except ImportError as err:
    print(f"python-nomad is not importable ({err}); "
          "run `pip install -r tests/python/requirements.txt`")
    sys.exit(3)

# A per-run suffix keeps reruns against the same agent independent of earlier runs.
RUN = os.urandom(3).hex()
JOB_ID = f"pyweb-{RUN}"
JOB_ID_2 = f"pyweb2-{RUN}"
JOB_COUNT = 2

JOB_HCL = f"""
job "{JOB_ID}" {{
  datacenters = ["dc1"]
  type = "service"
  meta {{
    owner = "python"
  }}
  group "g" {{
    count = {JOB_COUNT}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args = ["3600"]
      }}
      resources {{
        cpu = 100
        memory = 64
      }}
    }}
  }}
}}
"""


class CheckFailed(Exception):
    """A check did not hold; the message says what was expected and what came back."""


def check(cond, what, got=None):
    """Fails the current step unless `cond` holds."""
    if not cond:
        text = repr(got)
        if len(text) > 2000:
            text = text[:2000] + " ..."
        detail = f"\n    got: {text}" if got is not None else ""
        raise CheckFailed(f"{what}{detail}")


def is_uuid(value):
    return isinstance(value, str) and len(value) == 36 and value.count("-") == 4


def describe(exc):
    """Describes an exception, with the HTTP exchange when python-nomad captured one."""
    resp = getattr(exc, "nomad_resp", None)
    if isinstance(resp, requests.Response):
        req = resp.request
        return (f"{type(exc).__name__}: {req.method} {req.url} -> "
                f"{resp.status_code} {resp.text[:500]!r}")
    return f"{type(exc).__name__}: {exc}"


def poll(what, timeout, fn):
    """Calls `fn` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


class Ctx:
    """State shared between steps (the client, and IDs learned along the way)."""

    def __init__(self, addr):
        parsed = urllib.parse.urlparse(addr)
        self.base = f"{parsed.scheme}://{parsed.hostname}:{parsed.port}"
        self.n = nomad.Nomad(host=parsed.hostname, port=parsed.port, timeout=10)
        self.job = None
        self.eval_id = None
        self.alloc_ids = []
        self.node_id = None


@step
def status_leader(c):
    leader = c.n.status.leader.get_leader()
    check(isinstance(leader, str) and ":" in leader, "leader is a 'host:port' string", leader)


@step
def status_peers(c):
    peers = c.n.status.peers.get_peers()
    check(isinstance(peers, list) and len(peers) >= 1, "peers is a non-empty list", peers)
    check(all(isinstance(p, str) for p in peers), "every peer is a string", peers)
    check(c.n.status.leader.get_leader() in peers, "the leader is among the peers", peers)


@step
def regions(c):
    got = c.n.regions.get_regions()
    check(got == ["global"], "regions == ['global']", got)
    check("global" in c.n.regions, "'global' in n.regions")


@step
def agent_self(c):
    agent = c.n.agent.get_agent()
    for key in ("config", "member", "stats"):
        check(key in agent, f"agent/self has '{key}'", sorted(agent))


@step
def agent_members(c):
    members = c.n.agent.get_members()
    check(isinstance(members, dict), "agent/members is an object", members)
    check(isinstance(members.get("Members"), list) and members["Members"],
          "agent/members has a non-empty Members list", members)


@step
def operator_configuration(c):
    conf = c.n.operator.get_configuration()
    servers = conf.get("Servers")
    check(isinstance(servers, list) and servers, "raft configuration has Servers", conf)
    check(any(s.get("Leader") for s in servers), "one server is the raft leader", servers)


@step
def jobs_parse(c):
    job = c.n.jobs.parse(JOB_HCL, canonicalize=True)
    check(isinstance(job, dict) and job.get("ID") == JOB_ID, f"parsed job has ID {JOB_ID}", job)
    groups = job.get("TaskGroups") or []
    check(len(groups) == 1 and groups[0].get("Count") == JOB_COUNT,
          f"parsed job has one group with Count {JOB_COUNT}", groups)
    check(job.get("Type") == "service", "parsed job keeps Type service", job.get("Type"))
    defaults = {k: job.get(k) for k in ("Priority", "Region", "Namespace")}
    check(defaults == {"Priority": 50, "Region": "global", "Namespace": "default"},
          "canonicalize fills Priority, Region and Namespace", defaults)
    raw = c.n.jobs.parse(JOB_HCL)
    check(raw.get("ID") == JOB_ID and raw.get("Priority") is None,
          "parse without canonicalize leaves Priority unset", raw.get("Priority"))
    c.job = job


@step
def jobs_register(c):
    reply = c.n.jobs.register_job({"Job": c.job})
    check(is_uuid(reply.get("EvalID")), "register reply has an EvalID", reply)
    check(isinstance(reply.get("JobModifyIndex"), int) and reply["JobModifyIndex"] > 0,
          "register reply has a positive JobModifyIndex", reply)
    c.eval_id = reply["EvalID"]


@step
def job_register_by_id(c):
    job = dict(c.job, ID=JOB_ID_2, Name=JOB_ID_2)
    reply = c.n.job.register_job(JOB_ID_2, {"Job": job})
    check(is_uuid(reply.get("EvalID")), "job.register_job reply has an EvalID", reply)
    check(isinstance(reply.get("JobModifyIndex"), int) and reply["JobModifyIndex"] > 0,
          "job.register_job reply has a positive JobModifyIndex", reply)


@step
def jobs_contains_and_list(c):
    check(JOB_ID in c.n.jobs, f"'{JOB_ID}' in n.jobs")
    check("no-such-job" not in c.n.jobs, "'no-such-job' not in n.jobs")
    jobs = c.n.jobs.get_jobs()
    check(isinstance(jobs, list), "jobs list is a list", jobs)
    ids = {j.get("ID") for j in jobs}
    check({JOB_ID, JOB_ID_2} <= ids, "jobs list holds both jobs", sorted(ids))
    check(all(j.get("Name") == j.get("ID") for j in jobs), "every stub has a Name", jobs)
    check(c.n.jobs[JOB_ID]["ID"] == JOB_ID, "n.jobs[id] finds the job")
    check(len(c.n.jobs) == len(jobs), "len(n.jobs) matches the list", len(c.n.jobs))


@step
def job_get(c):
    job = c.n.job.get_job(JOB_ID)
    check(job.get("ID") == JOB_ID, "job has the right ID", job.get("ID"))
    check(job.get("Type") == "service", "job Type is service", job.get("Type"))
    check(JOB_ID in c.n.job, f"'{JOB_ID}' in n.job")
    check(c.n.job[JOB_ID]["ID"] == JOB_ID, "n.job[id] finds the job")


@step
def job_unknown_is_404(c):
    try:
        got = c.n.job.get_job("no-such-job")
    except nexc.URLNotFoundNomadException:
        pass
    else:
        raise CheckFailed(f"unknown job must raise URLNotFoundNomadException, got {got!r}")
    check("no-such-job" not in c.n.job, "'no-such-job' not in n.job")


@step
def job_allocations_running(c):
    def running():
        allocs = c.n.job.get_allocations(JOB_ID)
        live = [a for a in allocs if a.get("ClientStatus") == "running"
                and a.get("DesiredStatus") == "run"]
        return allocs if len(live) == JOB_COUNT else None

    allocs = poll(f"{JOB_COUNT} running allocations of {JOB_ID}", 20, running)
    check(all(a.get("JobID") == JOB_ID for a in allocs), "every alloc names its JobID", allocs)
    check(all(is_uuid(a.get("ID")) and is_uuid(a.get("NodeID")) for a in allocs),
          "every alloc has an ID and a NodeID", allocs)
    c.alloc_ids = [a["ID"] for a in allocs]
    c.node_id = allocs[0]["NodeID"]
    # The second job is placed too; wait so later steps see a settled cluster.
    poll(f"running allocations of {JOB_ID_2}", 20, lambda: [
        a for a in c.n.job.get_allocations(JOB_ID_2) if a.get("ClientStatus") == "running"])


@step
def job_evaluations(c):
    evals = c.n.job.get_evaluations(JOB_ID)
    check(isinstance(evals, list) and evals, "job evaluations is a non-empty list", evals)
    check(all(e.get("JobID") == JOB_ID for e in evals), "every eval names its JobID", evals)
    check(c.eval_id in [e.get("ID") for e in evals], "the register eval is listed", evals)


@step
def job_summary(c):
    summary = c.n.job.get_summary(JOB_ID)
    check(summary.get("JobID") == JOB_ID, "summary has JobID", summary)
    group = (summary.get("Summary") or {}).get("g")
    check(isinstance(group, dict) and group.get("Running") == JOB_COUNT,
          f"summary of group g counts {JOB_COUNT} running", summary)


@step
def job_versions(c):
    versions = c.n.job.get_versions(JOB_ID)
    check(isinstance(versions.get("Versions"), list) and versions["Versions"],
          "versions has a non-empty Versions list", versions)
    check(versions["Versions"][0].get("ID") == JOB_ID, "versions hold the job", versions)


@step
def job_plan(c):
    job = dict(c.job)
    job["TaskGroups"] = [dict(job["TaskGroups"][0], Count=JOB_COUNT + 1)]
    plan = c.n.job.plan_job(JOB_ID, {"Job": job}, diff=True)
    check("Index" in plan, "plan reply has Index", plan)
    updates = (plan.get("Annotations") or {}).get("DesiredTGUpdates") or {}
    check(updates.get("g", {}).get("Place") == 1,
          "plan of count+1 annotates one placement for group g", plan.get("Annotations"))
    diff = plan.get("Diff") or {}
    check(diff.get("ID") == JOB_ID and diff.get("Type") == "Edited",
          "plan with diff=True reports the job as Edited", diff)
    plain = c.n.job.plan_job(JOB_ID, {"Job": job})
    check(plain.get("Diff") is None, "plan with diff=False (the default) has Diff null",
          plain.get("Diff"))
    # A plan is a dry run: the job keeps its count.
    job_now = c.n.job.get_job(JOB_ID)
    check(job_now["TaskGroups"][0]["Count"] == JOB_COUNT, "plan did not change the job",
          job_now["TaskGroups"][0]["Count"])


@step
def job_evaluate(c):
    reply = c.n.job.evaluate_job(JOB_ID)
    check(is_uuid(reply.get("EvalID")), "evaluate reply has an EvalID", reply)


@step
def evaluation_get(c):
    ev = c.n.evaluation.get_evaluation(c.eval_id)
    check(ev.get("ID") == c.eval_id, "evaluation has its ID", ev)
    check(ev.get("JobID") == JOB_ID, "evaluation names its JobID", ev)
    check(ev.get("Status") == "complete", "register evaluation is complete", ev.get("Status"))
    check(c.eval_id in c.n.evaluation, "eval id in n.evaluation")
    allocs = c.n.evaluation.get_allocations(c.eval_id)
    check(sorted(a["ID"] for a in allocs) == sorted(c.alloc_ids),
          "evaluation allocations are the job's allocations", allocs)


@step
def evaluations_list(c):
    evals = c.n.evaluations.get_evaluations()
    check(isinstance(evals, list), "evaluations list is a list", evals)
    check(c.eval_id in [e.get("ID") for e in evals], "the register eval is listed", evals)
    check(c.eval_id in c.n.evaluations, "eval id in n.evaluations")
    only = c.n.evaluations.get_evaluations(prefix=c.eval_id[:8])
    check([e["ID"] for e in only] == [c.eval_id], "prefix filter finds the eval", only)


@step
def allocations_list_and_get(c):
    allocs = c.n.allocations.get_allocations()
    check(isinstance(allocs, list), "allocations list is a list", allocs)
    listed = {a.get("ID") for a in allocs}
    check(set(c.alloc_ids) <= listed, "the job's allocations are listed", sorted(listed))
    alloc = c.n.allocation.get_allocation(c.alloc_ids[0])
    check(alloc.get("ID") == c.alloc_ids[0], "allocation has its ID", alloc.get("ID"))
    check(alloc.get("JobID") == JOB_ID, "allocation names its JobID", alloc.get("JobID"))
    check(isinstance(alloc.get("Job"), dict) and alloc["Job"].get("ID") == JOB_ID,
          "allocation embeds its Job", alloc.get("Job"))
    check(c.alloc_ids[0] in c.n.allocation, "alloc id in n.allocation")
    try:
        c.n.allocation.get_allocation("00000000-0000-0000-0000-000000000000")
    except nexc.URLNotFoundNomadException:
        pass
    else:
        raise CheckFailed("unknown allocation must raise URLNotFoundNomadException")


@step
def nodes_and_node(c):
    nodes = c.n.nodes.get_nodes()
    check(isinstance(nodes, list) and len(nodes) == 3, "three dev nodes are listed", nodes)
    check(c.node_id in [x.get("ID") for x in nodes], "the alloc's node is listed", nodes)
    name = next(x["Name"] for x in nodes if x["ID"] == c.node_id)
    check(name in c.n.nodes, "node name in n.nodes")
    check(c.n.nodes[name]["ID"] == c.node_id, "n.nodes[name] finds the node")
    node = c.n.node.get_node(c.node_id)
    check(node.get("ID") == c.node_id, "node has its ID", node.get("ID"))
    check(node.get("Status") == "ready", "node is ready", node.get("Status"))
    check("Drain" in node, "node has the Drain flag", sorted(node))
    check(c.node_id in c.n.node, "node id in n.node")
    allocs = c.n.node.get_allocations(c.node_id)
    check(isinstance(allocs, list) and allocs, "node allocations is a non-empty list", allocs)
    check(all(a.get("NodeID") == c.node_id for a in allocs), "every alloc names the node", allocs)


@step
def list_parameters(c):
    # The optional arguments python-nomad exposes on list calls.
    only = c.n.jobs.get_jobs(prefix=JOB_ID_2)
    check([j["ID"] for j in only] == [JOB_ID_2], "jobs prefix keeps only the match", only)
    filtered = c.n.jobs.get_jobs(filter_=f'Name == "{JOB_ID}"')
    check([j["ID"] for j in filtered] == [JOB_ID], "jobs filter keeps only the match", filtered)
    for ns in ("default", "*"):
        listed = {j["ID"] for j in c.n.jobs.get_jobs(namespace=ns)}
        check(JOB_ID in listed, f"jobs in namespace {ns!r} include the job", sorted(listed))
    check(c.n.jobs.get_jobs(namespace="elsewhere") == [], "another namespace lists no jobs")

    allocs = c.n.job.get_allocations(JOB_ID, all_=True, namespace="default")
    check(sorted(a["ID"] for a in allocs) == sorted(c.alloc_ids),
          "job allocations with all_/namespace list the job's allocations", allocs)

    nodes = c.n.nodes.get_nodes(resources=True, os=True)
    check(all(isinstance(x.get("NodeResources"), dict) for x in nodes),
          "nodes?resources=true carry NodeResources", nodes)
    check(all("os.name" in (x.get("Attributes") or {}) for x in nodes),
          "nodes?os=true carry Attributes os.name", nodes)
    plain = c.n.nodes.get_nodes()
    check(all("NodeResources" not in x and "Attributes" not in x for x in plain),
          "plain node stubs leave out NodeResources and Attributes", plain)
    check(len(c.n.nodes.get_nodes(per_page=1)) == 1, "nodes per_page=1 returns one node")
    ready = c.n.nodes.get_nodes(filter_='Status == "ready"')
    check(len(ready) == 3, "nodes filter on Status keeps the ready nodes", ready)
    one = c.n.nodes.get_nodes(prefix=c.node_id[:8])
    check([x["ID"] for x in one] == [c.node_id], "nodes prefix finds the node", one)

    mine = f'JobID == "{JOB_ID}"'
    allocs = c.n.allocations.get_allocations(filter_=mine, task_states=False)
    check(sorted(a["ID"] for a in allocs) == sorted(c.alloc_ids),
          "allocations filter on JobID lists the job's allocations", allocs)
    check(all(a.get("TaskStates") is None for a in allocs),
          "allocations?task_states=false leave TaskStates null", allocs)
    with_res = c.n.allocations.get_allocations(filter_=mine, resources=True)
    check(all(isinstance(a.get("AllocatedResources"), dict) for a in with_res),
          "allocations?resources=true carry AllocatedResources", with_res)
    check(len(c.n.allocations.get_allocations(per_page=1)) == 1,
          "allocations per_page=1 returns one allocation")
    forward = [a["ID"] for a in c.n.allocations.get_allocations()]
    backward = [a["ID"] for a in c.n.allocations.get_allocations(reverse=True)]
    # requests sends reverse=True as "True"; Nomad honours only the exact string "true",
    # so through python-nomad the order stays as it was. Lower-case "true" reverses it.
    check(backward == forward, "allocations reverse=True (sent as 'True') keeps the order",
          (forward, backward))
    lower = c.n.allocations.get_allocations(reverse="true")
    check([a["ID"] for a in lower] == forward[::-1],
          "allocations reverse='true' reverses the order", [a["ID"] for a in lower])
    check(len(c.n.allocations.get_allocations(namespace="*")) >= len(c.alloc_ids),
          "allocations in namespace '*' include the job's allocations")

    with_meta = c.n.jobs.get_jobs(prefix=JOB_ID, meta=True)
    stub = next((j for j in with_meta if j["ID"] == JOB_ID), {})
    check(stub.get("Meta") == {"owner": "python"}, "jobs?meta=true carry the job's Meta",
          stub.get("Meta", "<absent>"))
    check("Meta" not in c.n.jobs[JOB_ID], "job stubs leave Meta out without meta=true")


@step
def errors_map_to_exceptions(c):
    def raises(exc_type, status, fn, what):
        try:
            got = fn()
        except exc_type as err:
            code = getattr(err.nomad_resp, "status_code", None)
            check(code == status, f"{what}: status {status}", code)
            return err.nomad_resp.text
        raise CheckFailed(f"{what}: expected {exc_type.__name__}, got {got!r}")

    text = raises(nexc.BadRequestNomadException, 400,
                  lambda: c.n.job.register_job("not-" + JOB_ID, {"Job": c.job}),
                  "register under another job's URL")
    check("does not match" in text, "mismatch error names the cause", text)
    raises(nexc.BadRequestNomadException, 400, lambda: c.n.jobs.register_job({}),
           "register without a Job")
    text = raises(nexc.BadRequestNomadException, 400, lambda: c.n.jobs.parse('job "x" {'),
                  "parse of broken HCL")
    check("line 1" in text, "HCL error names the line", text)
    raises(nexc.URLNotFoundNomadException, 404, lambda: c.n.job.get_versions("no-such-job"),
           "versions of an unknown job")
    raises(nexc.URLNotFoundNomadException, 404, lambda: c.n.job.get_summary("no-such-job"),
           "summary of an unknown job")
    raises(nexc.URLNotFoundNomadException, 404, lambda: c.n.node.get_node("no-such-node"),
           "unknown node")
    raises(nexc.URLNotFoundNomadException, 404,
           lambda: c.n.evaluation.get_evaluation("00000000-0000-0000-0000-000000000000"),
           "unknown evaluation")
    check("no-such-node" not in c.n.node, "'no-such-node' not in n.node")

    # Client-wide region and namespace settings are sent on every call.
    addr = urllib.parse.urlparse(c.base)
    scoped = nomad.Nomad(host=addr.hostname, port=addr.port, timeout=10,
                         region="global", namespace="default")
    check(scoped.job.get_job(JOB_ID)["ID"] == JOB_ID, "region=global namespace=default reads")
    other_ns = nomad.Nomad(host=addr.hostname, port=addr.port, timeout=10, namespace="other")
    check(JOB_ID not in other_ns.job, "the job is not visible from another namespace")
    mars = nomad.Nomad(host=addr.hostname, port=addr.port, timeout=10, region="mars")
    text = raises(nexc.BaseNomadException, 500, mars.jobs.get_jobs, "unknown region")
    check("No path to region" in text, "unknown region says 'No path to region'", text)


@step
def blocking_query(c):
    # python-nomad has no blocking-query parameter on job reads, so this uses the same
    # requests session the library uses, adding ?index=&wait= as a caller would.
    session = c.n.job.session
    url = f"{c.base}/v1/job/{JOB_ID}"

    def get(**params):
        start = time.monotonic()
        resp = session.get(url, params=params, timeout=15)
        check(resp.status_code == 200, f"GET job {params} answers 200", resp.status_code)
        index = resp.headers.get("X-Nomad-Index", "")
        check(index.isdigit() and int(index) > 0, "job read carries X-Nomad-Index",
              dict(resp.headers))
        check(resp.headers.get("X-Nomad-KnownLeader") == "true",
              "job read carries X-Nomad-KnownLeader: true", dict(resp.headers))
        return int(index), time.monotonic() - start, resp

    index, _, _ = get()
    # A blocking read may return early when the watched data changed (its index then grows);
    # once the cluster is idle, a read at the current index waits out its whole `wait`.
    waited = False
    for _ in range(10):
        new_index, took, _ = get(index=index, wait="1s")
        check(new_index >= index, "X-Nomad-Index never goes backwards", (index, new_index))
        if new_index == index:
            check(0.8 <= took < 5, "an idle blocking read waits about 1s", round(took, 2))
            waited = True
            break
        index = new_index
    check(waited, "a blocking read at the current index waited for its timeout")

    # A change to the job wakes a blocking read long before its timeout.
    result = {}

    def blocked():
        result["index"], result["took"], result["resp"] = get(index=index, wait="10s")

    reader = threading.Thread(target=blocked)
    reader.start()
    time.sleep(0.5)
    job = dict(c.job, Meta={"owner": "python", "touched": RUN})
    c.n.job.register_job(JOB_ID, {"Job": job})
    reader.join(15)
    check("took" in result, "blocking read returned")
    check(result["took"] < 5, "a job update wakes the blocking read", round(result["took"], 2))
    check(result["index"] > index, "the woken read reports a higher index",
          (index, result["index"]))
    check((result["resp"].json().get("Meta") or {}).get("touched") == RUN,
          "the woken read returns the updated job", result["resp"].json().get("Meta"))

    bad = session.get(url, params={"index": "abc"}, timeout=10)
    check(bad.status_code == 400, "non-numeric index answers 400", bad.status_code)
    bad = session.get(url, params={"wait": "3"}, timeout=10)
    check(bad.status_code == 400, "wait without a unit answers 400", bad.status_code)


@step
def job_deregister(c):
    reply = c.n.job.deregister_job(JOB_ID)
    check(is_uuid(reply.get("EvalID")), "deregister reply has an EvalID", reply)
    job = c.n.job.get_job(JOB_ID)
    check(job.get("Stop") is True, "deregistered job has Stop true", job.get("Stop"))

    def stopped():
        status = c.n.job.get_job(JOB_ID).get("Status")
        allocs = c.n.job.get_allocations(JOB_ID)
        done = all(a.get("DesiredStatus") == "stop" for a in allocs)
        return status == "dead" and done

    poll(f"{JOB_ID} dead with every alloc stopped", 20, stopped)


@step
def job_deregister_purge(c):
    reply = c.n.job.deregister_job(JOB_ID_2, purge=True)
    check(is_uuid(reply.get("EvalID")), "purge reply has an EvalID", reply)
    try:
        got = c.n.job.get_job(JOB_ID_2)
    except nexc.URLNotFoundNomadException:
        pass
    else:
        raise CheckFailed(f"purged job must be 404, got {got!r}")
    check(JOB_ID_2 not in c.n.jobs, "purged job is not in n.jobs")


def main():
    addr = os.environ.get("NOMAD_ADDR", "http://127.0.0.1:4646")
    try:
        version = importlib.metadata.version("python-nomad")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    print(f"python-nomad {version} against {addr}")
    c = Ctx(addr)
    for fn in STEPS:
        name = fn.__name__
        try:
            fn(c)
        except CheckFailed as err:
            print(f"FAIL {name}: {err}")
            return 1
        except nexc.BaseNomadException as err:
            print(f"FAIL {name}: {describe(err)}")
            return 1
        except Exception:  # noqa: BLE001 - any other error is a failed check too
            print(f"FAIL {name}: unexpected error")
            traceback.print_exc(file=sys.stdout)
            return 1
        print(f"ok   {name}")
    print(f"all {len(STEPS)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
