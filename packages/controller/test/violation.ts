import { MetadataInvariantError, type MetadataImage, type MetadataRecord } from '../src/index.js';

/** The invariant that applying `record` to `image` breaks, or 'none'. */
export function violation(image: MetadataImage, record: MetadataRecord): string {
  try {
    image.apply(record, image.highestOffset + 1);
  } catch (error) {
    if (error instanceof MetadataInvariantError) return error.invariant;
    throw error;
  }
  return 'none';
}
