import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { keyWithRoles } from '../support/factory.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';

const app = testApp();

/** The PBX hot path answers in front of Hono: a NUL byte must not reach the reservation writer there either. */
describe('POST /v1/authorize with control characters (issue #24.2)', () => {
  it('is a 400 naming the field, on the hot path too, and the next call is authorized', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '1000', numbers: { 1: '+33142000000' } }, app);
    const pbx = await keyWithRoles(app, t, ['administrateur']);
    // the first request resolves the key; the next ones take the hot path
    const warm = await call(app, 'POST', '/v1/authorize', { key: pbx.key, json: { identifiant: u.identifiant, callee: '0142000000', callId: 'warm-1' } });
    expect(warm.status, warm.text).toBe(200);
    for (const body of [
      { identifiant: u.identifiant, callee: '0142000000', callId: 'a\u0000b' },
      { identifiant: u.identifiant, callee: '01420\u000000000', callId: 'nul-2' },
    ]) {
      // with a Content-Length, as a PBX sends it: the hot path's condition
      const text = JSON.stringify(body);
      const res = await call(app, 'POST', '/v1/authorize', { key: pbx.key, body: text, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } });
      expect(res.status, res.text).toBe(400);
      expect(res.json.error.code).toBe('VALIDATION_FAILED');
    }
    // the check reads the body's text first: a raw DEL (valid in a JSON string) and escapes in a key or a value are found too
    for (const [text, field] of [
      [`{"identifiant":"${u.identifiant}","callee":"0142000000","callId":"del\u007f"}`, 'callId'],
      [`{"identifiant":"${u.identifiant}","callee":"0142000000","callId":"bs\\b"}`, 'callId'],
      [`{"identifiant":"${u.identifiant}","callee":"0142000000","call\\u0001Id":"x"}`, 'call\u0001Id'],
    ]) {
      const res = await call(app, 'POST', '/v1/authorize', { key: pbx.key, body: text, headers: { 'content-type': 'application/json' } });
      expect(res.status, text).toBe(400);
      expect(res.json.error.details[0].field, text).toBe(field);
    }
    // a backslash that escapes no control character is not one
    const quoted = await call(app, 'POST', '/v1/authorize', { key: pbx.key, json: { identifiant: u.identifiant, callee: '0142000000', callId: 'a"b\\c/d' } });
    expect(quoted.status, quoted.text).toBe(200);
    const next = await call(app, 'POST', '/v1/authorize', { key: pbx.key, json: { identifiant: u.identifiant, callee: '0142000000', callId: 'after-1' } });
    expect(next.status, next.text).toBe(200);
    expect(next.json.decision, next.text).toBe('allow');
  });
});
