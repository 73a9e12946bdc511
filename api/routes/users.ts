import { OpenAPIHono, z } from '@hono/zod-openapi';
import { csvEncodings } from '../../services/shared/csvText.js';
import { validate as isUuid } from 'uuid';
import { stream } from 'hono/streaming';
import { renderUserSheet } from '../../reports/renderPool.js';
import { listLedger, postLedgerEntry } from '../../services/ledger/ledger.js';
import { exportUsersCsv } from '../../services/users/export.js';
import { importModes, importUsers } from '../../services/users/import.js';
import { listImports, restoreImport } from '../../services/users/restore.js';
import { callHistoryOwner, createUser, deleteUser, getUser, listUsers, updateUser } from '../../services/users/directory.js';
import { accountStatuses, identifiantRule, matriculeRule, maxForfaitMinutes, maxNameLength } from '../../services/users/fields.js';
import type { ExportQueue } from '../../services/exports/queue.js';
import { tenantOf } from '../auth.js';
import { actorOf } from '../../services/audit/audit.js';
import { CdrFilterQuery, cdrExportAnswer, csvExportResponses, exportTenant } from './cdrs.js';
import type { AppEnv, Deps } from '../context.js';
import { ApiError } from '../errors.js';
import { IdParam, jsonAndPdfRoutes, ListQuery, listOf, MoneyIn, Uuid, type DefineRoute, json, jsonRequest } from '../route.js';

const slot = z.union([z.string().max(40), z.null()]);

