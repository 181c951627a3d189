// The `runnel` command. Every failure is one line on stderr and a non-zero exit.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { CompressionCodec } from '@runnel/common';
import { parseFormat } from './output.js';

export { errorLine } from './output.js';

// Every node of the default local cluster: commands keep working while one of them is down.
const DEFAULT_BOOTSTRAP = process.env.RUNNEL_BOOTSTRAP ?? '127.0.0.1:9192,127.0.0.1:9193,127.0.0.1:9194';
// The controllers (CONTROLLER listeners, Raft 9291+N) of the default local cluster.
const DEFAULT_BOOTSTRAP_CONTROLLER = process.env.RUNNEL_BOOTSTRAP_CONTROLLER ?? '127.0.0.1:9292,127.0.0.1:9293,127.0.0.1:9294';

function integer(name: string, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^-?\d+$/.test(text) || value < min || value > max) {
      const range = max !== Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : min > -Number.MAX_SAFE_INTEGER ? ` >= ${min}` : '';
      throw new InvalidArgumentError(`${name} must be an integer${range}`);
    }
    return value;
  };
}

/** '0,1,5' → [0, 1, 5]. */
function partitionList(text: string): number[] {
  const items = text.split(',').map((item) => item.trim());
  if (items.some((item) => !/^\d+$/.test(item) || !Number.isSafeInteger(Number(item)))) {
    throw new InvalidArgumentError('--partitions must be partition numbers separated by commas, e.g. 0,1,2');
  }
  return items.map(Number);
}

/** '1,2,3,4' → [1, 2, 3, 4] (distinct broker ids). */
function brokerList(text: string): number[] {
  const items = text.split(',').map((item) => item.trim());
  if (items.some((item) => !/^\d+$/.test(item) || !Number.isSafeInteger(Number(item)))) throw new InvalidArgumentError('--brokers must be broker ids separated by commas, e.g. 1,2,3,4');
  const ids = items.map(Number);
  if (new Set(ids).size !== ids.length) throw new InvalidArgumentError('--brokers names a broker twice');
  return ids;
}

