import { serve } from '@hono/node-server';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, inject } from 'vitest';
import { createApp, type App } from '../../api/app.js';
import { defaultConfig, type Config } from '../../api/context.js';
import { connect, type DbHandle } from '../../db/connection.js';
import { defaultRateLimits, type RateLimits } from '../../api/limits.js';
import { testIssuer } from './issuer.js';

let shared: DbHandle | undefined;

/** The run's database (one pool per test file / worker). */
export function testDb(): DbHandle {
  shared ??= connect(inject('databaseUrl'), { max: 10 });
  return shared;
}

/**
 * Tests send their requests in-process, all from one "address", faster than
 * any client: the rate limits are off unless a test sets them
 * (test/hardening/rateLimits.test.ts).
 */
export const unlimited: RateLimits = { ...defaultRateLimits, failuresPerAddress: 1e9, failuresPerKey: 1e9, keyRequests: 0 };

export function testApp(config: Partial<Config> = {}): App {
  const { db, sql } = testDb();
  return createApp({
    db,
    sql,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    config: { ...defaultConfig, issuer: testIssuer, rateLimits: unlimited, ...config },
  });
}

/**
 * Serves the app over real node:http (@hono/node-server) on a loopback port
 * for the tests of the file: started before them, closed after. Returns the
 * port, once started.
 */
export function servedOnLoopback(app: App): () => number {
  let server: Server | undefined;
  beforeAll(async () => {
    const s = serve({ fetch: app.app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    await new Promise<void>((resolve) => s.once('listening', () => resolve()));
    server = s;
  });
  afterAll(async () => {
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server!.close(resolve));
  });
  return () => (server!.address() as AddressInfo).port;
}

export interface Call {
  key?: string;
  json?: unknown;
  body?: string | Uint8Array;
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
  let body: string | Uint8Array | undefined = c.body;
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
