/**
 * Prometheus metrics: one counter of started calls, one of handled calls by
 * code, a histogram of handling time, the database pool, and prom-client's
 * process defaults. Served as text on METRICS_LISTEN at /metrics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The numbers a pool reports; tarn, Knex's pool, has these methods. */
export interface PoolStatistics {
  numUsed(): number;
  numPendingAcquires(): number;
}

/** The receiver of each call's start and end, as handlers report them. */
export interface CallMetrics {
  started(type: CallType, service: string, method: string): void;
  handled(type: CallType, service: string, method: string, code: string, seconds: number): void;
}

/** The grpc_type label: how many messages each side sends. */
export type CallType = 'unary' | 'client_stream' | 'server_stream';

export class Metrics implements CallMetrics {
  readonly registry = new Registry();
  private readonly startedCalls: Counter<'grpc_type' | 'grpc_service' | 'grpc_method'>;
  private readonly handledCalls: Counter<'grpc_type' | 'grpc_service' | 'grpc_method' | 'grpc_code'>;
  private readonly handlingSeconds: Histogram<'grpc_type' | 'grpc_service' | 'grpc_method'>;

  constructor(pool: () => PoolStatistics | undefined) {
    collectDefaultMetrics({ register: this.registry });
    this.startedCalls = new Counter({
      name: 'grpc_server_started_total',
      help: 'Calls started on the server.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method'],
      registers: [this.registry],
    });
    this.handledCalls = new Counter({
      name: 'grpc_server_handled_total',
      help: 'Calls completed on the server, by status code.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method', 'grpc_code'],
      registers: [this.registry],
    });
    this.handlingSeconds = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Time from the start of a call to its status, in seconds.',
      labelNames: ['grpc_type', 'grpc_service', 'grpc_method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    });
    new Gauge({
      name: 'database_pool_connections_in_use',
      help: 'Database connections lent out by the pool.',
      registers: [this.registry],
      collect() {
        this.set(pool()?.numUsed() ?? 0);
      },
    });
    new Gauge({
      name: 'database_pool_acquires_waiting',
      help: 'Requests waiting for a database connection.',
      registers: [this.registry],
      collect() {
        this.set(pool()?.numPendingAcquires() ?? 0);
      },
    });
  }

  started(type: CallType, service: string, method: string): void {
    this.startedCalls.inc({ grpc_type: type, grpc_service: service, grpc_method: method });
  }

  handled(type: CallType, service: string, method: string, code: string, seconds: number): void {
    const labels = { grpc_type: type, grpc_service: service, grpc_method: method };
    this.handledCalls.inc({ ...labels, grpc_code: code });
    this.handlingSeconds.observe(labels, seconds);
  }
}

/**
 * Serves the registry as Prometheus text on `host:port` at /metrics, and
 * resolves with the address it listens on.
 */
export async function serveMetrics(registry: Registry, listen: string): Promise<{ address: string; server: Server }> {
  const separator = listen.lastIndexOf(':');
  const host = listen.slice(0, separator).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(separator + 1));
  const server = createServer((request, response) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return { address: `${listen.slice(0, separator)}:${bound}`, server };
}
