import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, loadRaftProto } from '@runnel/common';
import { RaftTransport } from '../src/host/transport.js';
import type { Message } from '../src/types.js';

const logger = createLogger({ name: 'test', level: 'silent' });
const transports: RaftTransport[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.stop()));
});

async function pair(group2 = 'g'): Promise<{ a: RaftTransport; received: Message[]; portB: number }> {
  const received: Message[] = [];
  const b = new RaftTransport({ nodeId: 2, group: group2, host: '127.0.0.1', port: 0, peers: new Map(), logger, onMessage: (m) => received.push(m) });
  const portB = await b.start();
  const a = new RaftTransport({ nodeId: 1, group: 'g', host: '127.0.0.1', port: 0, peers: new Map([[2, `127.0.0.1:${portB}`]]), logger, onMessage: () => undefined });
  await a.start();
  transports.push(a, b);
  return { a, received, portB };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('RaftTransport', () => {
  it('delivers every kind of message intact, in batches', async () => {
    const { a, received } = await pair();
    const messages: Message[] = [
      { type: 'vote', from: 1, to: 2, term: 3, lastIndex: 10, lastTerm: 2, transfer: true },
      { type: 'append', from: 1, to: 2, term: 3, prevIndex: 9, prevTerm: 2, commit: 8, entries: [{ index: 10, term: 3, type: 'normal', data: new Uint8Array([1, 2, 3]) }] },
      { type: 'appendResponse', from: 1, to: 2, term: 3, index: 7, reject: true, rejectHint: 5, logTerm: 2 },
      { type: 'heartbeat', from: 1, to: 2, term: 3, commit: 8, readId: 4 },
      { type: 'snapshot', from: 1, to: 2, term: 3, snapshot: { metadata: { index: 5, term: 2, confState: { voters: [1, 2, 3], learners: [4] } }, data: new Uint8Array([9]) } },
      { type: 'readIndexResponse', from: 1, to: 2, term: 3, index: 12, context: new Uint8Array([7]) },
      ...Array.from({ length: 2000 }, (_, i): Message => ({ type: 'heartbeatResponse', from: 1, to: 2, term: 3, readId: i })),
    ];
    a.send(messages);
    await until(() => received.length === messages.length);
    const normalize = (value: unknown): unknown => {
      if (value instanceof Uint8Array) return [...value];
      if (Array.isArray(value)) return value.map(normalize);
      if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
      return value;
    };
    expect(received.map(normalize)).toEqual(messages.map(normalize));
  });

  it('drops malformed messages and keeps serving', async () => {
    const { a, received, portB } = await pair();
    const { RaftTransport: Client } = loadRaftProto().runnel.v1;
    const client = new Client(`127.0.0.1:${portB}`, grpc.credentials.createInsecure());
    await new Promise<void>((resolve) => {
      const stream = client.Send(() => resolve());
      stream.write({
        group: 'g',
        messages: [
          { type: 'bogus', from: 1, to: 2 },
          { type: 'append', from: 0, to: 2 },
          // Entries with a gap, a term above the message's, a config entry that does not decode.
          { type: 'append', from: 1, to: 2, term: 3, prevIndex: 4, prevTerm: 1, entries: [{ index: 6, term: 3, type: 'normal' }] },
          { type: 'append', from: 1, to: 2, term: 3, prevIndex: 4, prevTerm: 1, entries: [{ index: 5, term: 4, type: 'normal' }] },
          { type: 'append', from: 1, to: 2, term: 3, prevIndex: 4, prevTerm: 1, entries: [{ index: 5, term: 3, type: 'config', data: Buffer.from([9]) }] },
          { type: 'snapshot', from: 1, to: 2, term: 3, snapshot: { index: 5, term: 3, voters: [], learners: [], data: Buffer.alloc(0), chunkOffset: 0, totalBytes: 0 } },
          { type: 'timeoutNow', from: 1, to: 2, term: 9 },
        ],
      });
      stream.end();
    });
    client.close();
    await until(() => received.length === 1);
    expect(received[0]).toEqual({ type: 'timeoutNow', from: 1, to: 2, term: 9 });
    a.send([{ type: 'timeoutNow', from: 1, to: 2, term: 10 }]);
    await until(() => received.length === 2);
  });

  it("refuses another group's messages", async () => {
    const { a, received } = await pair('other');
    a.send([{ type: 'timeoutNow', from: 1, to: 2, term: 1 }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).toEqual([]);
  });

  it('reconnects after the peer restarts', async () => {
    const received: Message[] = [];
    const make = (port: number) => new RaftTransport({ nodeId: 2, group: 'g', host: '127.0.0.1', port, peers: new Map(), logger, onMessage: (m) => received.push(m) });
    let b = make(0);
    const portB = await b.start();
    const a = new RaftTransport({ nodeId: 1, group: 'g', host: '127.0.0.1', port: 0, peers: new Map([[2, `127.0.0.1:${portB}`]]), logger, onMessage: () => undefined });
    await a.start();
    transports.push(a);
    a.send([{ type: 'timeoutNow', from: 1, to: 2, term: 1 }]);
    await until(() => received.length === 1);
    await b.stop();
    b = make(portB);
    await b.start();
    transports.push(b);
    // Messages sent while the stream was broken may be lost; Raft resends, and so do we here.
    await until(() => {
      a.send([{ type: 'timeoutNow', from: 1, to: 2, term: 2 }]);
      return received.some((m) => m.term === 2);
    }, 10_000);
  }, 20_000);
});

describe('RaftTransport snapshots', () => {
  it('sends a large snapshot in chunks and delivers it whole, once', async () => {
    const received: Message[] = [];
    const b = new RaftTransport({ nodeId: 2, group: 'g', host: '127.0.0.1', port: 0, peers: new Map(), logger, onMessage: (m) => received.push(m), snapshotChunkBytes: 64 * 1024 });
    const portB = await b.start();
    const a = new RaftTransport({ nodeId: 1, group: 'g', host: '127.0.0.1', port: 0, peers: new Map([[2, `127.0.0.1:${portB}`]]), logger, onMessage: () => undefined, snapshotChunkBytes: 64 * 1024 });
    await a.start();
    transports.push(a, b);
    const data = Buffer.alloc(1_000_003);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    a.send([
      { type: 'heartbeat', from: 1, to: 2, term: 5, commit: 1, readId: 0 },
      { type: 'snapshot', from: 1, to: 2, term: 5, snapshot: { metadata: { index: 99, term: 4, confState: { voters: [1, 2, 3], learners: [] } }, data } },
      { type: 'heartbeat', from: 1, to: 2, term: 5, commit: 2, readId: 0 },
    ]);
    await until(() => received.length === 3);
    expect(received.map((m) => m.type)).toEqual(['heartbeat', 'snapshot', 'heartbeat']);
    const snapshot = received[1] as Extract<Message, { type: 'snapshot' }>;
    expect(snapshot.snapshot.metadata).toEqual({ index: 99, term: 4, confState: { voters: [1, 2, 3], learners: [] } });
    expect(Buffer.compare(Buffer.from(snapshot.snapshot.data), data)).toBe(0);
  });

  it('drops a snapshot whose chunks arrive out of order, and takes the next whole one', async () => {
    const received: Message[] = [];
    const b = new RaftTransport({ nodeId: 2, group: 'g', host: '127.0.0.1', port: 0, peers: new Map(), logger, onMessage: (m) => received.push(m) });
    const portB = await b.start();
    transports.push(b);
    const { RaftTransport: Client } = loadRaftProto().runnel.v1;
    const client = new Client(`127.0.0.1:${portB}`, grpc.credentials.createInsecure());
    const chunk = (offset: number, bytes: number[], total: number) => ({
      type: 'snapshot', from: 1, to: 2, term: 5, snapshot: { index: 7, term: 5, voters: [1, 2], learners: [], data: Buffer.from(bytes), chunkOffset: offset, totalBytes: total },
    });
    await new Promise<void>((resolve) => {
      const stream = client.Send(() => resolve());
      stream.write({ group: 'g', messages: [chunk(0, [1, 2], 6), chunk(4, [5, 6], 6)] }); // a gap: dropped
      stream.write({ group: 'g', messages: [chunk(0, [1, 2], 6), chunk(2, [3, 4], 6), chunk(4, [5, 6], 6)] });
      stream.end();
    });
    client.close();
    await until(() => received.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toHaveLength(1);
    expect([...(received[0] as Extract<Message, { type: 'snapshot' }>).snapshot.data]).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
