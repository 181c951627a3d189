// Raft messages over gRPC (proto/runnel/v1/raft.proto): one long-lived client stream to each
// peer, carrying batches of messages. Sending never blocks the node: each peer has a bounded
// queue, a full queue drops the oldest message, and a broken stream drops what it held and is
// reopened after a backoff. Raft is built to survive exactly these losses, duplicates and
// reorderings; what it cannot survive is a node stalled behind one slow peer.
import * as grpc from '@grpc/grpc-js';
import { loadRaftProto, type Logger, type RaftApi } from '@runnel/common';
import type { Message } from '../types.js';
import { messageFromWire, messageToWire } from './messageCodec.js';

/** Messages queued per peer before the oldest are dropped. */
export const PEER_QUEUE_MESSAGES_MAX = 10_000;
/** Messages per RaftBatch on the wire, and about how many bytes. */
const BATCH_MESSAGES_MAX = 512;
const BATCH_BYTES_MAX = 8 * 1024 * 1024;
/** Snapshots travel in chunks of this size (InstallSnapshot), so none has to fit one message. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** A snapshot larger than this is refused by the receiver rather than buffered. */
const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;
const RECONNECT_BACKOFF_MS = 100;
const MESSAGE_BYTES_MAX = 64 * 1024 * 1024;

interface PeerLink {
  id: number;
  address: string;
  client: RaftApi.RaftTransportClient;
  stream: grpc.ClientWritableStream<RaftApi.RaftBatch> | null;
  queue: Message[];
  writable: boolean;
  retryAtMs: number;
  dropped: number;
}

export interface RaftTransportOptions {
  nodeId: number;
  /** Names the Raft group; batches from another group are refused. */
  group: string;
  host: string;
  port: number;
  peers: ReadonlyMap<number, string>;
  /** Each well-formed message for this node. Must not throw: it runs inside gRPC's stream handler. */
  onMessage: (message: Message) => void;
  logger: Logger;
  /** Chunk size for snapshots on the wire (tests make it small). */
  snapshotChunkBytes?: number;
  /** Adds more gRPC services to the Raft listener before it binds (the controller serves its API beside Raft). */
  services?: (server: grpc.Server) => void;
}

/** A snapshot being received chunk by chunk from one peer. */
interface SnapshotAssembly {
  index: number;
  term: number;
  data: Buffer;
  received: number;
}

/** Splits a snapshot message into chunks; any other message is one wire message. */
export function toWireChunks(message: Message, chunkBytes: number): RaftApi.RaftMessage[] {
  const wire = messageToWire(message);
  if (message.type !== 'snapshot') return [wire];
  const data = message.snapshot.data;
  const chunks: RaftApi.RaftMessage[] = [];
  for (let offset = 0; offset < data.length || offset === 0; offset += chunkBytes) {
    const chunk = data.subarray(offset, Math.min(data.length, offset + chunkBytes));
    chunks.push({ ...wire, snapshot: { ...wire.snapshot, data: chunk, chunkOffset: offset, totalBytes: data.length } });
    if (data.length === 0) break;
  }
  return chunks;
}

function wireBytes(message: RaftApi.RaftMessage): number {
  let bytes = 64;
  for (const entry of message.entries ?? []) bytes += 32 + ((entry.data as Uint8Array | undefined)?.length ?? 0);
  bytes += (message.snapshot?.data as Uint8Array | undefined)?.length ?? 0;
  return bytes;
}

export class RaftTransport {
  private server: grpc.Server | undefined;
  private readonly links = new Map<number, PeerLink>();
  private readonly assemblies = new Map<number, SnapshotAssembly>();
  private flushScheduled = false;
  private stopped = false;
  private readonly channelOptions = {
    'grpc.max_send_message_length': MESSAGE_BYTES_MAX,
    'grpc.max_receive_message_length': MESSAGE_BYTES_MAX,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1_000,
  };

  constructor(private readonly options: RaftTransportOptions) {
    for (const [id, address] of options.peers) if (id !== options.nodeId) this.addPeer(id, address);
  }

