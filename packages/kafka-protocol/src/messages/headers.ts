// The request and response headers, as tables like any message. Request header v0 (no client id)
// only ever served ControlledShutdown v0, which Runnel does not speak, so it is left out.
import type { MessageSpec } from '../schema.js';

export const REQUEST_HEADER = {
  name: 'RequestHeader',
  type: 'header',
  validVersions: '1-2',
  flexibleVersions: '2+',
  fields: [
    { name: 'RequestApiKey', type: 'int16', versions: '0+' },
    { name: 'RequestApiVersion', type: 'int16', versions: '0+' },
    { name: 'CorrelationId', type: 'int32', versions: '0+' },
    // An int16 string even in v2, so that a broker of any age can read the header of an
    // ApiVersions request sent at a version it does not know.
    { name: 'ClientId', type: 'string', versions: '1+', nullableVersions: '1+', ignorable: true, flexibleVersions: 'none' },
  ],
} as const satisfies MessageSpec;

export const RESPONSE_HEADER = {
  name: 'ResponseHeader',
  type: 'header',
  validVersions: '0-1',
  flexibleVersions: '1+',
  fields: [{ name: 'CorrelationId', type: 'int32', versions: '0+' }],
} as const satisfies MessageSpec;
