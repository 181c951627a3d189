// A broker's membership in the cluster (KRaft's BrokerLifecycleManager): it registers with the
// active controller under a new incarnation id per process start, heartbeats every
// broker.heartbeat.interval.ms with the metadata offset it has applied, and learns whether it is
// fenced. It also keeps a lease: a broker whose heartbeats have not been answered for
// broker.session.timeout.ms may already be fenced and replaced without knowing, so it stops acting
// as a leader until a heartbeat is answered again. A paused (SIGSTOP) broker therefore refuses
// writes the moment it resumes, before it has heard anything.
//
// Each heartbeat carries every replica this broker has taken offline (KIP-858's offline log
// directories, per replica); `heartbeatNow` sends one at once when that set grows, rather than a
// heartbeat interval later. A broker that cannot apply the metadata at all asks to be fenced.
import { randomUUID } from 'node:crypto';
import { errorCode, type Logger } from '@runnel/common';
import type { ControllerClient } from '@runnel/controller/quorum';
import { MetadataLag } from './nodeHealth.js';

export interface BrokerLifecycleOptions {
  readonly client: ControllerClient;
  readonly brokerId: number;
  readonly listeners: () => readonly { readonly name: string; readonly host: string; readonly port: number }[];
  readonly rack: string | null;
  readonly heartbeatIntervalMs: number;
  readonly sessionTimeoutMs: number;
  /** The highest metadata offset this broker has applied. */
  readonly metadataOffset: () => number;
  /** The replicas this broker cannot serve, reported in every heartbeat. */
  readonly offlineReplicas: () => readonly { readonly topicId: string; readonly partition: number }[];
  /** The state of the log directory (online, full, offline), reported in every heartbeat. */
  readonly logDirState: () => 'online' | 'full' | 'offline';
  /** Whether to ask the controller to fence this broker (it cannot apply the metadata to its replicas). */
  readonly wantFence: () => boolean;
  readonly logger: Logger;
}

/** Registered and heartbeating (`running`, fenced or not), in controlled shutdown, or stopped. */
type Phase = 'running' | 'shutting-down' | 'stopped';

const STALE_BROKER_EPOCH = errorCode('STALE_BROKER_EPOCH');
const DUPLICATE_BROKER_REGISTRATION = errorCode('DUPLICATE_BROKER_REGISTRATION');

export class BrokerLifecycle {
  readonly incarnationId = randomUUID();
  private epoch = -1;
  private fenced = true;
  private phase: Phase = 'running';
  /** When the latest answered heartbeat was sent: the lease runs from there. */
  private lastAnsweredMs = Number.NEGATIVE_INFINITY;
  /** After a lapse of the lease (or being fenced): the metadata offset to apply before leading again. */
  private catchUpOffset = -1;
  private timer: NodeJS.Timeout | undefined;
  private beating = false;
  /** heartbeatNow was called while a heartbeat was out: send another as soon as it is answered. */
  private beatAgain = false;
  private readonly unfencedWaiters = new Set<() => void>();
  /** The controller's committed offsets, from heartbeat answers, against what this broker applied. */
  private readonly metadataLag = new MetadataLag();

  constructor(private readonly options: BrokerLifecycleOptions) {}

  get brokerEpoch(): number {
    return this.epoch;
  }

  /** Fenced by the controller (or not registered yet), as the latest heartbeat answer said. */
  get isFenced(): boolean {
    return this.fenced;
  }

  /** In controlled shutdown, or stopped. */
  get isShuttingDown(): boolean {
    return this.phase !== 'running';
  }

  /** The controller's committed metadata offset this broker has not applied yet, and since when; null when caught up. */
  metadataBehind(): { controllerOffset: number; behindMs: number } | null {
    return this.metadataLag.behind(this.options.metadataOffset(), performance.now());
  }

  /** The metadata offset this broker must apply before it leads again (-1: none). */
  get catchUpTarget(): number {
    return this.catchUpOffset;
  }

  /** null while this broker may act as a leader; otherwise why not. */
  leadershipRevoked(): string | null {
    if (this.phase === 'stopped') return 'the broker is stopping';
    if (this.fenced) return 'the controller has fenced this broker';
    const silentMs = performance.now() - this.lastAnsweredMs;
    if (silentMs > this.options.sessionTimeoutMs) {
      return `no heartbeat answered for ${Math.round(silentMs)} ms (broker.session.timeout.ms ${this.options.sessionTimeoutMs}): this broker may have been replaced`;
    }
    const applied = this.options.metadataOffset();
    if (applied < this.catchUpOffset) return `catching up with the metadata log (applied ${applied} of ${this.catchUpOffset})`;
    return null;
  }

  /** Starts registering and heartbeating; resolves once the controller has unfenced this broker. */
  async start(): Promise<void> {
    this.schedule(0);
    await new Promise<void>((resolve) => {
      if (!this.fenced || this.phase === 'stopped') return resolve();
      this.unfencedWaiters.add(resolve);
    });
  }

