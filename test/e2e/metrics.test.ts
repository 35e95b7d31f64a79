/** The Prometheus endpoint on METRICS_LISTEN, scraped after a few real calls. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryHarness, failure } from '../support/registry-harness.js';

const IMAGE_SERVICE = 'grpc_type="unary",grpc_service="imageregistry.v1.ImageService"';

/** Returns the value of the sample whose name and labels start with `prefix`, or undefined. */
function sample(text: string, prefix: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('metrics endpoint', () => {
  let harness: RegistryHarness;
  let scraped: string;

  beforeAll(async () => {
    harness = await RegistryHarness.start('sqlite', { METRICS_LISTEN: '127.0.0.1:0' });
    const owner = await harness.as('owner-project');
    const { id } = await owner.images.createImage({ image: { name: 'measured' } });
    await owner.images.getImage({ id });
    await failure(owner.images.getImage({ id: '00000000-0000-4000-8000-000000000000' }));
    await owner.images.listImages({});
    const response = await fetch(`http://${harness.service.metricsAddress}/metrics`);
    expect(response.status).toBe(200);
    scraped = await response.text();
  });

  afterAll(async () => {
    await harness?.stop();
  });

  it('counts started calls per method', () => {
    expect(sample(scraped, `grpc_server_started_total{${IMAGE_SERVICE},grpc_method="GetImage"}`)).toBe(2);
    expect(sample(scraped, `grpc_server_started_total{${IMAGE_SERVICE},grpc_method="CreateImage"}`)).toBe(1);
  });

  it('counts handled calls per code', () => {
    expect(sample(scraped, `grpc_server_handled_total{${IMAGE_SERVICE},grpc_method="GetImage",grpc_code="OK"}`)).toBe(1);
    expect(sample(scraped, `grpc_server_handled_total{${IMAGE_SERVICE},grpc_method="GetImage",grpc_code="NOT_FOUND"}`)).toBe(1);
    expect(sample(scraped, `grpc_server_handled_total{${IMAGE_SERVICE},grpc_method="ListImages",grpc_code="OK"}`)).toBe(1);
  });

  it('records handling time as a histogram', () => {
    expect(sample(scraped, `grpc_server_handling_seconds_count{${IMAGE_SERVICE},grpc_method="GetImage"}`)).toBe(2);
    expect(sample(scraped, `grpc_server_handling_seconds_bucket{le="10",${IMAGE_SERVICE},grpc_method="GetImage"}`)).toBe(2);
  });

  it('reports the database pool and process defaults', () => {
    expect(sample(scraped, 'database_pool_connections_in_use')).toBeGreaterThanOrEqual(0);
    expect(sample(scraped, 'database_pool_acquires_waiting')).toBe(0);
    expect(sample(scraped, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(scraped, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('other paths are not found', async () => {
    const response = await fetch(`http://${harness.service.metricsAddress}/`);
    expect(response.status).toBe(404);
  });
});

describe('metrics off by default', () => {
  it('no endpoint without METRICS_LISTEN', async () => {
    const harness = await RegistryHarness.start('sqlite');
    try {
      expect(harness.service.metricsAddress).toBeUndefined();
    } finally {
      await harness.stop();
    }
  });
});