  /** Listens for peers; returns the bound port. */
  async start(): Promise<number> {
    const server = new grpc.Server({ 'grpc.max_receive_message_length': MESSAGE_BYTES_MAX });
    server.addService(loadRaftProto().runnel.v1.RaftTransport.service, {
      Send: (call: grpc.ServerReadableStream<RaftApi.RaftBatch__Output, RaftApi.RaftAck>, callback: grpc.sendUnaryData<RaftApi.RaftAck>) => this.receive(call, callback),
    });
    this.options.services?.(server);
    this.server = server;
    return new Promise((resolve, reject) =>
      server.bindAsync(`${this.options.host}:${this.options.port}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
        error === null ? resolve(port) : reject(new Error(`cannot listen for Raft on ${this.options.host}:${this.options.port}: ${error.message}`)),
      ),
    );
  }

  addPeer(id: number, address: string): void {
    if (this.links.has(id)) return;
    const { RaftTransport: Client } = loadRaftProto().runnel.v1;
    this.links.set(id, { id, address, client: new Client(address, grpc.credentials.createInsecure(), this.channelOptions), stream: null, queue: [], writable: true, retryAtMs: 0, dropped: 0 });
  }

  /** Routes messages for `id` to `address` from now on (a member that joined, or whose address the log names). */
  setPeer(id: number, address: string): void {
    if (id === this.options.nodeId) return;
    const link = this.links.get(id);
    if (link?.address === address) return;
    if (link !== undefined) {
      link.stream?.end();
      link.client.close();
      this.links.delete(id);
    }
    this.addPeer(id, address);
  }

  /** Queues messages for their peers; they leave on the next turn of the event loop, batched. */
  send(messages: readonly Message[]): void {
    for (const message of messages) {
      const link = this.links.get(message.to);
      if (link === undefined) continue;
      link.queue.push(message);
      if (link.queue.length > PEER_QUEUE_MESSAGES_MAX) {
        link.queue.splice(0, link.queue.length - PEER_QUEUE_MESSAGES_MAX);
        if (link.dropped++ % 1000 === 0) this.options.logger.warn({ peer: link.id }, 'raft peer queue full: dropping the oldest messages');
      }
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.stopped) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      for (const link of this.links.values()) this.flush(link);
    });
  }

  private flush(link: PeerLink): void {
    if (link.queue.length === 0 || !link.writable || this.stopped) return;
    if (link.stream === null) {
      if (Date.now() < link.retryAtMs) {
        setTimeout(() => this.scheduleFlush(), link.retryAtMs - Date.now()).unref();
        return;
      }
      link.stream = this.openStream(link);
    }
    const chunkBytes = this.options.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES;
    while (link.queue.length > 0 && link.writable) {
      const batch: RaftApi.RaftMessage[] = [];
      let bytes = 0;
      while (link.queue.length > 0 && batch.length < BATCH_MESSAGES_MAX && bytes < BATCH_BYTES_MAX) {
        const message = link.queue.shift()!;
        if (message.type === 'snapshot' && message.snapshot.data.length > chunkBytes) {
          // Each chunk goes in a batch of its own, so that no batch grows past one chunk.
          if (batch.length > 0) link.writable = link.stream.write({ group: this.options.group, messages: batch.splice(0) });
          for (const chunk of toWireChunks(message, chunkBytes)) link.writable = link.stream.write({ group: this.options.group, messages: [chunk] });
          bytes = 0;
          continue;
        }
        const wire = messageToWire(message);
        if (wire.snapshot !== undefined && wire.snapshot !== null) wire.snapshot = { ...wire.snapshot, chunkOffset: 0, totalBytes: message.type === 'snapshot' ? message.snapshot.data.length : 0 };
        batch.push(wire);
        bytes += wireBytes(wire);
      }
      if (batch.length > 0) link.writable = link.stream.write({ group: this.options.group, messages: batch });
    }
  }

  private openStream(link: PeerLink): grpc.ClientWritableStream<RaftApi.RaftBatch> {
    // A stream ends through its callback (grpc-js reports the status there, not always as an
    // 'error' event), through 'error', or through 'close': any of them means reconnect.
    const broken = () => {
      if (link.stream !== stream) return;
      link.stream = null;
      link.writable = true;
      link.queue.length = 0; // what a dead stream held is lost anyway; Raft retransmits
      link.retryAtMs = Date.now() + RECONNECT_BACKOFF_MS;
    };
    const stream: grpc.ClientWritableStream<RaftApi.RaftBatch> = link.client.Send((error) => {
      if (error !== null && !this.stopped && error.code !== grpc.status.CANCELLED) {
        this.options.logger.debug({ peer: link.id, err: error.message }, 'raft stream to peer ended');
      }
      broken();
    });
    stream.on('error', broken);
    stream.on('close', broken);
    stream.on('drain', () => {
      if (link.stream !== stream) return;
      link.writable = true;
      this.flush(link);
    });
    return stream;
  }

  private receive(call: grpc.ServerReadableStream<RaftApi.RaftBatch__Output, RaftApi.RaftAck>, callback: grpc.sendUnaryData<RaftApi.RaftAck>): void {
    let refused = false;
    call.on('data', (batch: RaftApi.RaftBatch__Output) => {
      if (refused) return;
      if (batch.group !== this.options.group) {
        refused = true;
        this.options.logger.warn({ group: batch.group }, 'refusing Raft messages from another group');
        callback({ code: grpc.status.FAILED_PRECONDITION, details: `this node belongs to Raft group '${this.options.group}', not '${batch.group}'` });
        return;
      }
      for (const wire of batch.messages) {
        let message: Message;
        try {
          const whole = wire.type === 'snapshot' ? this.assemble(wire) : wire;
          if (whole === undefined) continue;
          message = messageFromWire(whole);
        } catch (error) {
          this.options.logger.warn({ err: (error as Error).message, type: wire.type, from: wire.from }, 'dropping a malformed Raft message');
          continue;
        }
        if (message.to !== this.options.nodeId) continue;
        // Outside the try: only decoding can make a message malformed. What the node does with a
        // well-formed one is the node's business, and a failure there is no fault of the message.
        this.options.onMessage(message);
      }
    });
    call.on('end', () => {
      if (!refused) callback(null, {});
    });
    call.on('error', () => undefined);
  }

  /**
   * Collects snapshot chunks from one peer in order; returns the whole snapshot message after
   * its last chunk. A chunk out of order or of another snapshot drops what was collected: the
   * leader sends the snapshot again when it is not acknowledged.
   */
  private assemble(wire: RaftApi.RaftMessage__Output): RaftApi.RaftMessage__Output | undefined {
    const snapshot = wire.snapshot;
    if (snapshot === null) throw new Error('snapshot message without a snapshot');
    const data = snapshot.data ?? Buffer.alloc(0);
    const total = snapshot.totalBytes;
    if (total > SNAPSHOT_BYTES_MAX) throw new Error(`snapshot of ${total} bytes is over the limit of ${SNAPSHOT_BYTES_MAX}`);
    if (snapshot.chunkOffset === 0 && data.length === total) {
      this.assemblies.delete(wire.from);
      return wire;
    }
    let assembly = this.assemblies.get(wire.from);
    if (snapshot.chunkOffset === 0) {
      assembly = { index: snapshot.index, term: snapshot.term, data: Buffer.alloc(total), received: 0 };
      this.assemblies.set(wire.from, assembly);
    }
    if (assembly === undefined || assembly.index !== snapshot.index || assembly.term !== snapshot.term || assembly.received !== snapshot.chunkOffset || assembly.data.length !== total || snapshot.chunkOffset + data.length > total) {
      this.assemblies.delete(wire.from);
      return undefined;
    }
    data.copy(assembly.data, assembly.received);
    assembly.received += data.length;
    if (assembly.received < total) return undefined;
    this.assemblies.delete(wire.from);
    return { ...wire, snapshot: { ...snapshot, data: assembly.data, chunkOffset: 0 } };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const link of this.links.values()) {
      link.stream?.end();
      link.client.close();
    }
    // Peers' streams to us never end on their own, so a graceful shutdown would only wait.
    this.server?.forceShutdown();
  }
}
