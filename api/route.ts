import { createRoute, z, type OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ApiError } from './errors.js';
import { refuseControlCharacters } from './input.js';
import { authorize, type Access, type KeyCache } from './auth.js';
import type { AppEnv, Deps } from './context.js';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'NOT_FOUND' }),
      message: z.string(),
      details: z
        .array(
          z.object({
            field: z.string().optional(),
            line: z.number().int().optional(),
            value: z.string().optional(),
            message: z.string(),
          }),
        )
        .optional(),
      requestId: z.string(),
    }),
  })
  .openapi('Error');

const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorSchema } },
});

const standardErrors = {
  400: errorResponse('Malformed request or invalid values; details name each field or line'),
  401: errorResponse('Missing, invalid or revoked API key'),
  403: errorResponse('The key lacks the permission'),
  404: errorResponse('Not found, or another tenant’s'),
  413: errorResponse('Request body too large'),
  500: errorResponse('Internal error (no internals shown)'),
};

/**
 * Refuses bodies over maxSize with 413. A declared Content-Length is checked
 * from the header alone; hono's bodyLimit, which counts a streamed body, runs
 * only for chunked requests: reaching for the body at all makes the Node
 * adapter build a full web Request, which costs more than the PBX hot path.
 */
function limitBody(maxSize: number): MiddlewareHandler {
  const streamed = bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError('PAYLOAD_TOO_LARGE', `request body over ${maxSize} bytes`);
    },
  });
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > maxSize) throw new ApiError('PAYLOAD_TOO_LARGE', `request body over ${maxSize} bytes`);
      return next();
    }
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    return streamed(c, next);
  };
}

type Def<R extends Omit<RouteConfig, 'middleware'>> = R & {
  access: Access;
  bodyLimit?: number;
  /** The JSON body is a batch of records the verb checks one by one (control characters reject a record, not the request). */
  records?: boolean;
};

/**
 * createRoute plus the project's conventions: every route declares who may call
 * it, gets the auth and body-limit middleware, the standard error responses
 * and its access published as x-forfait-access.
 */
export function routeFactory(deps: Deps, keys: KeyCache) {
  return function defineRoute<R extends Omit<RouteConfig, 'middleware'>>(def: Def<R>) {
    const { access, bodyLimit: limit, records, ...route } = def;
    const maxSize = limit ?? deps.config.bodyLimit;
    const secured = access.scope !== 'public';
    return createRoute({
      ...route,
      ...(secured ? { security: [{ bearer: [] }] } : {}),
      'x-forfait-access': access,
      responses: { ...(secured ? standardErrors : { 500: standardErrors[500] }), ...route.responses },
      middleware: [authorize(keys, access), limitBody(maxSize), refuseControlCharacters({ records })],
    } as unknown as R);
  };
}

export type DefineRoute = ReturnType<typeof routeFactory>;

// ---- shared schemas ------------------------------------------------------

export const Uuid = z.string().uuid();
export const IdParam = z.object({ id: z.string().openapi({ param: { name: 'id', in: 'path' } }) });

export const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100).openapi({ example: 100 }),
  cursor: z.string().max(200).optional(),
});

export { MoneyIn, MoneyInNonNegative } from './input.js';

export function page<T>(items: T[], nextCursor: string | null) {
  return { items, nextCursor };
}

export function listOf<T extends z.ZodTypeAny>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

const pdfContent = { 'application/pdf': { schema: z.string().openapi({ format: 'binary' }) } };

/**
 * GET `/{id}` as JSON and GET `/{id}.pdf` as a PDF of the same object, read once
 * by one handler: hono matches the two paths apart (the `.pdf` one's parameter
 * is named `id.pdf`), and both are published in the OpenAPI document.
 */
export function jsonAndPdfRoutes<T>(
  app: OpenAPIHono<AppEnv>,
  defineRoute: DefineRoute,
  o: {
    tags: string[];
    access: Access;
    json: { summary: string; schema: z.ZodTypeAny; description: string };
    pdf: { summary: string; description: string };
    read: (c: Context<AppEnv>, id: string) => Promise<T>;
    view: (item: T) => unknown;
    render: (item: T, c: Context<AppEnv>) => Promise<{ file: Uint8Array; filename: string }>;
  },
): void {
  const handler = async (c: Context<AppEnv>) => {
    const raw = c.req.param('id') ?? c.req.param('id.pdf') ?? '';
    const pdf = raw.endsWith('.pdf');
    const item = await o.read(c, pdf ? raw.slice(0, -4) : raw);
    if (!pdf) return c.json(o.view(item) as object, 200);
    const { file, filename } = await o.render(item, c);
    return c.body(new Uint8Array(file), 200, {
      'content-type': 'application/pdf',
      'content-disposition': `inline; filename="${filename}"`,
    });
  };
  const route = (path: string, summary: string, response: { description: string; content: object }) =>
    defineRoute({
      method: 'get',
      path,
      tags: o.tags,
      summary,
      access: o.access,
      request: { params: IdParam },
      responses: { 200: response },
    });
  app.openapi(route('/{id}', o.json.summary, { description: o.json.description, content: { 'application/json': { schema: o.json.schema } } }), handler as never);
  app.openapi(route('/{id}.pdf', o.pdf.summary, { description: o.pdf.description, content: pdfContent }), handler as never);
}
