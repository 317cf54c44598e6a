"""Drive a toolhost MCP server with the official MCP Python SDK and print
what happened as one JSON object on stdout; the Rust tests assert on it.

    python3 client.py stdio [--modern] [--list-changed] -- COMMAND ARG...
    python3 client.py http  [--modern] [--list-changed] [--key KEY] URL

Without --modern the session starts with `initialize` (protocol 2025-11-25);
with it, with `server/discover` (2026-07-28, no session). With --key, every
HTTP request carries `Authorization: Bearer KEY`.

The scenario: initialize, list the tools, call `calc` (ok and failing), call
an unknown tool, call `sleep` with a progress callback, cancel a long `sleep`
after its first progress report and then call `sleep` again until it is let
through (its policy allows one call at a time, refusing others), and with
--list-changed print a line saying so, wait for
`notifications/tools/list_changed` and list again.
"""

import json
import sys
import time

try:
    import anyio
    import mcp.types as types
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client
    from mcp.client.subscriptions import listen
    from mcp.shared.subscriptions import ToolsListChanged
    from mcp.shared.exceptions import MCPError
except ImportError as error:  # the Rust test turns this exit code into a clear failure
    print(f"the MCP Python SDK is missing ({error}); the Rust test installs it under target/python", file=sys.stderr)
    sys.exit(3)


MODERN = "--modern" in sys.argv


def dump(result):
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def scenario(read, write, list_changed: bool) -> dict:
    out: dict = {}
    changed = anyio.Event()

    async def on_message(message) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()
        elif isinstance(message, Exception):
            out.setdefault("transport_errors", []).append(repr(message))

    async with ClientSession(read, write, message_handler=on_message) as session:
        if MODERN:
            found = await session.discover()
            out["initialize"] = dump(found)
        else:
            init = await session.initialize()
            out["initialize"] = dump(init)

        listed = await session.list_tools()
        out["tools"] = [dump(tool) for tool in listed.tools]

        ok = await session.call_tool("calc", {"expression": "2 + 3 * 4"})
        out["call_ok"] = dump(ok)

        failed = await session.call_tool("calc", {"expression": "1 / 0"})
        out["call_failed"] = dump(failed)

        try:
            await session.call_tool("cacl", {"expression": "1"})
            out["call_unknown"] = {"raised": False}
        except MCPError as error:
            out["call_unknown"] = {"raised": True, "code": error.code, "message": error.error.message}

        progress = []

        async def on_progress(done, total, message) -> None:
            progress.append({"progress": done, "total": total, "message": message})

        slept = await session.call_tool("sleep", {"ms": 350}, progress_callback=on_progress)
        out["call_progress"] = {"result": dump(slept), "progress": progress}

        mark = time.monotonic()
        out["cancel"] = await cancel_then_retry(session)
        out["cancel_s"] = time.monotonic() - mark
        mark = time.monotonic()

        got_change = False
        if list_changed and MODERN:
            # 2026-07-28: notifications come on a `subscriptions/listen` stream;
            # only an event on that stream counts, not the message handler.
            async with listen(session, tools_list_changed=True) as subscription:
                out["listen_honored"] = subscription.honored.model_dump(by_alias=True, exclude_none=True)
                print("waiting for tools/list_changed", flush=True)  # the test swaps the catalog now
                with anyio.move_on_after(20):
                    async for event in subscription:
                        if isinstance(event, ToolsListChanged):
                            got_change = True
                            break
        elif list_changed:
            print("waiting for tools/list_changed", flush=True)  # the test swaps the catalog now
            with anyio.move_on_after(20):
                await changed.wait()
            got_change = changed.is_set()
        out["list_changed_s"] = time.monotonic() - mark
        if list_changed:
            out["list_changed"] = got_change
            if got_change:
                relisted = await session.list_tools()
                out["tools_after_change"] = [tool.name for tool in relisted.tools]
    return out


async def cancel_then_retry(session: ClientSession) -> dict:
    """Cancel a one-minute sleep once it reports progress (after checking that
    it holds the one slot its policy allows), then call sleep until the slot is
    free again: only a killed call frees it before the minute is up."""
    started = anyio.Event()

    async def on_progress(done, total, message) -> None:
        started.set()

    report: dict = {}
    async with anyio.create_task_group() as group:

        async def long_sleep() -> None:
            try:
                result = await session.call_tool("sleep", {"ms": 60000}, progress_callback=on_progress)
                report["long_sleep_finished"] = dump(result)
            except anyio.get_cancelled_exc_class():
                report["long_sleep_cancelled"] = True
                raise

        group.start_soon(long_sleep)
        with anyio.move_on_after(20):
            await started.wait()
        report["started"] = started.is_set()
        # While it runs, its slot is taken: a second call is refused.
        busy = await session.call_tool("sleep", {"ms": 1})
        report["refused_while_running"] = busy.is_error and "rate-limited" in busy.content[0].text
        group.cancel_scope.cancel()  # the SDK sends notifications/cancelled

    cancelled_at = time.monotonic()
    refusals = []
    while time.monotonic() - cancelled_at < 10:
        result = await session.call_tool("sleep", {"ms": 1})
        if not result.is_error:
            report["retry_ok_after_s"] = time.monotonic() - cancelled_at
            break
        refusals.append(result.content[0].text if result.content else "")
        await anyio.sleep(0.05)
    report["refusals"] = refusals[:5]
    report["refused"] = len(refusals)
    return report


async def main() -> None:
    args = sys.argv[1:]
    mode = args.pop(0)
    list_changed = "--list-changed" in args
    key = None
    if "--key" in args:
        at = args.index("--key")
        key = args[at + 1]
        del args[at : at + 2]
    args = [arg for arg in args if arg not in ("--list-changed", "--modern")]
    if mode == "stdio":
        if args and args[0] == "--":
            args = args[1:]
        params = StdioServerParameters(command=args[0], args=args[1:])
        async with stdio_client(params) as (read, write):
            out = await scenario(read, write, list_changed)
    elif mode == "http":
        headers = {"Authorization": f"Bearer {key}"} if key else None
        async with create_mcp_http_client(headers=headers) as http_client:
            async with streamable_http_client(args[0], http_client=http_client) as (read, write):
                out = await scenario(read, write, list_changed)
    else:
        raise SystemExit(f"unknown mode {mode!r}; use stdio or http")
    print(json.dumps(out))


if __name__ == "__main__":
    anyio.run(main)
