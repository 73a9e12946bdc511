import type { Context } from 'hono';
import { isPostgresError } from '../db/errors.js';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import {
  BusyError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  UnavailableError,
  ValidationError,
  type FieldError,
} from '../services/shared/errors.js';

/** The closed set of error codes and the one place that maps them to HTTP. */
export const errorStatus = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  REQUEST_TIMEOUT: 408,
  CONFLICT: 409,
  LICENCE_LIMIT: 409,
  PRODUCT_TYPE_LOCKED: 409,
  IDEMPOTENCY_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_REQUESTS: 429,
  INTERNAL: 500,
  SERVICE_UNAVAILABLE: 503,
} as const satisfies Record<string, ContentfulStatusCode>;

export type ErrorCode = keyof typeof errorStatus;

export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: FieldError[]) {
  return { error: { code, message, ...(details?.length ? { details } : {}), requestId } };
}

/** A schema's refusal of a request: VALIDATION_FAILED, naming each field at fault. */
export function validationFailed(issues: readonly { path: readonly PropertyKey[]; message: string }[]): ApiError {
  const details = issues.map((i) => ({ field: i.path.map(String).join('.') || '(body)', message: i.message }));
  return new ApiError('VALIDATION_FAILED', 'invalid request', details);
}

/** Maps domain errors to the envelope; a 500 never shows internals. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ValidationError) return new ApiError('VALIDATION_FAILED', err.message, err.details);
  if (err instanceof NotFoundError) return new ApiError('NOT_FOUND', err.message);
  if (err instanceof ConflictError) return new ApiError(err.code, err.message, err.details);
  if (err instanceof ForbiddenError) return new ApiError('FORBIDDEN', err.message);
  if (err instanceof UnavailableError) return new ApiError('SERVICE_UNAVAILABLE', err.message, undefined, { 'Retry-After': '5' });
  if (err instanceof BusyError) {
    return new ApiError(
      err.code,
      err.message,
      undefined,
      err.retryAfterSeconds ? { 'Retry-After': String(err.retryAfterSeconds) } : undefined,
    );
  }
  const pg = postgresError(err);
  if (pg !== undefined) return pg;
  if (err instanceof HTTPException) {
    const s = err.status;
    if (s === 413) return new ApiError('PAYLOAD_TOO_LARGE', 'request body too large');
    if (s === 415) return new ApiError('UNSUPPORTED_MEDIA_TYPE', err.message || 'unsupported media type');
    if (s === 401) return new ApiError('UNAUTHORIZED', err.message || 'missing or invalid API key');
    if (s === 403) return new ApiError('FORBIDDEN', err.message || 'forbidden');
    if (s === 404) return new ApiError('NOT_FOUND', err.message || 'not found');
    if (s >= 400 && s < 500) return new ApiError('BAD_REQUEST', err.message || 'bad request');
  }
  return new ApiError('INTERNAL', 'internal error');
}

/** The error's answer, with the request's id in its body and its `X-Request-Id`. */
export function sendError(c: Context, err: ApiError) {
  const requestId = (c.get('requestId') as string | undefined) ?? '';
  if (requestId) c.header('x-request-id', requestId);
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) c.header(k, v);
  return c.json(errorBody(err.code, err.message, requestId, err.details), errorStatus[err.code]);
}

/** What of a PostgreSQL error may be shown: its SQLSTATE and the column, never the statement or the constraint. */

/**
 * A constraint PostgreSQL enforced that the boundary did not check first: the
 * client's input, so a 4xx, not a 500. Class 22 (data exception: a value out of
 * range, an invalid byte; not 22P04, a COPY this server wrote wrong) and 23502/23514 (null, check) are values the request
 * should not have sent: 400. 23505/23503/23P01 (unique, foreign key, exclusion)
 * are state the request collides with: 409. Anything else stays a 500.
 */
function postgresError(err: unknown): ApiError | undefined {
  if (!isPostgresError(err)) return undefined;
  const field = err.column_name ? [{ field: toCamel(err.column_name), message: 'value not accepted' }] : undefined;
  // 22P04 (bad COPY file format) is this server writing COPY text wrong: a 500
  if ((err.code.startsWith('22') && err.code !== '22P04') || err.code === '23502' || err.code === '23514') {
    return new ApiError('VALIDATION_FAILED', 'a value is out of range or not accepted', field);
  }
  if (err.code === '23505' || err.code === '23503' || err.code === '23P01' || err.code === '23001') {
    return new ApiError('CONFLICT', 'the request conflicts with existing data');
  }
  return undefined;
}

const toCamel = (column: string) => column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
