import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { call, servedOnLoopback, testApp } from '../support/app.js';
import { newUser, tenantWithPbx } from '../support/accounts.js';

// Requests as real PBX HTTP clients send them, over a real socket, on the PBX's
// two routes (POST /v1/authorize on the lane, POST /v1/calls/{id}/end) and on an
// ordinary JSON route (a top-up, what a billing system posts): Kamailio's two
// Content-Types, a chunked body without Content-Length (libcurl streaming a
// body of unknown size), Expect: 100-continue (libcurl for bodies over 1 KiB,
// Asterisk's CURL()), and all of it on one kept-alive connection, an error
// answer included, as a PBX's connection pool does.

const app = testApp();
const MOBILE = '+33612345678';

const port = servedOnLoopback(app);

interface Reply {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/**
 * One kept-alive HTTP/1.1 connection, spoken byte for byte: each request's
 * header lines as given (a name may repeat), its body whole, chunked, or sent
 * only after the server's `100 Continue`.
 */
class Connection {
  private readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  closed = false;

  constructor() {
    this.socket = connect(port(), '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.waiting?.();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  end(): void {
    this.socket.destroy();
  }

  private async more(): Promise<void> {
    if (this.closed) throw new Error(`connection closed; unread: ${this.buffer.toString()}`);
    await new Promise<void>((resolve) => {
      this.waiting = resolve;
    });
    this.waiting = undefined;
  }

  /** Waits until `marker` has arrived; its offset. */
  private async until(marker: string): Promise<number> {
    for (;;) {
      const at = this.buffer.indexOf(marker);
      if (at >= 0) return at;
      await this.more();
    }
  }

  private async head(): Promise<{ status: number; headers: Map<string, string> }> {
    const end = await this.until('\r\n\r\n');
    const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    this.buffer = this.buffer.subarray(end + 4);
    const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    return { status: Number(lines[0]!.split(' ')[1]), headers };
  }

  private async bytes(n: number): Promise<Buffer> {
    while (this.buffer.length < n) await this.more();
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  private async line(): Promise<string> {
    const end = await this.until('\r\n');
    const out = this.buffer.subarray(0, end).toString('latin1');
    this.buffer = this.buffer.subarray(end + 2);
    return out;
  }

  /** The next final answer (a 1xx is not one). */
  private async reply(): Promise<Reply> {
    const { status, headers } = await this.head();
    let body: Buffer;
    if (headers.get('transfer-encoding') === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const size = Number.parseInt(await this.line(), 16);
        if (size === 0) {
          await this.line();
          break;
        }
        parts.push(await this.bytes(size));
        await this.line();
      }
      body = Buffer.concat(parts);
    } else body = await this.bytes(Number(headers.get('content-length') ?? 0));
    return { status, headers, body: body.toString('utf8') };
  }

  async send(path: string, headers: [string, string][], body: string, how: 'whole' | 'chunked' | 'expect-continue'): Promise<Reply> {
    const lines = [`POST ${path} HTTP/1.1`, `Host: 127.0.0.1:${port()}`, ...headers.map(([n, v]) => `${n}: ${v}`)];
    const bytes = Buffer.from(body);
    if (how === 'chunked') {
      lines.push('Transfer-Encoding: chunked');
      const chunks: Buffer[] = [];
      // small chunks, as a client streaming what it writes
      for (let i = 0; i < bytes.length; i += 16) {
        const part = bytes.subarray(i, i + 16);
        chunks.push(Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n'));
      }
      this.socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), ...chunks, Buffer.from('0\r\n\r\n')]));
      return this.reply();
    }
    lines.push(`Content-Length: ${bytes.length}`);
    if (how === 'expect-continue') {
      lines.push('Expect: 100-continue');
      this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      // the body goes only once the server asked for it, as libcurl does when the server answers in time
      const interim = await this.head();
      expect(interim.status).toBe(100);
      this.socket.write(bytes);
      return this.reply();
    }
    this.socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), bytes]));
    return this.reply();
  }
}

const setup = () => tenantWithPbx(app, ['336,France mobile,mobile,6,0.2,1,1,true,,']);

