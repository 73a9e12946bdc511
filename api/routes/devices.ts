import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { DEVICE_STATUSES } from '../../engine/deviceStatus.js';
import { createDeviceType, createSite, listDeviceTypes, listSites, resellerOfTenant, updateSite } from '../../services/devices/catalog.js';
import { deviceCsvTemplate, exportDevicesCsv, importDevicesCsv } from '../../services/devices/csv.js';
import { MAX_NOTES, MAX_STATION_ID } from '../../services/devices/draft.js';
import { createDevice, getDevice, listDevices, retireDevice, updateDevice } from '../../services/devices/inventory.js';
import { lineStatesCsv } from '../../services/devices/lineStates.js';
import { KamailioRpc, restartDevice, restartsOf } from '../../services/devices/restart.js';
import { MAX_EXPIRES_SECONDS, recordRegistration } from '../../services/devices/status.js';
import type { ExportQueue } from '../../services/exports/queue.js';
import { SharedResults } from '../../services/exports/sharedResult.js';
import { ExportSpacing } from '../../services/exports/spacing.js';
import { actorOf } from '../../services/audit/audit.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { IdParam, json, jsonRequest, ListQuery, listOf, openapiWithJsonBody, type DefineRoute } from '../route.js';

const manage = { scope: 'tenant', permission: 'devices:manage' } as const;
const tags = ['devices'];

const DeviceTypeSchema = z
  .object({ id: z.string(), code: z.string(), vendor: z.string(), model: z.string(), ports: z.number().int(), dect: z.boolean() })
  .openapi('DeviceType');
const DeviceTypeCreate = z
  .object({
    code: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'lower-case letters, digits, . - and _').openapi({ example: 'yealink-t46u' }),
    vendor: z.string().trim().min(1).max(100).openapi({ example: 'Yealink' }),
    model: z.string().trim().min(1).max(100).openapi({ example: 'T46U' }),
    ports: z.number().int().min(1).max(64).openapi({ description: 'line ports (lines the phone carries)', example: 16 }),
    dect: z.boolean().optional().openapi({ description: 'a DECT base: its devices have a multicell station id' }),
  })
  .strict()
  .openapi('DeviceTypeCreate', { example: { code: 'yealink-t46u', vendor: 'Yealink', model: 'T46U', ports: 16 } });

const SiteSchema = z
  .object({ id: z.string(), name: z.string(), deviceTypes: z.array(z.string()), createdAt: z.string(), updatedAt: z.string() })
  .openapi('Site');
const SiteName = z.string().trim().min(1).max(200).openapi({ description: 'the `site` label the CDRs and indicators carry', example: 'Paris' });
const TypeCodes = z.array(z.string().max(64)).max(500).openapi({ description: 'codes of the device types the site approves', example: ['yealink-t46u'] });
const SiteCreate = z
  .object({ name: SiteName, deviceTypes: TypeCodes.optional() })
  .strict()
  .openapi('SiteCreate', { example: { name: 'Paris', deviceTypes: ['yealink-t46u'] } });
const SitePatch = z
  .object({ name: SiteName.optional(), deviceTypes: TypeCodes.optional() })
  .strict()
  .openapi('SitePatch', { example: { name: 'Paris 8e', deviceTypes: ['yealink-t46u'] } });

const RegistrationSchema = z
  .object({
    identifiant: z.string(),
    contact: z.string(),
    registeredAt: z.string(),
    expiresAt: z.string(),
    userAgent: z.string().nullable(),
    ip: z.string().nullable(),
    port: z.number().int().nullable(),
  })
  .openapi('DeviceRegistration');

const DeviceSchema = z
  .object({
    id: z.string(),
    mac: z.string().openapi({ example: '001565aabbcc' }),
    macDisplay: z.string().openapi({ example: '00:15:65:aa:bb:cc' }),
    deviceType: DeviceTypeSchema.omit({ id: true }),
    site: z.object({ id: z.string(), name: z.string() }),
    lines: z.array(z.object({ port: z.number().int(), userId: z.string(), identifiant: z.string(), fullName: z.string() })),
    linesAvailable: z.number().int(),
    dectStationId: z.string().nullable(),
    notes: z.string().nullable(),
    status: z.enum(DEVICE_STATUSES),
    lastRegistration: RegistrationSchema.nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    retiredAt: z.string().nullable(),
  })
  .openapi('Device');

