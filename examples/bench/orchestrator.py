"""The reference for `toolhost bench`: an unsandboxed Python tool orchestrator.

Tools are plain async functions in this process: no sandbox, no memory or fuel
limits, no policy. A call does what an agent framework's tool step does: look the
tool up, parse the arguments the model sent (JSON text), run the tool under a
deadline (`asyncio.timeout`, as every executor call has one), and give the result
back as JSON text. This is what the executor replaces, so its figures are the
floor the executor is measured against ("no slower than no sandbox at all").

`toolhost bench` runs this file with `python3` (3.11 or newer, for
`asyncio.timeout`) in the same run as the figures it sits beside:

    python3 orchestrator.py sleeps N MS ROUNDS
        N calls of `sleep` (MS milliseconds each) at once, ROUNDS times: prints
        {"walls_ms": [one per round], "cpu_us_per_call": median round's CPU per call}
    python3 orchestrator.py noop CALLS CONCURRENCY ROUNDS
        CALLS calls of `echo` with `{}`, CONCURRENCY in flight: prints
        {"per_sec": [one per round]}
"""

import asyncio
import json
import sys
import time

# Every call's deadline, as the executor gives each of its calls one.
TIMEOUT_S = 30.0


async def sleep(ms):
    start = time.monotonic()
    await asyncio.sleep(ms / 1000)
    return {"requested_ms": ms, "slept_ms": (time.monotonic() - start) * 1000}


async def echo(**arguments):
    return arguments


TOOLS = {"sleep": sleep, "echo": echo}


async def call(name, arguments):
    """One tool call: the tool by name, its arguments parsed, its answer as JSON."""
    tool = TOOLS.get(name)
    if tool is None:
        return json.dumps({"error": f"unknown tool {name!r}"})
    try:
        parsed = json.loads(arguments)
        if not isinstance(parsed, dict):
            raise TypeError("the arguments must be a JSON object")
        async with asyncio.timeout(TIMEOUT_S):
            result = await tool(**parsed)
        return json.dumps({"ok": result})
    except TimeoutError:
        return json.dumps({"error": "timed out"})
    except Exception as error:  # a tool's failure is the call's answer
        return json.dumps({"error": str(error)})


async def sleeps(n, ms, rounds):
    walls, cpus = [], []
    for _ in range(rounds):
        inputs = [json.dumps({"ms": ms}) for _ in range(n)]
        start, cpu = time.perf_counter(), time.process_time()
        answers = await asyncio.gather(*(call("sleep", text) for text in inputs))
        walls.append((time.perf_counter() - start) * 1e3)
        cpus.append((time.process_time() - cpu) * 1e6 / n)
        failed = [answer for answer in answers if not answer.startswith('{"ok"')]
        if failed:
            raise SystemExit(f"{len(failed)} calls failed, the first: {failed[0]}")
    cpus.sort()
    return {"walls_ms": walls, "cpu_us_per_call": cpus[len(cpus) // 2]}


async def noop(calls, concurrency, rounds):
    per_sec = []
    for _ in range(rounds):
        left = calls

        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                answer = await call("echo", "{}")
                if answer != '{"ok": {}}':
                    raise SystemExit(f"a call failed: {answer}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        per_sec.append(calls / (time.perf_counter() - start))
    return {"per_sec": per_sec}


def main(argv):
    modes = {"sleeps": sleeps, "noop": noop}
    if len(argv) != 4 or argv[0] not in modes:
        raise SystemExit(__doc__)
    numbers = [int(x) for x in argv[1:]]
    if min(numbers) < 1:
        raise SystemExit("every number must be at least 1")
    print(json.dumps(asyncio.run(modes[argv[0]](*numbers))))


if __name__ == "__main__":
    main(sys.argv[1:])
