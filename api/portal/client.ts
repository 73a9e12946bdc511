import { csrfHeader, sessionCookie } from '../auth.js';
import type { FieldError } from '../../services/shared/errors.js';

export interface ApiFailure {
  code: string;
  message: string;
  details?: FieldError[];
  /** The message is the portal's own, in the page's language already; without it, the API's English, said from code and details (apiErrors.ts). */
  said?: boolean;
}

export type ApiAnswer<T> = { ok: true; status: number; json: T } | { ok: false; status: number; error: ApiFailure };

/**
 * The portal's way to act: a request to the API itself, in process, as the
 * signed-in person (its session cookie, and on a change the CSRF token the form
 * carried). So every page action meets the same route, schema, permission
 * check, service, audit and error as the same call with a key: the portal has
 * no second implementation of any rule.
 */
export class PortalApi {
  constructor(
    private readonly fetch: (request: Request) => Response | Promise<Response>,
    private readonly origin: string,
    private readonly token: string,
    /** The token the submitted form carried (undefined on a GET page): the API compares it to the session's. */
    private readonly csrf?: string,
  ) {}

  /** The API's own response, its body unread: a download streamed through as the API sends it. */
  raw(path: string): Promise<Response> {
    return Promise.resolve(this.fetch(new Request(new URL(path, this.origin), { headers: { cookie: `${sessionCookie}=${this.token}` } })));
  }

  async call<T>(method: string, path: string, body?: { json: unknown } | { csv: string }): Promise<ApiAnswer<T>> {
    const headers: Record<string, string> = { cookie: `${sessionCookie}=${this.token}` };
    if (method !== 'GET' && this.csrf !== undefined) headers[csrfHeader] = this.csrf;
    let payload: string | undefined;
    if (body && 'json' in body) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body.json);
    } else if (body) {
      headers['content-type'] = 'text/csv';
      payload = body.csv;
    }
    const res = await this.fetch(new Request(new URL(path, this.origin), { method, headers, body: payload }));
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (res.ok) return { ok: true, status: res.status, json: parsed as T };
    const error = (parsed as { error?: ApiFailure } | undefined)?.error ?? { code: 'INTERNAL', message: text.slice(0, 200) };
    return { ok: false, status: res.status, error };
  }

  get<T>(path: string) {
    return this.call<T>('GET', path);
  }
}
