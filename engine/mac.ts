/**
 * MAC addresses of phones (issue 21): the one rule for reading one.
 *
 * Stored as 12 lowercase hex digits (`001a2b3c4d5e`). Accepted as written by
 * people and by vendors' tools: `00:1A:2B:3C:4D:5E`, `00-1a-2b-3c-4d-5e`,
 * `001a.2b3c.4d5e` (Cisco) or bare `001A2B3C4D5E`, with spaces around.
 * One separator per address (no `00:1a-2b…`), groups of the form's size.
 * Not a phone's address, so refused: all zeros, the broadcast address and a
 * group (multicast) address (the low bit of the first octet set).
 */
export type MacResult = { ok: true; mac: string } | { ok: false; message: string };

const FORMS: readonly RegExp[] = [
  /^[0-9a-f]{12}$/,
  /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/,
  /^[0-9a-f]{2}(?:-[0-9a-f]{2}){5}$/,
  /^[0-9a-f]{4}(?:\.[0-9a-f]{4}){2}$/,
];

export const MAC_FORMS_MESSAGE = 'a MAC address: 00:1A:2B:3C:4D:5E, 00-1a-2b-3c-4d-5e, 001a.2b3c.4d5e or 001a2b3c4d5e';

export function normalizeMac(input: string): MacResult {
  const text = input.trim().toLowerCase();
  if (!FORMS.some((re) => re.test(text))) return { ok: false, message: `not ${MAC_FORMS_MESSAGE}` };
  const mac = text.replace(/[:.-]/g, '');
  if (mac === '000000000000') return { ok: false, message: 'the all-zero address is no device' };
  if (mac === 'ffffffffffff') return { ok: false, message: 'the broadcast address is no device' };
  if (Number.parseInt(mac.slice(0, 2), 16) & 1) return { ok: false, message: 'a group (multicast) address is no device' };
  return { ok: true, mac };
}

/** The stored form as people read it: `00:1a:2b:3c:4d:5e`. */
export function displayMac(mac: string): string {
  return mac.replace(/(..)(?!$)/g, '$1:');
}

const INSTANCE = /urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-([0-9a-f]{12})\b/i;
const IN_TEXT = /(?<![0-9a-f:.-])([0-9a-f]{2}(?::[0-9a-f]{2}){5}|[0-9a-f]{2}(?:-[0-9a-f]{2}){5}|[0-9a-f]{4}(?:\.[0-9a-f]{4}){2}|[0-9a-f]{12})(?![0-9a-f:.-])/gi;

/**
 * The first device MAC address written in a text (a phone's User-Agent:
 * `Yealink SIP-T46U 108.86.0.20 00:15:65:aa:bb:cc`, or the `+sip.instance`
 * of its Contact, `urn:uuid:00000000-0000-1000-8000-001565aabbcc`), or
 * undefined. The last group of an instance UUID counts as bare hex.
 */
export function macInText(text: string): string | undefined {
  const instance = INSTANCE.exec(text);
  if (instance) {
    const found = normalizeMac(instance[1]!);
    if (found.ok) return found.mac;
  }
  for (const m of text.matchAll(IN_TEXT)) {
    const found = normalizeMac(m[1]!);
    if (found.ok) return found.mac;
  }
  return undefined;
}
