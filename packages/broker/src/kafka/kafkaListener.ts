// The PLAINTEXT listener: Kafka's wire protocol over TCP. Each connection cuts its byte stream
// into frames and handles its requests one at a time, answering in request order — as Kafka's
// network layer does by muting a connection while a request is in flight, which clients rely on
// (they match responses to requests by order as much as by correlation id). Pipelined requests
// wait in a bounded queue; past the bound the socket is paused, and TCP pushes back on the client.
//
// Bad input costs only its own connection: a frame over socket.request.max.bytes, bytes that do
// not decode, or an API version we do not serve close that connection with one log line naming the
// peer and the problem; every other connection goes on.
import net from 'node:net';
import type { Logger } from '@runnel/common';
import {
  API_KEYS,
  FrameDecoder,
  KafkaProtocolError,
  UnsupportedApiVersionError,
  decodeRequest,
  type KafkaRequest,
} from '@runnel/kafka-protocol';
import type { BrokerMetrics } from '../metrics.js';
import type { RequestMemoryPool } from '../requestMemoryPool.js';
import type { KafkaClient, KafkaRequestHandler } from './kafkaRequestHandler.js';

/** Requests received on one connection and not yet started: past this, reading pauses. */
export const CONNECTION_QUEUED_REQUESTS_MAX = 64;
/** Bytes of such requests: past this, reading pauses (a single larger request is still taken). */
export const CONNECTION_QUEUED_BYTES_MAX = 16 * 1024 * 1024;

export interface KafkaListenerOptions {
  readonly host: string;
  /** 0: any free port (tests). */
  readonly port: number;
  /** socket.request.max.bytes: a larger frame closes its connection before any of it is buffered. */
  readonly maxRequestBytes: number;
  readonly handler: KafkaRequestHandler;
  /** queued.max.request.bytes, shared with the gRPC door: produce requests hold their bytes until answered. */
  readonly memory: RequestMemoryPool;
  readonly metrics: BrokerMetrics;
  readonly logger: Logger;
}

export class KafkaListener {
  private readonly server: net.Server;
  private readonly connections = new Set<KafkaConnection>();
  private closing = false;

  constructor(private readonly options: KafkaListenerOptions) {
    this.server = net.createServer((socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      const connection = new KafkaConnection(socket, options, () => this.connections.delete(connection));
      this.connections.add(connection);
    });
  }

  /** Binds the listener; resolves with the port it listens on. */
  listen(): Promise<number> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(new Error(`cannot listen for PLAINTEXT (Kafka) on ${host}:${port}: ${error.message}`));
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.options.logger.error({ err: error }, 'the Kafka listener failed'));
        const address = this.server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });
  }

  /** Open connections, for tests and metrics. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Stops accepting connections and closes every open one: requests not yet started are dropped,
   * a request in flight may finish (a long poll answers at once) within `graceMs`, then its
   * connection is cut.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((connection) => connection.drain(graceMs)));
    await stopped;
  }
}

/** One client connection: its frames, its queue of requests, and the one request in flight. */
class KafkaConnection {
  private readonly frames: FrameDecoder;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private busy = false;
  /** Set once the connection is being closed: no further request is started. */
  private closing = false;
  private readonly abort = new AbortController();
  private readonly finished: Promise<void>;
  private readonly peer: string;
  private readonly client: KafkaClient;

  constructor(
    private readonly socket: net.Socket,
    private readonly options: KafkaListenerOptions,
    onClosed: () => void,
  ) {
    this.frames = new FrameDecoder(options.maxRequestBytes);
    const address = (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');
    this.peer = `${address}:${socket.remotePort ?? 0}`;
    this.client = { clientId: null, clientHost: `/${address}`, closed: this.abort.signal };
    socket.setNoDelay(true);
    this.finished = new Promise((resolve) => {
      socket.once('close', () => {
        this.closing = true;
        this.abort.abort();
        onClosed();
        resolve();
      });
    });
    // A reset or a write to a peer that went away: the close that follows is all there is to do.
    socket.on('error', (error) => options.logger.debug({ peer: this.peer, err: error.message }, 'Kafka connection error'));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => {
      if (this.frames.pendingBytes > 0) this.fail(`the connection ended inside a request (${this.frames.pendingBytes} bytes of it received)`);
    });
  }

