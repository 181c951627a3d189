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
/** Messages per RaftBatch on the wire. */
const BATCH_MESSAGES_MAX = 512;
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
  onMessage: (message: Message) => void;
  logger: Logger;
}

export class RaftTransport {
  private server: grpc.Server | undefined;
  private readonly links = new Map<number, PeerLink>();
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
    while (link.queue.length > 0 && link.writable) {
      const messages = link.queue.splice(0, BATCH_MESSAGES_MAX);
      link.writable = link.stream.write({ group: this.options.group, messages: messages.map(messageToWire) });
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
        try {
          const message = messageFromWire(wire);
          if (message.to !== this.options.nodeId) continue;
          this.options.onMessage(message);
        } catch (error) {
          this.options.logger.warn({ err: (error as Error).message, type: wire.type, from: wire.from }, 'dropping a malformed Raft message');
        }
      }
    });
    call.on('end', () => {
      if (!refused) callback(null, {});
    });
    call.on('error', () => undefined);
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
