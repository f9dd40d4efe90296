"""Read pam-sim's ServiceNow stand-in with ServiceNow's own Python client, pysnc.

Run by crates/pam-sim/tests/pysnc.rs: argv[1] is the instance URL (https); the account comes from
PYSNC_USER / PYSNC_PASSWORD; REQUESTS_CA_BUNDLE names the simulator's test CA. Prints one JSON
object with what pysnc read, for the Rust test to compare with the scenario.
"""
import json
import os
import sys

from pysnc import ServiceNowClient, ServiceNowClientCredentialsFlow
from pysnc.exceptions import AuthenticationException, RoleException

url = sys.argv[1]
client = ServiceNowClient(url, (os.environ["PYSNC_USER"], os.environ["PYSNC_PASSWORD"]))
out = {}

# Incidents: a query with paging (batch of 2), display values and a dot-walked field.
gr = client.GlideRecord("incident", batch_size=2)
gr.add_active_query()
gr.add_query("number", "STARTSWITH", "INC001")
gr.fields = "number,state,caller_id,caller_id.user_name"
gr.order_by("number")
gr.query()
out["incident_count"] = gr.get_row_count()
out["incidents"] = [
    {
        "number": r.number.get_value(),
        "state": r.state.get_value(),
        "state_label": r.state.get_display_value(),
        # Dot-walk through the element where it has a value (pysnc treats "" as absent).
        "caller": r.caller_id.user_name.get_value() if r.caller_id else r.get_value("caller_id.user_name"),
    }
    for r in gr
]

# Changes: approved ones, raw and display values, dates as pysnc parses them (UTC).
gr = client.GlideRecord("change_request", batch_size=3)
gr.add_query("approval", "approved")
gr.add_query("state", "-2")
gr.fields = "number,state,approval,start_date,end_date,requested_by"
gr.order_by_desc("number")
gr.query()
changes = []
for r in gr:
    start = r.start_date
    changes.append(
        {
            "number": r.number.get_value(),
            "state_label": r.state.get_display_value(),
            "approval": r.approval.get_value(),
            "approval_label": r.approval.get_display_value(),
            "start_raw": start.get_value(),
            "start_display": start.get_display_value(),
            "start_epoch": int(start.date_value().timestamp()) if start.get_value() else None,
            "requested_by_display": r.requested_by.get_display_value(),
            "requested_by_sys_id": r.requested_by.get_value(),
        }
    )
out["changes"] = changes

# By sys_id (a GET of one record), by number, and a miss.
one = client.GlideRecord("incident")
sys_id = os.environ["PYSNC_SYS_ID"]
out["get_by_sys_id"] = one.get(sys_id) and one.number.get_value()
two = client.GlideRecord("change_request")
out["get_by_number"] = two.get("number", "CHG0030001") and two.sys_id.get_value()
out["get_missing"] = client.GlideRecord("incident").get("0" * 32)

# OAuth client credentials, then the failures pysnc maps to its own exceptions.
oauth = ServiceNowClient(url, ServiceNowClientCredentialsFlow("pam-approval", "Demo-OAuth-Secret"))
gr = oauth.GlideRecord("incident")
gr.add_query("number", "INC0010001")
gr.query()
out["oauth_rows"] = gr.get_row_count()

try:
    bad = ServiceNowClient(url, (os.environ["PYSNC_USER"], "wrong-password"))
    gr = bad.GlideRecord("incident")
    gr.query()
    out["wrong_password"] = "no exception"
except AuthenticationException:
    out["wrong_password"] = "AuthenticationException"

try:
    noroles = ServiceNowClient(url, ("svc_noroles", "Noroles-Demo-Pass"))
    gr = noroles.GlideRecord("incident")
    gr.query()
    out["no_role"] = "no exception"
except RoleException:
    out["no_role"] = "RoleException"
except Exception as e:  # noqa: BLE001 - report what pysnc raised instead
    out["no_role"] = type(e).__name__

print(json.dumps(out))
