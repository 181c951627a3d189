// SaslHandshake (key 17), versions 0-1, never flexible (Kafka cannot bump it: clients up to 2.4
// negotiate it wrongly). Only the schema: Runnel has no SASL, the broker just answers it.
import type { MessageSpec } from '../schema.js';

export const SASL_HANDSHAKE_REQUEST = {
  name: 'SaslHandshakeRequest',
  type: 'request',
  apiKey: 17,
  validVersions: '0-1',
  flexibleVersions: 'none',
  fields: [{ name: 'Mechanism', type: 'string', versions: '0+' }],
} as const satisfies MessageSpec;

export const SASL_HANDSHAKE_RESPONSE = {
  name: 'SaslHandshakeResponse',
  type: 'response',
  apiKey: 17,
  validVersions: '0-1',
  flexibleVersions: 'none',
  fields: [
    { name: 'ErrorCode', type: 'int16', versions: '0+' },
    { name: 'Mechanisms', type: '[]string', versions: '0+' },
  ],
} as const satisfies MessageSpec;
