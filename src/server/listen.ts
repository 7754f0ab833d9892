// Which port to listen on, and how. uSockets (bsd_create_listen_socket) sets SO_REUSEADDR and
// SO_REUSEPORT only when the port is not 0: a socket listening on port 0 has neither, and then
// every connection it closed first (a drain closes with 4500, so the server sends the first FIN)
// keeps the port in TIME_WAIT without SO_REUSEADDR, so nothing can listen on that port again for
// 60 s (measured on the compat build: a re-listen right after a drain of 50 sockets failed when
// the first listen was on port 0, and succeeded when it was on a fixed port). So port 0 is
// resolved to a free port first, and the gateway always listens on a fixed one.
import { createServer } from 'node:net';

/**
 * `port`, or for 0 a port the kernel reports free on `host` now (bound and released at once by a
 * plain Node listener). Another process could take it before we listen: the listen then fails.
 */
export function resolvePort(host: string, port: number): Promise<number> {
  if (port !== 0) return Promise.resolve(port);
  return probePort(host, 0);
}

/**
 * Binds `host:port` without SO_REUSEPORT and releases it: resolves to the port when nothing listens
 * there (a socket with SO_REUSEPORT, e.g. another wsgate's worker, makes it fail too), rejects with
 * the bind error otherwise.
 */
export function probePort(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const addr = server.address();
      const got = typeof addr === 'object' && addr !== null ? addr.port : port;
      server.close(() => resolve(got));
    });
  });
}
