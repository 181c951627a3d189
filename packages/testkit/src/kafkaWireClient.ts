// A raw Kafka protocol client for tests: one TCP connection, requests encoded with
// @runnel/kafka-protocol exactly as given (any API, any version, pipelined or not), responses
// matched to requests by correlation id and decoded at the version asked. Nothing is hidden or
// retried, so a test sees what the broker put on the wire, including a closed connection.
import net from 'node:net';
import { FrameDecoder, decodeResponse, encodeRequest, responseCorrelationId, type ApiName, type RequestInput, type ResponseOf } from '@runnel/kafka-protocol';

interface Pending {
  readonly resolve: (frame: Buffer) => void;
  readonly reject: (error: Error) => void;
}

export class KafkaWireClient {
  private readonly frames = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  /** Correlation ids in the order responses arrived, to check a broker answers in request order. */
  readonly answeredOrder: number[] = [];
  private nextCorrelationId = 1;
  private closeReason: Error | null = null;
  /** Resolves when the broker (or the test) closes the connection. */
  readonly closed: Promise<void>;

  private constructor(
    private readonly socket: net.Socket,
    readonly clientId: string,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.frames.push(chunk)) {
        const correlationId = responseCorrelationId(frame);
        this.answeredOrder.push(correlationId);
        const waiter = this.pending.get(correlationId);
        this.pending.delete(correlationId);
        waiter?.resolve(frame);
      }
    });
    socket.on('error', (error) => (this.closeReason ??= error));
    socket.once('close', () => {
      const reason = this.closeReason ?? new Error('the broker closed the connection');
      for (const waiter of this.pending.values()) waiter.reject(reason);
      this.pending.clear();
    });
  }

  static connect(address: string, clientId = 'runnel-test'): Promise<KafkaWireClient> {
    const [host, port] = splitAddress(address);
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host);
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new KafkaWireClient(socket, clientId));
      });
    });
  }

  /** Sends one request and resolves with its decoded response body. */
  async send<N extends ApiName>(apiName: N, apiVersion: number, body: RequestInput<N>): Promise<ResponseOf<N>> {
    const { frame, correlationId } = this.encode(apiName, apiVersion, body);
    const response = this.expect(correlationId);
    this.socket.write(frame);
    return decodeResponse(apiName, apiVersion, await response).body;
  }

  /** Sends a request that gets no response (an acks=0 produce); returns its correlation id. */
  sendOneWay<N extends ApiName>(apiName: N, apiVersion: number, body: RequestInput<N>): number {
    const { frame, correlationId } = this.encode(apiName, apiVersion, body);
    this.socket.write(frame);
    return correlationId;
  }

  /** The encoded request and the correlation id it carries, for a test that writes it itself. */
  encode<N extends ApiName>(apiName: N, apiVersion: number, body: RequestInput<N>): { frame: Buffer; correlationId: number } {
    const correlationId = this.nextCorrelationId++;
    return { frame: encodeRequest(apiName, { apiVersion, correlationId, clientId: this.clientId }, body), correlationId };
  }

  /** Resolves with the raw response frame (without its size) carrying `correlationId`. */
  expect(correlationId: number): Promise<Buffer> {
    if (this.socket.destroyed) return Promise.reject(this.closeReason ?? new Error('the connection is closed'));
    return new Promise((resolve, reject) => this.pending.set(correlationId, { resolve, reject }));
  }

  /** Writes bytes as they are: frames a test built, garbage, a truncated request. */
  writeRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Ends the test's side of the connection. */
  end(): void {
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
  }
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at).replace(/^\[(.*)\]$/, '$1'), Number(address.slice(at + 1))];
}
