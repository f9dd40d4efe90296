"""exchangelib with its documented delegate set-up against pam-sim's Exchange stand-in (driven by
exchangelib.rs): a service account opens a shared mailbox it has delegate access to, reads the
inbox, creates and reads a folder, moves an item into it and sends a reply.

Usage: exchangelib_delegate_flow.py HOST:PORT CA_CERT USER PASSWORD SHARED_MAILBOX. Exits 0 and
prints "EXCHANGELIB DELEGATE FLOW OK" when every step behaved as Exchange would make it behave.
"""
import sys

import requests
from exchangelib import DELEGATE, Account, Configuration, Credentials, Folder
from exchangelib.protocol import BaseProtocol

SERVER, CA, USER, PASSWORD, SHARED = sys.argv[1:6]


class TestCA(requests.adapters.HTTPAdapter):
    """Trust the simulator's test CA (and only it): exchangelib's documented way to give it a CA."""

    def cert_verify(self, conn, url, verify, cert):
        super().cert_verify(conn, url, CA, cert)


BaseProtocol.HTTP_ADAPTER_CLS = TestCA

# The documented delegate set-up, everything else at its defaults (auth type and server version
# are negotiated; `server=` makes the endpoint https://SERVER/EWS/Exchange.asmx).
credentials = Credentials(USER, PASSWORD)
config = Configuration(server=SERVER, credentials=credentials)
a = Account(primary_smtp_address=SHARED, credentials=credentials, autodiscover=False,
            config=config, access_type=DELEGATE)
print("auth:", a.protocol.auth_type)
print("endpoint:", a.protocol.service_endpoint)

# the shared mailbox's inbox
items = list(a.inbox.all().order_by("-datetime_received"))
print("inbox:", [i.subject for i in items])
assert len(items) == 1, items
it = items[0]
assert it.author.email_address == "alice@example.com", it.author
assert "Please approve request 1" in it.body, it.body

# a folder of the shared mailbox: create it, find it again by name, move the item into it
processed = Folder(parent=a.inbox, name="Processed")
processed.save()
again = a.inbox / "Processed"
assert again.id == processed.id, (again.id, processed.id)
it.move(again)
assert list(a.inbox.all()) == [], "moved out of the inbox"
moved = list(again.all())
assert len(moved) == 1 and moved[0].subject == it.subject, moved
print("moved into", again.name)

# a reply from the shared mailbox to the sender
moved[0].reply(subject="Re: " + moved[0].subject, body="Approved.")
print("replied")
print("EXCHANGELIB DELEGATE FLOW OK")