export const UserSchema = z
  .object({
    id: Uuid,
    tenantId: Uuid,
    fullName: z.string(),
    matricule: z.string().openapi({ example: '20260000000001' }),
    identifiant: z.string().openapi({ example: '1234567' }),
    generalState: z.string().nullable(),
    accountStatus: z.enum(accountStatuses),
    forfaitMinutes: z.number().int(),
    forfaitPeriod: z.string().nullable().openapi({ example: '2026-11' }),
    usedSeconds: z.number().int(),
    totalCallSeconds: z.number().int(),
    balance: z.string().openapi({ example: '10.0000' }),
    billingEnabled: z.boolean(),
    authorizedNumbers: z
      .array(z.string().nullable())
      .length(10)
      .openapi({ description: 'Slots 1 to 10, each null or a number in the tenant’s display format', example: ['+33612345678', null, null, null, null, null, null, null, null, null] }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('User');

const AuthorizedNumbersIn = z
  .union([z.array(slot).max(10), z.record(z.string(), slot)])
  .openapi({
    description:
      'Either an array of up to 10 slots (slot 1 first; null or "" = empty) or an object keyed "1"…"10". On PATCH an array replaces the 10 slots, an object changes only the slots it names. Numbers in any form of SPEC §3, parsed in the tenant’s country.',
    example: { '1': '06 12 34 56 78', '3': '+33 1 23 45 67 89' },
  });

const UserFields = {
  fullName: z.string().trim().min(1).max(maxNameLength),
  matricule: z.string().regex(matriculeRule.re, matriculeRule.message),
  identifiant: z.string().regex(identifiantRule.re, identifiantRule.message),
  generalState: z.string().trim().max(100).nullable(),
  accountStatus: z.enum(accountStatuses),
  forfaitMinutes: z.number().int().min(0).max(maxForfaitMinutes),
  billingEnabled: z.boolean(),
  authorizedNumbers: AuthorizedNumbersIn,
};

const UserCreate = z
  .object(UserFields)
  .partial()
  .required({ fullName: true, matricule: true, identifiant: true })
  .strict()
  .openapi('UserCreate', {
    description: 'A new user; forfaitMinutes defaults to the tenant’s defaultForfaitMinutes. The balance is not a field: use the ledger.',
    example: {
      fullName: 'Zoë Martin',
      matricule: '20260000000001',
      identifiant: '1234567',
      forfaitMinutes: 120,
      authorizedNumbers: { '1': '06 12 34 56 78', '3': '+33 1 23 45 67 89' },
    },
  });
const UserPatch = z
  .object(UserFields)
  .partial()
  .strict()
  .openapi('UserPatch', { example: { forfaitMinutes: 300, authorizedNumbers: { '2': '0692 36 09 58' } } });

export const LedgerEntrySchema = z
  .object({
    id: z.string(),
    userId: Uuid,
    kind: z.enum(['topup', 'adjustment', 'call', 'refund', 'rerate', 'release']),
    amount: z.string().openapi({ example: '10.0000' }),
    balanceAfter: z.string().openapi({ example: '10.0000' }),
    reason: z.string().nullable(),
    idempotencyKey: z.string().nullable(),
    cdrId: z.string().nullable(),
    createdBy: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('LedgerEntry');

const LedgerPost = z
  .object({
    kind: z.enum(['topup', 'adjustment', 'refund']),
    amount: MoneyIn,
    reason: z.string().trim().max(500).optional(),
    idempotencyKey: z.string().trim().min(1).max(200),
  })
  .strict()
  .openapi('LedgerPost', {
    example: { kind: 'topup', amount: '20.00', reason: 'Prepaid top-up, payment 2026-11-0042', idempotencyKey: 'topup-2026-11-0042' },
    description: 'topup and refund: amount > 0 (a refund credits the user); adjustment: any non-zero amount. The same idempotencyKey again answers the same entry.',
  });
const LedgerAnswer = z.object({ entry: LedgerEntrySchema, balance: z.string() }).openapi('LedgerAnswer');

const ImportAnswer = z
  .object({
    importId: z.string().nullable(),
    dryRun: z.boolean(),
    created: z.number().int(),
    updated: z.number().int(),
    deleted: z.number().int(),
    unchanged: z.number().int(),
    matricules: z
      .object({ created: z.array(z.string()), updated: z.array(z.string()), deleted: z.array(z.string()), unchanged: z.array(z.string()) })
      .optional()
      .openapi({ description: 'Dry runs only: the matricules of each group' }),
    encoding: z.enum(csvEncodings).openapi({ description: 'How the file was read: UTF-8 (with or without BOM), or converted from the encoding named' }),
    notes: z.array(z.string()).openapi({ description: 'What reading the file did: a conversion from Windows-1252, a BOM removed' }),
  })
  .openapi('UserImportResult');

const ImportSchema = z
  .object({
    id: Uuid,
    mode: z.enum(importModes),
    created: z.number().int(),
    updated: z.number().int(),
    deleted: z.number().int(),
    unchanged: z.number().int(),
    createdBy: z.string().nullable(),
    createdAt: z.string(),
    restoredAt: z.string().nullable(),
  })
  .openapi('UserImport');

const RestoreAnswer = z
  .object({ importId: Uuid, restoredAt: z.string(), deleted: z.number().int(), restored: z.number().int(), recreated: z.number().int() })
  .openapi('UserImportRestore');

const ImportQuery = z.object({
  mode: z.enum(importModes).openapi({
    description: 'append: only new matricules; upsert: create or update; sync: upsert and delete users absent from the file',
    example: 'upsert',
  }),
  dryRun: z
    .enum(['true', 'false', '1', '0'])
    .optional()
    .transform((v) => v === 'true' || v === '1')
    .openapi({ type: 'string', enum: ['true', 'false'] }),
});

const ImportIdParam = z.object({ importId: z.string().openapi({ param: { name: 'importId', in: 'path' } }) });
const csvBody = (description: string) => ({
  required: true,
  description,
  content: { 'text/csv': { schema: z.string().openapi({ example: 'Zoë Martin,20260000000001,1234567,0612345678,,,,,,,,,' }) } },
});
const csvOut = { 'text/csv': { schema: z.string() } };

/** The ledger's verbs send the id to the database as given: one that is not a uuid is a 404 here (the directory's verbs check it themselves). */
function ledgerUserId(id: string): string {
  if (!isUuid(id)) throw new ApiError('NOT_FOUND', 'user not found');
  return id;
}

export function usersApp(deps: Deps, defineRoute: DefineRoute, exports: ExportQueue) {
  const app = new OpenAPIHono<AppEnv>();
  const manage = { scope: 'tenant', permission: 'directory:manage' } as const;
  const importing = { scope: 'tenant', permission: 'directory:import' } as const;

  // ---- static paths first, so /{id} does not capture them ------------------

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['users'],
      summary: 'List users; q searches a part of the name, or the start of a matricule or identifiant',
      access: manage,
      request: { query: ListQuery.extend({ q: z.string().max(200).optional() }) },
      responses: { 200: json('Users in matricule order', listOf(UserSchema)) },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const { limit, cursor, q } = c.req.valid('query');
      return c.json(await listUsers(deps.db, tenantId, { q, limit, cursor }), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/',
      tags: ['users'],
      summary: 'Create a user',
      access: manage,
      request: { body: jsonRequest(UserCreate) },
      responses: {
        201: json('Created', UserSchema),
        409: { description: 'CONFLICT (matricule or identifiant taken) or LICENCE_LIMIT' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      return c.json(await createUser(deps.db, tenantOf(principal), c.req.valid('json'), actorOf(principal)), 201);
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/export',
      tags: ['users'],
      summary: 'The directory as a users CSV (SPEC §6); importing it with mode=sync changes nothing',
      access: manage,
      request: {
        query: z.object({
          format: z
            .enum(['full', 'portal'])
            .default('full')
            .openapi({ description: 'full: 16 fields (with forfait minutes, account status, billing enabled); portal: the portal’s 13' }),
        }),
      },
      responses: { 200: { description: 'CSV, no header, CRLF', content: csvOut } },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const lines = exportUsersCsv(deps.db, tenantId, c.req.valid('query').format);
      const first = await lines.next(); // errors before the first byte still get the JSON envelope
      c.header('content-type', 'text/csv; charset=utf-8');
      c.header('content-disposition', 'attachment; filename="users.csv"');
      return stream(c, async (s) => {
        if (!first.done) await s.write(first.value);
        for await (const chunk of lines) await s.write(chunk);
      }) as unknown as ReturnType<typeof c.body>;
    },
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/import',
      tags: ['users'],
      summary: 'Import a users CSV (SPEC §6): every line is checked first; any error → 400 listing them all and nothing written',
      access: importing,
      bodyLimit: deps.config.importBodyLimit,
      request: { query: ImportQuery, body: csvBody('13 fields per line, no header, optional 14 forfait minutes, 15 account status, 16 billing enabled (1/0); `,` or `;`') },
      responses: {
        200: json('Imported (or, with dryRun, the plan)', ImportAnswer),
        409: { description: 'LICENCE_LIMIT: the directory would exceed the product type’s users' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const tenantId = tenantOf(principal);
      const { mode, dryRun } = c.req.valid('query');
      const file = new Uint8Array(await c.req.arrayBuffer());
      const result = await importUsers(deps.db, tenantId, file, { mode, dryRun, createdBy: principal.keyId, actor: actorOf(principal) });
      return c.json(result, 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/imports',
      tags: ['users'],
      summary: 'The tenant’s user imports, newest first (to find the one to restore)',
      access: importing,
      request: { query: ListQuery },
      responses: { 200: json('Imports', listOf(ImportSchema)) },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const { limit, cursor } = c.req.valid('query');
      return c.json(await listImports(deps.db, tenantId, limit, cursor), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/imports/{importId}/restore',
      tags: ['users'],
      summary: 'Put the directory back as it was before that import (newest import first; balances never change)',
      access: importing,
      request: { params: ImportIdParam },
      responses: {
        200: json('Restored', RestoreAnswer),
        409: { description: 'Already restored, a later import is still in place, or the directory changed so it cannot be put back' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const tenantId = tenantOf(principal);
      return c.json(await restoreImport(deps.db, tenantId, c.req.valid('param').importId, principal.keyId, actorOf(principal)), 200);
    },
  );

  // ---- one user ---------------------------------------------------------------

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}/calls.csv',
      tags: ['users'],
      summary: 'The user’s call history as CSV (the CDR export restricted to this user; a deleted user’s calls stay readable)',
      description: 'Same columns and filters as GET /v1/cdrs/export.csv; an export: 429 with Retry-After when 3 run and 10 wait, 408 after 30 s of waiting.',
      access: { scope: 'tenant', permission: 'cdrs:read' },
      request: { params: IdParam, query: CdrFilterQuery.omit({ userId: true }) },
      responses: csvExportResponses,
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const id = c.req.valid('param').id;
      const owner = await callHistoryOwner(deps.db, tenantId, id);
      const tenant = await exportTenant(deps, tenantId);
      return cdrExportAnswer(c, deps, exports, tenant, { ...c.req.valid('query'), userId: id }, `calls-${owner.identifiant ?? id}.csv`) as never;
    },
  );

  // GET /{id} also serves /{id}.pdf: Hono reads "{id}.pdf" as one parameter
  // named "id.pdf", so the sheet route below is registered for the OpenAPI
  // document and routing, and both dispatch on the suffix here.
  jsonAndPdfRoutes(app, defineRoute, {
    tags: ['users'],
    access: manage,
    json: { summary: 'Read a user (with balance, usedSeconds, totalCallSeconds)', description: 'User', schema: UserSchema },
    pdf: { summary: 'The user’s one-page sheet (the portal’s "Imprimer")', description: 'PDF, one A4 page' },
    read: (c, id) => getUser(deps.db, tenantOf(c.get('principal')), id),
    view: ({ user }) => user,
    render: async ({ user, tenant }) => ({ file: await renderUserSheet(user, tenant), filename: `user-${user.matricule}.pdf` }),
  });

  app.openapi(
    defineRoute({
      method: 'patch',
      path: '/{id}',
      tags: ['users'],
      summary: 'Change a user (never its balance: use the ledger)',
      access: manage,
      request: { params: IdParam, body: jsonRequest(UserPatch) },
      responses: {
        200: json('User', UserSchema),
        409: { description: 'CONFLICT: matricule or identifiant taken' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      return c.json(await updateUser(deps.db, tenantOf(principal), c.req.valid('param').id, c.req.valid('json'), actorOf(principal)), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['users'],
      summary: 'Remove a user from the directory; its ledger entries and CDRs stay',
      access: manage,
      request: { params: IdParam },
      responses: { 200: json('The removed user', UserSchema) },
    }),
    async (c) => {
      const principal = c.get('principal');
      return c.json(await deleteUser(deps.db, tenantOf(principal), c.req.valid('param').id, actorOf(principal)), 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'post',
      path: '/{id}/ledger',
      tags: ['users'],
      summary: 'Top up, adjust or refund a balance, idempotently',
      access: { scope: 'tenant', permission: 'balances:manage' },
      request: { params: IdParam, body: jsonRequest(LedgerPost) },
      responses: {
        201: json('Entry appended', LedgerAnswer),
        200: json('That idempotency key was already used with this kind and amount: the same entry', LedgerAnswer),
        409: { description: 'IDEMPOTENCY_CONFLICT: the key was used with another kind or amount' },
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const tenantId = tenantOf(principal);
      const id = ledgerUserId(c.req.valid('param').id);
      const body = c.req.valid('json');
      const r = await postLedgerEntry(deps.db, {
        tenantId,
        userId: id,
        kind: body.kind,
        amount: body.amount,
        reason: body.reason ?? null,
        idempotencyKey: body.idempotencyKey,
          createdBy: principal.keyId,
        },
        actorOf(principal),
      );
      return c.json({ entry: r.entry, balance: r.balance }, r.created ? 201 : 200);
    },
  );

  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{id}/ledger',
      tags: ['users'],
      summary: 'A user’s ledger entries, newest first (a deleted user’s history stays readable)',
      access: { scope: 'tenant', permission: 'balances:manage', anyOf: ['invoices:read'] },
      request: { params: IdParam, query: ListQuery },
      responses: { 200: json('Entries', listOf(LedgerEntrySchema)) },
    }),
    async (c) => {
      const tenantId = tenantOf(c.get('principal'));
      const id = ledgerUserId(c.req.valid('param').id);
      const { limit, cursor } = c.req.valid('query');
      return c.json(await listLedger(deps.db, tenantId, id, limit, cursor), 200);
    },
  );

  return app;
}
