/**
 * grpc.health.v1 status: SERVING once the database responds and migrations
 * are applied, NOT_SERVING while the database is unreachable or after
 * shutdown has begun.
 */
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';

export const SERVED_SERVICES = ['imageregistry.v1.ImageService', 'imageregistry.v1.MemberService'];
export const PROBE_INTERVAL_MS = 5_000;
/**
 * Maximum time a probe waits for the database before it counts as failed. A
 * stopped or partitioned server accepts the query but never responds, so
 * without this limit health would stay SERVING for as long as that lasts.
 */
export const PROBE_TIMEOUT_MS = 2_000;

export class HealthMonitor {
  readonly implementation = new HealthImplementation({ '': 'NOT_SERVING' });
  private timer: NodeJS.Timeout | undefined;
  private serving = false;
  private stopped = false;
  /** Whether the last ping has not settled yet. */
  private pinging = false;

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
    // A ping still pending from the last interval keeps a pool connection
    // busy, so sending another each interval would use up the pool while the
    // database hangs.
    // On MySQL a hung ping ends after DATABASE_STATEMENT_TIMEOUT_S.
    if (this.pinging) {
      this.fail(new Error(`the database has not responded to a probe sent over ${PROBE_INTERVAL_MS / 1000} s ago`));
      return;
    }
    this.pinging = true;
    const ping = this.ping().finally(() => {
      this.pinging = false;
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the database probe timed out after ${PROBE_TIMEOUT_MS / 1000} s`)),
        PROBE_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([ping, timeout]);
      this.update(true);
    } catch (error) {
      this.fail(error);
    } finally {
      clearTimeout(timer);
    }
  }

  private fail(error: unknown): void {
    if (this.serving) this.logger.error({ err: error }, 'database unreachable; health is NOT_SERVING');
    this.update(false);
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
