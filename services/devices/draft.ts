// The one check of a device as given (API body or CSV line, issue 21): MAC,
// site known, type approved for the site, lines within the type's ports and
// on known identifiants, a DECT station id only for DECT types. Every error
// is collected, each naming its field (and, for a file, its line).
import { normalizeMac } from '../../engine/mac.js';
import type { FieldError } from '../shared/errors.js';
import { identifiantProblem } from '../users/fields.js';
import type { Catalog, DeviceTypeView } from './catalog.js';


export interface LineDraft {
  port: number;
  identifiant: string;
}

/** A device as given, before any check. */
export interface DeviceDraft {
  mac: string;
  deviceType: string;
  site: string;
  lines: LineDraft[];
  dectStationId?: string | null;
  notes?: string | null;
}

/** A device checked against its tenant: what is written. */
export interface CheckedDevice {
  mac: string;
  type: DeviceTypeView;
  siteId: string;
  siteName: string;
  /** port order */
  lines: { port: number; userId: string; identifiant: string }[];
  dectStationId: string | null;
  notes: string | null;
}

export interface DirectoryEntry {
  id: string;
  fullName: string;
}

export const MAX_NOTES = 2000;
export const MAX_STATION_ID = 100;

/** The identifiants the drafts' lines name (to load those users once). */
export function identifiantsOf(drafts: Iterable<DeviceDraft>): string[] {
  const out = new Set<string>();
  for (const d of drafts) for (const l of d.lines) out.add(l.identifiant);
  return [...out];
}

/**
 * Checks a draft: the device to write, or every error found (field names are
 * the API's; `line` is added to each when the draft is a CSV line).
 */
export function checkDraft(
  draft: DeviceDraft,
  catalog: Catalog,
  users: ReadonlyMap<string, DirectoryEntry>,
  line?: number,
): { ok: true; device: CheckedDevice } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const fail = (field: string, value: string, message: string) => errors.push({ ...(line !== undefined ? { line } : {}), field, value, message });

  const mac = normalizeMac(draft.mac);
  if (!mac.ok) fail('mac', draft.mac, mac.message);

  const site = catalog.sites.get(draft.site.trim());
  if (!site) fail('site', draft.site, 'no such site: GET /v1/sites lists them');
  const code = draft.deviceType.trim().toLowerCase();
  let type = site?.types.get(code);
  if (!type) {
    const known = catalog.types.get(code);
    if (!known) fail('deviceType', draft.deviceType, 'no such device type: GET /v1/device-types lists them');
    else if (site) fail('deviceType', draft.deviceType, `not approved for site ${site.name}`);
    type = known;
  }

  const lines: CheckedDevice['lines'] = [];
  const ports = new Set<number>();
  for (const l of draft.lines) {
    const where = `lines.${l.port}`;
    if (!Number.isInteger(l.port) || l.port < 1) fail(where, String(l.port), 'a port is a whole number from 1');
    else if (type && l.port > type.ports) fail(where, String(l.port), `the ${type.code} has ${type.ports} line port${type.ports > 1 ? 's' : ''}`);
    else if (ports.has(l.port)) fail(where, String(l.port), 'port given twice');
    ports.add(l.port);
    const problem = identifiantProblem(l.identifiant);
    const user = problem === undefined ? users.get(l.identifiant) : undefined;
    if (problem !== undefined) fail(where, l.identifiant, problem);
    else if (!user) fail(where, l.identifiant, 'no user has this identifiant');
    else lines.push({ port: l.port, userId: user.id, identifiant: l.identifiant });
  }
  lines.sort((a, b) => a.port - b.port);

  const station = draft.dectStationId?.trim() || null;
  if (station !== null) {
    if (type && !type.dect) fail('dectStationId', station, `the ${type.code} is not a DECT device: no multicell station id`);
    else if (station.length > MAX_STATION_ID) fail('dectStationId', station.slice(0, 100), `at most ${MAX_STATION_ID} characters`);
  }
  const notes = draft.notes?.trim() || null;
  if (notes !== null && notes.length > MAX_NOTES) fail('notes', notes.slice(0, 100), `at most ${MAX_NOTES} characters`);

  if (errors.length || !mac.ok || !site || !type) return { ok: false, errors };
  return { ok: true, device: { mac: mac.mac, type, siteId: site.id, siteName: site.name, lines, dectStationId: station, notes } };
}
