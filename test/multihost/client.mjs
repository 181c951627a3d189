// The client host of the multi-host test: run inside its own network namespace (`ip netns exec`),
// it reaches the nodes only through their namespaces' addresses, and reports to the test, which
// cannot reach them, as JSON lines on stdout. Every loop is bounded in count and in time.
//
//   client.mjs produce --bootstrap A,B,C --topic T --partitions P --records N --duration-ms D
//     creates T (replication factor 3, min.insync.replicas 2), waits for its full ISR, prints
//     {"type":"ready"}, then sends the values T:0 … T:N-1 (value n to partition n mod P) with
//     acks=all, each retried on its own (at most MAX_ATTEMPTS), one {"type":"attempt"} line per
//     attempt, while a consumer reads along ({"type":"consumed"} lines); {"type":"done"} at the end.
//   client.mjs status --bootstrap A,B --topic T --partitions P --until any|full-isr|replaced:N --timeout-ms M
//     polls the cluster status (the active controller's view) until the condition holds or the time
//     is up; prints {"reached","waitedMs","status"}.
//   client.mjs read --bootstrap A,B,C --topic T --partitions P
//     prints every partition's records from its log start, one {"partition","logStartOffset","records"} line each.
import { parseArgs } from 'node:util';
import { Admin, Consumer, Producer } from '@runnel/client';
import { classifyError, errorNameOf, readPartition } from '@runnel/testkit';

const MAX_ATTEMPTS = 20;
const REQUEST_TIMEOUT_MS = 5000;
const CONCURRENCY = 24;
const POLL_INTERVAL_MS = 200;
/** After sending ends, how long the live consumer may take to reach the end of every partition. */
const CATCH_UP_MS = 15_000;
/** Past the sending deadline, how long a value may still be retried. */
const RETRY_GRACE_MS = 20_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const emit = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

const { positionals, values: options } = parseArgs({
  allowPositionals: true,
  options: {
    'bootstrap': { type: 'string' },
    'topic': { type: 'string' },
    'partitions': { type: 'string', default: '6' },
    'records': { type: 'string', default: '3000' },
    'duration-ms': { type: 'string', default: '30000' },
    'until': { type: 'string', default: 'full-isr' },
    'timeout-ms': { type: 'string', default: '20000' },
  },
});
const bootstrap = (options.bootstrap ?? '').split(',').filter((address) => address !== '');
const topic = options.topic;
const partitions = Number(options.partitions);
if (bootstrap.length === 0 || topic === undefined || !(partitions > 0)) throw new Error('--bootstrap, --topic and --partitions are required');

/** The cluster status as the active controller answers it (else as any node answers it), or undefined. */
async function controllerStatus() {
  const answers = await Promise.all(
    bootstrap.map(async (address) => {
      const admin = new Admin({ bootstrap: address, requestTimeoutMs: 1500 });
      try {
        return await admin.clusterStatus();
      } catch {
        return undefined;
      } finally {
        await admin.close().catch(() => undefined);
      }
    }),
  );
  const answered = answers.filter((answer) => answer !== undefined);
  return answered.find((answer) => answer.servedBy === answer.controller.id) ?? answered[0];
}

/** Every partition of the topic led by an unfenced node and with all its replicas in the ISR. */
function fullIsr(status) {
  const state = status?.topics.find((candidate) => candidate.name === topic);
  if (state === undefined || state.partitions.length !== partitions) return false;
  const fenced = new Set(status.nodes.filter((node) => node.fenced).map((node) => node.id));
  return state.partitions.every((partition) => partition.leader >= 0 && !fenced.has(partition.leader) && partition.isr.length === partition.replicas.length);
}

/** `nodeId` leads no partition of the topic and is in no ISR. */
function replaced(status, nodeId) {
  const state = status?.topics.find((candidate) => candidate.name === topic);
  return state !== undefined && state.partitions.every((partition) => partition.leader !== nodeId && !partition.isr.includes(nodeId));
}

async function waitUntil(condition, timeoutMs) {
  const startMs = Date.now();
  let status;
  do {
    status = await controllerStatus();
    if (condition(status)) return { reached: true, waitedMs: Date.now() - startMs, status };
    await sleep(POLL_INTERVAL_MS);
  } while (Date.now() - startMs < timeoutMs);
  return { reached: false, waitedMs: Date.now() - startMs, status };
}

function conditionOf(until) {
  if (until === 'any') return (status) => status !== undefined;
  if (until === 'full-isr') return fullIsr;
  const match = /^replaced:(\d+)$/.exec(until);
  if (match === null) throw new Error(`--until must be any, full-isr or replaced:<node id>, got ${until}`);
  return (status) => replaced(status, Number(match[1]));
}

