// Configuration in the form a Kafka operator knows: dotted keys in a server.properties file,
// overridden by RUNNEL_* environment variables and then by `--set key=value`. Every key is
// declared here with its type and range; an unknown key or a bad value is an error naming it.

export type ConfigType = 'int' | 'long' | 'double' | 'string' | 'boolean' | 'list';
export type ConfigValue = number | string | boolean | string[] | null;

export interface ConfigKey {
  readonly type: ConfigType;
  /** `null` means "not set": the key is optional and something else supplies the behaviour. */
  readonly default: ConfigValue;
  readonly min?: number;
  readonly max?: number;
  readonly choices?: readonly string[];
  readonly doc: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const MAX_LONG = Number.MAX_SAFE_INTEGER;

/** A set of declared keys, and the parsing and validation of values for them. */
export class ConfigDef {
  constructor(readonly keys: Readonly<Record<string, ConfigKey>>) {}

  has(key: string): boolean {
    return Object.hasOwn(this.keys, key);
  }

  /** Parses one raw value, throwing a ConfigError that names the key, the value and what was expected. */
  parseValue(key: string, raw: string, source = 'config'): ConfigValue {
    const spec = this.keys[key];
    if (spec === undefined || !Object.hasOwn(this.keys, key)) {
      throw new ConfigError(`${source}: unknown config key '${key}'${suggestion(key, Object.keys(this.keys))}`);
    }
    const value = raw.trim();
    const bad = (expected: string) =>
      new ConfigError(`${source}: invalid value '${raw}' for '${key}': expected ${expected}`);
    switch (spec.type) {
      case 'int':
      case 'long': {
        if (!/^-?\d+$/.test(value)) throw bad(spec.type === 'int' ? 'an integer' : 'a whole number');
        const parsed = Number(value);
        const limit = spec.type === 'int' ? 2 ** 31 - 1 : MAX_LONG;
        // Kafka writes "unlimited" as Long.MAX_VALUE; accept it and clamp to what a double holds exactly.
        const clamped = spec.type === 'long' && parsed > MAX_LONG ? MAX_LONG : parsed;
        if (clamped > limit || clamped < -limit - 1) throw bad(`a ${spec.type} in range`);
        if (spec.min !== undefined && clamped < spec.min) throw bad(`at least ${spec.min}`);
        if (spec.max !== undefined && clamped > spec.max) throw bad(`at most ${spec.max}`);
        return clamped;
      }
      case 'double': {
        if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value)) throw bad('a number');
        const parsed = Number(value);
        if (!Number.isFinite(parsed)) throw bad('a finite number');
        if (spec.min !== undefined && parsed < spec.min) throw bad(`at least ${spec.min}`);
        if (spec.max !== undefined && parsed > spec.max) throw bad(`at most ${spec.max}`);
        return parsed;
      }
      case 'boolean':
        if (value === 'true') return true;
        if (value === 'false') return false;
        throw bad('true or false');
      case 'string':
        if (spec.choices !== undefined && !spec.choices.includes(value)) throw bad(`one of ${spec.choices.join(', ')}`);
        return value;
      case 'list': {
        const items = value === '' ? [] : value.split(',').map((item) => item.trim());
        for (const item of items) {
          if (spec.choices !== undefined && !spec.choices.includes(item)) throw bad(`a list of ${spec.choices.join(', ')}`);
        }
        return items;
      }
    }
  }

}

/** ` (did you mean 'x'?)` for the known key closest to `key` within two edits, or ''. */
export function suggestion(key: string, known: Iterable<string>): string {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(candidate, key);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { key: candidate, distance };
  }
  return best === undefined ? '' : ` (did you mean '${best.key}'?)`;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previousDiagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previousDiagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      previousDiagonal = saved;
    }
  }
  return row[b.length]!;
}

/**
 * Parses Java-properties text: `key=value`, `key: value` or `key value`; `#` and `!` comments;
 * a trailing backslash continues a line. Duplicate keys are an error rather than a silent override.
 */
export function parseProperties(text: string, source = 'properties'): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    let line = lines[index]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue;
    while (line.endsWith('\\') && index + 1 < lines.length) {
      line = line.slice(0, -1) + lines[++index]!.trim();
    }
    const match = /^([^=:\s]+)\s*(?:[=:]|\s)\s*(.*)$/.exec(line);
    if (match === null) throw new ConfigError(`${source}:${lineNumber}: cannot parse '${line}': expected key=value`);
    const [, key, value] = match as unknown as [string, string, string];
    if (Object.hasOwn(values, key)) throw new ConfigError(`${source}:${lineNumber}: '${key}' is set twice`);
    values[key] = value;
  }
  return values;
}

/** The environment variable of a key: `log.retention.hours` → `RUNNEL_LOG_RETENTION_HOURS`. */
export function environmentVariable(key: string): string {
  return `RUNNEL_${key.toUpperCase().replaceAll('.', '_')}`;
}

/** `RUNNEL_LOG_RETENTION_HOURS=1` → `log.retention.hours=1`, for the keys given. */
export function environmentOverrides(keys: Iterable<string>, env: NodeJS.ProcessEnv): Record<string, string> {
  const values: Record<string, string> = {};
  for (const key of keys) {
    const value = env[environmentVariable(key)];
    if (value !== undefined) values[key] = value;
  }
  return values;
}

/** `["a.b=1", "c=2"]` (from `--set`) → `{ "a.b": "1", c: "2" }`. */
export function parseAssignments(assignments: readonly string[], source = '--set'): Record<string, string> {
  const values: Record<string, string> = {};
  for (const assignment of assignments) {
    const at = assignment.indexOf('=');
    if (at <= 0) throw new ConfigError(`${source}: expected key=value, got '${assignment}'`);
    values[assignment.slice(0, at).trim()] = assignment.slice(at + 1);
  }
  return values;
}

export { MAX_LONG };
