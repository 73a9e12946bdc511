/**
 * The HTTP boundary's one check of text (engine/input.ts): every path and query
 * parameter, and every string (and key) of a JSON body, before validation, so
 * that no route — however its schema was written — lets a NUL byte or another
 * control character reach PostgreSQL. The refusal is the 400 envelope naming
 * each field at fault. Bodies that are files (CSV, NDJSON) are checked by their
 * readers, line by line; a route whose JSON body is a batch of records checked
 * one by one (CDRs) opts out of the body check (`records: true`).
 */
import { z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { CONTROL_CHARACTER_MESSAGE, hasControlCharacter } from '../engine/index.js';
import type { FieldError } from '../services/shared/errors.js';
import { isJsonMediaType, mediaTypeOf } from './contentType.js';
import { ApiError } from './errors.js';

const MAX_DETAILS = 20;
const SHOWN = 100;

/** The value as a detail can show it: control characters escaped, cut short. */
function shown(s: string): string {
  const escaped = JSON.stringify(s.length > SHOWN ? s.slice(0, SHOWN) + '…' : s);
  return escaped.slice(1, -1);
}

function walk(value: unknown, path: string[], out: FieldError[]): void {
  if (out.length >= MAX_DETAILS) return;
  if (typeof value === 'string') {
    if (hasControlCharacter(value)) out.push({ field: path.join('.') || '(body)', value: shown(value), message: CONTROL_CHARACTER_MESSAGE });
    return;
  }
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) walk(v, [...path, String(i)], out);
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (hasControlCharacter(k)) out.push({ field: [...path, k].join('.'), value: shown(k), message: `field names ${CONTROL_CHARACTER_MESSAGE}` });
      walk(v, [...path, k], out);
    }
  }
}

/** The fields of a request's parameters (and JSON body) that hold a control character. */
export function controlCharacterFields(params: Record<string, string>, query: Record<string, string[]>, body: unknown): FieldError[] {
  const out: FieldError[] = [];
  for (const [name, v] of Object.entries(params)) walk(v, [name], out);
  for (const [name, values] of Object.entries(query)) {
    if (hasControlCharacter(name)) out.push({ field: shown(name), value: shown(name), message: `parameter names ${CONTROL_CHARACTER_MESSAGE}` });
    for (const v of values) walk(v, [name], out);
  }
  if (body !== undefined) walk(body, [], out);
  return out.slice(0, MAX_DETAILS);
}

/** A request's JSON body as read once: its text and what it parses to. */
export interface JsonBody {
  text: string;
  value: unknown;
}

const jsonBodies = new WeakMap<Request, Promise<JsonBody>>();

/**
 * The request's body, read and parsed once for whoever looks at it (the
 * control-character check, then readJsonBody): Hono caches the text, not the
 * parse. Rejects as `c.req.json()` does, when the body cannot be read or is
 * not JSON.
 */
export function jsonBodyOf(c: Context): Promise<JsonBody> {
  const raw = c.req.raw;
  let body = jsonBodies.get(raw);
  if (body === undefined) {
    body = c.req.text().then((text) => ({ text, value: JSON.parse(text) as unknown }));
    jsonBodies.set(raw, body);
  }
  return body;
}

/**
 * Whether a JSON text may hold a control character in one of its strings:
 * JSON.parse refuses them raw inside a string, so one can only come from an
 * escape (a backslash) or be a raw DEL. A text with neither needs no walk.
 */
function mayHoldControlCharacter(json: string): boolean {
  return json.includes('\\') || hasControlCharacter(json);
}

/** Refuses (400) a request whose parameters or JSON body hold a control character. */
export function refuseControlCharacters(options: { records?: boolean } = {}): MiddlewareHandler {
  return async (c, next) => {
    let body: unknown;
    if (!options.records && c.req.method !== 'GET' && c.req.method !== 'HEAD' && isJsonMediaType(mediaTypeOf(c.req.header('content-type')))) {
      // bad JSON is for the body reader to report
      const read = await jsonBodyOf(c).catch(() => undefined);
      if (read !== undefined && mayHoldControlCharacter(read.text)) body = read.value;
    }
    const query = c.req.url.includes('?') ? c.req.queries() : {};
    const fields = controlCharacterFields(c.req.param() as Record<string, string>, query, body);
    if (fields.length > 0) throw new ApiError('VALIDATION_FAILED', 'control characters are not accepted', fields);
    return next();
  };
}

const MONEY = /^-?(?:0|[1-9]\d{0,14})(?:\.\d{1,4})?$/;
/** "20,00": what a French keyboard types; said as such rather than as a bad decimal. */
const noDecimalComma = (s: string) => !/^-?\d+,\d+$/.test(s.trim());
const DECIMAL_COMMA_ISSUE = { message: 'must use a dot as decimal separator', abort: true };
const MONEY_MESSAGE = 'a decimal string: optional -, digits without leading zeros, at most 4 decimals (e.g. "10", "-2.5", "0.0417")';

/**
 * Money in: only a decimal string of the documented form. A JSON number is
 * refused (1.5 may already be 1.4999… by the time it is read), and so are
 * spaces, leading zeros and exponents: what is stored is what was written.
 */
export const MoneyIn = z.string().refine(noDecimalComma, DECIMAL_COMMA_ISSUE).regex(MONEY, MONEY_MESSAGE).openapi({ type: 'string', example: '10.00' });

/** Money in that cannot be below zero (a fee, a threshold). */
export const MoneyInNonNegative = z
  .string()
  .refine(noDecimalComma, DECIMAL_COMMA_ISSUE)
  .regex(MONEY, MONEY_MESSAGE)
  .refine((s) => !s.startsWith('-'), 'must not be negative')
  .openapi({ type: 'string', example: '10.00' });