  /**
   * Controlled shutdown: heartbeats asking to shut down until the controller has moved leadership
   * away and says the broker may stop, or `timeoutMs` passes (the controller may be unreachable).
   * Returns whether the controller agreed.
   */
  async controlledShutdown(timeoutMs: number): Promise<boolean> {
    if (this.epoch === -1) return false;
    this.phase = 'shutting-down';
    clearTimeout(this.timer);
    const deadline = Date.now() + timeoutMs;
    // With no controller answering for a session timeout (the quorum is gone, e.g. every node is
    // stopping), nothing can move leadership: waiting longer only delays the stop.
    let lastAnswer = Date.now();
    while (Date.now() < deadline) {
      if (Date.now() - lastAnswer > this.options.sessionTimeoutMs) {
        this.options.logger.warn({ silentMs: Date.now() - lastAnswer }, 'controlled shutdown: no controller answers; stopping without it');
        return false;
      }
      try {
        const sentMs = performance.now();
        const response = await this.options.client.brokerHeartbeat({
          brokerId: this.options.brokerId,
          brokerEpoch: this.epoch,
          currentMetadataOffset: this.options.metadataOffset(),
          wantShutDown: true,
          offlineReplicas: this.offlineReplicas(),
          logDirState: this.options.logDirState(),
        });
        if (response.errorCode === 0) {
          this.lastAnsweredMs = Math.max(this.lastAnsweredMs, sentMs);
          lastAnswer = Date.now();
          if (response.shouldShutDown) {
            this.options.logger.info('controlled shutdown: the controller moved leadership away');
            return true;
          }
        } else if (response.errorCode === STALE_BROKER_EPOCH) {
          return false;
        }
      } catch (error) {
        this.options.logger.debug({ err: (error as Error).message }, 'controlled shutdown heartbeat failed');
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(0, deadline - Date.now()))));
    }
    this.options.logger.warn({ timeoutMs }, 'controlled shutdown timed out; stopping anyway');
    return false;
  }

  /**
   * Sends a heartbeat now (or right after the one in flight), e.g. with a replica just taken
   * offline. Before registration there is nothing to send: the first heartbeat carries it.
   */
  heartbeatNow(): void {
    if (this.phase !== 'running' || this.epoch === -1) return;
    if (this.beating) this.beatAgain = true;
    else this.schedule(0);
  }

  stop(): void {
    this.phase = 'stopped';
    clearTimeout(this.timer);
    for (const resolve of [...this.unfencedWaiters]) resolve();
    this.unfencedWaiters.clear();
  }

  private schedule(delayMs: number): void {
    if (this.phase === 'stopped' || this.phase === 'shutting-down') return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.beat(), delayMs);
  }

  private async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    let next = this.options.heartbeatIntervalMs;
    try {
      if (this.epoch === -1) next = await this.register();
      else await this.heartbeat();
    } catch (error) {
      this.options.logger.warn({ err: (error as Error).message }, 'no answer from the controller');
      next = Math.min(this.options.heartbeatIntervalMs, 500);
    } finally {
      this.beating = false;
    }
    this.schedule(this.beatAgain ? 0 : next);
    this.beatAgain = false;
  }

  private async register(): Promise<number> {
    const { brokerId, rack } = this.options;
    const listeners = this.options.listeners();
    const sentMs = performance.now();
    const response = await this.options.client.registerBroker({
      brokerId,
      incarnationId: this.incarnationId,
      listeners: listeners.map((listener) => ({ ...listener })),
      rack: rack ?? '',
    });
    if (response.errorCode !== 0) {
      const level = response.errorCode === DUPLICATE_BROKER_REGISTRATION ? 'info' : 'warn';
      this.options.logger[level]({ errorCode: response.errorCode, err: response.errorMessage }, 'registration refused; retrying');
      return Math.min(this.options.heartbeatIntervalMs, 1000);
    }
    this.epoch = Number(response.brokerEpoch);
    this.lastAnsweredMs = Math.max(this.lastAnsweredMs, sentMs);
    this.options.logger.info({ brokerEpoch: this.epoch, incarnationId: this.incarnationId }, 'registered with the controller');
    return 0; // heartbeat at once: being unfenced needs one
  }

  private async heartbeat(): Promise<void> {
    // The lease runs from when the heartbeat was sent, not answered: the controller received it
    // after that, so its session for this broker expires no earlier than this broker's lease.
    const sentMs = performance.now();
    const response = await this.options.client.brokerHeartbeat({
      brokerId: this.options.brokerId,
      brokerEpoch: this.epoch,
      currentMetadataOffset: this.options.metadataOffset(),
      wantFence: this.options.wantFence(),
      wantShutDown: false,
      offlineReplicas: this.offlineReplicas(),
      logDirState: this.options.logDirState(),
    });
    if (response.errorCode === STALE_BROKER_EPOCH) {
      // The registration this broker holds is gone or replaced: register again.
      this.options.logger.warn({ err: response.errorMessage }, 'the controller does not know this registration; registering again');
      this.epoch = -1;
      this.setFenced(true);
      return;
    }
    if (response.errorCode !== 0) {
      this.options.logger.warn({ errorCode: response.errorCode, err: response.errorMessage }, 'heartbeat refused');
      return;
    }
    // Silent past the session timeout, or fenced until now: the metadata may have moved on without
    // this broker (new leaders elected); it leads nothing until it has applied what the controller has.
    if (performance.now() - this.lastAnsweredMs > this.options.sessionTimeoutMs || (this.fenced && !response.isFenced)) {
      this.catchUpOffset = Math.max(this.catchUpOffset, Number(response.metadataOffset));
    }
    this.lastAnsweredMs = Math.max(this.lastAnsweredMs, sentMs);
    this.metadataLag.observe(Number(response.metadataOffset), this.options.metadataOffset(), performance.now());
    this.setFenced(response.isFenced);
  }

  private offlineReplicas(): { topicId: string; partition: number }[] {
    return this.options.offlineReplicas().map((replica) => ({ topicId: replica.topicId, partition: replica.partition }));
  }

  private setFenced(fenced: boolean): void {
    if (fenced === this.fenced) return;
    this.fenced = fenced;
    this.options.logger.info({ brokerEpoch: this.epoch }, fenced ? 'fenced by the controller' : 'unfenced: serving as a broker');
    if (!fenced) {
      for (const resolve of [...this.unfencedWaiters]) resolve();
      this.unfencedWaiters.clear();
    }
  }
}
