import { randomUUID } from 'node:crypto';

/** What a client may choose as its request id: up to 255 of these characters (as hono's request-id middleware accepts). */
const UNSAFE = /[^\w\-=]/;

/**
 * A request's id: the client's `X-Request-Id` when it is a sane one, else a
 * new UUID. Every answer carries it in `X-Request-Id`, every error body in
 * `requestId`, and the log lines of the request name it.
 */
export function requestIdOf(given: string | undefined): string {
  return given !== undefined && given.length > 0 && given.length <= 255 && !UNSAFE.test(given) ? given : randomUUID();
}
