#!/usr/bin/env node
// One member of a consumer group for scripts/bench/consumer-group.mjs, in its own process so that
// the members of a group run in parallel as real deployments do. It subscribes, polls, counts and
// reports on stdout, one JSON object a line:
//   {"event":"ready","atMs"}                                the client is loaded, about to subscribe
//   {"event":"assigned","atMs","generation","partitions"}   after each rebalance (the whole assignment)
//   {"event":"polled","atMs","ranges":[[partition,first,last],...]}   each poll that returned records
//   {"event":"commit","atMs","ms","error"?}                 each synchronous commit (--commit sync)
//   {"event":"closed","atMs"}                               after close(), the last line
// A polled line is written before the commit that follows it, so whatever the group committed
// has been reported even if the process is SIGKILLed right after the commit.
// Standard input: "go" resumes fetching (with --gate, partitions stay paused until then, so that
// a throughput run starts once the whole group is assigned), "stop" closes and exits; so does the
// end of standard input (the benchmark died).
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: {
    repo: { type: 'string' },
    bootstrap: { type: 'string' },
    topic: { type: 'string' },
    group: { type: 'string' },
    'session-timeout-ms': { type: 'string', default: '10000' },
    'heartbeat-interval-ms': { type: 'string', default: '1000' },
    commit: { type: 'string', default: 'auto' },
    gate: { type: 'boolean', default: false },
    'max-s': { type: 'string', default: '600' },
  },
});
for (const name of ['repo', 'bootstrap', 'topic', 'group']) {
  if (values[name] === undefined) {
    process.stderr.write(`consumer-group-worker: --${name} is required\n`);
    process.exit(2);
  }
}
const syncCommits = values.commit === 'sync';
/** Short, so that a stop is noticed quickly: a poll runs to its end before the worker closes. */
const POLL_TIMEOUT_MS = 200;
const { Consumer } = await import(pathToFileURL(join(values.repo, 'packages', 'client', 'dist', 'index.js')).href);

const emit = (event) => process.stdout.write(`${JSON.stringify({ ...event, atMs: event.atMs ?? Date.now() })}\n`);
const logTo = (level) => (fields, message) => process.stderr.write(`${new Date().toISOString()} ${level} ${message ?? ''} ${JSON.stringify(fields)}\n`);
// The client's logger interface is pino's; warnings and rebalance notes go to stderr, which the
// benchmark keeps in a file, so that stdout carries only the report.
const logger = { trace() {}, debug() {}, info: logTo('info'), warn: logTo('warn'), error: logTo('error'), fatal: logTo('fatal'), child: () => logger };

const consumer = new Consumer({
  bootstrap: values.bootstrap,
  clientId: `bench-group-worker-${process.pid}`,
  groupId: values.group,
  sessionTimeoutMs: Number(values['session-timeout-ms']),
  heartbeatIntervalMs: Number(values['heartbeat-interval-ms']),
  enableAutoCommit: !syncCommits,
  autoOffsetReset: 'earliest',
  logger,
});

let released = !values.gate;
let stopping = false;
const stop = () => (stopping = true);
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() === 'go' && !released) {
      released = true;
      consumer.resume(consumer.assignment());
    } else if (line.trim() === 'stop') stop();
  })
  .on('close', stop);
// Bounded even if nobody says stop.
setTimeout(stop, Number(values['max-s']) * 1000).unref();

emit({ event: 'ready' });
consumer.subscribe([values.topic], {
  onPartitionsAssigned() {
    if (!released) consumer.pause(consumer.assignment());
    emit({ event: 'assigned', generation: consumer.groupMetadata().generationId, partitions: consumer.assignment().map(({ partition }) => partition).sort((a, b) => a - b) });
  },
});

/** The records of one poll as [partition, first offset, last offset] runs of consecutive offsets. */
function offsetRuns(records) {
  const runs = [];
  const open = new Map();
  for (const { partition, offset } of records) {
    const run = open.get(partition);
    if (run !== undefined && run[2] + 1 === offset) run[2] = offset;
    else {
      const fresh = [partition, offset, offset];
      runs.push(fresh);
      open.set(partition, fresh);
    }
  }
  return runs;
}

let exitCode = 0;
try {
  while (!stopping) {
    const records = await consumer.poll(POLL_TIMEOUT_MS);
    if (records.length === 0) continue;
    emit({ event: 'polled', ranges: offsetRuns(records) });
    if (!syncCommits) continue;
    const startedMs = performance.now();
    try {
      await consumer.commit();
      emit({ event: 'commit', ms: Number((performance.now() - startedMs).toFixed(3)) });
    } catch (error) {
      // A commit refused during a rebalance: the records are consumed again by the next owner.
      emit({ event: 'commit', ms: Number((performance.now() - startedMs).toFixed(3)), error: error.message });
    }
  }
} catch (error) {
  process.stderr.write(`consumer-group-worker: ${error.stack ?? error.message}\n`);
  exitCode = 1;
} finally {
  const closing = consumer.close().catch((error) => process.stderr.write(`consumer-group-worker: close: ${error.message}\n`));
  await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
  emit({ event: 'closed' });
}
process.exit(exitCode);
