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
