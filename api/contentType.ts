import type { MiddlewareHandler } from 'hono';

/**
 * The first of the Content-Types a request carries, parameters included.
 *
 * PBX HTTP clients send more than one: Kamailio's `http_client` sends the
 * `application/json` it was configured with and then its own
 * `application/x-www-form-urlencoded`. Web Headers (`app.request`, and
 * `c.req.header()` under @hono/node-server) join them into
 * `application/json, application/x-www-form-urlencoded`: the first one is what
 * the request means. It ends at the first comma outside a quoted parameter
 * value (a multipart boundary may hold one in quotes).
 */
export function firstContentType(contentType: string): string {
  let quoted = false;
  for (let i = 0; i < contentType.length; i++) {
    const ch = contentType.charCodeAt(i);
    if (ch === 0x22) quoted = !quoted; // "
    else if (ch === 0x5c && quoted) i++; // \ escapes the next character in a quoted string
    else if (ch === 0x2c && !quoted) return contentType.slice(0, i).trim(); // ,
  }
  return contentType.trim();
}

/**
 * What a request body declares it is: the media type of its first
 * Content-Type, lower-cased, without parameters ('' when there is none).
 */
export function mediaTypeOf(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const first = firstContentType(contentType);
  const semicolon = first.indexOf(';');
  return (semicolon < 0 ? first : first.slice(0, semicolon)).trim().toLowerCase();
}

/** `application/json`, or a JSON-based type such as `application/merge-patch+json`. */
export function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}

/**
 * Every route's first middleware (defineRoute): a request with several
 * Content-Types goes on with its first alone, so that whatever reads the type
 * after it — zod-openapi's validators, readJsonBody, the CSV and NDJSON
 * readers — judges the same one, and Kamailio's request is read as JSON on
 * every route as on the PBX lane. A request with one Content-Type is left as
 * it is (one header read).
 */
export const firstContentTypeOnly: MiddlewareHandler = (c, next) => {
  const contentType = c.req.header('content-type');
  if (contentType?.includes(',')) {
    const first = firstContentType(contentType);
    if (first !== contentType) c.req.raw.headers.set('content-type', first);
  }
  return next();
};
