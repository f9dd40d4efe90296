"""Microsoft's Python SDK for Graph (msgraph-sdk) runs the approval mailbox's whole flow against
pam-sim's Graph stand-in, with the SDK's default middleware (retry, redirect): list unread, delta
twice, headers, MIME, a child folder, move, mark read, a draft carrying a named extended
property, send, find it by the property, and a 429 with Retry-After retried by the SDK itself.

Environment: GRAPH_BASE (https://127.0.0.1:PORT/v1.0), GRAPH_TOKEN, GRAPH_CA (PEM), GRAPH_BOX,
SIM_URL (for the admin API). Prints one JSON object with what it saw; exits non-zero on a failed
expectation.
"""

import asyncio
import json
import os
import ssl
import sys
import time

import httpx
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty,
)
from msgraph.generated.users.item.mail_folders.item.child_folders.child_folders_request_builder import (
    ChildFoldersRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder as FolderMessagesRequestBuilder,
)
from msgraph.generated.users.item.messages.item.message_item_request_builder import (
    MessageItemRequestBuilder,
)
from msgraph.generated.users.item.messages.item.move.move_post_request_body import (
    MovePostRequestBody,
)
from msgraph.generated.users.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph_core import GraphClientFactory

BASE = os.environ["GRAPH_BASE"]
TOKEN = os.environ["GRAPH_TOKEN"]
CA = os.environ["GRAPH_CA"]
BOX = os.environ["GRAPH_BOX"]
SIM = os.environ["SIM_URL"]
KEY = "String {00020329-0000-0000-C000-000000000046} Name PamApprovalSendKey"
IMMUTABLE = 'IdType="ImmutableId"'


class StaticToken:
    """An azure.core TokenCredential with one token (the test fetched it from the stand-in)."""

    def get_token(self, *scopes, **kwargs):
        return AccessToken(TOKEN, int(time.time()) + 3600)


def fail(what):
    print(json.dumps({"failed": what}))
    sys.exit(1)


def expect(cond, what):
    if not cond:
        fail(what)


def immutable():
    c = RequestConfiguration()
    c.headers.add("Prefer", IMMUTABLE)
    return c