const kamailio = (key: string): [string, string][] => [
  ['Authorization', `Bearer ${key}`],
  ['Content-Type', 'application/json'],
  ['Content-Type', 'application/x-www-form-urlencoded'],
];
const plain = (key: string): [string, string][] => [
  ['Authorization', `Bearer ${key}`],
  ['Content-Type', 'application/json'],
];
const formFirst = (key: string): [string, string][] => [
  ['Authorization', `Bearer ${key}`],
  ['Content-Type', 'application/x-www-form-urlencoded'],
  ['Content-Type', 'application/json'],
];

/**
 * The same sequence on one connection for a route: Kamailio's two types whole,
 * chunked and after 100-continue (each accepted), the form type first (415,
 * body unread), no key (401, body unread), then a plain request: the
 * connection survives every answer.
 */
async function sequence(route: { path: () => Promise<string>; key: string; body: () => Promise<string>; ok: number; check: (r: Reply) => void }) {
  const conn = new Connection();
  try {
    for (const how of ['whole', 'chunked', 'expect-continue'] as const) {
      const r = await conn.send(await route.path(), kamailio(route.key), await route.body(), how);
      expect(r.status, `${how}: ${r.body}`).toBe(route.ok);
      route.check(r);
      expect(r.headers.get('connection') ?? 'keep-alive').not.toBe('close');
    }
    const refused = await conn.send(await route.path(), formFirst(route.key), await route.body(), 'whole');
    expect(refused.status).toBe(415);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
    const refusedChunked = await conn.send(await route.path(), formFirst(route.key), await route.body(), 'chunked');
    expect(refusedChunked.status).toBe(415);
    const anonymous = await conn.send(await route.path(), [['Content-Type', 'application/json']], await route.body(), 'expect-continue');
    expect(anonymous.status).toBe(401);
    const last = await conn.send(await route.path(), plain(route.key), await route.body(), 'whole');
    expect(last.status).toBe(route.ok);
    route.check(last);
    expect(conn.closed).toBe(false);
  } finally {
    conn.end();
  }
}

describe('what real PBX HTTP clients send is accepted the same way on every JSON route', () => {
  it('POST /v1/authorize', async () => {
    const { t, pbx } = await setup();
    await sequence({
      key: pbx,
      path: async () => '/v1/authorize',
      body: async () => JSON.stringify({ identifiant: (await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app)).identifiant, callee: MOBILE }),
      ok: 200,
      check: (r) => expect(JSON.parse(r.body)).toMatchObject({ decision: 'allow', maxSeconds: 98, callee: MOBILE }),
    });
  });

  it('POST /v1/calls/{id}/end', async () => {
    const { t, pbx } = await setup();
    const allowed = async () => {
      const u = await newUser(t.id, { balance: '10', numbers: { 1: MOBILE } }, app);
      const res = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: u.identifiant, callee: MOBILE } });
      expect(res.json).toMatchObject({ decision: 'allow' });
      return res.json.reservationId as string;
    };
    await sequence({
      key: pbx,
      path: async () => `/v1/calls/${await allowed()}/end`,
      body: async () => JSON.stringify({ durationSeconds: 30, disposition: 'answered' }),
      ok: 200,
      // 30 s at 6.00/min by the second plus 0.20 of connection: 3.20
      check: (r) => expect(JSON.parse(r.body)).toMatchObject({ durationSeconds: 30, disposition: 'answered', callee: MOBILE, cost: '3.2000' }),
    });
  });

  it('POST /v1/users/{id}/ledger, an ordinary JSON route', async () => {
    const { t } = await setup();
    const u = await newUser(t.id, {}, app);
    let n = 0;
    await sequence({
      key: t.adminKey,
      path: async () => `/v1/users/${u.id}/ledger`,
      body: async () => JSON.stringify({ kind: 'topup', amount: '1.5', idempotencyKey: `clients-${++n}` }),
      ok: 201,
      check: (r) => expect(JSON.parse(r.body)).toMatchObject({ entry: { kind: 'topup', amount: '1.5000' } }),
    });
  });
});
