// A byte-rate limit on replication traffic for replicas being added by a reassignment (Kafka's
// ReplicationQuotaManager, `leader.replication.throttled.rate` / `follower.replication.throttled.rate`).
// A move copies a whole partition to a new broker; unthrottled, that copy competes with producers
// and consumers for the leader's disk and network. The quota does not delay anything: once the
// measured rate is over the limit, throttled partitions are simply left out of replica fetches
// (the leader answers them empty; the follower does not ask for them) until it falls below.
import { FOLLOWER_REPLICATION_THROTTLED_RATE, LEADER_REPLICATION_THROTTLED_RATE } from '@runnel/common';

/** A limit that never binds (Kafka's default for the throttled rates is Long.MAX_VALUE). */
export const UNLIMITED_RATE = Number.MAX_SAFE_INTEGER;

export interface ReplicationQuotaOptions {
  /** Bytes per second. */
  readonly bytesPerSecond: number;
  /** replication.quota.window.num: samples kept. */
  readonly windows: number;
  /** replication.quota.window.size.seconds, in ms. */
  readonly windowMs: number;
}

interface Sample {
  startMs: number;
  bytes: number;
}

/**
 * The measured rate is the bytes of the samples still within `windows × windowMs`, divided by the
 * time they span, but never by less than `windows − 1` windows (Kafka's Rate does the same): a quiet
 * link that starts a move may send about `(windows − 1) × windowMs × rate` before it is held back,
 * and over a move of any length the average stays at the limit.
 */
export class ReplicationQuota {
  private readonly samples: Sample[] = [];
  private limit: number;

  constructor(
    private readonly options: ReplicationQuotaOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (!(options.windows >= 2) || !(options.windowMs >= 1)) throw new RangeError(`a replication quota needs at least 2 windows of at least 1 ms, got ${options.windows} × ${options.windowMs} ms`);
    this.limit = checkedRate(options.bytesPerSecond);
  }

  get bytesPerSecond(): number {
    return this.limit;
  }

  /** A new limit (a dynamic config change); what was measured stays. */
  setLimit(bytesPerSecond: number): void {
    this.limit = checkedRate(bytesPerSecond);
  }

  get unlimited(): boolean {
    return this.limit >= UNLIMITED_RATE;
  }

  /** Counts bytes sent (leader) or fetched (follower) for throttled replicas. */
  record(bytes: number): void {
    if (bytes <= 0) return;
    const now = this.now();
    this.expire(now);
    const last = this.samples.at(-1);
    if (last !== undefined && now < last.startMs + this.options.windowMs) last.bytes += bytes;
    else this.samples.push({ startMs: now, bytes });
  }

  /** Bytes per second over the retained samples. */
  rate(): number {
    const now = this.now();
    this.expire(now);
    const first = this.samples[0];
    if (first === undefined) return 0;
    const total = this.samples.reduce((sum, sample) => sum + sample.bytes, 0);
    const spanMs = Math.max(now - first.startMs, (this.options.windows - 1) * this.options.windowMs);
    return (total * 1000) / spanMs;
  }

  isExceeded(): boolean {
    return !this.unlimited && this.rate() > this.limit;
  }

  private expire(now: number): void {
    const horizon = now - this.options.windows * this.options.windowMs;
    while (this.samples.length > 0 && this.samples[0]!.startMs + this.options.windowMs <= horizon) this.samples.shift();
  }
}

function checkedRate(bytesPerSecond: number): number {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond < 0) throw new RangeError(`a throttled rate is bytes per second ≥ 0, got ${bytesPerSecond}`);
  return Math.min(bytesPerSecond, UNLIMITED_RATE);
}

// The keys are @runnel/common's: the controller validates the same ones it writes.
export const LEADER_THROTTLED_RATE = LEADER_REPLICATION_THROTTLED_RATE;
export const FOLLOWER_THROTTLED_RATE = FOLLOWER_REPLICATION_THROTTLED_RATE;

/** The configs a throttle reads: the node's static configuration and the metadata image's dynamic configs. */
export interface ThrottleConfigSource {
  int(key: string): number;
}

export interface DynamicConfigs {
  config(resourceType: 'broker' | 'cluster', resourceName: string): ReadonlyMap<string, string>;
}

/**
 * This broker's two replication throttles. Their rates are dynamic, as in Kafka: a broker-level
 * config of the same name in the metadata wins, then a cluster-level one, then the node's own
 * configuration; `follow(image)` applies them after each metadata update.
 */
export class ReplicationThrottles {
  readonly leader: ReplicationQuota;
  readonly follower: ReplicationQuota;

  constructor(
    private readonly brokerId: number,
    private readonly config: ThrottleConfigSource,
    now: () => number = Date.now,
  ) {
    const window = { windows: config.int('replication.quota.window.num'), windowMs: config.int('replication.quota.window.size.seconds') * 1000 };
    this.leader = new ReplicationQuota({ ...window, bytesPerSecond: config.int(LEADER_THROTTLED_RATE) }, now);
    this.follower = new ReplicationQuota({ ...window, bytesPerSecond: config.int(FOLLOWER_THROTTLED_RATE) }, now);
  }

  follow(image: DynamicConfigs): void {
    this.leader.setLimit(this.effectiveRate(image, LEADER_THROTTLED_RATE));
    this.follower.setLimit(this.effectiveRate(image, FOLLOWER_THROTTLED_RATE));
  }

  private effectiveRate(image: DynamicConfigs, key: string): number {
    const dynamic = image.config('broker', String(this.brokerId)).get(key) ?? image.config('cluster', '').get(key);
    const parsed = dynamic === undefined ? Number.NaN : Number(dynamic);
    // The controller validates what it writes; a value that still does not parse leaves the static one.
    return Number.isFinite(parsed) && parsed >= 0 ? parsed : this.config.int(key);
  }
}