const LineIn = z.object({
  port: z.number().int().min(1).max(64),
  identifiant: z.string().max(40).openapi({ example: '1234567' }),
});
const DeviceFields = {
  mac: z.string().max(40).openapi({ description: '00:1A:2B:3C:4D:5E, 00-1a-2b-3c-4d-5e, 001a.2b3c.4d5e or 001a2b3c4d5e', example: '00:15:65:AA:BB:CC' }),
  deviceType: z.string().max(64).openapi({ description: 'a device type code approved for the site', example: 'yealink-t46u' }),
  site: z.string().max(200).openapi({ description: 'the site’s name', example: 'Paris' }),
  lines: z.array(LineIn).max(64),
  dectStationId: z.string().max(MAX_STATION_ID + 100).nullable().openapi({ description: 'DECT types only: the multicell station id' }),
  notes: z.string().max(MAX_NOTES + 100).nullable(),
};
const DeviceCreate = z
  .object(DeviceFields)
  .partial({ lines: true, dectStationId: true, notes: true })
  .strict()
  .openapi('DeviceCreate', { example: { mac: '00:15:65:AA:BB:CC', deviceType: 'yealink-t46u', site: 'Paris', lines: [{ port: 1, identifiant: '1234567' }] } });
const DevicePatch = z
  .object(DeviceFields)
  .omit({ mac: true })
  .partial()
  .strict()
  .openapi('DevicePatch', {
    description: 'lines replaces every line; the MAC is the device (retire it and add the new one)',
    example: { lines: [{ port: 1, identifiant: '1234567' }], notes: 'Accueil, 2e étage' },
  });

const RestartSchema = z
  .object({
    restartId: z.string(),
    deviceId: z.string(),
    contact: z.string(),
    requestedAt: z.string(),
    answeredAt: z.string(),
    sipStatus: z.number().int().openapi({ description: 'the phone’s final SIP answer; 408 when none came' }),
    sipReason: z.string(),
    accepted: z.boolean(),
  })
  .openapi('DeviceRestart');

const StatusSchema = z
  .object({
    deviceId: z.string(),
    mac: z.string(),
    status: z.enum(DEVICE_STATUSES),
    lastRegistration: RegistrationSchema.nullable(),
    dectStationId: z.string().nullable().optional().openapi({ description: 'DECT devices only (absent for the others)' }),
    lastRestart: z
      .object({ restartId: z.string(), contact: z.string(), requestedAt: z.string(), answeredAt: z.string().nullable(), sipStatus: z.number().int().nullable(), sipReason: z.string().nullable() })
      .nullable(),
  })
  .openapi('DeviceStatus');

const RegistrationReport = z
  .object({
    identifiant: z.string().trim().min(1).max(200).openapi({ description: 'the To user of the REGISTER', example: '1234567' }),
    contact: z.string().trim().min(1).max(1000).openapi({ description: 'the Contact URI, or * (with expires 0)', example: 'sip:1234567@192.0.2.10:5060' }),
    expires: z.number().int().min(0).max(MAX_EXPIRES_SECONDS).openapi({ description: 'seconds; 0 removes the contact', example: 3600 }),
    userAgent: z.string().max(500).nullish(),
    instance: z.string().max(500).nullish().openapi({ description: 'the Contact’s +sip.instance' }),
    sourceIp: z.string().max(64).nullish(),
    sourcePort: z.number().int().min(0).max(65_535).nullish(),
  })
  .strict()
  .openapi('RegistrationReport', {
    example: { identifiant: '1234567', contact: 'sip:1234567@192.0.2.10:5060', expires: 3600, userAgent: 'Yealink SIP-T46U 108.86.0.45', sourceIp: '192.0.2.10', sourcePort: 5060 },
  });

const RegistrationAnswer = z
  .object({ identifiant: z.string(), contact: z.string(), expiresAt: z.string(), mac: z.string().nullable(), devices: z.array(z.string()) })
  .openapi('RegistrationAnswer');

