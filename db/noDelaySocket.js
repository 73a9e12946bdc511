// Plain JavaScript (typed by noDelaySocket.d.ts) so that both db/connection.ts
// and the reservation commit worker, which Node loads without tsx, use it.
import net from 'node:net';

/**
 * postgres.js's own sockets keep Nagle's algorithm on: a small message sent
 * while an earlier one is unacknowledged (the 5-byte CopyDone after a COPY's
 * data, a query right after another) waits for PostgreSQL's delayed ACK, ~40 ms.
 * This connects the socket itself with TCP_NODELAY, for postgres.js's `socket`
 * option (postgres.js then speaks on it, TLS included). Only a single host or a
 * Unix socket path is supported.
 * @param {{ host: string[], port: number[], path?: string | false, connect_timeout?: number }} o
 * @returns {Promise<net.Socket>}
 */
export function noDelaySocket(o) {
  return new Promise((resolve, reject) => {
    const socket = o.path ? net.connect(o.path) : net.connect({ host: o.host[0] ?? 'localhost', port: o.port[0] ?? 5432, noDelay: true });
    socket.setNoDelay(true);
    // postgres.js's connect_timeout starts once the socket is handed over: this one covers the connect
    socket.setTimeout((o.connect_timeout ?? 30) * 1000, () => socket.destroy(new Error('connect timeout')));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
