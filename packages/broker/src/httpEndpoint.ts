// GET /metrics (Prometheus text format) and GET /health (200 once the node serves requests).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export class HttpEndpoint {
  private server: Server | undefined;
  private ready = false;

  constructor(private readonly registry: Registry) {}

  markReady(): void {
    this.ready = true;
  }

  async listen(host: string, port: number): Promise<number> {
    const server = createServer((request, response) => {
      if (request.method === 'GET' && request.url === '/metrics') {
        this.registry.metrics().then(
          (text) => response.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
          (error: unknown) => response.writeHead(500).end(String(error)),
        );
      } else if (request.method === 'GET' && request.url === '/health') {
        response.writeHead(this.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready: this.ready }));
      } else {
        response.writeHead(404).end('not found: try /metrics or /health\n');
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    const address = server.address();
    return typeof address === 'object' && address !== null ? address.port : port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
