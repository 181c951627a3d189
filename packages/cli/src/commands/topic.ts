import { Admin } from '@runnel/client';
import { parseAssignments } from '@runnel/common';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';

export async function withAdmin<T>(bootstrap: string, action: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = new Admin({ bootstrap, clientId: 'runnel-cli' });
  try {
    return await action(admin);
  } finally {
    await admin.close();
  }
}

export async function topicCreate(bootstrap: string, name: string, options: { partitions?: number; replicationFactor?: number; config: string[] }): Promise<void> {
  const configs = parseAssignments(options.config, '--config');
  await withAdmin(bootstrap, (admin) =>
    admin.createTopics([{ name, partitions: options.partitions ?? -1, replicationFactor: options.replicationFactor ?? -1, configs }]),
  );
  printLine(`Created topic ${name}.`);
}

export async function topicAlter(bootstrap: string, name: string, options: { partitions: number }): Promise<void> {
  await withAdmin(bootstrap, (admin) => admin.createPartitions([{ topic: name, count: options.partitions }]));
  printLine(`Altered topic ${name}: ${options.partitions} partitions.`);
}

export async function topicDelete(bootstrap: string, names: string[]): Promise<void> {
  await withAdmin(bootstrap, (admin) => admin.deleteTopics(names));
  printLine(`Deleted topic${names.length > 1 ? 's' : ''} ${names.join(', ')}.`);
}

export async function topicList(bootstrap: string, format: OutputFormat): Promise<void> {
  const topics = await withAdmin(bootstrap, (admin) => admin.describeTopics());
  if (format === 'json') {
    printJson(topics.map((topic) => ({ name: topic.name, partitions: topic.partitions.length })));
    return;
  }
  if (topics.length === 0) {
    printLine('No topics.');
    return;
  }
  printLine(renderTable(['TOPIC', 'PARTITIONS'], topics.map((topic) => [topic.name, topic.partitions.length])));
}

export async function topicDescribe(bootstrap: string, names: string[], format: OutputFormat): Promise<void> {
  const topics = await withAdmin(bootstrap, (admin) => admin.describeTopics(names.length === 0 ? undefined : names));
  if (format === 'json') {
    printJson(topics);
    return;
  }
  const blocks = topics.map((topic) => {
    const configs = Object.entries(topic.configs).map(([key, value]) => `${key}=${value}`).join(',') || '-';
    const header = `Topic: ${topic.name}  Partitions: ${topic.partitions.length}  Configs: ${configs}`;
    const table = renderTable(
      ['PARTITION', 'LEADER', 'EPOCH', 'REPLICAS', 'ISR', 'LOG-START', 'HIGH-WATERMARK'],
      topic.partitions.map((p) => [p.partition, p.leader, p.leaderEpoch, p.replicas.join(','), p.isr.join(','), p.logStartOffset, p.highWatermark]),
    );
    return `${header}\n${table}`;
  });
  printLine(blocks.length === 0 ? 'No topics.' : blocks.join('\n\n'));
}
