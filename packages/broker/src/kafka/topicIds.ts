// Topic ids on the Kafka wire: the controller keeps each id as its 16 bytes in base64url (as
// Kafka prints them); the wire carries the same 16 bytes, which the codec shows as a UUID string.

export const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** A controller topic id as the codec's UUID string; the zero UUID for '' (no topic). */
export function topicIdToUuid(topicId: string): string {
  const bytes = Buffer.from(topicId, 'base64url');
  if (bytes.length !== 16) return ZERO_UUID;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A UUID from the wire as the controller's topic id. */
export function uuidToTopicId(uuid: string): string {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex').toString('base64url');
}
