/**
 * What a request body declares it is: the media type of its first
 * Content-Type, lower-cased, without parameters ('' when there is none).
 *
 * PBX HTTP clients send more than one Content-Type: Kamailio's `http_client`
 * sends the `application/json` it was configured with and then its own
 * `application/x-www-form-urlencoded`. node:http keeps the first of them, web
 * Headers (`app.request`, and `c.req.header()` under @hono/node-server) join
 * them into `application/json, application/x-www-form-urlencoded`: either way
 * the first one is what the request means. The media type ends at the first
 * `;` (its parameters follow) or `,` (the next Content-Type follows).
 */
export function mediaTypeOf(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  let end = contentType.indexOf(';');
  const comma = contentType.indexOf(',');
  if (end < 0 || (comma >= 0 && comma < end)) end = comma;
  return (end < 0 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
}

/** `application/json`, or a JSON-based type such as `application/merge-patch+json`. */
export function isJsonMediaType(mediaType: string): boolean {
  return mediaType === 'application/json' || (mediaType.startsWith('application/') && mediaType.endsWith('+json'));
}
