#!/usr/bin/env node
// The image's HEALTHCHECK: exit 0 when the node answers GET /readyz with 200. The HTTP port comes
// from the node's own configuration (the file named on the command line plus RUNNEL_* variables,
// read exactly as `runnel node` reads them, by the cli's exported loadBrokerConfig), so moving the
// HTTP listener moves the check with it.
import { loadBrokerConfig } from '../../packages/cli/dist/index.js';

const REQUEST_TIMEOUT_MS = 2_000;

async function probe(configFile) {
  const http = loadBrokerConfig({ config: configFile, set: [] }).listener('HTTP');
  if (http === undefined) return 'listeners has no HTTP listener, so /readyz cannot be asked';
  // A wildcard address names no host to connect to; the node is on this machine.
  const host = http.host === '0.0.0.0' || http.host === '' ? '127.0.0.1' : http.host === '[::]' ? '[::1]' : http.host;
  const url = `http://${host}:${http.port}/readyz`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return response.status === 200 ? undefined : `${url} answered ${response.status}`;
  } catch (error) {
    return `${url}: ${error.cause?.code ?? error.message}`;
  }
}

const problem = await probe(process.argv[2] ?? '/etc/runnel/server.properties').catch((error) => error.message);
if (problem !== undefined) {
  process.stdout.write(`not ready: ${problem}\n`);
  process.exit(1);
}
process.stdout.write('ready\n');