async function produce() {
  const records = Number(options.records);
  const durationMs = Number(options['duration-ms']);
  const admin = new Admin({ bootstrap, requestTimeoutMs: 10_000 });
  try {
    await admin.createTopics([{ name: topic, partitions, replicationFactor: 3, configs: { 'min.insync.replicas': '2' } }]);
  } finally {
    await admin.close().catch(() => undefined);
  }
  const created = await waitUntil(fullIsr, 30_000);
  if (!created.reached) throw new Error(`topic ${topic} has no full ISR 30 s after it was created`);
  emit({ type: 'ready' });

  const producer = new Producer({ bootstrap, acks: -1, retries: 0, lingerMs: 2, requestTimeoutMs: REQUEST_TIMEOUT_MS, deliveryTimeoutMs: REQUEST_TIMEOUT_MS * 2 + 2000, maxBlockMs: REQUEST_TIMEOUT_MS * 2, metadataMaxAgeMs: 5000 });
  const startMs = Date.now();
  const sendDeadlineMs = startMs + durationMs;
  const sendOne = async (n) => {
    const value = `${topic}:${n}`;
    const partition = n % partitions;
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const startedMs = Date.now();
      try {
        const { offset } = await producer.send({ topic, partition, value });
        emit({ type: 'attempt', value, partition, startedMs, endedMs: Date.now(), outcome: 'acked', offset });
        return;
      } catch (error) {
        const message = String(error?.message ?? error).slice(0, 300);
        emit({ type: 'attempt', value, partition, startedMs, endedMs: Date.now(), outcome: classifyError(error), error: errorNameOf(error) ?? message.slice(0, 200), detail: message });
      }
      if (Date.now() > sendDeadlineMs + RETRY_GRACE_MS) break;
      await sleep(Math.min(2000, 100 * 2 ** (attempt - 1)) * (0.5 + Math.random()));
    }
    emit({ type: 'gave-up', value });
  };
  // Values at an even rate over the duration, CONCURRENCY lanes taking the next one in turn.
  let next = 0;
  const lane = async () => {
    while (next < records && Date.now() < sendDeadlineMs) {
      const n = next++;
      const notBeforeMs = startMs + (n * durationMs) / records;
      await sleep(notBeforeMs - Date.now());
      await sendOne(n);
    }
  };

  const consumer = new Consumer({ bootstrap, autoOffsetReset: 'none', requestTimeoutMs: REQUEST_TIMEOUT_MS, maxWaitMs: 200 });
  const assignment = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }));
  consumer.assign(assignment);
  for (const tp of assignment) consumer.seek(tp, 0);
  const positions = new Array(partitions).fill(0);
  let consuming = true;
  let consumerErrors = 0;
  const consumerDeadlineMs = sendDeadlineMs + RETRY_GRACE_MS + CATCH_UP_MS + 60_000;
  const consuming$ = (async () => {
    while (consuming && Date.now() < consumerDeadlineMs) {
      try {
        for (const record of await consumer.poll(300)) {
          emit({ type: 'consumed', partition: record.partition, offset: record.offset, value: record.value === null ? null : record.value.toString('utf8') });
          positions[record.partition] = record.offset + 1;
        }
      } catch {
        consumerErrors++;
        await sleep(200);
      }
    }
  })();

  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, lane));
    const latest = new Admin({ bootstrap, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    const ends = await latest.listOffsets(assignment.map((tp) => ({ ...tp, timestamp: 'latest' }))).finally(() => latest.close().catch(() => undefined));
    const catchUpDeadlineMs = Date.now() + CATCH_UP_MS;
    while (Date.now() < catchUpDeadlineMs && ends.some((end) => positions[end.partition] < end.offset)) await sleep(200);
  } finally {
    consuming = false;
    await consuming$;
    await consumer.close().catch(() => undefined);
    await producer.close().catch(() => undefined);
  }
  emit({ type: 'done', sent: next, consumerErrors, runMs: Date.now() - startMs });
}

async function read() {
  for (let partition = 0; partition < partitions; partition++) {
    const { logStartOffset, records } = await readPartition(bootstrap, topic, partition);
    emit({ partition, logStartOffset, records });
  }
}

const command = positionals[0];
if (command === 'produce') await produce();
else if (command === 'status') emit(await waitUntil(conditionOf(options.until), Number(options['timeout-ms'])));
else if (command === 'read') await read();
else throw new Error(`unknown command '${command}' (produce, status, read)`);
// Open gRPC channels may keep the event loop alive after the clients closed.
process.exit(0);
