import { describe, expect, it } from 'vitest';
import { firstContentType, isJsonMediaType, mediaTypeOf } from '../../api/contentType.js';

describe('the media type a request body declares (its first Content-Type)', () => {
  it.each([
    [undefined, ''],
    ['application/json', 'application/json'],
    ['Application/JSON; charset=UTF-8', 'application/json'],
    // Kamailio's http_client: the configured type, then its own, joined by web Headers
    ['application/json, application/x-www-form-urlencoded', 'application/json'],
    ['application/x-www-form-urlencoded, application/json', 'application/x-www-form-urlencoded'],
    ['application/json; charset=utf-8, text/plain', 'application/json'],
    ['  text/plain ,application/json', 'text/plain'],
    ['multipart/form-data; boundary="a,b", application/json', 'multipart/form-data'],
  ])('%s → %s', (header, media) => {
    expect(mediaTypeOf(header)).toBe(media);
  });

  it.each([
    ['application/json', 'application/json'],
    ['application/json, application/x-www-form-urlencoded', 'application/json'],
    ['application/json; charset=utf-8, application/x-www-form-urlencoded', 'application/json; charset=utf-8'],
    // a comma inside a quoted parameter value is not the end of the first type, nor an escaped quote
    ['multipart/form-data; boundary="a,b", application/json', 'multipart/form-data; boundary="a,b"'],
    ['text/plain; x="q\\",\\"", text/csv', 'text/plain; x="q\\",\\""'],
  ])('the first Content-Type of %s is %s', (header, first) => {
    expect(firstContentType(header)).toBe(first);
  });

  it('takes application/json and the +json types as JSON, nothing else', () => {
    expect(['application/json', 'application/merge-patch+json', 'application/problem+json'].every(isJsonMediaType)).toBe(true);
    expect(['', 'text/json', 'application/jsonp', 'application/x-www-form-urlencoded', 'text/plain'].some(isJsonMediaType)).toBe(false);
  });
});
