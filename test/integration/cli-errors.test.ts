// A failed command prints one line that names the Kafka error code once: the controller's and the
// broker's messages carry the detail alone, and the CLI puts the code in front.
import { describe, expect, it } from 'vitest';
import { useSingleNode } from './harness.js';
import { runCli } from './cli.js';

describe('CLI error lines', () => {
  const single = useSingleNode();
  const cli = (args: string[]) => runCli(['--bootstrap', single.node.bootstrap, ...args]);

  it('name the code once, then what failed and why', async () => {
    expect((await cli(['topic', 'create', 'demo', '--partitions', '1', '--replication-factor', '1'])).code).toBe(0);
    const cases: Array<[string[], string]> = [
      [['topic', 'create', 'demo'], "runnel: TOPIC_ALREADY_EXISTS: cannot create topic 'demo': topic 'demo' already exists\n"],
      [['topic', 'describe', 'nope'], "runnel: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist\n"],
      [['topic', 'delete', 'nope'], "runnel: UNKNOWN_TOPIC_OR_PARTITION: cannot delete topic 'nope': no topic named 'nope'\n"],
      [['topic', 'create', 'cfg', '--config', 'retention.msec=5'], "runnel: INVALID_CONFIG: cannot create topic 'cfg': unknown topic config 'retention.msec'\n"],
    ];
    for (const [args, line] of cases) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr).toBe(line);
    }
    const wide = await cli(['topic', 'create', 'wide', '--replication-factor', '3']);
    expect(wide.stderr).toMatch(/^runnel: INVALID_REPLICATION_FACTOR: cannot create topic 'wide': [^A-Z]*replication factor 3 is larger than the 1 available broker\(s\)\n$/);
    expect(wide.stderr.match(/INVALID_REPLICATION_FACTOR/g)).toHaveLength(1);
  });
});
