import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per app, so tests can build several apps in one process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'forfait_' });
  // the hot paths count in plain numbers; each counter takes them in when scraped
  const uncounted = new Map<Counter<string>, { labels: string[]; n: number }[]>();
  function flush(this: Counter<string>): void {
    for (const c of uncounted.get(this) ?? []) {
      if (c.n === 0) continue;
      this.labels(...c.labels).inc(c.n);
      c.n = 0;
    }
  }
  function counting(counter: Counter<string>, ...labels: string[]): { n: number } {
    const c = { labels, n: 0 };
    at(uncounted, counter, () => []).push(c);
    return c;
  }
  const requests = new Counter({
    name: 'forfait_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
    collect: flush,
  });
  const latency = new Histogram({
    name: 'forfait_http_request_duration_seconds',
    help: 'HTTP request latency by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const authorizations = new Counter({
    name: 'forfait_authorizations_total',
    help: 'PBX authorizations by decision and deny reason',
    labelNames: ['decision', 'reason'] as const,
    registers: [registry],
    collect: flush,
  });
  const authorizationLatency = new Histogram({
    name: 'forfait_authorization_duration_seconds',
    help: 'Time to decide an authorization, including the commit of its reservation',
    labelNames: ['decision'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  });
  // prom-client hashes and checks a label object on every call, even through a
  // child: the hot paths keep, for each label combination (a handful of routes
  // and reasons), a plain count and the histogram's child
  type Child = { count: { n: number }; observe(seconds: number): void };
  // keyed level by level by the label values themselves: no key string built per call
  const requestChildren = new Map<string, Map<string, Map<number, Child>>>();
  function request(method: string, route: string, status: number, seconds: number): void {
    const byStatus = at(at(requestChildren, method, newMap), route, newMap);
    let child = byStatus.get(status);
    if (!child) {
      const histogram = latency.labels(method, route);
      child = { count: counting(requests, method, route, String(status)), observe: (s) => histogram.observe(s) };
      byStatus.set(status, child);
    }
    child.count.n++;
    child.observe(seconds);
  }
  const authorizationChildren = new Map<string, Map<string, Child>>();
  function authorization(decision: string, reason: string, seconds: number): void {
    const byReason = at(authorizationChildren, decision, newMap);
    let child = byReason.get(reason);
    if (!child) {
      const histogram = authorizationLatency.labels(decision);
      child = { count: counting(authorizations, decision, reason), observe: (s) => histogram.observe(s) };
      byReason.set(reason, child);
    }
    child.count.n++;
    child.observe(seconds);
  }
  return { registry, request, authorization };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** `map`'s value at `key`, made by `make` the first time it is asked for. */
function at<K, V>(map: Map<K, V>, key: K, make: () => NoInfer<V>): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

const newMap = <K, V>() => new Map<K, V>();
