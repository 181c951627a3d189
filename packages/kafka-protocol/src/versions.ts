// Version ranges written as in Kafka's message definitions: "3" (one version), "1-7" (inclusive),
// "9+" (from 9 on) and "none".

export interface VersionRange {
  readonly min: number;
  /** Infinity for an open range ("9+"). */
  readonly max: number;
}

const NONE: VersionRange = { min: 1, max: 0 };
const parsed = new Map<string, VersionRange>();

export function parseVersions(text: string): VersionRange {
  let range = parsed.get(text);
  if (range !== undefined) return range;
  let match: RegExpExecArray | null;
  if (text === 'none') range = NONE;
  else if ((match = /^(\d+)\+$/.exec(text)) !== null) range = { min: Number(match[1]), max: Infinity };
  else if ((match = /^(\d+)-(\d+)$/.exec(text)) !== null) range = { min: Number(match[1]), max: Number(match[2]) };
  else if (/^\d+$/.test(text)) range = { min: Number(text), max: Number(text) };
  if (range === undefined || range.min > range.max + (range === NONE ? 1 : 0)) throw new Error(`'${text}' is not a version range`);
  parsed.set(text, range);
  return range;
}

export function inVersions(version: number, text: string | undefined): boolean {
  if (text === undefined) return false;
  const range = parseVersions(text);
  return version >= range.min && version <= range.max;
}
