// `runnel partitions elect-leaders`: Kafka's kafka-leader-election.sh. A preferred election moves
// leadership back to each partition's first replica; an unclean one gives a partition without a
// leader a live replica from outside its ISR, and may lose records.
import type { RunnelError } from '@runnel/common';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';
import { withAdmin } from './topic.js';

export interface ElectLeadersOptions {
  type: 'preferred' | 'unclean';
  all: boolean;
  topic?: string;
  partition?: number;
  format: OutputFormat;
}

export async function partitionsElectLeaders(bootstrap: string, options: ElectLeadersOptions): Promise<void> {
  if (options.all === (options.topic !== undefined)) throw new Error('name the partitions with --topic (and --partition), or give --all');
  if (options.partition !== undefined && options.topic === undefined) throw new Error('--partition needs --topic');
  const results = await withAdmin(bootstrap, async (admin) => {
    let partitions: Array<{ topic: string; partition: number }> | null = null;
    if (options.topic !== undefined) {
      const topic = options.topic;
      const indexes = options.partition !== undefined ? [options.partition] : (await admin.describeTopics([topic]))[0]!.partitions.map((entry) => entry.partition);
      partitions = indexes.map((partition) => ({ topic, partition }));
    }
    return admin.electLeaders(options.type, partitions);
  });
  const outcome = (error: RunnelError | null): string => (error === null ? 'elected' : `${error.errorName}: ${error.detail}`);
  if (options.format === 'json') {
    printJson(results.map((result) => ({ topic: result.topic, partition: result.partition, error: result.error?.errorName ?? null, message: result.error?.detail ?? null })));
  } else if (results.length === 0) {
    printLine(`every partition already has the leader a ${options.type} election would give it`);
  } else {
    printLine(renderTable(['TOPIC', 'PARTITION', 'RESULT'], results.map((result) => [result.topic, result.partition, outcome(result.error)])));
  }
  // As kafka-leader-election.sh: a partition that already has the right leader is no failure.
  const failed = results.filter((result) => result.error !== null && result.error.errorName !== 'ELECTION_NOT_NEEDED');
  if (failed.length > 0) process.exitCode = 1;
}
