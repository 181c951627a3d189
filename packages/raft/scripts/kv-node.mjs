#!/usr/bin/env node
// One member of the example replicated key-value store, as a real process (the three-process
// Raft tests run three of these):
//   node packages/raft/scripts/kv-node.mjs --id 1 --data-dir DIR --raft 127.0.0.1:9292 --http 127.0.0.1:9500 \
//        --voters 1@127.0.0.1:9292,2@127.0.0.1:9293,3@127.0.0.1:9294 [--no-sync] [--tick-ms 50]
//        [--snapshot-every 2000] [--retain 200]
// HTTP: PUT /kv/KEY (body = value) on the leader; GET /kv/KEY (linearizable; ?local=1 reads this
// member's state without asking the leader); GET /status. A follower answers writes with 421
// and the leader's id.
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createLogger } from '@runnel/common';
import { KvStateMachine, RaftHost, encodeKvCommand } from '../dist/host/index.js';

const { values } = parseArgs({
  options: {
    id: { type: 'string' },
    'data-dir': { type: 'string' },
    raft: { type: 'string' },
    http: { type: 'string' },
    voters: { type: 'string' },
    'no-sync': { type: 'boolean', default: false },
    'tick-ms': { type: 'string', default: '50' },
    'snapshot-every': { type: 'string', default: '2000' },
    retain: { type: 'string', default: '200' },
  },
});
for (const name of ['id', 'data-dir', 'raft', 'http', 'voters']) {
  if (values[name] === undefined) {
    process.stderr.write(`kv-node: --${name} is required\n`);
    process.exit(2);
  }
}
const id = Number(values.id);
const voters = new Map(values.voters.split(',').map((entry) => {
  const [voterId, address] = entry.split('@');
  return [Number(voterId), address];
}));
const [raftHost, raftPort] = values.raft.split(':');
const [httpHost, httpPort] = values.http.split(':');
const logger = createLogger({ name: 'kv-node', bindings: { nodeId: id } });
const stateMachine = new KvStateMachine();
const host = new RaftHost({
  id, voters, group: 'kv-example', dataDir: values['data-dir'], listenHost: raftHost, listenPort: Number(raftPort),
  stateMachine, logger, sync: !values['no-sync'], tickMs: Number(values['tick-ms']), snapshotEveryEntries: Number(values['snapshot-every']), retainEntries: Number(values.retain),
  onFatal: (error) => {
    process.stderr.write(`kv-node ${id}: raft node failed, exiting: ${error.message}\n`);
    process.exit(1);
  },
});
await host.start();

function send(response, status, body) {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const server = createServer((request, response) => {
  const url = new URL(request.url, 'http://x');
  if (url.pathname === '/status') {
    const status = host.status();
    return send(response, 200, { id, role: status.role, term: status.term, leader: status.leader, commit: status.commit, applied: host.appliedIndex, lastIndex: status.lastIndex, firstIndex: status.firstIndex });
  }
  const match = /^\/kv\/(.+)$/.exec(url.pathname);
  if (match === null) return send(response, 404, { error: 'try /kv/KEY or /status' });
  const key = decodeURIComponent(match[1]);
  if (request.method === 'PUT') {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const status = host.status();
      if (status.role !== 'leader') return send(response, 421, { error: 'not the leader', leader: status.leader });
      host.propose(encodeKvCommand({ op: 'put', key, value: Buffer.concat(chunks).toString('utf8') })).then(
        (result) => send(response, 200, result),
        (error) => send(response, 503, { error: error.message }),
      );
    });
    return;
  }
  if (request.method === 'GET') {
    if (url.searchParams.get('local') === '1') {
      const value = stateMachine.get(key);
      return value === undefined ? send(response, 404, { error: 'no such key' }) : send(response, 200, { value });
    }
    host.linearizableRead().then(
      () => {
        const value = stateMachine.get(key);
        return value === undefined ? send(response, 404, { error: 'no such key' }) : send(response, 200, { value });
      },
      (error) => send(response, 503, { error: error.message }),
    );
    return;
  }
  send(response, 405, { error: 'PUT or GET' });
});
server.listen(Number(httpPort), httpHost, () => {
  logger.info({ raftPort: host.port, httpPort: server.address().port }, 'kv node ready');
});
const stop = async () => {
  server.close();
  await host.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
