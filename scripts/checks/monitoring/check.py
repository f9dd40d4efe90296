"""The shipped monitoring files, beyond what promtool checks (scripts/checks/80-monitoring.sh).

check.py RULES TESTS DASHBOARD NAMES DOC OUT_RULES
  - every alert is expected firing in some test case of TESTS (promtool's unit tests) and
    expected silent in another;
  - every alert has a severity and summary, description and runbook annotations, and its runbook
    names a section (heading) of DOC that exists;
  - the dashboard is JSON with a uid and a title, a datasource variable DS_PROMETHEUS that every
    panel and query uses, unique panel ids, an expression in every query;
  - every pam_approval_* name in the rules and the dashboard is in NAMES (histogram names with
    _bucket, _sum or _count);
  - writes the dashboard's expressions, its variables replaced by plain values, as recording
    rules to OUT_RULES for `promtool check rules` to parse.
"""
import json
import re
import sys

import yaml


def fail(msg):
    print(f"monitoring: {msg}")
    sys.exit(1)


def slug(heading):
    # GitHub's anchors: lower case, punctuation dropped, spaces to hyphens.
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def known_names(path):
    names = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, kind, _source = line.split()
        names[name] = kind
    return names


def check_names(text, names, where):
    used = set(re.findall(r"\bpam_approval_[a-z0-9_]*[a-z0-9]\b(?!\*)", text))
    allowed = set(names)
    for n, kind in names.items():
        if kind == "histogram":
            allowed |= {n + "_bucket", n + "_sum", n + "_count"}
    unknown = sorted(used - allowed)
    if unknown:
        fail(f"{where} names metrics that are not in the list of known names: {', '.join(unknown)}")
    return used


def main():
    rules_path, tests_path, dash_path, names_path, doc_path, out_rules = sys.argv[1:7]
    names = known_names(names_path)
    doc = open(doc_path, encoding="utf-8").read()
    anchors = {slug(m) for m in re.findall(r"^#+ (.+)$", doc, re.M)}

    rules_text = open(rules_path, encoding="utf-8").read()
    rules = yaml.safe_load(rules_text)
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    if not alerts:
        fail(f"{rules_path} has no alert")
    for r in alerts:
        a = r["alert"]
        if r.get("labels", {}).get("severity") not in ("warning", "critical"):
            fail(f"alert {a}: severity is not warning or critical")
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            if not ann.get(key, "").strip():
                fail(f"alert {a}: no {key} annotation")
        m = re.fullmatch(r"docs/monitoring\.md#([\w-]+)", ann["runbook"])
        if not m:
            fail(f"alert {a}: runbook {ann['runbook']!r} does not point into docs/monitoring.md")
        if m.group(1) not in anchors:
            fail(f"alert {a}: runbook section #{m.group(1)} is not a heading of {doc_path}")
    check_names(rules_text, names, rules_path)

    fires, silent = set(), set()
    for case in yaml.safe_load(open(tests_path, encoding="utf-8"))["tests"]:
        for t in case.get("alert_rule_test", []):
            (fires if t.get("exp_alerts") else silent).add(t["alertname"])
    for r in alerts:
        if r["alert"] not in fires:
            fail(f"alert {r['alert']}: no test in {tests_path} shows it firing")
        if r["alert"] not in silent:
            fail(f"alert {r['alert']}: no test in {tests_path} shows it silent")

    try:
        dash = json.load(open(dash_path, encoding="utf-8"))
    except ValueError as e:
        fail(f"{dash_path} is not JSON: {e}")
    for key in ("uid", "title"):
        if not isinstance(dash.get(key), str) or not dash[key].strip():
            fail(f"{dash_path}: no {key}")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("DS_PROMETHEUS")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail(f"{dash_path}: no datasource variable DS_PROMETHEUS of type prometheus")
    ids = set()
    exprs = []
    panels = []
    for p in dash.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))
    for p in panels:
        if p.get("id") in ids:
            fail(f"{dash_path}: panel id {p.get('id')} twice")
        ids.add(p.get("id"))
        if p.get("type") == "row":
            continue
        if not p.get("title"):
            fail(f"{dash_path}: panel {p.get('id')} has no title")
        for obj in [p] + p.get("targets", []):
            if obj.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                fail(f"{dash_path}: panel {p['title']!r} does not use the datasource variable")
        if not p.get("targets"):
            fail(f"{dash_path}: panel {p['title']!r} has no query")
        for t in p["targets"]:
            if not t.get("expr", "").strip():
                fail(f"{dash_path}: panel {p['title']!r} has an empty query")
            exprs.append((p["title"], t["expr"]))
    for v in variables.values():
        if v.get("type") == "query":
            if v.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                fail(f"{dash_path}: variable {v['name']} does not use the datasource variable")
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*), *\w+\)", q)
            if not m:
                fail(f"{dash_path}: variable {v['name']} is not label_values(…)")
            exprs.append((f"variable {v['name']}", m.group(1)))
    used = check_names(json.dumps(dash), names, dash_path)

    def plain(e):
        e = e.replace("$__rate_interval", "5m").replace("$__interval", "1m")
        return re.sub(r"\$\{?\w+\}?", ".*", e)

    recording = [{"record": f"dashboard:expr:{i}", "expr": plain(e)} for i, (_t, e) in enumerate(exprs)]
    with open(out_rules, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}, f)
    print(
        f"monitoring: {len(alerts)} alerts with their runbook sections; dashboard {dash['uid']!r}: "
        f"{len(panels)} panels, {len(exprs)} queries, {len(used)} metric names, all known"
    )


main()
