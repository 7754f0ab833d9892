// A TCP proxy in front of a gateway, to break the network under a client: cut() resets every
// connection (the client sees 1006), freeze() stops forwarding on them but keeps them open (a dead
// peer: only the client's own liveness check can tell). New connections pass either way.
// retarget() points new connections at another port: a stable address in front of a gateway that
// restarts, as a load balancer gives (the gateway itself cannot listen again on its old port while
// its drained sockets sit in TIME_WAIT).
import { createServer, connect, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  readonly url: string;
  /** connections accepted so far */
  readonly accepted: number;
  /** connections open now */
  readonly open: number;
  cut(): void;
  freeze(): void;
  retarget(port: number): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, path = '/ws'): Promise<TcpProxy> {
  const live = new Set<[Socket, Socket]>();
  let accepted = 0;
  let target = targetPort;
  const server = createServer((client) => {
    accepted++;
    const upstream = connect(target, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    live.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      live.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}${path}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return live.size;
    },
    cut: () => {
      for (const [a, b] of [...live]) {
        a.resetAndDestroy();
        b.destroy();
      }
    },
    retarget: (port) => {
      target = port;
    },
    freeze: () => {
      for (const [a, b] of live) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    close: async () => {
      for (const [a, b] of [...live]) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
