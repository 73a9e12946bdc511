import { createRoute, z, type OpenAPIHono, type RouteConfig, type RouteHandler } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { isJsonMediaType, mediaTypeOf } from './contentType.js';
import { ApiError, validationFailed } from './errors.js';
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

/** A JSON response of a route, as the OpenAPI document states it. */
export const json = <S extends z.ZodType>(description: string, schema: S) => ({
  description,
  content: { 'application/json': { schema } },
});

/** A route's required JSON request body, as the OpenAPI document states it. */
export const jsonRequest = <S extends z.ZodType>(schema: S) => ({
  required: true as const,
  content: { 'application/json': { schema } },
});

const errorResponse = (description: string) => json(description, ErrorSchema);

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
 * adapter build a full web Request, which costs more than the PBX lane's decision.
 */
export function limitBody(maxSize: number): MiddlewareHandler {
  const streamed = bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError('PAYLOAD_TOO_LARGE', `request body over ${maxSize} bytes`);
    },
  });
  return (c, next) => {
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

/**
 * The request's JSON body as the schema reads it: 415 unless its first
 * Content-Type is JSON (see mediaTypeOf: PBX clients send two), 400 when it is
 * not JSON, VALIDATION_FAILED naming each field the schema refuses.
 */
export async function readJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  if (!isJsonMediaType(mediaTypeOf(c.req.header('content-type')))) {
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON: send Content-Type: application/json');
  }
  // Hono's cached parse: the control-character check before this already read it
  const value: unknown = await c.req.json().catch(() => {
    throw new ApiError('BAD_REQUEST', 'Malformed JSON in request body');
  });
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationFailed(parsed.error.issues);
  return parsed.data;
}

/** readJsonBody as middleware: the body for `c.req.valid('json')`. */
export function jsonBody(schema: z.ZodType): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.req.addValidatedData('json', (await readJsonBody(c, schema)) as object);
    await next();
  };
}

/** The zod schema of a route's `application/json` request body. */
export function jsonBodySchema(route: RouteConfig): z.ZodType {
  const media = route.request?.body?.content['application/json'];
  const schema = media && 'schema' in media ? media.schema : undefined;
  if (!(schema instanceof z.ZodType)) throw new Error(`${route.method} ${route.path}: no application/json body with a zod schema`);
  return schema;
}

/**
 * `app.openapi(route, handler)` for a route whose JSON body `jsonBody` reads,
 * not zod-openapi's validators (they refuse a request with two Content-Types,
 * see mediaTypeOf): the routes PBXs call. The route is documented with its
 * body as usual, and its handler reads the body with `c.req.valid('json')`.
 */
export function openapiWithJsonBody<R extends RouteConfig>(app: OpenAPIHono<AppEnv>, route: R, handler: RouteHandler<R, AppEnv>): void {
  const schema = jsonBodySchema(route);
  const { middleware, hide: _hide, ...documented } = route;
  app.openAPIRegistry.registerPath(documented);
  const { body: _body, ...request } = route.request ?? {};
  const served = { ...documented, request, hide: true, middleware: [...[middleware ?? []].flat(), jsonBody(schema)] };
  app.openapi(served as unknown as R, handler);
}

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
