// A bound on a load generator's unacknowledged sends (about the producer's 32 MiB buffer): a send
// waits while the window is full and goes on once half of it has been answered, so the load keeps
// its pace without queueing the whole run in memory.

export class SendWindow {
  constructor(max) {
    this.max = max;
    this.inFlight = 0;
    this.wake = undefined;
  }

  /** Resolves once there is room for one more send, and counts it. */
  async acquire() {
    if (this.inFlight >= this.max) await new Promise((resume) => (this.wake = resume));
    this.inFlight++;
  }

  /** A send was answered (acknowledged or failed). */
  release() {
    this.inFlight--;
    if (this.wake !== undefined && this.inFlight < this.max / 2) {
      const resume = this.wake;
      this.wake = undefined;
      resume();
    }
  }

  /** Waits up to `timeoutMs` for every send to be answered; resolves with how many were not. */
  async drain(timeoutMs) {
    const until = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((done) => setTimeout(done, 20));
    return this.inFlight;
  }
}

/**
 * A load of `value` records to `topic` at `rate` records/s from `startMs`, through `producer`, with
 * at most `inFlightMax` unanswered: send i goes at startMs + i / rate (or as soon as the window lets
 * it, when behind) while `more(i)` holds. Each answer calls `acked(sentAtMs, latencyMs)` or
 * `failed(error)`. Returns once every send is answered (or `drainTimeoutMs` passed); the producer
 * stays open.
 */
export async function sendAtRate(producer, { topic, value, rate, startMs, inFlightMax, drainTimeoutMs, more, acked, failed }) {
  const window = new SendWindow(inFlightMax);
  for (let i = 0; more(i); i++) {
    const aheadMs = startMs + (1000 / rate) * i - Date.now();
    if (aheadMs >= 1) await new Promise((done) => setTimeout(done, aheadMs));
    await window.acquire();
    const sentAtMs = Date.now();
    const sentAt = performance.now();
    producer.send({ topic, value }).then(
      () => {
        acked(sentAtMs, performance.now() - sentAt);
        window.release();
      },
      (error) => {
        failed(error);
        window.release();
      },
    );
  }
  await producer.flush();
  await window.drain(drainTimeoutMs);
}
