import pino from 'pino';
import { inject } from 'vitest';
import { createApp, type App } from '../../api/app.js';
import { defaultConfig, type Config } from '../../api/context.js';
import { connect, type DbHandle } from '../../db/connection.js';
import { testIssuer } from './issuer.js';

let shared: DbHandle | undefined;

/** The run's database (one pool per test file / worker). */
export function testDb(): DbHandle {
  shared ??= connect(inject('databaseUrl'), { max: 10 });
  return shared;
}

export function testApp(config: Partial<Config> = {}): App {
  const { db, sql } = testDb();
  return createApp({ db, sql, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), config: { ...defaultConfig, issuer: testIssuer, ...config } });
}

export interface Call {
  key?: string;
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

/** An in-process HTTP request through the whole middleware chain. */
export async function call(app: App, method: string, path: string, c: Call = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(c.headers ?? {}) };
  if (c.key) headers.authorization = `Bearer ${c.key}`;
  let body: string | undefined = c.body;
  if (c.json !== undefined) {
    body = JSON.stringify(c.json);
    headers['content-type'] ??= 'application/json';
  }
  const res = await app.app.request(path, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
