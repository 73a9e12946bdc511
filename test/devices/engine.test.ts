import { describe, expect, it } from 'vitest';
import { AGED_WINDOW_MS, DEVICE_STATUSES, deviceStatus, statusRange } from '../../engine/deviceStatus.js';
import { displayMac, macInText, normalizeMac } from '../../engine/mac.js';

describe('normalizeMac: the forms of issue 21', () => {
  it.each([
    ['00:1A:2B:3C:4D:5E', '001a2b3c4d5e'],
    ['00:1a:2b:3c:4d:5e', '001a2b3c4d5e'],
    ['00-1a-2b-3c-4d-5e', '001a2b3c4d5e'],
    ['00-1A-2B-3C-4D-5E', '001a2b3c4d5e'],
    ['001a.2b3c.4d5e', '001a2b3c4d5e'],
    ['001A.2B3C.4D5E', '001a2b3c4d5e'],
    ['001a2b3c4d5e', '001a2b3c4d5e'],
    ['001A2B3C4D5E', '001a2b3c4d5e'],
    ['  00:15:65:AA:BB:CC\t', '001565aabbcc'],
    ['0a:00:00:00:00:01', '0a0000000001'],
  ])('%j is %s', (input, mac) => {
    expect(normalizeMac(input)).toEqual({ ok: true, mac });
  });

  it.each([
    ['', 'not a MAC'],
    ['001a2b3c4d5', 'not a MAC'],
    ['001a2b3c4d5e0', 'not a MAC'],
    ['001a2b3c4d5g', 'not a MAC'],
    ['00:1a-2b:3c:4d:5e', 'not a MAC'],
    ['00:1a:2b:3c:4d', 'not a MAC'],
    ['0:1a:2b:3c:4d:5e', 'not a MAC'],
    ['001a:2b3c:4d5e', 'not a MAC'],
    ['00.1a.2b.3c.4d.5e', 'not a MAC'],
    ['00 1a 2b 3c 4d 5e', 'not a MAC'],
    ['00:1a:2b:3c:4d:5e:', 'not a MAC'],
    ['000000000000', 'all-zero'],
    ['FF:FF:FF:FF:FF:FF', 'broadcast'],
    ['01:00:5e:00:00:01', 'multicast'],
    ['33-33-00-00-00-01', 'multicast'],
  ])('refuses %j (%s)', (input, words) => {
    const r = normalizeMac(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toContain(words);
  });

  it('every accepted form of one address gives the same stored value, and the display form reads back', () => {
    const forms = ['00:15:65:AA:BB:CC', '00-15-65-aa-bb-cc', '0015.65aa.bbcc', '001565AABBCC'];
    const stored = new Set(forms.map((f) => normalizeMac(f)).map((r) => (r.ok ? r.mac : r.message)));
    expect([...stored]).toEqual(['001565aabbcc']);
    expect(displayMac('001565aabbcc')).toBe('00:15:65:aa:bb:cc');
    expect(normalizeMac(displayMac('001565aabbcc'))).toEqual({ ok: true, mac: '001565aabbcc' });
  });
});

describe('macInText: a phone telling its address', () => {
  it.each([
    ['Yealink SIP-T46U 108.86.0.20 00:15:65:aa:bb:cc', '001565aabbcc'],
    ['PolycomVVX-VVX_450-UA/6.4.3.5018 0004f2aabbcc', '0004f2aabbcc'],
    ['<urn:uuid:00000000-0000-1000-8000-001565AABBCC>', '001565aabbcc'],
    ['Cisco-CP8845/12.8.1 mac 0004.f2aa.bbcc', '0004f2aabbcc'],
    ['Gigaset N670 IP PRO/83.V2.30.0+build.a546b09;7C2F80A1B2C3', '7c2f80a1b2c3'],
  ])('%j → %s', (text, mac) => {
    expect(macInText(text)).toBe(mac);
  });

  it.each(['Linphone/5.2.0 (belle-sip/5.2.0)', 'Yealink SIP-T46U 108.86.0.20', 'sipp 0123456789abcdef', ''])('%j has none', (text) => {
    expect(macInText(text)).toBeUndefined();
  });
});

describe('deviceStatus: registered → aged → unregistered', () => {
  const now = new Date('2026-03-29T01:30:00Z');
  const at = (ms: number) => new Date(now.getTime() + ms);
  it.each([
    [null, 'unregistered'],
    [at(1), 'registered'],
    [at(3600_000), 'registered'],
    [at(0), 'aged'],
    [at(-1), 'aged'],
    [at(-AGED_WINDOW_MS), 'aged'],
    [at(-AGED_WINDOW_MS - 1), 'unregistered'],
  ] as const)('expiry %s → %s', (expiry, status) => {
    expect(deviceStatus(expiry, now)).toBe(status);
  });
});

describe('statusRange: the same rule as a query range', () => {
  const now = new Date('2026-10-25T00:59:59.500Z');
  const offsets = [null, 3600_000, 1, 0, -1, -AGED_WINDOW_MS + 1, -AGED_WINDOW_MS, -AGED_WINDOW_MS - 1, -30 * AGED_WINDOW_MS];
  it.each(offsets)('expiry now%s ms lies in the range of its status only', (offset) => {
    const expiry = offset === null ? null : new Date(now.getTime() + offset);
    for (const s of DEVICE_STATUSES) {
      const r = statusRange(s, now);
      const inside = expiry === null ? r.none : (r.from === undefined || expiry >= r.from) && (r.before === undefined || expiry < r.before);
      expect(inside, `${s}`).toBe(deviceStatus(expiry, now) === s);
    }
  });
});