  /** Stops taking requests; ends the connection once the request in flight (if any) is answered, or after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    this.socket.pause();
    this.dropQueue();
    this.abort.abort();
    if (!this.busy) this.endGracefully();
    const timer = setTimeout(() => this.socket.destroy(), graceMs);
    await this.finished;
    clearTimeout(timer);
  }

  private receive(chunk: Buffer): void {
    if (this.closing) return;
    let frames: Buffer[];
    try {
      frames = this.frames.push(chunk);
    } catch (error) {
      // FrameSizeError: the size prefix is over socket.request.max.bytes (or negative).
      this.fail((error as Error).message);
      return;
    }
    for (const frame of frames) {
      this.queue.push(frame);
      this.queuedBytes += frame.length;
    }
    if (this.queue.length >= CONNECTION_QUEUED_REQUESTS_MAX || this.queuedBytes >= CONNECTION_QUEUED_BYTES_MAX) this.socket.pause();
    this.startNext();
  }

  private startNext(): void {
    if (this.busy || this.closing) return;
    const frame = this.queue.shift();
    if (frame === undefined) return;
    this.queuedBytes -= frame.length;
    if (this.socket.isPaused() && this.queue.length < CONNECTION_QUEUED_REQUESTS_MAX && this.queuedBytes < CONNECTION_QUEUED_BYTES_MAX) this.socket.resume();
    this.busy = true;
    this.serve(frame)
      .catch((error: unknown) => {
        // A handler that throws, or a response that does not encode, is a bug of ours: the client
        // cannot be given a meaningful answer, so it hears a closed connection.
        this.options.logger.error({ peer: this.peer, api: apiNameOf(frame), err: error }, 'Kafka request failed; closing the connection');
        this.close();
      })
      .finally(() => {
        this.busy = false;
        if (this.closing) {
          this.endGracefully();
          return;
        }
        this.startNext();
      });
  }

  private async serve(frame: Buffer): Promise<void> {
    let request: KafkaRequest;
    try {
      request = decodeRequest(frame);
    } catch (error) {
      await this.refuse(error, frame);
      return;
    }
    const api = `kafka.${request.apiName}`;
    this.options.metrics.requests.inc({ api });
    const stopTimer = this.options.metrics.requestSeconds.startTimer({ api });
    const heldBytes = request.apiKey === API_KEYS.Produce ? await this.holdMemory(frame.length) : 0;
    try {
      if (this.closing) return;
      const outcome = await this.options.handler.handle(request, { ...this.client, clientId: request.clientId });
      stopTimer();
      if (outcome.response !== null) await this.write(outcome.response);
      else if (outcome.closeBecause !== null) {
        this.options.logger.info({ peer: this.peer, api: request.apiName, correlationId: request.correlationId }, `closing Kafka connection: ${outcome.closeBecause}`);
        this.close();
      }
    } finally {
      if (heldBytes > 0) this.options.memory.release(heldBytes);
    }
  }

  /** A request that does not decode, or that we do not serve at its version. */
  private async refuse(error: unknown, frame: Buffer): Promise<void> {
    if (error instanceof UnsupportedApiVersionError) {
      // An ApiVersions request newer than ours: Kafka's version negotiation (KIP-511) answers it,
      // on a connection that stays open. So is a well-formed request for an API we do not serve;
      // bytes that are not even a request header are garbage, and close the connection below.
      if (error.apiKey === API_KEYS.ApiVersions) {
        this.options.logger.debug({ peer: this.peer, apiVersion: error.apiVersion }, 'answered an ApiVersions request newer than ours with UNSUPPORTED_VERSION');
        await this.write(this.options.handler.unsupportedVersionAnswer(error));
        return;
      }
      if (!this.options.handler.serves(error.apiKey) && hasRequestHeader(frame)) {
        this.options.logger.info({ peer: this.peer, apiKey: error.apiKey, apiVersion: error.apiVersion }, `answered UNSUPPORTED_VERSION to ${this.peer}: API key ${error.apiKey} is not served here`);
        await this.write(this.options.handler.unsupportedVersionAnswer(error));
        return;
      }
      if (this.options.handler.serves(error.apiKey)) {
        this.fail(`${error.message} (correlation id ${error.correlationId}, client ${JSON.stringify(error.clientId ?? null)})`);
        return;
      }
    }
    if (error instanceof KafkaProtocolError) {
      this.fail(`malformed request: ${error.message}`);
      return;
    }
    throw error;
  }

  /** Writes a response; resolves once the socket can take more, so a client that does not read stops being served. */
  private write(response: Buffer): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    if (this.socket.write(response)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Takes a produce request's bytes from queued.max.request.bytes, waiting (and so reading no more) until they fit. */
  private holdMemory(bytes: number): Promise<number> {
    return new Promise((resolve) => {
      if (this.options.memory.acquire(bytes, () => resolve(bytes))) resolve(bytes);
      else this.options.metrics.requestsWaitingForMemory.inc();
    });
  }

  /** Bad input: one log line naming the peer and the problem, and the connection goes. */
  private fail(problem: string): void {
    if (this.closing) return;
    this.options.logger.warn({ peer: this.peer, listener: 'PLAINTEXT' }, `closing Kafka connection from ${this.peer}: ${problem}`);
    this.close();
  }

  private close(): void {
    this.closing = true;
    this.dropQueue();
    this.socket.destroy();
  }

  /** Ends the connection once what was written has gone out. */
  private endGracefully(): void {
    if (!this.socket.destroyed) this.socket.end(() => this.socket.destroy());
  }

  private dropQueue(): void {
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}

/** The API a frame names, for a log line (`key N` when we have no name for it). */
function apiNameOf(frame: Buffer): string {
  if (frame.length < 2) return 'unknown';
  const apiKey = frame.readInt16BE(0);
  return Object.entries(API_KEYS).find(([, key]) => key === apiKey)?.[0] ?? `key ${apiKey}`;
}

/**
 * Whether a frame starts like a request header of any version: API key, a version that is not
 * negative, correlation id, and a client id string (int16 length, -1 for null) that fits in the
 * frame. A request for an API we do not know has one; random bytes almost never do.
 */
function hasRequestHeader(frame: Buffer): boolean {
  if (frame.length < 10 || frame.readInt16BE(2) < 0) return false;
  const clientIdLength = frame.readInt16BE(8);
  return clientIdLength === -1 || (clientIdLength >= 0 && 10 + clientIdLength <= frame.length);
}