const DeviceImportResult = z
  .object({
    importId: z.string().nullable(),
    dryRun: z.boolean(),
    created: z.number().int(),
    updated: z.number().int(),
    unchanged: z.number().int(),
    macs: z.object({ created: z.array(z.string()), updated: z.array(z.string()), unchanged: z.array(z.string()) }),
  })
  .openapi('DeviceImportResult');

const csvOut = (description: string) => ({ 200: { description, content: { 'text/csv': { schema: z.string() } } } });
const Truthy = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1')
  .openapi({ type: 'string', enum: ['true', 'false'] });

function csvAnswer(c: Context<AppEnv>, body: string, filename: string, extra: Record<string, string> = {}) {
  return c.body(body, 200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${filename}"`, ...extra });
}

/** GET/POST /v1/device-types: a reseller's catalog of phone models. */
export function deviceTypesApp(deps: Deps, defineRoute: DefineRoute) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags,
      summary: 'The reseller’s device types (a tenant key sees its reseller’s)',
      access: { ...manage, reseller: true },
      responses: { 200: json('Catalog', z.object({ items: z.array(DeviceTypeSchema), nextCursor: z.null() })) },
    }),
    async (c) => {
      const p = c.get('principal');
      const resellerId = p.kind === 'reseller' ? p.resellerId : await resellerOfTenant(deps.db, p.tenantId);
      return c.json({ items: await listDeviceTypes(deps.db, resellerId), nextCursor: null }, 200);
    },
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags,
      summary: 'Add a device type to the reseller’s catalog',
      access: { scope: 'reseller' },
      request: { body: jsonRequest(DeviceTypeCreate) },
      responses: { 201: json('Created', DeviceTypeSchema), 409: { description: 'Code taken' } },
    }),
    async (c) => {
      const p = c.get('principal');
      if (p.kind !== 'reseller') throw new Error('unreachable: reseller scope');
      return c.json(await createDeviceType(deps.db, p.resellerId, c.req.valid('json'), actorOf(p)), 201);
    },
  );
  return app;
}

/** /v1/sites: the tenant's sites and the device types each approves. */
export function sitesApp(deps: Deps, defineRoute: DefineRoute) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags,
      summary: 'The tenant’s sites, with the device types each approves',
      access: manage,
      responses: { 200: json('Sites by name', z.object({ items: z.array(SiteSchema), nextCursor: z.null() })) },
    }),
    async (c) => c.json({ items: await listSites(deps.db, tenantOf(c.get('principal'))), nextCursor: null }, 200),
  );
  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags,
      summary: 'Add a site',
      access: manage,
      request: { body: jsonRequest(SiteCreate) },
      responses: { 201: json('Created', SiteSchema), 409: { description: 'Name taken' } },
    }),
    async (c) => c.json(await createSite(deps.db, tenantOf(c.get('principal')), c.req.valid('json'), actorOf(c.get('principal'))), 201),
  );
  app.openapi(
    defineRoute({
      method: 'patch',
      path: '/{id}',
      tags,
      summary: 'Rename a site or replace its approved device types',
      access: manage,
      request: { params: IdParam, body: jsonRequest(SitePatch) },
      responses: {
        200: json('The site', SiteSchema),
        409: { description: 'Name taken, or a withdrawn type is still carried by a live device of the site' },
      },
    }),
    async (c) => c.json(await updateSite(deps.db, tenantOf(c.get('principal')), c.req.valid('param').id, c.req.valid('json'), actorOf(c.get('principal'))), 200),
  );
  return app;
}

