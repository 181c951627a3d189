// The node's HTTP listener: GET /metrics (Prometheus text format), /healthz (the process answers:
// a liveness probe), /readyz (200 only when the node is ready to serve, 503 naming every rule that
// fails: a readiness probe), /v1/broker (JSON: state, partitions led and followed, recovery
// progress), and /health (200 once start() finished; kept for existing scripts). It listens before
// the node's roles start, so that probes get an answer while logs recover.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { BrokerMetrics } from './metrics.js';
import type { Readiness } from './nodeHealth.js';

/** What the endpoint asks the node, on each request. */
export interface NodeStatusSource {
  readonly started: boolean;
  readiness(): Readiness;
  /** The /v1/broker document. */
  describe(): object;
}

const PATHS = ['/metrics', '/healthz', '/readyz', '/v1/broker', '/health'];

function sendJson(response: ServerResponse, status: number, body: object): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
}

export class HttpEndpoint {
  private server: Server | undefined;

  constructor(
    private readonly metrics: BrokerMetrics,
    private readonly node: NodeStatusSource,
  ) {}

  async listen(host: string, port: number): Promise<number> {
    const server = createServer((request, response) => this.answer(request, response));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address !== null ? address.port : port;
  }

  private answer(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end(`method ${request.method} not allowed: the HTTP listener answers GET only\n`);
      return;
    }
    try {
      switch (path) {
        case '/metrics':
          this.metrics.scrape().then(
            (text) => response.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
            (error: unknown) => response.writeHead(500).end(`collecting metrics failed: ${String(error)}\n`),
          );
          return;
        case '/healthz':
          sendJson(response, 200, { alive: true });
          return;
        case '/readyz': {
          const readiness = this.node.readiness();
          sendJson(response, readiness.ready ? 200 : 503, readiness);
          return;
        }
        case '/v1/broker':
          sendJson(response, 200, this.node.describe());
          return;
        case '/health':
          sendJson(response, this.node.started ? 200 : 503, { ready: this.node.started });
          return;
        default:
          response.writeHead(404).end(`not found: ${path}; try ${PATHS.join(', ')}\n`);
      }
    } catch (error) {
      // A bug in gathering the node's state must not take the listener down with it.
      response.writeHead(500).end(`${path} failed: ${(error as Error).message}\n`);
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
