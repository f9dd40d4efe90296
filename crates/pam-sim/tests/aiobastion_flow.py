"""aiobastion at its defaults against pam-sim's PVWA stand-in: logon, safe members, the
incoming requests, confirm one, logoff.

Usage: aiobastion_flow.py <host:port> <ca.pem> <user> <password> <safe> <request id>
aiobastion has no call for requests: it reaches them through its own generic
`handle_request`, as its users do.
"""
import asyncio
import sys

import aiobastion


async def main() -> None:
    host, ca, user, password, safe, rid = sys.argv[1:7]
    # Only the host, the CA (the documented `verify` option) and the credentials are set.
    epv = aiobastion.EPV(serialized={"api_host": host, "verify": ca})
    await epv.login(user, password, "CyberArk")
    members = await epv.safe.list_members(safe)
    print("members:", sorted(members))
    listed = await epv.handle_request("get", "API/IncomingRequests", params={"onlywaiting": "true"})
    ids = [r["RequestID"] for r in listed["IncomingRequests"]]
    print("incoming:", ids)
    assert rid in ids, ids
    detail = await epv.handle_request("get", f"API/IncomingRequests/{rid}")
    print("waiting confirmers:", [c["Name"] for c in detail["Confirmers"] if not c["ActionDate"]])
    await epv.handle_request("post", f"API/IncomingRequests/{rid}/Confirm", data={"Reason": "aiobastion"})
    print("confirmed", rid)
    await epv.logoff()
    print("AIOBASTION FLOW OK")


asyncio.run(main())
