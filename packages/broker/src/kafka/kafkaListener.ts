// The PLAINTEXT listener: Kafka's wire protocol over TCP. Each connection cuts its byte stream
// into frames and answers its requests in the order they came, which clients rely on (they match
// responses to requests by order as much as by correlation id). Kafka's network layer gets that
// order by muting a connection while a request is in flight; here produce requests may run beside
// each other (a client's pipelined produce requests wait for their acks together, appended in
// arrival order) and everything else runs alone, as in Kafka. Requests received and not yet
// answered are bounded per connection; past the bound the socket is paused, and TCP pushes back on
// the client.
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

/** Requests received on one connection and not yet answered: past this, reading pauses. */
export const CONNECTION_QUEUED_REQUESTS_MAX = 64;
/** Bytes of requests received and not yet started: past this, reading pauses (a single larger request is still taken). */
export const CONNECTION_QUEUED_BYTES_MAX = 16 * 1024 * 1024;

export interface KafkaListenerOptions {
  readonly host: string;
  /** 0: any free port (tests). */
  readonly port: number;
  /** socket.request.max.bytes: a larger frame closes its connection before any of it is buffered. */
  readonly maxRequestBytes: number;
  /** connections.max.idle.ms: a connection with nothing in flight and no traffic this long is closed; -1 never. */
  readonly idleTimeoutMs: number;
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

/** What to do when a request's turn to be answered comes. */
type Reply =
  | { readonly kind: 'respond'; readonly bytes: Buffer }
  /** An acks=0 produce that succeeded, or a request dropped because the connection is closing. */
  | { readonly kind: 'silent' }
  /** An acks=0 produce that failed: Kafka tells the client only by closing the connection. */
  | { readonly kind: 'close'; readonly reason: string; readonly api: string; readonly correlationId: number }
  /** Bad input: one warning line, and the connection goes. */
  | { readonly kind: 'fail'; readonly problem: string }
  /** A handler that threw or a response that did not encode: a bug of ours. */
  | { readonly kind: 'bug'; readonly api: string; readonly error: unknown };

/** A request taken off the queue and started: answered in the order taken. */
interface Exchange {
  /** Only produce requests run beside others (see startRequests). */
  readonly pipelined: boolean;
  /** Bytes held in queued.max.request.bytes until this request is answered. */
  readonly heldBytes: number;
  readonly reply: Promise<Reply>;
}

/** One client connection: its frames, the requests not yet started, and those started and not yet answered. */
class KafkaConnection {
  private readonly frames: FrameDecoder;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Started requests, in the order they arrived; the first is the next to be answered. */
  private readonly exchanges: Exchange[] = [];
  /** A produce request waits for queued.max.request.bytes: nothing after it starts until it has. */
  private waitingForMemory = false;
  /** The answering loop runs (one at a time). */
  private answering = false;
  /** False once the connection is closing, drained or has sent bad input: no further request starts. */
  private takingRequests = true;
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
        this.takingRequests = false;
        this.dropQueue();
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
    // As Kafka's selector does: clients reconnect when they need to, and a broker should not keep
    // the sockets of clients that went away without a FIN (a dead host, a dropped NAT entry) forever.
    if (options.idleTimeoutMs > 0) {
      socket.setTimeout(options.idleTimeoutMs);
      socket.on('timeout', () => {
        // A request in flight (a long poll) is not idleness. Node does not re-arm a socket timeout
        // that has fired, so it is set again to count from the traffic that follows.
        if (this.exchanges.length > 0 || this.queue.length > 0) {
          socket.setTimeout(options.idleTimeoutMs);
          return;
        }
        options.logger.debug({ peer: this.peer, idleMs: options.idleTimeoutMs }, 'closing idle Kafka connection (connections.max.idle.ms)');
        this.close();
      });
    }
  }

  /** Stops taking requests; ends the connection once the requests started are answered, or after `graceMs`. */
  async drain(graceMs: number): Promise<void> {
    this.takingRequests = false;
    this.socket.pause();
    this.dropQueue();
    this.abort.abort();
    if (!this.answering && this.exchanges.length === 0) this.endGracefully();
    const timer = setTimeout(() => this.socket.destroy(), graceMs);
    await this.finished;
    clearTimeout(timer);
  }

  private receive(chunk: Buffer): void {
    if (!this.takingRequests) return;
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
    this.startRequests();
  }

  /**
   * Starts the queued requests that may run now, in arrival order. Kafka mutes a connection while
   * a request is in flight; here, as in Redpanda, produce requests run beside earlier produce
   * requests, because a handler appends its batches before its first await: starting them in
   * arrival order appends them in arrival order, while each waits for its acks in parallel. Every
   * other request runs alone (after everything before it is answered, and before anything after it
   * starts), so group, offset and admin requests keep Kafka's one-at-a-time order.
   */
  private startRequests(): void {
    while (this.takingRequests && !this.waitingForMemory && this.queue.length > 0) {
      const frame = this.queue[0]!;
      const pipelined = frame.length >= 2 && frame.readInt16BE(0) === API_KEYS.Produce;
      if (this.exchanges.length > 0 && !(pipelined && this.exchanges.every((exchange) => exchange.pipelined))) break;
      this.queue.shift();
      this.queuedBytes -= frame.length;
      this.exchanges.push(this.start(frame, pipelined));
    }
    this.regulateReading();
    void this.answer();
  }

  /** Reads while the requests received and not yet answered are within the connection's bounds. */
  private regulateReading(): void {
    const full = this.queue.length + this.exchanges.length >= CONNECTION_QUEUED_REQUESTS_MAX || this.queuedBytes >= CONNECTION_QUEUED_BYTES_MAX;
    if (full && !this.socket.isPaused()) this.socket.pause();
    else if (!full && this.takingRequests && this.socket.isPaused()) this.socket.resume();
  }

