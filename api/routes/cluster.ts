import { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Membership } from '../../services/cluster/membership.js';
import type { AppEnv } from '../context.js';
import { ApiError } from '../errors.js';
import type { DefineRoute } from '../route.js';
import { json } from '../route.js';

const ServerSchema = z
  .object({
    id: z.string().uuid(),
    address: z.string().openapi({ description: 'where the other servers forward this one’s tenants’ requests' }),
    startedAt: z.string().datetime({ offset: true }),
    heartbeatAt: z.string().datetime({ offset: true }),
    alive: z.boolean().openapi({ description: 'its PostgreSQL lock session is connected and it beat recently' }),
    self: z.boolean().openapi({ description: 'the server that answered this request' }),
    tenants: z
      .array(z.object({ id: z.string().uuid(), name: z.string(), since: z.string().datetime({ offset: true }).nullable() }))
      .openapi({ description: 'the reseller’s tenants whose account book this server holds now' }),
  })
  .openapi('ClusterServer');

/** GET /v1/cluster: the servers and which of the reseller's tenants each owns (docs/operations.md). */
export function clusterApp(defineRoute: DefineRoute, membership: Membership) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(
    defineRoute({
      method: 'get',
      path: '/',
      tags: ['operations'],
      summary: 'The Forfait servers on this database and the tenants each one owns',
      access: { scope: 'reseller' },
      responses: {
        200: json('The servers', z.object({ servers: z.array(ServerSchema) })),
      },
    }),
    async (c) => {
      const p = c.get('principal');
      if (p.kind !== 'reseller') throw new ApiError('FORBIDDEN', 'reseller key required');
      const servers = await membership.view(p.resellerId);
      const iso = (d: Date) => d.toISOString();
      return c.json(
        {
          servers: servers.map((s) => ({
            ...s,
            startedAt: iso(s.startedAt),
            heartbeatAt: iso(s.heartbeatAt),
            tenants: s.tenants.map((t) => ({ ...t, since: t.since ? iso(t.since) : null })),
          })),
        },
        200,
      );
    },
  );
  return app;
}
