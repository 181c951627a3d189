// Tables for people, JSON for scripts: every listing command takes --format table|json.

export type OutputFormat = 'table' | 'json';

export function parseFormat(value: string): OutputFormat {
  if (value !== 'table' && value !== 'json') throw new Error(`--format must be 'table' or 'json', got '${value}'`);
  return value;
}

/** Left-aligned columns separated by two spaces; a header row first. */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<readonly (string | number)[]>): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  return cells
    .map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '))
    .join('\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

export function printLine(text: string): void {
  process.stdout.write(text + '\n');
}

/**
 * The one stderr line of a failed command: `runnel: NAME: detail` for an error with a Kafka code,
 * naming the code once even where a peer's message repeats it (an older node put the name into
 * its error_message too), else `runnel: message`.
 */
export function errorLine(error: unknown): string {
  if (!(error instanceof Error)) return `runnel: ${String(error)}`;
  const { errorName, detail } = error as Error & { errorName?: unknown; detail?: unknown };
  if (typeof errorName !== 'string' || typeof detail !== 'string') return `runnel: ${error.message}`;
  return `runnel: ${errorName}: ${detail.replaceAll(`${errorName}: `, '')}`;
}