  /** Decodes a request and calls its handler now (or, for a produce request, once its bytes fit in the memory pool). */
  private start(frame: Buffer, pipelined: boolean): Exchange {
    let request: KafkaRequest;
    try {
      request = decodeRequest(frame);
    } catch (error) {
      const reply = this.refusal(error, frame);
      if (reply.kind === 'fail') this.takingRequests = false;
      return { pipelined, heldBytes: 0, reply: Promise.resolve(reply) };
    }
    const api = `kafka.${request.apiName}`;
    this.options.metrics.requests.inc({ api, listener: 'PLAINTEXT' });
    const stopTimer = this.options.metrics.requestSeconds.startTimer({ api, listener: 'PLAINTEXT' });
    let settle!: (reply: Reply) => void;
    const reply = new Promise<Reply>((resolve) => (settle = resolve));
    const run = (): void => {
      if (!this.takingRequests) {
        settle({ kind: 'silent' });
        return;
      }
      this.options.handler.handle(request, { ...this.client, clientId: request.clientId }).then(
        (outcome) => {
          stopTimer();
          if (outcome.response !== null) settle({ kind: 'respond', bytes: outcome.response });
          else if (outcome.closeBecause !== null) settle({ kind: 'close', reason: outcome.closeBecause, api: request.apiName, correlationId: request.correlationId });
          else settle({ kind: 'silent' });
        },
        (error: unknown) => settle({ kind: 'bug', api: request.apiName, error }),
      );
    };
    const heldBytes = request.apiKey === API_KEYS.Produce ? frame.length : 0;
    if (heldBytes > 0 && !this.options.memory.acquire(heldBytes, () => queueMicrotask(() => this.granted(run)))) {
      this.waitingForMemory = true;
      this.options.metrics.requestsWaitingForMemory.inc();
    } else {
      run();
    }
    return { pipelined, heldBytes, reply };
  }

  /** A produce request's bytes were taken from the pool: it runs, and the requests after it may start. */
  private granted(run: () => void): void {
    this.waitingForMemory = false;
    run();
    this.startRequests();
  }

  /**
   * Answers the started requests in the order they arrived, each once its handler is done. A
   * request's bytes go back to the pool once its answer is written (or the connection is gone),
   * and a client that does not read its answers stops being served: this loop waits for the
   * socket to drain, and reading stops at the connection's bound.
   */
  private async answer(): Promise<void> {
    if (this.answering) return;
    this.answering = true;
    try {
      while (this.exchanges.length > 0) {
        const exchange = this.exchanges[0]!;
        await this.deliver(await exchange.reply);
        this.exchanges.shift();
        if (exchange.heldBytes > 0) this.options.memory.release(exchange.heldBytes);
        this.startRequests();
      }
    } finally {
      this.answering = false;
    }
    if (!this.takingRequests) this.endGracefully();
  }

  private async deliver(reply: Reply): Promise<void> {
    switch (reply.kind) {
      case 'respond':
        await this.write(reply.bytes);
        return;
      case 'silent':
        return;
      case 'close':
        this.options.logger.info({ peer: this.peer, api: reply.api, correlationId: reply.correlationId }, `closing Kafka connection: ${reply.reason}`);
        this.close();
        return;
      case 'fail':
        this.fail(reply.problem);
        return;
      case 'bug':
        // The client cannot be given a meaningful answer, so it hears a closed connection.
        this.options.logger.error({ peer: this.peer, api: reply.api, err: reply.error }, 'Kafka request failed; closing the connection');
        this.close();
    }
  }

  /** What to answer a request that does not decode, or that we do not serve at its version. */
  private refusal(error: unknown, frame: Buffer): Reply {
    if (error instanceof UnsupportedApiVersionError) {
      // An ApiVersions request newer than ours: Kafka's version negotiation (KIP-511) answers it,
      // on a connection that stays open. So is a well-formed request for an API we do not serve;
      // bytes that are not even a request header are garbage, and close the connection below.
      if (error.apiKey === API_KEYS.ApiVersions) {
        this.options.logger.debug({ peer: this.peer, apiVersion: error.apiVersion }, 'answered an ApiVersions request newer than ours with UNSUPPORTED_VERSION');
        return { kind: 'respond', bytes: this.options.handler.unsupportedVersionAnswer(error) };
      }
      if (!this.options.handler.serves(error.apiKey) && hasRequestHeader(frame)) {
        this.options.logger.info({ peer: this.peer, apiKey: error.apiKey, apiVersion: error.apiVersion }, `answered UNSUPPORTED_VERSION to ${this.peer}: API key ${error.apiKey} is not served here`);
        return { kind: 'respond', bytes: this.options.handler.unsupportedVersionAnswer(error) };
      }
      if (this.options.handler.serves(error.apiKey)) {
        return { kind: 'fail', problem: `${error.message} (correlation id ${error.correlationId}, client ${JSON.stringify(error.clientId ?? null)})` };
      }
    }
    if (error instanceof KafkaProtocolError) return { kind: 'fail', problem: `malformed request: ${error.message}` };
    return { kind: 'bug', api: apiNameOf(frame), error };
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

  /** Bad input: one log line naming the peer and the problem, and the connection goes. */
  private fail(problem: string): void {
    if (this.socket.destroyed) return;
    this.options.logger.warn({ peer: this.peer, listener: 'PLAINTEXT' }, `closing Kafka connection from ${this.peer}: ${problem}`);
    this.close();
  }

  private close(): void {
    this.takingRequests = false;
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