/** /v1/devices: the inventory, registrations, restarts, CSV import and exports (issue 21). */
export function devicesApp(deps: Deps, defineRoute: DefineRoute, exports: ExportQueue) {
  const app = new OpenAPIHono<AppEnv>();
  const now = () => deps.clock?.() ?? new Date();
  const sip = deps.config.kamailioRpc ? new KamailioRpc(deps.config.kamailioRpc) : undefined;
  const spacing = new ExportSpacing({ intervalMs: deps.config.exportSpacingMs, now: () => now().getTime() });
  const shared = new SharedResults<string>(deps.config.exportShareMs, () => now().getTime());

  // ---- static paths first, so /{id} does not capture them ------------------

  openapiWithJsonBody(
    app,
    defineRoute({
      method: 'post',
      path: '/registrations',
      tags: ['pbx', ...tags],
      summary: 'The registrar reports a REGISTER (integrations/kamailio/forfait-devices.cfg)',
      description:
        'One contact of one address-of-record: kept until it expires, then the device is `aged` for 24 h, then `unregistered`. The device is the live one whose MAC is in the User-Agent or +sip.instance, else those with a line of the identifiant. expires 0 removes the contact; contact `*` with expires 0 removes every contact of the identifiant.',
      access: { scope: 'tenant', permission: 'pbx:authorize' },
      request: { body: jsonRequest(RegistrationReport) },
      responses: {
        200: json('Recorded', RegistrationAnswer),
      },
    }),
    async (c) => c.json(await recordRegistration(deps.db, tenantOf(c.get('principal')), c.req.valid('json'), now()), 200),
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/template.csv',
      tags,
      summary: 'The import template: the header, then as # comments how to fill it, the sites and the device types each approves',
      access: manage,
      responses: csvOut('CSV'),
    }),
    async (c) => csvAnswer(c, await deviceCsvTemplate(deps.db, tenantOf(c.get('principal'))), 'devices-template.csv') as never,
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/export.csv',
      tags,
      summary: 'The live devices as CSV (MAC, type, lines available, site, lines…): importing it again changes nothing',
      access: manage,
      request: { query: z.object({ site: z.string().max(200).optional() }) },
      responses: csvOut('CSV with a header, CRLF'),
    }),
    async (c) => csvAnswer(c, await exportDevicesCsv(deps.db, tenantOf(c.get('principal')), c.req.valid('query').site), 'devices.csv') as never,
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/import',
      tags,
      summary: 'Import a devices CSV: every line checked first; any error → 400 listing them all and nothing written',
      description:
        'Columns by header: mac, device_type, site (required), lines (`1:1234567 2:7654321`), dect_station_id, notes; lines_available is ignored; # lines are comments; `,` or `;`. A MAC of a live device of the tenant updates it, an unchanged line changes nothing, a new MAC adds a device.',
      access: manage,
      bodyLimit: deps.config.importBodyLimit,
      request: {
        query: z.object({ dryRun: Truthy }),
        body: { required: true, content: { 'text/csv': { schema: z.string().openapi({ example: 'mac,device_type,site,lines\n00:15:65:aa:bb:cc,yealink-t46u,Paris,1:1234567' }) } } },
      },
      responses: {
        200: json('Imported (or, with dryRun, what would be)', DeviceImportResult),
      },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      return c.json(await importDevicesCsv(deps.db, tenantId, await c.req.text(), { dryRun: c.req.valid('query').dryRun, now: now(), actor: actorOf(c.get('principal')) }), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/line-states.csv',
      tags,
      summary: 'The line-state report: one row per port of every live device, of a site or all sites (an export: seed 003 limits)',
      description:
        'Columns: site, mac, device_type, port, user, identifiant, status, last_seen (the tenant’s zone): a line’s own status and last registration, a free port’s the device’s; status= keeps the rows of that status. At most 3 exports run and 10 wait (then 429 with Retry-After; 408 after 30 s of waiting); an export asked while another of the same key runs starts 5 s after it (a third meanwhile: 429); the same report asked within a minute is produced once and served to every caller (X-Forfait-Export: shared).',
      access: manage,
      request: { query: z.object({ site: z.string().max(200).optional(), status: z.enum(DEVICE_STATUSES).optional() }) },
      responses: {
        ...csvOut('CSV with a header, CRLF'),
        408: { description: 'REQUEST_TIMEOUT: waited 30 s for an export slot' },
        429: { description: 'TOO_MANY_REQUESTS: 3 exports running and 10 waiting, or this key already waits its spacing (Retry-After)' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const tenantId = tenantOf(principal);
      const f = c.req.valid('query');
      const done = await spacing.start(principal.keyId);
      try {
        const key = JSON.stringify([tenantId, f.site ?? null, f.status ?? null]);
        const { value, shared: reused } = shared.get(key, () => exports.run(() => lineStatesCsv(deps.db, tenantId, f, now())));
        return csvAnswer(c, await value, 'line-states.csv', { 'x-forfait-export': reused ? 'shared' : 'produced' }) as never;
      } finally {
        done();
      }
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags,
      summary: 'The devices in MAC order, with status; q searches a part of the MAC, the type, or an identifiant on a line',
      access: manage,
      request: {
        query: ListQuery.extend({
          site: z.string().max(200).optional(),
          status: z.enum(DEVICE_STATUSES).optional(),
          q: z.string().max(200).optional(),
          retired: Truthy.openapi({ description: 'true: the retired devices (history) instead of the live ones' }),
        }),
      },
      responses: { 200: json('Devices', listOf(DeviceSchema)) },
    }),
    async (c) => c.json(await listDevices(deps.db, tenantOf(c.get('principal')), c.req.valid('query'), now()), 200),
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags,
      summary: 'Add a device (a type approved for its site; lines within its ports)',
      access: manage,
      request: { body: jsonRequest(DeviceCreate) },
      responses: {
        201: json('Created', DeviceSchema),
        409: { description: 'The MAC is a live device already' },
      },
    }),
    async (c) => {
      const b = c.req.valid('json');
      return c.json(await createDevice(deps.db, tenantOf(c.get('principal')), { ...b, lines: b.lines ?? [] }, now(), actorOf(c.get('principal'))), 201);
    },
  );

  // ---- one device -------------------------------------------------------------

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}',
      tags,
      summary: 'A device (live or retired)',
      access: manage,
      request: { params: IdParam },
      responses: { 200: json('Device', DeviceSchema) },
    }),
    async (c) => c.json(await getDevice(deps.db, tenantOf(c.get('principal')), c.req.valid('param').id, now()), 200),
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}/status',
      tags,
      summary: 'The device’s status (registered, aged, unregistered), last registration (user agent, IP), DECT station id, last restart',
      access: manage,
      request: { params: IdParam },
      responses: { 200: json('Status', StatusSchema) },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const d = await getDevice(deps.db, tenantId, c.req.valid('param').id, now());
      const [last] = await restartsOf(deps.db, tenantId, d.id, 1);
      return c.json(
        {
          deviceId: d.id,
          mac: d.mac,
          status: d.status,
          lastRegistration: d.lastRegistration,
          ...(d.deviceType.dect ? { dectStationId: d.dectStationId } : {}),
          lastRestart: last ?? null,
        },
        200,
      );
    },
  );

  app.openapi(
    defineRoute({
      method: 'patch',
      path: '/{id}',
      tags,
      summary: 'Change a live device’s type, site, lines, DECT station id or notes',
      access: manage,
      request: { params: IdParam, body: jsonRequest(DevicePatch) },
      responses: { 200: json('Device', DeviceSchema), 409: { description: 'Retired' } },
    }),
    async (c) => c.json(await updateDevice(deps.db, tenantOf(c.get('principal')), c.req.valid('param').id, c.req.valid('json'), now(), actorOf(c.get('principal'))), 200),
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/{id}/retire',
      tags,
      summary: 'Retire a device: kept with its lines as history, its MAC free for a new device',
      access: manage,
      request: { params: IdParam },
      responses: { 200: json('The retired device', DeviceSchema), 409: { description: 'Already retired' } },
    }),
    async (c) => c.json(await retireDevice(deps.db, tenantOf(c.get('principal')), c.req.valid('param').id, now(), actorOf(c.get('principal'))), 200),
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/{id}/restart',
      tags,
      summary: 'Restart the phone: SIP NOTIFY (Event: check-sync) to its registered contact through Kamailio; answers with the phone’s SIP answer',
      description: '202 once the phone answered (or 408 as sipStatus when it did not within the timeout); recorded, GET /{id}/status shows the last. 409 when the device is not registered or retired; 503 when Kamailio’s RPC is not configured or cannot be reached.',
      access: manage,
      request: { params: IdParam },
      responses: {
        202: json('Sent; the SIP answer', RestartSchema),
        409: { description: 'Not registered, or retired' },
        503: { description: 'Kamailio cannot be asked' },
      },
    }),
    async (c) => {
      const p = c.get('principal');
      const answer = await restartDevice(deps.db, sip, tenantOf(p), c.req.valid('param').id, { now, requestedBy: p.keyId, actor: actorOf(p) });
      return c.json(answer, 202);
    },
  );

  return app;
}
