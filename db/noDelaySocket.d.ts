import type net from 'node:net';

/** A socket connected with TCP_NODELAY, for postgres.js's `socket` option (see noDelaySocket.js). */
export function noDelaySocket(o: { host: string[]; port: number[]; path?: string | false; connect_timeout?: number }): Promise<net.Socket>;

/** Seconds before postgres.js connects again after `retries` failed attempts (see noDelaySocket.js). */
export function reconnectBackoff(retries: number): number;
