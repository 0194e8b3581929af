"""Memory per compressed connection, measured as a user would: N Python
`websockets` clients with their default compression offer
(`permessage-deflate; client_max_window_bits`) connect to the server whose
process id is given, then each sends one JSON-like text message and reads
the echo, then 40 more each. Prints one line: the server's RSS growth per
connection after the handshakes, after the first message and after the 41st,
in KiB, and the extension agreed.

    python3 clients.py PORT SERVER_PID [N]
"""

import asyncio
import os
import random
import sys

import websockets


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def json_like(seed, size=1024):
    """Deterministic JSON-like text of `size` bytes (user records)."""
    rng = random.Random(seed)
    names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Radia"]
    cities = ["Zurich", "Lisbon", "Osaka", "Toronto", "Nairobi", "Oslo"]
    records = []
    while sum(len(r) + 1 for r in records) < size:
        name = rng.choice(names)
        records.append(
            '{"id":%d,"name":"%s","email":"%s%d@example.com","city":"%s","score":%d.%02d,"active":%s}'
            % (rng.randrange(10**6), name, name.lower(), rng.randrange(100), rng.choice(cities),
               rng.randrange(100), rng.randrange(100), rng.choice(["true", "false"]))
        )
    text = "[" + ",".join(records) + "]"
    return text[:size - 1] + "]"


async def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    url = f"ws://127.0.0.1:{port}/"
    await asyncio.sleep(0.5)
    before = rss_kib(pid)
    conns = []
    for i in range(n):
        conns.append(await websockets.connect(url, ping_interval=None, max_size=None, open_timeout=30, compression=None if os.environ.get("NO_COMPRESSION") else "deflate"))
    await asyncio.sleep(1.0)
    after_handshake = rss_kib(pid)
    messages = [json_like(i) for i in range(n)]
    for ws, message in zip(conns, messages):
        await ws.send(message)
    for ws, message in zip(conns, messages):
        echoed = await asyncio.wait_for(ws.recv(), 30)
        assert echoed == message, "echo differs"
    await asyncio.sleep(1.0)
    after_message = rss_kib(pid)
    # 40 KiB more each: past every window, the steady state of a chatty
    # connection.
    for round_ in range(1, 41):
        batch = [json_like(round_ * n + i) for i in range(n)]
        for ws, message in zip(conns, batch):
            await ws.send(message)
        for ws, message in zip(conns, batch):
            echoed = await asyncio.wait_for(ws.recv(), 30)
            assert echoed == message, "echo differs"
    await asyncio.sleep(1.0)
    after_many = rss_kib(pid)
    agreed = conns[0].response.headers.get("Sec-WebSocket-Extensions", "-")
    per = [(x - before) / n for x in (after_handshake, after_message, after_many)]
    print("\t".join(f"{x:.1f}" for x in per) + f"\t{agreed}")
    await asyncio.gather(*(ws.close() for ws in conns))


asyncio.run(main())
