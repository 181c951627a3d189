// What RaftHost replicates about membership beside the core's configuration: each member's Raft
// address. A member that joins must be reachable by every node, including nodes that restart
// later, so addresses live in the replicated log, not in config files: every config entry's
// context holds the address of every member of the configuration it leads to (as Kafka's
// VotersRecord carries each voter's endpoints), and every snapshot the host takes carries the
// addresses in force at its index, in an envelope around the state machine's bytes.
import { Buffer } from 'node:buffer';

/** Member id → Raft address (host:port). */
export type AddressBook = ReadonlyMap<number, string>;

/** Starts a snapshot written by a host that knows membership; older snapshots are the state machine's bytes alone. */
const ENVELOPE_MAGIC = Buffer.from('RNRAFTM1');

/** A problem with `address` as a Raft address (host:port), or undefined if it is one. */
export function addressProblem(address: string): string | undefined {
  const colon = address.lastIndexOf(':');
  if (colon <= 0) return `'${address}' is not host:port`;
  const host = address.slice(0, colon);
  const port = address.slice(colon + 1);
  if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65_535) return `'${address}' has no port in 1..65535`;
  if (/\s/.test(host)) return `'${address}' has white space in its host`;
  return undefined;
}

export function encodeAddressBook(book: AddressBook): Uint8Array {
  const sorted = [...book].sort(([a], [b]) => a - b);
  return Buffer.from(JSON.stringify(Object.fromEntries(sorted)), 'utf8');
}

/** The book in a config entry's context or a snapshot's envelope; undefined if it is not one. */
export function decodeAddressBook(bytes: Uint8Array): Map<number, string> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const book = new Map<number, string>();
  for (const [key, value] of Object.entries(parsed)) {
    const id = Number(key);
    if (!Number.isInteger(id) || id <= 0 || typeof value !== 'string' || addressProblem(value) !== undefined) return undefined;
    book.set(id, value);
  }
  return book;
}

export function wrapSnapshot(book: AddressBook, data: Uint8Array): Uint8Array {
  const encodedBook = encodeAddressBook(book);
  const header = Buffer.alloc(ENVELOPE_MAGIC.length + 4);
  ENVELOPE_MAGIC.copy(header);
  header.writeUInt32BE(encodedBook.length, ENVELOPE_MAGIC.length);
  return Buffer.concat([header, encodedBook, data]);
}

/** The state machine's bytes and the addresses a snapshot carries (none in a snapshot from before membership). */
export function unwrapSnapshot(snapshot: Uint8Array): { book: Map<number, string> | undefined; data: Uint8Array } {
  const bytes = Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
  const headerBytes = ENVELOPE_MAGIC.length + 4;
  if (bytes.length < headerBytes || !bytes.subarray(0, ENVELOPE_MAGIC.length).equals(ENVELOPE_MAGIC)) return { book: undefined, data: snapshot };
  const bookBytes = bytes.readUInt32BE(ENVELOPE_MAGIC.length);
  const book = decodeAddressBook(bytes.subarray(headerBytes, headerBytes + bookBytes));
  if (book === undefined) throw new Error('the snapshot envelope holds no valid member address list');
  return { book, data: bytes.subarray(headerBytes + bookBytes) };
}
