"""Python `websockets` as an echo server with its compression defaults.

    python3 py_server.py PORT
"""

import asyncio
import sys

import websockets


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), ping_interval=None, max_size=None):
        print("listening", flush=True)
        await asyncio.Future()


asyncio.run(main())
