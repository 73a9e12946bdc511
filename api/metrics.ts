import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per app, so tests can build several apps in one process. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'forfait_' });
  const requests = new Counter({
    name: 'forfait_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
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
  });
  const authorizationLatency = new Histogram({
    name: 'forfait_authorization_duration_seconds',
    help: 'Time to decide an authorization, including the commit of its reservation',
    labelNames: ['decision'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [registry],
  });
  // prom-client hashes a label object on every call; the hot paths keep the
  // child of each label combination instead (a handful of routes and reasons)
  const children = new Map<string, { count(): void; observe(seconds: number): void }>();
  function request(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route} ${status}`;
    let child = children.get(key);
    if (!child) {
      const counter = requests.labels(method, route, String(status));
      const histogram = latency.labels(method, route);
      child = { count: () => counter.inc(), observe: (s) => histogram.observe(s) };
      children.set(key, child);
    }
    child.count();
    child.observe(seconds);
  }
  function authorization(decision: string, reason: string, seconds: number): void {
    const key = `authorize ${decision} ${reason}`;
    let child = children.get(key);
    if (!child) {
      const counter = authorizations.labels(decision, reason);
      const histogram = authorizationLatency.labels(decision);
      child = { count: () => counter.inc(), observe: (s) => histogram.observe(s) };
      children.set(key, child);
    }
    child.count();
    child.observe(seconds);
  }
  return { registry, request, authorization };
}

export type Metrics = ReturnType<typeof createMetrics>;
