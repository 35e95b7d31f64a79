/**
 * grpc.health.v1 status: SERVING once the database responds and migrations
 * are applied, NOT_SERVING while the database is unreachable or after
 * shutdown has begun.
 */
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';

export const SERVED_SERVICES = ['imageregistry.v1.ImageService', 'imageregistry.v1.MemberService'];
const PROBE_INTERVAL_MS = 5_000;

export class HealthMonitor {
  readonly implementation = new HealthImplementation({ '': 'NOT_SERVING' });
  private timer: NodeJS.Timeout | undefined;
  private serving = false;
  private stopped = false;

  constructor(
    private readonly ping: () => Promise<void>,
    private readonly logger: Logger,
  ) {
    this.setAll('NOT_SERVING');
  }

  /** Marks the service SERVING and probes the database periodically from now on. */
  start(): void {
    this.update(true);
    this.timer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Marks the service NOT_SERVING for good, at the start of shutdown. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.setAll('NOT_SERVING');
  }

  private async probe(): Promise<void> {
    try {
      await this.ping();
      this.update(true);
    } catch (error) {
      if (this.serving) this.logger.error({ err: error }, 'database unreachable; health is NOT_SERVING');
      this.update(false);
    }
  }

  private update(serving: boolean): void {
    if (this.stopped) return;
    if (serving && !this.serving && this.timer !== undefined) this.logger.info('database reachable again; health is SERVING');
    this.serving = serving;
    this.setAll(serving ? 'SERVING' : 'NOT_SERVING');
  }

  private setAll(status: 'SERVING' | 'NOT_SERVING'): void {
    for (const service of ['', ...SERVED_SERVICES]) this.implementation.setStatus(service, status);
  }
}
