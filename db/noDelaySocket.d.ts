import type net from 'node:net';

/** A socket connected with TCP_NODELAY, for postgres.js's `socket` option (see noDelaySocket.js). */
export function noDelaySocket(o: { host: string[]; port: number[]; path?: string | false; connect_timeout?: number }): Promise<net.Socket>;
