// Loading a node's configuration (server.properties, RUNNEL_* environment, --set) and
// `runnel config show`: the effective value of every key and where it came from.
import { readFileSync } from 'node:fs';
import { BrokerConfig, describeSource, parseAssignments, parseProperties, type ConfigSource } from '@runnel/common';
import { printJson, printLine, renderTable, type OutputFormat } from '../output.js';

export interface ConfigOptions {
  config?: string;
  set: string[];
}

/** Loads server.properties (if given) with RUNNEL_* environment and --set overrides. */
export function loadBrokerConfig(options: ConfigOptions, env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  let file: Record<string, string> = {};
  if (options.config !== undefined) {
    let text: string;
    try {
      text = readFileSync(options.config, 'utf8');
    } catch (error) {
      throw new Error(`cannot read config file ${options.config}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    file = parseProperties(text, options.config);
  }
  return BrokerConfig.from({ file, fileName: options.config, env, overrides: parseAssignments(options.set) });
}

/** A source as `config show --format json` gives it: the kind, and the file or variable and the Kafka name where there is one. */
function sourceFields(source: ConfigSource): Record<string, string> {
  return {
    source: source.kind,
    ...(source.name === undefined ? {} : { [source.kind === 'file' ? 'file' : 'variable']: source.name }),
    ...(source.writtenAs === undefined ? {} : { writtenAs: source.writtenAs }),
  };
}

/** `runnel config show`: every key's effective value and its source, then the Kafka keys that are ignored, and why. */
export function configShow(options: ConfigOptions & { format: OutputFormat }, env: NodeJS.ProcessEnv = process.env): void {
  const config = loadBrokerConfig(options, env);
  const settings = config.effectiveSettings();
  const ignored = config.ignoredKafkaSettings();
  if (options.format === 'json') {
    printJson({
      settings: settings.map((setting) => ({ key: setting.key, value: setting.value, ...sourceFields(setting.source), ...(setting.derived === undefined ? {} : { derived: setting.derived }) })),
      ignoredKafkaKeys: ignored.map((setting) => ({ key: setting.key, value: setting.value, ...sourceFields(setting.source), reason: setting.reason })),
    });
    return;
  }
  const rows = settings.map((setting) => [
    setting.key,
    setting.value ?? '-',
    setting.derived === undefined ? describeSource(setting.source) : `${describeSource(setting.source)}; ${setting.derived}`,
  ]);
  const blocks = [`Configuration${options.config === undefined ? '' : ` of ${options.config}`} (precedence: default < file < environment < --set)`, renderTable(['KEY', 'VALUE', 'SOURCE'], rows)];
  if (ignored.length > 0) {
    blocks.push(
      `\nKafka keys with no effect in Runnel (accepted, ignored):`,
      renderTable(['KEY', 'VALUE', 'SOURCE', 'WHY'], ignored.map((setting) => [setting.key, setting.value, describeSource(setting.source), setting.reason])),
    );
  }
  printLine(blocks.join('\n'));
}
