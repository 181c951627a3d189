/** A batch that cannot be trusted: truncated, wrong magic, bad CRC, records that do not parse or do not decompress. */
export class CorruptBatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptBatchError';
  }
}
