import { OpenAPIHono, z } from '@hono/zod-openapi';
import { archivedMonth, listArchives } from '../../services/archives/list.js';
import { tenantOf } from '../auth.js';
import type { AppEnv, Deps } from '../context.js';
import { listOf, type DefineRoute, json } from '../route.js';

const ArchiveSchema = z
  .object({
    month: z.string().openapi({ example: '2025-06' }),
    part: z.number().int().openapi({ description: '1, then 2… for late CDRs of the month archived after the first file' }),
    file: z.string().openapi({ example: '4f1c…/2025-06.csv.gz', description: 'path under the archive folder; its manifest is <tenant>/<month>.sha256' }),
    sha256: z.string(),
    rows: z.number().int(),
    bytes: z.number().int(),
    verifiedAt: z.string(),
    restoredAt: z.string().nullable(),
  })
  .openapi('CdrArchive');

const read = { scope: 'tenant', permission: 'cdrs:read' } as const;

/** GET /v1/archives: the tenant's archived CDR months (issue 22). */
export function archivesApp(deps: Deps, defineRoute: DefineRoute) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['cdrs'],
      summary: 'The tenant’s CDR archives: one gzipped CSV per UTC month past its retention (cdrRetentionMonths), with a SHA-256 manifest',
      access: read,
      responses: { 200: json('Archive files, newest month first', listOf(ArchiveSchema)) },
    }),
    async (c) => c.json({ items: await listArchives(deps.db, tenantOf(c.get('principal'))), nextCursor: null }, 200),
  );
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/{month}',
      tags: ['cdrs'],
      summary: 'The archive files of one month of the tenant',
      access: read,
      request: { params: z.object({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/).openapi({ param: { name: 'month', in: 'path' }, example: '2025-06' }) }) },
      responses: { 200: json('Its parts', z.object({ items: z.array(ArchiveSchema) })), 404: { description: 'NOT_FOUND: no archive of that month' } },
    }),
    async (c) => c.json({ items: await archivedMonth(deps.db, tenantOf(c.get('principal')), c.req.valid('param').month) }, 200),
  );
  return app;
}
