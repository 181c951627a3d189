// A TCP proxy in the test process that can cut the link it stands for: tests put one in front of a
// node's port and hand the proxy's address to whoever should reach the node through it. `cut()`
// resets every open connection and resets each new one as soon as it is accepted (so gRPC sees a
// refused/reset connection at once instead of waiting for a timeout), until `heal()`. The proxy
// dials its target anew for each connection, so it outlives restarts of the process behind it.
// It forwards bytes on this process's event loop, so nothing passes while the loop is blocked.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface FaultProxyOptions {
  /** Address to listen on; 127.0.0.1 when absent. */
  listenHost?: string;
  /** Port to listen on; a free one (chosen by the OS) when absent or 0. */
  listenPort?: number;
}

interface Link {
  client: Socket;
  upstream: Socket;
}

/** Closes a socket abruptly: an RST where the socket can send one, else a plain destroy. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    // resetAndDestroy needs a connected TCP handle; a socket still connecting is just destroyed.
    if (!socket.connecting && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  } catch {
    socket.destroy();
  }
}

export class FaultProxy {
  private readonly links = new Set<Link>();
  private cutNow = false;
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    /** Where each connection is forwarded. */
    readonly target: { readonly host: string; readonly port: number },
    private readonly listenHost: string,
    /** The port the proxy listens on. */
    readonly port: number,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Starts listening (on 127.0.0.1 and a free port unless told otherwise) and forwards each connection to `target`. */
  static async start(target: { host: string; port: number }, options: FaultProxyOptions = {}): Promise<FaultProxy> {
    const listenHost = options.listenHost ?? '127.0.0.1';
    // allowHalfOpen: a FIN from one side is passed on as a FIN, and the other direction keeps flowing.
    // The connection handler is attached in the constructor, before any connection can be accepted.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.listenPort ?? 0, listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    return new FaultProxy(server, { host: target.host, port: target.port }, listenHost, port);
  }

  /** host:port to dial instead of the target. */
  get address(): string {
    const host = this.listenHost === '0.0.0.0' || this.listenHost === '' ? '127.0.0.1' : this.listenHost;
    return `${host}:${this.port}`;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  /** Open connections currently passing through (for tests and diagnostics). */
  get connections(): number {
    return this.links.size;
  }

  /** Resets every open connection (both sides) and every new one, until `heal()`. */
  cut(): void {
    this.cutNow = true;
    for (const link of [...this.links]) this.drop(link);
  }

  /** New connections pass again (connections cut earlier stay closed; clients reconnect). */
  heal(): void {
    this.cutNow = false;
  }

  /** Stops listening and closes every open connection. */
  async close(): Promise<void> {
    if (this.closed === undefined) {
      this.closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const link of [...this.links]) this.drop(link);
    }
    return this.closed;
  }

  private accept(client: Socket): void {
    client.on('error', () => {});
    if (this.cutNow || this.closed !== undefined) {
      reset(client);
      return;
    }
    const upstream = connect({ host: this.target.host, port: this.target.port, allowHalfOpen: true });
    upstream.on('error', () => {});
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const link: Link = { client, upstream };
    this.links.add(link);
    // pipe() passes data with back-pressure and a FIN on as end(). A side that fails (reset, or a
    // target that refuses the connection) resets the other; a side that closes cleanly ends the
    // other once its pending data is written.
    client.pipe(upstream);
    upstream.pipe(client);
    const onClose = (other: Socket) => (hadError: boolean) => {
      if (hadError) this.drop(link);
      else other.end();
      if (link.client.destroyed && link.upstream.destroyed) this.links.delete(link);
    };
    client.once('close', onClose(upstream));
    upstream.once('close', onClose(client));
    client.resume();
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    reset(link.client);
    reset(link.upstream);
  }
}
