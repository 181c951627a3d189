// A simulated network: per-message drop, delay (whole ticks), duplication, and reordering (messages
// due in the same tick are delivered in random order), plus directed link cuts for partitions.
import type { Random } from '../random.js';
import type { Message } from '../types.js';

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  /** Each message is delivered after 1..delayTicksMax ticks. */
  delayTicksMax: number;
}

interface InFlight {
  readonly deliverAtTick: number;
  readonly message: Message;
}

export class Network {
  private inFlight: InFlight[] = [];
  private readonly cutLinks = new Set<number>();
  faults: NetworkFaults;
  readonly inFlightMax: number;
  dropped = 0;
  delivered = 0;

  constructor(private readonly random: Random, faults: NetworkFaults, inFlightMax = 20_000) {
    this.faults = faults;
    this.inFlightMax = inFlightMax;
  }

  private static link(from: number, to: number): number {
    return from * 4096 + to;
  }

  cut(from: number, to: number): void {
    this.cutLinks.add(Network.link(from, to));
  }

  isCut(from: number, to: number): boolean {
    return this.cutLinks.has(Network.link(from, to));
  }

  heal(): void {
    this.cutLinks.clear();
  }

  get cutCount(): number {
    return this.cutLinks.size;
  }

  send(message: Message, nowTick: number): void {
    const { dropRate, duplicateRate, delayTicksMax } = this.faults;
    if (this.isCut(message.from, message.to) || (dropRate > 0 && this.random.nextFloat() < dropRate)) {
      this.dropped++;
      return;
    }
    const copies = duplicateRate > 0 && this.random.nextFloat() < duplicateRate ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      if (this.inFlight.length >= this.inFlightMax) {
        this.dropped++;
        return;
      }
      const delayTicks = 1 + (delayTicksMax > 1 ? this.random.nextInt(delayTicksMax) : 0);
      this.inFlight.push({ deliverAtTick: nowTick + delayTicks, message });
    }
  }

  hasInFlight(matches: (message: Message) => boolean): boolean {
    return this.inFlight.some((item) => matches(item.message));
  }

  /** Messages due at `nowTick`, in random order; cut links drop them on arrival too. */
  takeDue(nowTick: number): Message[] {
    const due: Message[] = [];
    const later: InFlight[] = [];
    for (const item of this.inFlight) {
      if (item.deliverAtTick > nowTick) later.push(item);
      else if (this.isCut(item.message.from, item.message.to)) this.dropped++;
      else due.push(item.message);
    }
    this.inFlight = later;
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.random.nextInt(i + 1);
      const swap = due[i]!;
      due[i] = due[j]!;
      due[j] = swap;
    }
    this.delivered += due.length;
    return due;
  }
}