interface ReassignOptions {
  generate?: boolean;
  brokers?: number[];
  topics?: string;
  plan?: string;
  execute?: string;
  verify?: string;
  cancel?: string | boolean;
  list?: boolean;
  format: 'table' | 'json';
  throttle?: number;
  preserveThrottles: boolean;
  additional: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function acksOf(text: string): 0 | 1 | -1 {
  if (text === 'all' || text === '-1') return -1;
  if (text === '0' || text === '1') return Number(text) as 0 | 1;
  throw new InvalidArgumentError("acks must be 0, 1 or all");
}

const formatOption = () => new Option('--format <format>', 'output format: table or json').default('table').argParser(parseFormat);

// @runnel/common's COMPRESSION_CODECS, spelled out: importing it would load every codec (and the
// zstd WebAssembly) before any argument is parsed.
const COMPRESSION_CHOICES = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const satisfies readonly CompressionCodec[];
const compressionOption = () => new Option('--compression <codec>', 'compress batches').choices(COMPRESSION_CHOICES).default('none');

export function buildProgram(): Command {
  const program = new Command('runnel')
    .description('Runnel: a Kafka-style replicated commit log')
    .option('--bootstrap <host:port>', 'gRPC address(es) of nodes, comma-separated (env RUNNEL_BOOTSTRAP)', DEFAULT_BOOTSTRAP)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(text.split('\n')[0] + '\n') });
  const bootstrapOf = (command: Command): string => command.optsWithGlobals().bootstrap as string;

  program
    .command('node')
    .description('run one node in this process until SIGTERM or Ctrl-C')
    .option('--config <file>', 'a server.properties file')
    .option('--set <key=value>', 'override a config key (repeatable)', collect, [] as string[])
    .action(async (options: { config?: string; set: string[] }) => {
      const { runNode } = await import('./commands/node.js');
      await runNode(options);
    });

  const config = program.command('config').description('inspect a node\'s configuration, and set the broker configs that change at runtime');
  config
    .command('show')
    .description('the effective value of every key and where it came from (default, file, environment, --set), and the Kafka keys that have no effect, with why')
    .option('--config <file>', 'a server.properties file')
    .option('--set <key=value>', 'override a config key (repeatable)', collect, [] as string[])
    .addOption(formatOption())
    .action(async (options: { config?: string; set: string[]; format: 'table' | 'json' }) => {
      const { configShow } = await import('./commands/config.js');
      configShow(options);
    });
  const brokerOption = () => new Option('--broker <id>', 'one broker (a dynamic broker config)').argParser(integer('--broker'));
  const clusterOption = () => new Option('--cluster', 'the default of every broker (a dynamic cluster default)');
  config
    .command('set')
    .description('set dynamic broker configs (leader.replication.throttled.rate, follower.replication.throttled.rate) on one broker or as the cluster default; applied at runtime, kept in the metadata log')
    .argument('<key=value...>', 'the keys to set')
    .addOption(brokerOption())
    .addOption(clusterOption())
    .action(async (assignments: string[], options: { broker?: number; cluster?: boolean }, command: Command) => {
      const dynamic = await import('./commands/dynamicConfig.js');
      await dynamic.configSet(bootstrapOf(command), dynamic.resourceOf(options, 'set', true)!, assignments);
    });
  config
    .command('delete')
    .description('delete dynamic broker configs: a broker falls back to the cluster default, the cluster default to each node\'s own config')
    .argument('<key...>', 'the keys to delete')
    .addOption(brokerOption())
    .addOption(clusterOption())
    .action(async (keys: string[], options: { broker?: number; cluster?: boolean }, command: Command) => {
      const dynamic = await import('./commands/dynamicConfig.js');
      await dynamic.configDelete(bootstrapOf(command), dynamic.resourceOf(options, 'delete', true)!, keys);
    });
  config
    .command('describe')
    .description('the dynamic broker configs in force: of one broker (its own and the cluster defaults it inherits), the cluster defaults, or (neither) every one set')
    .addOption(brokerOption())
    .addOption(clusterOption())
    .addOption(formatOption())
    .action(async (options: { broker?: number; cluster?: boolean; format: 'table' | 'json' }, command: Command) => {
      const dynamic = await import('./commands/dynamicConfig.js');
      await dynamic.configDescribe(bootstrapOf(command), dynamic.resourceOf(options, 'describe', false), options.format);
    });

  const cluster = program.command('cluster').description('run and inspect a cluster');
  cluster
    .command('up')
    .description('start a local cluster on the loopback port plan (node N: Kafka 9091+N, gRPC 9191+N, Raft 9291+N) and stop it on Ctrl-C')
    .option('--nodes <n>', 'number of nodes, each a broker and a controller voter (1 to 9)', integer('--nodes', 1, 9), 3)
    .option('--data-dir <dir>', 'where each node keeps DATA/node-N', './data')
    .option('--base-port <port>', 'move the port plan: node N uses base+N (Kafka), +100 (gRPC), +200 (Raft), +300 (HTTP)', integer('--base-port', 1, 65535 - 309), 9091)
    .action(async (options: { nodes: number; dataDir: string; basePort: number }) => {
      const { clusterUp } = await import('./commands/cluster.js');
      await clusterUp(options);
    });
  cluster
    .command('status')
    .description('nodes, the active controller and its term, and every partition\'s leader, replicas and ISR')
    .addOption(formatOption())
    .action(async (options: { format: 'table' | 'json' }, command: Command) => {
      const { clusterStatus } = await import('./commands/status.js');
      await clusterStatus(bootstrapOf(command), options.format);
    });
  cluster
    .command('health')
    .description('healthy = an active controller, every broker live, every partition with a leader, none under min.insync.replicas; exit status 0 when healthy, 1 when not')
    .option('--watch', 'keep checking every 2 s and print each change (Ctrl-C stops)', false)
    .option('--exit-when-healthy', 'keep checking until healthy (exit 0), or until --timeout (exit 1)', false)
    .option('--timeout <seconds>', 'with --exit-when-healthy or --watch: give up after this many seconds', integer('--timeout', 1))
    .addOption(formatOption())
    .action(async (options: { format: 'table' | 'json'; watch: boolean; exitWhenHealthy: boolean; timeout?: number }, command: Command) => {
      const { clusterHealth } = await import('./commands/health.js');
      await clusterHealth(bootstrapOf(command), { format: options.format, watch: options.watch, exitWhenHealthy: options.exitWhenHealthy, timeoutS: options.timeout });
    });
  cluster
    .command('rebalance')
    .description('move leadership back to each partition\'s preferred replica now (preferred-leader election); with --replicas, first spread replicas and preferred leaders evenly over the live brokers')
    .option('--replicas', 'plan and start moves that spread replicas and preferred leaders evenly (±1) over the live brokers, off decommissioned ones', false)
    .option('--dry-run', 'with --replicas: print the plan only', false)
    .option('--wait', 'with --replicas: wait until every move completed, then elect preferred leaders so that leaders are spread too', false)
    .option('--timeout <seconds>', 'with --wait: give up after this many seconds', integer('--timeout', 1))
    .addOption(formatOption())
    .action(async (options: { format: 'table' | 'json'; replicas: boolean; dryRun: boolean; wait: boolean; timeout?: number }, command: Command) => {
      if (!options.replicas) {
        if (options.dryRun || options.wait || options.timeout !== undefined) throw new Error('--dry-run, --wait and --timeout go with --replicas');
        const { clusterRebalance } = await import('./commands/status.js');
        return clusterRebalance(bootstrapOf(command), options.format);
      }
      const { clusterRebalanceReplicas } = await import('./commands/balance.js');
      await clusterRebalanceReplicas(bootstrapOf(command), { dryRun: options.dryRun, wait: options.wait, timeoutS: options.timeout, format: options.format });
    });

  const broker = program.command('broker').description('decommission and recommission brokers');
  broker
    .command('decommission <id>')
    .description('stop placing replicas on broker <id> and move every replica off it (refused when the other brokers cannot hold some partition\'s replicas)')
    .addOption(formatOption())
    .action(async (id: string, options: { format: 'table' | 'json' }, command: Command) => {
      const { brokerDecommission } = await import('./commands/balance.js');
      await brokerDecommission(bootstrapOf(command), integer('<id>', 0, 2 ** 31 - 1)(id), true, options.format);
    });
  broker
    .command('recommission <id>')
    .description('let broker <id> take replicas again, cancelling the moves still taking replicas off it')
    .addOption(formatOption())
    .action(async (id: string, options: { format: 'table' | 'json' }, command: Command) => {
      const { brokerDecommission } = await import('./commands/balance.js');
      await brokerDecommission(bootstrapOf(command), integer('<id>', 0, 2 ** 31 - 1)(id), false, options.format);
    });
  broker
    .command('decommission-status <id>')
    .description('the replicas broker <id> still holds; exit status 1 while a decommission is not done')
    .option('--wait', 'wait until the decommission is done (no replicas left)', false)
    .option('--timeout <seconds>', 'with --wait: give up after this many seconds', integer('--timeout', 1))
    .addOption(formatOption())
    .action(async (id: string, options: { format: 'table' | 'json'; wait: boolean; timeout?: number }, command: Command) => {
      const { brokerDecommissionStatus } = await import('./commands/balance.js');
      await brokerDecommissionStatus(bootstrapOf(command), integer('<id>', 0, 2 ** 31 - 1)(id), { wait: options.wait, timeoutS: options.timeout, format: options.format });
    });

  const partitions = program.command('partitions').description('move partition replicas between brokers, and elect their leaders');
  partitions
    .command('reassign')
    .description("reassign partition replicas (KIP-455); files use Kafka's {\"version\":1,\"partitions\":[{\"topic\",\"partition\",\"replicas\"}]}")
    .option('--generate', 'print the current assignment of --topics and a balanced one over --brokers')
    .option('--brokers <ids>', 'with --generate: the brokers to spread replicas over, e.g. 1,2,3,4', brokerList)
    .option('--topics <names>', 'with --generate: the topics to move, comma-separated')
    .option('--plan <file>', 'validate a reassignment file and print what --execute would do')
    .option('--execute <file>', 'print the current assignment (to roll back), then start the reassignment')
    .option('--verify <file>', 'complete or in progress per partition; exit 1 while any is not complete')
    .option('--cancel [file]', "cancel the file's moving partitions (every move without a file)")
    .option('--list', 'moving partitions with adding/removing replicas and progress, and the throttle in force')
    .option('--throttle <bytes/s>', 'with --execute: limit the copy to replicas being added (sets the cluster-level leader and follower.replication.throttled.rate; --verify removes them once complete)', integer('--throttle', 1))
    .option('--preserve-throttles', 'with --verify: keep the throttle after the reassignment completes', false)
    .option('--additional', 'with --execute: start it although other partitions are still moving', false)
    .addOption(formatOption())
    .action(async (options: ReassignOptions, command: Command) => {
      const commands = await import('./commands/partitions.js');
      const bootstrap = bootstrapOf(command);
      const chosen = (['generate', 'plan', 'execute', 'verify', 'cancel', 'list'] as const).filter((name) => options[name] !== undefined && options[name] !== false);
      if (chosen.length !== 1) throw new Error('partitions reassign: give exactly one of --generate, --plan, --execute, --verify, --cancel, --list');
      if (options.throttle !== undefined && chosen[0] !== 'execute' && chosen[0] !== 'plan') throw new Error('--throttle goes with --execute (or --plan)');
      if (options.preserveThrottles && chosen[0] !== 'verify') throw new Error('--preserve-throttles goes with --verify');
      if (options.additional && chosen[0] !== 'execute') throw new Error('--additional goes with --execute');
      switch (chosen[0]) {
        case 'generate': {
          if (options.brokers === undefined || options.topics === undefined) throw new Error('--generate needs --brokers and --topics');
          const topics = options.topics.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
          if (topics.length === 0) throw new Error('--topics must name at least one topic');
          return commands.reassignGenerate(bootstrap, options.brokers, topics, options.format);
        }
        case 'plan':
          return commands.reassignExecute(bootstrap, options.plan!, true, options.throttle);
        case 'execute':
          return commands.reassignExecute(bootstrap, options.execute!, false, options.throttle, options.additional);
        case 'verify':
          return commands.reassignVerify(bootstrap, options.verify!, options.format, options.preserveThrottles);
        case 'cancel':
          return commands.reassignCancel(bootstrap, typeof options.cancel === 'string' ? options.cancel : undefined);
        case 'list':
          return commands.reassignList(bootstrap, options.format);
      }
    });

  partitions
    .command('elect-leaders')
    .description('a preferred (back to the first replica) or unclean (a live replica outside the ISR, for a partition without a leader: may lose records) leader election')
    .addOption(new Option('--type <type>', 'preferred or unclean').choices(['preferred', 'unclean']).makeOptionMandatory())
    .option('--topic <name>', 'the topic whose partitions to elect')
    .option('--partition <p>', 'with --topic: only this partition', integer('--partition'))
    .option('--all', 'every partition of every topic', false)
    .addOption(formatOption())
    .action(async (options: import('./commands/electLeaders.js').ElectLeadersOptions, command: Command) => {
      const { partitionsElectLeaders } = await import('./commands/electLeaders.js');
      await partitionsElectLeaders(bootstrapOf(command), options);
    });

  program
    .command('dev', { hidden: true })
    .description('what `npm start` runs: `cluster up` with 3 nodes and data under ./data')
    .action(async () => {
      const { clusterUp } = await import('./commands/cluster.js');
      await clusterUp({ nodes: 3, dataDir: './data' });
    });

  const topic = program.command('topic').description('create, alter, list, describe and delete topics');
  topic
    .command('create <name>')
    .description('create a topic')
    .option('--partitions <n>', 'number of partitions (default: the broker\'s num.partitions)', integer('--partitions', 1))
    .option('--replication-factor <n>', 'replicas per partition (default: the broker\'s default.replication.factor)', integer('--replication-factor', 1))
    .option('--config <key=value>', 'a topic config override, e.g. retention.ms=60000 (repeatable)', collect, [] as string[])
    .action(async (name: string, options: { partitions?: number; replicationFactor?: number; config: string[] }, command: Command) => {
      const { topicCreate } = await import('./commands/topic.js');
      await topicCreate(bootstrapOf(command), name, options);
    });
  topic
    .command('alter <name>')
    .description('grow a topic to more partitions (partitions are never removed); clients pick them up at their next metadata refresh')
    .requiredOption('--partitions <n>', 'the new total number of partitions, more than the topic has', integer('--partitions', 1, 2 ** 31 - 1))
    .action(async (name: string, options: { partitions: number }, command: Command) => {
      const { topicAlter } = await import('./commands/topic.js');
      await topicAlter(bootstrapOf(command), name, options);
    });
  topic
    .command('list')
    .description('list topics')
    .addOption(formatOption())
    .action(async (options: { format: 'table' | 'json' }, command: Command) => {
      const { topicList } = await import('./commands/topic.js');
      await topicList(bootstrapOf(command), options.format);
    });
  topic
    .command('describe [names...]')
    .description('partitions, leaders, replicas, offsets and configs of topics (all if none named)')
    .addOption(formatOption())
    .action(async (names: string[], options: { format: 'table' | 'json' }, command: Command) => {
      const { topicDescribe } = await import('./commands/topic.js');
      await topicDescribe(bootstrapOf(command), names, options.format);
    });
  topic
    .command('delete <names...>')
    .description('delete topics and their data')
    .action(async (names: string[], _options: object, command: Command) => {
      const { topicDelete } = await import('./commands/topic.js');
      await topicDelete(bootstrapOf(command), names);
    });

  const group = program.command('group').description('list, describe, reset the offsets of and delete consumer groups');
  group
    .command('list')
    .description('every consumer group of the cluster, with its state and protocol type')
    .addOption(formatOption())
    .action(async (options: { format: 'table' | 'json' }, command: Command) => {
      const { groupList } = await import('./commands/group.js');
      await groupList(bootstrapOf(command), options.format);
    });
  group
    .command('describe <group>')
    .description('state, members and their partitions, and per partition the committed offset, log end offset and lag')
    .addOption(formatOption())
    .action(async (groupId: string, options: { format: 'table' | 'json' }, command: Command) => {
      const { groupDescribe } = await import('./commands/group.js');
      await groupDescribe(bootstrapOf(command), groupId, options.format);
    });
  group
    .command('reset-offsets <group>')
    .description('print new committed offsets for a topic of a group, and with --execute commit them (the group must have no members)')
    .requiredOption('--topic <name>', 'the topic whose offsets to reset')
    .option('--partitions <list>', 'only these partitions, comma-separated (default: all of the topic)', partitionList)
    .option('--to-earliest', 'to the log start offset')
    .option('--to-latest', 'to the log end offset (the high watermark)')
    .option('--to-offset <offset>', 'to this offset, clamped to the log start and end', integer('--to-offset'))
    .option('--to-datetime <time>', 'to the first record at or after this ISO-8601 time (without a zone: local time)')
    .option('--shift-by <n>', 'move each committed offset by n (negative: back), clamped to the log start and end', integer('--shift-by', -Number.MAX_SAFE_INTEGER))
    .option('--execute', 'commit the new offsets; without it, only print them', false)
    .addOption(formatOption())
    .action(async (groupId: string, options: import('./commands/group.js').ResetOffsetsOptions, command: Command) => {
      const { groupResetOffsets } = await import('./commands/group.js');
      await groupResetOffsets(bootstrapOf(command), groupId, options);
    });
  group
    .command('delete <groups...>')
    .description('delete groups that have no members, with their committed offsets')
    .addOption(formatOption())
    .action(async (groupIds: string[], options: { format: 'table' | 'json' }, command: Command) => {
      const { groupDelete } = await import('./commands/group.js');
      await groupDelete(bootstrapOf(command), groupIds, options.format);
    });

  program
    .command('produce <topic>')
    .description('send one record per line of standard input')
    .option('--key-separator <sep>', 'split each line into key and value at the first <sep>')
    .option('--partition <p>', 'send every record to this partition', integer('--partition'))
    .option('--acks <acks>', '0, 1 or all', acksOf, -1 as const)
    .option('--linger-ms <ms>', 'batching delay', integer('--linger-ms'))
    .option('--batch-size <bytes>', 'bytes per partition batch', integer('--batch-size', 1))
    .addOption(compressionOption())
    .action(async (topicName: string, options: import('./commands/produce.js').ProduceCommandOptions, command: Command) => {
      const { produceLines } = await import('./commands/produce.js');
      await produceLines(bootstrapOf(command), topicName, options);
    });

  program
    .command('consume <topic>')
    .description('print records, one value per line')
    .option('--from-beginning', 'start at the earliest offset instead of the end', false)
    .option('--max-messages <n>', 'exit after this many records', integer('--max-messages', 1))
    .option('--partition <p>', 'read only this partition', integer('--partition'))
    .option('--offset <offset>', 'with --partition: start here (a number, earliest or latest)')
    .option('--timeout-ms <ms>', 'exit when no record arrives for this long', integer('--timeout-ms', 1))
    .option('--print-key', 'print key<separator>value', false)
    .option('--key-separator <sep>', 'separator for --print-key', '\t')
    .option('--group <id>', 'consume as a member of this consumer group: partitions shared with its other members, offsets committed')
    .option('--consumer-property <key=value>', 'a Kafka consumer setting, e.g. session.timeout.ms=10000 (repeatable)', collect, [])
    .addOption(new Option('--format <format>', 'value (one value per line) or json (one object per line)').choices(['value', 'json']).default('value'))
    .action(async (topicName: string, options: Parameters<typeof import('./commands/consume.js').consumeRecords>[2], command: Command) => {
      const { consumeRecords } = await import('./commands/consume.js');
      await consumeRecords(bootstrapOf(command), topicName, options);
    });

  const bench = program.command('bench').description('measure throughput and latency through a node');
  bench
    .command('produce')
    .description('produce records as fast as possible (or at --rate) and report records/s, MB/s and ack latency')
    .option('--topic <name>', 'topic (created if missing)', 'bench')
    .option('--records <n>', 'records to send', integer('--records', 1), 1_000_000)
    .option('--record-size <bytes>', 'bytes per record value', integer('--record-size', 1), 100)
    .option('--batch-size <bytes>', 'producer batch.size', integer('--batch-size', 1), 16384)
    .option('--linger-ms <ms>', 'producer linger.ms', integer('--linger-ms'), 5)
    .option('--acks <acks>', '0, 1 or all', acksOf, -1 as const)
    .option('--partitions <n>', 'partitions when the topic is created', integer('--partitions', 1), 1)
    .option('--replication-factor <n>', 'replicas per partition when the topic is created (default: the cluster\'s default.replication.factor)', integer('--replication-factor', 1))
    .option('--rate <records/s>', 'send at a steady rate instead of flat out', integer('--rate', 1))
    .addOption(compressionOption())
    .option('--json', 'print one JSON line', false)
    .action(async (options: import('./commands/bench.js').BenchProduceOptions, command: Command) => {
      const { benchProduce } = await import('./commands/bench.js');
      const result = await benchProduce(bootstrapOf(command), options);
      if (result.errors > 0) process.exitCode = 1;
    });
  bench
    .command('consume')
    .description('read records from the beginning and report records/s, MB/s and end-to-end latency')
    .option('--topic <name>', 'topic', 'bench')
    .option('--records <n>', 'records to read', integer('--records', 1), 1_000_000)
    .option('--json', 'print one JSON line', false)
    .action(async (options: import('./commands/bench.js').BenchConsumeOptions, command: Command) => {
      const { benchConsume } = await import('./commands/bench.js');
      await benchConsume(bootstrapOf(command), options);
    });
  const quorum = program.command('quorum').description('the controller quorum: its members, and adding or removing a voter (one change at a time)');
  const controllerOption = () =>
    new Option('--bootstrap-controller <host:port>', 'CONTROLLER listener address(es) of controllers, comma-separated (env RUNNEL_BOOTSTRAP_CONTROLLER)').default(DEFAULT_BOOTSTRAP_CONTROLLER);
  quorum
    .command('describe')
    .description('the leader, term and commit index; each voter and learner with its log end, lag and last contact')
    .addOption(controllerOption())
    .addOption(formatOption())
    .action(async (options: { bootstrapController: string; format: 'table' | 'json' }) => {
      const { quorumDescribe } = await import('./commands/quorum.js');
      await quorumDescribe(options.bootstrapController, options.format);
    });
  quorum
    .command('add-voter <ID@HOST:PORT>')
    .description('add a controller (started with its own id and the existing voters in controller.quorum.voters): a learner first, a voter once caught up')
    .addOption(controllerOption())
    .option('--timeout <s>', 'how long the new member has to catch up', integer('--timeout', 1), 60)
    .action(async (voter: string, options: { bootstrapController: string; timeout: number }) => {
      const { quorumAddVoter } = await import('./commands/quorum.js');
      await quorumAddVoter(options.bootstrapController, voter, { timeoutS: options.timeout });
    });
  quorum
    .command('remove-voter <ID>')
    .description('remove a controller from the quorum (refused for the last voter, or when the voters left could not commit)')
    .addOption(controllerOption())
    .action(async (id: string, options: { bootstrapController: string }) => {
      const { quorumRemoveVoter } = await import('./commands/quorum.js');
      await quorumRemoveVoter(options.bootstrapController, integer('ID', 0, 2 ** 31 - 1)(id));
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `runnel consume ... | head` closes the pipe early: that is the reader's choice, not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  await buildProgram().parseAsync(argv);
}
