// Follows the committed metadata log over ControllerApi.FetchMetadata: a snapshot of the image
// first, then every newly committed batch, in order. Each update is handed to `publish` (which opens,
// re-roles and removes replicas) before the follower's image and offset move on, so "the broker has
// applied offset N" means its replicas already act on it. A broken stream is reopened, from the
// next offset, on another quorum member after a short backoff.
//
// `publish` handles each partition's failure itself (the replica goes offline). If it still throws,
// which replicas took their new role is unknown, so the image does not move on: the follower
// re-reads the whole image from a snapshot and publishes it again, and until one publish succeeds
// `applyFailure` says why this broker must not lead anything (the broker also asks the controller
// to fence it, which moves its leadership elsewhere).
import type * as grpc from '@grpc/grpc-js';
import type { ClientApi as Pb, Logger } from '@runnel/common';
import { MetadataImage } from '@runnel/controller';
import { applyMetadataUpdate, type ControllerClient } from '@runnel/controller/quorum';

const RECONNECT_BACKOFF_MS = 200;

export type MetadataPublisher = (before: MetadataImage, after: MetadataImage, snapshot: boolean) => Promise<void>;

export interface MetadataFollowerOptions {
  readonly client: ControllerClient;
  /** The quorum members to read from, tried in turn; the first is preferred (a co-located controller). */
  readonly members: readonly number[];
  readonly publish: MetadataPublisher;
  readonly logger: Logger;
  /** Called when a publish fails as a whole (the broker tells the controller at once). */
  readonly onApplyFailure?: () => void;
}

interface Waiter {
  readonly offset: number;
  readonly resolve: (reached: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

export class MetadataFollower {
  private current = MetadataImage.empty();
  private stream: grpc.ClientReadableStream<Pb.MetadataUpdate__Output> | null = null;
  private memberIndex = 0;
  private stopped = false;
  private applying: Promise<void> = Promise.resolve();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<Waiter>();
  /** Bumped per stream: events of an abandoned stream are ignored. */
  private generation = 0;
  /** Set when a publish failed as a whole: the next stream starts from a snapshot, and until then nothing else is applied. */
  private resyncFromSnapshot = false;
  private failure: string | null = null;

  constructor(private readonly options: MetadataFollowerOptions) {
    if (options.members.length === 0) throw new Error('MetadataFollower: no quorum members');
  }

  /** The image this broker has applied. */
  get image(): MetadataImage {
    return this.current;
  }

  /** Why the latest update could not be applied to the replicas (so nothing may be led), or null. */
  get applyFailure(): string | null {
    return this.failure;
  }

  /** The highest metadata offset applied (-1 before the first update). */
  get offset(): number {
    return this.current.highestOffset;
  }

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.stream?.cancel();
    this.stream = null;
    for (const waiter of [...this.waiters]) this.settle(waiter, false);
  }

  /** Resolves true once offset `offset` is applied here, false after `timeoutMs` or on stop. */
  waitForOffset(offset: number, timeoutMs: number): Promise<boolean> {
    if (this.current.highestOffset >= offset) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter: Waiter = { offset, resolve, timer: setTimeout(() => this.settle(waiter, false), timeoutMs) };
      this.waiters.add(waiter);
    });
  }

  private settle(waiter: Waiter, reached: boolean): void {
    if (!this.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    waiter.resolve(reached);
  }

  private connect(): void {
    if (this.stopped) return;
    const member = this.options.members[this.memberIndex % this.options.members.length]!;
    const generation = ++this.generation;
    // Connecting waits until every received update is applied, so the stream starts right after
    // the image's offset; `received` skips what a replay repeats.
    let received = this.resyncFromSnapshot ? -1 : this.current.highestOffset;
    let stream: grpc.ClientReadableStream<Pb.MetadataUpdate__Output>;
    try {
      // From offset 0 every member answers with a snapshot first.
      stream = this.options.client.fetchMetadata(received + 1, member);
    } catch (error) {
      this.options.logger.warn({ member, err: (error as Error).message }, 'cannot follow the metadata log from this member');
      this.reconnect(generation);
      return;
    }
    this.stream = stream;
    stream.on('data', (update: Pb.MetadataUpdate__Output) => {
      if (generation !== this.generation) return;
      const offset = Number(update.offset);
      if (!update.snapshot && offset <= received) return; // already have it
      received = offset;
      this.applying = this.applying.then(() => this.apply(update, member));
    });
    const broken = (error?: grpc.ServiceError) => {
      if (generation !== this.generation || this.stopped) return;
      this.stream = null;
      if (error !== undefined && error.code !== 1 /* CANCELLED */) {
        this.options.logger.info({ member, err: error.details || error.message }, 'metadata stream ended; following another quorum member');
      }
      this.reconnect(generation);
    };
    stream.on('error', broken);
    stream.on('end', () => broken());
  }

  private reconnect(generation: number): void {
    if (this.stopped || generation !== this.generation) return;
    this.generation++;
    this.memberIndex++;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      // Reconnect only once what was received has been applied, so the new stream starts after it.
      void this.applying.then(() => this.connect());
    }, RECONNECT_BACKOFF_MS);
  }

  private async apply(update: Pb.MetadataUpdate__Output, member: number): Promise<void> {
    if (this.stopped) return;
    // After a failed publish only a snapshot is applied: updates queued behind the failed one do not follow from the image.
    if (this.resyncFromSnapshot && !update.snapshot) return;
    const before = this.current;
    if (!update.snapshot && Number(update.offset) <= before.highestOffset) return;
    let after: MetadataImage;
    try {
      after = applyMetadataUpdate(before, update);
    } catch (error) {
      // An update that does not apply means this broker's image and the log disagree: start over
      // from a snapshot rather than act on a wrong image.
      this.options.logger.error({ member, err: error, offset: update.offset }, 'metadata update does not apply; re-reading the image from a snapshot');
      this.current = MetadataImage.empty();
      this.stream?.cancel();
      return;
    }
    try {
      await this.options.publish(before, after, update.snapshot);
    } catch (error) {
      this.failure = `metadata offset ${after.highestOffset} could not be applied to this broker's replicas (${(error as Error)?.message ?? String(error)}); re-reading the metadata`;
      this.options.logger.error({ err: error, offset: after.highestOffset }, 'applying metadata to the replicas failed; leading nothing until a snapshot of the metadata applies');
      this.options.onApplyFailure?.();
      this.resyncFromSnapshot = true;
      this.stream?.cancel();
      return;
    }
    // Applied (a snapshot, if a resync was due): this broker's replicas act on `after`.
    this.resyncFromSnapshot = false;
    this.failure = null;
    this.current = after;
    for (const waiter of [...this.waiters]) if (after.highestOffset >= waiter.offset) this.settle(waiter, true);
  }
}
