import type { Context } from 'hono';
import { errorCode, isPostgresError } from '../db/errors.js';
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
import { isFenced } from '../services/cluster/fence.js';

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
  ISSUER_NOT_CONFIGURED: 409,
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

/** What a schema says of a value it refuses (zod's issue, the fields this module reads). */
export interface SchemaIssue {
  code: string;
  path: readonly PropertyKey[];
  message: string;
  expected?: string;
  values?: readonly unknown[];
  keys?: readonly string[];
  origin?: string;
  format?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
}

/**
 * A schema's refusal of a request: VALIDATION_FAILED, naming each field at
 * fault, what was expected and what was given, in words — never the
 * validator's own text ("expected nonoptional"). `input` is what the schema
 * was given (the JSON body, the query), to show the value.
 */
export function validationFailed(issues: readonly SchemaIssue[], input?: unknown): ApiError {
  const details = issues.flatMap((i) => issueDetails(i, input));
  return new ApiError('VALIDATION_FAILED', `invalid request: ${details.map((d) => d.message).join('; ')}`.slice(0, 500), details);
}

const TYPE_WORDS: Record<string, string> = {
  string: 'text (a JSON string)',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  bigint: 'a whole number',
  date: 'a date',
};

const FORMAT_WORDS: Record<string, string> = {
  datetime: 'an ISO 8601 date-time with its offset (2026-11-03T10:15:00+01:00)',
  date: 'a date (YYYY-MM-DD)',
  uuid: 'a UUID',
  email: 'an email address',
  url: 'a URL',
};

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** A value as the message shows it. */
function shownValue(v: unknown): string {
  if (typeof v === 'string') return `\`${v.length > 80 ? v.slice(0, 80) + '…' : v}\``;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `\`${String(v)}\``;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : String(v);
}

function issueDetails(i: SchemaIssue, input: unknown): FieldError[] {
  const field = i.path.map(String).join('.') || '(body)';
  const name = `\`${field}\``;
  const given = valueAt(input, i.path);
  const value = typeof given === 'string' || typeof given === 'number' || typeof given === 'boolean' ? { value: String(given) } : {};
  const got = given === undefined ? '' : `: got ${shownValue(given)}`;
  const detail = (message: string): FieldError[] => [{ field, ...value, message }];
  const bound = (n: number | bigint | undefined) => String(n);
  switch (i.code) {
    case 'invalid_type':
      if (given === undefined || i.expected === 'nonoptional') return detail(`${name} is required`);
      return detail(`${name} must be ${TYPE_WORDS[i.expected ?? ''] ?? i.expected}${got}`);
    case 'invalid_value':
      return detail(`${name} must be one of ${(i.values ?? []).map((x) => String(x)).join(', ')}${got}`);
    case 'invalid_format': {
      const words = FORMAT_WORDS[i.format ?? ''];
      // a schema's own words ("exactly 7 digits") say it best; zod's defaults ("Invalid string") do not
      if (/^Invalid\b/.test(i.message) || words !== undefined) return detail(`${name} must be ${words ?? `in the ${i.format} format`}${got}`);
      return detail(`${name} must be ${i.message.replace(/^must (be )?/, '')}${got}`);
    }
    case 'too_small':
      if (i.origin === 'string') return detail(`${name} must be at least ${bound(i.minimum)} character(s) long${got}`);
      if (i.origin === 'array') return detail(`${name} must hold at least ${bound(i.minimum)} item(s)`);
      return detail(`${name} must be at least ${bound(i.minimum)}${got}`);
    case 'too_big':
      if (i.origin === 'string') return detail(`${name} must be at most ${bound(i.maximum)} character(s) long${got}`);
      if (i.origin === 'array') return detail(`${name} must hold at most ${bound(i.maximum)} item(s)`);
      return detail(`${name} must be at most ${bound(i.maximum)}${got}`);
    case 'unrecognized_keys':
      return (i.keys ?? []).map((k) => ({ field: [...i.path.map(String), k].join('.'), message: `\`${k}\` is not a field of this request` }));
    default:
      // refinements: their message is written for people; it gets the field and the value
      if (/^must\b/.test(i.message)) return detail(`${name} ${i.message}${got}`);
      return detail(/^Invalid\b/.test(i.message) ? `${name} is not accepted${got}` : `${name}: ${i.message}`);
  }
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
  if (isFenced(err)) {
    return new ApiError('SERVICE_UNAVAILABLE', 'this tenant’s accounts moved to another Forfait server: try again', undefined, { 'Retry-After': '1' });
  }
  if (databaseUnreachable(err)) {
    return new ApiError('SERVICE_UNAVAILABLE', 'the database cannot be reached right now: try again', undefined, { 'Retry-After': '1' });
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

/**
 * The database is away (restarting, a switchover under way, the network):
 * postgres.js's connection errors, the sockets', and PostgreSQL's own
 * "shutting down" (57P01-57P03), connection (08xxx) and "read-only" (25006: a
 * standby, just after a switchover) errors. Whatever was asked was not done:
 * 503 with Retry-After, not a 500.
 */
const UNREACHABLE = new Set(['CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECTION_ENDED', 'CONNECT_TIMEOUT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', '25006']);
function databaseUnreachable(err: unknown): boolean {
  const code = errorCode(err) ?? '';
  return UNREACHABLE.has(code) || code.startsWith('57P') || code.startsWith('08');
}

const toCamel = (column: string) => column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
