#!/usr/bin/env python3
"""A round-robin TCP load balancer for trying a cluster on one machine (scripts/cluster.sh).

Each accepted connection goes to the next backend that accepts it (a backend that refuses is
skipped, so a stopped replica drops out at once). Plain TCP: HTTP keep-alive connections stay
on one replica, as behind most production balancers. Standard library only.

Usage: lb.py LISTEN_PORT BACKEND_PORT [BACKEND_PORT...]   (all on 127.0.0.1)
For production, use nginx or HAProxy with health checks on /ping (docs/DEPLOY.md).
"""
import asyncio
import itertools
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen, backends):
    turn = itertools.cycle(backends)

    async def serve(client_reader, client_writer):
        for _ in backends:
            port = next(turn)
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))
            return
        client_writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", listen)
    print(f"load balancer on 127.0.0.1:{listen} -> {', '.join(map(str, backends))}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), [int(p) for p in sys.argv[2:]]))
