"""Microsoft's Python SDK for Graph (msgraph-sdk, default middleware) reads pam-sim's Entra ID
directory the way the tool's Entra backend does: users by $filter on mail, proxyAddresses and
userPrincipalName with accountEnabled, $select, an advanced query ($count with ConsistencyLevel)
on onPremisesSamAccountName and the same query refused without it, transitiveMemberOf paged by
@odata.nextLink, the microsoft.graph.group cast with the advanced parameters and refused
without them, groups by displayName.

Environment: GRAPH_BASE (https://127.0.0.1:PORT/v1.0), GRAPH_TOKEN, GRAPH_CA (PEM). Prints one
JSON object with what it saw; exits non-zero on a failed expectation.
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
from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.transitive_member_of.graph_group.graph_group_request_builder import (
    GraphGroupRequestBuilder,
)
from msgraph.generated.users.item.transitive_member_of.transitive_member_of_request_builder import (
    TransitiveMemberOfRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import options as graph_default_options
from msgraph_core import GraphClientFactory

BASE = os.environ["GRAPH_BASE"]
TOKEN = os.environ["GRAPH_TOKEN"]
CA = os.environ["GRAPH_CA"]
SELECT = ["id", "displayName", "userPrincipalName", "mail", "proxyAddresses", "accountEnabled"]


class StaticToken:
    def get_token(self, *scopes, **kwargs):
        return AccessToken(TOKEN, int(time.time()) + 3600)


def fail(what):
    print(json.dumps({"failed": what}))
    sys.exit(1)


def expect(cond, what):
    if not cond:
        fail(what)


def users_query(flt, count=None, eventual=False):
    q = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(filter=flt, select=SELECT, count=count)
    c = RequestConfiguration(query_parameters=q)
    if eventual:
        c.headers.add("ConsistencyLevel", "eventual")
    return c


async def refused(coro, code):
    try:
        await coro
    except ODataError as e:
        got = e.error.code if e.error else None
        expect(e.response_status_code == 400 and got == code, f"expected 400 {code}, got {e.response_status_code} {got}")
        return got
    fail(f"expected 400 {code}, got an answer")


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
    seen = {}

    # By mail, by an smtp: proxy address (any case), by user principal name: enabled only.
    by_mail = await graph.users.get(request_configuration=users_query("mail eq 'alice@example.test'"))
    expect(len(by_mail.value) == 1, f"by mail: {len(by_mail.value)}")
    alice = by_mail.value[0]
    expect(alice.account_enabled is True and "smtp:a.approver@example.test" in alice.proxy_addresses, "alice's properties")
    by_alias = await graph.users.get(
        request_configuration=users_query("accountEnabled eq true and proxyAddresses/any(p:p eq 'smtp:A.Approver@example.test')")
    )
    expect([u.id for u in by_alias.value] == [alice.id], "by alias")
    by_upn = await graph.users.get(
        request_configuration=users_query("accountEnabled eq true and (mail eq 'lfischer@corp.example.test' or userPrincipalName eq 'lfischer@corp.example.test')")
    )
    expect([u.mail for u in by_upn.value] == ["lena.fischer@example.test"], "by user principal name")
    disabled = await graph.users.get(request_configuration=users_query("accountEnabled eq true and mail eq 'erin@example.test'"))
    expect(disabled.value == [], "a disabled user is not enabled")
    quoted = await graph.users.get(request_configuration=users_query("mail eq 'o''brien@example.test'"))
    expect([u.display_name for u in quoted.value] == ["Olivia O'Brien"], "a doubled quote is one quote")
    seen["users"] = [alice.user_principal_name, by_upn.value[0].user_principal_name]

    # An advanced query: with ConsistencyLevel and $count, and refused without them.
    adv = await graph.users.get(
        request_configuration=users_query("onPremisesSamAccountName eq 'alice'", count=True, eventual=True)
    )
    expect(adv.odata_count == 1 and adv.value[0].id == alice.id, f"advanced query count {adv.odata_count}")
    seen["refused_without_advanced"] = await refused(
        graph.users.get(request_configuration=users_query("onPremisesSamAccountName eq 'alice'")),
        "Request_UnsupportedQuery",
    )

    # transitiveMemberOf, one group a page, followed through @odata.nextLink.
    gina = (await graph.users.get(request_configuration=users_query("mail eq 'gina@example.test'"))).value[0]
    tq = TransitiveMemberOfRequestBuilder.TransitiveMemberOfRequestBuilderGetQueryParameters(top=1)
    page = await graph.users.by_user_id(gina.id).transitive_member_of.get(
        request_configuration=RequestConfiguration(query_parameters=tq)
    )
    names = [g.display_name for g in page.value]
    pages = 1
    while page.odata_next_link:
        page = await graph.users.by_user_id(gina.id).transitive_member_of.with_url(page.odata_next_link).get()
        names += [g.display_name for g in page.value]
        pages += 1
    expect(sorted(names) == ["DB_PAMapprover", "Deep1", "Deep2", "Deep3", "Deep4"] and pages == 5, f"transitive {names} in {pages}")
    seen["transitive"] = sorted(names)

    # The group cast: with the advanced parameters, and refused without them.
    gq = GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(count=True, select=["id", "displayName"])
    gc = RequestConfiguration(query_parameters=gq)
    gc.headers.add("ConsistencyLevel", "eventual")
    cast = await graph.users.by_user_id(gina.id).transitive_member_of.graph_group.get(request_configuration=gc)
    expect(cast.odata_count == 5 and len(cast.value) == 5, f"cast {cast.odata_count}")
    seen["cast_refused_without_advanced"] = await refused(
        graph.users.by_user_id(gina.id).transitive_member_of.graph_group.get(), "Request_UnsupportedQuery"
    )

    # A group by display name.
    grq = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(filter="displayName eq 'DB_PAMapprover'", select=["id", "displayName"])
    groups = await graph.groups.get(request_configuration=RequestConfiguration(query_parameters=grq))
    expect(len(groups.value) == 1 and groups.value[0].id in [g.id for g in cast.value], "group by name")
    seen["ok"] = True
    print(json.dumps(seen))


asyncio.run(main())
