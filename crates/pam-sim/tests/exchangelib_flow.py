"""exchangelib's normal flow against pam-sim's Exchange stand-in (driven by exchangelib.rs).

Usage: exchangelib_flow.py BASE_URL CA_CERT. Exits 0 and prints "EXCHANGELIB FLOW OK" when every
step behaved as a real Exchange server would make it behave; any exception fails the run.
"""
import sys

import requests
from exchangelib import DELEGATE, Account, Configuration, Credentials, Folder, Mailbox, Message
from exchangelib.protocol import BaseProtocol

BASE, CA = sys.argv[1], sys.argv[2]


class TestCA(requests.adapters.HTTPAdapter):
    """Trust the simulator's test CA (and only it)."""

    def cert_verify(self, conn, url, verify, cert):
        super().cert_verify(conn, url, CA, cert)


BaseProtocol.HTTP_ADAPTER_CLS = TestCA

# exchangelib's defaults: it negotiates the auth type from the server's 401 answer and guesses
# the server version itself.
cfg = Configuration(
    service_endpoint=f"{BASE}/EWS/Exchange.asmx",
    credentials=Credentials("bot@example.com", "bot-password"),
)
a = Account("bot@example.com", config=cfg, autodiscover=False, access_type=DELEGATE)
inbox = a.inbox

# list unread, read body and headers
unread = list(inbox.filter(is_read=False))
assert len(unread) == 1, unread
it = unread[0]
assert "Please approve request 1" in it.body, it.body
headers = {h.name: h.value for h in (it.headers or [])}
assert "spf=pass" in headers.get("Authentication-Results", ""), headers
assert it.sender.email_address == "alice@example.com", it.sender
assert it.author.email_address == "alice@example.com", it.author
assert it.message_id == "<fw-1@example.com>", it.message_id
assert b"Received: from mx1.example.com" in it.mime_content, it.mime_content[:80]
assert "Please approve request 1" in (it.text_body or ""), it.text_body
print("read:", it.subject)
print("auth:", a.protocol.auth_type)

# mark read
it.is_read = True
it.save(update_fields=["is_read"])
assert list(inbox.filter(is_read=False)) == []
print("marked read")

# create a folder and move into it
processed = Folder(parent=inbox, name="Processed")
processed.save()
it.move(processed)
moved = list(processed.all())
assert len(moved) == 1 and moved[0].id == it.id, (moved, it.id)
print("moved into", processed.name)

# send and save
Message(account=a, subject="Approved", body="ok",
        to_recipients=[Mailbox(email_address="alice@example.com")]).send_and_save()
print("sent")

# a new-mail event over a streaming subscription
sid = inbox.subscribe_to_streaming()
eml = open(sys.argv[3], "rb").read()
r = requests.post(f"{BASE}/sim/ews/deliver", data=eml, verify=CA, timeout=10)
r.raise_for_status()
new_id = r.json()["item_id"]
kinds, ids = [], []
for notification in inbox.get_streaming_events(sid, connection_timeout=1):
    for ev in notification.events:
        kinds.append(type(ev).__name__)
        if getattr(ev, "item_id", None) is not None:
            ids.append(ev.item_id.id)
assert "NewMailEvent" in kinds and new_id in ids, (kinds, ids, new_id)
inbox.unsubscribe(sid)
print("streaming events:", ",".join(sorted(set(kinds))))

# pull notifications and sync, as exchangelib's own flow does
psid, wm = inbox.subscribe_to_pull()
list(inbox.get_events(psid, wm))
inbox.unsubscribe(psid)
synced = list(inbox.sync_items())
print("synced changes:", len(synced))

# delete: into Deleted Items, then for good
trash = a.trash
moved[0].move_to_trash()
assert list(processed.all()) == [], "moved out of Processed"
binned = list(trash.all())
assert len(binned) == 1, binned
binned[0].delete()
assert list(trash.all()) == [], "deleted for good"
print("deleted")
print("EXCHANGELIB FLOW OK")
