// Broker liveness as the active controller sees it. Like KRaft's BrokerHeartbeatManager this lives
// in memory only: heartbeats never go to the metadata log, and a newly elected controller starts
// every session fresh (an unfenced broker it has not heard from yet gets a full session timeout from
// the first time the controller looks). Time is passed in (ms); nothing here reads a clock.

import type { MetadataImage } from './image.js';

export const DEFAULT_BROKER_SESSION_TIMEOUT_MS = 9000;
export const DEFAULT_BROKER_HEARTBEAT_INTERVAL_MS = 2000;

interface SessionState {
  lastContactMs: number;
  /** The broker's last reported metadata offset; -1 until it reports one. */
  metadataOffset: number;
  controlledShutdown: boolean;
  /** Set once the broker in controlled shutdown leads nothing: the offset others must reach. */
  controlledShutdownOffset: number | null;
}

export class BrokerSessions {
  private readonly sessions = new Map<number, SessionState>();
  private latestNowMs = Number.NEGATIVE_INFINITY;

  constructor(readonly sessionTimeoutMs: number = DEFAULT_BROKER_SESSION_TIMEOUT_MS) {
    if (!Number.isSafeInteger(sessionTimeoutMs) || sessionTimeoutMs < 1) {
      throw new RangeError(`sessionTimeoutMs must be a positive integer, got ${sessionTimeoutMs}`);
    }
  }

  private observe(nowMs: number): void {
    if (!Number.isFinite(nowMs)) throw new RangeError(`nowMs must be finite, got ${nowMs}`);
    if (nowMs < this.latestNowMs) throw new RangeError(`time went backwards: ${nowMs} < ${this.latestNowMs}`);
    this.latestNowMs = nowMs;
  }

  private session(brokerId: number, nowMs: number): SessionState {
    let state = this.sessions.get(brokerId);
    if (state === undefined) {
      state = { lastContactMs: nowMs, metadataOffset: -1, controlledShutdown: false, controlledShutdownOffset: null };
      this.sessions.set(brokerId, state);
    }
    return state;
  }

  /** Records contact from a broker (a heartbeat or a registration). */
  touch(brokerId: number, nowMs: number, metadataOffset?: number): void {
    this.observe(nowMs);
    const state = this.session(brokerId, nowMs);
    state.lastContactMs = nowMs;
    if (metadataOffset !== undefined) state.metadataOffset = Math.max(state.metadataOffset, metadataOffset);
  }

  /** A new registration (a new incarnation) starts a new session. */
  register(brokerId: number, nowMs: number): void {
    this.observe(nowMs);
    this.sessions.set(brokerId, { lastContactMs: nowMs, metadataOffset: -1, controlledShutdown: false, controlledShutdownOffset: null });
  }

  hasValidSession(brokerId: number, nowMs: number): boolean {
    const state = this.sessions.get(brokerId);
    return state !== undefined && nowMs - state.lastContactMs <= this.sessionTimeoutMs;
  }

  /**
   * Whether the broker's session has expired; a broker without a session (a new controller) gets
   * one starting now, so it is not expired.
   */
  sessionExpired(brokerId: number, nowMs: number): boolean {
    this.observe(nowMs);
    return nowMs - this.session(brokerId, nowMs).lastContactMs > this.sessionTimeoutMs;
  }

  lastContactMs(brokerId: number): number | undefined {
    return this.sessions.get(brokerId)?.lastContactMs;
  }

  metadataOffset(brokerId: number): number {
    return this.sessions.get(brokerId)?.metadataOffset ?? -1;
  }

  /**
   * Unfenced brokers whose session has expired (no contact for more than sessionTimeoutMs), in id
   * order. A broker without a session (a new controller) gets one starting now.
   */
  expiredBrokers(image: MetadataImage, nowMs: number): number[] {
    this.observe(nowMs);
    const expired: number[] = [];
    for (const broker of image.brokers()) {
      if (broker.fenced) continue;
      if (this.sessionExpired(broker.id, nowMs)) expired.push(broker.id);
    }
    return expired;
  }

  beginControlledShutdown(brokerId: number, nowMs: number): void {
    this.session(brokerId, nowMs).controlledShutdown = true;
  }

  inControlledShutdown(brokerId: number): boolean {
    return this.sessions.get(brokerId)?.controlledShutdown ?? false;
  }

  controlledShutdownOffset(brokerId: number): number | null {
    return this.sessions.get(brokerId)?.controlledShutdownOffset ?? null;
  }

  setControlledShutdownOffset(brokerId: number, offset: number): void {
    const state = this.sessions.get(brokerId);
    if (state === undefined || !state.controlledShutdown) throw new Error(`broker ${brokerId} is not in controlled shutdown`);
    state.controlledShutdownOffset = offset;
  }

  /** The broker is fenced: it leaves controlled shutdown; its session stays for duplicate checks. */
  onFenced(brokerId: number): void {
    const state = this.sessions.get(brokerId);
    if (state !== undefined) {
      state.controlledShutdown = false;
      state.controlledShutdownOffset = null;
    }
  }

  /** Forget everything (this controller lost leadership; the next one starts fresh). */
  clear(): void {
    this.sessions.clear();
  }
}