async def main():
    verify = ssl.create_default_context(cafile=CA)
    http = httpx.AsyncClient(verify=verify, base_url=BASE, timeout=20)
    http = GraphClientFactory.create_with_default_middleware(client=http, options=graph_default_options)
    host = BASE.split("//", 1)[1].split("/", 1)[0].split(":")[0]
    auth = AzureIdentityAuthenticationProvider(
        StaticToken(), scopes=["https://graph.microsoft.com/.default"], allowed_hosts=[host]
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = BASE
    graph = GraphServiceClient(request_adapter=adapter)
    user = graph.users.by_user_id(BOX)
    inbox = user.mail_folders.by_mail_folder_id("inbox")
    seen = {}

    # Unread mail, filtered and selected.
    q = FolderMessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter="isRead eq false", select=["id", "subject", "from"], top=10
    )
    page = await inbox.messages.get(request_configuration=RequestConfiguration(query_parameters=q))
    unread = page.value or []
    expect(len(unread) == 2, f"two unread mails, got {len(unread)}")
    seen["unread"] = sorted(m.subject for m in unread)

    # Delta, round one (paged by the server), then round two from the deltaLink.
    cfg = RequestConfiguration()
    cfg.headers.add("Prefer", "odata.maxpagesize=1")
    d = await inbox.messages.delta.get(request_configuration=cfg)
    round_one = list(d.value or [])
    pages = 1
    while d.odata_next_link:
        d = await inbox.messages.delta.with_url(d.odata_next_link).get()
        round_one += d.value or []
        pages += 1
    expect(len(round_one) == 2 and pages >= 2, f"round one: {len(round_one)} in {pages} pages")
    delta_link = d.odata_delta_link
    expect(delta_link and delta_link.startswith(BASE.rsplit("/v1.0", 1)[0]), f"deltaLink {delta_link}")
    verify_admin = ssl.create_default_context(cafile=CA)
    async with httpx.AsyncClient(verify=verify_admin) as admin:
        raw = (
            "Received: from mx1.example.com by pam-sim\r\nFrom: Carol <carol@example.com>\r\n"
            f"To: {BOX}\r\nSubject: third\r\nMessage-ID: <third@example.com>\r\n\r\nthird body\r\n"
        )
        r = await admin.post(f"{SIM}/sim/graph/deliver", params={"mailbox": BOX}, content=raw.encode())
        expect(r.status_code == 200, f"deliver: {r.status_code}")
    d2 = await inbox.messages.delta.with_url(delta_link).get()
    new = [m.subject for m in (d2.value or []) if m.subject]
    expect(new == ["third"], f"round two: {new}")
    seen["delta_round_two"] = new

    # One message's headers, and its MIME.
    first = unread[0]
    hq = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        select=["id", "internetMessageHeaders", "internetMessageId"]
    )
    m = await user.messages.by_message_id(first.id).get(
        request_configuration=RequestConfiguration(query_parameters=hq)
    )
    names = [h.name for h in (m.internet_message_headers or [])]
    expect("X-MS-Exchange-Organization-AuthAs" in names, f"headers {names}")
    mime = await user.messages.by_message_id(first.id).content.get()
    expect(b"Subject:" in mime, "MIME")
    seen["mime_bytes"] = len(mime)

    # A child folder, a move into it (immutable id kept), mark read.
    folder = await inbox.child_folders.post(MailFolder(display_name="Processed"))
    fq = ChildFoldersRequestBuilder.ChildFoldersRequestBuilderGetQueryParameters(
        filter="displayName eq 'Processed'"
    )
    found = await inbox.child_folders.get(request_configuration=RequestConfiguration(query_parameters=fq))
    expect(found.value and found.value[0].id == folder.id, "folder found by name")
    got = await user.messages.by_message_id(first.id).get(request_configuration=immutable())
    moved = await user.messages.by_message_id(got.id).move.post(
        MovePostRequestBody(destination_id=folder.id), request_configuration=immutable()
    )
    expect(moved.id == got.id, "an immutable id survives the move")
    patched = await user.messages.by_message_id(moved.id).patch(
        Message(is_read=True), request_configuration=immutable()
    )
    expect(patched.is_read is True, "marked read")

    # A reply: a draft with the send key, sent, found again by the key.
    draft = await user.messages.post(
        Message(
            subject="Re: request 42",
            body=ItemBody(content_type=BodyType.Text, content="Approved."),
            to_recipients=[Recipient(email_address=EmailAddress(address="alice@example.com"))],
            single_value_extended_properties=[
                SingleValueLegacyExtendedProperty(id=KEY, value="pam-approval-reply-sdk")
            ],
        ),
        request_configuration=immutable(),
    )
    expect(draft.is_draft is True, "a draft")
    await user.messages.by_message_id(draft.id).send.post(request_configuration=immutable())
    after = await user.messages.by_message_id(draft.id).get(request_configuration=immutable())
    expect(after.is_draft is False, "sent: the same id, no longer a draft")
    kq = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter=f"singleValueExtendedProperties/Any(ep: ep/id eq '{KEY}' and ep/value eq 'pam-approval-reply-sdk')",
        select=["id", "isDraft"],
    )
    kc = RequestConfiguration(query_parameters=kq)
    kc.headers.add("Prefer", IMMUTABLE)
    byk = await user.messages.get(request_configuration=kc)
    expect(len(byk.value or []) == 1 and byk.value[0].id == draft.id, "found by the send key")

    # A 429 with Retry-After: 1 is retried by the SDK's middleware.
    async with httpx.AsyncClient(verify=verify_admin) as admin:
        fault = {
            "fail": {
                "status": 429,
                "count": 1,
                "headers": {"Retry-After": "1"},
                "content_type": "application/json",
                "body": json.dumps({"error": {"code": "TooManyRequests", "message": "Please retry again later."}}),
            },
            "path_contains": "/v1.0/",
        }
        r = await admin.post(f"{SIM}/sim/faults/graph", json=fault)
        expect(r.status_code == 204, f"fault: {r.status_code}")
    t0 = time.monotonic()
    again = await inbox.messages.get(request_configuration=RequestConfiguration(query_parameters=q))
    waited = time.monotonic() - t0
    expect(again.value is not None and waited >= 0.9, f"the 429 was retried after Retry-After ({waited:.2f}s)")
    seen["retried_after_s"] = round(waited, 2)
    seen["ok"] = True
    print(json.dumps(seen))


asyncio.run(main())
